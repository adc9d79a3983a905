"""Interop with scapy's ESP (scapy.layers.ipsec.SecurityAssociation), both directions.

Pitfall: scapy's tunnel-mode ``decrypt()`` strips the packet it is given — always
decrypt a copy.
"""

from __future__ import annotations

import pytest
from esp_support import LEFT, RIGHT, TRANSFORMS, icmp_packet, keys_for, sa_pair
from scapy.layers.inet import IP, UDP
from scapy.layers.ipsec import ESP, SecurityAssociation

from ipseclab.esp.dataplane import DataPlane
from ipseclab.esp.packet import OuterHeader

INTEROP = [t for t in TRANSFORMS if t[0] != "null-sha1"] + [t for t in TRANSFORMS if t[0] == "null-sha1"]


def _scapy_sa(calgo: str, aalgo: str | None, enc: bytes, mac: bytes, *, tunnel: bool, esn_high: int | None) -> SecurityAssociation:
    return SecurityAssociation(
        ESP,
        spi=0x1234,
        crypt_algo=calgo,
        crypt_key=enc or None,  # AES-GCM: scapy wants key || 4-byte salt, like our KEYMAT
        auth_algo=aalgo,
        auth_key=mac or None,
        tunnel_header=IP(src=LEFT, dst=RIGHT) if tunnel else None,
        esn_en=esn_high is not None,
        esn=esn_high or 0,
    )


@pytest.mark.parametrize("esn", [False, True], ids=["esn-off", "esn-on"])
@pytest.mark.parametrize("name,esp_id,bits,auth,calgo,aalgo", INTEROP, ids=[t[0] for t in INTEROP])
def test_tunnel_mode_both_ways(name, esp_id, bits, auth, calgo, aalgo, esn) -> None:
    keys = keys_for(esp_id, bits, auth)
    high = 3 if esn else None
    start = (3 << 32) + 100 if esn else 0
    ours_tx, ours_rx = sa_pair(esp_id, bits, auth, keys=keys, esn=esn, seq=start)
    ours_rx.replay.update(start)
    theirs = _scapy_sa(calgo, aalgo, *keys, tunnel=True, esn_high=high)
    outer = OuterHeader(LEFT, RIGHT)
    for i in range(1, 4):
        inner = icmp_packet(size=40 + i * 7, seq=i)
        # ours -> scapy
        wire = IP(outer.wrap(ours_tx.protect(inner, 4)))
        assert wire[ESP].spi == 0x1234 and wire[ESP].seq == (start + i) & 0xFFFFFFFF
        decrypted = theirs.decrypt(wire.copy())
        assert bytes(decrypted) == inner
        # scapy -> ours
        encrypted = theirs.encrypt(IP(inner), seq_num=(start + 10 + i) & 0xFFFFFFFF)
        esp = bytes(encrypted)[20:]
        assert ours_rx.unprotect(esp) == (inner, 4)
    assert ours_rx.counters.drops == 0


@pytest.mark.parametrize("name,esp_id,bits,auth,calgo,aalgo", INTEROP[:5], ids=[t[0] for t in INTEROP[:5]])
def test_transport_mode_both_ways_through_the_data_plane(name, esp_id, bits, auth, calgo, aalgo) -> None:
    keys = keys_for(esp_id, bits, auth)
    tx, rx = sa_pair(esp_id, bits, auth, keys=keys, mode="transport")
    theirs = _scapy_sa(calgo, aalgo, *keys, tunnel=False, esn_high=None)
    left, right = DataPlane("left"), DataPlane("right")
    left.install(None, tx, f"{LEFT}/32", f"{RIGHT}/32")
    right.install(rx, None, f"{RIGHT}/32", f"{LEFT}/32")
    original = bytes(IP(src=LEFT, dst=RIGHT, id=77, ttl=33) / UDP(sport=1111, dport=2222) / b"transport mode payload")
    # ours -> scapy: the original header stays, protocol 50 (RFC 4303 §3.1.1)
    (out,) = left.outbound(original, 1.0)
    assert out.kind == "esp" and out.data[9] == 50 and out.data[8] == 33
    assert bytes(theirs.decrypt(IP(out.data).copy())) == original
    # scapy -> ours: the original packet is rebuilt from the received header
    encrypted = bytes(theirs.encrypt(IP(original), seq_num=1))
    assert right.inbound_ip(encrypted, 1.0) == original
    # and our own round trip
    (out2,) = left.outbound(original, 2.0)
    assert right.inbound_ip(out2.data, 2.0) == original
