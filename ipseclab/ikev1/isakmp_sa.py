"""The ISAKMP SA (phase 1 result): cookies, negotiated suite, keys and CBC IV state.

Encryption of IKEv1 messages follows RFC 2409 Appendix B and RFC 2408 §3.1:

* phase 1 (message ID 0) starts with ``IV = hash(g^xi | g^xr)`` and each message's
  last ciphertext block is the IV of the next one, in either direction;
* every later exchange (Quick Mode, Informational) with message ID *M* starts with
  ``IV = hash(last phase-1 CBC block | M)`` and chains within that exchange;
* the plaintext is padded with zero bytes to the cipher's block size.

A decryption returns the next IV without committing it, so a message that turns
out to be garbage (wrong PSK, tampering) never corrupts the state of the SA.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ipseclab.crypto.kdf_v1 import phase2_iv
from ipseclab.errors import CryptoError
from ipseclab.ikev1.states import IsakmpState
from ipseclab.trace import SaRef

if TYPE_CHECKING:
    from cryptography import x509

    from ipseclab.config import Connection
    from ipseclab.crypto.dh import DHGroup, DHKeyPair
    from ipseclab.crypto.registry import CipherSpec, HashSpec
    from ipseclab.ikev1.policy import Phase1Choice
    from ipseclab.sa import IpsecSaPair
    from ipseclab.trace import Address
    from ipseclab.wire.v1.isakmp import IDPayload


#: how many message IDs an ISAKMP SA remembers to refuse replays (a bound, not a window)
MESSAGE_ID_MEMORY = 4096


@dataclass
class IsakmpSa:
    """State of one ISAKMP SA, shared by the exchanges that run under it."""

    icookie: bytes
    rcookie: bytes
    initiator: bool
    local: Address
    remote: Address
    connection: Connection | None = None
    mode: str = "main"
    state: IsakmpState = IsakmpState.MM_NO_STATE
    choice: Phase1Choice | None = None
    cipher: CipherSpec | None = None
    hash: HashSpec | None = None
    group: DHGroup | None = None
    dh: DHKeyPair | None = field(default=None, repr=False)
    gxi: bytes = b""
    gxr: bytes = b""
    ni: bytes = b""
    nr: bytes = b""
    gxy: bytes = field(default=b"", repr=False)
    skeyid: bytes = field(default=b"", repr=False)
    skeyid_d: bytes = field(default=b"", repr=False)
    skeyid_a: bytes = field(default=b"", repr=False)
    skeyid_e: bytes = field(default=b"", repr=False)
    enc_key: bytes = field(default=b"", repr=False)
    iv: bytes = field(default=b"", repr=False)  # current phase-1 CBC IV
    last_phase1_block: bytes = field(default=b"", repr=False)
    phase2_ivs: dict[int, bytes] = field(default_factory=dict, repr=False)
    sai_b: bytes = b""
    peer_identity: str = ""
    peer_cert: x509.Certificate | None = field(default=None, repr=False)
    own_id: IDPayload | None = None  # the identity we presented
    nat_t: int = 0  # NAT-D payload type agreed through vendor IDs (20 RFC 3947, 130 draft), 0 = none
    nat_local: bool = False
    nat_remote: bool = False
    floated: bool = False
    established_at: float | None = None
    created_at: float = 0.0
    expires_at: float | None = None
    #: re-authentication (IKEv1 has no rekeying of the ISAKMP SA): when a new one is started,
    #: and the SPI of the SA a new one replaces
    rekey_at: float | None = None
    replaces: bytes | None = None
    children: list[IpsecSaPair] = field(default_factory=list)
    used_message_ids: set[int] = field(default_factory=set)
    _id_order: deque[int] = field(default_factory=deque, repr=False)
    key_mismatch_suspected: bool = False
    initial_contact: bool = False  # the peer said INITIAL-CONTACT in an authenticated message
    #: DPD (RFC 3706): the next R-U-THERE's time, its sequence number, and since when one waits for an ACK
    dpd_at: float | None = None
    dpd_seq: int = 0
    dpd_unacked_since: float | None = None
    next_keepalive: float | None = None
    #: remote access (XAUTH and Mode Config after phase 1): ``user_auth`` is "" (none),
    #: "pending", "done" or "failed"; the user name proved, the virtual IP assigned (client) or
    #: leased (gateway, with its lease); children wait until ``config_pending`` clears
    user_auth: str = ""
    eap_identity: str = ""
    virtual_ip: str | None = None
    lease: tuple[str, str] | None = None
    config_pending: bool = False
    remote_access: Any = field(default=None, repr=False)

    @property
    def ref(self) -> SaRef:
        return SaRef.ike(1, self.icookie, self.rcookie, self.connection.name if self.connection else "")

    @property
    def established(self) -> bool:
        return self.state == IsakmpState.QM_IDLE

    @property
    def failed(self) -> bool:
        return self.state == IsakmpState.FAILED

    def remember_message_id(self, message_id: int) -> bool:
        """Note an authenticated exchange's message ID; False if it was seen before (a
        replay).  The most recent :data:`MESSAGE_ID_MEMORY` are remembered."""
        if message_id in self.used_message_ids:
            return False
        self.used_message_ids.add(message_id)
        self._id_order.append(message_id)
        while len(self._id_order) > MESSAGE_ID_MEMORY:
            self.used_message_ids.discard(self._id_order.popleft())
        return True

    @property
    def address_proven(self) -> bool:
        """A third message came back with our cookie: the initiator receives at its address."""
        return self.state not in (IsakmpState.MM_NO_STATE, IsakmpState.MM_SA_REPLIED, IsakmpState.AG_NO_STATE, IsakmpState.AG_REPLY_SENT)

    @property
    def spi_i(self) -> bytes:
        return self.icookie

    @property
    def lifetime(self) -> int | None:
        return self.choice.lifetime if self.choice else None

    @property
    def suite(self) -> str | None:
        return self.choice.describe() if self.choice else None

    @property
    def nat_detected(self) -> bool:
        return self.nat_local or self.nat_remote

    # -- CBC with IKEv1 IV chaining --------------------------------------------------

    def _require_keys(self) -> CipherSpec:
        if self.cipher is None or not self.enc_key:
            raise CryptoError("no encryption key yet: the message cannot be protected before the DH exchange")
        return self.cipher

    def iv_for(self, message_id: int) -> bytes:
        """The IV for the next message of exchange ``message_id`` (App. B)."""
        if message_id == 0:
            return self.iv
        if message_id not in self.phase2_ivs:
            assert self.hash is not None and self.cipher is not None
            # Before phase 1 completes (an error notify during Main Mode) the current
            # phase-1 IV stands in for the last phase-1 block, as charon does.
            base = self.last_phase1_block or self.iv
            self.phase2_ivs[message_id] = phase2_iv(self.hash, base, message_id, self.cipher.block_size)
        return self.phase2_ivs[message_id]

    def commit_iv(self, message_id: int, next_iv: bytes) -> None:
        if message_id == 0:
            self.iv = next_iv
        else:
            self.phase2_ivs[message_id] = next_iv

    def encrypt(self, message_id: int, plaintext: bytes) -> tuple[bytes, bytes]:
        """Pad with zeros and encrypt; returns (padded plaintext, ciphertext). Commits the IV."""
        cipher = self._require_keys()
        bs = cipher.block_size
        padded = plaintext + b"\x00" * ((-len(plaintext)) % bs)
        ciphertext = cipher.encrypt(self.enc_key, self.iv_for(message_id), padded)
        self.commit_iv(message_id, ciphertext[-bs:])
        return padded, ciphertext

    def decrypt(self, message_id: int, ciphertext: bytes) -> tuple[bytes, bytes]:
        """Decrypt without committing; returns (plaintext, IV to commit if the message is good)."""
        cipher = self._require_keys()
        bs = cipher.block_size
        if not ciphertext or len(ciphertext) % bs:
            raise CryptoError(
                f"encrypted body of {len(ciphertext)} bytes is not a multiple of the {bs}-byte block size"
            )
        plaintext = cipher.decrypt(self.enc_key, self.iv_for(message_id), ciphertext)
        return plaintext, ciphertext[-bs:]

    def decrypt_phase1_notify_as_libreswan(self, message_id: int, ciphertext: bytes) -> tuple[bytes, bytes]:
        """Decrypt an Informational sent while phase 1 runs with the IV libreswan 4.10 uses
        then: the hash of the Message ID alone (its "IV at the end of phase 1" is still empty),
        where RFC 2409 Appendix B and charon chain from the current phase-1 IV."""
        cipher = self._require_keys()
        assert self.hash is not None
        iv = phase2_iv(self.hash, b"", message_id, cipher.block_size)
        if not ciphertext or len(ciphertext) % cipher.block_size:
            raise CryptoError(f"encrypted body of {len(ciphertext)} bytes is not a multiple of the block size")
        return cipher.decrypt(self.enc_key, iv, ciphertext), ciphertext[-cipher.block_size:]

    def finish_phase1(self) -> None:
        """Remember the last phase-1 CBC block: every phase-2 IV is derived from it."""
        self.last_phase1_block = self.iv
