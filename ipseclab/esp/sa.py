"""One direction of an ESP Security Association and its packet transform (RFC 4303).

:class:`EspSa` turns a payload into an ESP packet (:meth:`EspSa.protect`) and back
(:meth:`EspSa.unprotect`).  The ESP packet, as built here (RFC 4303 §2, Figure 1)::

    SPI (4) | Sequence Number (4) | IV (0/8/16) | ciphertext of
        [ payload | padding 1, 2, 3, ... | pad length (1) | next header (1) ] | ICV

* AES-GCM (RFC 4106): 8-byte explicit IV, nonce = 4-byte salt || IV (§4), AAD =
  SPI || sequence number, with the ESN high bits in between when ESN is on (§5).
  The IV is the SA's 64-bit sequence number: unique per key for the life of the
  SA (RFC 4106 §3.1 "a counter is fine"), since the counter never cycles.
* AES-CBC / 3DES-CBC (RFC 3602 / RFC 2451) with HMAC (RFC 2404, RFC 4868):
  random IV, ICV = truncated HMAC over SPI .. ciphertext, followed by the ESN
  high bits when ESN is on (RFC 4303 §2.2.1, §3.3.2.1).  Encrypt-then-MAC: the
  receiver checks the ICV before it decrypts anything (RFC 4303 §3.4.4).
* NULL encryption (RFC 2410) with integrity: the trailer travels in clear.

Everything the fast path needs is built once per SA in ``__post_init__``: the
``AESGCM`` object, a keyed HMAC template that is ``copy()``-ed per packet
(cryptography's ``HMAC.copy`` measured faster than the stdlib ``hmac`` copy),
long-lived CBC contexts, the SPI bytes and the padding/trailer table.

CBC without a per-packet cipher context: ``protect`` feeds ``R || plaintext`` to
one long-lived CBC encryptor, with ``R`` 16 fresh random bytes.  The first output
block ``E_K(R xor C_prev)`` is uniformly random and unpredictable, and it is by
construction the CBC chaining value of the following blocks: it *is* the packet's
IV (the "encrypt a nonce" IV generation of NIST SP 800-38A Appendix C).  The
receiver's long-lived decryptor is fed ``IV || ciphertext`` and the first output
block is discarded (it depends on the previous packet); every following block is
``D_K(C_i) xor C_(i-1)`` with ``C_0 = IV``, the standard CBC decryption.  Both are
plain RFC 3602 on the wire — scapy and Wireshark decrypt our packets.

An ``EspSa`` is not thread-safe (one data plane thread per SA, as in a kernel).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from hmac import compare_digest
from os import urandom as _urandom
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ipseclab.crypto.registry import (
    ESP_3DES,
    ESP_AES_CBC,
    ESP_NULL,
    EspCipherSpec,
    EspIntegritySpec,
    esp_cipher,
    esp_integrity,
)
from ipseclab.errors import CryptoError
from ipseclab.esp.errors import EspConfigError, EspDrop, EspLifetimeExpired, EspSeqOverflow
from ipseclab.esp.replay import REPLAYED, TOO_OLD, ReplayWindow

if TYPE_CHECKING:
    from ipseclab.sa import IpsecSa, IpsecSaPair

try:  # cryptography >= 43 keeps TripleDES among the "decrepit" algorithms
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES as _TripleDES
except ImportError:  # pragma: no cover - older cryptography
    _TripleDES = algorithms.TripleDES  # type: ignore[attr-defined,misc]

__all__ = ["EspCounters", "EspLifetime", "EspSa", "MODES"]

MODES = ("tunnel", "transport")

_MAX_SEQ_32 = (1 << 32) - 1
_MAX_SEQ_64 = (1 << 64) - 1
_LOW32 = 0xFFFFFFFF
_unpack_header = struct.Struct("!II").unpack_from

_HASHES: dict[int, type[hashes.HashAlgorithm]] = {
    1: hashes.MD5,
    2: hashes.SHA1,
    5: hashes.SHA256,
    6: hashes.SHA384,
    7: hashes.SHA512,
}


def _trailer_table(alignment: int) -> tuple[tuple[bytes, ...], ...]:
    """``table[next_header][pad_length]`` = padding 1, 2, … || pad length || next header.

    RFC 4303 §2.4: the default padding is the monotonic sequence 1, 2, 3, …; the
    pad length and next header bytes follow it.  Indexed by ``-(len(payload) + 2) %
    alignment`` this gives the whole trailer in one lookup.
    """
    return tuple(
        tuple(bytes(range(1, pad + 1)) + bytes((pad, nh)) for pad in range(alignment))
        for nh in range(256)
    )


# Immutable per-alignment tables (ESP aligns to 4 bytes, or to the cipher block).
_TRAILERS = {4: _trailer_table(4), 8: _trailer_table(8), 16: _trailer_table(16)}
#: ``_PADS[n]`` = the n padding bytes a receiver expects (RFC 4303 §2.4).
_PADS = tuple(bytes(range(1, n + 1)) for n in range(256))

_DROP_COUNTER = {
    "truncated": "malformed",
    "bad length": "malformed",
    "wrong spi": "wrong_spi",
    "replayed": "replay_drops",
    "too old": "replay_drops",
    "icv failure": "icv_failures",
    "bad padding": "padding_errors",
    "sequence overflow": "seq_overflows",
    "hard lifetime": "expired",
}


@dataclass
class EspCounters:
    """Per-SA counters (the SA table shows them).

    ``packets``/``bytes`` count packets protected (outbound SA) or accepted
    (inbound SA) and their payload bytes — what byte lifetimes are measured in.
    ``replay_drops`` counts "replayed" and "too old"; ``by_reason`` every drop
    under its :data:`~ipseclab.esp.errors.DROP_REASONS` name.
    """

    packets: int = 0
    bytes: int = 0
    replay_drops: int = 0
    icv_failures: int = 0
    padding_errors: int = 0
    malformed: int = 0
    wrong_spi: int = 0
    seq_overflows: int = 0
    expired: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)

    def count_drop(self, reason: str) -> None:
        """Count one refused packet under ``reason``."""
        attr = _DROP_COUNTER.get(reason)
        if attr is not None:
            setattr(self, attr, getattr(self, attr) + 1)
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1

    @property
    def drops(self) -> int:
        """All refused packets."""
        return sum(self.by_reason.values())

    def as_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready)."""
        return {
            "packets": self.packets,
            "bytes": self.bytes,
            "replay_drops": self.replay_drops,
            "icv_failures": self.icv_failures,
            "padding_errors": self.padding_errors,
            "malformed": self.malformed,
            "wrong_spi": self.wrong_spi,
            "seq_overflows": self.seq_overflows,
            "expired": self.expired,
            "by_reason": dict(self.by_reason),
        }


@dataclass(frozen=True)
class EspLifetime:
    """Soft and hard SA lifetimes in bytes, packets and seconds (RFC 4301 §4.4.2.1).

    Reaching a soft limit asks for a rekey; reaching a hard limit ends the SA.
    ``None`` means "no limit of this kind".
    """

    soft_bytes: int | None = None
    hard_bytes: int | None = None
    soft_packets: int | None = None
    hard_packets: int | None = None
    soft_seconds: float | None = None
    hard_seconds: float | None = None

    @classmethod
    def from_seconds(cls, seconds: float | None, *, soft_fraction: float = 0.9, **limits: int | None) -> EspLifetime:
        """Hard limit ``seconds`` (Quick Mode's SA Life Duration) with a soft one at a fraction of it."""
        if not seconds:
            return cls(**limits)  # type: ignore[arg-type]
        return cls(soft_seconds=seconds * soft_fraction, hard_seconds=float(seconds), **limits)  # type: ignore[arg-type]

    @classmethod
    def from_pair(cls, pair: IpsecSaPair, *, soft_fraction: float = 0.9) -> EspLifetime:
        """The limits a Quick Mode pair was negotiated with: seconds and kilobytes
        (RFC 2407 §4.5, a kilobyte being 1024 bytes) and the local packet limit, each
        with a soft limit at ``soft_fraction`` of it — or the pair's ``rekey_bytes`` /
        ``rekey_packets`` when set and below the hard limit."""

        def soft(hard: int | None, rekey: int | None) -> int | None:
            if rekey and (hard is None or rekey < hard):
                return rekey
            return max(1, int(hard * soft_fraction)) if hard else None

        hard_bytes = pair.life_kilobytes * 1024 if pair.life_kilobytes else None
        hard_packets = pair.life_packets or None
        return cls.from_seconds(
            pair.lifetime,
            soft_fraction=soft_fraction,
            soft_bytes=soft(hard_bytes, pair.rekey_bytes),
            hard_bytes=hard_bytes,
            soft_packets=soft(hard_packets, pair.rekey_packets),
            hard_packets=hard_packets,
        )

    def as_dict(self) -> dict[str, float | int | None]:
        """Plain data."""
        return {
            "soft_bytes": self.soft_bytes,
            "hard_bytes": self.hard_bytes,
            "soft_packets": self.soft_packets,
            "hard_packets": self.hard_packets,
            "soft_seconds": self.soft_seconds,
            "hard_seconds": self.hard_seconds,
        }


def _reached(value: float, limit: float | None) -> bool:
    return limit is not None and value >= limit


@dataclass(eq=False)
class EspSa:
    """One direction of an ESP SA: SPI, addresses, transform, keys and state (RFC 4303).

    ``enc_key`` is the KEYMAT's encryption part: for AES-GCM the key followed by
    the 4-byte salt (RFC 4106 §8.1), exactly what Quick Mode derives.  Keys never
    appear in ``repr``.  ``udp_encap`` is ``(source port, destination port)`` as
    this SA's packets carry them on the wire (RFC 3948) or ``None`` for plain
    ESP (IP protocol 50).  ``seq`` is the last sequence number sent (0: none yet).
    """

    spi: int
    src: str
    dst: str
    cipher: EspCipherSpec
    integ: EspIntegritySpec | None
    enc_key: bytes = field(repr=False)
    integ_key: bytes = field(repr=False)
    mode: str = "tunnel"
    udp_encap: tuple[int, int] | None = None
    esn: bool = False
    replay_window: int = 64
    lifetime: EspLifetime = field(default_factory=EspLifetime)
    created: float = 0.0
    direction: str = ""
    name: str = ""
    seq: int = 0
    counters: EspCounters = field(default_factory=EspCounters)

    def __post_init__(self) -> None:
        self._validate()
        cipher, integ = self.cipher, self.integ
        self.replay = ReplayWindow(self.replay_window)
        self._spi_bytes = self.spi.to_bytes(4, "big")
        alignment = cipher.padding_alignment
        self._align = alignment
        self._trailers = _TRAILERS[alignment]
        self._iv_size = cipher.iv_size
        self._icv_size = cipher.icv_size if cipher.aead else (integ.icv_size if integ else 0)
        self._max_seq = _MAX_SEQ_64 if self.esn else _MAX_SEQ_32
        hard_packets = self.lifetime.hard_packets
        self._seq_limit = self._max_seq if hard_packets is None else min(self._max_seq, self.seq + hard_packets)
        # The smallest valid packet: header, IV, one block (or the 2 trailer bytes), ICV.
        body_min = cipher.block_size if cipher.block_size > 1 else 4
        self._min_len = 8 + self._iv_size + body_min + self._icv_size
        self._aead: AESGCM | None = None
        self._gcm_key = b""
        self._salt = b""
        self._enc: Any = None
        self._dec: Any = None
        self._mac: crypto_hmac.HMAC | None = None
        if cipher.aead:
            key, self._salt = self.enc_key[: cipher.key_bytes], self.enc_key[cipher.key_bytes :]
            if cipher.icv_size == 16:
                self._aead = AESGCM(key)
            else:  # GCM-8/GCM-12: AESGCM only makes 16-byte tags; use the GCM mode API
                self._gcm_key = key
        elif cipher.esp_id != ESP_NULL:
            alg = algorithms.AES(self.enc_key) if cipher.esp_id == ESP_AES_CBC else _TripleDES(self.enc_key)
            zero_iv = bytes(cipher.block_size)
            self._enc = Cipher(alg, modes.CBC(zero_iv)).encryptor()
            self._dec = Cipher(alg, modes.CBC(zero_iv)).decryptor()
        if integ is not None:
            self._mac = crypto_hmac.HMAC(self.integ_key, _HASHES[integ.auth_alg_id]())
        self._cbc_hmac = self._enc is not None and self._mac is not None and not self.esn

    def _validate(self) -> None:
        cipher, integ = self.cipher, self.integ
        if not 0 < self.spi <= _LOW32 or self.spi < 256:
            raise EspConfigError(f"SPI must be 256 … 2^32-1 (RFC 4303 §2.1 reserves 1-255), got {self.spi}")
        if self.mode not in MODES:
            raise EspConfigError(f"mode must be 'tunnel' or 'transport', got {self.mode!r}")
        if cipher.aead and integ is not None:
            raise EspConfigError(f"{cipher.name} is a combined-mode cipher: it takes no separate integrity algorithm (RFC 4303 §3.2.3)")
        if cipher.esp_id == ESP_NULL and integ is None:
            raise EspConfigError("NULL encryption without integrity protects nothing (RFC 4303 §3.2 forbids it)")
        if cipher.esp_id not in (ESP_NULL, ESP_AES_CBC, ESP_3DES) and not cipher.aead:
            raise EspConfigError(f"{cipher.name} is not supported by the ESP data plane")
        if len(self.enc_key) != cipher.keymat_bytes:
            raise EspConfigError(f"{cipher.name} needs {cipher.keymat_bytes} bytes of KEYMAT, got {len(self.enc_key)}")
        want = integ.key_bytes if integ else 0
        if len(self.integ_key) != want:
            raise EspConfigError(
                f"{integ.name if integ else 'no integrity'} needs a {want}-byte key, got {len(self.integ_key)}"
            )
        if self.udp_encap is not None and len(self.udp_encap) != 2:
            raise EspConfigError(f"udp_encap is (source port, destination port), got {self.udp_encap!r}")
        try:
            ReplayWindow(self.replay_window)
        except ValueError as exc:
            raise EspConfigError(str(exc)) from None

    # -- construction from Quick Mode -------------------------------------------

    @classmethod
    def from_ipsec(
        cls,
        sa: IpsecSa,
        pair: IpsecSaPair,
        direction: str | None = None,
        *,
        udp_ports: tuple[int, int] | None = None,
        esn: bool = False,
        replay_window: int = 64,
        lifetime: EspLifetime | None = None,
    ) -> EspSa:
        """Build from a Quick Mode SA record (RFC 2409 §5.5).

        ``direction`` is "inbound" or "outbound" (default: whichever of the pair
        ``sa`` is).  The mode comes from ``pair.mode`` ("tunnel", "transport",
        "UDP tunnel", "UDP transport", draft variants too).  ``udp_ports`` is
        ``(local port, remote port)`` of the (floated) ISAKMP SA; it defaults to
        4500/4500 for UDP-encapsulated pairs and is turned into the wire order of
        this direction.  The hard lifetime in seconds is the pair's, the soft one
        90 % of it, both counted from ``pair.established_at``.
        """
        if direction is None:
            direction = "inbound" if sa is pair.inbound else "outbound"
        if direction not in ("inbound", "outbound"):
            raise EspConfigError(f"direction must be 'inbound' or 'outbound', got {direction!r}")
        mode_text = pair.mode.lower()
        mode = "transport" if "transport" in mode_text else "tunnel"
        udp = pair.udp_encapsulated or mode_text.startswith("udp")
        encap = None
        if udp:
            local, remote = udp_ports or (4500, 4500)
            encap = (local, remote) if direction == "outbound" else (remote, local)
        try:
            cipher = esp_cipher(sa.esp_id, sa.key_bits)
            integ = esp_integrity(sa.auth_alg) if sa.auth_alg else None
        except CryptoError as exc:
            raise EspConfigError(str(exc)) from exc
        return cls(
            spi=sa.spi,
            src=sa.src,
            dst=sa.dst,
            cipher=cipher,
            integ=integ,
            enc_key=sa.enc_key,
            integ_key=sa.integ_key if integ else b"",
            mode=mode,
            udp_encap=encap,
            esn=esn,
            replay_window=replay_window,
            lifetime=lifetime if lifetime is not None else EspLifetime.from_pair(pair),
            created=pair.established_at,
            direction=direction,
            name=pair.child,
        )

    # -- the fast path ------------------------------------------------------------

    def protect(self, payload: bytes, next_header: int) -> bytes:
        """The ESP packet (SPI .. ICV) carrying ``payload`` (RFC 4303 §3.3).

        ``next_header`` is 4 (IPv4) or 41 (IPv6) in tunnel mode, the original
        protocol (6, 17, 1 …) in transport mode.  Raises :class:`EspSeqOverflow`
        when the sequence number would cycle and :class:`EspLifetimeExpired` at the
        hard packet limit.
        """
        seq = self.seq + 1
        if seq > self._seq_limit:
            self._refuse(seq)
        self.seq = seq
        n = len(payload)
        c = self.counters
        c.packets += 1
        c.bytes += n
        plain = payload + self._trailers[next_header][-(n + 2) % self._align]
        aead = self._aead
        if aead is not None:
            # RFC 4106 §3.1: 8-byte explicit IV = the 64-bit sequence number (a counter);
            # the header carries its low 32 bits (RFC 4303 §2.2.1).
            iv = seq.to_bytes(8, "big")
            header = self._spi_bytes + iv[4:]
            # AAD (RFC 4106 §5): SPI | seq, or SPI | ESN high | ESN low.
            aad = self._spi_bytes + iv if self.esn else header
            return header + iv + aead.encrypt(self._salt + iv, plain, aad)
        if self._cbc_hmac:  # CBC + HMAC without ESN, inline (see _protect_slow for the rest)
            msg = self._spi_bytes + seq.to_bytes(4, "big") + self._enc.update(_urandom(self._iv_size) + plain)
            h = self._mac.copy()  # type: ignore[union-attr]
            h.update(msg)
            return msg + h.finalize()[: self._icv_size]
        return self._protect_slow(seq, plain)

    def _protect_slow(self, seq: int, plain: bytes) -> bytes:
        header = self._spi_bytes + (seq & _LOW32).to_bytes(4, "big")
        if self.cipher.aead:  # GCM with an 8- or 12-byte ICV
            iv = seq.to_bytes(8, "big")
            aad = self._spi_bytes + iv if self.esn else header
            enc = Cipher(algorithms.AES(self._gcm_key), modes.GCM(self._salt + iv)).encryptor()
            enc.authenticate_additional_data(aad)
            body = enc.update(plain) + enc.finalize()
            return header + iv + body + enc.tag[: self._icv_size]
        enc = self._enc
        if enc is not None:
            msg = header + enc.update(_urandom(self._iv_size) + plain)
        else:
            msg = header + plain
        mac = self._mac
        if mac is None:
            return msg
        h = mac.copy()
        h.update(msg)
        if self.esn:
            h.update((seq >> 32).to_bytes(4, "big"))
        return msg + h.finalize()[: self._icv_size]

    def unprotect(self, packet: bytes) -> tuple[bytes, int]:
        """``(payload, next_header)`` of an ESP packet for this SA (RFC 4303 §3.4).

        Order of checks (RFC 4303 §3.4.2-§3.4.4): length, SPI, anti-replay window,
        ICV (for GCM: the authenticated decryption), then the window update and
        the padding.  Every refusal raises :class:`EspDrop` after counting it.

        The window check and update are :meth:`ReplayWindow.check` and
        :meth:`ReplayWindow.update` written inline (two method calls are a tenth
        of the per-packet budget); the tests hold both to the same behaviour.
        """
        if len(packet) < self._min_len:
            raise self._drop("truncated", f"{len(packet)} bytes, need at least {self._min_len}", None)
        spi, seq = _unpack_header(packet)
        if spi != self.spi:
            raise self._drop("wrong spi", f"packet SPI {spi:08x}, SA SPI {self.spi:08x}", None)
        window = self.replay
        if self.esn:
            seq = window.infer(seq)
        top = window.top
        if seq <= top:  # RFC 4303 §3.4.3: inside or left of the window
            if top - seq >= window.size:
                raise self._drop(TOO_OLD, f"sequence {seq}, window {top - window.size + 1}..{top}", seq)
            if (window.bitmap >> (top - seq)) & 1:
                raise self._drop(REPLAYED, f"sequence {seq} was already received", seq)
        aead = self._aead
        if aead is not None:
            try:
                plain = aead.decrypt(
                    self._salt + packet[8:16],
                    packet[16:],
                    self._spi_bytes + seq.to_bytes(8, "big") if self.esn else packet[:8],
                )
            except InvalidTag:
                raise self._drop("icv failure", "AES-GCM authentication tag mismatch", seq) from None
        elif self._cbc_hmac:  # CBC + HMAC without ESN, inline (see _unprotect_slow)
            icv_size = self._icv_size
            h = self._mac.copy()  # type: ignore[union-attr]
            h.update(packet[:-icv_size])
            if not compare_digest(h.finalize()[:icv_size], packet[-icv_size:]):
                raise self._drop("icv failure", f"{self.integ.name if self.integ else ''} ICV mismatch", seq)
            data = packet[8:-icv_size]
            if len(data) % self._iv_size:
                raise self._drop("bad length", f"{len(data) - self._iv_size} ciphertext bytes: not whole blocks", seq)
            plain = self._dec.update(data)[self._iv_size :]
        else:
            plain = self._unprotect_slow(packet, seq)
        # Authentic: now the window may move (RFC 4303 §3.4.3).
        if seq > top:
            shift = seq - top
            window.bitmap = 1 if shift >= window.size else ((window.bitmap << shift) | 1) & window.mask
            window.top = seq
        else:
            window.bitmap |= 1 << (top - seq)
        pad = plain[-2]
        if pad and (pad + 2 > len(plain) or plain[-2 - pad : -2] != _PADS[pad]):
            raise self._drop("bad padding", f"pad length {pad} of {len(plain)} bytes", seq)
        payload = plain[: -2 - pad]
        c = self.counters
        c.packets += 1
        c.bytes += len(payload)
        return payload, plain[-1]

    def _unprotect_slow(self, packet: bytes, seq: int) -> bytes:
        icv_size = self._icv_size
        if self.cipher.aead:  # GCM-8/12
            iv = packet[8:16]
            aad = self._spi_bytes + seq.to_bytes(8, "big") if self.esn else packet[:8]
            tag = packet[-icv_size:]
            try:
                dec = Cipher(
                    algorithms.AES(self._gcm_key), modes.GCM(self._salt + iv, tag, min_tag_length=icv_size)
                ).decryptor()
                dec.authenticate_additional_data(aad)
                return dec.update(packet[16:-icv_size]) + dec.finalize()
            except InvalidTag:
                raise self._drop("icv failure", "AES-GCM authentication tag mismatch", seq) from None
        mac = self._mac
        if mac is not None:
            body = packet[:-icv_size]
            h = mac.copy()
            h.update(body)
            if self.esn:
                h.update((seq >> 32).to_bytes(4, "big"))
            if not compare_digest(h.finalize()[:icv_size], packet[-icv_size:]):
                raise self._drop("icv failure", f"{self.integ.name if self.integ else ''} ICV mismatch", seq)
        else:
            body = packet
        dec = self._dec
        if dec is None:  # NULL encryption: the trailer is in clear (RFC 2410)
            return body[8:]
        data = body[8:]
        if len(data) % self._iv_size:
            raise self._drop("bad length", f"ciphertext of {len(data) - self._iv_size} bytes is not a multiple of the block", seq)
        # The long-lived decryptor: the first block out depends on the previous packet, drop it.
        return dec.update(data)[self._iv_size :]

    # -- refusals --------------------------------------------------------------------

    def _drop(self, reason: str, detail: str, seq: int | None) -> EspDrop:
        self.counters.count_drop(reason)
        return EspDrop(reason, detail, spi=self.spi, seq=seq)

    def _refuse(self, seq: int) -> None:
        if seq > self._max_seq:
            self.counters.count_drop("sequence overflow")
            raise EspSeqOverflow(
                "sequence overflow",
                f"{'64' if self.esn else '32'}-bit sequence number space used up: rekey the SA (RFC 4303 §3.3.3)",
                spi=self.spi,
                seq=seq,
            )
        self.counters.count_drop("hard lifetime")
        raise EspLifetimeExpired("hard lifetime", f"{self.lifetime.hard_packets} packets sent", spi=self.spi, seq=seq)

    # -- lifetime and presentation --------------------------------------------------

    def expiry(self, now: float) -> str | None:
        """``"hard"``, ``"soft"`` or ``None``: which lifetime limit the SA has reached (RFC 4301 §4.4.2.1)."""
        life, c, age = self.lifetime, self.counters, now - self.created
        if _reached(c.bytes, life.hard_bytes) or _reached(c.packets, life.hard_packets) or _reached(age, life.hard_seconds):
            return "hard"
        if _reached(c.bytes, life.soft_bytes) or _reached(c.packets, life.soft_packets) or _reached(age, life.soft_seconds):
            return "soft"
        return None

    def limit_reached(self, now: float) -> str:
        """Which limit :meth:`expiry` hit, in words: ``"bytes limit reached"`` etc."""
        life, c, age = self.lifetime, self.counters, now - self.created
        hard = self.expiry(now) == "hard"
        for kind, value, limit in (
            ("bytes", c.bytes, life.hard_bytes if hard else life.soft_bytes),
            ("packets", c.packets, life.hard_packets if hard else life.soft_packets),
            ("seconds", age, life.hard_seconds if hard else life.soft_seconds),
        ):
            if _reached(value, limit):
                return f"{'hard' if hard else 'soft'} {kind} limit reached ({value:.0f} of {limit:.0f})"
        return "no limit reached"

    @property
    def overhead(self) -> int:
        """ESP bytes added to a payload, before padding: header, IV, 2 trailer bytes, ICV."""
        return 8 + self._iv_size + 2 + self._icv_size

    @property
    def icv_size(self) -> int:
        """ICV bytes at the end of each packet."""
        return self._icv_size

    @property
    def iv_size(self) -> int:
        """Explicit IV bytes after the sequence number."""
        return self._iv_size

    def summary(self) -> dict[str, Any]:
        """The SA table row: plain data, no keys."""
        return {
            "spi": f"{self.spi:08x}",
            "name": self.name,
            "direction": self.direction,
            "src": self.src,
            "dst": self.dst,
            "mode": self.mode,
            "udp_encap": list(self.udp_encap) if self.udp_encap else None,
            "encryption": self.cipher.name,
            "integrity": self.integ.name if self.integ else ("(AEAD)" if self.cipher.aead else "none"),
            "esn": self.esn,
            "seq": self.seq,
            "replay": self.replay.state(),
            "counters": self.counters.as_dict(),
            "lifetime": self.lifetime.as_dict(),
            "created": self.created,
        }
