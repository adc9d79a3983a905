"""Quick Mode, RFC 2409 §5.5: phase 2, one pair of IPsec SAs per exchange::

    Initiator                                        Responder
    HDR*, HASH(1), SA, Ni [, KE ] [, IDci, IDcr ] -->
                                                  <-- HDR*, HASH(2), SA, Nr [, KE ] [, IDci, IDcr ]
    HDR*, HASH(3)                                 -->

    HASH(1) = prf(SKEYID_a, M-ID | SA | Ni [ | KE ] [ | IDci | IDcr ])
    HASH(2) = prf(SKEYID_a, M-ID | Ni_b | SA | Nr [ | KE ] [ | IDci | IDcr ])
    HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b)
    KEYMAT  = prf(SKEYID_d, [ g(qm)^xy | ] protocol | SPI | Ni_b | Nr_b)   (expanded, §5.5)

Each SA's KEYMAT uses the SPI its *receiver* chose, so the initiator's inbound key
is the responder's outbound key.  The proxy identities (IDci/IDcr) carry the
traffic selectors: host-to-host (ID_IPV4_ADDR), host-to-subnet and
subnet-to-subnet (ID_IPV4_ADDR_SUBNET).  With PFS both sides send a KE payload and
a fresh Diffie-Hellman secret enters KEYMAT.

Every message is encrypted with the IV ``hash(last phase-1 block | M-ID)`` chained
within the exchange (RFC 2409 App. B).  States: initiator ``QM_I1_SENT`` →
``QM_ESTABLISHED``, responder ``QM_R1_SENT`` → ``QM_ESTABLISHED``.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import TYPE_CHECKING

from ipseclab.crypto import kdf_v1
from ipseclab.crypto.dh import DHKeyPair, dh_group
from ipseclab.crypto.registry import esp_cipher, esp_integrity
from ipseclab.errors import CryptoError, ParseError
from ipseclab.ikev1.exchange import Exchange, Received, Reject, Step
from ipseclab.ikev1.main_mode import NONCE_SIZE, first
from ipseclab.ikev1.policy import (
    Phase2Choice,
    TransformSet,
    check_phase2_transform,
    esp_name,
    integrity_name,
    match_phase2,
    mode_name,
)
from ipseclab.ikev1.states import QuickModeState
from ipseclab.sa import SOFT_FRACTION, IpsecSa, IpsecSaPair
from ipseclab.trace import (
    ChildSaInfo,
    KeyDerived,
    PolicyDecision,
    PublicValue,
    SaEstablished,
    SaRef,
)
from ipseclab.wire.v1.constants import (
    EncapsulationMode,
    ExchangeType,
    IdType,
    IpsecAttribute,
    LifeType,
    NotifyType,
    PayloadType,
    ProtocolId,
)
from ipseclab.wire.v1.isakmp import (
    Attribute,
    HashPayload,
    IDPayload,
    KEPayload,
    NatOAPayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    Proposal,
    SAPayload,
    encode_payloads,
)
from ipseclab.wire.v1.sa import decode_attributes

if TYPE_CHECKING:
    from ipseclab.config import ChildConfig, IpNetwork
    from ipseclab.ikev1.exchange import ExchangeOwner
    from ipseclab.ikev1.isakmp_sa import IsakmpSa


def ts_payload(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> IDPayload:
    """A proxy identity: a host address for a /32 (/128), else a subnet (RFC 2407 §4.6.2)."""
    if net.prefixlen == net.max_prefixlen:
        return IDPayload.from_address(net.network_address)
    return IDPayload.from_subnet(net)


def ts_network(ident: IDPayload) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """The network an IDci/IDcr denotes, or None for identity types Quick Mode cannot use."""
    value = ident.value
    if ident.id_type in (IdType.IPV4_ADDR, IdType.IPV6_ADDR):
        return ipaddress.ip_network(value)
    if ident.id_type in (IdType.IPV4_ADDR_SUBNET, IdType.IPV6_ADDR_SUBNET):
        return value
    if ident.id_type in (IdType.IPV4_ADDR_RANGE, IdType.IPV6_ADDR_RANGE):
        nets = list(ipaddress.summarize_address_range(*value))
        return nets[0] if len(nets) == 1 else None
    return None


def payloads_after_hash(plaintext: bytes, payloads: list[Payload]) -> bytes:
    """The exact bytes that follow the HASH payload, without padding (what HASH(1)/(2) cover)."""
    end = sum(4 + len(p.wire_body()) for p in payloads)
    first_len = 4 + len(payloads[0].wire_body())
    return plaintext[first_len:end]


class QuickMode(Exchange):
    """State shared by both roles of one Quick Mode exchange."""

    exchange_type = ExchangeType.QUICK

    def __init__(self, owner: ExchangeOwner, sa: IsakmpSa, message_id: int, initiator: bool) -> None:
        super().__init__(owner, sa, message_id, initiator)
        self.child: ChildConfig | None = None
        self._state = QuickModeState.QM_NO_STATE
        self.ni = b""
        self.nr = b""
        self.spi_in = 0
        self.spi_out = 0
        self.choice: Phase2Choice | None = None
        self.dh: DHKeyPair | None = None
        self.gxy_qm: bytes | None = None
        self.local_ts = ""
        self.remote_ts = ""
        self.pair: IpsecSaPair | None = None
        self.original_addresses: tuple[str, str] | None = None
        self.offered: SAPayload | None = None
        self.narrowed: tuple[str, str] | None = None  # responder: (IDci, IDcr) after narrowing

    @property
    def ref(self) -> SaRef:
        return self.sa.ref.negotiation(self.child.name if self.child else "", self.message_id)

    final_states = frozenset({QuickModeState.QM_ESTABLISHED, QuickModeState.FAILED})

    @property
    def state(self) -> QuickModeState:
        return self._state

    @state.setter
    def state(self, new: QuickModeState) -> None:
        self._state = new

    def set_state(self, new: str) -> None:
        self.owner.set_state(self, new)

    def learn_nat_oa(self, payloads: list[Payload]) -> None:
        """Remember the peer's NAT-OAi/NAT-OAr (RFC 3947 §5.2) for the data plane."""
        oas = [p for p in payloads if isinstance(p, NatOAPayload)]
        if len(oas) >= 2:
            self.original_addresses = (str(oas[0].value), str(oas[1].value))
            self.public("NAT-OA (original addresses)", oas[0].address + oas[1].address,
                        f"initiator {oas[0].value}, responder {oas[1].value} before NAT")

    def public(self, name: str, value: bytes, note: str) -> None:
        self.owner.emit(PublicValue, sa=self.ref, name=name, value=value, note=note)

    def hash1(self, rest: bytes) -> bytes:
        return self.sa.hash.prf(self.sa.skeyid_a, self.message_id.to_bytes(4, "big") + rest)

    def hash2(self, rest: bytes) -> bytes:
        return self.sa.hash.prf(self.sa.skeyid_a, self.message_id.to_bytes(4, "big") + self.ni + rest)

    def hash3(self) -> bytes:
        return self.sa.hash.prf(self.sa.skeyid_a, b"\x00" + self.message_id.to_bytes(4, "big") + self.ni + self.nr)

    def send_hashed(self, hash_fn, payloads: list[Payload], *, expect_reply: bool) -> None:  # noqa: ANN001
        """Prepend HASH(n) computed over the encoded payloads that follow it."""
        _, rest = encode_payloads(payloads) if payloads else (0, b"")
        self.send([HashPayload(hash_fn(rest)), *payloads], encrypt=True, expect_reply=expect_reply)

    def check_hash(self, m: Received, expected_fn, which: str) -> None:  # noqa: ANN001
        payloads, plaintext = m.payloads, m.plaintext or b""
        if not payloads or not isinstance(payloads[0], HashPayload):
            raise Reject(NotifyType.INVALID_HASH_INFORMATION, f"{which} must be the first payload")
        expected = self.hash3() if expected_fn == self.hash3 else expected_fn(payloads_after_hash(plaintext, payloads))
        if not hmac.compare_digest(payloads[0].data, expected):
            raise Reject(NotifyType.INVALID_HASH_INFORMATION, f"{which} does not verify: the message was altered or SKEYID_a differs")
        self.authenticated(m)

    def on_reject(self, reject: Reject) -> None:
        """Send an error notify (protected Informational) and end the exchange."""
        spi = self.spi_in.to_bytes(4, "big") if self.spi_in else b""
        self.owner.send_notify(self.sa, reject.notify_type, protect=True, protocol_id=ProtocolId.IPSEC_ESP, spi=spi)
        self.fail(reject.code, reject.message, reject.notify_type)

    def new_spi(self) -> int:
        return self.owner.allocate_spi()

    def pfs_dh(self, group: int) -> bytes:
        self.dh = dh_group(group).generate(self.owner.rng)
        self.public("g^x (PFS)", self.dh.public_bytes, f"our Quick Mode DH public value, group {group}")
        return self.dh.public_bytes

    def pfs_secret(self, ke: KEPayload | None) -> None:
        if self.dh is None:
            return
        if ke is None:
            raise Reject(NotifyType.INVALID_KEY_INFORMATION, "PFS was negotiated but the message carries no KE payload")
        self.public("g^y (PFS, peer)", ke.data, "the peer's Quick Mode DH public value")
        try:
            self.gxy_qm = self.dh.shared_secret(ke.data)
        except CryptoError as exc:
            raise Reject(NotifyType.INVALID_KEY_INFORMATION, f"PFS Diffie-Hellman failed: {exc}") from None
        self.owner.emit(KeyDerived, sa=self.ref, name="g(qm)^xy", formula="PFS DH shared secret", value=self.gxy_qm, inputs=["KE (Quick Mode)"])

    def install(self) -> None:
        """KEYMAT for both directions (RFC 2409 §5.5) and the SA pair."""
        choice = self.choice
        assert choice is not None
        cipher = esp_cipher(choice.esp_id, choice.key_bits)
        integ = esp_integrity(choice.auth_alg) if choice.auth_alg else None
        enc_len = cipher.key_bits // 8 + cipher.salt_bytes
        length = enc_len + (integ.key_bytes if integ else 0)
        sas = {}
        for direction, spi in (("inbound", self.spi_in), ("outbound", self.spi_out)):
            keymat = kdf_v1.quick_mode_keymat(
                self.sa.hash, self.sa.skeyid_d, ProtocolId.IPSEC_ESP, spi.to_bytes(4, "big"), self.ni, self.nr, length, self.gxy_qm
            )
            formula = "prf(SKEYID_d, " + ("g(qm)^xy | " if self.gxy_qm else "") + "protocol | SPI | Ni_b | Nr_b), expanded"
            self.owner.emit(KeyDerived, sa=self.ref, name=f"KEYMAT {direction} (SPI {spi:08x})", formula=formula, value=keymat, inputs=["SKEYID_d", "SPI", "Ni_b", "Nr_b"])
            self.owner.emit(KeyDerived, sa=self.ref, name=f"ESP encryption key (SPI {spi:08x})", formula="first bytes of KEYMAT", value=keymat[:enc_len], inputs=["KEYMAT"])
            if integ:
                self.owner.emit(KeyDerived, sa=self.ref, name=f"ESP integrity key (SPI {spi:08x})", formula="KEYMAT after the encryption key", value=keymat[enc_len:], inputs=["KEYMAT"])
            src, dst = (self.sa.remote[0], self.sa.local[0]) if direction == "inbound" else (self.sa.local[0], self.sa.remote[0])
            sas[direction] = IpsecSa(
                spi=spi,
                src=src,
                dst=dst,
                encryption=esp_name(choice.esp_id, choice.key_bits),
                integrity=integrity_name(choice.auth_alg),
                enc_key=keymat[:enc_len],
                integ_key=keymat[enc_len:],
                esp_id=choice.esp_id,
                key_bits=choice.key_bits,
                auth_alg=choice.auth_alg,
            )
        now = self.owner.now
        self.pair = IpsecSaPair(
            child=self.child.name if self.child else "",
            isakmp_sa=self.sa.ref,
            inbound=sas["inbound"],
            outbound=sas["outbound"],
            local_ts=self.local_ts,
            remote_ts=self.remote_ts,
            mode=mode_name(choice.mode),
            udp_encapsulated=choice.udp_encapsulated,
            pfs_group=choice.pfs_group,
            lifetime=choice.lifetime,
            established_at=now,
            expires_at=now + choice.lifetime,
            message_id=self.message_id,
            original_addresses=self.original_addresses,
            life_kilobytes=choice.life_kilobytes,
            life_packets=choice.transform_set.life_packets,
            rekey_bytes=choice.transform_set.rekey_bytes,
            rekey_packets=choice.transform_set.rekey_packets,
            rekey_at=now + choice.lifetime * SOFT_FRACTION,
        )
        self.set_state(QuickModeState.QM_ESTABLISHED)
        self.owner.child_established(self.sa, self.pair, initiator=self.initiator)
        info = ChildSaInfo(
            **self.pair.summary(),
            src_in=sas["inbound"].src,
            dst_in=sas["inbound"].dst,
            wireshark_encryption=cipher.wireshark_name,
            wireshark_integrity=integ.wireshark_name if integ else "NULL",
        )
        self.owner.emit(SaEstablished, sa=self.ref, child=info)


def nat_oa_payloads(sa: IsakmpSa, *, initiator: bool) -> list[Payload]:
    """NAT-OAi and NAT-OAr for UDP-encapsulated transport mode (RFC 3947 §5.2).

    The original addresses let the receiver fix up TCP/UDP checksums after the NAT
    changed the outer addresses (RFC 3948 §3.1.2).  NAT-OAi is the initiator's address,
    NAT-OAr the responder's, each as this sender knows it.
    """
    draft = sa.nat_t == PayloadType.NAT_D_DRAFT
    mine, theirs = ipaddress.ip_address(sa.local[0]), ipaddress.ip_address(sa.remote[0])
    first, second = (mine, theirs) if initiator else (theirs, mine)
    return [
        NatOAPayload(IdType.IPV4_ADDR if a.version == 4 else IdType.IPV6_ADDR, a.packed, draft=draft)
        for a in (first, second)
    ]


def _mode_for(sa: IsakmpSa, ts: TransformSet) -> int:
    """UDP-encapsulated modes when a NAT was detected (RFC 3947 §5.1)."""
    if not sa.nat_detected:
        return ts.mode_id
    draft = sa.nat_t == PayloadType.NAT_D_DRAFT
    if ts.mode == "tunnel":
        return EncapsulationMode.UDP_TUNNEL_DRAFT if draft else EncapsulationMode.UDP_TUNNEL
    return EncapsulationMode.UDP_TRANSPORT_DRAFT if draft else EncapsulationMode.UDP_TRANSPORT


class QuickModeInitiator(QuickMode):
    """Quick Mode as initiator: messages 1 and 3."""

    def start(self, child: ChildConfig) -> None:
        self.child = child
        self.spi_in = self.new_spi()
        self.ni = self.owner.rng.random_bytes(NONCE_SIZE)
        transforms = [ts.to_transform(n, mode_id=_mode_for(self.sa, ts)) for n, ts in enumerate(child.transform_sets, 1)]
        self.offered = SAPayload([Proposal(1, ProtocolId.IPSEC_ESP, self.spi_in.to_bytes(4, "big"), transforms)])
        payloads: list[Payload] = [self.offered, NoncePayload(self.ni)]
        if child.pfs_group:
            payloads.append(KEPayload(self.pfs_dh(child.pfs_group)))
        local_net = child.local_net
        if self.sa.virtual_ip is not None and self.sa.lease is None:  # a client: from the address Mode Config gave us
            local_net = ipaddress.ip_network(f"{self.sa.virtual_ip}/32")
        self.local_ts, self.remote_ts = str(local_net), str(child.remote_net)
        payloads += [ts_payload(local_net), ts_payload(child.remote_net)]
        if self.sa.nat_detected and all(ts.mode == "transport" for ts in child.transform_sets):
            payloads += nat_oa_payloads(self.sa, initiator=True)
        self.public("Ni (Quick Mode)", self.ni, "initiator's Quick Mode nonce")
        self.public("SPI (our inbound)", self.spi_in.to_bytes(4, "big"), "chosen by us: the peer sends to it")
        self.send_hashed(self.hash1, payloads, expect_reply=True)
        self.set_state(QuickModeState.QM_I1_SENT)

    def _accept_selectors(self, ids: list[IDPayload]) -> None:
        """RFC 2409 §5.5: the responder may return narrower IDci/IDcr; install those, refuse
        anything that is not inside what we proposed."""
        if len(ids) != 2:
            return
        local, remote = ts_network(ids[0]), ts_network(ids[1])
        proposed_local, proposed_remote = ipaddress.ip_network(self.local_ts), ipaddress.ip_network(self.remote_ts)
        if local == proposed_local and remote == proposed_remote:
            return
        if local is None or remote is None or _narrow(proposed_local, local) != local or _narrow(proposed_remote, remote) != remote:
            raise Reject(
                NotifyType.INVALID_ID_INFORMATION,
                f"the responder returned selectors {local} <-> {remote} (IDci, IDcr), which are not inside "
                f"what we proposed, {proposed_local} <-> {proposed_remote}",
            )
        self.owner.emit(
            PolicyDecision, phase=2, exchange=self.name, accepted=True,
            explanation=[
                f"The responder narrowed the traffic selectors: we proposed {proposed_local} <-> {proposed_remote}, "
                f"it returned {local} <-> {remote} (IDci, IDcr); those are installed."
            ],
        )
        self.local_ts, self.remote_ts = str(local), str(remote)

    def _on_qm2(self, m: Received) -> None:
        payloads = m.payloads
        self.nr = m.first(NoncePayload).data
        self.check_hash(m, self.hash2, "HASH(2)")
        answer = first(payloads, SAPayload)
        chosen = [(p, t) for p in (answer.proposals if answer else []) for t in p.transforms]
        if len(chosen) != 1 or len(chosen[0][0].spi) != 4:
            raise Reject(NotifyType.BAD_PROPOSAL_SYNTAX, "the responder must return exactly one ESP transform with a 4-byte SPI")
        prop, t = chosen[0]
        assert self.child is not None
        ts = self.child.transform_sets[t.number - 1] if 0 < t.number <= len(self.child.transform_sets) else None
        check, choice = check_phase2_transform(t, ts) if ts else (None, None)
        if choice is None:
            raise Reject(NotifyType.BAD_PROPOSAL_SYNTAX, "the responder chose an ESP transform we did not offer")
        for n in (p for p in payloads if isinstance(p, NotifyPayload) and p.notify_type == NotifyType.RESPONDER_LIFETIME):
            life = _responder_lifetime(n)
            if life and life < choice.lifetime:
                self.owner.emit(
                    PolicyDecision, phase=2, exchange=self.name, accepted=True,
                    explanation=[f"The responder's lifetime is shorter (RESPONDER-LIFETIME {life} s): using {life} s instead of {choice.lifetime} s."],
                )
                choice = Phase2Choice(**{**choice.__dict__, "lifetime": life})
            kb = _responder_lifetime(n, LifeType.KILOBYTES)
            if kb and (choice.life_kilobytes is None or kb < choice.life_kilobytes):
                self.owner.emit(
                    PolicyDecision, phase=2, exchange=self.name, accepted=True,
                    explanation=[f"The responder's byte lifetime is shorter (RESPONDER-LIFETIME {kb} kilobytes): using {kb} kilobytes."],
                )
                choice = Phase2Choice(**{**choice.__dict__, "life_kilobytes": kb})
        self.choice = choice
        self.owner.emit(
            PolicyDecision, phase=2, exchange=self.name, accepted=True,
            explanation=[f"The responder chose our ESP transform {t.number} ({choice.describe()})."],
            checks=[check], chosen=choice.as_dict(),
        )
        self.spi_out = int.from_bytes(prop.spi, "big")
        self._accept_selectors([p for p in payloads if isinstance(p, IDPayload)])
        self.learn_nat_oa(payloads)
        self.public("Nr (Quick Mode)", self.nr, "responder's Quick Mode nonce")
        self.public("SPI (peer's inbound)", prop.spi, "chosen by the peer: we send to it")
        self.pfs_secret(first(payloads, KEPayload))
        self.send([HashPayload(self.hash3())], encrypt=True, expect_reply=False)
        self.install()

    steps = (
        Step("initiator", 2, _on_qm2, QuickModeState.QM_ESTABLISHED, required=(NoncePayload,),
             story="HASH(2) verified, transform accepted: send HASH(3), install the SAs"),
    )


def _narrow(proposed: IpNetwork, configured: IpNetwork) -> IpNetwork | None:
    """The intersection of two selectors when one contains the other (CIDR blocks either
    nest or are disjoint), else ``None``."""
    if proposed.version != configured.version:
        return None
    if configured.subnet_of(proposed):  # type: ignore[arg-type]
        return configured
    if proposed.subnet_of(configured):  # type: ignore[arg-type]
        return proposed
    return None


def _with_ports(ident: IDPayload, like: IDPayload) -> IDPayload:
    ident.protocol_id, ident.port = like.protocol_id, like.port
    return ident


def _responder_lifetime(n: NotifyPayload, kind: int = LifeType.SECONDS) -> int | None:
    """Seconds (or kilobytes) from a RESPONDER-LIFETIME notification's attribute list (RFC 2407 §4.6.3.1)."""
    try:
        attrs = decode_attributes(n.data, 0)
    except ParseError:
        return None
    life_type = None
    for attr in attrs:
        if attr.type == IpsecAttribute.SA_LIFE_TYPE:
            life_type = attr.int_value
        elif attr.type == IpsecAttribute.SA_LIFE_DURATION and life_type == kind:
            return attr.int_value
    return None


class QuickModeResponder(QuickMode):
    """Quick Mode as responder: message 2."""

    def _on_qm3(self, m: Received) -> None:
        self.check_hash(m, self.hash3, "HASH(3)")
        self.install()

    def _find_child(self, ids: list[IDPayload]) -> ChildConfig | None:
        conn = self.sa.connection
        if len(ids) == 2:
            remote, local = ts_network(ids[0]), ts_network(ids[1])
        else:
            remote = ipaddress.ip_network(self.sa.remote[0])
            local = ipaddress.ip_network(self.sa.local[0])
        self.remote_ts, self.local_ts = str(remote), str(local)
        if conn is None or remote is None or local is None:
            return None
        vip = self.sa.virtual_ip if self.sa.lease is not None else None
        if vip is not None and remote != ipaddress.ip_network(f"{vip}/32"):  # a remote-access client's only address
            self.owner.emit(PolicyDecision, phase=2, exchange=self.name, accepted=False, explanation=[
                f"The client proposed IDci {remote}, but the address we leased it is {vip}: a client may only send from "
                "its own virtual IP (Mode Config). INVALID_ID_INFORMATION is sent."])
            raise Reject(NotifyType.INVALID_ID_INFORMATION, f"IDci {remote} is not the client's virtual IP {vip}")
        for child in conn.children:
            if child.local_net == local and child.remote_net == remote:
                return child
        # narrowing, as charon does: the intersection of what was proposed and what a child
        # is configured for, when each pair of selectors nests one in the other
        for child in conn.children:
            narrowed_remote, narrowed_local = _narrow(remote, child.remote_net), _narrow(local, child.local_net)
            if narrowed_remote is not None and narrowed_local is not None:
                self.narrowed = (str(narrowed_remote), str(narrowed_local))
                self.owner.emit(
                    PolicyDecision, phase=2, exchange=self.name, accepted=True,
                    explanation=[
                        f"The initiator proposed {remote} <-> {local} (IDci, IDcr); child {child.name} is "
                        f"configured for {child.remote_net} <-> {child.local_net}: narrowed to "
                        f"{narrowed_remote} <-> {narrowed_local}, returned in IDci/IDcr and installed.",
                    ],
                )
                self.remote_ts, self.local_ts = self.narrowed
                return child
        return None

    def _on_qm1(self, m: Received) -> None:
        payloads = m.payloads
        self.ni = m.first(NoncePayload).data
        self.check_hash(m, self.hash1, "HASH(1)")
        ids = [p for p in payloads if isinstance(p, IDPayload)]
        child = self._find_child(ids)
        if child is None:
            conn = self.sa.connection
            known = ", ".join(f"{c.name}: {c.remote_ts} <-> {c.local_ts}" for c in (conn.children if conn else ()))
            self.owner.emit(
                PolicyDecision, phase=2, exchange=self.name, accepted=False,
                explanation=[
                    f"The initiator proposed traffic {self.remote_ts} <-> {self.local_ts} (IDci, IDcr), "
                    f"but no local child mirrors it (configured: {known or 'none'}).",
                    "INVALID_ID_INFORMATION is sent: make the proxy identities mirror each other.",
                ],
            )
            raise Reject(NotifyType.INVALID_ID_INFORMATION, f"no local policy for {self.remote_ts} <-> {self.local_ts}")
        self.child = child
        offer = first(payloads, SAPayload)
        proposals = [p for p in (offer.proposals if offer else []) if p.protocol_id == ProtocolId.IPSEC_ESP]
        transforms = [t for p in proposals for t in p.transforms]
        result = match_phase2(transforms, child.transform_sets)
        choice = result.choice if isinstance(result.choice, Phase2Choice) else None
        if choice is not None:
            try:
                esp_cipher(choice.esp_id, choice.key_bits)
                if choice.auth_alg:
                    esp_integrity(choice.auth_alg)
            except CryptoError as exc:
                result.explanation.append(f"ipseclab cannot carry it out: {exc}")
                choice = None
        self.owner.emit(
            PolicyDecision, phase=2, exchange=self.name, accepted=choice is not None,
            explanation=result.explanation, checks=result.checks, chosen=choice.as_dict() if choice else None,
        )
        if choice is None:
            raise Reject(NotifyType.NO_PROPOSAL_CHOSEN, "no offered ESP transform matches a local transform set")
        ke = first(payloads, KEPayload)
        if choice.pfs_group and ke is None:
            raise Reject(NotifyType.INVALID_KEY_INFORMATION, "PFS group negotiated but no KE payload was sent")
        prop = next(p for p in proposals if choice.transform in p.transforms)
        if len(prop.spi) != 4:
            raise Reject(NotifyType.INVALID_SPI, f"an ESP SPI must be 4 bytes, got {len(prop.spi)}")
        self.choice = choice
        self.spi_out = int.from_bytes(prop.spi, "big")
        self.learn_nat_oa(payloads)
        self.spi_in = self.new_spi()
        self.nr = self.owner.rng.random_bytes(NONCE_SIZE)
        self.public("Ni (Quick Mode)", self.ni, "initiator's Quick Mode nonce")
        self.public("SPI (peer's inbound)", prop.spi, "chosen by the peer: we send to it")
        self.public("Nr (Quick Mode)", self.nr, "responder's Quick Mode nonce")
        self.public("SPI (our inbound)", self.spi_in.to_bytes(4, "big"), "chosen by us: the peer sends to it")
        reply: list[Payload] = [
            SAPayload([Proposal(prop.number, ProtocolId.IPSEC_ESP, self.spi_in.to_bytes(4, "big"), [choice.transform])], offer.doi, offer.situation),
            NoncePayload(self.nr),
        ]
        if choice.pfs_group:
            reply.append(KEPayload(self.pfs_dh(choice.pfs_group)))
            self.pfs_secret(ke)
        if self.narrowed is not None and len(ids) == 2:
            reply += [_with_ports(ts_payload(ipaddress.ip_network(net)), ident) for net, ident in zip(self.narrowed, ids, strict=True)]
        else:
            reply += ids
        if choice.mode in (EncapsulationMode.UDP_TRANSPORT, EncapsulationMode.UDP_TRANSPORT_DRAFT):
            reply += nat_oa_payloads(self.sa, initiator=False)
        shorter_seconds = bool(choice.offered_lifetime and choice.offered_lifetime > choice.lifetime)
        # a responder with a smaller byte limit says so too (or offered none: ours applies)
        shorter_kb = bool(choice.life_kilobytes and choice.offered_kilobytes != choice.life_kilobytes)
        if shorter_seconds or shorter_kb:
            attrs = b""
            if shorter_seconds:
                attrs += Attribute(IpsecAttribute.SA_LIFE_TYPE, LifeType.SECONDS).encode() + Attribute(
                    IpsecAttribute.SA_LIFE_DURATION, choice.lifetime, tlv=choice.lifetime > 0xFFFF
                ).encode()
            if shorter_kb and choice.life_kilobytes:
                attrs += Attribute(IpsecAttribute.SA_LIFE_TYPE, LifeType.KILOBYTES).encode() + Attribute(
                    IpsecAttribute.SA_LIFE_DURATION, choice.life_kilobytes, tlv=choice.life_kilobytes > 0xFFFF
                ).encode()
            reply.append(NotifyPayload(NotifyType.RESPONDER_LIFETIME, ProtocolId.IPSEC_ESP, self.spi_in.to_bytes(4, "big"), attrs))
        self.send_hashed(self.hash2, reply, expect_reply=True)
        self.set_state(QuickModeState.QM_R1_SENT)

    steps = (
        Step("responder", 1, _on_qm1, QuickModeState.QM_R1_SENT, required=(NoncePayload,),
             story="HASH(1) verified, selectors and a transform matched: answer with ours"),
        Step("responder", 3, _on_qm3, QuickModeState.QM_ESTABLISHED, story="HASH(3) verified: install the SAs"),
    )

