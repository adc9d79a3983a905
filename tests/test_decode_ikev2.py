"""``ipseclab decode`` on IKEv2: with our exported ikev2_decryption_table every SK payload
opens and reads as the peers' own trace says; a wrong key or none is said, not guessed."""

from __future__ import annotations

from pathlib import Path

from engine_support import established_pair, terminate

from ipseclab.crypto.registry_v2 import sk_cipher_named
from ipseclab.export import write_keys, write_pcap
from ipseclab.teaching.decode import decode_pcap, read_ikev2_table, render_packet
from ipseclab.trace import MessageEvent


def capture(tmp_path: Path, **kw: object) -> list[MessageEvent]:
    pp = established_pair(version=2, children=2, **kw)
    terminate(pp.network, "left")
    write_pcap(pp.events, tmp_path / "run.pcap")
    write_keys(pp.events, tmp_path / "keys")
    return [e for e in pp.events if isinstance(e, MessageEvent) and e.direction == "sent"]


def test_every_message_decodes_as_the_trace_says(tmp_path: Path) -> None:
    sent = capture(tmp_path)
    packets = decode_pcap(tmp_path / "run.pcap", ikev2_keys=read_ikev2_table(tmp_path / "keys"))
    assert [p.summary for p in packets] == [m.summary for m in sent]
    assert [(p.exchange, p.index, p.message_id) for p in packets] == [(m.exchange, m.index, m.message_id) for m in sent]
    assert all(p.decrypted for p in packets if p.encrypted) and sum(p.encrypted for p in packets) == len(sent) - 2
    auth = next(p for p in packets if p.exchange == "IKE_AUTH")
    assert auth.payload_types[:3] == [46, 35, 39]  # SK, then IDi and AUTH inside it
    lines = render_packet(auth)
    assert any("AUTH: the proof of identity" in line for line in lines)
    assert any("Identification - Initiator" in line or "IDi" in line for line in lines)


def test_a_wrong_or_missing_key_is_said(tmp_path: Path) -> None:
    capture(tmp_path)
    packets = decode_pcap(tmp_path / "run.pcap")
    auth = next(p for p in packets if p.exchange == "IKE_AUTH")
    assert auth.decrypted is None and "no key for these SPIs" in auth.note and auth.summary.startswith("HDR, SK {<")
    table = tmp_path / "keys" / "ikev2_decryption_table"
    fields = table.read_text().strip().split(",")
    fields[5] = "00" * 20  # SK_ai
    table.write_text(",".join(fields) + "\n")
    packets = decode_pcap(tmp_path / "run.pcap", ikev2_keys=read_ikev2_table(tmp_path / "keys"))
    auth_i = next(p for p in packets if p.exchange == "IKE_AUTH" and p.index == 1)
    auth_r = next(p for p in packets if p.exchange == "IKE_AUTH" and p.index == 2)
    assert auth_i.decrypted is False and "checksum does not verify" in auth_i.note
    assert auth_r.decrypted is True  # the responder's direction has its own keys


def test_table_names_are_wiresharks() -> None:
    assert sk_cipher_named("AES-CBC-256 [RFC3602]", "HMAC_SHA2_256_128 [RFC4868]") == (12, 256, 12)
    assert sk_cipher_named("AES-GCM-128 with 16 octet ICV [RFC5282]", "NONE [RFC4306]") == (20, 128, None)


def test_ip_fragments_are_put_back_together(tmp_path: Path) -> None:
    """A certificate makes IKE_AUTH larger than an Ethernet MTU; a capture then holds IPv4
    fragments, which decode reassembles as tshark does (numbered by the last fragment)."""
    from scapy.layers.inet import IP, fragment
    from scapy.utils import rdpcap, wrpcap

    from ipseclab.demo import DemoOptions
    from ipseclab.teaching.lab import LabSession

    s = LabSession(DemoOptions(version=2, auth="rsa", seed=4))
    s.run_to_end()
    assert s.established()
    s.export(tmp_path)
    whole = rdpcap(str(tmp_path / "run.pcap"))
    pieces = []
    for p in whole:
        parts = fragment(IP(bytes(p)), fragsize=512) if len(p) > 600 else [IP(bytes(p))]
        pieces += list(reversed(parts)) if len(parts) > 2 else parts  # out of order, too
    wrpcap(str(tmp_path / "fragmented.pcap"), pieces)
    assert len(pieces) > len(whole)
    keys = read_ikev2_table(tmp_path / "keys")
    before = [p.summary for p in decode_pcap(tmp_path / "run.pcap", ikev2_keys=keys)]
    after = decode_pcap(tmp_path / "fragmented.pcap", ikev2_keys=keys)
    assert [p.summary for p in after] == before
    assert any("CERT" in p.summary for p in after) and all(p.decrypted for p in after if p.encrypted)
