"""Traffic through ESP between an ipseclab daemon and strongSwan's charon (kernel-libipsec).

In a :func:`~ipseclab.runtime.netlab.topology.site_to_site` lab, ``left`` runs ``ipseclab peer
--dataplane`` (TUN ``ipl0``) and ``right`` runs charon with ``kernel-libipsec`` (TUN
``ipsec0``, routes in table 220).  Both protect ``left.protected[0] <-> right.protected[0]``.
charon's libipsec always encapsulates ESP in UDP on port 4500 — it pretends to be behind a
NAT — so this exercises NAT-T's port float and our ESP-in-UDP path (RFC 3948)::

    with site_to_site("esp1", routes=False) as topo, CharonTunnel(topo, workdir, esp="aes128gcm16") as t:
        t.establish(initiator="charon")
        t.ping("left", 5); t.ping("right", 5)       # both directions through the tunnel

In the :func:`~ipseclab.runtime.netlab.topology.nat` lab (``CharonTunnel(topo, work, ours="left"|"right")``)
the end host ``right`` accepts ``remote_addrs = %any`` (it only sees the router's address), so
either implementation can sit behind the NAT and initiate.

:func:`charon_pair` puts a charon in both hosts instead (the benchmark's reference tunnel),
:func:`ipseclab_pair` our daemon in both (with any ESP proposal, ``encap`` to force UDP).
Every process is stopped by PID (``close``, and ``topo.down()`` as a backstop).  The PSK is a
throw-away: charon's level-4 log prints it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ipseclab.errors import IpsecLabError
from ipseclab.runtime.netlab.charon import Charon, CharonChild, topology_spawner
from ipseclab.runtime.netlab.charon import charon_conn as vici_conn
from ipseclab.runtime.netlab.pinger import PingStats, ping

PSK = "ipseclab-esp-interop-throwaway-psk"
IKE_PROPOSAL = "aes128-sha1-modp2048"
OURS, THEIRS = "left", "right"


class EspInteropError(IpsecLabError):
    """The tunnel between ipseclab and charon could not be set up (the message says why)."""


def _remote_address(topo: Any, role: str) -> str:
    """The other host's address — ``%any`` for ``right`` in the NAT lab, which only ever sees
    the router's translated address (as in swanctl.conf: ``remote_addrs = %any``)."""
    if role == THEIRS and getattr(topo, "kind", None) == "nat":
        return "%any"
    return topo.hosts[OURS if role == THEIRS else THEIRS].address


def our_config(
    topo: Any, role: str = OURS, *, esp: str, ike: str = IKE_PROPOSAL, encap: bool = False, connection: str = "",
    local_ts: str | None = None, remote_ts: str | None = None,
) -> str:
    """TOML for our daemon in ``role``: connection ``lab`` to the other host, child ``c1``
    (first protected hosts, or ``local_ts``/``remote_ts``), data plane on; identities
    ``<role>@lab``; ``connection`` adds TOML lines to ``[connections.lab]`` (``close_action =
    "start"``).  In the :func:`nat` lab ``right`` accepts ``%any`` (see :func:`_remote_address`)."""
    other_role = THEIRS if role == OURS else OURS
    me, other = topo.hosts[role], topo.hosts[other_role]
    return f"""[peer]
name = "{"ipseclab" if role == OURS else role}"
address = "{me.address}"
identity = "{role}@lab"
psk = "{PSK}"
include_default_policy = false
dataplane = true

[[peer.ike_policies]]
priority = 10
proposal = "{ike}"
auth = "psk"

[connections.lab]
remote_addrs = "{_remote_address(topo, role)}"
remote_id = "{other_role}@lab"
encap = {"true" if encap else "false"}
{connection}
[connections.lab.children.c1]
local_ts = "{local_ts or f"{me.protected[0]}/32"}"
remote_ts = "{remote_ts or f"{other.protected[0]}/32"}"
esp_proposals = ["{esp}"]
"""


def charon_conn(topo: Any, role: str, *, esp: str, ike: str = IKE_PROPOSAL) -> dict[str, Any]:
    """The VICI connection ``lab`` (child ``c1``) for a charon in ``role`` facing the other host
    (``remote_addrs = %any`` for ``right`` in the NAT lab)."""
    me = topo.hosts[role]
    other = topo.hosts[OURS if role == THEIRS else THEIRS]
    ids = {"local_id": f"{role}@lab", "remote_id": f"{OURS if role == THEIRS else THEIRS}@lab"}
    child = CharonChild("c1", f"{me.protected[0]}/32", f"{other.protected[0]}/32", esp)
    return vici_conn(local=me.address, remote=_remote_address(topo, role), proposals=ike, children=[child], **ids)


def _charon_child_up(charon: Charon) -> bool:
    for ike in charon.list_sas():
        for child in (ike.get("child-sas") or {}).values():
            if child.get("state") == "INSTALLED":
                return True
    return False


def start_charon(
    topo: Any, role: str, workdir: Path, *, esp: str, ike: str = IKE_PROPOSAL,
    conn: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Charon:
    """A charon in ``role`` with connection ``lab`` loaded (not initiated); ``conn`` may
    rewrite the connection first."""
    problem = Charon.available()
    if problem:
        raise EspInteropError(problem)
    charon = Charon(workdir)
    charon.start(topology_spawner(topo, role))
    try:
        charon.load_psk(PSK)
        body = charon_conn(topo, role, esp=esp, ike=ike)
        charon.load_conn("lab", conn(body) if conn is not None else body)
    except Exception:
        charon.stop()
        raise
    return charon


class CharonTunnel:
    """Our daemon (data plane on) in ``ours`` (default ``left``), charon (libipsec) in the other
    end host (see the module).  In the :func:`~ipseclab.runtime.netlab.topology.nat` lab either side
    may be the one behind the NAT; the one in ``right`` accepts ``%any``."""

    def __init__(
        self, topo: Any, workdir: str | Path, *, esp: str = "aes128-sha1", ike: str = IKE_PROPOSAL, ours: str = OURS,
        config: Callable[[str], str] | None = None, charon_conn: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        """``config`` may rewrite our daemon's TOML, ``charon_conn`` charon's VICI connection."""
        if ours not in (OURS, THEIRS):
            raise EspInteropError(f"ours must be {OURS!r} or {THEIRS!r}, not {ours!r}")
        self.ours = ours
        self.theirs = THEIRS if ours == OURS else OURS
        self.topo = topo
        self.workdir = Path(workdir)
        self.esp = esp
        self.ike = ike
        self.charon: Charon | None = None
        self.client: Any = None
        self.config = config or (lambda text: text)
        self.charon_conn = charon_conn or (lambda conn: conn)
        self._charon_runs = 0

    def start(self) -> CharonTunnel:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.start_charon()
        self.start_ours()
        return self

    def start_charon(self) -> Charon:
        """(Re)start charon — a gateway restart loses every SA it held."""
        self._charon_runs += 1
        self.charon = start_charon(
            self.topo, self.theirs, self.workdir / f"charon{self._charon_runs}", esp=self.esp, ike=self.ike,
            conn=self.charon_conn,
        )
        return self.charon

    def start_ours(self) -> Any:
        """(Re)start our daemon."""
        from ipseclab.runtime.netlab.peers import spawn_daemon, wait_for_daemon

        spawn_daemon(self.topo, self.ours, self.config(our_config(self.topo, self.ours, esp=self.esp, ike=self.ike)))
        self.client = wait_for_daemon(self.topo, self.ours)
        return self.client

    def establish(self, initiator: str = "ipseclab", timeout: float = 15.0) -> None:
        """Bring the child up (``initiator`` "ipseclab" or "charon") and wait until both sides
        have installed it (ours: an IPsec SA in the data plane; charon: child INSTALLED)."""
        assert self.charon is not None and self.client is not None
        if initiator == "ipseclab":
            self.client.initiate("lab")
        elif initiator == "charon":
            result = self.charon.initiate("c1", ike="lab", timeout=timeout)
            if not result.ok:
                raise EspInteropError(f"charon could not initiate: {result.error}")
        else:
            raise EspInteropError(f"initiator must be 'ipseclab' or 'charon', not {initiator!r}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ours = [s for s in self.client.esp()["sas"] if s["direction"] == "outbound"]
            if ours and _charon_child_up(self.charon):
                return
            time.sleep(0.05)
        raise EspInteropError(f"the tunnel did not come up within {timeout} s; ipseclab SAs: {self.client.list_sas()}")

    def ping(self, role: str, count: int = 5, **kw: Any) -> PingStats:
        """Ping from ``role``'s protected address to the other side's, through the tunnel."""
        other = self.theirs if role == self.ours else self.ours
        return ping(self.topo, role, self.topo.hosts[role].protected[0], self.topo.hosts[other].protected[0], count, **kw)

    def close(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.shutdown()
            self.client.close()
            self.client = None
        if self.charon is not None:
            self.charon.stop()
            self.charon = None

    def __enter__(self) -> CharonTunnel:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def ipseclab_pair(  # noqa: ANN201
    topo: Any, *, esp: str = "aes128-sha1", ike: str = IKE_PROPOSAL, encap: bool = False, timeout: float = 15.0,
    config: Callable[[str], str] | None = None,
):
    """Our daemon (data plane on) in each host, child ``c1`` up and installed on both sides;
    yields ``{"left": PeerClient, "right": PeerClient}``.  ``config`` may rewrite both daemons'
    TOML (``version = 2``)."""
    from ipseclab.runtime.netlab.peers import spawn_daemon, wait_for_daemon

    clients: dict[str, Any] = {}
    try:
        for role in (OURS, THEIRS):
            text = our_config(topo, role, esp=esp, ike=ike, encap=encap)
            spawn_daemon(topo, role, config(text) if config else text)
        for role in (OURS, THEIRS):
            clients[role] = wait_for_daemon(topo, role)
        clients[OURS].initiate("lab")
        deadline = time.monotonic() + timeout
        while not all(any(s["direction"] == "outbound" for s in c.esp()["sas"]) for c in clients.values()):
            if time.monotonic() > deadline:
                raise EspInteropError(f"our tunnel did not come up within {timeout} s: {clients[OURS].list_sas()}")
            time.sleep(0.05)
        yield clients
    finally:
        for client in clients.values():
            with contextlib.suppress(Exception):
                client.shutdown()
            client.close()


@contextlib.contextmanager
def charon_pair(topo: Any, workdir: str | Path, *, esp: str = "aes128-sha1", ike: str = IKE_PROPOSAL, timeout: float = 15.0):  # noqa: ANN201
    """A charon (libipsec) in each host, child ``c1`` up between them: the reference tunnel."""
    work = Path(workdir)
    charons: list[Charon] = []
    try:
        for role in (OURS, THEIRS):
            charons.append(start_charon(topo, role, work / f"charon-{role}", esp=esp, ike=ike))
        result = charons[0].initiate("c1", ike="lab", timeout=timeout)
        if not result.ok:
            raise EspInteropError(f"charon-to-charon tunnel failed: {result.error}")
        yield charons
    finally:
        for charon in charons:
            charon.stop()
