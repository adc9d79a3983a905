"""What every engine test shares (charon's ``exchange_test_helper`` and aioquic's
``client_and_server()``): a pair of peers on the in-memory network built from plain
configuration objects (not the demo's CLI options), the messages sent, events of
a kind, state asserts, and a fake owner that drives one IKEv1 exchange alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from ipseclab.config import ChildConfig, Connection, Identity, PeerConfig
from ipseclab.crypto.rng import SeededRng
from ipseclab.ikev1.exchange import Exchange, Received
from ipseclab.ikev1.isakmp_sa import IsakmpSa
from ipseclab.ikev1.policy import IsakmpPolicy, TransformSet
from ipseclab.peer import Peer
from ipseclab.runtime.transport.memory import MemoryNetwork
from ipseclab.sa import IpsecSaPair
from ipseclab.trace import Event, MessageEvent, StateChanged
from ipseclab.wire.v1.isakmp import NotifyPayload, Payload

LEFT = "192.0.2.1"
RIGHT = "198.51.100.1"
PSK = b"engine-test-psk"

E = TypeVar("E", bound=Event)


def peer_config(
    name: str,
    address: str,
    remote: str,
    *,
    mode: str = "main",
    children: int = 1,
    psk: bytes = PSK,
    policy: IsakmpPolicy | None = None,
    transform_set: TransformSet | None = None,
    mirrored: bool = False,
    version: int = 1,
) -> PeerConfig:
    """One peer with connection ``site`` to ``remote`` and children ``net1``…; the
    responder's selectors are ``mirrored`` (10.2.x ↔ 10.1.x)."""
    ts = transform_set or TransformSet("ts1")
    nets = [(f"10.1.{i}.0/24", f"10.2.{i}.0/24") for i in range(1, children + 1)]
    kids = tuple(ChildConfig(f"net{i}", *(reversed(n) if mirrored else n), (ts,)) for i, n in enumerate(nets, 1))
    return PeerConfig(
        name=name,
        address=address,
        identity=Identity("user_fqdn", f"{name}@lab") if mode == "aggressive" else None,
        psk=psk,
        isakmp_policies=[policy or IsakmpPolicy(10)],
        connections=[Connection("site", remote, mode, kids, version=version)],
    )


@dataclass
class PeerPair:
    """``left`` initiates connection ``site`` to ``right`` on an in-memory network."""

    network: MemoryNetwork
    left: Peer
    right: Peer

    def initiate(self) -> PeerPair:
        self.network.initiate("left", "site")
        return self

    def run(self) -> PeerPair:
        self.network.run()
        return self

    @property
    def events(self) -> list[Event]:
        return self.network.events


def peer_pair(*, seed: int = 1, left: dict[str, Any] | None = None, right: dict[str, Any] | None = None, **both: Any) -> PeerPair:
    """Two peers; ``both`` goes to both configurations, ``left``/``right`` to one."""
    lcfg = peer_config("left", LEFT, RIGHT, **{**both, **(left or {})})
    rcfg = peer_config("right", RIGHT, LEFT, mirrored=True, **{**both, **(right or {})})
    peers = [Peer(cfg, rng=SeededRng(seed, cfg.name)) for cfg in (lcfg, rcfg)]
    return PeerPair(MemoryNetwork(peers), *peers)


def established_pair(**kw: Any) -> PeerPair:
    return peer_pair(**kw).initiate().run()


# -- what happened -------------------------------------------------------------------


def events_of(events: list[Event], cls: type[E], peer: str | None = None) -> list[E]:
    return [e for e in events if isinstance(e, cls) and (peer is None or e.peer == peer)]


def sent(events: list[Event], peer: str | None = None) -> list[MessageEvent]:
    """Messages put on the wire, in order (retransmissions included)."""
    return [e for e in events_of(events, MessageEvent, peer) if e.direction == "sent"]


def states_of(events: list[Event], peer: str, kind: str = "ike") -> list[str]:
    """The states ``peer``'s SAs of ``kind`` went through, in order."""
    return [e.new for e in events_of(events, StateChanged, peer) if e.sa.kind == kind]


def terminate(network: MemoryNetwork, name: str) -> None:
    """``name`` deletes everything (protected Deletes) and the network delivers it."""
    network.peer(name).terminate(network.now)
    network.collect()
    network.run()


# -- asserts in charon's style -----------------------------------------------------------


def assert_ike_sa_state(peer: Peer, state: str, count: int = 1) -> None:
    got = [str(sa.state) for sa in peer.ike_sas.values()]
    assert got.count(state) == count, f"{peer.name}: IKE SA states {got}, wanted {count} in {state}"


def assert_child_sa_count(peer: Peer, count: int) -> None:
    assert len(peer.child_sas) == count, f"{peer.name}: {len(peer.child_sas)} child SAs, wanted {count}"


# -- one exchange alone ---------------------------------------------------------------------


@dataclass
class FakeOwner:
    """An :class:`~ipseclab.ikev1.exchange.ExchangeOwner` that records instead of sending."""

    config: PeerConfig
    rng: SeededRng = field(default_factory=lambda: SeededRng(1, "fake"))
    now: float = 0.0
    events: list[Event] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    transmitted: list[tuple[list[Payload], bool, bool]] = field(default_factory=list)
    notifies: list[tuple[int, bool]] = field(default_factory=list)
    established: list[IsakmpSa] = field(default_factory=list)
    children: list[IpsecSaPair] = field(default_factory=list)
    failed: list[Exchange] = field(default_factory=list)
    authenticated_from: list[tuple[str, int]] = field(default_factory=list)
    _spi: int = 0x1000

    def emit(self, cls: type[Event], **fields: Any) -> None:
        self.events.append(cls(peer=self.config.name, time=self.now, **fields))

    def count(self, what: str) -> None:
        self.counters[what] = self.counters.get(what, 0) + 1

    def set_state(self, obj: Any, new: str) -> None:
        if obj.state != new:
            old, obj.state = obj.state, new
            self.emit(StateChanged, sa=obj.ref, old=str(old), new=str(new))

    def allocate_spi(self) -> int:
        self._spi += 1
        return self._spi

    def transmit(self, ex: Exchange, payloads: list[Payload], *, encrypt: bool, expect_reply: bool) -> None:
        ex.index += 1
        self.transmitted.append((list(payloads), encrypt, expect_reply))

    def send_notify(self, sa: IsakmpSa, notify_type: int, *, protect: bool, **_: Any) -> None:
        self.notifies.append((notify_type, protect))

    def phase1_established(self, sa: IsakmpSa) -> None:
        self.established.append(sa)

    def child_established(self, sa: IsakmpSa, pair: IpsecSaPair, *, initiator: bool) -> None:
        self.children.append(pair)

    def exchange_failed(self, ex: Exchange) -> None:
        self.failed.append(ex)

    def peer_notify(self, sa: IsakmpSa, notify: NotifyPayload) -> None:
        pass

    def peer_alive(self, sa: IsakmpSa, seq: int) -> None:
        pass

    def initial_contact(self, sa: IsakmpSa) -> None:
        pass

    def has_contact(self, sa: IsakmpSa) -> bool:
        return False

    def send_delete_ike(self, sa: IsakmpSa) -> None:
        self.notifies.append((-1, True))

    def suspect_key_mismatch(self, sa: IsakmpSa) -> None:
        pass

    def authenticated(self, sa: IsakmpSa, received: Received) -> None:
        self.authenticated_from.append(received.src)

    def remote_deleted_ike(self, sa: IsakmpSa) -> None:
        pass

    def remote_deleted_child(self, sa: IsakmpSa, spi: int) -> None:
        pass

    def deliver(self, ex: Exchange, payloads: list[Payload], src: tuple[str, int], dst: tuple[str, int]) -> None:
        """Hand ``ex`` its next message, as the task manager does after decoding it."""
        ex.index += 1
        ex.handle(Received(payloads, src, dst, None))
