"""Exports on a shared host: no write through a planted link, files 0600 whatever the
umask, and ``ipseclab decode`` exits non-zero on a cut or corrupt capture, like tshark."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ipseclab.demo import DemoOptions, run_demo
from ipseclab.export import export_run, write_keys, write_pcap
from ipseclab.files import UnsafePathError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def events() -> list:
    return run_demo(DemoOptions(seed=3)).events


def test_a_planted_symlink_is_not_followed(tmp_path: Path, events: list) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "esp_sa").symlink_to(victim)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        write_keys(events, keys)
    (tmp_path / "run.pcap").symlink_to(victim)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        write_pcap(events, tmp_path / "run.pcap")
    assert victim.read_text() == "precious\n"


def test_a_planted_hard_link_is_not_truncated(tmp_path: Path, events: list) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    keys = tmp_path / "keys"
    keys.mkdir()
    os.link(victim, keys / "ikev1_decryption_table")
    with pytest.raises(UnsafePathError, match="hard links"):
        write_keys(events, keys)
    assert victim.read_text() == "precious\n"


def test_an_export_directory_linked_by_another_user_is_refused(tmp_path: Path, events: list) -> None:
    if os.geteuid() != 0:
        pytest.skip("planting a link owned by another user needs root (CI runs as root)")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "keys").symlink_to(elsewhere)
    os.lchown(tmp_path / "keys", 65534, 65534)  # planted by "nobody"
    with pytest.raises(UnsafePathError, match="uid 65534"):
        export_run(events, tmp_path / "keys")
    assert not list(elsewhere.iterdir())


def test_exports_are_0600_whatever_the_umask(tmp_path: Path, events: list) -> None:
    old = os.umask(0)
    try:
        pcap, keys = export_run(events, tmp_path / "out")
    finally:
        os.umask(old)
    for path in (pcap, keys / "ikev1_decryption_table", keys / "esp_sa"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    # and an existing file with loose permissions is tightened, not kept
    loose = tmp_path / "out" / "again.pcap"
    loose.write_bytes(b"")
    loose.chmod(0o666)
    write_pcap(events, loose)
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600


def _decode(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ipseclab.cli", "decode", "--brief", str(path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_decode_exits_non_zero_on_a_cut_capture_after_printing_what_it_could(tmp_path: Path, events: list) -> None:
    whole = tmp_path / "run.pcap"
    write_pcap(events, whole)
    good = _decode(whole)
    assert good.returncode == 0 and good.stderr.count("cut short") == 0
    data = whole.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:-30])
    result = _decode(cut)
    assert result.returncode == 2
    assert "cut short in the middle of packet 9" in result.stderr
    assert result.stdout.count("Main Mode") >= 6, "the packets before the cut are decoded"
    corrupt = tmp_path / "corrupt.pcap"
    corrupt.write_bytes(data[:24] + b"\xff" * 16 + data[40:])
    result = _decode(corrupt)
    assert result.returncode == 2 and "impossible length" in result.stderr
