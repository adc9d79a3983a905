"""Do ipseclab and charon agree?  Checks of our SA table and keys against charon's view.

Every check is a :class:`Check` (name, ok, detail) so a report can list what was compared
and with which values:

* :func:`compare_ike`: charon's ``list-sas`` IKE SPIs equal our cookies, and its
  encryption / PRF / DH group equal the suite our trace says was negotiated;
* :func:`compare_children`: every one of our IPsec SA pairs is an INSTALLED charon child
  with the mirrored SPIs (its ``spi-in`` is our ``spi_out``), the same algorithms, PFS group
  and UDP encapsulation;
* :func:`compare_keys`: our Ka and ESP keys (trace ``KeyDerived`` events) equal what
  charon's level-4 log printed for the same cookies and SPIs;
* :func:`capture_checks`: tshark, given only *our* exported key tables, decrypts the
  phase-1 identities and every Quick Mode (and ESP, when traffic was sent).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ipseclab.runtime.netlab.charonlog import CharonKeys
from ipseclab.runtime.netlab.tshark import TsharkFrame
from ipseclab.trace import Event, IkeSaInfo, KeyDerived

# our names (trace / sa_table) -> charon's (vici list-sas)
IKE_ENCRYPTION = {
    "AES-CBC-128": ("AES_CBC", "128"),
    "AES-CBC-192": ("AES_CBC", "192"),
    "AES-CBC-256": ("AES_CBC", "256"),
    "3DES-CBC": ("3DES_CBC", None),
    # IKEv2 (IANA names)
    "ENCR_AES_CBC_128": ("AES_CBC", "128"),
    "ENCR_AES_CBC_192": ("AES_CBC", "192"),
    "ENCR_AES_CBC_256": ("AES_CBC", "256"),
    "ENCR_3DES": ("3DES_CBC", None),
}
IKE_PRF = {
    "MD5": "PRF_HMAC_MD5",
    "SHA1": "PRF_HMAC_SHA1",
    "SHA2-256": "PRF_HMAC_SHA2_256",
    "SHA2-384": "PRF_HMAC_SHA2_384",
    "SHA2-512": "PRF_HMAC_SHA2_512",
}
DH_GROUPS = {
    1: "MODP_768",
    2: "MODP_1024",
    5: "MODP_1536",
    14: "MODP_2048",
    15: "MODP_3072",
    16: "MODP_4096",
    19: "ECP_256",
    20: "ECP_384",
    31: "CURVE_25519",
}
ESP_ENCRYPTION = {
    "AES-CBC-128": ("AES_CBC", "128"),
    "AES-CBC-192": ("AES_CBC", "192"),
    "AES-CBC-256": ("AES_CBC", "256"),
    "AES-GCM-16-128": ("AES_GCM_16", "128"),
    "AES-GCM-16-256": ("AES_GCM_16", "256"),
    "3DES": ("3DES_CBC", None),
}
ESP_INTEGRITY = {
    "HMAC-MD5": "HMAC_MD5_96",
    "HMAC-SHA1": "HMAC_SHA1_96",
    "HMAC-SHA2-256": "HMAC_SHA2_256_128",
    "HMAC-SHA2-384": "HMAC_SHA2_384_192",
    "HMAC-SHA2-512": "HMAC_SHA2_512_256",
}


@dataclass
class Check:
    """One comparison: what, whether it held, and the values behind it."""

    name: str
    ok: bool
    detail: str = ""

    def describe(self) -> str:
        return f"[{'ok' if self.ok else 'FAIL'}] {self.name}" + (f": {self.detail}" if self.detail else "")


def _eq(name: str, ours: Any, theirs: Any) -> Check:
    return Check(name, ours == theirs, f"ipseclab {ours}, charon {theirs}")


def compare_ike(our_cookies: str, our_suite: IkeSaInfo | None, charon_sa: Mapping[str, Any]) -> list[Check]:
    """IKE SPIs and negotiated algorithms (``our_suite``: what our ``SaEstablished`` event says)."""
    charon_cookies = f"{charon_sa.get('initiator-spi')}/{charon_sa.get('responder-spi')}"
    enc = (charon_sa.get("encr-alg"), charon_sa.get("encr-keysize"))
    encryption, prf, group = (our_suite.encryption, our_suite.hash, our_suite.group) if our_suite else (None, None, 0)
    checks = [
        _eq("IKE SPIs (cookies)", our_cookies, charon_cookies),
        Check("charon IKE SA state", charon_sa.get("state") == "ESTABLISHED", str(charon_sa.get("state"))),
        _eq("IKE encryption", IKE_ENCRYPTION.get(str(encryption), encryption), enc),
        _eq("IKE PRF (hash)", IKE_PRF.get(str(prf), prf), charon_sa.get("prf-alg")),
        _eq("IKE DH group", DH_GROUPS.get(int(group or 0)), charon_sa.get("dh-group")),
    ]
    if our_suite is not None and our_suite.mode == "ikev2":
        checks.append(_eq("IKE version", "2", charon_sa.get("version")))
        checks.append(_eq("IKE integrity", our_suite.integrity.removeprefix("AUTH_"), charon_sa.get("integ-alg")))
    return checks


def compare_children(ours: Sequence[Mapping[str, Any]], charon_children: Mapping[str, Mapping[str, Any]]) -> list[Check]:
    """Each of our IPsec SA pairs (``sa_table()["ipsec"]``) against charon's children."""
    checks = [Check("number of CHILD_SAs", len(ours) == len(charon_children), f"ipseclab {len(ours)}, charon {len(charon_children)}")]
    for pair in ours:
        name = pair["child"]
        theirs = next(
            (c for c in charon_children.values() if c.get("spi-in") == pair["spi_out"] and c.get("spi-out") == pair["spi_in"]),
            None,
        )
        if theirs is None:
            found = [(c.get("spi-in"), c.get("spi-out")) for c in charon_children.values()]
            checks.append(Check(f"{name}: SPIs", False, f"ipseclab in {pair['spi_in']} out {pair['spi_out']}; charon (in, out) {found}"))
            continue
        checks.append(Check(f"{name}: SPIs", True, f"ipseclab in {pair['spi_in']} / out {pair['spi_out']} = charon out / in"))
        checks.append(Check(f"{name}: charon state", theirs.get("state") == "INSTALLED", str(theirs.get("state"))))
        enc = (theirs.get("encr-alg"), theirs.get("encr-keysize"))
        checks.append(_eq(f"{name}: ESP encryption", ESP_ENCRYPTION.get(str(pair["encryption"]), pair["encryption"]), enc))
        integ = ESP_INTEGRITY.get(str(pair["integrity"]), pair["integrity"]) if pair["integrity"] not in (None, "none") else None
        checks.append(_eq(f"{name}: ESP integrity", integ, theirs.get("integ-alg")))
        pfs = DH_GROUPS.get(pair["pfs_group"]) if pair["pfs_group"] else None
        checks.append(_eq(f"{name}: PFS group", pfs, theirs.get("dh-group")))
        checks.append(_eq(f"{name}: UDP encapsulation", bool(pair["udp_encapsulated"]), theirs.get("encap") == "yes"))
    return checks


def our_keys(events: Iterable[Event]) -> dict[str, str]:
    """Our derived keys by name (``"Ka <cookies>"``, ``"ESP encryption key (SPI x)"``), hex."""
    out: dict[str, str] = {}
    for e in events:
        if isinstance(e, KeyDerived):
            if e.name.startswith("Ka "):
                out[f"Ka {e.sa.spi_i}/{e.sa.spi_r}"] = e.value.hex()
            elif e.name.startswith("ESP "):
                out[e.name] = e.value.hex()
    return out


def compare_keys(events: Iterable[Event], charon: CharonKeys, cookies: str, spis: Iterable[str], *, version: int = 1) -> list[Check]:
    """Our Ka (IKEv2: SK_d … SK_pr) and ESP keys against the ones in charon's log (same
    cookies / SPIs)."""
    events = list(events)
    mine = our_keys(events)
    checks = []
    if version == 2:
        theirs2 = charon.ikev2_keys(cookies)
        ours2 = {e.name: e.value.hex() for e in events if isinstance(e, KeyDerived) and e.sa.kind == "ike"
                 and f"{e.sa.spi_i}/{e.sa.spi_r}" == cookies and e.name.startswith("SK_")}
        for name in ("SK_d", "SK_ai", "SK_ar", "SK_ei", "SK_er", "SK_pi", "SK_pr"):
            ok = name in theirs2 and ours2.get(name) == theirs2[name]
            checks.append(Check(f"IKE key {name}", ok, "equal" if ok else f"charon {'logged no ' + name if name not in theirs2 else 'differs'}"))
    else:
        theirs = charon.ka(cookies)
        checks.append(
            Check("phase-1 encryption key Ka", theirs is not None and mine.get(f"Ka {cookies}") == theirs, "equal" if theirs else "charon logged no Ka for these cookies")
        )
    for spi in spis:
        esp = charon.esp.get(spi)
        if esp is None:
            checks.append(Check(f"ESP keys SPI {spi}", False, "charon logged no keys for this SPI"))
            continue
        ok = mine.get(f"ESP encryption key (SPI {spi})") == esp.encryption_key and (
            mine.get(f"ESP integrity key (SPI {spi})", "") == esp.integrity_key
        )
        checks.append(Check(f"ESP keys SPI {spi}", ok, f"charon {esp.direction} SA, encryption and integrity keys {'equal' if ok else 'DIFFER'}"))
    return checks


def capture_checks_v2(frames: Sequence[TsharkFrame], *, our_address: str, peer_address: str, children: int) -> list[Check]:
    """What tshark decrypted of an IKEv2 run with our ``ikev2_decryption_table`` alone:
    both IKE_AUTH messages (ID, AUTH, SA, TSi, TSr inside SK), every CREATE_CHILD_SA
    (SA, Nonce, TSi, TSr) and the ESP-in-UDP packets."""
    checks = []
    for who, addr in (("ipseclab", our_address), ("charon", peer_address)):
        # an SKF fragment that is not the last shows only itself ([53]): the last one carries the message
        hit = [f for f in frames if f.exchange_type == 35 and f.src == addr and not f.retransmission and f.payloads != [53]]
        # with EAP (RFC 7296 §2.16) IKE_AUTH takes rounds: ID and SA, TSi, TSr in the first, AUTH later
        seen = {p for f in hit for p in f.payloads}
        ok = bool(hit) and all(len(f.payloads) > 1 for f in hit) and {39, 33, 44, 45} <= seen and bool({35, 36} & seen)
        checks.append(Check(f"tshark opens the IKE_AUTH message of {who} (ID, AUTH, SA, TSi, TSr)", ok,
                            "; ".join(f.describe() for f in hit) or "no IKE_AUTH frame"))
    create = [f for f in frames if f.exchange_type == 36 and not f.retransmission]
    if children > 1 or create:
        ok = len(create) >= 2 * (children - 1) and all({33, 40, 44, 45} <= set(f.payloads) for f in create)
        checks.append(Check("tshark opens every CREATE_CHILD_SA (SA, Nonce, TSi, TSr)", ok, "; ".join(f.describe() for f in create) or "none"))
    esp = [f for f in frames if f.exchange_type is None and f.src == peer_address]
    if esp:
        checks.append(Check("tshark decrypts the ESP-in-UDP packets (inner ICMP)", all(f.inner_icmp for f in esp), "; ".join(f.describe() for f in esp)))
    return checks


def decode_matches_tshark(frames: Sequence[TsharkFrame], decoded: Sequence[Any]) -> Check:
    """Our ``decode`` and tshark, frame by frame: the same payloads (inside SK too) of every IKE
    message, both given only the exported key tables."""
    ours = {p.number: p for p in decoded if getattr(p, "kind", "") == "isakmp"}
    differ = []
    compared = 0
    for f in frames:
        if f.exchange_type is None:
            continue
        mine = ours.get(f.number)
        theirs = [t for t in f.payloads if t not in (2, 3)]  # tshark lists proposal/transform substructures too
        compared += 1
        types = mine.payload_types if mine is not None else None
        if types is not None and theirs == [53]:  # a fragment tshark did not (yet) put together; we may have
            types = types[:1]
        if types != theirs:
            differ.append(f"frame {f.number}: tshark {theirs}, ours {mine.payload_types if mine else 'nothing'}")
    return Check("our decode reads every IKE frame as tshark does (payloads inside SK included)", compared > 0 and not differ,
                 "; ".join(differ) or f"{compared} frames alike")


def capture_checks(frames: Sequence[TsharkFrame], *, mode: str, our_address: str, peer_address: str, quick_modes: int) -> list[Check]:
    """What tshark decrypted with our key tables alone."""
    checks = []
    if mode == "main":
        for who, addr in (("MM5 (initiator) or MM6 (responder) of ipseclab", our_address), ("MM5/MM6 of charon", peer_address)):
            hit = [f for f in frames if f.exchange_type == 2 and f.encrypted and f.src == addr and not f.retransmission]
            ok = bool(hit) and all(5 in f.payloads for f in hit)
            checks.append(Check(f"tshark decrypts the ID payload of {who}", ok, ", ".join(f.describe() for f in hit) or "no encrypted Main Mode frame"))
    else:
        hit = [f for f in frames if f.exchange_type == 4 and f.encrypted and not f.retransmission]
        if hit:
            checks.append(Check("tshark decrypts the encrypted AM3", all(8 in f.payloads or 9 in f.payloads for f in hit), "; ".join(f.describe() for f in hit)))
    qm = [f for f in frames if f.exchange_type == 32 and not f.retransmission]
    mids = {f.message_id for f in qm}
    qm_ok = len(mids) == quick_modes and all(f.decrypted for f in qm)
    full = {mid for mid in mids if any({8, 1, 10, 5} <= set(f.payloads) for f in qm if f.message_id == mid)}
    checks.append(
        Check(
            "tshark decrypts every Quick Mode (HASH, SA, NONCE, ID)",
            qm_ok and full == mids,
            f"{len(mids)} Quick Mode(s), {len(full)} with SA/NONCE/ID readable; " + "; ".join(f.describe() for f in qm),
        )
    )
    esp = [f for f in frames if f.exchange_type is None and f.src == peer_address]
    if esp:
        ok = all(f.inner_icmp for f in esp)
        checks.append(Check("tshark decrypts the ESP-in-UDP packets (inner ICMP)", ok, "; ".join(f.describe() for f in esp)))
    return checks
