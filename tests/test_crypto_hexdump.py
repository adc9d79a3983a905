"""ipseclab.crypto.hexdump: hex as pasted from RFCs and strongSwan logs."""

from __future__ import annotations

import pytest

from ipseclab.crypto.hexdump import parse_strongswan_hexdump, unhex
from ipseclab.errors import CryptoError


def test_unhex_accepts_common_spellings() -> None:
    assert unhex("0x8ba4CBc7") == b"\x8b\xa4\xcb\xc7"
    assert unhex("8b a4\ncb:c7") == b"\x8b\xa4\xcb\xc7"
    assert unhex("C88F01F5 10D9AC3F") == bytes.fromhex("c88f01f510d9ac3f")
    assert unhex("") == b""
    with pytest.raises(CryptoError):
        unhex("abc")
    with pytest.raises(CryptoError):
        unhex("zz")


DUMP = """\
Nov 24 10:00:00 09[IKE] shared Diffie Hellman secret => 20 bytes @ 0x7f3a2c001b60
Nov 24 10:00:00 09[IKE]    0: 8B A4 CB C7 3C 01 87 30 1D C1 9A 97 58 23 85 4D  ....<..0....X#.M
Nov 24 10:00:00 09[IKE]   16: BD 64 1C 59                                      .d.Y
"""


def test_parse_strongswan_hexdump() -> None:
    assert parse_strongswan_hexdump(DUMP) == bytes.fromhex(
        "8ba4cbc73c0187301dc19a975823854dbd641c59"
    )
    bare = "   0: 01 02 03  ...\n"
    assert parse_strongswan_hexdump(bare) == b"\x01\x02\x03"


def test_parse_strongswan_hexdump_checks() -> None:
    with pytest.raises(CryptoError, match="announces 20 bytes"):
        parse_strongswan_hexdump(DUMP.splitlines()[0] + "\n" + DUMP.splitlines()[1])
    with pytest.raises(CryptoError, match="offset"):
        parse_strongswan_hexdump("   0: 01 02\n   8: 03\n")
    with pytest.raises(CryptoError, match="no strongSwan"):
        parse_strongswan_hexdump("nothing here")
