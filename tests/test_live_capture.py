"""Following a capture while it is written (``LiveCapture``, ``LiveCaptureView``).

Without root: a stored charon capture written packet by packet, the keys arriving half-way.
As root: two strongSwan charons in namespaces negotiate while tcpdump captures left's link; the
widgets follow the capture with keys read from charon's own log as it grows — an instructor's
view of a real gateway's exchange.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import pytest

from ipseclab.teaching.capture_view import LiveCapture, LiveCaptureView, charon_keys

DATA = Path(__file__).resolve().parent / "data"


def _rows(keys_dir: Path) -> tuple[list[str], list[str]]:
    read = lambda name: [r for r in (keys_dir / name).read_text().splitlines() if r]  # noqa: E731
    return read("ikev1_decryption_table"), read("esp_sa") if (keys_dir / "esp_sa").exists() else []


def _records(path: Path) -> tuple[bytes, list[bytes]]:
    """A pcap's file header and its records, byte for byte (what tcpdump appends one by one)."""
    data = path.read_bytes()
    order = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    records, off = [], 24
    while off < len(data):
        length = int.from_bytes(data[off + 8 : off + 12], "little" if order == "<" else "big")
        records.append(data[off : off + 16 + length])
        off += 16 + length
    return data[:24], records


def test_a_growing_capture_is_followed_and_decrypted_once_the_keys_arrive(tmp_path: Path) -> None:
    header, records = _records(DATA / "charon_main_psk.pcap")
    pcap = tmp_path / "live.pcap"
    pcap.touch()  # tcpdump has not written the header yet
    have_keys = {"now": False}
    live = LiveCapture(pcap, lambda: _rows(DATA / "charon_main_psk.keys") if have_keys["now"] else ([], []))
    view = LiveCaptureView(live)
    steps: list[str] = []
    live.session.subscribe(steps.append)
    assert live.refresh() == 0 and view.diagram.arrow_labels() == []

    with pcap.open("ab") as f:
        f.write(header)
    for i, record in enumerate(records):
        with pcap.open("ab") as f:
            f.write(record[:20])  # half a packet first, as a reader can catch tcpdump mid-write
        assert live.refresh() == 0
        with pcap.open("ab") as f:
            f.write(record[20:])
        assert live.refresh() == 1
        if i == 4:
            labels = view.diagram.arrow_labels()
            assert [label.split()[0] for label in labels] == ["MM1", "MM2", "MM3", "MM4", "MM5"]
            mm5 = live.session.messages()[4]
            assert mm5.encrypted and mm5.plaintext is None, "no key yet: MM5 stays ciphertext"
            have_keys["now"] = True  # charon logs Ka: the next read decrypts
            live.refresh()
            assert live.session.messages()[4].plaintext is not None
    live.refresh()
    labels = [label.split()[0] for label in view.diagram.arrow_labels()]
    assert labels[:9] == ["MM1", "MM2", "MM3", "MM4", "MM5", "MM6", "QM1", "QM2", "QM3"] and set(labels[9:]) <= {"INFO"}
    assert view.diagram.selected == len(labels) - 1, "the newest arrow is the one selected"
    assert "IDii" in view.diagram.arrow_labels()[4]
    assert steps, "the widgets were told about every change"


@pytest.mark.root
def test_following_two_charons_live_with_keys_from_charons_log() -> None:
    from ipseclab.runtime.netlab.charon import Charon, CharonChild, charon_conn, topology_spawner
    from ipseclab.runtime.netlab.topology import site_to_site

    reason = "needs root (namespaces, charon)" if os.geteuid() != 0 else Charon.available()
    if reason:
        print(f"skipping the live charon capture: {reason}", file=sys.stderr)
        pytest.skip(reason)
    work = Path(tempfile.mkdtemp(prefix="ipl-lc-", dir="/tmp"))  # vici socket paths must stay short
    topo = site_to_site(f"lc{os.getpid() % 10000}", routes=False)
    charons = {role: Charon(work / role) for role in ("left", "right")}
    with topo:
        capture = topo.capture("left", work / "live.pcap")
        try:
            for role, other in (("left", "right"), ("right", "left")):
                me, peer = topo.hosts[role], topo.hosts[other]
                charons[role].start(topology_spawner(topo, role))
                charons[role].load_psk("live-capture-psk")
                child = CharonChild("c1", f"{me.protected[0]}/32", f"{peer.protected[0]}/32")
                charons[role].load_conn("lab", charon_conn(local=me.address, remote=peer.address, children=[child]))
            live = LiveCapture(capture.path, charon_keys(charons["left"].log_text))
            view = LiveCaptureView(live, interval=0.2)
            view.follow_button.value = True  # what the Follow button does
            assert live.following
            result = charons["left"].initiate("c1")
            assert result.ok, result
            deadline = time.monotonic() + 15
            while len(live.session.messages()) < 9 and time.monotonic() < deadline:
                time.sleep(0.2)
            view.follow_button.value = False
            assert not live.following
            labels = [label.split()[0] for label in view.diagram.arrow_labels()]
            assert labels[:9] == ["MM1", "MM2", "MM3", "MM4", "MM5", "MM6", "QM1", "QM2", "QM3"], labels
            assert live.session.left.config.address == topo.hosts["left"].address
            encrypted = [m for m in live.session.messages() if m.encrypted]
            assert encrypted and all(m.plaintext is not None for m in encrypted), "charon's Ka decrypted MM5 onwards"
        finally:
            capture.stop()
            for charon in charons.values():
                charon.stop()
