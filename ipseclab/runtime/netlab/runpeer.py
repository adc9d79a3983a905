"""Run one ipseclab :class:`~ipseclab.peer.Peer` on real UDP sockets from a JSON spec.

    python -m ipseclab.runtime.netlab.runpeer SPEC.json

Started inside a lab namespace (``Topology.spawn``) by the interop harness: it binds UDP
500/4500 on the spec's address, initiates or waits, prints every trace event's
``describe()`` line (prefixed with seconds since start), and ends when the run has
*settled* — every wanted SA is up, or a terminal error happened — plus ``linger`` seconds
(to answer retransmissions and let the peer finish), or at ``timeout``.  It then writes

* ``events``: every trace event as JSON lines, **with secrets** (the harness exports
  Wireshark key tables from them; the lab's PSKs and keys are throw-away),
* ``result``: ``{"established", "settled", "errors", "sa_table", "seconds"}``.

Exit status: 0 when phase 1 and every wanted child came up without a terminal error,
1 otherwise, 2 for a bad spec.  SIGTERM/SIGINT end the run early (results still written).

This is the harness's own small runner; the ``ipseclab peer`` daemon (TOML config, control
socket) is the user-facing one — both build the same :class:`~ipseclab.config.PeerConfig`.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ipseclab.config import ChildConfig, Connection, Identity, PeerConfig
from ipseclab.errors import ConfigError, IpsecLabError
from ipseclab.ikev1.policy import IsakmpPolicy, TransformSet
from ipseclab.peer import Peer
from ipseclab.pools import AddressPool
from ipseclab.trace import ErrorEvent, Event, SaDeleted, SaEstablished, event_to_dict

#: Error codes that do not end an exchange (the engine drops the message and goes on).
NON_TERMINAL_CODES = frozenset(
    {
        "DECRYPTION_FAILED",
        "UNDECRYPTABLE_NOTIFY",
        "INVALID_COOKIE",
        "UNEXPECTED",
        "MALFORMED",
        "TRUNCATED",
        "INVALID_MAJOR_VERSION",
        "INVALID_EXCHANGE_TYPE",
    }
)


@dataclass
class IkeProposal:
    """One ISAKMP policy (phase 1 transform we offer / accept)."""

    encryption: str = "aes128"
    hash: str = "sha1"
    group: int = 14
    lifetime: int = 86400


@dataclass
class EspProposal:
    """One transform set (phase 2)."""

    encryption: str = "aes128"
    integrity: str | None = "sha1"
    pfs_group: int | None = None
    lifetime: int = 3600


@dataclass
class ChildSpec:
    """One IPsec policy from our side: name, local and remote traffic selector."""

    name: str
    local_ts: str
    remote_ts: str


@dataclass
class PeerSpec:
    """Everything ``runpeer`` needs; JSON round-trips through :meth:`to_json`/:meth:`from_json`."""

    name: str
    address: str
    remote: str
    role: str = "initiator"  # "initiator" | "responder"
    mode: str = "main"  # "main" | "aggressive"
    version: int = 1  # the IKE version of the connection
    auth: str = "psk"  # "psk" | "rsa-sig"
    psk: str = ""
    identity: str | None = None  # Identity.parse() text; with rsa-sig the certificate's DN is used
    key_pem: str | None = None  # files (rsa-sig)
    cert_pem: str | None = None
    ca_pem: str | None = None
    ike: list[IkeProposal] = field(default_factory=lambda: [IkeProposal()])
    vips: list[str] = field(default_factory=list)  # remote access: ask the peer for virtual IPs
    pools: dict[str, str] = field(default_factory=dict)  # remote access: pool name -> addrs we lease from
    local_auth: str = ""  # remote access: "eap-md5" — we prove ourselves by EAP (client)
    remote_auth: str = ""  # remote access: "eap-md5" — clients prove themselves by EAP (gateway)
    eap_id: str = ""
    eap_users: dict[str, str] = field(default_factory=dict, repr=False)  # EAP user -> password
    pull: bool = True  # IKEv1 Mode Config pull (False: push)
    esp: list[EspProposal] = field(default_factory=lambda: [EspProposal()])
    children: list[ChildSpec] = field(default_factory=list)
    timeout: float = 20.0
    linger: float = 1.0
    terminate_at_end: bool = False
    events: str | None = None
    result: str | None = None
    ready: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> PeerSpec:
        data = json.loads(text)
        try:
            data["ike"] = [IkeProposal(**p) for p in data.get("ike", [])]
            data["esp"] = [EspProposal(**p) for p in data.get("esp", [])]
            data["children"] = [ChildSpec(**c) for c in data.get("children", [])]
            spec = cls(**data)
        except TypeError as exc:
            raise ConfigError(f"bad peer spec: {exc}") from None
        if spec.role not in ("initiator", "responder"):
            raise ConfigError(f"bad peer spec: role {spec.role!r}")
        return spec


def _credentials(spec: PeerSpec) -> tuple[Any, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from ipseclab.crypto.certs import LabIdentity

    if not (spec.key_pem and spec.cert_pem and spec.ca_pem):
        raise ConfigError("rsa-sig needs key_pem, cert_pem and ca_pem")
    key = serialization.load_pem_private_key(Path(spec.key_pem).read_bytes(), password=None)
    cert = x509.load_pem_x509_certificate(Path(spec.cert_pem).read_bytes())
    ca = x509.load_pem_x509_certificate(Path(spec.ca_pem).read_bytes())
    return LabIdentity(key, cert), ca  # type: ignore[arg-type]


def build_config(spec: PeerSpec) -> PeerConfig:
    """The :class:`PeerConfig` with one connection ``lab`` to ``spec.remote``."""
    policies = [
        IsakmpPolicy(10 * (i + 1), p.encryption, p.hash, spec.auth, p.group, p.lifetime) for i, p in enumerate(spec.ike)
    ]
    tsets = tuple(
        TransformSet(f"ts{i + 1}", p.encryption, p.integrity, "tunnel", p.pfs_group, p.lifetime) for i, p in enumerate(spec.esp)
    )
    children = tuple(ChildConfig(c.name, c.local_ts, c.remote_ts, tsets) for c in spec.children)
    conn = Connection("lab", spec.remote, mode=spec.mode, children=children, version=spec.version,
                      vips=tuple(spec.vips), pools=tuple(spec.pools), local_auth=spec.local_auth,
                      remote_auth=spec.remote_auth, eap_id=spec.eap_id, pull=spec.pull)
    credentials = ca_cert = None
    if spec.auth == "rsa-sig":
        credentials, ca_cert = _credentials(spec)
    return PeerConfig(
        name=spec.name,
        address=spec.address,
        psk=spec.psk.encode() if spec.psk else None,
        identity=Identity.parse(spec.identity) if spec.identity else None,
        credentials=credentials,
        ca_cert=ca_cert,
        isakmp_policies=policies,
        include_default_policy=False,
        connections=[conn],
        pools=[AddressPool(name, addrs) for name, addrs in spec.pools.items()],
        eap_users={user: password.encode() for user, password in spec.eap_users.items()},
    )


@dataclass
class RunState:
    """What the event loop has seen so far."""

    established: bool = False
    errors: list[dict[str, Any]] = field(default_factory=list)
    settled_at: float | None = None


def _settles(event: Event, peer: Peer, wanted_children: int, state: RunState) -> bool:
    """True if this event ends the run (everything up, or a terminal failure)."""
    if isinstance(event, ErrorEvent):
        state.errors.append({"code": event.code, "message": event.message, "notify": event.notify, "sa": event.sa.label})
        return event.code not in NON_TERMINAL_CODES
    if isinstance(event, SaDeleted):
        return True
    if isinstance(event, SaEstablished):
        p1 = any(sa.established for sa in peer.ike_sas.values())
        if p1 and len(peer.child_sas) >= wanted_children:
            state.established = True
            return True
    return False


async def run(spec: PeerSpec) -> int:
    """Run the peer until it settles (plus ``linger``) or times out; write events and result."""
    from ipseclab.runtime.transport.udp import UdpPeerRunner

    peer = Peer(build_config(spec))
    runner = UdpPeerRunner(peer, host=spec.address)
    await runner.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if spec.ready:
        Path(spec.ready).write_text("ready\n")
    events_file = open(spec.events, "w") if spec.events else None  # noqa: SIM115 - closed below
    state = RunState()
    t0 = time.monotonic()
    if spec.role == "initiator":
        runner.initiate("lab")
    deadline = t0 + spec.timeout
    try:
        while not stop.is_set():
            now = time.monotonic()
            end = deadline if state.settled_at is None else min(deadline, state.settled_at + spec.linger)
            if now >= end:
                break
            get = asyncio.ensure_future(runner.events.get())
            stopper = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({get, stopper}, timeout=end - now, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if get not in done:
                get.cancel()
                continue
            event = get.result()
            print(f"[{time.monotonic() - t0:7.3f}] {event.describe()}", flush=True)
            if events_file:
                events_file.write(json.dumps(event_to_dict(event, include_secrets=True)) + "\n")
            if _settles(event, peer, len(spec.children), state) and state.settled_at is None:
                state.settled_at = time.monotonic()
        if spec.terminate_at_end:
            peer.terminate(runner.now())
            runner._flush()
            await asyncio.sleep(0.2)
            while not runner.events.empty():
                event = runner.events.get_nowait()
                print(f"[{time.monotonic() - t0:7.3f}] {event.describe()}", flush=True)
                if events_file:
                    events_file.write(json.dumps(event_to_dict(event, include_secrets=True)) + "\n")
    finally:
        if events_file:
            events_file.close()
        await runner.close()
    ok = state.established and not any(e["code"] not in NON_TERMINAL_CODES for e in state.errors)
    table = peer.sa_table()
    print("SA_TABLE " + json.dumps(table), flush=True)
    if spec.result:
        Path(spec.result).write_text(
            json.dumps(
                {
                    "ok": ok,
                    "established": state.established,
                    "settled": state.settled_at is not None,
                    "errors": state.errors,
                    "sa_table": table,
                    "seconds": round(time.monotonic() - t0, 3),
                },
                indent=2,
            )
        )
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m ipseclab.runtime.netlab.runpeer SPEC.json", file=sys.stderr)
        return 2
    try:
        spec = PeerSpec.from_json(Path(args[0]).read_text())
        return asyncio.run(run(spec))
    except (OSError, IpsecLabError, ValueError) as exc:
        print(f"runpeer: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
