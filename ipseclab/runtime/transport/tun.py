"""A TUN device: where the inner IP packets of the ESP data plane come from and go to.

ESP in tunnel mode (RFC 4303 §3.1.2) protects whole IP packets.  With no ESP in this kernel,
the packets a host sends to a protected subnet must reach userspace: the daemon opens a TUN
device (``/dev/net/tun``, ``TUNSETIFF`` with ``IFF_TUN | IFF_NO_PI``: every ``read`` is one
bare IPv4/IPv6 packet, every ``write`` injects one), routes the remote protected subnets into
it, protects what it reads and writes what it decrypts.  strongSwan's ``kernel-libipsec``
does the same with its ``ipsec0`` (MTU 1400; that leaves room for the outer IP header, UDP
encapsulation, ESP header, IV, padding and ICV inside a 1500-byte Ethernet MTU).

The device lives in the network namespace of the thread that opens it; links, addresses and
routes are set with pyroute2 (netlink), never by running ``ip``.  pyroute2's ``IPRoute`` runs
an asyncio loop of its own, which cannot start inside a running one (the daemon's, Jupyter's),
so every netlink call runs on a short-lived helper thread — a new thread starts in its
creator's network namespace, so "this namespace" stays the caller's.  :class:`TunDevice` works
without asyncio (``read``/``write``) and with it (:meth:`TunDevice.start_reader`, which drains
the non-blocking descriptor in batches from ``loop.add_reader``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import ipaddress
import os
import struct
import threading
from collections.abc import Callable, Iterable
from typing import TypeVar

from pyroute2 import IPRoute

from ipseclab.errors import IpsecLabError

T = TypeVar("T")

#: ``_IOW('T', 202, int)`` from ``<linux/if_tun.h>``.
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
#: Same MTU as strongSwan's kernel-libipsec ``ipsec0``.
DEFAULT_MTU = 1400
#: Smallest read buffer; reads use ``max(READ_SIZE, mtu + 64)`` (a larger packet would be cut).
READ_SIZE = 2048
#: Packets handled per reader wake-up before giving the event loop back (fairness).
BATCH = 64


class TunError(IpsecLabError):
    """The TUN device could not be opened or configured (the message says which step)."""


def _netlink(fn: Callable[[IPRoute], T]) -> T:
    """``fn(ipr)`` on a helper thread (same namespace as the calling thread); re-raises."""
    result: list[T] = []
    error: list[BaseException] = []

    def work() -> None:
        try:
            with IPRoute() as ipr:
                result.append(fn(ipr))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            error.append(exc)

    thread = threading.Thread(target=work, name="ipseclab-netlink", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def _net(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text, strict=False)


class TunDevice:
    """One TUN interface in the current network namespace.

    ``TunDevice.open("ipl0", mtu=1400)`` creates it (or attaches to an existing persistent
    one), sets the MTU and brings it up; :meth:`add_route` sends a subnet into it;
    :meth:`close` closes the descriptor, which removes a non-persistent device and with it
    every route through it.
    """

    def __init__(self, fd: int, name: str, index: int, mtu: int) -> None:
        self.fd = fd
        self.name = name
        self.index = index
        self.mtu = mtu
        self.routes: set[str] = set()
        self.addresses: list[str] = []
        self.read_packets = 0
        self.written_packets = 0
        self.write_errors = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"<TunDevice {self.name} index={self.index} mtu={self.mtu} routes={sorted(self.routes)}>"

    # -- creating ----------------------------------------------------------------------

    @classmethod
    def open(cls, name: str = "ipl0", *, mtu: int = DEFAULT_MTU, address: str | None = None) -> TunDevice:
        """Create TUN ``name`` in this thread's namespace, set ``mtu``, optionally an
        ``address`` (``"10.1.0.1/32"``), and bring it up.  Needs CAP_NET_ADMIN."""
        if len(name.encode()) > 15:
            raise TunError(f"interface name {name!r} is longer than 15 bytes")
        try:
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise TunError(f"cannot open /dev/net/tun: {exc.strerror or exc}") from None
        try:
            ifr = struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI)
            try:
                fcntl.ioctl(fd, TUNSETIFF, ifr)
            except OSError as exc:
                raise TunError(f"TUNSETIFF {name}: {exc.strerror or exc} (root or CAP_NET_ADMIN needed)") from None
            _no_ipv6(name)  # no router solicitations or MLD reports into the tunnel

            def configure(ipr: IPRoute) -> int:
                found = ipr.link_lookup(ifname=name)
                if not found:
                    raise TunError(f"TUN device {name} was created but netlink does not list it")
                ipr.link("set", index=found[0], mtu=mtu)
                if address is not None:
                    iface = ipaddress.ip_interface(address)
                    ipr.addr("add", index=found[0], address=str(iface.ip), prefixlen=iface.network.prefixlen)
                ipr.link("set", index=found[0], state="up")
                return int(found[0])

            dev = cls(fd, name, _netlink(configure), mtu)
            if address is not None:
                dev.addresses.append(str(ipaddress.ip_interface(address)))
        except BaseException:
            os.close(fd)
            raise
        return dev

    # -- addresses (a remote-access client's virtual IP) ----------------------------------

    def sync_addresses(self, wanted: Iterable[str]) -> None:
        """Make the device's extra addresses exactly ``wanted`` (``"10.3.0.1/32"``): a virtual IP
        the gateway assigned is added, one given back is removed."""
        want = [str(ipaddress.ip_interface(a)) for a in wanted]
        for addr in [a for a in self.addresses if a not in want]:
            iface = ipaddress.ip_interface(addr)
            with contextlib.suppress(Exception):
                _netlink(lambda ipr, i=iface: ipr.addr("del", index=self.index, address=str(i.ip), prefixlen=i.network.prefixlen))
            self.addresses.remove(addr)
        for addr in [a for a in want if a not in self.addresses]:
            iface = ipaddress.ip_interface(addr)
            try:
                _netlink(lambda ipr, i=iface: ipr.addr("replace", index=self.index, address=str(i.ip), prefixlen=i.network.prefixlen))
            except Exception as exc:  # noqa: BLE001 - pyroute2 raises NetlinkError and others
                raise TunError(f"address {addr} on {self.name}: {exc}") from None
            self.addresses.append(addr)

    # -- routes ------------------------------------------------------------------------

    def add_route(self, subnet: str, *, src: str | None = None) -> None:
        """Route ``subnet`` into this device (``replace``: idempotent); ``src`` is the
        preferred source address for locally generated packets (charon sets it too)."""
        net = _net(subnet)
        kwargs: dict[str, object] = {"dst": str(net), "oif": self.index}
        if src is not None:
            kwargs["prefsrc"] = src
        try:
            _netlink(lambda ipr: ipr.route("replace", **kwargs))
        except Exception as exc:  # noqa: BLE001 - pyroute2 raises NetlinkError and others
            raise TunError(f"route {net} via {self.name}: {exc}") from None
        self.routes.add(str(net))

    def remove_route(self, subnet: str) -> None:
        """Remove the route of ``subnet`` through this device (nothing if there is none)."""
        net = str(_net(subnet))
        with contextlib.suppress(Exception):
            _netlink(lambda ipr: ipr.route("del", dst=net, oif=self.index))
        self.routes.discard(net)

    def sync_routes(self, wanted: Iterable[tuple[str, str | None]]) -> None:
        """Make the device's routes exactly ``wanted`` (pairs of subnet and preferred source)."""
        want = {str(_net(s)): src for s, src in wanted}
        for net in sorted(self.routes - set(want)):
            self.remove_route(net)
        for net, src in want.items():
            if net not in self.routes:
                self.add_route(net, src=src)

    # -- packets -----------------------------------------------------------------------

    @property
    def read_size(self) -> int:
        return max(READ_SIZE, self.mtu + 64)

    def read(self) -> bytes | None:
        """One packet, or None if none is waiting (the descriptor is non-blocking)."""
        try:
            data = os.read(self.fd, self.read_size)
        except BlockingIOError:
            return None
        self.read_packets += 1
        return data

    def write(self, packet: bytes) -> bool:
        """Inject one IP packet into the kernel as if it arrived on this interface.

        A full queue or a packet the kernel refuses (``EINVAL`` for garbage) is counted
        in ``write_errors`` and dropped: the data plane never blocks on its TUN.
        """
        try:
            os.write(self.fd, packet)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EINVAL, errno.ENOBUFS, errno.EIO):
                raise
            self.write_errors += 1
            return False
        self.written_packets += 1
        return True

    def start_reader(self, callback: Callable[[bytes], None], *, batch: int = BATCH) -> None:
        """Call ``callback(packet)`` for every packet read, from the running event loop.

        Each wake-up drains up to ``batch`` packets (one ``epoll`` round trip for many
        packets), then returns so IKE and the control socket are served between batches.
        """
        loop = asyncio.get_running_loop()
        fd, read, size = self.fd, os.read, self.read_size

        def on_readable() -> None:
            for _ in range(batch):
                try:
                    data = read(fd, size)
                except BlockingIOError:
                    return
                except OSError:  # device going away
                    return
                self.read_packets += 1
                callback(data)

        loop.add_reader(fd, on_readable)
        self._loop = loop

    def stop_reader(self) -> None:
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self.fd)
            self._loop = None

    def close(self) -> None:
        """Stop reading and close the descriptor (the kernel removes the device and its routes)."""
        self.stop_reader()
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1
        self.routes.clear()

    def __enter__(self) -> TunDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _no_ipv6(name: str) -> None:
    with contextlib.suppress(OSError), open(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "w") as f:
        f.write("1")


def local_address_in(subnet: str) -> str | None:
    """An address of this namespace inside ``subnet`` (for a route's preferred source), or None."""
    net = _net(subnet)

    def find(ipr: IPRoute) -> str | None:
        for msg in ipr.get_addr(family=2 if net.version == 4 else 10):
            addr = msg.get_attr("IFA_ADDRESS") or msg.get_attr("IFA_LOCAL")
            if addr and ipaddress.ip_address(addr) in net:
                return str(addr)
        return None

    return _netlink(find)
