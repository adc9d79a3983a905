"""Reading key material out of a charon level-4 file log (strongSwan 5.9.8, IKEv1).

Debian's build has no ``save-keys`` plugin, but at ``ike = 4`` / ``chd = 4`` charon prints
every derived value as a labelled hex dump::

    11[IKE] encryption key Ka => 16 bytes @ 0x7f1bb000d8c0
    11[IKE]    0: 2B 7E 15 16 28 AE D2 A6 AB F7 15 88 09 CF 4F 3C  +~..(.........O<

and every installed ESP SA as ``adding inbound ESP SA`` / ``SPI 0x..., src A dst B``.
:func:`log_facts` collects one IKE SA's values (the reference-capture generator checks them
against RFC 2409); :func:`keys_from_log` collects every IKE SA's ``Ka`` by cookie pair and
every ESP SA's keys by SPI.  Cookies come from the ``MGR`` level-2 lines ("checkout IKEv1
SA ... with SPIs <i>_i <r>_r" and "checkin IKEv1 SA ... with SPIs ..."): a worker thread works
on the SA it checked out until it checks it back in, so the key lines of that thread in between
belong to the cookies of the check-in (the responder cookie is still zero at the first
check-out of a responder).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# JSON key -> the label charon 5.9.8 prints at level 4 (followed by "=> N bytes @ 0x..." and a hex dump)
LOG_LABELS = {
    "g_xy": "[IKE] shared Diffie Hellman secret",
    "skeyid": "[IKE] SKEYID",
    "skeyid_d": "[IKE] SKEYID_d",
    "skeyid_a": "[IKE] SKEYID_a",
    "skeyid_e": "[IKE] SKEYID_e",
    "enc_key": "[IKE] encryption key Ka",
    "initial_iv": "[IKE] initial IV",
    "hash_i_data": "[IKE] HASH_I data",
    "hash_i": "[IKE] HASH_I",
    "hash_r_data": "[IKE] HASH_R data",
    "hash_r": "[IKE] HASH_R",
    "child.g_xy": "[CHD] DH secret  (only with PFS)",
    "child.sas[initiator->responder].keymat_seed": "[CHD] initiator SA seed",
    "child.sas[responder->initiator].keymat_seed": "[CHD] responder SA seed",
    "child.sas[initiator->responder].encryption_key": "[CHD] encryption initiator key",
    "child.sas[responder->initiator].encryption_key": "[CHD] encryption responder key",
    "child.sas[initiator->responder].integrity_key": "[CHD] integrity initiator key",
    "child.sas[responder->initiator].integrity_key": "[CHD] integrity responder key",
    "qm_hashes": "[IKE] Hash(1) / Hash(2) / Hash(3)",
    "info_hashes": "[IKE] Hash  (Informational HASH(1))",
    "iv_trace": "[IKE] next IV for MID <mid>",
}
IKE_LABELS = {
    "shared Diffie Hellman secret": "g_xy",
    "SKEYID": "skeyid",
    "SKEYID_d": "skeyid_d",
    "SKEYID_a": "skeyid_a",
    "SKEYID_e": "skeyid_e",
    "encryption key Ka": "enc_key",
    "initial IV": "initial_iv",
    "HASH_I data": "hash_i_data",
    "HASH_I": "hash_i",
    "HASH_R data": "hash_r_data",
    "HASH_R": "hash_r",
    # IKEv2 (keymat_v2.c)
    "Sk_d secret": "sk_d",
    "Sk_ai secret": "sk_ai",
    "Sk_ar secret": "sk_ar",
    "Sk_ei secret": "sk_ei",
    "Sk_er secret": "sk_er",
    "Sk_pi secret": "sk_pi",
    "Sk_pr secret": "sk_pr",
}
CHILD_LABELS = {
    "DH secret": "g_xy",
    "initiator SA seed": "seed_i",
    "responder SA seed": "seed_r",
    "encryption initiator key": "encr_i",
    "encryption responder key": "encr_r",
    "integrity initiator key": "integ_i",
    "integrity responder key": "integ_r",
}

# Wireshark's names for the ESP algorithms (packet-esp.c value strings, Wireshark 4.0), by charon's name
WIRESHARK_ESP_ENCRYPTION = {"AES_CBC": "AES-CBC [RFC3602]"}
WIRESHARK_ESP_INTEGRITY = {
    "HMAC_SHA1_96": "HMAC-SHA-1-96 [RFC2404]",
    "HMAC_SHA2_256_128": "HMAC-SHA-256-128 [RFC4868]",
    "HMAC_SHA2_384_192": "HMAC-SHA-384-192 [RFC4868]",
    "HMAC_SHA2_512_256": "HMAC-SHA-512-256 [RFC4868]",
}

_HEAD = re.compile(r"^(?:.*?\s)?(\d+\[\w+\])\s(.*)$")
_DUMP = re.compile(r"^(?:.*?\s)?(\d+\[\w+\])\s+(\d+): ((?:[0-9A-F]{2} ?){1,16})")
_MGR_SPIS = re.compile(r"(checkout|checkin) IKEv[12] SA .*with SPIs ([0-9a-f]{16})_i ([0-9a-f]{16})_r")
#: IKEv2: which side of the exchange charon derives a child's keys on (no KEYMAT seed is logged)
_PARSED = re.compile(r"parsed (IKE_AUTH|CREATE_CHILD_SA) (request|response)")
_SPI_LINE = re.compile(r"\s*SPI 0x([0-9a-f]+), src (\S+) dst (\S+)")
_ESTABLISHED = re.compile(r"CHILD_SA (\S+)\{\d+\} established with SPIs (\w+)_i (\w+)_o and TS (.*) === (.*)$")


def parse_log(text: str) -> list[tuple[str, str, bytes | None]]:
    """Return (thread-and-group prefix, message, hex-dump bytes or None) records."""
    lines = text.splitlines()
    out = []
    i = 0
    while i < len(lines):
        m = _HEAD.match(lines[i])
        if not m:
            i += 1
            continue
        prefix, msg = m.group(1), m.group(2)
        i += 1
        data = None
        mb = re.search(r"=> (\d+) bytes @", msg)
        if mb:
            n = int(mb.group(1))
            buf = bytearray()
            while len(buf) < n and i < len(lines):
                d = _DUMP.match(lines[i])
                if not d:
                    break
                buf += bytes.fromhex(d.group(3).replace(" ", ""))
                i += 1
            data = bytes(buf[:n])
            msg = msg[: mb.start()].rstrip()
        out.append((prefix, msg, data))
    return out


def log_facts(text: str) -> dict:
    """Pull the IKE SA and child SA key material out of a charon level-4 log of *one* IKE SA."""
    recs = parse_log(text)
    ike: dict = {}
    children: list[dict] = []
    cur: dict | None = None
    pending_dir = None
    ivs, hashes = [], []
    proposals = {}
    for prefix, msg, data in recs:
        group = prefix.split("[")[1].rstrip("]")
        if data is not None:
            if group == "IKE" and msg in IKE_LABELS:
                key = IKE_LABELS[msg]
                if key in ike:
                    raise RuntimeError(f"second {msg!r} in one log: several IKE SAs?")
                ike[key] = data.hex()
            elif group == "CHD" and msg in CHILD_LABELS:
                if cur is None or "installed" in cur:
                    cur = {}
                    children.append(cur)
                cur[CHILD_LABELS[msg]] = data.hex()
            elif group == "IKE" and msg.startswith("next IV for MID "):
                ivs.append({"mid": int(msg.split()[-1]), "iv": data.hex()})
            elif group == "IKE" and (msg.startswith("Hash(") or msg == "Hash"):
                hashes.append({"label": msg, "value": data.hex()})
            continue
        m = re.match(r"selected proposal: (IKE|ESP):(\S+)", msg)
        if m:
            proposals[m.group(1)] = m.group(2)
        m = re.match(r"adding (inbound|outbound) ESP SA", msg)
        if m:
            pending_dir = m.group(1)
        m = _SPI_LINE.match(msg)
        if m and pending_dir and cur is not None:
            cur.setdefault("spis", {})[pending_dir] = (m.group(1), m.group(2), m.group(3))
            pending_dir = None
        m = _ESTABLISHED.match(msg)
        if m and cur is not None:
            cur.update(
                name=m.group(1),
                spi_in=m.group(2),
                spi_out=m.group(3),
                local_ts=m.group(4).strip(),
                remote_ts=m.group(5).strip(),
                installed=True,
            )
    return {"ike": ike, "children": children, "ivs": ivs, "hashes": hashes, "proposals": proposals}


@dataclass
class EspKeys:
    """One direction of an ESP SA as charon installed it."""

    spi: str  # 8 hex digits
    direction: str  # "inbound" | "outbound" (charon's view)
    src: str
    dst: str
    encryption_key: str  # hex
    integrity_key: str  # hex ("" for AEAD)
    encryption: str = ""  # charon's algorithm names ("AES_CBC", "HMAC_SHA1_96")
    integrity: str = ""
    child: str = ""

    def esp_sa_row(self) -> str | None:
        """The Wireshark ``esp_sa`` row, or None for an algorithm the table has no name for."""
        enc = WIRESHARK_ESP_ENCRYPTION.get(self.encryption)
        integ = WIRESHARK_ESP_INTEGRITY.get(self.integrity)
        if enc is None or integ is None:
            return None
        fields = ("IPv4", self.src, self.dst, f"0x{self.spi}", enc, f"0x{self.encryption_key}", integ, f"0x{self.integrity_key}")
        return ",".join(f'"{v}"' for v in fields)


@dataclass
class CharonKeys:
    """Keys charon logged: per IKE SA (``"<icookie>/<rcookie>"`` → SKEYID family and Ka)
    and per ESP SPI (8 hex digits → :class:`EspKeys`)."""

    ike: dict[str, dict[str, str]] = field(default_factory=dict)
    esp: dict[str, EspKeys] = field(default_factory=dict)

    def ikev2_keys(self, spis: str) -> dict[str, str]:
        """SK_d, SK_ai … SK_pr of the IKEv2 SA ``"<SPIi>/<SPIr>"`` (hex), by our names (``SK_ei``)."""
        return {"SK_" + k[3:]: v for k, v in self.ike.get(spis, {}).items() if k.startswith("sk_")}

    def ka(self, cookies: str) -> str | None:
        """The phase-1 encryption key of the IKE SA ``"<icookie>/<rcookie>"`` (hex)."""
        return self.ike.get(cookies, {}).get("enc_key")

    def ikev1_decryption_rows(self) -> list[str]:
        """Wireshark ``ikev1_decryption_table`` rows made from charon's own keys."""
        return [f"{ck.split('/')[0]},{v['enc_key']}" for ck, v in self.ike.items() if "enc_key" in v]

    def esp_sa_rows(self) -> list[str]:
        """Wireshark ``esp_sa`` rows made from charon's own keys."""
        return [row for e in self.esp.values() if (row := e.esp_sa_row()) is not None]


def keys_from_log(text: str) -> CharonKeys:
    """Every IKE SA's keys by cookie pair and every ESP SA's keys by SPI (see module doc)."""
    keys = CharonKeys()
    ike_of_thread: dict[str, dict[str, str]] = {}
    child_of_thread: dict[str, dict[str, str]] = {}
    pending_dir: dict[str, str] = {}
    algs: dict[str, dict[str, str]] = {}
    exchange_role: dict[str, str] = {}
    for prefix, msg, data in parse_log(text):
        thread, group = prefix.split("[")[0], prefix.split("[")[1].rstrip("]")
        m = _PARSED.search(msg)
        if m:
            exchange_role[thread] = "initiator" if m.group(2) == "response" else "responder"
            continue
        m = _MGR_SPIS.search(msg)
        if m:
            collected = ike_of_thread.pop(thread, {})
            if m.group(1) == "checkin" and collected:
                keys.ike.setdefault(f"{m.group(2)}/{m.group(3)}", {}).update(collected)
            continue
        if data is not None:
            if group == "IKE" and msg in IKE_LABELS:
                ike_of_thread.setdefault(thread, {})[IKE_LABELS[msg]] = data.hex()
            elif group == "CHD" and msg in CHILD_LABELS:
                cur = child_of_thread.get(thread)
                label = CHILD_LABELS[msg]
                if cur is None or label in cur or label == "g_xy":
                    cur = child_of_thread[thread] = {}
                cur[label] = data.hex()
            continue
        m = re.match(r"\s*using (\S+) for (encryption|integrity)", msg)
        if m and group == "CHD":
            algs.setdefault(thread, {})[m.group(2)] = m.group(1)
            continue
        m = re.match(r"adding (inbound|outbound) ESP SA", msg)
        if m:
            pending_dir[thread] = m.group(1)
            continue
        m = _SPI_LINE.match(msg)
        if m and thread in pending_dir and thread in child_of_thread:
            direction = pending_dir.pop(thread)
            ch = child_of_thread[thread]
            spi = m.group(1)
            if "seed_i" in ch:
                # IKEv1: KEYMAT seed = [g^xy] | protocol | SPI | Ni_b | Nr_b: the SPI inside a seed
                # says which SA the "initiator" / "responder" keys protect (RFC 2409 §5.5)
                off = len(ch.get("g_xy", "")) + 2
                suffix = "i" if ch.get("seed_i", "")[off : off + 8] == spi else "r"
            else:
                # IKEv2: the "initiator" keys protect the exchange initiator's outbound SA (RFC 7296 §2.17)
                initiated = exchange_role.get(thread) == "initiator"
                suffix = "i" if (direction == "outbound") == initiated else "r"
            keys.esp[spi] = EspKeys(
                spi=spi,
                direction=direction,
                src=m.group(2),
                dst=m.group(3),
                encryption_key=ch.get(f"encr_{suffix}", ""),
                integrity_key=ch.get(f"integ_{suffix}", ""),
                encryption=algs.get(thread, {}).get("encryption", ""),
                integrity=algs.get(thread, {}).get("integrity", ""),
            )
            continue
        m = _ESTABLISHED.match(msg)
        if m:
            for spi in (m.group(2), m.group(3)):
                if spi in keys.esp:
                    keys.esp[spi].child = m.group(1)
    return keys


#: charon log lines worth showing a student when something did not come up
_REPORT = re.compile(
    r"no proposal|NO_PROPOSAL|AUTHENTICATION_FAILED|INVALID_|does not match|decryption failed|"
    r"failed|ignoring|error notify|giving up|retransmit|not found|no matching|invalid|unable|"
    r"received .*(notify|DELETE)|sending .*(notify|DELETE)|selected proposal|received proposals|"
    r"configured proposals|established|timed out|deleting|destroying|authentication of"
)


_CONFIG_DUMP = re.compile(r"^\s+[\w-]+ = |.*parsing rule")


def charon_reports(text: str, limit: int = 60) -> list[str]:
    """charon's own account of an exchange: errors, notifies, proposals, outcomes (no hex dumps)."""
    out: list[str] = []
    for prefix, msg, data in parse_log(text):
        group = prefix.split("[")[1].rstrip("]")
        if data is not None or group not in ("IKE", "CFG", "ENC", "CHD", "NET", "MGR") or group == "MGR":
            continue
        if _REPORT.search(msg) and not _CONFIG_DUMP.match(msg):
            line = f"[{group}] {msg.strip()}"
            if not out or out[-1] != line:
                out.append(line)
    return out[:limit]
