"""Trace events: the one stream everything visible is built from.

Every message sent or received, every state change, derived key, policy decision,
NAT detection and SA life-cycle step is an :class:`Event`.  Events are plain data
(dataclasses of str/int/float/bytes/lists/dicts) and serialise to JSON with
:func:`event_to_dict` / :func:`event_from_dict`, so widgets, the CLI, pcap and key
export and tests consume the same records, whether the peer runs in this process
or in a daemon elsewhere.

Secrets (derived keys, shared secrets) live only in :class:`KeyDerived` events; they
are hidden from ``repr`` and replaced by ``"<secret>"`` in JSON unless the caller
asks for them explicitly (``include_secrets=True``) — a key export does, a log
does not.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

Address = tuple[str, int]

SECRET_PLACEHOLDER = "<secret>"


@dataclass(frozen=True)
class SaRef:
    """Which SA an event is about, as typed fields — never a string to parse back.

    ``kind`` is ``"ike"`` (an ISAKMP SA in IKEv1, an IKE SA in IKEv2), ``"child"``
    (a pair of IPsec SAs, or the exchange negotiating one: Quick Mode in IKEv1),
    ``"esp"`` (one direction of an ESP SA in the data plane), ``"plane"`` (the data
    plane as a whole) or ``"none"``.  ``spi_i``/``spi_r`` are the IKE SA's SPIs
    (IKEv1 cookies) in hex — for a child, those of the IKE SA it was negotiated
    under; ``message_id`` the exchange negotiating a child; ``spi_in``/``spi_out``
    the child's SPIs (an ESP SA's own SPI is ``spi_in`` or ``spi_out`` by its
    ``direction``).  ``str(ref)`` is the label the widgets and logs show.
    """

    kind: str = "none"
    version: int = 1
    spi_i: str = ""
    spi_r: str = ""
    # names describe, SPIs identify: a responder learns them during the exchange
    connection: str = field(default="", compare=False)
    child: str = field(default="", compare=False)
    message_id: int | None = None
    spi_in: str = ""
    spi_out: str = ""
    direction: str = ""

    @classmethod
    def ike(cls, version: int, spi_i: bytes, spi_r: bytes, connection: str = "") -> SaRef:
        return cls("ike", version, spi_i.hex(), spi_r.hex(), connection)

    def negotiation(self, child: str, message_id: int) -> SaRef:
        """The child SA being negotiated under this IKE SA by exchange ``message_id``."""
        return SaRef("child", self.version, self.spi_i, self.spi_r, self.connection, child, message_id)

    def with_spis(self, spi_in: int, spi_out: int) -> SaRef:
        """This child SA named by its SPIs (RFC 4301 §4.1: an SA is named by its SPI)."""
        return dataclasses.replace(self, kind="child", spi_in=f"{spi_in:08x}", spi_out=f"{spi_out:08x}")

    @classmethod
    def esp(cls, child: str, direction: str, spi: int) -> SaRef:
        field_ = "spi_in" if direction == "inbound" else "spi_out"
        return cls("esp", child=child, direction=direction, **{field_: f"{spi:08x}"})

    @property
    def label(self) -> str:
        if self.kind == "ike":
            return f"{'ISAKMP' if self.version == 1 else 'IKE'} SA {self.spi_i}/{self.spi_r}"
        if self.kind == "child":
            if self.spi_in:
                return f"{self.child} SPIs {self.spi_in}/{self.spi_out}"
            name = f" {self.child}" if self.child else ""
            exchange = "Quick Mode" if self.version == 1 else "CREATE_CHILD_SA"
            return f"{exchange}{name} (M-ID {self.message_id or 0:08x})"
        if self.kind == "esp":
            name = f"{self.child} " if self.child else ""
            return f"ESP SA {name}{self.direction or 'sa'} {self.spi_in or self.spi_out}"
        if self.kind == "plane":
            return "data plane"
        return "-"

    def __str__(self) -> str:
        return self.label


NO_SA = SaRef()
DATA_PLANE = SaRef("plane")


@dataclass
class Event:
    """Common fields of every trace event.

    ``peer`` names the peer that emitted the event, ``time`` is the peer's clock
    (simulated or real) and ``seq`` a per-peer monotonic index.
    """

    kind: ClassVar[str] = "event"
    peer: str
    time: float
    seq: int = field(default=0, kw_only=True)

    def describe(self) -> str:
        """One line of plain words for logs and the CLI."""
        return self.kind


@dataclass
class MessageEvent(Event):
    """An IKE message sent or received (RFC 2408 §3.1 header plus payload chain).

    ``exchange`` is the exchange's teaching name ("Main Mode", "Quick Mode" …),
    ``index`` the message's 1-based position in that exchange, ``summary`` the
    textbook notation (``HDR*, IDii, HASH_I``), ``raw`` the exact UDP payload
    (without the non-ESP marker), ``plaintext`` the decrypted body (with padding)
    for encrypted messages, and ``tree`` the decoded payload tree
    (:func:`ipseclab.wire.v1.tree.message_tree`).
    """

    kind: ClassVar[str] = "message"
    direction: str  # "sent" | "received"
    exchange: str
    exchange_type: int
    index: int
    sender_role: str  # "initiator" | "responder" of this exchange
    icookie: str
    rcookie: str
    message_id: int
    src: Address
    dst: Address
    raw: bytes
    summary: str
    encrypted: bool = False
    plaintext: bytes | None = None
    retransmission: bool = False
    non_esp_marker: bool = False
    ike_version: int = 1

    @property
    def tree(self) -> dict[str, Any]:
        """The decoded payload tree, derived from ``raw`` and ``plaintext`` on first use
        (by the codec of ``ike_version``): not computed for events nobody inspects, not
        sent over the control API (a client derives it from the same bytes)."""
        cached = self.__dict__.get("_tree")
        if cached is None:
            if self.ike_version == 2:
                from ipseclab.wire.v2.tree import message_tree
            else:
                from ipseclab.wire.v1.tree import message_tree
            cached = self.__dict__["_tree"] = message_tree(self.raw, self.plaintext)
        return cached

    def describe(self) -> str:
        arrow = "->" if self.direction == "sent" else "<-"
        again = " (retransmission)" if self.retransmission else ""
        return (
            f"{self.exchange} #{self.index} {arrow} {self.summary}  "
            f"[{self.src[0]}:{self.src[1]} > {self.dst[0]}:{self.dst[1]}]{again}"
        )


@dataclass
class StateChanged(Event):
    """An SA or exchange moved from one state to another (names like ``MM_SA_SENT``)."""

    kind: ClassVar[str] = "state"
    sa: SaRef
    old: str
    new: str

    def describe(self) -> str:
        return f"{self.sa}: {self.old} -> {self.new}"


@dataclass
class KeyDerived(Event):
    """A value derived during keying (RFC 2409 §5), always treated as secret.

    ``formula`` is the RFC notation, ``inputs`` the names of what went in;
    ``algorithm`` the algorithm the key is for as Wireshark names it (IKEv2's SK_e/SK_a,
    for its ``ikev2_decryption_table``), empty for intermediate values.
    """

    kind: ClassVar[str] = "key"
    sa: SaRef
    name: str
    formula: str
    value: bytes = field(repr=False)
    inputs: list[str] = field(default_factory=list)
    secret: bool = True
    algorithm: str = ""

    def describe(self) -> str:
        return f"{self.sa}: derived {self.name} = {self.formula} ({len(self.value)} bytes)"


@dataclass
class PublicValue(Event):
    """A non-secret value worth showing: DH public values, nonces, cookies, NAT-D hashes."""

    kind: ClassVar[str] = "public"
    sa: SaRef
    name: str
    value: bytes
    note: str = ""

    def describe(self) -> str:
        return f"{self.sa}: {self.name} ({len(self.value)} bytes) {self.note}".rstrip()


@dataclass
class AttributeCheck:
    """One attribute of an offered transform compared with one local policy."""

    attribute: str
    offered: str
    policy: str
    match: bool
    message: str = ""


@dataclass
class TransformCheck:
    """One offered transform compared with one local policy (priority order)."""

    transform: int
    policy: str
    checks: list[AttributeCheck]
    accepted: bool
    notes: list[str] = field(default_factory=list)


@dataclass
class PolicyDecision(Event):
    """The responder's (or initiator's) verdict on a proposal, transform by transform.

    ``explanation`` holds the plain-words lines a student reads; ``checks`` the
    structured comparison behind them; ``chosen`` the accepted transform (or
    ``None`` with ``accepted`` false and NO_PROPOSAL_CHOSEN sent).
    """

    kind: ClassVar[str] = "policy"
    phase: int
    exchange: str
    accepted: bool
    explanation: list[str]
    checks: list[TransformCheck] = field(default_factory=list)
    chosen: dict[str, Any] | None = None

    def describe(self) -> str:
        head = "accepted" if self.accepted else "rejected (NO_PROPOSAL_CHOSEN)"
        return f"phase {self.phase} proposal {head}: " + "; ".join(self.explanation[-3:])


@dataclass
class IkeSaInfo:
    """What an established IKE SA (IKEv1: ISAKMP SA) was negotiated with."""

    role: str  # "initiator" | "responder"
    mode: str  # "main" | "aggressive" (IKEv1) | "ikev2"
    peer: str  # "address:port"
    peer_id: str
    encryption: str
    hash: str  # IKEv1: the hash; IKEv2: the PRF
    auth: str
    group: int
    lifetime: int
    transform: int = 0
    policy: int = 0
    nat_t: bool = False
    nat_detected: bool = False
    integrity: str = ""  # IKEv2's INTEG transform (IKEv1 has none of its own)
    virtual_ip: str = ""  # remote access: the address a gateway assigned (Configuration payload)
    eap_id: str = ""  # remote access: the identity the client proved by EAP (RFC 7296 §2.16)


@dataclass
class ChildSaInfo:
    """What an established pair of IPsec SAs protects and how (no keys).

    ``src_in``/``dst_in`` are the inbound SA's addresses as this peer sees them;
    ``wireshark_*`` the algorithm names Wireshark's ``esp_sa`` table uses.
    """

    child: str
    spi_in: str
    spi_out: str
    local_ts: str
    remote_ts: str
    encryption: str
    integrity: str
    mode: str
    udp_encapsulated: bool
    pfs_group: int | None
    lifetime: int
    life_kilobytes: int | None = None
    life_packets: int | None = None
    state: str = "ESTABLISHED"
    src_in: str = ""
    dst_in: str = ""
    wireshark_encryption: str = ""
    wireshark_integrity: str = ""


@dataclass
class SaEstablished(Event):
    """An IKE SA (IKEv1 phase 1) or a pair of IPsec SAs (phase 2) is ready for use.

    ``sa.kind`` says which; ``ike`` or ``child`` holds what was negotiated.
    """

    kind: ClassVar[str] = "sa-up"
    sa: SaRef
    ike: IkeSaInfo | None = None
    child: ChildSaInfo | None = None

    @property
    def details(self) -> dict[str, Any]:
        info = self.ike if self.ike is not None else self.child
        return dataclasses.asdict(info) if info is not None else {}

    def describe(self) -> str:
        text = ", ".join(f"{k}={v}" for k, v in self.details.items())
        what = "ISAKMP" if self.sa.kind == "ike" and self.sa.version == 1 else self.sa.kind.upper()
        what = "IPSEC" if self.sa.kind == "child" and self.sa.version == 1 else what
        return f"{what} SA established: {self.sa} ({text})"


@dataclass
class SaDeleted(Event):
    """An SA was deleted or expired (``reason`` says which and why)."""

    kind: ClassVar[str] = "sa-down"
    sa: SaRef
    reason: str

    @property
    def failed(self) -> bool:
        """An SA that never came up (its negotiation failed), not one taken down."""
        return self.reason.startswith("phase 1 failed")

    def describe(self) -> str:
        what = {"ike": "ISAKMP" if self.sa.version == 1 else "IKE", "child": "IPSEC" if self.sa.version == 1 else "CHILD"}
        return f"{what.get(self.sa.kind, self.sa.kind.upper())} SA deleted: {self.sa} ({self.reason})"


@dataclass
class NatDetected(Event):
    """NAT-D comparison result (RFC 3947 §3.2)."""

    kind: ClassVar[str] = "nat"
    sa: SaRef
    local_behind_nat: bool
    remote_behind_nat: bool
    forced: bool = False

    def describe(self) -> str:
        return (
            f"{self.sa}: NAT detection: local {'behind NAT' if self.local_behind_nat else 'not NATed'}, "
            f"remote {'behind NAT' if self.remote_behind_nat else 'not NATed'}"
            + (" (encapsulation forced)" if self.forced else "")
        )


@dataclass
class PortFloated(Event):
    """IKE moved from UDP 500 to the NAT-T port (RFC 3947 §4)."""

    kind: ClassVar[str] = "float"
    sa: SaRef
    old: Address
    new: Address

    def describe(self) -> str:
        return f"{self.sa}: floating to port {self.new[1]} ({self.old[0]}:{self.old[1]} -> {self.new[0]}:{self.new[1]})"


@dataclass
class NatKeepalive(Event):
    """A one-byte 0xFF NAT-keepalive sent to hold the NAT mapping open (RFC 3948 §2.3)."""

    kind: ClassVar[str] = "keepalive"
    sa: SaRef
    src: Address
    dst: Address

    def describe(self) -> str:
        return f"{self.sa}: NAT keepalive {self.src[0]}:{self.src[1]} -> {self.dst[0]}:{self.dst[1]}"


@dataclass
class PeerMoved(Event):
    """The peer's address or port changed under an SA (a NAT renewed its mapping): we follow it."""

    kind: ClassVar[str] = "moved"
    sa: SaRef
    old: Address
    new: Address

    def describe(self) -> str:
        return f"{self.sa}: the peer now appears as {self.new[0]}:{self.new[1]} (was {self.old[0]}:{self.old[1]}): following it"


@dataclass
class Retransmitted(Event):
    """A message was sent again after a timeout, or resent for a duplicate request."""

    kind: ClassVar[str] = "retransmit"
    sa: SaRef
    exchange: str
    index: int
    attempt: int
    reason: str

    def describe(self) -> str:
        return f"{self.sa}: {self.exchange} #{self.index} resent (attempt {self.attempt}, {self.reason})"


@dataclass
class ErrorEvent(Event):
    """Something went wrong; ``message`` says what, in words a student can act on.

    ``notify`` is the notification type sent or received, if any.
    """

    kind: ClassVar[str] = "error"
    sa: SaRef
    code: str
    message: str
    notify: int | None = None

    def describe(self) -> str:
        return f"{self.sa}: {self.code}: {self.message}"


@dataclass
class Info(Event):
    """A notable step that is not an error (a notify received, a rekey started …)."""

    kind: ClassVar[str] = "info"
    sa: SaRef
    message: str

    def describe(self) -> str:
        return f"{self.sa}: {self.message}"


@dataclass
class EspPacket(Event):
    """One ESP packet taken apart (RFC 4303 §2): emitted for the first few packets of
    each SA and on request (``DataPlane.trace_next``), never for every packet.

    ``direction`` is "out" (protected) or "in" (accepted); ``outer`` the outer
    header as a dict (version, src, dst, protocol, lengths, UDP ports for RFC 3948);
    ``esp`` the ESP packet as sent (SPI .. ICV); ``iv``/``icv`` its IV and ICV,
    ``ciphertext_len`` the encrypted part's length; ``inner`` the protected packet
    (tunnel mode: the inner IP packet; transport mode: the IP payload) with
    ``inner_summary`` its one-line scapy summary and ``inner_fields`` a few decoded
    fields.  Sizes in bytes.
    """

    kind: ClassVar[str] = "esp-packet"
    sa: SaRef
    direction: str
    spi: int
    esp_seq: int
    mode: str
    outer: dict[str, Any] = field(default_factory=dict)
    esp: bytes = b""
    iv: bytes = b""
    ciphertext_len: int = 0
    icv: bytes = b""
    pad_len: int = 0
    next_header: int = 0
    inner: bytes = b""
    inner_summary: str = ""
    inner_fields: dict[str, Any] = field(default_factory=dict)
    inner_len: int = 0
    wire_len: int = 0
    reason: str = ""

    def describe(self) -> str:
        arrow = "->" if self.direction == "out" else "<-"
        return (
            f"{self.sa}: ESP {arrow} SPI {self.spi:08x} seq {self.esp_seq}: {self.inner_summary} "
            f"({self.inner_len} bytes inside, {self.wire_len} on the wire)"
        )


@dataclass
class EspStats(Event):
    """Aggregated ESP traffic since the previous ``EspStats`` (at most one per
    interval): packets and bytes each way, drops by reason, and per-SA totals."""

    kind: ClassVar[str] = "esp-stats"
    interval: float
    packets_out: int
    packets_in: int
    bytes_out: int
    bytes_in: int
    drops: dict[str, int] = field(default_factory=dict)
    sas: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> str:
        dropped = sum(self.drops.values())
        return (
            f"ESP: {self.packets_out} packets out ({self.bytes_out} bytes), {self.packets_in} in "
            f"({self.bytes_in} bytes) in {self.interval:.2f} s" + (f", {dropped} dropped" if dropped else "")
        )


@dataclass
class EspDropped(Event):
    """An ESP (or to-be-protected) packet was dropped; rate-limited per SA and reason,
    ``suppressed`` says how many more of the same were dropped since the last event.

    ``reason`` is one of ``ipseclab.esp.errors.DROP_REASONS`` or a data plane reason
    ("no policy", "unknown spi", "policy mismatch", "bad inner packet").
    """

    kind: ClassVar[str] = "esp-drop"
    sa: SaRef
    direction: str
    reason: str
    detail: str = ""
    spi: int | None = None
    esp_seq: int | None = None
    total: int = 0
    suppressed: int = 0

    def describe(self) -> str:
        what = "packet" if self.direction == "out" else "ESP packet"
        more = f" (+{self.suppressed} more since the last report)" if self.suppressed else ""
        seq = f" seq {self.esp_seq}" if self.esp_seq is not None else ""
        return f"{self.sa}: {self.reason} {what}{seq} dropped: {self.detail}{more}".replace(": :", ":")


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        MessageEvent,
        StateChanged,
        KeyDerived,
        PublicValue,
        PolicyDecision,
        SaEstablished,
        SaDeleted,
        NatDetected,
        PortFloated,
        NatKeepalive,
        PeerMoved,
        Retransmitted,
        ErrorEvent,
        Info,
        EspPacket,
        EspStats,
        EspDropped,
    )
}


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def _to_plain(value: Any) -> Any:
    """JSON-ready data: the common types first (this runs for every event the daemon sends)."""
    kind = type(value)
    if value is None or kind is str or kind is int or kind is float or kind is bool:
        return value
    if kind is bytes or kind is bytearray:
        return {"hex": bytes(value).hex()}
    if kind is dict:
        return {str(k): _to_plain(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_to_plain(v) for v in value]
    if hasattr(kind, "__dataclass_fields__"):
        return {name: _to_plain(getattr(value, name)) for name in _field_names(kind)}
    if isinstance(value, bytes | bytearray):
        return {"hex": bytes(value).hex()}
    if isinstance(value, dict):
        return {str(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_plain(v) for v in value]
    return value


def event_to_dict(event: Event, *, include_secrets: bool = False) -> dict[str, Any]:
    """Serialise an event to JSON-ready data; secrets are masked unless asked for."""
    data = {"kind": event.kind}
    for name in _field_names(type(event)):
        data[name] = _to_plain(getattr(event, name))
    if isinstance(event, KeyDerived) and event.secret and not include_secrets:
        data["value"] = SECRET_PLACEHOLDER
    return data


def _from_plain(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"hex"}:
            return bytes.fromhex(value["hex"])
        return {k: _from_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_plain(v) for v in value]
    return value


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event serialised by :func:`event_to_dict`."""
    cls = EVENT_TYPES[data["kind"]]
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value = _from_plain(data[f.name])
        if f.name in ("src", "dst", "old", "new") and isinstance(value, list):
            value = tuple(value)
        if f.name == "checks" and cls is PolicyDecision:
            value = [
                TransformCheck(
                    **{**tc, "checks": [AttributeCheck(**ac) for ac in tc["checks"]]}
                )
                for tc in value
            ]
        if f.name == "sa" and isinstance(value, dict):
            value = SaRef(**value)
        if f.name == "ike" and isinstance(value, dict):
            value = IkeSaInfo(**value)
        if f.name == "child" and isinstance(value, dict) and cls is SaEstablished:
            value = ChildSaInfo(**value)
        if f.name == "value" and value == SECRET_PLACEHOLDER:
            value = b""
        kwargs[f.name] = value
    return cls(**kwargs)
