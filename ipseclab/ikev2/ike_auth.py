"""IKE_AUTH, RFC 7296 §1.2 and §2.15: identities, authentication, the first child SA.

::

    Initiator                               Responder
    HDR, SK {IDi, [IDr,] AUTH,
             [N(INITIAL_CONTACT),]
             SAi2, TSi, TSr}           -->
                                       <--  HDR, SK {IDr, AUTH, SAr2, TSi, TSr}

Each side signs (here: MACs with the pre-shared key) the first message it sent, the
other side's nonce and its own identity under SK_p (§2.15)::

    InitiatorSignedOctets = RealMessage1 | NonceRData | prf(SK_pi, IDi')
    ResponderSignedOctets = RealMessage2 | NonceIData | prf(SK_pr, IDr')
    AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)

so a man in the middle who changed IKE_SA_INIT (a weaker proposal, his own KE) is
found out here.  A wrong key is AUTHENTICATION_FAILED and ends the IKE SA; a child
that cannot be agreed (NO_PROPOSAL_CHOSEN, TS_UNACCEPTABLE) leaves the IKE SA up
without it (§2.21.2).  The first message protected with SK_e is also where a peer
behind a NAT moves to UDP 4500 (§2.23).
"""

from __future__ import annotations

import hmac as _hmac  # compare_digest only
import ipaddress

from ipseclab.config import Identity
from ipseclab.crypto import kdf_v2, signature_v2
from ipseclab.crypto.certs import verify_issued_by
from ipseclab.ikev1.phase1 import dn_matches, identity_mismatch
from ipseclab.ikev2 import child as children
from ipseclab.ikev2 import eap, remote_access
from ipseclab.ikev2.exchange import InitiatorExchange, Owner, Reject, Rx, notify_name
from ipseclab.ikev2.ike_sa import IkeSaV2, IkeState
from ipseclab.ikev2.intermediate import int_auth, pending_round
from ipseclab.trace import IkeSaInfo, Info, KeyDerived
from ipseclab.wire.v1.payloads import IDPayload as V1IdPayload
from ipseclab.wire.v2.constants import AuthMethod, CertEncoding, ExchangeType, IdType, NotifyType
from ipseclab.wire.v2.message import (
    AuthPayload,
    CertPayload,
    CertReqPayload,
    EAPPayload,
    IDiPayload,
    IDrPayload,
    NotifyPayload,
    Payload,
)

_ID_TYPES = {"address": None, "fqdn": IdType.FQDN, "user_fqdn": IdType.RFC822_ADDR, "dn": IdType.DER_ASN1_DN}


def id_fields(identity: Identity) -> tuple[int, bytes]:
    """An identity as IKEv2 ID type and data (RFC 7296 §3.5)."""
    if identity.kind == "address":
        ip = ipaddress.ip_address(str(identity.value))
        return (IdType.IPV4_ADDR if ip.version == 4 else IdType.IPV6_ADDR), ip.packed
    if identity.kind == "dn":
        value = identity.value
        return IdType.DER_ASN1_DN, value if isinstance(value, bytes) else bytes.fromhex(value)
    return int(_ID_TYPES[identity.kind] or 0), str(identity.value).encode()


def describe_id(id_type: int, data: bytes) -> str:
    """``ID_FQDN gw.lab`` — the type and value, in words."""
    try:
        kind = "ID_" + IdType(id_type).name
    except ValueError:
        kind = f"ID type {id_type}"
    if id_type in (IdType.IPV4_ADDR, IdType.IPV6_ADDR) and len(data) in (4, 16):
        return f"{kind} {ipaddress.ip_address(data)}"
    if id_type == IdType.DER_ASN1_DN:
        from ipseclab.config import dn_to_text

        return f"{kind} {dn_to_text(data)}"
    return f"{kind} {data.decode(errors='replace')}"


def mismatch(want: Identity, id_type: int, data: bytes) -> str | None:
    """Why an IKEv2 identity is not ``want`` (IKEv2's ID types 1, 2, 3, 5, 9 are IKEv1's numbers)."""
    return identity_mismatch(want, V1IdPayload(id_type, data), None)


def _psk(owner: Owner, sa: IkeSaV2) -> bytes | None:
    conn = sa.connection
    return (conn.psk if conn is not None else None) or owner.config.psk or None


def uses_signatures(sa: IkeSaV2) -> bool:
    """Does our side authenticate with a certificate (the policy's ``auth = rsa-sig``)?"""
    return sa.choice is not None and sa.choice.auth == "rsa-sig"


def _signed_octets(sa: IkeSaV2, *, of_initiator: bool, id_body: bytes) -> bytes:
    """``RealMessage | NonceData | prf(SK_p, ID')`` of one side (§2.15)."""
    assert sa.prf is not None and sa.keys is not None
    sk_p = sa.keys.sk_pi if of_initiator else sa.keys.sk_pr
    real, nonce = (sa.init_request, sa.nr) if of_initiator else (sa.init_response, sa.ni)
    return kdf_v2.signed_octets(real, nonce, kdf_v2.maced_id(sa.prf, sk_p, id_body), int_auth(sa, sa.auth_message_id))


def _own_auth(owner: Owner, sa: IkeSaV2, *, of_initiator: bool, id_body: bytes) -> list[Payload]:
    """CERT and a signature (RFC 7427), or the PSK's MIC — the AUTH of our side."""
    if uses_signatures(sa):
        creds = owner.config.credentials
        if creds is None:
            raise Reject(NotifyType.AUTHENTICATION_FAILED, "signature authentication needs our certificate and key (peer.cert, peer.key)")
        octets = _signed_octets(sa, of_initiator=of_initiator, id_body=id_body)
        method, data = signature_v2.sign(creds.key, octets)
        who = "I" if of_initiator else "R"
        owner.emit(Info, sa=sa.ref, message=f"AUTH ({who}): signed with our certificate's key (RFC 7427 digital signature, "
                   f"SHA-256) over RealMessage{1 if of_initiator else 2} | nonce | prf(SK_p{who.lower()}, ID{who.lower()}')")
        return [CertPayload(CertEncoding.X509_SIGNATURE, creds.cert_der), AuthPayload(method, data)]
    psk = _psk(owner, sa)
    if psk is None:
        raise Reject(NotifyType.AUTHENTICATION_FAILED, f"no pre-shared key for {sa.remote[0]} (connection or peer.psk)")
    return [AuthPayload(AuthMethod.SHARED_KEY_MIC, _auth_value(owner, sa, psk, of_initiator=of_initiator, id_body=id_body))]


def _auth_value(owner: Owner, sa: IkeSaV2, psk: bytes, *, of_initiator: bool, id_body: bytes) -> bytes:
    assert sa.prf is not None
    octets = _signed_octets(sa, of_initiator=of_initiator, id_body=id_body)
    value = kdf_v2.psk_auth(sa.prf, psk, octets)
    who = "I" if of_initiator else "R"
    owner.emit(KeyDerived, sa=sa.ref, name=f"AUTH ({who})",
               formula=f'prf(prf(PSK, "Key Pad for IKEv2"), RealMessage{1 if of_initiator else 2} | '
               f'{"Nr" if of_initiator else "Ni"} | prf(SK_p{who.lower()}, ID{who.lower()}\'))',
               value=value, inputs=[f"IKE_SA_INIT {'request' if of_initiator else 'response'}",
                                    "Nr" if of_initiator else "Ni", f"SK_p{who.lower()}", f"ID{who.lower()}"])
    return value


def _verify(owner: Owner, sa: IkeSaV2, auth: AuthPayload | None, id_body: bytes, *, of_initiator: bool,
            rx: Rx | None = None, ident: tuple[int, bytes] | None = None) -> None:
    """Check the peer's AUTH; Reject(AUTHENTICATION_FAILED) in plain words when it fails."""
    who = "initiator" if of_initiator else "responder"
    if auth is None:
        raise Reject(NotifyType.AUTHENTICATION_FAILED, f"the {who} sent no AUTH payload")
    if uses_signatures(sa):
        assert rx is not None and ident is not None
        _verify_signature(owner, sa, auth, rx, ident, id_body, of_initiator=of_initiator)
        return
    if auth.method != AuthMethod.SHARED_KEY_MIC:
        raise Reject(NotifyType.AUTHENTICATION_FAILED,
                     f"the {who} authenticates with method {auth.method} ({_method(auth.method)}); this connection uses a pre-shared key")
    psk = _psk(owner, sa)
    if psk is None:
        raise Reject(NotifyType.AUTHENTICATION_FAILED, f"no pre-shared key for {sa.remote[0]} (connection or peer.psk)")
    want = _auth_value(owner, sa, psk, of_initiator=of_initiator, id_body=id_body)
    if not _hmac.compare_digest(want, auth.data):
        raise Reject(NotifyType.AUTHENTICATION_FAILED,
                     f"the {who}'s AUTH does not match ours: the pre-shared keys differ (or IKE_SA_INIT was changed on the "
                     "way — AUTH covers it)")


def _verify_signature(owner: Owner, sa: IkeSaV2, auth: AuthPayload, rx: Rx, ident: tuple[int, bytes], id_body: bytes,
                      *, of_initiator: bool) -> None:
    """The peer's certificate (issued by our CA, naming its identity) and its signature."""
    from cryptography import x509

    who = "initiator" if of_initiator else "responder"
    if auth.method == AuthMethod.SHARED_KEY_MIC:
        raise Reject(NotifyType.AUTHENTICATION_FAILED, f"the {who} authenticates with a pre-shared key; this connection uses certificates")
    cert_p = next((c for c in rx.all(CertPayload) if c.encoding == CertEncoding.X509_SIGNATURE), None)
    if cert_p is None:
        raise Reject(NotifyType.AUTHENTICATION_FAILED, f"the {who} signs but sent no X.509 certificate (CERT, encoding 4)")
    try:
        cert = x509.load_der_x509_certificate(cert_p.data)
    except ValueError:
        raise Reject(NotifyType.AUTHENTICATION_FAILED, f"the {who}'s CERT payload is not a valid X.509 certificate") from None
    ca = owner.config.ca_cert
    if ca is None or not verify_issued_by(cert, ca):
        raise Reject(NotifyType.AUTHENTICATION_FAILED, f"the {who}'s certificate ({cert.subject.rfc4514_string()}) is not issued by our lab CA")
    id_type, data = ident
    if id_type == IdType.DER_ASN1_DN and not dn_matches(data, cert.subject):
        raise Reject(NotifyType.AUTHENTICATION_FAILED, f"the {who} claims {describe_id(id_type, data)}, but its certificate is "
                     f"{cert.subject.rfc4514_string()}")
    if id_type != IdType.DER_ASN1_DN:  # an address or name must be one of the certificate's subjectAltNames
        claimed = Identity.parse(describe_id(id_type, data).split(" ", 1)[1])
        why = identity_mismatch(claimed, V1IdPayload(id_type, data), cert)
        if why is not None:
            raise Reject(NotifyType.AUTHENTICATION_FAILED, f"the {who}'s certificate does not name {describe_id(id_type, data)}: {why}")
    octets = _signed_octets(sa, of_initiator=of_initiator, id_body=id_body)
    why = signature_v2.verify(cert.public_key(), auth.method, auth.data, octets)  # type: ignore[arg-type]
    if why is not None:
        raise Reject(NotifyType.AUTHENTICATION_FAILED, f"the {who}'s AUTH ({_method(auth.method)}): {why}")
    owner.emit(Info, sa=sa.ref, message=f"the {who}'s signature ({_method(auth.method)}) verified with the certificate of "
               f"{cert.subject.rfc4514_string()}, issued by our CA")


def _method(method: int) -> str:
    try:
        return AuthMethod(method).name
    except ValueError:
        return "unknown"


def _own_id(owner: Owner, sa: IkeSaV2) -> tuple[int, bytes]:
    """Our identity: with a certificate, its subject DN (as charon does); else the configured one."""
    creds = owner.config.credentials
    if uses_signatures(sa) and creds is not None and not eap_client(sa):
        return IdType.DER_ASN1_DN, creds.subject_dn_der
    identity = owner.config.identity
    assert identity is not None
    return id_fields(identity)


def eap_client(sa: IkeSaV2) -> bool:
    """Do we prove ourselves by EAP (the connection's ``local_auth``), as a remote-access client?"""
    return sa.connection is not None and bool(sa.connection.local_auth)


def _eap_auth(owner: Owner, sa: IkeSaV2, *, of_initiator: bool, id_body: bytes) -> bytes:
    """The last AUTH after EAP (§2.16): keyed with the MSK, or — EAP-MD5 makes none — SK_pi/SK_pr."""
    assert sa.prf is not None and sa.keys is not None
    who = "i" if of_initiator else "r"
    value = kdf_v2.psk_auth(sa.prf, sa.keys.sk_pi if of_initiator else sa.keys.sk_pr,
                            _signed_octets(sa, of_initiator=of_initiator, id_body=id_body))
    owner.emit(KeyDerived, sa=sa.ref, name=f"AUTH ({who.upper()}, after EAP)",
               formula=f'prf(prf(SK_p{who}, "Key Pad for IKEv2"), RealMessage{1 if of_initiator else 2} | '
               f'{"Nr" if of_initiator else "Ni"} | prf(SK_p{who}, ID{who}\'))  — EAP-MD5 makes no MSK',
               value=value, inputs=[f"SK_p{who}", f"IKE_SA_INIT {'request' if of_initiator else 'response'}",
                                    "Nr" if of_initiator else "Ni", f"ID{who}"])
    return value


def _check_eap_auth(owner: Owner, sa: IkeSaV2, auth: AuthPayload | None, *, of_initiator: bool, id_body: bytes) -> None:
    who = "client" if of_initiator else "gateway"
    if auth is None:
        raise Reject(NotifyType.AUTHENTICATION_FAILED, f"after EAP Success the {who} sent no AUTH (RFC 7296 §2.16)")
    want = _eap_auth(owner, sa, of_initiator=of_initiator, id_body=id_body)
    if auth.method != AuthMethod.SHARED_KEY_MIC or not _hmac.compare_digest(want, auth.data):
        raise Reject(NotifyType.AUTHENTICATION_FAILED, f"the {who}'s AUTH after EAP is not prf(prf(SK_p{'i' if of_initiator else 'r'}, "
                     '"Key Pad for IKEv2"), <SignedOctets>): it did not take part in this EAP conversation and IKE SA')


def cert_request(owner: Owner, sa: IkeSaV2) -> list[Payload]:
    """CERTREQ naming the CA we trust: the SHA-1 hash of its public key (RFC 7296 §3.7)."""
    from cryptography.hazmat.primitives import serialization

    from ipseclab.crypto.registry import ike_hash

    ca = owner.config.ca_cert
    if not uses_signatures(sa) or ca is None:
        return []
    spki = ca.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return [CertReqPayload(CertEncoding.X509_SIGNATURE, ike_hash(2).hash(spki))]


def _info(sa: IkeSaV2) -> IkeSaInfo:
    assert sa.choice is not None
    return IkeSaInfo(role="initiator" if sa.initiator else "responder", mode="ikev2", peer=f"{sa.remote[0]}:{sa.remote[1]}",
                     peer_id=sa.peer_identity, **sa.choice.as_dict(), nat_t=bool(sa.nat_t),
                     nat_detected=sa.nat_local or sa.nat_remote, virtual_ip=sa.virtual_ip or "",
                     eap_id=sa.eap_identity)


def established(owner: Owner, sa: IkeSaV2) -> None:
    owner.set_state(sa, IkeState.ESTABLISHED)
    assert sa.choice is not None
    owner.peer.ike_established(sa, _info(sa), lifetime=sa.choice.lifetime)


class IkeAuthInitiator(InitiatorExchange):
    exchange_type = ExchangeType.IKE_AUTH
    name = "IKE_AUTH"

    def __init__(self, owner: Owner, sa: IkeSaV2) -> None:
        super().__init__(owner, sa)
        conn = sa.connection
        self.offer = children.make_offer(owner, conn.children[0], with_ke=False) if conn and conn.children else None
        #: with EAP (§2.16) IKE_AUTH takes several rounds: the requests after the first, and
        #: the responder's IDr (its last AUTH covers it)
        self.rounds = 0
        self.eap: eap.EapClient | None = None
        self.pending: list[Payload] = []
        self.idr_body = b""

    @property
    def child_name(self) -> str | None:
        return self.offer.child.name if self.offer else None

    def build(self) -> list[Payload]:
        if self.rounds:
            return self.pending
        owner, sa = self.owner, self.sa
        id_type, data = _own_id(owner, sa)
        idi = IDiPayload(id_type, data)
        out: list[Payload] = [idi]
        conn = sa.connection
        if conn is not None and conn.remote_identity is not None:
            out.append(IDrPayload(*id_fields(conn.remote_identity)))
        if eap_client(sa):  # no AUTH: "I authenticate by EAP" (§2.16)
            assert conn is not None
            self.eap = eap.EapClient(idi.encode_body(), conn.eap_id or describe_id(id_type, data).split(" ", 1)[1])
            auth = []
            owner.emit(Info, sa=sa.ref, message=f"IKE_AUTH without AUTH: we prove ourselves by EAP ({conn.local_auth}) "
                       f"as {self.eap.identity!r}, after the gateway has proved itself (RFC 7296 §2.16)")
        else:
            auth = _own_auth(owner, sa, of_initiator=True, id_body=idi.encode_body())
        out[1:1] = [p for p in auth if isinstance(p, CertPayload)] + cert_request(owner, sa)
        out += [p for p in auth if isinstance(p, AuthPayload)]
        # RFC 7296 §2.4: "the only IKE SA currently active" — none other with this peer, up or negotiating
        if not any(s is not sa and not s.failed and s.remote[0] == sa.remote[0] for s in owner.peer.ike_sas.values()):
            out.append(NotifyPayload(NotifyType.INITIAL_CONTACT))
        out += remote_access.request(conn)
        if self.offer is not None:
            out += self.offer.payloads()
        return out

    def process(self, rx: Rx) -> None:
        if self.rounds:
            self._eap_round(rx)
            return
        owner, sa = self.owner, self.sa
        idr, auth = rx.first(IDrPayload), rx.first(AuthPayload)
        fatal = [e for e in rx.errors() if e.notify_type in (NotifyType.AUTHENTICATION_FAILED, NotifyType.INVALID_SYNTAX)]
        if fatal or idr is None or auth is None:
            what = notify_name(fatal[0].notify_type) if fatal else "no IDr/AUTH"
            words = ("the responder did not accept our authentication (AUTHENTICATION_FAILED): check that both sides "
                     "use the same pre-shared key and that it accepts our identity"
                     if fatal and fatal[0].notify_type == NotifyType.AUTHENTICATION_FAILED
                     else f"the IKE_AUTH response carries {what}")
            owner.fail_ike(sa, what.upper().replace(" ", "_"), words)
            return
        conn = sa.connection
        if conn is not None and conn.remote_identity is not None:
            why = mismatch(conn.remote_identity, idr.id_type, idr.data)
            if why is not None:
                owner.fail_ike(sa, "AUTHENTICATION_FAILED", f"the responder is {describe_id(idr.id_type, idr.data)}, "
                               f"not {conn.remote_identity.describe()}: {why}")
                return
        try:
            _verify(owner, sa, auth, idr.encode_body(), of_initiator=False, rx=rx, ident=(idr.id_type, idr.data))
        except Reject as reject:
            owner.fail_ike(sa, "AUTHENTICATION_FAILED", reject.message)
            return
        sa.peer_identity = describe_id(idr.id_type, idr.data).split(" ", 1)[1]
        owner.peer.follow_peer(sa, rx.src, rx.dst)
        if self.eap is not None:
            self.idr_body = idr.encode_body()
            self._eap_round(rx)
            return
        self._finish(rx)

    def _eap_round(self, rx: Rx) -> None:
        """A response during EAP: answer the gateway's request, or send the last AUTH, or finish."""
        owner, sa = self.owner, self.sa
        assert self.eap is not None
        if self.eap.succeeded:
            try:
                _check_eap_auth(owner, sa, rx.first(AuthPayload), of_initiator=False, id_body=self.idr_body)
            except Reject as reject:
                errors = rx.errors()
                owner.fail_ike(sa, "AUTHENTICATION_FAILED", f"the gateway refused our AUTH ({notify_name(errors[0].notify_type)})"
                               if errors else reject.message)
                return
            self._finish(rx)
            return
        errors = rx.errors()
        if errors and rx.first(EAPPayload) is None:
            owner.fail_ike(sa, notify_name(errors[0].notify_type), f"the gateway ended EAP with {notify_name(errors[0].notify_type)}")
            return
        step = eap.client_step(self.eap, rx.first(EAPPayload), owner.config.eap_users.get(self.eap.identity))
        if step.outcome == "failure":
            owner.fail_ike(sa, "AUTHENTICATION_FAILED", step.message)
            return
        owner.emit(Info, sa=sa.ref, message=step.message)
        if step.outcome == "success":
            sa.eap_identity = self.eap.identity
            self.pending = [AuthPayload(AuthMethod.SHARED_KEY_MIC, _eap_auth(owner, sa, of_initiator=True, id_body=self.eap.idi_body))]
        else:
            assert step.reply is not None
            self.pending = [step.reply]
        self.rounds += 1
        owner.request(sa, self)

    def _finish(self, rx: Rx) -> None:
        """Authenticated both ways: the virtual IP, the IKE SA, the first child."""
        owner, sa = self.owner, self.sa
        self.done = True
        remote_access.accept(owner, sa, rx)
        established(owner, sa)
        if self.offer is None:
            return
        errors = rx.errors()
        if errors:
            owner.emit(Info, sa=sa.ref, message=f"the IKE SA is up but the responder refused child {self.offer.child.name}: "
                       f"{notify_name(errors[0].notify_type)}")
            return
        pair = children.complete(owner, sa, self.offer, rx, ni=sa.ni, nr=sa.nr, message_id=rx.message.message_id)
        if isinstance(pair, str):
            owner.emit(Info, sa=sa.ref, message=f"child {self.offer.child.name} not established: {pair}")
            return
        children.announce(owner, sa, pair, initiator=True)

    def on_timeout(self, tries: int) -> None:
        self.owner.fail_ike(self.sa, "TIMEOUT", f"no answer to IKE_AUTH after {tries} transmissions")


def respond(owner: Owner, sa: IkeSaV2, rx: Rx) -> list[Payload]:
    """The responder's IKE_AUTH: identify and authenticate the initiator, answer, then the child."""
    if sa.eap is not None:
        return _eap_continue(owner, sa, rx)
    idi, auth = rx.first(IDiPayload), rx.first(AuthPayload)
    if idi is None:
        raise Reject(NotifyType.AUTHENTICATION_FAILED, "IKE_AUTH request without IDi")
    if pending_round(sa) is not None:
        raise Reject(NotifyType.AUTHENTICATION_FAILED, "IKE_AUTH before the agreed additional key exchange (IKE_INTERMEDIATE)")
    sa.auth_message_id = rx.message.message_id
    candidates = owner.config.connections_for(sa.remote[0])
    named = [c for c in candidates if c.remote_identity is not None and mismatch(c.remote_identity, idi.id_type, idi.data) is None]
    anyone = [c for c in candidates if c.remote_identity is None]
    conn = (named or anyone or [None])[0]
    if conn is None:
        who = describe_id(idi.id_type, idi.data)
        raise Reject(NotifyType.AUTHENTICATION_FAILED, f"no connection for {sa.remote[0]} accepts {who}")
    sa.connection = conn
    idr_wanted = rx.first(IDrPayload)
    own_type, own_data = _own_id(owner, sa)
    if idr_wanted is not None and (idr_wanted.id_type, idr_wanted.data) != (own_type, own_data):
        owner.emit(Info, sa=sa.ref, message=f"the initiator asked for {describe_id(idr_wanted.id_type, idr_wanted.data)}; "
                   f"we are {describe_id(own_type, own_data)} and answer as such")
    if auth is None and not conn.remote_auth:
        raise Reject(NotifyType.AUTHENTICATION_FAILED, f"the initiator sent no AUTH — it wants to authenticate by EAP "
                     f"(RFC 7296 §2.16) — and connection {conn.name} does not ask for EAP (remote_auth)")
    if auth is not None and conn.remote_auth:
        raise Reject(NotifyType.AUTHENTICATION_FAILED, f"the initiator authenticates with AUTH ({_method(auth.method)}), but "
                     f"connection {conn.name} wants its clients to prove themselves by {conn.remote_auth} (remote_auth)")
    if auth is not None:
        _verify(owner, sa, auth, idi.encode_body(), of_initiator=True, rx=rx, ident=(idi.id_type, idi.data))
    sa.peer_identity = describe_id(idi.id_type, idi.data).split(" ", 1)[1]
    owner.peer.follow_peer(sa, rx.src, rx.dst)
    idr = IDrPayload(own_type, own_data)
    out: list[Payload] = [idr, *_own_auth(owner, sa, of_initiator=False, id_body=idr.encode_body())]
    if auth is None:  # EAP: we have proved ourselves; now the client, by EAP, before anything else
        state = eap.EapServer(eap.METHODS[conn.remote_auth], owner.rng.random_bytes(1)[0], rx, idi.encode_body(),
                              idr_body=idr.encode_body())
        sa.eap = state
        step = eap.start(state)
        owner.emit(Info, sa=sa.ref, message=f"{sa.peer_identity} sent no AUTH: it proves itself by EAP ({conn.remote_auth}, "
                   f"RFC 7296 §2.16); we proved ourselves first. {step.message}")
        assert step.reply is not None
        return out + [step.reply]
    return out + _accept_initiator(owner, sa, rx, rx.message.message_id)


def _eap_continue(owner: Owner, sa: IkeSaV2, rx: Rx) -> list[Payload]:
    """A later IKE_AUTH request of an EAP conversation: the client's EAP Response, or its last AUTH."""
    state: eap.EapServer = sa.eap
    if state.stage == "success":
        _check_eap_auth(owner, sa, rx.first(AuthPayload), of_initiator=True, id_body=state.idi_body)
        sa.eap, sa.eap_identity = None, state.identity
        owner.emit(Info, sa=sa.ref, message=f"{sa.peer_identity} proved itself by EAP as {state.identity!r}; its first "
                   "IKE_AUTH request's CP, SAi2, TSi and TSr are answered now")
        out: list[Payload] = [AuthPayload(AuthMethod.SHARED_KEY_MIC, _eap_auth(owner, sa, of_initiator=False, id_body=state.idr_body))]
        return out + _accept_initiator(owner, sa, state.first, rx.message.message_id)
    step = eap.server_step(state, rx.first(EAPPayload), owner.config.eap_users, owner.rng.random_bytes(eap.CHALLENGE_BYTES))
    assert step.reply is not None
    if step.outcome == "failure":
        owner.emit(Info, sa=sa.ref, message=step.message)
        owner.after_response(sa, lambda: owner.fail_ike(sa, "AUTHENTICATION_FAILED", step.message))
    else:
        owner.emit(Info, sa=sa.ref, message=step.message)
    return [step.reply]


def _accept_initiator(owner: Owner, sa: IkeSaV2, rx: Rx, message_id: int) -> list[Payload]:
    """The initiator is authenticated: its virtual IP, the IKE SA up, the first child (asked for in
    ``rx``, answered in the exchange with ``message_id``)."""
    out: list[Payload] = []
    if rx.notify(NotifyType.INITIAL_CONTACT) is not None:
        sa.initial_contact = True
    try:
        cp, limit = remote_access.assign(owner, sa, rx)
    except Reject as reject:  # the pool is full: the IKE SA comes up, the child does not
        owner.emit(Info, sa=sa.ref, message=f"IKE SA up, child refused: {reject.message}")
        established(owner, sa)
        return out + [NotifyPayload(reject.notify_type, data=reject.data)]
    out += cp
    established(owner, sa)
    if sa.initial_contact:
        owner.peer.initial_contact(sa)
    try:
        payloads, pair = children.respond(owner, sa, rx, ni=sa.ni, nr=sa.nr, message_id=message_id,
                                          exchange="IKE_AUTH", remote_limit=limit)
    except Reject as reject:
        owner.emit(Info, sa=sa.ref, message=f"IKE SA up, child refused: {reject.message}")
        return out + [NotifyPayload(reject.notify_type, data=reject.data)]
    children.announce(owner, sa, pair, initiator=False)
    return out + payloads
