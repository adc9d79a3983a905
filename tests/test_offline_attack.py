"""The Aggressive Mode PSK dictionary attack of lab 3, on in-memory runs and exported pcaps."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ipseclab.demo import DemoOptions, demo_configs
from ipseclab.teaching.lab import LabSession
from ipseclab.teaching.offline_attack import AggressiveCapture, NotAggressiveModeError

WEAK_PSK = b"sunshine"
WORDLIST = ["123456", "password", "letmein", "qwerty", "sunshine", "dragon"]


def _session(
    mode: str = "aggressive", psk: bytes = WEAK_PSK, hash_: str = "sha1", seed: int = 31, **opts: object
) -> LabSession:
    options = DemoOptions(mode=mode, seed=seed, **opts)  # type: ignore[arg-type]
    left, right = demo_configs(options)
    left.psk = right.psk = psk
    if hash_ != "sha1":
        for cfg in (left, right):
            cfg.isakmp_policies = [dataclasses.replace(p, hash=hash_) for p in cfg.isakmp_policies]
    session = LabSession(options, configs=(left, right))
    session.run_to_end()
    return session


@pytest.fixture(scope="module")
def am_session() -> LabSession:
    session = _session()
    assert session.established()
    return session


def test_recovers_the_psk_from_an_in_memory_run(am_session: LabSession) -> None:
    capture = AggressiveCapture.from_events(am_session.events)
    assert capture.crack(WORDLIST) == "sunshine"
    assert capture.initiator_id == "left@lab" and capture.responder_id == "right@lab"
    sa = next(iter(am_session.left.ike_sas.values()))
    assert (capture.icookie, capture.rcookie) == (sa.icookie, sa.rcookie)
    assert (capture.gxi, capture.gxr, capture.ni_b, capture.nr_b) == (sa.gxi, sa.gxr, sa.ni, sa.nr)
    assert capture.sai_b == sa.sai_b
    assert capture.prf.name == "SHA1"


def test_recovers_the_psk_from_the_exported_pcap(am_session: LabSession, tmp_path: Path) -> None:
    pcap, _ = am_session.export(tmp_path)
    capture = AggressiveCapture.from_pcap(pcap)
    assert capture == AggressiveCapture.from_events(am_session.events)
    assert capture.crack(WORDLIST) == "sunshine"


def test_returns_none_when_the_key_is_not_in_the_wordlist(am_session: LabSession) -> None:
    capture = AggressiveCapture.from_events(am_session.events)
    assert capture.crack(["sunshine1", "Sunshine", "sunshin", ""]) is None
    assert capture.crack([]) is None


def test_wordlist_file_lines_and_bytes_candidates(am_session: LabSession, tmp_path: Path) -> None:
    capture = AggressiveCapture.from_events(am_session.events)
    words = tmp_path / "words.txt"
    words.write_text("alpha\r\nbeta\nsunshine\ngamma\n")
    with words.open() as f:
        assert capture.crack(f) == "sunshine"
    assert capture.crack([b"nope", WEAK_PSK]) == "sunshine"
    assert capture.matches(WEAK_PSK) and not capture.matches("nope")


def test_uses_the_negotiated_hash() -> None:
    capture = AggressiveCapture.from_events(_session(hash_="sha256").events)
    assert capture.prf.name == "SHA2-256" and len(capture.hash_r) == 32
    assert capture.crack(WORDLIST) == "sunshine"


def test_refuses_a_main_mode_capture(tmp_path: Path) -> None:
    session = _session(mode="main")
    assert session.established()
    with pytest.raises(NotAggressiveModeError, match="Main Mode") as info:
        AggressiveCapture.from_events(session.events)
    assert "g^xy" in str(info.value)
    pcap, _ = session.export(tmp_path)
    with pytest.raises(NotAggressiveModeError, match="Main Mode"):
        AggressiveCapture.from_pcap(pcap)


def test_refuses_an_exchange_without_message_2() -> None:
    session = _session(mismatch=True)
    assert not session.established()
    with pytest.raises(NotAggressiveModeError, match="no message 2"):
        AggressiveCapture.from_events(session.events)


def test_refuses_signature_authentication() -> None:
    session = _session(auth="rsa")
    assert session.established()
    with pytest.raises(NotAggressiveModeError, match="not pre-shared key"):
        AggressiveCapture.from_events(session.events)


def test_picks_the_exchange_by_initiator_cookie() -> None:
    first, second = _session(), _session(psk=b"dragon", seed=32)
    mixed = [*first.events, *second.events]
    other = AggressiveCapture.from_events(second.events).icookie
    assert other != AggressiveCapture.from_events(first.events).icookie
    assert AggressiveCapture.from_events(mixed).crack(WORDLIST) == "sunshine"
    assert AggressiveCapture.from_events(mixed, icookie=other).crack(WORDLIST) == "dragon"


def test_no_ike_at_all() -> None:
    with pytest.raises(NotAggressiveModeError, match="no Aggressive Mode"):
        AggressiveCapture.from_datagrams([b"\x00" * 10])
