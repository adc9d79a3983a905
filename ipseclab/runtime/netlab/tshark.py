"""What Wireshark's dissector makes of a lab capture, decrypted with exported key tables.

:func:`dissect` runs ``tshark -T json`` with the rows of an ``ikev1_decryption_table`` /
``esp_sa`` directory (:func:`ipseclab.export.tshark_options`) and returns one
:class:`TsharkFrame` per IKE or ESP frame: exchange type, message ID, whether it was
encrypted, and the payload types tshark could read (for an encrypted message only if the
keys decrypted it).  ``payloads`` is tshark's flat ``isakmp.typepayload`` list, so the
Proposal (2) and Transform (3) substructures of an SA payload appear in it too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ipseclab.errors import IpsecLabError
from ipseclab.export import tshark_options

FIELDS = (
    "frame.number",
    "ip.src",
    "ip.dst",
    "udp.srcport",
    "udp.dstport",
    "isakmp.ispi",
    "isakmp.exchangetype",
    "isakmp.messageid",
    "isakmp.flags",
    "isakmp.typepayload",
    "isakmp.id.type",
    "esp.spi",
    "esp.icv_good",
    "icmp.type",
    "tcp.seq",
    "udp.payload",
)

#: payload type numbers (RFC 2408 §3.1, RFC 3947) → the short names the report prints
PAYLOAD_NAMES = {1: "SA", 2: "P", 3: "T", 4: "KE", 5: "ID", 6: "CERT", 7: "CR", 8: "HASH", 9: "SIG", 10: "NONCE", 11: "N", 12: "D", 13: "VID", 20: "NAT-D", 130: "NAT-D"}


class TsharkError(IpsecLabError):
    """tshark is missing or could not read the capture."""


@dataclass
class TsharkFrame:
    """One frame as tshark dissected it."""

    number: int
    src: str
    dst: str
    sport: int | None = None
    dport: int | None = None
    icookie: str | None = None
    exchange_type: int | None = None  # None: not ISAKMP
    message_id: int | None = None
    encrypted: bool = False
    payloads: list[int] = field(default_factory=list)
    esp_spi: str | None = None
    esp_icv_good: bool | None = None
    inner_icmp: bool = False
    inner_tcp: bool = False
    retransmission: bool = False

    @property
    def decrypted(self) -> bool:
        """An encrypted ISAKMP message whose inner payloads tshark could read."""
        return self.encrypted and bool(self.payloads)

    def describe(self) -> str:
        if self.exchange_type is None:
            inner = " inner ICMP" if self.inner_icmp else " inner TCP" if self.inner_tcp else ""
            return f"{self.number}: {self.src} > {self.dst} ESP spi {self.esp_spi}{inner}"
        names = ",".join(PAYLOAD_NAMES.get(p, str(p)) for p in self.payloads if p not in (2, 3))
        enc = (" encrypted, decrypted" if self.decrypted else " encrypted, NOT decrypted") if self.encrypted else ""
        again = " (retransmission)" if self.retransmission else ""
        return f"{self.number}: {self.src} > {self.dst} exch {self.exchange_type} mid {self.message_id:08x}{enc} [{names}]{again}"


def _first(layers: dict, name: str) -> str | None:
    v = layers.get(name)
    return v[0] if v else None


def dissect(pcap: str | os.PathLike[str], keys_dir: str | os.PathLike[str] | None = None) -> list[TsharkFrame]:
    """tshark's view of every IKE/ESP frame of ``pcap`` (decrypted with ``keys_dir`` if given)."""
    if shutil.which("tshark") is None:
        raise TsharkError("tshark is not installed (Debian: apt-get install tshark)")
    options = tshark_options(keys_dir) if keys_dir else []
    cmd = ["tshark", "-r", str(pcap), *options, "-o", "esp.enable_authentication_check:TRUE", "-T", "json"]
    for name in FIELDS:
        cmd += ["-e", name]
    env = {**os.environ, "XDG_CONFIG_HOME": str(Path(pcap).parent / ".no-wireshark-profile")}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, check=False)
    if result.returncode != 0:
        raise TsharkError(f"tshark failed on {pcap}: {result.stderr.strip()}")
    frames = []
    seen: set[str] = set()
    for pkt in json.loads(result.stdout or "[]"):
        layers = pkt["_source"]["layers"]
        if "isakmp.exchangetype" not in layers and "esp.spi" not in layers:
            continue
        frame = TsharkFrame(
            number=int(_first(layers, "frame.number") or 0),
            src=_first(layers, "ip.src") or "",
            dst=_first(layers, "ip.dst") or "",
            sport=int(_first(layers, "udp.srcport") or 0) or None,
            dport=int(_first(layers, "udp.dstport") or 0) or None,
        )
        if "isakmp.exchangetype" in layers:
            frame.icookie = (_first(layers, "isakmp.ispi") or "").replace(":", "").lower() or None
            frame.exchange_type = int(_first(layers, "isakmp.exchangetype") or 0)
            frame.message_id = int(_first(layers, "isakmp.messageid") or "0", 16)
            frame.encrypted = bool(int(_first(layers, "isakmp.flags") or "0", 16) & 1)
            frame.payloads = [int(t) for t in layers.get("isakmp.typepayload", [])]
            payload = _first(layers, "udp.payload") or ""
            frame.retransmission = payload in seen
            seen.add(payload)
        else:
            frame.esp_spi = (_first(layers, "esp.spi") or "").removeprefix("0x").lower()
            icv = _first(layers, "esp.icv_good")
            frame.esp_icv_good = None if icv is None else icv in ("1", "True", "true")
            frame.inner_icmp = "icmp.type" in layers
            frame.inner_tcp = "tcp.seq" in layers
        frames.append(frame)
    return frames
