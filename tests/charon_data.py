"""The strongSwan reference captures in tests/data (made by tests/data/make_charon_captures.py)."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
SCENARIOS = [
    "charon_main_psk",
    "charon_main_psk_pfs_2children",
    "charon_aggressive_psk",
    "charon_aggressive_psk_qm_retransmit",
]
