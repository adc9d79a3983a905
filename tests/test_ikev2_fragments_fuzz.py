"""Hypothesis against IKEv2 reassembly (RFC 7383 §2.6): any order, repeats, changed bytes,
made-up fragments and other totals — the responder never raises, never keeps more than one
message per direction, stays established, and a complete set of genuine fragments in any
order is answered once."""

from __future__ import annotations

from engine_support import LEFT, RIGHT, established_pair
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipseclab.ikev2.protection import seal_fragments
from ipseclab.ikev2.task_manager import MAX_REASSEMBLY_BYTES
from ipseclab.trace import MessageEvent
from ipseclab.wire.v2.constants import ExchangeType, HeaderFlag
from ipseclab.wire.v2.message import NotifyPayload

PAIR = established_pair(version=2)
LEFT_SA = next(iter(PAIR.left.ike_sas.values()))
PAYLOADS = [NotifyPayload(40000 + i, data=bytes([i]) * 60) for i in range(12)]


def fragments() -> list[bytes]:
    raws, _ = seal_fragments(LEFT_SA, ExchangeType.INFORMATIONAL, LEFT_SA.next_request_id, HeaderFlag.INITIATOR,
                             PAYLOADS, 200, lambda: bytes(16))
    return raws


GENUINE = fragments()

ops = st.lists(
    st.one_of(
        st.tuples(st.just("genuine"), st.integers(0, len(GENUINE) - 1)),
        st.tuples(st.just("flip"), st.integers(0, len(GENUINE) - 1), st.integers(28, 199)),
        st.tuples(st.just("renumber"), st.integers(0, len(GENUINE) - 1), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
        st.tuples(st.just("junk"), st.binary(min_size=0, max_size=300)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(ops, st.permutations(range(len(GENUINE))))
def test_reassembly_survives_anything(steps: list, order: list[int]) -> None:
    pp = established_pair(version=2)
    right = pp.right
    engine = right.engine(2)
    sa = next(iter(right.ike_sas.values()))
    mine = next(iter(pp.left.ike_sas.values()))
    # the pair is seeded: the same SPIs and keys as the module's PAIR, so GENUINE fits this SA
    assert (mine.spi_i, mine.spi_r) == (LEFT_SA.spi_i, LEFT_SA.spi_r)
    for step in steps:
        kind = step[0]
        if kind == "genuine":
            data = GENUINE[step[1]]
        elif kind == "flip":
            raw = bytearray(GENUINE[step[1]])
            raw[step[2] % len(raw)] ^= 0x40
            data = bytes(raw)
        elif kind == "renumber":
            raw = bytearray(GENUINE[step[1]])
            raw[32:34], raw[34:36] = step[2].to_bytes(2, "big"), step[3].to_bytes(2, "big")
            data = bytes(raw)
        else:
            data = GENUINE[0][:28] + step[1]
        right.receive_datagram(data, (LEFT, 500), (RIGHT, 500), 1.0)
        assert len(engine._reassembly) <= 2
        assert all(r.size <= MAX_REASSEMBLY_BYTES for r in engine._reassembly.values())
        assert sa.established
    for i in order:  # the genuine set, in any order: the request is put together and answered
        right.receive_datagram(GENUINE[i], (LEFT, 500), (RIGHT, 500), 2.0)
    assert sa.established
    sent = [e for e in (right.next_event() for _ in range(100000)) if e is not None]
    replies = [e for e in sent if isinstance(e, MessageEvent) and e.direction == "sent" and e.exchange == "INFORMATIONAL"]
    # answered once; a genuine first fragment seen again afterwards gets the same answer again (§2.6.1)
    assert len([r for r in replies if not r.retransmission]) == 1, [r.summary for r in replies]
