"""ipseclab.crypto.rng: SystemRng and the reproducible SeededRng."""

from __future__ import annotations

import pytest

from ipseclab.crypto.rng import Rng, SeededRng, SystemRng
from ipseclab.errors import CryptoError


def test_system_rng_lengths_and_protocol() -> None:
    rng = SystemRng()
    assert isinstance(rng, Rng)
    assert len(rng.random_bytes(32)) == 32
    assert rng.random_bytes(0) == b""
    assert rng.random_bytes(16) != rng.random_bytes(16)


def test_seeded_rng_is_reproducible() -> None:
    a, b = SeededRng(42), SeededRng(42)
    assert isinstance(a, Rng)
    assert a.random_bytes(40) == b.random_bytes(40)
    assert a.random_bytes(7) == b.random_bytes(7)


def test_seeded_rng_labels_and_seeds_separate_streams() -> None:
    base = SeededRng(42).random_bytes(32)
    assert SeededRng(42, "initiator").random_bytes(32) != base
    assert SeededRng(43).random_bytes(32) != base
    assert SeededRng(42, "initiator").random_bytes(32) != SeededRng(42, "responder").random_bytes(
        32
    )


def test_fork_is_independent_of_consumption() -> None:
    fresh = SeededRng(7, "lab")
    used = SeededRng(7, "lab")
    used.random_bytes(1000)
    assert fresh.fork("peer").random_bytes(16) == used.fork("peer").random_bytes(16)
    assert fresh.fork("peer").label == "lab/peer"
    assert SeededRng(7).fork("x").label == "x"
    assert fresh.fork("a").random_bytes(16) != fresh.fork("b").random_bytes(16)


def test_repr_and_bad_counts() -> None:
    assert repr(SeededRng(1, "x")) == "SeededRng(seed=1, label='x')"
    assert repr(SystemRng()) == "SystemRng()"
    with pytest.raises(CryptoError):
        SeededRng(1).random_bytes(-1)
    with pytest.raises(CryptoError):
        SystemRng().random_bytes(-1)
