"""ISAKMP policies, IPsec transform sets and proposal matching with explanations.

Matching follows RFC 2409 §5 / RFC 2408 §4.2: the responder walks the offered
transforms in the initiator's order and accepts the first one that matches one of
its local policies (tried in priority order, the built-in default policy with
priority 65535 last).  Every comparison is recorded so the trace can say, transform
by transform, which attribute differed from which policy — in the words a student
knows from common gateways' debug output ("Hash algorithm offered does not match
policy!").

Lifetimes may differ between peers: a responder whose own lifetime is shorter
accepts the offer and uses its shorter lifetime (and says so); for phase 2 it also
tells the initiator with a RESPONDER-LIFETIME notification (RFC 2407 §4.6.3.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ipseclab.errors import ConfigError
from ipseclab.trace import AttributeCheck, TransformCheck
from ipseclab.wire.v1.constants import (
    AuthMethod,
    EncapsulationMode,
    EspTransformId,
    IkeAttribute,
    IkeEncryption,
    IkeHash,
    IkeTransformId,
    IpsecAttribute,
    IpsecAuthAlgorithm,
    LifeType,
)
from ipseclab.wire.v1.isakmp import Attribute, Transform

# --- names a student types, mapped to IANA numbers ------------------------------

IKE_ENCRYPTIONS: dict[str, tuple[int, int | None]] = {
    "aes128": (IkeEncryption.AES_CBC, 128),
    "aes192": (IkeEncryption.AES_CBC, 192),
    "aes256": (IkeEncryption.AES_CBC, 256),
    "3des": (IkeEncryption.TRIPLE_DES_CBC, None),
    "des": (IkeEncryption.DES_CBC, None),
}
IKE_HASHES: dict[str, int] = {
    "md5": IkeHash.MD5,
    "sha1": IkeHash.SHA1,
    "sha256": IkeHash.SHA2_256,
    "sha384": IkeHash.SHA2_384,
    "sha512": IkeHash.SHA2_512,
}
AUTH_METHODS: dict[str, int] = {"psk": AuthMethod.PSK, "rsa-sig": AuthMethod.RSA_SIG}
ESP_ENCRYPTIONS: dict[str, tuple[int, int | None]] = {
    "aes128": (EspTransformId.AES_CBC, 128),
    "aes192": (EspTransformId.AES_CBC, 192),
    "aes256": (EspTransformId.AES_CBC, 256),
    "3des": (EspTransformId.TRIPLE_DES, None),
    "aes128gcm16": (EspTransformId.AES_GCM_16, 128),
    "aes256gcm16": (EspTransformId.AES_GCM_16, 256),
    "null": (EspTransformId.NULL, None),
}
ESP_INTEGRITIES: dict[str, int] = {
    "md5": IpsecAuthAlgorithm.HMAC_MD5,
    "sha1": IpsecAuthAlgorithm.HMAC_SHA1,
    "sha256": IpsecAuthAlgorithm.HMAC_SHA2_256,
    "sha384": IpsecAuthAlgorithm.HMAC_SHA2_384,
    "sha512": IpsecAuthAlgorithm.HMAC_SHA2_512,
}
MODES: dict[str, int] = {"tunnel": EncapsulationMode.TUNNEL, "transport": EncapsulationMode.TRANSPORT}

_ENC_NAMES = {
    (IkeEncryption.AES_CBC, 128): "AES-CBC-128",
    (IkeEncryption.AES_CBC, 192): "AES-CBC-192",
    (IkeEncryption.AES_CBC, 256): "AES-CBC-256",
    (IkeEncryption.TRIPLE_DES_CBC, None): "3DES-CBC",
    (IkeEncryption.DES_CBC, None): "DES-CBC",
}
_HASH_NAMES = {1: "MD5", 2: "SHA1", 3: "Tiger", 4: "SHA2-256", 5: "SHA2-384", 6: "SHA2-512"}
_AUTH_NAMES = {1: "pre-shared key", 3: "RSA signature", 2: "DSS signature", 4: "RSA encryption",
               65001: "XAUTHInitPreShared (pre-shared key + XAUTH)", 65002: "XAUTHRespPreShared",
               65005: "XAUTHInitRSA (RSA signature + XAUTH)", 65006: "XAUTHRespRSA"}
#: draft-beaulieu-ike-xauth §3: the authentication method an initiator that will be
#: authenticated by XAUTH proposes instead of the base one
XAUTH_INIT = {AuthMethod.PSK: AuthMethod.XAUTH_INIT_PSK, AuthMethod.RSA_SIG: AuthMethod.XAUTH_INIT_RSA}
_ESP_NAMES = {
    EspTransformId.AES_CBC: "AES-CBC",
    EspTransformId.TRIPLE_DES: "3DES",
    EspTransformId.AES_GCM_16: "AES-GCM-16",
    EspTransformId.NULL: "NULL",
    EspTransformId.DES: "DES",
}
_INTEG_NAMES = {1: "HMAC-MD5", 2: "HMAC-SHA1", 5: "HMAC-SHA2-256", 6: "HMAC-SHA2-384", 7: "HMAC-SHA2-512"}
_MODE_NAMES = {1: "tunnel", 2: "transport", 3: "UDP tunnel", 4: "UDP transport", 61443: "UDP tunnel (draft)", 61444: "UDP transport (draft)"}


def encryption_name(enc_id: int, key_bits: int | None) -> str:
    return _ENC_NAMES.get((enc_id, key_bits)) or f"encryption {enc_id}" + (f"/{key_bits}" if key_bits else "")


def hash_name(hash_id: int | None) -> str:
    return _HASH_NAMES.get(hash_id or 0, f"hash {hash_id}")


def auth_name(auth_id: int | None) -> str:
    return _AUTH_NAMES.get(auth_id or 0, f"auth method {auth_id}")


def group_name(group: int | None) -> str:
    return "none" if not group else f"DH group {group}"


def esp_name(esp_id: int, key_bits: int | None) -> str:
    base = _ESP_NAMES.get(esp_id, f"ESP transform {esp_id}")
    return f"{base}-{key_bits}" if key_bits else base


def integrity_name(auth_alg: int | None) -> str:
    return "none" if not auth_alg else _INTEG_NAMES.get(auth_alg, f"auth algorithm {auth_alg}")


def mode_name(mode: int | None) -> str:
    return _MODE_NAMES.get(mode or 0, f"mode {mode}")


def _life_attributes(life_type: int, seconds: int) -> list[Attribute]:
    return [Attribute(life_type, LifeType.SECONDS), Attribute(life_type + 1, seconds, tlv=seconds > 0xFFFF)]


# --- phase 1 ----------------------------------------------------------------------


@dataclass(frozen=True)
class IsakmpPolicy:
    """One ordered ISAKMP (phase 1) policy: ``crypto isakmp policy <priority>``."""

    priority: int
    encryption: str = "aes128"
    hash: str = "sha1"
    auth: str = "psk"
    group: int = 14
    lifetime: int = 86400
    #: IKEv2 only: an additional key exchange after the group (RFC 9370 ADDKE1), an IANA method
    #: number — 36 = ML-KEM-768, 37 = ML-KEM-1024 — run in IKE_INTERMEDIATE (RFC 9242)
    addke: int | None = None

    def __post_init__(self) -> None:
        if self.addke is not None and self.addke not in (36, 37):
            raise ConfigError(f"additional key exchange {self.addke}: choose 36 (ML-KEM-768) or 37 (ML-KEM-1024)")
        if self.encryption not in IKE_ENCRYPTIONS:
            raise ConfigError(f"unknown encryption {self.encryption!r}; choose from {sorted(IKE_ENCRYPTIONS)}")
        if self.hash not in IKE_HASHES:
            raise ConfigError(f"unknown hash {self.hash!r}; choose from {sorted(IKE_HASHES)}")
        if self.auth not in AUTH_METHODS:
            raise ConfigError(f"unknown authentication {self.auth!r}; choose from {sorted(AUTH_METHODS)}")
        if self.lifetime <= 0:
            raise ConfigError("lifetime must be positive")

    @property
    def encryption_id(self) -> int:
        return IKE_ENCRYPTIONS[self.encryption][0]

    @property
    def key_bits(self) -> int | None:
        return IKE_ENCRYPTIONS[self.encryption][1]

    @property
    def hash_id(self) -> int:
        return IKE_HASHES[self.hash]

    @property
    def auth_id(self) -> int:
        return AUTH_METHODS[self.auth]

    @property
    def label(self) -> str:
        return "default policy 65535" if self.priority == 65535 else f"policy {self.priority}"

    def describe(self) -> str:
        return (
            f"{self.label}: {encryption_name(self.encryption_id, self.key_bits)}, "
            f"{hash_name(self.hash_id)}, {auth_name(self.auth_id)}, {group_name(self.group)}, "
            f"lifetime {self.lifetime} s"
        )

    def to_transform(self, number: int, *, xauth: bool = False) -> Transform:
        """The ISAKMP transform (RFC 2409 App. A attributes) offering this policy (``xauth``:
        with the XAUTHInit variant of its authentication method)."""
        attrs = [Attribute(IkeAttribute.ENCRYPTION_ALGORITHM, self.encryption_id)]
        if self.key_bits:
            attrs.append(Attribute(IkeAttribute.KEY_LENGTH, self.key_bits))
        attrs += [
            Attribute(IkeAttribute.HASH_ALGORITHM, self.hash_id),
            Attribute(IkeAttribute.AUTHENTICATION_METHOD, XAUTH_INIT.get(self.auth_id, self.auth_id) if xauth else self.auth_id),
            Attribute(IkeAttribute.GROUP_DESCRIPTION, self.group),
        ]
        attrs += _life_attributes(IkeAttribute.LIFE_TYPE, self.lifetime)
        return Transform(number, IkeTransformId.KEY_IKE, attrs)


#: The built-in policy a classic gateway tries last (DES, SHA1, RSA signature, group 1).
DEFAULT_ISAKMP_POLICY = IsakmpPolicy(65535, "des", "sha1", "rsa-sig", 1, 86400)

_KNOWN_IKE_ATTRS = {
    IkeAttribute.ENCRYPTION_ALGORITHM,
    IkeAttribute.HASH_ALGORITHM,
    IkeAttribute.AUTHENTICATION_METHOD,
    IkeAttribute.GROUP_DESCRIPTION,
    IkeAttribute.LIFE_TYPE,
    IkeAttribute.LIFE_DURATION,
    IkeAttribute.KEY_LENGTH,
}


def _volume(kilobytes: int | None, packets: int | None) -> str:
    parts = ([f"{kilobytes} KB"] if kilobytes else []) + ([f"{packets} packets"] if packets else [])
    return (" / " + " / ".join(parts)) if parts else ""


def transform_kilobytes(transform: Transform, life_type_attr: int) -> int | None:
    """Kilobytes from a Life Type 2 (kilobytes) / Life Duration pair (RFC 2407 §4.5), if any."""
    current_type: int | None = None
    for attr in transform.attributes:
        if attr.type == life_type_attr:
            current_type = attr.int_value
        elif attr.type == life_type_attr + 1 and current_type == LifeType.KILOBYTES and attr.int_value:
            return attr.int_value
    return None


def transform_lifetime(transform: Transform, life_type_attr: int) -> tuple[int | None, list[str]]:
    """Seconds from the Life Type/Life Duration pairs (RFC 2409 App. A); kilobyte lives noted."""
    seconds: int | None = None
    notes: list[str] = []
    current_type: int | None = None
    for attr in transform.attributes:
        if attr.type == life_type_attr:
            current_type = attr.int_value
        elif attr.type == life_type_attr + 1:
            if current_type == LifeType.SECONDS:
                if attr.int_value == 0:
                    # charon sends 0 for "no limit" (rekey_time = reauth_time = 0); never a 0 s SA
                    notes.append("a lifetime of 0 s is offered, i.e. no limit: treated as no lifetime offered")
                else:
                    seconds = attr.int_value
            elif current_type == LifeType.KILOBYTES:
                notes.append(f"a lifetime of {attr.int_value} kilobytes is offered (kept as information)")
    return seconds, notes


@dataclass(frozen=True)
class Phase1Choice:
    """The accepted phase 1 transform, with the lifetime both sides will use."""

    transform: Transform
    policy: IsakmpPolicy
    encryption_id: int
    key_bits: int | None
    hash_id: int
    auth_id: int
    group: int
    lifetime: int
    offered_lifetime: int | None
    #: the initiator is also authenticated by XAUTH after phase 1 (XAUTHInit* agreed);
    #: ``auth_id`` is then the base method phase 1 itself uses
    xauth: bool = False

    @property
    def auth_label(self) -> str:
        return auth_name(XAUTH_INIT.get(self.auth_id, self.auth_id) if self.xauth else self.auth_id)

    def describe(self) -> str:
        return (
            f"{encryption_name(self.encryption_id, self.key_bits)}, {hash_name(self.hash_id)}, "
            f"{self.auth_label}, {group_name(self.group)}, lifetime {self.lifetime} s"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "transform": self.transform.number,
            "policy": self.policy.priority,
            "encryption": encryption_name(self.encryption_id, self.key_bits),
            "hash": hash_name(self.hash_id),
            "auth": self.auth_label,
            "group": self.group,
            "lifetime": self.lifetime,
        }


@dataclass
class MatchResult:
    """Outcome of matching a proposal: the choice (or None) and the explanation."""

    choice: object | None
    checks: list[TransformCheck] = field(default_factory=list)
    explanation: list[str] = field(default_factory=list)


def _check(attribute: str, offered: str, policy: str, message: str) -> AttributeCheck:
    same = offered == policy
    return AttributeCheck(attribute, offered, policy, same, "" if same else message)


def check_phase1_transform(t: Transform, policy: IsakmpPolicy, *, xauth: bool = False) -> tuple[TransformCheck, Phase1Choice | None]:
    """Compare one offered ISAKMP transform with one local policy (``xauth``: the connection
    wants the initiator authenticated by XAUTH too, so the XAUTHInit variant is expected)."""
    want_auth = XAUTH_INIT.get(policy.auth_id, policy.auth_id) if xauth else policy.auth_id
    enc = t.get(IkeAttribute.ENCRYPTION_ALGORITHM)
    key_bits = t.get(IkeAttribute.KEY_LENGTH)
    hash_id = t.get(IkeAttribute.HASH_ALGORITHM)
    auth = t.get(IkeAttribute.AUTHENTICATION_METHOD)
    group = t.get(IkeAttribute.GROUP_DESCRIPTION)
    checks = [
        _check(
            "encryption",
            encryption_name(enc or 0, key_bits),
            encryption_name(policy.encryption_id, policy.key_bits),
            "Encryption algorithm offered does not match policy!"
            if enc != policy.encryption_id
            else "Proposed key length does not match policy!",
        ),
        _check("hash", hash_name(hash_id), hash_name(policy.hash_id), "Hash algorithm offered does not match policy!"),
        _check(
            "authentication",
            auth_name(auth),
            auth_name(want_auth),
            "Authentication method offered does not match policy!",
        ),
        _check("group", group_name(group), group_name(policy.group), "Diffie-Hellman group offered does not match policy!"),
    ]
    unknown = sorted({a.type for a in t.attributes} - _KNOWN_IKE_ATTRS)
    if unknown:
        checks.append(
            AttributeCheck("attributes", f"types {unknown}", "none", False, f"Attribute types {unknown} are not supported!")
        )
    if t.transform_id != IkeTransformId.KEY_IKE:
        checks.append(AttributeCheck("transform id", str(t.transform_id), "KEY_IKE (1)", False, "Transform ID is not KEY_IKE!"))
    offered_life, notes = transform_lifetime(t, IkeAttribute.LIFE_TYPE)
    accepted = all(c.match for c in checks)
    lifetime = policy.lifetime
    if offered_life is None:
        notes.append(f"no lifetime offered: using the policy's {policy.lifetime} s")
    elif offered_life > policy.lifetime:
        notes.append(
            f"lifetime offered {offered_life} s is longer than {policy.label}'s {policy.lifetime} s: "
            f"accepted, and the shorter {policy.lifetime} s is used"
        )
    else:
        lifetime = offered_life
        if offered_life < policy.lifetime:
            notes.append(f"lifetime offered {offered_life} s is shorter than {policy.label}'s {policy.lifetime} s: using {offered_life} s")
    check = TransformCheck(t.number, policy.label, checks, accepted, notes if accepted else [])
    if not accepted:
        return check, None
    return check, Phase1Choice(t, policy, enc or 0, key_bits, hash_id or 0, policy.auth_id, group or 0, lifetime, offered_life,
                               xauth=xauth)


def match_phase1(
    offered: Sequence[Transform],
    policies: Sequence[IsakmpPolicy],
    *,
    include_default: bool = True,
    supported: callable | None = None,
    xauth: bool = False,
) -> MatchResult:
    """Pick the first offered transform matching a local policy (RFC 2408 §4.2).

    ``supported(choice)`` may veto a match the crypto layer cannot carry out
    (for instance DES in the default policy); the veto is explained too.
    """
    ordered = sorted(policies, key=lambda p: p.priority)
    if include_default and all(p.priority != 65535 for p in ordered):
        ordered.append(DEFAULT_ISAKMP_POLICY)
    result = MatchResult(None)
    for t in offered:
        for policy in ordered:
            check, choice = check_phase1_transform(t, policy, xauth=xauth)
            result.checks.append(check)
            prefix = f"Checking ISAKMP transform {t.number} against {policy.label}"
            if choice is None:
                reasons = [f"{c.message} (offered {c.offered}, {policy.label} has {c.policy})" for c in check.checks if not c.match]
                result.explanation.append(f"{prefix}: " + " ".join(reasons))
                continue
            veto = supported(choice) if supported else None
            if veto:
                check.accepted = False
                check.checks.append(AttributeCheck("implementation", choice.describe(), "supported", False, veto))
                result.explanation.append(f"{prefix}: attributes match but {veto}")
                continue
            result.explanation.append(f"{prefix}: all attributes match — accepted ({choice.describe()})")
            result.explanation.extend(f"  {n}" for n in check.notes)
            result.choice = choice
            return result
    result.explanation.append(
        "No offered transform matches any local ISAKMP policy: the responder answers NO_PROPOSAL_CHOSEN. "
        "Make one policy on each side agree on encryption, hash, authentication and DH group."
    )
    return result


# --- phase 2 ----------------------------------------------------------------------


@dataclass(frozen=True)
class TransformSet:
    """An IPsec transform set (``crypto ipsec transform-set``) plus PFS and lifetime."""

    name: str = "ts"
    encryption: str = "aes128"
    integrity: str | None = "sha1"
    mode: str = "tunnel"
    pfs_group: int | None = None
    lifetime: int = 3600
    #: hard byte limit in kilobytes (IKEv1 SA Life Type 2, RFC 2407 §4.5); ``None`` = none
    life_kilobytes: int | None = None
    #: hard packet limit, a local data-plane limit only (IKEv1 has no such attribute)
    life_packets: int | None = None
    #: soft limits (start the rekey) in bytes and packets, local only; default 90 % of the hard ones
    rekey_bytes: int | None = None
    rekey_packets: int | None = None

    def __post_init__(self) -> None:
        limits = {
            "life_kilobytes": self.life_kilobytes,
            "life_packets": self.life_packets,
            "rekey_bytes": self.rekey_bytes,
            "rekey_packets": self.rekey_packets,
        }
        for what, value in limits.items():
            if value is not None and value <= 0:
                raise ConfigError(f"{what} must be positive")
        if self.rekey_bytes and self.life_kilobytes and self.rekey_bytes >= self.life_kilobytes * 1024:
            raise ConfigError("rekey_bytes must be below the byte lifetime (life_kilobytes × 1024)")
        if self.rekey_packets and self.life_packets and self.rekey_packets >= self.life_packets:
            raise ConfigError("rekey_packets must be below life_packets")
        if self.encryption not in ESP_ENCRYPTIONS:
            raise ConfigError(f"unknown ESP encryption {self.encryption!r}; choose from {sorted(ESP_ENCRYPTIONS)}")
        if self.integrity is not None and self.integrity not in ESP_INTEGRITIES:
            raise ConfigError(f"unknown ESP integrity {self.integrity!r}; choose from {sorted(ESP_INTEGRITIES)}")
        if self.is_aead and self.integrity is not None:
            raise ConfigError(f"{self.encryption} is an AEAD cipher: set integrity to None")
        if not self.is_aead and self.integrity is None and self.encryption == "null":
            raise ConfigError("NULL encryption needs an integrity algorithm")
        if self.mode not in MODES:
            raise ConfigError(f"unknown mode {self.mode!r}; choose tunnel or transport")

    @property
    def is_aead(self) -> bool:
        return "gcm" in self.encryption

    @property
    def esp_id(self) -> int:
        return ESP_ENCRYPTIONS[self.encryption][0]

    @property
    def key_bits(self) -> int | None:
        return ESP_ENCRYPTIONS[self.encryption][1]

    @property
    def auth_alg(self) -> int | None:
        return ESP_INTEGRITIES[self.integrity] if self.integrity else None

    @property
    def mode_id(self) -> int:
        return MODES[self.mode]

    def describe(self) -> str:
        pfs = f"PFS {group_name(self.pfs_group)}" if self.pfs_group else "no PFS"
        return (
            f"transform set {self.name}: ESP {esp_name(self.esp_id, self.key_bits)}, "
            f"{integrity_name(self.auth_alg)}, {self.mode}, {pfs}, lifetime {self.lifetime} s{_volume(self.life_kilobytes, self.life_packets)}"
        )

    def to_transform(self, number: int, *, mode_id: int | None = None) -> Transform:
        """The ESP transform (RFC 2407 §4.5 attributes) offering this set."""
        attrs = _life_attributes(IpsecAttribute.SA_LIFE_TYPE, self.lifetime)
        if self.life_kilobytes:
            # a second Life Type/Life Duration pair: kilobytes (RFC 2407 §4.5)
            attrs += [
                Attribute(IpsecAttribute.SA_LIFE_TYPE, LifeType.KILOBYTES),
                Attribute(IpsecAttribute.SA_LIFE_DURATION, self.life_kilobytes, tlv=self.life_kilobytes > 0xFFFF),
            ]
        if self.pfs_group:
            attrs.append(Attribute(IpsecAttribute.GROUP_DESCRIPTION, self.pfs_group))
        attrs.append(Attribute(IpsecAttribute.ENCAPSULATION_MODE, mode_id or self.mode_id))
        if self.auth_alg:
            attrs.append(Attribute(IpsecAttribute.AUTHENTICATION_ALGORITHM, self.auth_alg))
        if self.key_bits:
            attrs.append(Attribute(IpsecAttribute.KEY_LENGTH, self.key_bits))
        return Transform(number, self.esp_id, attrs)


#: UDP-encapsulated modes (RFC 3947 §5.1 and the draft values) and their plain twins.
UDP_MODES = {
    EncapsulationMode.UDP_TUNNEL: EncapsulationMode.TUNNEL,
    EncapsulationMode.UDP_TRANSPORT: EncapsulationMode.TRANSPORT,
    EncapsulationMode.UDP_TUNNEL_DRAFT: EncapsulationMode.TUNNEL,
    EncapsulationMode.UDP_TRANSPORT_DRAFT: EncapsulationMode.TRANSPORT,
}


@dataclass(frozen=True)
class Phase2Choice:
    """The accepted ESP transform and the lifetime the SAs get."""

    transform: Transform
    transform_set: TransformSet
    esp_id: int
    key_bits: int | None
    auth_alg: int | None
    mode: int
    pfs_group: int | None
    lifetime: int
    offered_lifetime: int | None
    #: the byte limit both sides use (the shorter of offer and transform set), RFC 2407 §4.5
    life_kilobytes: int | None = None
    offered_kilobytes: int | None = None

    @property
    def udp_encapsulated(self) -> bool:
        return self.mode in UDP_MODES

    def describe(self) -> str:
        pfs = f"PFS {group_name(self.pfs_group)}" if self.pfs_group else "no PFS"
        return (
            f"ESP {esp_name(self.esp_id, self.key_bits)}, {integrity_name(self.auth_alg)}, "
            f"{mode_name(self.mode)}, {pfs}, lifetime {self.lifetime} s{_volume(self.life_kilobytes, self.transform_set.life_packets)}"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "transform": self.transform.number,
            "transform_set": self.transform_set.name,
            "encryption": esp_name(self.esp_id, self.key_bits),
            "integrity": integrity_name(self.auth_alg),
            "mode": mode_name(self.mode),
            "pfs_group": self.pfs_group,
            "lifetime": self.lifetime,
            "life_kilobytes": self.life_kilobytes,
        }


_KNOWN_IPSEC_ATTRS = {
    IpsecAttribute.SA_LIFE_TYPE,
    IpsecAttribute.SA_LIFE_DURATION,
    IpsecAttribute.GROUP_DESCRIPTION,
    IpsecAttribute.ENCAPSULATION_MODE,
    IpsecAttribute.AUTHENTICATION_ALGORITHM,
    IpsecAttribute.KEY_LENGTH,
}


def check_phase2_transform(t: Transform, ts: TransformSet) -> tuple[TransformCheck, Phase2Choice | None]:
    """Compare one offered ESP transform with one local transform set."""
    key_bits = t.get(IpsecAttribute.KEY_LENGTH)
    auth = t.get(IpsecAttribute.AUTHENTICATION_ALGORITHM)
    mode = t.get(IpsecAttribute.ENCAPSULATION_MODE) or EncapsulationMode.TUNNEL
    group = t.get(IpsecAttribute.GROUP_DESCRIPTION)
    plain_mode = UDP_MODES.get(mode, mode)
    checks = [
        _check(
            "encryption",
            esp_name(t.transform_id, key_bits),
            esp_name(ts.esp_id, ts.key_bits),
            "ESP encryption offered does not match the transform set!"
            if t.transform_id != ts.esp_id
            else "Proposed key length does not match the transform set!",
        ),
        _check("integrity", integrity_name(auth), integrity_name(ts.auth_alg), "ESP integrity algorithm offered does not match the transform set!"),
        _check("mode", mode_name(plain_mode), mode_name(ts.mode_id), "Encapsulation mode offered does not match the transform set!"),
        _check("pfs", group_name(group), group_name(ts.pfs_group), "PFS group offered does not match the transform set!"),
    ]
    unknown = sorted({a.type for a in t.attributes} - _KNOWN_IPSEC_ATTRS)
    if unknown:
        checks.append(AttributeCheck("attributes", f"types {unknown}", "none", False, f"Attribute types {unknown} are not supported!"))
    offered_life, notes = transform_lifetime(t, IpsecAttribute.SA_LIFE_TYPE)
    accepted = all(c.match for c in checks)
    lifetime = ts.lifetime
    if offered_life is None:
        notes.append(f"no lifetime offered: using the default 28800 s or the set's {ts.lifetime} s, whichever is shorter")
        lifetime = min(28800, ts.lifetime)
    elif offered_life > ts.lifetime:
        notes.append(
            f"lifetime offered {offered_life} s is longer than transform set {ts.name}'s {ts.lifetime} s: "
            f"accepted with the shorter {ts.lifetime} s (RESPONDER-LIFETIME notify sent)"
        )
    else:
        lifetime = offered_life
    offered_kb = transform_kilobytes(t, IpsecAttribute.SA_LIFE_TYPE)
    kilobytes = min((k for k in (offered_kb, ts.life_kilobytes) if k), default=None)
    if offered_kb and ts.life_kilobytes and offered_kb > ts.life_kilobytes:
        notes.append(
            f"lifetime offered {offered_kb} kilobytes is longer than transform set {ts.name}'s {ts.life_kilobytes} kilobytes: "
            f"accepted with the shorter {ts.life_kilobytes} kilobytes (RESPONDER-LIFETIME notify sent)"
        )
    check = TransformCheck(t.number, f"transform set {ts.name}", checks, accepted, notes if accepted else [])
    if not accepted:
        return check, None
    return check, Phase2Choice(t, ts, t.transform_id, key_bits, auth, mode, group, lifetime, offered_life, kilobytes, offered_kb)


def match_phase2(offered: Sequence[Transform], transform_sets: Sequence[TransformSet]) -> MatchResult:
    """Pick the first offered ESP transform matching a local transform set."""
    result = MatchResult(None)
    for t in offered:
        for ts in transform_sets:
            check, choice = check_phase2_transform(t, ts)
            result.checks.append(check)
            prefix = f"Checking ESP transform {t.number} against transform set {ts.name}"
            if choice is None:
                reasons = [f"{c.message} (offered {c.offered}, {ts.name} has {c.policy})" for c in check.checks if not c.match]
                result.explanation.append(f"{prefix}: " + " ".join(reasons))
                continue
            result.explanation.append(f"{prefix}: all attributes match — accepted ({choice.describe()})")
            result.explanation.extend(f"  {n}" for n in check.notes)
            result.choice = choice
            return result
    result.explanation.append(
        "No offered ESP transform matches a local transform set: the responder answers NO_PROPOSAL_CHOSEN. "
        "Make the transform sets agree on encryption, integrity, mode and PFS group."
    )
    return result
