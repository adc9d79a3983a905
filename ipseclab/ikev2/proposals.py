"""IKEv2 proposals from the same policies IKEv1 uses, and their selection with reasons
(RFC 7296 §2.7, §3.3).

An IKEv1 ISAKMP policy becomes one IKE proposal: its cipher (ENCR), its hash as PRF
and as INTEG (HMAC-SHA2-256 → PRF_HMAC_SHA2_256 and AUTH_HMAC_SHA2_256_128) and its
group (KE).  A transform set becomes one ESP proposal: ENCR, INTEG (none with
AES-GCM), ESN "no" and — in CREATE_CHILD_SA with PFS — KE.  Unlike IKEv1 a proposal
lists alternatives per transform type; the responder picks one of each, trying the
offered proposals in order against its own policies in priority order, and records
every comparison so the trace can say which transform type did not match which
policy.  A proposal that matches except that the initiator's KE payload is of
another group than the one we would pick asks for INVALID_KE_PAYLOAD (§1.2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ipseclab.crypto.kem import kem_name
from ipseclab.crypto.registry_v2 import encryption_name, integ_id_for_esp, integrity_name, prf_name
from ipseclab.ikev1.policy import IsakmpPolicy, TransformSet
from ipseclab.trace import AttributeCheck, TransformCheck
from ipseclab.wire.v2.constants import EncrId, EsnId, ProtocolId, TransformType
from ipseclab.wire.v2.sa import Proposal, SAPayload, Transform

_ENCR = {"aes128": (EncrId.AES_CBC, 128), "aes192": (EncrId.AES_CBC, 192), "aes256": (EncrId.AES_CBC, 256), "3des": (EncrId.TRIPLE_DES, None)}
_PRF = {"sha1": 2, "sha256": 5, "sha384": 6, "sha512": 7}
_INTEG = {"sha1": 2, "sha256": 12, "sha384": 13, "sha512": 14}
_TYPE_WORDS = {
    TransformType.ENCR: "encryption",
    TransformType.PRF: "PRF",
    TransformType.INTEG: "integrity",
    TransformType.KE: "key exchange (DH group)",
    TransformType.ESN: "extended sequence numbers",
    TransformType.ADDKE1: "additional key exchange 1",
}


def ikev2_capable(policy: IsakmpPolicy) -> bool:
    """Can this ISAKMP policy be offered in IKEv2? (DES and MD5 cannot, RFC 8247 §2.)"""
    return policy.encryption in _ENCR and policy.hash in _PRF and policy.priority != 65535


@dataclass(frozen=True)
class IkeChoice:
    """The IKE SA's suite: one transform of each type, and where it came from."""

    encr_id: int
    key_bits: int | None
    prf_id: int
    integ_id: int | None
    group: int
    lifetime: int
    policy: str
    proposal: int
    auth: str = "psk"
    addke: tuple[int, ...] = ()  # additional key exchanges (RFC 9370), in order

    def describe(self) -> str:
        integ = f"/{integrity_name(self.integ_id)}" if self.integ_id else ""
        extra = "".join(f" + {kem_name(m)}" for m in self.addke)
        return f"{encryption_name(self.encr_id, self.key_bits)}{integ}/{prf_name(self.prf_id)}/DH group {self.group}{extra}"

    def as_dict(self) -> dict[str, object]:
        """The fields of :class:`~ipseclab.trace.IkeSaInfo` an IKEv2 SA fills."""
        return {
            "encryption": encryption_name(self.encr_id, self.key_bits),
            "hash": prf_name(self.prf_id),
            "integrity": integrity_name(self.integ_id) if self.integ_id else "none (AEAD)",
            "auth": {"psk": "pre-shared key", "rsa-sig": "RSA signature"}.get(self.auth, self.auth),
            "group": self.group,
            "lifetime": self.lifetime,
            "transform": self.proposal,
            "policy": 0,
        }


@dataclass(frozen=True)
class ChildChoice:
    """An ESP SA's suite from one transform set."""

    esp_id: int
    key_bits: int | None
    integ_id: int | None
    auth_alg: int | None  # the same integrity in ESP's (IKEv1) numbering, for the data plane
    pfs_group: int | None
    lifetime: int
    transform_set: TransformSet
    proposal: int

    def describe(self) -> str:
        integ = integrity_name(self.integ_id) if self.integ_id else "AEAD"
        pfs = f", PFS DH group {self.pfs_group}" if self.pfs_group else ""
        return f"ESP {encryption_name(self.esp_id, self.key_bits)}/{integ}{pfs}"


@dataclass
class Selection:
    """What a responder decided: a choice or why not, with every comparison made."""

    choice: IkeChoice | ChildChoice | None
    checks: list[TransformCheck]
    explanation: list[str]
    wanted_group: int | None = None  # a match but for the KE payload's group: ask for this one


def _encr_transform(encr_id: int, bits: int | None) -> Transform:
    return Transform.with_key_length(TransformType.ENCR, encr_id, bits) if bits else Transform(TransformType.ENCR, encr_id)


def ike_proposal(policy: IsakmpPolicy, number: int, group: int | None = None) -> Proposal:
    """The IKE proposal (SPI size 0 in IKE_SA_INIT, §3.3.1) offering one policy."""
    encr_id, bits = _ENCR[policy.encryption]
    return Proposal(number, ProtocolId.IKE, b"", [
        _encr_transform(encr_id, bits),
        Transform(TransformType.PRF, _PRF[policy.hash]),
        Transform(TransformType.INTEG, _INTEG[policy.hash]),
        Transform(TransformType.KE, group or policy.group),
        *([Transform(TransformType.ADDKE1, policy.addke)] if policy.addke else []),
    ])


def ike_offer(policies: Sequence[IsakmpPolicy]) -> SAPayload:
    """SAi1: one proposal per IKEv2-capable policy, in priority order."""
    usable = sorted((p for p in policies if ikev2_capable(p)), key=lambda p: p.priority)
    return SAPayload([ike_proposal(p, i) for i, p in enumerate(usable, 1)])


def esp_proposal(ts: TransformSet, number: int, spi: int, *, with_ke: bool) -> Proposal:
    """An ESP proposal for one transform set; ``spi`` is our inbound SPI (§3.3.1)."""
    transforms = [_encr_transform(ts.esp_id, ts.key_bits)]
    if ts.auth_alg:
        transforms.append(Transform(TransformType.INTEG, integ_id_for_esp(ts.auth_alg)))
    if with_ke and ts.pfs_group:
        transforms.append(Transform(TransformType.KE, ts.pfs_group))
    transforms.append(Transform(TransformType.ESN, EsnId.NO_ESN))
    return Proposal(number, ProtocolId.ESP, spi.to_bytes(4, "big"), transforms)


def esp_offer(transform_sets: Sequence[TransformSet], spi: int, *, with_ke: bool) -> SAPayload:
    return SAPayload([esp_proposal(ts, i, spi, with_ke=with_ke) for i, ts in enumerate(transform_sets, 1)])


# -- selection -------------------------------------------------------------------------


def _ids(proposal: Proposal, ttype: int) -> list[tuple[int, int | None]]:
    return [(t.transform_id, t.key_length) for t in proposal.of_type(ttype)]


def _words(ttype: int, ids: list[tuple[int, int | None]]) -> str:
    if not ids:
        return "none"
    if ttype == TransformType.ENCR:
        return ", ".join(encryption_name(i, b) for i, b in ids)
    if ttype == TransformType.PRF:
        return ", ".join(prf_name(i) for i, _ in ids)
    if ttype == TransformType.INTEG:
        return ", ".join(integrity_name(i) if i else "none" for i, _ in ids)
    if ttype == TransformType.KE:
        return ", ".join(f"group {i}" for i, _ in ids)
    if ttype == TransformType.ADDKE1:
        return ", ".join(kem_name(i) if i else "none" for i, _ in ids)
    return ", ".join("yes" if i else "no" for i, _ in ids)


def _compare(proposal: Proposal, wanted: list[tuple[int, tuple[int, int | None] | None]], label: str) -> TransformCheck:
    checks = []
    for ttype, want in wanted:
        offered = _ids(proposal, ttype)
        ok = want in offered if want is not None else not offered or offered == [(0, None)]
        mine = _words(ttype, [want] if want is not None else [])
        message = "" if ok else f"{_TYPE_WORDS[ttype]} offered ({_words(ttype, offered)}) does not include {mine} of {label}"
        checks.append(AttributeCheck(_TYPE_WORDS[ttype], _words(ttype, offered), mine, ok, message))
    return TransformCheck(proposal.number, label, checks, all(c.match for c in checks))


def select_ike(offer: SAPayload, policies: Sequence[IsakmpPolicy], ke_group: int | None) -> Selection:
    """Pick one IKE proposal (§2.7): offered order first, then our policies' priority."""
    usable = sorted((p for p in policies if ikev2_capable(p)), key=lambda p: p.priority)
    checks: list[TransformCheck] = []
    wanted_group: int | None = None
    for proposal in offer.proposals:
        if proposal.protocol_id != ProtocolId.IKE:
            continue
        for policy in usable:
            encr = _ENCR[policy.encryption]
            want = [
                (TransformType.ENCR, encr),
                (TransformType.PRF, (_PRF[policy.hash], None)),
                (TransformType.INTEG, (_INTEG[policy.hash], None)),
                (TransformType.KE, (policy.group, None)),
                (TransformType.ADDKE1, (policy.addke, None) if policy.addke else None),
            ]
            check = _compare(proposal, want, policy.label)
            checks.append(check)
            if not check.accepted:
                continue
            if ke_group != policy.group:
                check.notes.append(f"the KE payload is group {ke_group}, this proposal is taken with group {policy.group}")
                wanted_group = wanted_group or policy.group
                continue
            choice = IkeChoice(encr[0], encr[1], _PRF[policy.hash], _INTEG[policy.hash], policy.group,
                               policy.lifetime, policy.label, proposal.number, policy.auth,
                               (policy.addke,) if policy.addke else ())
            return Selection(choice, checks, [f"proposal {proposal.number} matches {policy.label}: {choice.describe()}"])
    if wanted_group is not None:
        return Selection(None, checks, [f"a proposal matches with DH group {wanted_group}, but the KE payload is of group "
                                        f"{ke_group}: INVALID_KE_PAYLOAD asks the initiator to send group {wanted_group}"],
                         wanted_group)
    lines = [f"no offered proposal matches any of our policies ({', '.join(p.label for p in usable) or 'none usable in IKEv2'})"]
    lines += [c.message for tc in checks for c in tc.checks if not c.match][:6]
    return Selection(None, checks, lines)


def accept_ike_answer(offer: SAPayload, answer: SAPayload, policies: Sequence[IsakmpPolicy]) -> IkeChoice | str:
    """The responder's SAr1 must be one of our proposals cut to one transform per type."""
    if len(answer.proposals) != 1:
        return f"the responder answered with {len(answer.proposals)} proposals instead of one"
    got = answer.proposals[0]
    usable = sorted((p for p in policies if ikev2_capable(p)), key=lambda p: p.priority)
    mine = next((p for p in offer.proposals if p.number == got.number), None)
    if mine is None:
        return f"the responder chose proposal {got.number}, which we did not offer"
    for ttype in (TransformType.ENCR, TransformType.PRF, TransformType.INTEG, TransformType.KE, TransformType.ADDKE1):
        chosen = _ids(got, ttype)
        if len(chosen) > 1 or any(c not in _ids(mine, ttype) for c in chosen):
            return f"the responder chose {_TYPE_WORDS[ttype]} {_words(ttype, chosen)}, which proposal {got.number} did not offer"
    addke = tuple(i for i, _ in _ids(got, TransformType.ADDKE1) if i)
    if _ids(mine, TransformType.ADDKE1) and not addke:
        return "the responder dropped the additional key exchange (ADDKE1) we proposed"
    policy = usable[got.number - 1] if 0 < got.number <= len(usable) else usable[0]
    (encr_id, bits), = _ids(got, TransformType.ENCR)
    integ = _ids(got, TransformType.INTEG)
    (group, _), = _ids(got, TransformType.KE)
    (prf_id, _), = _ids(got, TransformType.PRF)
    return IkeChoice(encr_id, bits, prf_id, integ[0][0] if integ else None, group, policy.lifetime, policy.label, got.number,
                     policy.auth, addke)


def select_esp(offer: SAPayload, transform_sets: Sequence[TransformSet], *, ke_group: int | None) -> Selection:
    """Pick one ESP proposal for a child; ``ke_group`` is the KE payload's group (PFS) or None."""
    checks: list[TransformCheck] = []
    for proposal in offer.proposals:
        if proposal.protocol_id != ProtocolId.ESP or len(proposal.spi) != 4:
            continue
        for ts in transform_sets:
            integ = integ_id_for_esp(ts.auth_alg) if ts.auth_alg else None
            want: list[tuple[int, tuple[int, int | None] | None]] = [
                (TransformType.ENCR, (ts.esp_id, ts.key_bits)),
                (TransformType.INTEG, (integ, None) if integ else None),
                (TransformType.ESN, (EsnId.NO_ESN, None)),
            ]
            pfs = ts.pfs_group if ke_group is not None else None
            if pfs:
                want.append((TransformType.KE, (pfs, None)))
            check = _compare(proposal, want, f"transform set {ts.name}")
            checks.append(check)
            if check.accepted:
                choice = ChildChoice(ts.esp_id, ts.key_bits, integ, ts.auth_alg, pfs, ts.lifetime, ts, proposal.number)
                return Selection(choice, checks, [f"ESP proposal {proposal.number} matches transform set {ts.name}: {choice.describe()}"])
    lines = [f"no offered ESP proposal matches any transform set ({', '.join(ts.name for ts in transform_sets)})"]
    lines += [c.message for tc in checks for c in tc.checks if not c.match][:6]
    return Selection(None, checks, lines)


def chosen_proposal(proposal: Proposal, choice: IkeChoice | ChildChoice, spi: bytes) -> Proposal:
    """The answer: the chosen proposal's number with one transform of each type and our SPI."""
    if isinstance(choice, IkeChoice):
        transforms = [_encr_transform(choice.encr_id, choice.key_bits), Transform(TransformType.PRF, choice.prf_id)]
        if choice.integ_id:
            transforms.append(Transform(TransformType.INTEG, choice.integ_id))
        transforms.append(Transform(TransformType.KE, choice.group))
        transforms += [Transform(TransformType.ADDKE1 + i, m) for i, m in enumerate(choice.addke)]
        return Proposal(proposal.number, ProtocolId.IKE, spi, transforms)
    transforms = [_encr_transform(choice.esp_id, choice.key_bits)]
    if choice.integ_id:
        transforms.append(Transform(TransformType.INTEG, choice.integ_id))
    if choice.pfs_group:
        transforms.append(Transform(TransformType.KE, choice.pfs_group))
    transforms.append(Transform(TransformType.ESN, EsnId.NO_ESN))
    return Proposal(proposal.number, ProtocolId.ESP, spi, transforms)


def accept_esp_answer(offer: SAPayload, answer: SAPayload, transform_sets: Sequence[TransformSet]) -> ChildChoice | str:
    """The responder's SAr2 must be one of our ESP proposals cut to one transform per type."""
    if len(answer.proposals) != 1 or len(answer.proposals[0].spi) != 4:
        return "the responder's ESP answer is not one proposal with a 4-byte SPI"
    got = answer.proposals[0]
    if not 0 < got.number <= len(transform_sets):
        return f"the responder chose ESP proposal {got.number}, which we did not offer"
    ts = transform_sets[got.number - 1]
    mine = next(p for p in offer.proposals if p.number == got.number)
    for ttype in (TransformType.ENCR, TransformType.INTEG, TransformType.KE, TransformType.ESN):
        chosen = _ids(got, ttype)
        if len(chosen) > 1 or any(c not in _ids(mine, ttype) for c in chosen):
            return f"the responder chose {_TYPE_WORDS[ttype]} {_words(ttype, chosen)}, which we did not offer"
    ke = _ids(got, TransformType.KE)
    integ = integ_id_for_esp(ts.auth_alg) if ts.auth_alg else None
    return ChildChoice(ts.esp_id, ts.key_bits, integ, ts.auth_alg, ke[0][0] if ke else None, ts.lifetime, ts, got.number)
