"""Virtual IP address pools of a remote-access gateway (swanctl's ``pools``; RFC 7296 §3.15:
the addresses a gateway hands to its clients in a Configuration payload).

:class:`AddressPool` is configuration: a subnet (its network and broadcast addresses are
never leased) and the DNS servers to tell clients.  :class:`Leases` is the gateway's state:
which identity holds which address.  An identity that comes back gets its address again
(as strongSwan does); an address goes back to the pool when the IKE SA that holds it goes.
Leases are bounded by the pool's size, so no client can make the table grow.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ipseclab.errors import ConfigError


@dataclass(frozen=True)
class AddressPool:
    """``pools.<name>`` in swanctl.conf: ``addrs`` (a subnet) and ``dns``."""

    name: str
    addrs: str
    dns: tuple[str, ...] = ()
    #: who may lease from it: user names and names of :attr:`PeerConfig.groups`; empty: anyone —
    #: the per-user and per-group address plans of a gateway (staff here, contractors there)
    users: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        try:
            net = ipaddress.ip_network(self.addrs, strict=False)
        except ValueError as exc:
            raise ConfigError(f"pool {self.name}: addrs {self.addrs!r} is not a subnet: {exc}") from None
        if net.version != 4 or net.num_addresses < 4:
            raise ConfigError(f"pool {self.name}: an IPv4 subnet with room for clients (/30 or larger), not {self.addrs}")
        for server in self.dns:
            try:
                ipaddress.ip_address(server)
            except ValueError:
                raise ConfigError(f"pool {self.name}: dns {server!r} is not an IP address") from None

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.ip_network(self.addrs, strict=False)  # type: ignore[return-value]

    def admits(self, identity: str, groups: dict[str, tuple[str, ...]]) -> bool:
        """May ``identity`` lease from this pool (named, or in a named group)?"""
        return not self.users or identity in self.users or any(identity in groups.get(g, ()) for g in self.users)

    @property
    def size(self) -> int:
        """Addresses a client can get (the subnet less its network and broadcast addresses)."""
        return self.network.num_addresses - 2


@dataclass
class Leases:
    """Who holds which address, per pool: identity → address."""

    held: dict[str, dict[str, str]] = field(default_factory=dict)  # pool → identity → address
    online: dict[str, set[str]] = field(default_factory=dict)  # pool → identities whose IKE SA holds the address

    def acquire(self, pool: AddressPool, identity: str) -> str | None:
        """An address for ``identity`` — the one it had before if any — or None when the pool is full."""
        held = self.held.setdefault(pool.name, {})
        online = self.online.setdefault(pool.name, set())
        if identity in held:
            online.add(identity)
            return held[identity]
        taken = set(held.values())
        for host in pool.network.hosts():
            address = str(host)
            if address not in taken:
                held[identity] = address
                online.add(identity)
                return address
        # full: an offline identity's address is reused (the oldest first)
        for other in list(held):
            if other not in online:
                address = held.pop(other)
                held[identity] = address
                online.add(identity)
                return address
        return None

    def release(self, pool: str, identity: str) -> None:
        """The IKE SA that held the address went: it can be given to someone else."""
        self.online.get(pool, set()).discard(identity)

    def carried_over(self, pools: list[AddressPool]) -> Leases:
        """The leases a new configuration keeps (``ipseclab peer``'s ``load``): those of pools
        that still exist, for addresses still inside them — every client offline (a load needs
        the SAs gone), each still owed its address when it comes back."""
        by_name = {p.name: p for p in pools}
        kept = Leases()
        for name, held in self.held.items():
            pool = by_name.get(name)
            if pool is None:
                continue
            kept.held[name] = {ident: addr for ident, addr in held.items()
                               if ipaddress.ip_address(addr) in pool.network and addr not in (str(pool.network.network_address),
                                                                                                str(pool.network.broadcast_address))}
        return kept

    def table(self) -> list[dict[str, object]]:
        """Every lease, for the SA table: pool, identity, address, online."""
        return [
            {"pool": pool, "identity": ident, "address": address, "online": ident in self.online.get(pool, set())}
            for pool, held in self.held.items()
            for ident, address in held.items()
        ]


class NoAddress(Exception):  # noqa: N818 - an outcome, said in words
    """No pool of the connection has an address for this client; ``message`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def lease(leases: Leases, pools: list[AddressPool], identity: str, groups: dict[str, tuple[str, ...]]) -> tuple[AddressPool, str]:
    """An address for ``identity`` from the first of ``pools`` that admits it and has one free
    (the one it held before, if any); :class:`NoAddress` in plain words otherwise."""
    admitting = [p for p in pools if p.admits(identity, groups)]
    if not admitting:
        plan = "; ".join(f"{p.name} for {', '.join(p.users)}" for p in pools)
        raise NoAddress(f"no virtual IP for {identity}: its pools admit only certain users and groups ({plan}), "
                        f"and {identity} is none of them")
    for pool in admitting:
        address = leases.acquire(pool, identity)
        if address is not None:
            return pool, address
    full = ", ".join(f"{p.name} ({p.addrs}: {p.size} addresses)" for p in admitting)
    raise NoAddress(f"no virtual IP for {identity}: pool {full} is full — every address is held by a client that is online")
