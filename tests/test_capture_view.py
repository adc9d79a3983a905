"""A capture from any implementation in the teaching widgets: charon's exchanges (decrypted
with the key tables from its log) drawn as the sequence diagram, opened in the inspector, and
its ESP packets listed decrypted and checked."""

from __future__ import annotations

import pytest
from charon_data import DATA

from ipseclab.teaching.capture_view import CaptureSession


def test_charons_exchange_as_the_labs_show_ours() -> None:
    s = CaptureSession(DATA / "charon_main_psk.pcap", DATA / "charon_main_psk.keys")
    labels = [f"{m.exchange} {m.index}" for m in s.messages()]
    assert labels[:9] == [f"Main Mode {i}" for i in range(1, 7)] + [f"Quick Mode {i}" for i in range(1, 4)]
    assert [m.peer for m in s.messages()[:6]] == ["initiator", "responder"] * 3
    mm5 = s.messages()[4]
    assert mm5.encrypted and mm5.plaintext is not None and "IDii" in mm5.summary
    names = [n["name"] for n in mm5.tree["children"]]
    assert names[:2] == ["Header", "Encrypted payloads"] and {"Identification", "Hash"} <= set(names), names
    data = s.data_lines()
    assert data and all("ICV good" in line for line in data if "SPI" in line)
    assert any("inner: IP / ICMP" in line for line in data)


def test_without_keys_the_encrypted_messages_stay_closed() -> None:
    s = CaptureSession(DATA / "charon_main_psk.pcap")
    mm5 = s.messages()[4]
    assert mm5.encrypted and mm5.plaintext is None and "encrypted bytes" in mm5.summary


def test_retransmissions_are_marked() -> None:
    s = CaptureSession(DATA / "charon_aggressive_psk_qm_retransmit.pcap", DATA / "charon_aggressive_psk_qm_retransmit.keys")
    again = [m for m in s.messages() if m.retransmission]
    assert again and all(m.exchange == "Quick Mode" for m in again)


def test_the_capture_view_widget() -> None:
    pytest.importorskip("ipywidgets")
    from ipseclab.teaching.capture_view import CaptureView

    view = CaptureView(DATA / "charon_main_psk.pcap", DATA / "charon_main_psk.keys")
    assert view.diagram.arrow_labels()[0].startswith("MM1  HDR, SA")
    assert view.inspector.message is view.session.messages()[0]
    view.diagram.select(4)
    assert view.inspector.message.summary.startswith("HDR*, IDii, HASH_I")
    assert "ICV good" in view.children[2].value
