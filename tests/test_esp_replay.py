"""Anti-replay (RFC 4303 §3.4.3, Appendix A): the window alone and inside EspSa.unprotect."""

from __future__ import annotations

import random

import pytest
from esp_support import sa_pair

from ipseclab.esp import EspDrop, ReplayWindow


def _accept(window: ReplayWindow, seq: int) -> str:
    verdict = window.check(seq)
    if verdict == "ok":
        window.update(seq)
    return verdict


@pytest.mark.parametrize("size", [64, 1024])
def test_window_duplicates_old_and_reordered(size) -> None:
    w = ReplayWindow(size)
    assert _accept(w, 0) == "replayed"  # 0 is never sent
    assert [_accept(w, s) for s in (1, 2, 3)] == ["ok"] * 3
    assert _accept(w, 2) == "replayed"
    assert _accept(w, 10) == "ok" and w.top == 10
    assert [_accept(w, s) for s in (9, 4, 5)] == ["ok"] * 3  # late but inside the window
    assert _accept(w, 9) == "replayed"
    assert _accept(w, size + 10) == "ok"
    assert _accept(w, 11) == "ok"  # top - 11 = size - 1: the window's last slot
    assert _accept(w, 10) == "too old"  # top - 10 = size: just left of the window
    assert w.received()[:2] == [size + 10, 11]
    assert w.state() == {"size": size, "top": size + 10, "received": 2}


def test_window_big_jump_forgets_everything_and_stays_small() -> None:
    w = ReplayWindow(64)
    for s in range(1, 50):
        w.update(s)
    w.update(1 << 40)
    assert w.bitmap == 1 and w.top == 1 << 40
    assert w.check((1 << 40) - 1) == "ok" and w.check((1 << 40) - 64) == "too old"


@pytest.mark.parametrize("size", [31, 33, 0, 4128, "64"])
def test_window_size_must_be_a_multiple_of_32_up_to_4096(size) -> None:
    with pytest.raises(ValueError):
        ReplayWindow(size)  # type: ignore[arg-type]


def test_window_picture() -> None:
    w = ReplayWindow(32)
    for s in (1, 3, 4):
        w.update(s)
    pic = w.picture(8)
    # only sequence numbers that exist (1..4) are drawn, and the left label says where it starts
    assert pic == "[1] #.## [4]"  # 1, 3 and 4 received
    for s in range(5, 21):
        w.update(s)
    assert w.picture(8) == "[13] ######## [20]"


def test_esn_inference_cases_a_and_b() -> None:
    """RFC 4303 Appendix A2.2, window W = 64."""
    w = ReplayWindow(64)
    w.update((5 << 32) | 1000)  # case A: Tl >= W - 1
    assert w.infer(1000 - 63) == (5 << 32) | 937  # bottom of the window: same subspace
    assert w.infer(5000) == (5 << 32) | 5000  # ahead
    assert w.infer(10) == (6 << 32) | 10  # below the window: the next subspace
    w.update((6 << 32) | 10)  # case B: the window straddles 2^32
    assert w.infer(0xFFFFFFF0) == (5 << 32) | 0xFFFFFFF0  # late packet from the previous subspace
    assert w.infer(5) == (6 << 32) | 5
    assert w.infer(100) == (6 << 32) | 100
    fresh = ReplayWindow(64)  # before the first wrap there is no previous subspace
    assert fresh.infer(0xFFFFFFF0) == 0xFFFFFFF0


@pytest.mark.parametrize("size", [64, 1024])
def test_sa_drops_duplicates_and_old_packets_and_accepts_reordering(size) -> None:
    tx, rx = sa_pair(20, 128, None, replay_window=size)
    packets = [tx.protect(i.to_bytes(2, "big"), 4) for i in range(size + 20)]
    order = list(range(20, size + 20))
    random.Random(size).shuffle(order)  # every packet of the last `size` in random order
    for i in order:
        assert rx.unprotect(packets[i])[0] == i.to_bytes(2, "big")
    for i in order[:5]:
        with pytest.raises(EspDrop) as exc:
            rx.unprotect(packets[i])
        assert exc.value.reason == "replayed"
    for i in range(3):  # sequence numbers 1..3: left of the window
        with pytest.raises(EspDrop) as exc:
            rx.unprotect(packets[i])
        assert exc.value.reason == "too old"
    assert rx.counters.replay_drops == 8
    assert rx.counters.by_reason == {"replayed": 5, "too old": 3}
    assert rx.counters.packets == size


@pytest.mark.parametrize("size", [64, 1024])
def test_sa_inline_window_behaves_like_replay_window(size) -> None:
    """unprotect inlines check/update for speed: hold it to the ReplayWindow model."""
    rng = random.Random(size + 1)
    tx, rx = sa_pair(20, 128, None, replay_window=size)
    packets = [tx.protect(b"", 59) for _ in range(3 * size)]
    model = ReplayWindow(size)
    for _ in range(6 * size):
        seq = max(1, min(len(packets), int(rng.gauss(len(packets) / 2, size))))
        expected = _accept(model, seq)
        try:
            rx.unprotect(packets[seq - 1])
            got = "ok"
        except EspDrop as exc:
            got = exc.reason
        assert got == expected, seq
        assert (rx.replay.top, rx.replay.bitmap) == (model.top, model.bitmap)


def test_window_is_checked_before_and_updated_after_integrity() -> None:
    tx, rx = sa_pair(12, 128, 2)
    first = tx.protect(b"1", 4)
    rx.unprotect(first)
    forged = bytearray(tx.protect(b"2", 4))
    forged[4:8] = (1000).to_bytes(4, "big")  # a far-ahead sequence number, ICV now wrong
    with pytest.raises(EspDrop) as exc:
        rx.unprotect(bytes(forged))
    assert exc.value.reason == "icv failure"
    assert rx.replay.top == 1  # a forgery never moves the window
    # a replay is refused by the window without even checking the ICV
    tampered_replay = first[:-1] + bytes([first[-1] ^ 1])
    with pytest.raises(EspDrop) as exc:
        rx.unprotect(tampered_replay)
    assert exc.value.reason == "replayed"
    assert rx.counters.icv_failures == 1 and rx.counters.replay_drops == 1


@pytest.mark.parametrize("esp_id,bits,auth", [(20, 128, None), (12, 256, 2)], ids=["gcm", "cbc-sha1"])
def test_esn_wrap_with_reordering_across_the_boundary(esp_id, bits, auth) -> None:
    start = (2 << 32) - 40
    tx, rx = sa_pair(esp_id, bits, auth, esn=True, seq=start)
    rx.replay.update(start)
    packets = [tx.protect(i.to_bytes(2, "big"), 4) for i in range(80)]  # low bits wrap after 40
    # delivered out of order, each at most 30 places from its turn (inside the 64 window)
    order = sorted(range(80), key=lambda i: i + random.Random(i).randrange(30))
    for i in order:
        assert rx.unprotect(packets[i])[0] == i.to_bytes(2, "big")
    assert rx.replay.top == start + 80 and (start + 80) >> 32 == 2
    with pytest.raises(EspDrop) as exc:
        rx.unprotect(packets[45])  # seq low bits 5 after the wrap, already received
    assert exc.value.reason == "replayed"
