"""Export a run for Wireshark: a pcap of the exchange and the key tables to decrypt it.

Both are built from trace events only:

* the pcap holds every message a peer *sent* (``MessageEvent``), as real IPv4/UDP
  packets written with scapy (non-ESP marker included on port 4500);
* ``ikev1_decryption_table`` rows are ``<initiator cookie>,<encryption key>``
  (Wireshark's ISAKMP UAT), taken from the ``Ka`` key events;
* ``ikev2_decryption_table`` rows name an IKEv2 SA's SPIs, SK_ei/SK_er/SK_ai/SK_ar and
  their algorithms as Wireshark spells them, from the SK_* key events;
* ``esp_sa`` rows describe each negotiated ESP SA (addresses, SPI, algorithms and
  keys as Wireshark spells them), from the Quick Mode key and SA events.

These files are the one place where secrets leave the trace: they are written
only on request.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from ipseclab.files import open_private, private_directory
from ipseclab.trace import Event, KeyDerived, MessageEvent, SaEstablished

if TYPE_CHECKING:
    from ipseclab.esp.sa import EspSa

#: Simulated time 0 maps to this wall-clock instant in pcaps (2026-01-01 00:00 UTC).
PCAP_EPOCH = 1_767_225_600.0


def sent_messages(events: Iterable[Event]) -> list[MessageEvent]:
    """Every datagram put on the wire, once (sent events, retransmissions included)."""
    return [e for e in events if isinstance(e, MessageEvent) and e.direction == "sent"]


def write_pcap(
    events: Iterable[Event],
    path: str | os.PathLike[str],
    *,
    epoch: float = PCAP_EPOCH,
    extra: Iterable[tuple[float, bytes]] = (),
    view: str | None = None,
) -> int:
    """Write the run's IKE datagrams as IPv4/UDP packets; returns the packet count.

    ``extra`` adds whole IP packets (``(time, bytes)``, e.g. the ESP packets of
    ``ipseclab demo --ping``) after the IKE messages, in time order.  ``view`` names a peer:
    then the capture is what a tap beside that peer sees — the datagrams it sent as it sent
    them and those it received as they arrived (after any NAT on the way).
    """
    from scapy.layers.inet import IP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.packet import Raw
    from scapy.utils import PcapWriter

    if view is None:
        messages = sent_messages(events)
    else:
        messages = sorted((e for e in events if isinstance(e, MessageEvent) and e.peer == view), key=lambda e: e.time)
    packets: list[tuple[float, bytes]] = []
    writer = PcapWriter(open_private(path, "wb"), sync=True)
    try:
        for n, m in enumerate(messages):
            payload = (b"\x00" * 4 if m.non_esp_marker else b"") + m.raw
            pkt = IP(src=m.src[0], dst=m.dst[0], id=n + 1) / UDP(sport=m.src[1], dport=m.dst[1]) / Raw(payload)
            pkt = IP(bytes(pkt))
            pkt.time = epoch + m.time + n * 1e-6
            writer.write(pkt)
        last = epoch + max((m.time for m in messages), default=0.0) + len(messages) * 1e-6
        packets = sorted(extra, key=lambda tp: tp[0])
        for n, (t, raw) in enumerate(packets):
            ip = IP(raw) if raw[0] >> 4 == 4 else IPv6(raw)
            ip.time = max(epoch + t, last) + (n + 1) * 1e-6
            writer.write(ip)
    finally:
        writer.close()
    return len(messages) + len(packets)


def write_datagrams_pcap(
    datagrams: Iterable[tuple[float, object]], path: str | os.PathLike[str], *, epoch: float = PCAP_EPOCH
) -> int:
    """Write (time, Datagram) pairs as IPv4/UDP packets — e.g. one side of a simulated NAT.

    ``MemoryNetwork.wire`` holds each datagram as sent and as delivered: write the first
    elements for a capture on the inside of the NAT, the second for the outside.
    """
    from scapy.layers.inet import IP, UDP
    from scapy.packet import Raw
    from scapy.utils import PcapWriter

    count = 0
    writer = PcapWriter(open_private(path, "wb"), sync=True)
    try:
        for n, (when, d) in enumerate(datagrams):
            if d is None:
                continue
            pkt = IP(src=d.src[0], dst=d.dst[0], id=n + 1) / UDP(sport=d.src[1], dport=d.dst[1]) / Raw(d.data)
            pkt = IP(bytes(pkt))
            pkt.time = epoch + when + n * 1e-6
            writer.write(pkt)
            count += 1
    finally:
        writer.close()
    return count


def ikev1_decryption_rows(events: Iterable[Event]) -> list[str]:
    """``<initiator cookie hex>,<encryption key hex>`` per ISAKMP SA."""
    rows: dict[tuple[str, str, str], str] = {}
    for e in events:
        if isinstance(e, KeyDerived) and e.name.startswith("Ka ") and e.sa.kind == "ike" and e.sa.version == 1:
            icookie = e.sa.spi_i
            rows.setdefault(icookie, f"{icookie},{e.value.hex()}")
    return list(rows.values())


def ikev2_decryption_rows(events: Iterable[Event]) -> list[str]:
    """``<SPIi>,<SPIr>,<SK_ei>,<SK_er>,"<encryption>",<SK_ai>,<SK_ar>,"<integrity>"`` per IKEv2
    IKE SA (Wireshark's ``ikev2_decryption_table``), from the SK_* key events.

    An SA whose keys changed after IKE_INTERMEDIATE rounds (RFC 9370) gets one row per key
    set, the final keys last (Wireshark keeps the last row for the SPIs: IKE_AUTH and everything
    after it opens, the IKE_INTERMEDIATE messages do not); ``ipseclab decode`` tries every row."""
    rounds: dict[tuple[str, str, str], list[dict[str, KeyDerived]]] = {}
    for e in events:
        if isinstance(e, KeyDerived) and e.sa.kind == "ike" and e.sa.version == 2 and e.name.startswith("SK_"):
            sets = rounds.setdefault((e.peer, e.sa.spi_i, e.sa.spi_r), [{}])
            if e.name in sets[-1]:  # a new round of keys (SK_d comes first again)
                sets.append({})
            sets[-1][e.name] = e
    rows: dict[tuple[str, str], list[str]] = {}
    for (_peer, spi_i, spi_r), sets in rounds.items():
        for k in sets:
            if not {"SK_ei", "SK_er", "SK_ai", "SK_ar"} <= set(k):
                continue
            row = ",".join([
                spi_i, spi_r, k["SK_ei"].value.hex(), k["SK_er"].value.hex(), f'"{k["SK_ei"].algorithm}"',
                k["SK_ai"].value.hex(), k["SK_ar"].value.hex(), f'"{k["SK_ai"].algorithm}"',
            ])
            have = rows.setdefault((spi_i, spi_r), [])
            if row not in have:
                have.append(row)
    return [row for group in rows.values() for row in group]


def esp_sa_rows(events: Iterable[Event]) -> list[str]:
    """Wireshark ``esp_sa`` rows, one per SA direction as each peer sees it.

    Rows are deduplicated by (SPI, source, destination): without a NAT both peers
    describe an SA with the same addresses (one row); behind a NAT each peer's
    packets carry its own view of the addresses (private vs. translated), and
    Wireshark matches rows on the captured addresses, so both views get a row.
    """
    events = list(events)
    keys: dict[tuple[str, str], bytes] = {}
    for e in events:
        if isinstance(e, KeyDerived) and e.name.startswith("ESP "):
            spi = e.name.rsplit(" ", 1)[-1].rstrip(")")
            kind = "enc" if "encryption" in e.name else "integ"
            keys[(spi, kind)] = e.value
    rows: dict[tuple[str, str, str], str] = {}
    for e in events:
        if not (isinstance(e, SaEstablished) and e.child is not None):
            continue
        d = e.child
        for spi, src, dst in ((d.spi_in, d.src_in, d.dst_in), (d.spi_out, d.dst_in, d.src_in)):
            if (spi, src, dst) in rows or (spi, "enc") not in keys:
                continue
            integ_key = keys.get((spi, "integ"), b"")
            rows[(spi, src, dst)] = ",".join(
                f'"{v}"'
                for v in (
                    "IPv4" if ":" not in src else "IPv6",
                    src,
                    dst,
                    f"0x{spi}",
                    d.wireshark_encryption,
                    f"0x{keys[(spi, 'enc')].hex()}",
                    d.wireshark_integrity,
                    f"0x{integ_key.hex()}" if integ_key else "",
                )
            )
    return list(rows.values())


def esp_sa_row(sa: EspSa) -> str:
    """The Wireshark ``esp_sa`` row for one data plane SA (same format as :func:`esp_sa_rows`).

    For AES-GCM the key column is key || salt, as Wireshark expects (RFC 4106 §8.1).
    Wireshark matches rows on the addresses of the packet as captured, so for
    UDP-encapsulated SAs behind a NAT give the row the translated addresses.
    """
    integ = sa.integ.wireshark_name if sa.integ else "NULL"
    return ",".join(
        f'"{v}"'
        for v in (
            "IPv4" if ":" not in sa.src else "IPv6",
            sa.src,
            sa.dst,
            f"0x{sa.spi:08x}",
            sa.cipher.wireshark_name,
            f"0x{sa.enc_key.hex()}" if sa.enc_key else "",
            integ,
            f"0x{sa.integ_key.hex()}" if sa.integ_key else "",
        )
    )


def write_keys(events: Iterable[Event], directory: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``ikev1_decryption_table``, ``ikev2_decryption_table`` and ``esp_sa`` into ``directory``."""
    events = list(events)
    return write_key_tables(directory, ikev1_decryption_rows(events), esp_sa_rows(events), ikev2_decryption_rows(events))


def write_key_tables(
    directory: str | os.PathLike[str], ikev1_rows: Iterable[str], esp_rows: Iterable[str], ikev2_rows: Iterable[str] = ()
) -> dict[str, Path]:
    """Write Wireshark's ``ikev1_decryption_table``, ``ikev2_decryption_table`` and ``esp_sa``
    rows (ours or another implementation's, e.g. from charon's log) into ``directory``,
    private to the user."""
    out = Path(directory)
    private_directory(out)
    files = {"ikev1_decryption_table": list(ikev1_rows), "ikev2_decryption_table": list(ikev2_rows), "esp_sa": list(esp_rows)}
    paths = {}
    for name, rows in files.items():
        path = out / name
        # created 0600 (never readable by others, whatever the umask), never through a link
        with open_private(path) as f:
            f.write("".join(r + "\n" for r in rows))
        paths[name] = path
    return paths


def tshark_options(directory: str | os.PathLike[str]) -> list[str]:
    """tshark ``-o`` options that load the exported tables (no profile needed)."""
    d = Path(directory)
    opts = ["-o", "esp.enable_encryption_decode:TRUE"]
    for name in ("ikev1_decryption_table", "ikev2_decryption_table", "esp_sa"):
        path = d / name
        if path.exists():
            for row in path.read_text().splitlines():
                if row.strip():
                    opts += ["-o", f"uat:{name}:{row}"]
    return opts


def read_table(directory: str | os.PathLike[str], name: str, width: int) -> list[list[str]]:
    """The rows of key table ``name`` in ``directory`` (none if it is not there), each split
    into its fields with quotes and spaces stripped; comment lines and rows of fewer than
    ``width`` fields are left out."""
    path = Path(directory) / name
    if not path.exists():
        return []
    rows = [[p.strip().strip('"') for p in line.split(",")] for line in path.read_text().splitlines()
            if not line.lstrip().startswith("#")]
    return [parts for parts in rows if len(parts) >= width]


def export_run(events: Iterable[Event], directory: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``run.pcap`` and the key tables (in ``keys/``) of one run, written into ``directory``."""
    events = list(events)
    out = Path(directory)
    private_directory(out)
    pcap = out / "run.pcap"
    write_pcap(events, pcap)
    write_keys(events, out / "keys")
    return pcap, out / "keys"
