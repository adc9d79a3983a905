"""Negotiating a child SA, in IKE_AUTH (the first) and CREATE_CHILD_SA (the others):
the ESP proposal, the traffic selectors and the keys (RFC 7296 §2.9, §2.17).

Traffic selectors (§2.9): the initiator offers TSi (its side) and TSr (ours); the
responder narrows each to the part its own child configuration covers — with
subnets, the smaller of the two when one holds the other — or refuses with
TS_UNACCEPTABLE.  The initiator accepts the narrowed selectors if they lie within
what it offered.

Keys (§2.17)::

    KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr)

taken as: the initiator→responder SA's encryption key, its integrity key, then the
responder→initiator SA's.  The initiator→responder SA's SPI is the one the responder
chose (an SA is named by its receiver's SPI).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ipseclab.crypto import kdf_v2
from ipseclab.crypto.registry import esp_integrity
from ipseclab.crypto.registry_v2 import ikev2_cipher
from ipseclab.ikev1.policy import esp_name, integrity_name
from ipseclab.ikev2 import proposals
from ipseclab.ikev2.exchange import Owner, Reject, Rx
from ipseclab.sa import SOFT_FRACTION, IpsecSa, IpsecSaPair
from ipseclab.trace import ChildSaInfo, KeyDerived, PolicyDecision, SaEstablished
from ipseclab.wire.v2.constants import NotifyType
from ipseclab.wire.v2.message import (
    NotifyPayload,
    Payload,
    SAPayload,
    TrafficSelector,
    TSiPayload,
    TSrPayload,
)

if TYPE_CHECKING:
    from ipseclab.config import ChildConfig
    from ipseclab.ikev2.ike_sa import IkeSaV2

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class ChildOffer:
    """What an initiator proposed for one child."""

    child: ChildConfig
    spi_in: int
    offer: SAPayload
    tsi: TrafficSelector
    tsr: TrafficSelector

    def payloads(self) -> list[Payload]:
        out: list[Payload] = [self.offer, TSiPayload([self.tsi]), TSrPayload([self.tsr])]
        if self.child.transform_sets[0].mode == "transport":
            out.insert(0, NotifyPayload(NotifyType.USE_TRANSPORT_MODE))
        return out


def make_offer(owner: Owner, child: ChildConfig, *, with_ke: bool) -> ChildOffer:
    spi = owner.peer.allocate_spi()
    return ChildOffer(
        child, spi, proposals.esp_offer(child.transform_sets, spi, with_ke=with_ke),
        TrafficSelector.from_network(child.local_net), TrafficSelector.from_network(child.remote_net),
    )


def _range(ts: TrafficSelector) -> tuple[int, int]:
    return int(ts.start_address), int(ts.end_address)


def ts_text(ts: TrafficSelector) -> str:
    """A selector as a subnet when it is one (``10.1.0.0/24``), else ``start-end``."""
    nets = list(ipaddress.summarize_address_range(ts.start_address, ts.end_address))
    return str(nets[0]) if len(nets) == 1 else f"{ts.start_address}-{ts.end_address}"


def narrow(offered: list, mine: Network) -> TrafficSelector | None:
    """The first offered selector narrowed to ``mine`` (their intersection), or None."""
    lo, hi = int(mine.network_address), int(mine.broadcast_address)
    for ts in offered:
        if not isinstance(ts, TrafficSelector) or ts.start_address.version != mine.version:
            continue
        start, end = _range(ts)
        if max(start, lo) <= min(end, hi):
            cls = type(mine.network_address)
            return TrafficSelector(cls(max(start, lo)), cls(min(end, hi)), ts.ip_protocol, ts.start_port, ts.end_port)
    return None


def _within(got: TrafficSelector, offered: TrafficSelector) -> bool:
    return (got.start_address.version == offered.start_address.version
            and _range(offered)[0] <= _range(got)[0] <= _range(got)[1] <= _range(offered)[1])


def _decision(owner: Owner, sa: IkeSaV2, selection: proposals.Selection, exchange: str) -> None:
    owner.emit(PolicyDecision, phase=2, exchange=exchange, accepted=selection.choice is not None,
               explanation=selection.explanation, checks=selection.checks,
               chosen={"suite": selection.choice.describe()} if selection.choice else None)


def respond(
    owner: Owner, sa: IkeSaV2, rx: Rx, *, ni: bytes, nr: bytes, message_id: int, exchange: str, gir: bytes = b"",
    ke_group: int | None = None, remote_limit: Network | None = None,
) -> tuple[list[Payload], IpsecSaPair]:
    """The responder's side: choose ESP and selectors, derive the keys, make the pair.
    ``remote_limit`` narrows the initiator's side further (a remote-access client's virtual IP).

    Raises a non-fatal :class:`Reject` (NO_PROPOSAL_CHOSEN, TS_UNACCEPTABLE).
    """
    offer, tsi, tsr = rx.first(SAPayload), rx.first(TSiPayload), rx.first(TSrPayload)
    if offer is None or tsi is None or tsr is None:
        raise Reject(NotifyType.INVALID_SYNTAX, f"{exchange} request for a child without SA, TSi or TSr", fatal=False)
    conn = sa.connection
    candidates = list(conn.children) if conn is not None else []
    why: list[str] = []
    for child in candidates:
        theirs = child.remote_net
        if remote_limit is not None and remote_limit.subnet_of(theirs):  # type: ignore[arg-type]
            theirs = remote_limit
        remote, local = narrow(tsi.selectors, theirs), narrow(tsr.selectors, child.local_net)
        if remote is None or local is None:
            why.append(f"child {child.name} protects {child.local_ts} ↔ {child.remote_ts}")
            continue
        selection = proposals.select_esp(offer, child.transform_sets, ke_group=ke_group)
        _decision(owner, sa, selection, exchange)
        if selection.choice is None:
            raise Reject(NotifyType.NO_PROPOSAL_CHOSEN, ": ".join(selection.explanation[:2]), fatal=False)
        assert isinstance(selection.choice, proposals.ChildChoice)
        choice = selection.choice
        their = next(p for p in offer.proposals if p.number == choice.proposal)
        spi_in = owner.peer.allocate_spi()
        transport = rx.notify(NotifyType.USE_TRANSPORT_MODE) is not None and choice.transform_set.mode == "transport"
        pair = make_pair(owner, sa, child.name, choice, spi_in=spi_in, spi_out=int.from_bytes(their.spi, "big"),
                         local=local, remote=remote, ni=ni, nr=nr, gir=gir, message_id=message_id, transport=transport,
                         initiator=False)
        out: list[Payload] = [NotifyPayload(NotifyType.USE_TRANSPORT_MODE)] if transport else []
        out += [SAPayload([proposals.chosen_proposal(their, choice, spi_in.to_bytes(4, "big"))]),
                TSiPayload([remote]), TSrPayload([local])]
        return out, pair
    offered = f"{', '.join(ts_text(t) for t in tsi.selectors if isinstance(t, TrafficSelector))} ↔ " \
              f"{', '.join(ts_text(t) for t in tsr.selectors if isinstance(t, TrafficSelector))}"
    raise Reject(NotifyType.TS_UNACCEPTABLE, f"the initiator asks for {offered} (its side ↔ ours), which no child of "
                 f"{conn.name if conn else 'any connection'} covers: {'; '.join(why) or 'no children configured'}", fatal=False)


def complete(
    owner: Owner, sa: IkeSaV2, offer: ChildOffer, rx: Rx, *, ni: bytes, nr: bytes, message_id: int, gir: bytes = b""
) -> IpsecSaPair | str:
    """The initiator's side: check the responder's answer and make the pair, or say why not."""
    answer, tsi, tsr = rx.first(SAPayload), rx.first(TSiPayload), rx.first(TSrPayload)
    if answer is None or tsi is None or tsr is None:
        return "the response has no SA, TSi or TSr for the child"
    choice = proposals.accept_esp_answer(offer.offer, answer, offer.child.transform_sets)
    if isinstance(choice, str):
        return choice
    local, remote = tsi.selectors[0] if tsi.selectors else None, tsr.selectors[0] if tsr.selectors else None
    if not isinstance(local, TrafficSelector) or not isinstance(remote, TrafficSelector) \
            or not _within(local, offer.tsi) or not _within(remote, offer.tsr):
        return "the responder's traffic selectors are not within those we offered"
    transport = rx.notify(NotifyType.USE_TRANSPORT_MODE) is not None
    return make_pair(owner, sa, offer.child.name, choice, spi_in=offer.spi_in,
                     spi_out=int.from_bytes(answer.proposals[0].spi, "big"), local=local, remote=remote,
                     ni=ni, nr=nr, gir=gir, message_id=message_id, transport=transport, initiator=True)


def make_pair(
    owner: Owner, sa: IkeSaV2, child_name: str, choice: proposals.ChildChoice, *, spi_in: int, spi_out: int,
    local: TrafficSelector, remote: TrafficSelector, ni: bytes, nr: bytes, gir: bytes, message_id: int, transport: bool,
    initiator: bool,
) -> IpsecSaPair:
    """KEYMAT, the two ESP SAs and the pair, with a KeyDerived event per key.

    ``initiator``: did we start *this* exchange? (Not the IKE SA: either side may start a
    CREATE_CHILD_SA, and the first half of KEYMAT protects its initiator's outbound SA.)"""
    assert sa.prf is not None and sa.keys is not None
    cipher = ikev2_cipher(choice.esp_id, choice.key_bits)
    integ = esp_integrity(choice.auth_alg) if choice.auth_alg else None
    enc_len, int_len = cipher.keymat_bytes, integ.key_bytes if integ else 0
    keymat = kdf_v2.child_keymat(sa.prf, sa.keys.sk_d, ni, nr, 2 * (enc_len + int_len), gir_new=gir)
    i_to_r, r_to_i = keymat[: enc_len + int_len], keymat[enc_len + int_len :]
    outbound_keys, inbound_keys = (i_to_r, r_to_i) if initiator else (r_to_i, i_to_r)
    ref = sa.ref.negotiation(child_name, message_id).with_spis(spi_in, spi_out)
    formula = "prf+(SK_d, " + ("g^ir (new) | " if gir else "") + "Ni | Nr)"
    for direction, spi, keys in (("inbound", spi_in, inbound_keys), ("outbound", spi_out, outbound_keys)):
        owner.emit(KeyDerived, sa=ref, name=f"KEYMAT {direction} (SPI {spi:08x})", formula=formula, value=keys,
                   inputs=["SK_d", "Ni", "Nr"] + (["g^ir (new)"] if gir else []))
        owner.emit(KeyDerived, sa=ref, name=f"ESP encryption key (SPI {spi:08x})", formula="first bytes of its KEYMAT part",
                   value=keys[:enc_len], inputs=["KEYMAT"])
        if int_len:
            owner.emit(KeyDerived, sa=ref, name=f"ESP integrity key (SPI {spi:08x})", formula="its KEYMAT part after the encryption key",
                       value=keys[enc_len:], inputs=["KEYMAT"])

    def esp(spi: int, src: str, dst: str, keys: bytes) -> IpsecSa:
        return IpsecSa(spi=spi, src=src, dst=dst, encryption=esp_name(choice.esp_id, choice.key_bits),
                       integrity=integrity_name(choice.auth_alg), enc_key=keys[:enc_len], integ_key=keys[enc_len:],
                       esp_id=choice.esp_id, key_bits=choice.key_bits, auth_alg=choice.auth_alg)

    now = owner.now
    forced = sa.connection is not None and sa.connection.force_encapsulation
    pair = IpsecSaPair(
        child=child_name, isakmp_sa=sa.ref,
        inbound=esp(spi_in, sa.remote[0], sa.local[0], inbound_keys),
        outbound=esp(spi_out, sa.local[0], sa.remote[0], outbound_keys),
        local_ts=ts_text(local), remote_ts=ts_text(remote), mode="transport" if transport else "tunnel",
        udp_encapsulated=bool(sa.nat_local or sa.nat_remote or forced), pfs_group=choice.pfs_group,
        lifetime=choice.lifetime, established_at=now, expires_at=now + choice.lifetime, message_id=message_id,
        life_packets=choice.transform_set.life_packets, rekey_bytes=choice.transform_set.rekey_bytes,
        rekey_packets=choice.transform_set.rekey_packets, rekey_at=now + choice.lifetime * SOFT_FRACTION,
    )
    return pair


def announce(owner: Owner, sa: IkeSaV2, pair: IpsecSaPair, *, initiator: bool) -> None:
    """The pair is up: the peer's table, then the event with Wireshark's names."""
    owner.peer.child_established(sa, pair, initiator=initiator)
    cipher = ikev2_cipher(pair.inbound.esp_id, pair.inbound.key_bits)
    integ = esp_integrity(pair.inbound.auth_alg) if pair.inbound.auth_alg else None
    info = ChildSaInfo(**pair.summary(), src_in=pair.inbound.src, dst_in=pair.inbound.dst,
                       wireshark_encryption=cipher.wireshark_name,
                       wireshark_integrity=integ.wireshark_name if integ else "NULL")
    owner.emit(SaEstablished, sa=pair.ref, child=info)
