"""EAP inside IKE_AUTH, RFC 7296 §2.16, with EAP-MD5 (RFC 3748 §5.4) as the lab's method.

::

    Client (initiator)                           Gateway (responder)
    HDR, SK {IDi, [CERTREQ,] CP(CFG_REQUEST),
             SAi2, TSi, TSr}                -->        (no AUTH: "I use EAP")
                                            <--  HDR, SK {IDr, CERT, AUTH, EAP(Request/Identity)}
    HDR, SK {EAP(Response/Identity)}        -->
                                            <--  HDR, SK {EAP(Request/MD5-Challenge)}
    HDR, SK {EAP(Response/MD5-Challenge)}   -->
                                            <--  HDR, SK {EAP(Success)}
    HDR, SK {AUTH}                          -->
                                            <--  HDR, SK {AUTH, CP(CFG_REPLY), SAr2, TSi, TSr}

The gateway proves itself first, with its certificate (or a pre-shared key); the client
proves itself by the EAP method — here a password, MD5-Challenge::

    Value = MD5(Identifier | password | Challenge)

Both sides then send a last AUTH that binds the EAP conversation to this IKE SA, keyed
with the method's MSK; EAP-MD5 makes none, so with SK_pi (client) and SK_pr (gateway)
(§2.16: "If the EAP method does not generate a shared key, SK_pi and SK_pr are used").
A wrong password is EAP Failure and the IKE SA goes.
"""

from __future__ import annotations

import hmac as _hmac  # compare_digest only
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes

from ipseclab.wire.v2.constants import EapCode
from ipseclab.wire.v2.message import EAPPayload

if TYPE_CHECKING:
    from ipseclab.ikev2.exchange import Rx

#: EAP method types (RFC 3748 §5, IANA "Method Types")
IDENTITY, NOTIFICATION, NAK, MD5_CHALLENGE = 1, 2, 3, 4
_TYPE_NAMES = {IDENTITY: "Identity", NOTIFICATION: "Notification", NAK: "Nak", MD5_CHALLENGE: "MD5-Challenge",
               13: "TLS", 21: "TTLS", 23: "AKA", 26: "MSCHAPv2"}
#: the methods a connection's ``local_auth`` / ``remote_auth`` may name
METHODS = {"eap-md5": MD5_CHALLENGE}
CHALLENGE_BYTES = 16


def type_name(eap_type: int | None) -> str:
    return _TYPE_NAMES.get(eap_type or 0, f"type {eap_type}")


def describe(p: EAPPayload) -> str:
    """``Request/Identity``, ``Response/MD5-Challenge``, ``Success`` — an EAP packet in words."""
    try:
        code = EapCode(p.code).name.capitalize()
    except ValueError:
        return f"code {p.code}"
    if p.code in (EapCode.REQUEST, EapCode.RESPONSE):
        return f"{code}/{type_name(p.eap_type)}"
    return code


def md5_value(identifier: int, password: bytes, challenge: bytes) -> bytes:
    """``MD5(Identifier | secret | Challenge)`` — RFC 1994 §4.1's CHAP, as EAP-MD5 uses it."""
    digest = hashes.Hash(hashes.MD5())
    digest.update(bytes([identifier]) + password + challenge)
    return digest.finalize()


def md5_data(value: bytes, name: bytes = b"") -> bytes:
    """EAP-MD5 Type-Data (after the Type): ``Value-Size | Value | Name`` (RFC 3748 §5.4)."""
    return bytes([len(value)]) + value + name


def parse_md5(p: EAPPayload) -> bytes | None:
    """The Value of an EAP-MD5 Request or Response, or None when it is not one."""
    data = p.data
    if len(data) < 2 or data[0] != MD5_CHALLENGE or data[1] == 0 or len(data) < 2 + data[1]:
        return None
    return data[2 : 2 + data[1]]


def identity_of(p: EAPPayload) -> str | None:
    """The identity an EAP Response/Identity carries."""
    if p.code != EapCode.RESPONSE or p.eap_type != IDENTITY:
        return None
    return p.data[1:].decode(errors="replace")


def request(identifier: int, eap_type: int, data: bytes = b"") -> EAPPayload:
    return EAPPayload(EapCode.REQUEST, identifier, bytes([eap_type]) + data)


def response(identifier: int, eap_type: int, data: bytes = b"") -> EAPPayload:
    return EAPPayload(EapCode.RESPONSE, identifier, bytes([eap_type]) + data)


@dataclass
class EapServer:
    """The gateway's side of one EAP conversation (on the IKE SA while it lasts)."""

    method: int
    identifier: int
    #: the client's first IKE_AUTH request: its SAi2, TSi, TSr and CP are answered at the end
    first: Rx = field(repr=False)
    idi_body: bytes = field(repr=False)
    idr_body: bytes = field(repr=False)
    stage: str = "identity"  # "identity" → "challenge" → "success" (then the last AUTH)
    identity: str = ""
    challenge: bytes = field(default=b"", repr=False)


@dataclass
class EapClient:
    """Our side as the client: the IDi we sent (the last AUTH covers it) and where we are."""

    idi_body: bytes = field(repr=False)
    identity: str = ""
    succeeded: bool = False


@dataclass
class Step:
    """One step of an EAP conversation: what to send back and where it stands.

    ``outcome``: ``continue`` (another round), ``success`` or ``failure`` (the
    conversation is over); ``message`` says what happened, for the trace.
    """

    reply: EAPPayload | None
    outcome: str = "continue"
    message: str = ""


def start(state: EapServer) -> Step:
    """The gateway's first request: who are you? (RFC 3748 §5.1)."""
    return Step(request(state.identifier, IDENTITY), message="EAP: the gateway asks the client for its EAP identity (Request/Identity)")


def server_step(state: EapServer, p: EAPPayload | None, users: dict[str, bytes], challenge: bytes) -> Step:
    """The gateway answers the client's EAP Response (``challenge``: fresh random bytes for MD5)."""
    if p is None or p.code != EapCode.RESPONSE or p.identifier != state.identifier:
        got = "no EAP payload" if p is None else f"EAP {describe(p)} with identifier {p.identifier}"
        return _failure(state, f"EAP: expected the client's Response with identifier {state.identifier}, got {got}")
    if p.eap_type == NAK:
        wanted = ", ".join(type_name(t) for t in p.data[1:]) or "nothing"
        return _failure(state, f"EAP: the client does not do {type_name(state.method)} (Nak); it proposes {wanted}")
    if state.stage == "identity":
        if p.eap_type != IDENTITY:
            return _failure(state, f"EAP: expected Response/Identity, got {describe(p)}")
        state.identity = identity_of(p) or ""
        if state.identity not in users:
            return _failure(state, f"EAP: the client calls itself {state.identity!r}, and we have no EAP user of that name "
                            f"(known: {', '.join(sorted(users)) or 'none'})")
        state.identifier = (state.identifier + 1) % 256
        state.challenge, state.stage = challenge, "challenge"
        return Step(request(state.identifier, MD5_CHALLENGE, md5_data(challenge)),
                    message=f"EAP: the client is {state.identity!r}; the gateway sends it a random MD5 challenge "
                    f"(identifier {state.identifier})")
    if state.stage == "challenge":
        value = parse_md5(p)
        if value is None:
            return _failure(state, f"EAP: expected Response/MD5-Challenge, got {describe(p)}")
        want = md5_value(state.identifier, users[state.identity], state.challenge)
        if not _hmac.compare_digest(value, want):
            return _failure(state, f"EAP-MD5: {state.identity}'s answer is not MD5(Identifier | password | Challenge) "
                            f"with the password we have for {state.identity}: the client typed a wrong password")
        state.stage = "success"
        return Step(EAPPayload(EapCode.SUCCESS, state.identifier), "success",
                    f"EAP-MD5: {state.identity}'s answer matches MD5(Identifier | password | Challenge): the password is "
                    "right (EAP Success); both sides now send AUTH keyed with SK_pi/SK_pr (EAP-MD5 makes no MSK)")
    return _failure(state, f"EAP: the conversation is over, but the client sent {describe(p)}")


def _failure(state: EapServer, message: str) -> Step:
    state.stage = "failure"
    return Step(EAPPayload(EapCode.FAILURE, state.identifier), "failure", message)


def client_step(client: EapClient, p: EAPPayload | None, password: bytes | None) -> Step:
    """The client answers the gateway's EAP Request, or learns the outcome."""
    if p is None:
        return Step(None, "failure", "the gateway sent no EAP payload, yet we authenticate by EAP")
    if p.code == EapCode.SUCCESS:
        client.succeeded = True
        return Step(None, "success", "EAP Success: the gateway accepted our password; now AUTH keyed with SK_pi "
                    "(EAP-MD5 makes no MSK)")
    if p.code == EapCode.FAILURE:
        return Step(None, "failure", f"the gateway refused us (EAP Failure): the password for {client.identity!r} "
                    "is wrong, or the gateway has no such EAP user")
    if p.code != EapCode.REQUEST:
        return Step(None, "failure", f"the gateway sent EAP {describe(p)}, which a client cannot answer")
    if p.eap_type == IDENTITY:
        return Step(response(p.identifier, IDENTITY, client.identity.encode()),
                    message=f"EAP: the gateway asks who we are; we answer {client.identity!r}")
    if p.eap_type == MD5_CHALLENGE:
        challenge = parse_md5(p)
        if challenge is None:
            return Step(None, "failure", "the gateway's MD5-Challenge is malformed (Value-Size runs past the data)")
        if password is None:
            return Step(None, "failure", f"the gateway asks for {client.identity!r}'s password (EAP-MD5) and we have "
                        "none: add it to peer.eap_users")
        return Step(response(p.identifier, MD5_CHALLENGE, md5_data(md5_value(p.identifier, password, challenge))),
                    message=f"EAP-MD5: we answer the challenge with MD5(Identifier {p.identifier} | password | Challenge)")
    if p.eap_type == NOTIFICATION:
        return Step(response(p.identifier, NOTIFICATION), message=f"EAP Notification: {p.data[1:].decode(errors='replace')}")
    return Step(response(p.identifier, NAK, bytes([MD5_CHALLENGE])),
                message=f"EAP: the gateway proposes {type_name(p.eap_type)}; we do MD5-Challenge only (Nak)")
