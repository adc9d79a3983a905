"""Pieces Main Mode and Aggressive Mode share (RFC 2409 §5, RFC 3947).

Proposal building and selection, vendor IDs, NAT-D payloads, the DH computation and
SKEYID family (each value a :class:`~ipseclab.trace.KeyDerived` event), HASH_I /
HASH_R and RSA signature authentication.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import TYPE_CHECKING

from ipseclab.crypto import kdf_v1
from ipseclab.crypto.certs import verify_issued_by
from ipseclab.crypto.dh import dh_group
from ipseclab.crypto.registry import ike_cipher, ike_hash
from ipseclab.crypto.rsa_sig import sign_raw_pkcs1, verify_raw_pkcs1
from ipseclab.errors import CryptoError
from ipseclab.ikev1.policy import (
    DEFAULT_ISAKMP_POLICY,
    Phase1Choice,
    check_phase1_transform,
    match_phase1,
)
from ipseclab.trace import KeyDerived, NatDetected, PolicyDecision, PortFloated, PublicValue
from ipseclab.wire.v1.constants import (
    AuthMethod,
    CertEncoding,
    IdType,
    NotifyType,
    PayloadType,
    ProtocolId,
)
from ipseclab.wire.v1.isakmp import (
    CertPayload,
    CertReqPayload,
    IDPayload,
    NatDPayload,
    NotifyPayload,
    Payload,
    Proposal,
    SAPayload,
    SigPayload,
    VendorIDPayload,
)

if TYPE_CHECKING:
    from cryptography import x509

    from ipseclab.config import Connection, Identity, PeerConfig
    from ipseclab.ikev1.exchange import ExchangeOwner
    from ipseclab.ikev1.isakmp_sa import IsakmpSa
    from ipseclab.trace import Address

# RFC 3947 §4: MD5("RFC 3947"); draft IDs as sent by common implementations.
VID_RFC3947 = bytes.fromhex("4a131c81070358455c5728f20e95452f")
VID_NATT_DRAFT_02N = bytes.fromhex("90cb80913ebb696e086381b5ec427b1f")
VID_NATT_DRAFT_02 = bytes.fromhex("cd60464335df21f87cfdb2fc68b6a448")
VID_NATT_DRAFT_03 = bytes.fromhex("7d9419a65310ca6f2c179d9215529d56")
VID_DPD = bytes.fromhex("afcad71368a1f1c96b8696fc77570100")  # RFC 3706
DRAFT_VIDS = (VID_NATT_DRAFT_02N, VID_NATT_DRAFT_02, VID_NATT_DRAFT_03)
# their names for display: ipseclab.wire.v1.tree's vendor table


#: transforms a responder weighs in one SA payload (a gateway offers a handful; matching
#: each with explanations costs CPU an unauthenticated peer must not be able to spend)
MAX_TRANSFORMS = 64


# -- vendor IDs and NAT-T ------------------------------------------------------------


def initiator_vendor_ids(nat_traversal: bool) -> list[Payload]:
    vids = [VID_RFC3947, *DRAFT_VIDS] if nat_traversal else []
    return [VendorIDPayload(v) for v in [*vids, VID_DPD]]


def nat_t_type(payloads: list[Payload]) -> int:
    """NAT-D payload type the peer's vendor IDs allow: 20 (RFC 3947), 130 (draft) or 0."""
    vids = {p.data for p in payloads if isinstance(p, VendorIDPayload)}
    if VID_RFC3947 in vids:
        return PayloadType.NAT_D
    if vids & set(DRAFT_VIDS):
        return PayloadType.NAT_D_DRAFT
    return 0


def responder_vendor_ids(nat_t: int) -> list[Payload]:
    vids = []
    if nat_t == PayloadType.NAT_D:
        vids.append(VID_RFC3947)
    elif nat_t == PayloadType.NAT_D_DRAFT:
        vids.append(VID_NATT_DRAFT_02N)
    return [VendorIDPayload(v) for v in [*vids, VID_DPD]]


def nat_d_hash(sa: IsakmpSa, address: Address) -> bytes:
    """RFC 3947 §3.2: HASH = hash(CKY-I | CKY-R | IP | Port) with the negotiated hash."""
    assert sa.hash is not None
    ip = ipaddress.ip_address(address[0]).packed
    return sa.hash.hash(sa.icookie + sa.rcookie + ip + address[1].to_bytes(2, "big"))


def nat_d_payloads(owner: ExchangeOwner, sa: IsakmpSa) -> list[Payload]:
    """NAT-D for the remote address first, then for our own (RFC 3947 §3.2).

    With forced encapsulation our own hash is random, so the peer believes we are
    behind a NAT and both sides float to port 4500 (as strongSwan's ``encap=yes``).
    """
    if not sa.nat_t:
        return []
    draft = sa.nat_t == PayloadType.NAT_D_DRAFT
    remote = nat_d_hash(sa, sa.remote)
    force = sa.connection is not None and sa.connection.force_encapsulation
    local = owner.rng.random_bytes(len(remote)) if force else nat_d_hash(sa, sa.local)
    return [NatDPayload(remote, draft=draft), NatDPayload(local, draft=draft)]


def check_nat_d(owner: ExchangeOwner, sa: IsakmpSa, payloads: list[Payload], src: Address, dst: Address) -> None:
    """Compare the peer's NAT-D hashes with the addresses the packet actually carried."""
    hashes = [p.data for p in payloads if isinstance(p, NatDPayload)]
    if not sa.nat_t or not hashes:
        return
    sa.nat_local = hashes[0] != nat_d_hash(sa, dst)
    sa.nat_remote = nat_d_hash(sa, src) not in hashes[1:]
    forced = sa.connection is not None and sa.connection.force_encapsulation
    owner.emit(NatDetected, sa=sa.ref, local_behind_nat=sa.nat_local, remote_behind_nat=sa.nat_remote, forced=forced)
    if forced:
        sa.nat_local = True


def float_ports(owner: ExchangeOwner, sa: IsakmpSa) -> None:
    """RFC 3947 §4: with a NAT between the peers, move IKE to the NAT-T port."""
    if sa.floated or not sa.nat_t or not sa.nat_detected:
        return
    old = sa.remote
    sa.local = (sa.local[0], owner.config.natt_port)
    sa.remote = (sa.remote[0], owner.config.natt_port)
    sa.floated = True
    owner.emit(PortFloated, sa=sa.ref, old=old, new=sa.remote)


# -- proposals ------------------------------------------------------------------------


def xauth_client(sa: IsakmpSa) -> bool:
    """Will we be authenticated by XAUTH after phase 1 (the connection's ``local_auth``)?"""
    return sa.connection is not None and sa.connection.local_auth == "xauth"


def xauth_server(sa: IsakmpSa) -> bool:
    """Do we authenticate the peer by XAUTH after phase 1 (the connection's ``remote_auth``)?"""
    return sa.connection is not None and sa.connection.remote_auth == "xauth"


def offered_sa(owner: ExchangeOwner, *, group: int | None = None, xauth: bool = False) -> SAPayload:
    """One ISAKMP proposal with a transform per local policy, in priority order.

    Aggressive Mode sends its KE with the first proposal, so only policies with that
    DH group can be offered (``group``).
    """
    policies = sorted(owner.config.isakmp_policies, key=lambda p: p.priority)
    if group is not None:
        policies = [p for p in policies if p.group == group]
    transforms = [p.to_transform(n, xauth=xauth) for n, p in enumerate(policies, 1)]
    return SAPayload([Proposal(1, ProtocolId.ISAKMP, b"", transforms)])


def _crypto_veto(choice: Phase1Choice) -> str | None:
    try:
        ike_cipher(choice.encryption_id, choice.key_bits)
        ike_hash(choice.hash_id)
        dh_group(choice.group)
    except CryptoError as exc:
        return f"ipseclab cannot carry it out: {exc}"
    return None


def select_proposal(owner: ExchangeOwner, sa: IsakmpSa, sa_payload: SAPayload, exchange: str) -> Phase1Choice | None:
    """Responder: choose a transform and explain the choice (RFC 2408 §4.2)."""
    transforms = []
    for prop in sa_payload.proposals:
        if prop.protocol_id == ProtocolId.ISAKMP:
            transforms.extend(prop.transforms)
    result = match_phase1(
        transforms,
        owner.config.isakmp_policies,
        include_default=owner.config.include_default_policy,
        supported=_crypto_veto,
        xauth=xauth_server(sa),
    )
    if not transforms:
        result.explanation.insert(0, "The SA payload holds no ISAKMP proposal.")
    choice = result.choice if isinstance(result.choice, Phase1Choice) else None
    owner.emit(
        PolicyDecision,
        phase=1,
        exchange=exchange,
        accepted=choice is not None,
        explanation=result.explanation,
        checks=result.checks,
        chosen=choice.as_dict() if choice else None,
    )
    return choice


def _attr_set(t) -> list[tuple[int, int]]:  # noqa: ANN001
    """A transform's attributes as sorted (type, value) pairs: order and TV/TLV form ignored."""
    return sorted((a.type, a.int_value) for a in t.attributes)


def accept_response(owner: ExchangeOwner, sa: IsakmpSa, offered: SAPayload, answer: SAPayload, exchange: str) -> Phase1Choice | None:
    """Initiator: the responder must return exactly one transform we offered."""
    chosen = [t for prop in answer.proposals for t in prop.transforms]
    if len(chosen) != 1:
        return None
    t = chosen[0]
    mine = {tr.number: tr for prop in offered.proposals for tr in prop.transforms}
    # Compare attribute *sets*: RFC 2408 §4.2 forbids changing the attributes, not their
    # order, and charon re-encodes the chosen transform (group before auth method).
    ours = mine.get(t.number)
    if ours is None or _attr_set(ours) != _attr_set(t):
        ours = next((tr for tr in mine.values() if _attr_set(tr) == _attr_set(t)), None)
    if ours is None:
        return None
    policies = sorted(owner.config.isakmp_policies, key=lambda p: p.priority)
    policy = policies[ours.number - 1] if ours.number - 1 < len(policies) else DEFAULT_ISAKMP_POLICY
    check, choice = check_phase1_transform(t, policy, xauth=xauth_client(sa))
    if choice is not None:
        owner.emit(
            PolicyDecision,
            phase=1,
            exchange=exchange,
            accepted=True,
            explanation=[f"The responder chose our transform {t.number} ({choice.describe()})."],
            checks=[check],
            chosen=choice.as_dict(),
        )
    return choice


def chosen_sa(offer: SAPayload, choice: Phase1Choice) -> SAPayload:
    """The responder's SA payload: the one chosen transform, unchanged, in its proposal (RFC 2408 §4.2)."""
    prop = next(p for p in offer.proposals if choice.transform in p.transforms)
    return SAPayload([Proposal(prop.number, prop.protocol_id, prop.spi, [choice.transform])], offer.doi, offer.situation)


def apply_choice(sa: IsakmpSa, choice: Phase1Choice) -> None:
    sa.choice = choice
    sa.cipher = ike_cipher(choice.encryption_id, choice.key_bits)
    sa.hash = ike_hash(choice.hash_id)
    sa.group = dh_group(choice.group)


# -- keys -----------------------------------------------------------------------------


def emit_public(owner: ExchangeOwner, sa: IsakmpSa, name: str, value: bytes, note: str = "") -> None:
    owner.emit(PublicValue, sa=sa.ref, name=name, value=value, note=note)


def derive_keys(owner: ExchangeOwner, sa: IsakmpSa, peer_public: bytes) -> None:
    """g^xy, SKEYID, SKEYID_d/a/e, the encryption key and the phase-1 IV (RFC 2409 §5, App. B).

    Raises CryptoError for an invalid peer public value.
    """
    assert sa.dh is not None and sa.hash is not None and sa.cipher is not None and sa.choice is not None
    sa.gxy = sa.dh.shared_secret(peer_public)
    prf = sa.hash
    label = sa.ref

    def key(name: str, formula: str, value: bytes, inputs: list[str]) -> None:
        owner.emit(KeyDerived, sa=label, name=name, formula=formula, value=value, inputs=inputs)

    key("g^xy", "DH shared secret = (g^y)^x mod p", sa.gxy, ["g^xi", "g^xr", "own private value"])
    if sa.choice.auth_id == AuthMethod.PSK:
        psk = psk_for(owner, sa)
        if not psk:
            raise CryptoError("no pre-shared key for this peer")
        sa.skeyid = kdf_v1.skeyid_psk(prf, psk, sa.ni, sa.nr)
        key("SKEYID", "prf(pre-shared-key, Ni_b | Nr_b)", sa.skeyid, ["pre-shared key", "Ni_b", "Nr_b"])
    else:
        sa.skeyid = kdf_v1.skeyid_sig(prf, sa.ni, sa.nr, sa.gxy)
        key("SKEYID", "prf(Ni_b | Nr_b, g^xy)", sa.skeyid, ["Ni_b", "Nr_b", "g^xy"])
    sa.skeyid_d = kdf_v1.skeyid_d(prf, sa.skeyid, sa.gxy, sa.icookie, sa.rcookie)
    key("SKEYID_d", "prf(SKEYID, g^xy | CKY-I | CKY-R | 0)", sa.skeyid_d, ["SKEYID", "g^xy", "CKY-I", "CKY-R"])
    sa.skeyid_a = kdf_v1.skeyid_a(prf, sa.skeyid, sa.skeyid_d, sa.gxy, sa.icookie, sa.rcookie)
    key("SKEYID_a", "prf(SKEYID, SKEYID_d | g^xy | CKY-I | CKY-R | 1)", sa.skeyid_a, ["SKEYID", "SKEYID_d", "g^xy", "CKY-I", "CKY-R"])
    sa.skeyid_e = kdf_v1.skeyid_e(prf, sa.skeyid, sa.skeyid_a, sa.gxy, sa.icookie, sa.rcookie)
    key("SKEYID_e", "prf(SKEYID, SKEYID_a | g^xy | CKY-I | CKY-R | 2)", sa.skeyid_e, ["SKEYID", "SKEYID_a", "g^xy", "CKY-I", "CKY-R"])
    sa.enc_key = kdf_v1.encryption_key(prf, sa.skeyid_e, sa.cipher.key_bytes)
    formula = (
        "first bytes of SKEYID_e"
        if len(sa.skeyid_e) >= sa.cipher.key_bytes
        else "K1 | K2 … with K1 = prf(SKEYID_e, 0), Kn = prf(SKEYID_e, Kn-1) (App. B)"
    )
    key("Ka (encryption key)", formula, sa.enc_key, ["SKEYID_e"])
    sa.iv = kdf_v1.phase1_iv(sa.hash, sa.gxi, sa.gxr, sa.cipher.block_size)
    key("IV (phase 1)", "hash(g^xi | g^xr), first block", sa.iv, ["g^xi", "g^xr"])


# -- authentication -------------------------------------------------------------------


def connection_for(config: PeerConfig, address: str, ident: IDPayload | None) -> Connection | None:
    """The connection for a peer at ``address`` that presented ``ident`` (when known, as
    in Aggressive Mode's first message): among those for the address (or ``%any``), the
    one whose ``remote_id`` is that identity, else one that accepts any identity."""
    candidates = config.connections_for(address)
    if ident is not None:
        named = [c for c in candidates if c.remote_identity is not None and identity_mismatch(c.remote_identity, ident, None) is None]
        anyone = [c for c in candidates if c.remote_identity is None]
        candidates = named or anyone or candidates
    return candidates[0] if candidates else None


def psk_for(owner: ExchangeOwner, sa: IsakmpSa) -> bytes | None:
    """The pre-shared key for this peer, as swanctl's secrets: the connection's (found by
    the peer's address, and identity where known), else the peer-wide default; never an
    empty key."""
    conn = sa.connection
    return (conn.psk if conn is not None else None) or owner.config.psk or None


def no_psk_reason(sa: IsakmpSa) -> str:
    where = f"{sa.remote[0]}"
    if sa.connection is None:
        return (
            f"no pre-shared key for {where}: no connection matches its address and no default "
            "key (peer.psk) is configured — the SA is refused rather than keyed with an empty key"
        )
    return f"no pre-shared key for connection {sa.connection.name} ({where}) and no default key (peer.psk)"


def describe_id(ident: IDPayload) -> str:
    """``ID_FQDN gw.lab`` — the type and value of an Identification payload."""
    try:
        kind = IdType(ident.id_type).name
    except ValueError:
        kind = f"type {ident.id_type}"
    if ident.id_type == IdType.DER_ASN1_DN:
        from ipseclab.config import dn_to_text

        return f"ID_{kind} {dn_to_text(ident.data)}"
    return f"ID_{kind} {_identity_text(ident)}"


def identity_mismatch(want: Identity, ident: IDPayload, cert: x509.Certificate | None) -> str | None:
    """Why the peer's ID payload (and certificate) is not ``want``; ``None`` when it is.

    The ID must be of ``want``'s type and value (a DN compared per RFC 5280); with a
    certificate, ``want`` must also be its subject or one of its subjectAltNames, so a
    holder of any certificate from our CA cannot claim another identity.
    """
    types = {
        "address": (IdType.IPV4_ADDR, IdType.IPV6_ADDR),
        "fqdn": (IdType.FQDN,),
        "user_fqdn": (IdType.USER_FQDN,),
        "dn": (IdType.DER_ASN1_DN,),
    }[want.kind]
    if ident.id_type not in types:
        return "a different identity type"
    if want.kind == "dn":
        der = want.value if isinstance(want.value, bytes) else bytes.fromhex(want.value)
        if not _same_dn(der, ident.data):
            return "a different distinguished name"
    elif want.kind == "address":
        if ipaddress.ip_address(ident.data) != ipaddress.ip_address(str(want.value)):
            return "a different address"
    elif ident.data.decode(errors="replace").lower() != str(want.value).lower():
        return "a different name"
    if cert is None:
        return None
    if want.kind == "dn":
        return None if _same_dn(der, cert.subject.public_bytes()) else "the certificate's subject is another DN"
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return "the certificate has no subjectAltName naming it"
    kinds = {"address": x509.IPAddress, "fqdn": x509.DNSName, "user_fqdn": x509.RFC822Name}
    names = san.get_values_for_type(kinds[want.kind])
    value = ipaddress.ip_address(str(want.value)) if want.kind == "address" else str(want.value).lower()
    if value not in [n if want.kind == "address" else str(n).lower() for n in names]:
        return "the certificate's subjectAltName does not name it"
    return None


def _same_dn(a: bytes, b: bytes) -> bool:
    """Two DER DNs compared per RFC 5280 §7.1 (see :func:`dn_matches`)."""
    from asn1crypto import x509 as asn1_x509

    if a == b:
        return True
    try:
        return asn1_x509.Name.load(a) == asn1_x509.Name.load(b)
    except (ValueError, TypeError, UnicodeDecodeError):  # malformed DER in the peer's ID payload
        return False


def hash_i(sa: IsakmpSa, idii_b: bytes) -> bytes:
    """HASH_I = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b)."""
    assert sa.hash is not None
    return sa.hash.prf(sa.skeyid, sa.gxi + sa.gxr + sa.icookie + sa.rcookie + sa.sai_b + idii_b)


def hash_r(sa: IsakmpSa, idir_b: bytes) -> bytes:
    """HASH_R = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b)."""
    assert sa.hash is not None
    return sa.hash.prf(sa.skeyid, sa.gxr + sa.gxi + sa.rcookie + sa.icookie + sa.sai_b + idir_b)


def uses_signatures(sa: IsakmpSa) -> bool:
    return sa.choice is not None and sa.choice.auth_id == AuthMethod.RSA_SIG


def cert_request(owner: ExchangeOwner) -> list[Payload]:
    """CR naming the CA we trust (RFC 2408 §3.10: the Certificate Authority field is its DN)."""
    ca = owner.config.ca_cert
    return [CertReqPayload(CertEncoding.X509_SIGNATURE, ca.subject.public_bytes() if ca is not None else b"")]


def own_identity(owner: ExchangeOwner, sa: IsakmpSa) -> IDPayload:
    if uses_signatures(sa):
        creds = owner.config.credentials
        if creds is None:
            raise CryptoError("RSA signature authentication needs a certificate and key (see ipseclab.crypto.certs)")
        return IDPayload(IdType.DER_ASN1_DN, creds.subject_dn_der, protocol_id=17, port=500)
    assert owner.config.identity is not None
    ident = owner.config.identity.to_payload()
    ident.protocol_id, ident.port = 17, 500
    return ident


def initial_contact(owner: ExchangeOwner, sa: IsakmpSa) -> list[Payload]:
    """INITIAL-CONTACT (RFC 2407 §4.6.3.3) for the initiator's authenticating message, as
    charon sends it: when the connection names the peer's identity (not ``%any``) and we
    hold no established ISAKMP SA with that peer — we start afresh, so whatever the peer
    still holds of ours is stale. SPI: both cookies. Inside the encrypted message, so only
    the authenticated peer can say it."""
    conn = sa.connection
    if conn is None or conn.remote_identity is None or owner.has_contact(sa):
        return []
    return [NotifyPayload(NotifyType.INITIAL_CONTACT, ProtocolId.ISAKMP, sa.icookie + sa.rcookie)]


def auth_payloads(owner: ExchangeOwner, sa: IsakmpSa, ident: IDPayload, *, initiator: bool) -> list[Payload]:
    """HASH_I/HASH_R, or CERT + SIG_I/SIG_R for RSA signatures (RFC 2409 §5.1)."""
    from ipseclab.wire.v1.isakmp import HashPayload

    body = ident.encode_body()
    digest = hash_i(sa, body) if initiator else hash_r(sa, body)
    if not uses_signatures(sa):
        return [HashPayload(digest)]
    creds = owner.config.credentials
    assert creds is not None
    return [CertPayload(CertEncoding.X509_SIGNATURE, creds.cert_der), SigPayload(sign_raw_pkcs1(creds.key, digest))]


def verify_auth(owner: ExchangeOwner, sa: IsakmpSa, payloads: list[Payload], *, from_initiator: bool) -> tuple[bool, str]:
    """Check the peer's HASH or signature; returns (ok, plain-words reason)."""
    from cryptography import x509

    from ipseclab.wire.v1.isakmp import HashPayload

    ident = next((p for p in payloads if isinstance(p, IDPayload)), None)
    if ident is None:
        return False, "the message carries no Identification payload"
    body = ident.wire_body()
    expected = hash_i(sa, body) if from_initiator else hash_r(sa, body)
    who = "HASH_I" if from_initiator else "HASH_R"
    sa.peer_identity = _identity_text(ident)
    if not uses_signatures(sa):
        got = next((p for p in payloads if isinstance(p, HashPayload)), None)
        if got is None:
            return False, f"the message carries no Hash payload ({who} expected)"
        if not hmac.compare_digest(got.data, expected):
            return False, (
                f"{who} does not match the value computed here: the two sides derived different "
                "SKEYIDs — most likely the pre-shared keys differ"
            )
        return True, f"{who} verified: the peer knows the same pre-shared key"
    sig = next((p for p in payloads if isinstance(p, SigPayload)), None)
    cert_p = next((p for p in payloads if isinstance(p, CertPayload)), None)
    if sig is None or cert_p is None:
        return False, "signature authentication needs CERT and SIG payloads"
    try:
        cert = x509.load_der_x509_certificate(cert_p.data)
    except ValueError:
        return False, "the CERT payload does not hold a valid X.509 certificate"
    ca = owner.config.ca_cert
    if ca is None or not verify_issued_by(cert, ca):
        return False, "the peer's certificate is not issued by our lab CA"
    if ident.id_type == IdType.DER_ASN1_DN and not dn_matches(ident.data, cert.subject):
        return False, "the identity does not match the certificate's subject"
    if not verify_raw_pkcs1(cert.public_key(), sig.data, expected):
        return False, f"SIG_{who[-1]} does not verify with the certificate's public key"
    sa.peer_identity = cert.subject.rfc4514_string()
    sa.peer_cert = cert
    return True, f"SIG_{who[-1]} verified with the certificate of {sa.peer_identity}"


# -- distinguished names ----------------------------------------------------------------


def dn_matches(der: bytes, name: x509.Name) -> bool:
    """Does the ID_DER_ASN1_DN ``der`` name the same entity as certificate subject ``name``?

    Compared per RFC 5280 §7.1 (asn1crypto's Name equality: attribute by attribute after
    string preparation, so the string type, case and extra whitespace do not count) —
    never byte for byte: strongSwan encodes a DN typed in its configuration with
    PrintableString where the certificate has UTF8String.
    """
    return _same_dn(der, name.public_bytes())


def _identity_text(ident: IDPayload) -> str:
    try:
        return str(ident.value)
    except Exception:  # noqa: BLE001 - a display fallback only
        return ident.data.hex()
