"""The two-peer demo behind ``ipseclab demo`` and the notebooks.

``left`` (192.0.2.1, protecting 10.1.x.0/24) initiates to ``right`` (198.51.100.1,
protecting 10.2.x.0/24).  Options choose Main or Aggressive Mode, PSK or RSA
signatures, PFS, the number of IPsec policies (one Quick Mode each), a deliberate
proposal mismatch or wrong PSK, and a seed for reproducible output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ipseclab.config import ChildConfig, Connection, Identity, PeerConfig
from ipseclab.crypto.rng import Rng, SeededRng, SystemRng
from ipseclab.peer import Peer
from ipseclab.policy import IsakmpPolicy, TransformSet
from ipseclab.trace import ErrorEvent, Event, PolicyDecision, SaEstablished
from ipseclab.transport.memory import MemoryNetwork

LEFT_ADDRESS = "192.0.2.1"
RIGHT_ADDRESS = "198.51.100.1"
DEMO_PSK = b"ipseclab-demo-psk"


@dataclass
class DemoOptions:
    """What ``ipseclab demo`` can vary."""

    mode: str = "main"
    auth: str = "psk"
    pfs: int | None = None
    policies: int = 1
    mismatch: bool = False
    wrong_psk: bool = False
    seed: int | None = None
    group: int = 14
    left_lifetime: int = 86400
    right_lifetime: int = 86400
    esp_lifetime_left: int = 3600
    esp_lifetime_right: int = 3600


def _rng(seed: int | None, label: str) -> Rng:
    return SeededRng(seed, label) if seed is not None else SystemRng()


def demo_configs(opts: DemoOptions) -> tuple[PeerConfig, PeerConfig]:
    """Both peers' configurations for the demo."""
    auth = "rsa-sig" if opts.auth == "rsa" else "psk"
    left_policy = IsakmpPolicy(10, "aes128", "sha1", auth, opts.group, opts.left_lifetime)
    right_policy = IsakmpPolicy(
        10, "aes128", "sha256" if opts.mismatch else "sha1", auth, opts.group, opts.right_lifetime
    )
    ts_left = TransformSet("ts1", "aes128", "sha1", "tunnel", opts.pfs, opts.esp_lifetime_left)
    ts_right = TransformSet("ts1", "aes128", "sha1", "tunnel", opts.pfs, opts.esp_lifetime_right)
    left_children = tuple(
        ChildConfig(f"net{i}", f"10.1.{i}.0/24", f"10.2.{i}.0/24", (ts_left,)) for i in range(1, opts.policies + 1)
    )
    right_children = tuple(
        ChildConfig(f"net{i}", f"10.2.{i}.0/24", f"10.1.{i}.0/24", (ts_right,)) for i in range(1, opts.policies + 1)
    )
    left = PeerConfig(
        name="left",
        address=LEFT_ADDRESS,
        identity=Identity("user_fqdn", "left@lab") if opts.mode == "aggressive" else None,
        psk=DEMO_PSK,
        isakmp_policies=[left_policy],
        connections=[Connection("site", RIGHT_ADDRESS, opts.mode, left_children)],
    )
    right = PeerConfig(
        name="right",
        address=RIGHT_ADDRESS,
        identity=Identity("user_fqdn", "right@lab") if opts.mode == "aggressive" else None,
        psk=b"not-the-same-psk" if opts.wrong_psk else DEMO_PSK,
        isakmp_policies=[right_policy],
        connections=[Connection("site", LEFT_ADDRESS, opts.mode, right_children)],
    )
    if opts.auth == "rsa":
        from ipseclab.crypto.certs import issue_peer_cert, make_lab_ca

        ca = make_lab_ca()
        left.credentials = issue_peer_cert(ca, "left", ip_addresses=[LEFT_ADDRESS])
        right.credentials = issue_peer_cert(ca, "right", ip_addresses=[RIGHT_ADDRESS])
        left.ca_cert = right.ca_cert = ca.cert
    return left, right


@dataclass
class DemoRun:
    """A demo's network, its trace and its verdict."""

    options: DemoOptions
    network: MemoryNetwork
    events: list[Event] = field(default_factory=list)

    @property
    def left(self) -> Peer:
        return self.network.peer("left")

    @property
    def right(self) -> Peer:
        return self.network.peer("right")

    def established(self) -> bool:
        """Phase 1 on both sides and every Quick Mode's SA pair on both sides."""
        want = self.options.policies
        for peer in (self.left, self.right):
            if not any(sa.established for sa in peer.isakmp_sas.values()):
                return False
            if len(peer.ipsec_sas) < want:
                return False
        return True

    def explanation(self) -> list[str]:
        """Why it failed, in words: rejected policy decisions and errors."""
        lines: list[str] = []
        for e in self.network.events:
            if isinstance(e, PolicyDecision) and not e.accepted:
                lines.append(f"[{e.peer}] phase {e.phase} proposal rejected:")
                lines += [f"    {x}" for x in e.explanation]
            elif isinstance(e, ErrorEvent):
                lines.append(f"[{e.peer}] {e.code}: {e.message}")
        return lines

    def established_events(self) -> list[SaEstablished]:
        return [e for e in self.network.events if isinstance(e, SaEstablished)]


def make_demo(opts: DemoOptions) -> DemoRun:
    """Build the two peers on an in-memory network, not yet started."""
    left_cfg, right_cfg = demo_configs(opts)
    left = Peer(left_cfg, rng=_rng(opts.seed, "left"))
    right = Peer(right_cfg, rng=_rng(opts.seed, "right"))
    net = MemoryNetwork([left, right])
    return DemoRun(opts, net)


def run_demo(opts: DemoOptions) -> DemoRun:
    """Run the demo to completion (or failure) on the in-memory network."""
    run = make_demo(opts)
    run.network.initiate("left", "site")
    run.network.run()
    run.events = run.network.events
    return run
