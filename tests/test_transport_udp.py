"""Two peers on real UDP sockets (127.0.0.1, free high ports) via :class:`UdpPeerRunner`.

Main Mode + Quick Mode must come up over the loopback, both SA tables must agree,
and the trace must show every message with the real socket addresses.  A runner
that loses the first datagram it receives shows that the retransmission timer
(``PeerConfig.retransmit_timeout``) brings the exchange up anyway.  Every wait is
bounded by :func:`asyncio.wait_for`, so a hang fails instead of blocking.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter, defaultdict
from collections.abc import Callable

import pytest
from ports import free_udp_ports

from ipseclab.config import PeerConfig
from ipseclab.crypto.rng import SeededRng
from ipseclab.demo import DemoOptions, demo_configs
from ipseclab.peer import Peer
from ipseclab.runtime.transport.udp import UdpPeerRunner
from ipseclab.trace import Event, MessageEvent, NatDetected, PortFloated, Retransmitted

HOST = "127.0.0.1"
TIMEOUT = 10.0




def loopback_configs(
    opts: DemoOptions, ports: list[int], retransmit_timeout: float
) -> tuple[PeerConfig, PeerConfig]:
    """The demo's peers moved to 127.0.0.1: left on ports[0]/[1], right on ports[2]/[3]."""
    left, right = demo_configs(opts)

    def move(cfg: PeerConfig, port: int, natt: int, remote_port: int) -> PeerConfig:
        address_identity = cfg.identity is not None and cfg.identity.kind == "address"
        return dataclasses.replace(
            cfg,
            address=HOST,
            port=port,
            natt_port=natt,
            identity=None if address_identity else cfg.identity,
            connections=[
                dataclasses.replace(c, remote_address=HOST, remote_port=remote_port)
                for c in cfg.connections
            ],
            retransmit_timeout=retransmit_timeout,
            retransmit_tries=5,
        )

    return move(left, ports[0], ports[1], ports[2]), move(right, ports[2], ports[3], ports[0])


class LossyRunner(UdpPeerRunner):
    """Loses the first ``lose`` datagrams that arrive (a lossy link in front of the peer)."""

    def __init__(self, peer: Peer, *, host: str, lose: int = 1) -> None:
        super().__init__(peer, host=host)
        self.lose = lose
        self.lost: list[bytes] = []

    def receive(self, batch: list[tuple[bytes, tuple[str, int], int]]) -> None:
        kept = []
        for item in batch:
            if len(self.lost) < self.lose:
                self.lost.append(item[0])
            else:
                kept.append(item)
        if kept:
            super().receive(kept)


@dataclasses.dataclass
class Result:
    left: Peer
    right: Peer
    ports: list[int]
    events: dict[str, list[Event]]  # per peer, from the runner's queue
    heard: dict[str, list[Event]]  # per peer, from a listener
    right_runner: UdpPeerRunner


def _established(peer: Peer, children: int) -> bool:
    return (
        any(sa.established for sa in peer.ike_sas.values()) and len(peer.child_sas) == children
    )


async def _run(
    opts: DemoOptions, make_right: Callable[[Peer], UdpPeerRunner] | None, retransmit_timeout: float
) -> Result:
    for attempt in range(5):
        ports = free_udp_ports(4)
        left_cfg, right_cfg = loopback_configs(opts, ports, retransmit_timeout)
        left = Peer(left_cfg, rng=SeededRng(300 + attempt, "left"))
        right = Peer(right_cfg, rng=SeededRng(300 + attempt, "right"))
        lr = UdpPeerRunner(left, host=HOST)
        rr = make_right(right) if make_right else UdpPeerRunner(right, host=HOST)
        try:
            await lr.start()
            await rr.start()
            break
        except OSError:  # a port was taken in between: try other ones
            await lr.close()
            await rr.close()
    else:  # pragma: no cover
        pytest.fail("could not bind four UDP ports on 127.0.0.1")
    heard: dict[str, list[Event]] = {"left": [], "right": []}
    lr.listeners.append(heard["left"].append)
    rr.listeners.append(heard["right"].append)

    async def until_up() -> None:
        while not (_established(left, opts.policies) and _established(right, opts.policies)):
            await asyncio.sleep(0.005)

    try:
        lr.initiate("site")
        await asyncio.wait_for(until_up(), TIMEOUT)
    finally:
        await lr.close()
        await rr.close()
    events = {}
    for name, runner in (("left", lr), ("right", rr)):
        events[name] = []
        while not runner.events.empty():
            events[name].append(runner.events.get_nowait())
    return Result(left, right, ports, events, heard, rr)


def run(
    opts: DemoOptions,
    make_right: Callable[[Peer], UdpPeerRunner] | None = None,
    *,
    retransmit_timeout: float = 5.0,
) -> Result:
    """Run both peers until every SA is up; a long retransmit timeout by default, so a
    loss-free run never retransmits however slow the machine is."""
    return asyncio.run(asyncio.wait_for(_run(opts, make_right, retransmit_timeout), TIMEOUT + 5))


def _check_tables_agree(res: Result, children: int) -> None:
    lt, rt = res.left.sa_table(), res.right.sa_table()
    (li,), (ri,) = lt["isakmp"], rt["isakmp"]
    assert li["cookies"] == ri["cookies"]
    assert (li["role"], ri["role"]) == ("initiator", "responder")
    assert li["state"] == ri["state"] == "QM_IDLE"
    p = res.ports
    assert (li["local"], li["remote"]) == (f"{HOST}:{p[0]}", f"{HOST}:{p[2]}")
    assert (ri["local"], ri["remote"]) == (f"{HOST}:{p[2]}", f"{HOST}:{p[0]}")
    assert li["suite"] == ri["suite"] is not None
    assert len(lt["ipsec"]) == len(rt["ipsec"]) == children
    right_by_in = {s["spi_in"]: s for s in rt["ipsec"]}
    for s in lt["ipsec"]:
        theirs = right_by_in[s["spi_out"]]
        assert theirs["spi_out"] == s["spi_in"]
        assert (theirs["local_ts"], theirs["remote_ts"]) == (s["remote_ts"], s["local_ts"])
        assert theirs["udp_encapsulated"] is s["udp_encapsulated"] is False
    # and the keys behind the table: one side's outbound SA is the other's inbound
    right_in = {pair.inbound.spi: pair.inbound for pair in res.right.child_sas}
    for pair in res.left.child_sas:
        assert pair.outbound.enc_key == right_in[pair.outbound.spi].enc_key
        assert pair.outbound.integ_key == right_in[pair.outbound.spi].integ_key


def _messages(res: Result, peer: str, direction: str) -> list[MessageEvent]:
    return [e for e in res.events[peer] if isinstance(e, MessageEvent) and e.direction == direction]


@pytest.mark.parametrize(("pfs", "policies"), [(None, 1), (14, 2)])
def test_main_and_quick_mode_over_udp(pfs: int | None, policies: int) -> None:
    res = run(DemoOptions(pfs=pfs, policies=policies))
    _check_tables_agree(res, policies)
    left_addr, right_addr = (HOST, res.ports[0]), (HOST, res.ports[2])

    sent = _messages(res, "left", "sent")
    assert [(e.exchange, e.index) for e in sent[:3]] == [("Main Mode", i) for i in (1, 3, 5)]
    quick: dict[int, list[int]] = defaultdict(list)
    for e in sent[3:]:
        assert e.exchange == "Quick Mode"
        quick[e.message_id].append(e.index)
    assert len(quick) == policies and all(v == [1, 3] for v in quick.values())
    assert all((e.src, e.dst) == (left_addr, right_addr) and not e.non_esp_marker for e in sent)
    replies = _messages(res, "right", "sent")
    assert len(replies) == 3 + policies
    assert all((e.src, e.dst) == (right_addr, left_addr) for e in replies)
    # what arrived is what was sent, with the real source port the socket reported
    received = _messages(res, "right", "received")
    assert Counter((e.raw, e.src, e.dst) for e in received) == Counter(
        (e.raw, e.src, e.dst) for e in sent
    )
    back = _messages(res, "left", "received")
    assert Counter((e.raw, e.src, e.dst) for e in back) == Counter(
        (e.raw, e.src, e.dst) for e in replies
    )
    assert not any(e.retransmission for e in sent + replies)

    # NAT-D computed over the real addresses and ports: no NAT, no float to the NAT-T port
    nat = [e for name in ("left", "right") for e in res.events[name] if isinstance(e, NatDetected)]
    assert len(nat) == 2 and not any(e.local_behind_nat or e.remote_behind_nat for e in nat)
    assert not any(
        isinstance(e, PortFloated) for name in ("left", "right") for e in res.events[name]
    )

    for name in ("left", "right"):
        assert res.heard[name] == res.events[name]  # listeners see exactly the queue
        seqs = [e.seq for e in res.events[name]]
        assert seqs == list(range(1, len(seqs) + 1))


def test_lost_first_datagram_is_retransmitted() -> None:
    holder: dict[str, LossyRunner] = {}

    def lossy(peer: Peer) -> UdpPeerRunner:
        holder["right"] = LossyRunner(peer, host=HOST, lose=1)
        return holder["right"]

    res = run(DemoOptions(), lossy, retransmit_timeout=0.2)
    _check_tables_agree(res, 1)
    sent = _messages(res, "left", "sent")
    mm1 = [e for e in sent if (e.exchange, e.index) == ("Main Mode", 1)]
    # the original, then at least one identical copy (more only on a very slow machine)
    assert len(mm1) >= 2 and not mm1[0].retransmission
    assert all(e.retransmission for e in mm1[1:])
    assert {e.raw for e in mm1} == {holder["right"].lost[0]}
    retrans = [e for e in res.events["left"] if isinstance(e, Retransmitted)]
    assert (retrans[0].exchange, retrans[0].index, retrans[0].attempt, retrans[0].reason) == (
        "Main Mode",
        1,
        1,
        "timeout",
    )
    # the responder never saw the lost copy: one MM1, and it started from there
    got = [e for e in _messages(res, "right", "received") if e.exchange == "Main Mode"]
    assert [e.index for e in got] == [1, 3, 5]
    assert got[0].raw == mm1[0].raw
    counts: dict[str, int] = defaultdict(int)
    for e in _messages(res, "right", "received"):
        counts[e.exchange] += 1
    assert dict(counts) == {"Main Mode": 3, "Quick Mode": 2}
