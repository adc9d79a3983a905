"""Peer configuration files in TOML, laid out like strongSwan's ``swanctl.conf``.

A student who has read one reads the other::

    [peer]
    name = "left"
    address = "10.99.0.1"             # local IKE address
    psk = "a throw-away secret"       # or psk per connection, or [peer.secrets]

    [[peer.ike_policies]]             # ordered ISAKMP policies (crypto isakmp policy N)
    priority = 10
    proposal = "aes128-sha1-modp2048" # encr-hash-group, as in swanctl's proposals
    auth = "psk"
    # additional_ke = "mlkem768"      # IKEv2: post-quantum ML-KEM after the group (RFC 9370)

    [connections.site]
    remote_addrs = "10.99.0.2"
    # version = 2                     # IKEv2 (default 1)

    [connections.site.children.net1]
    local_ts = "10.1.0.0/24"
    remote_ts = "10.2.0.0/24"
    esp_proposals = ["aes128-sha1", "aes128-sha1-modp2048"]   # a trailing group is PFS

:func:`load_peer_config` turns such a file (or its text) into a
:class:`~ipseclab.config.PeerConfig`; every mistake is a :class:`ConfigError` that names
the key and the values it allows.  :func:`dump_peer_config` writes a configuration back
(the daemon's ``load`` command and the remote lab session exchange configurations this way).

Pre-shared keys are UTF-8 text, or ``0x``-prefixed hex or ``0s``-prefixed base64 as in
``swanctl.conf``'s secrets.  For RSA signatures ``cert``, ``key`` and ``ca`` are PEM file
paths (relative to the configuration file) or the PEM text itself.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from ipseclab.config import (
    ANY,
    USER_AUTH_METHODS,
    ChildConfig,
    Connection,
    Identity,
    PeerConfig,
    parse_ts,
)
from ipseclab.crypto.certs import LabIdentity
from ipseclab.errors import ConfigError
from ipseclab.ikev1.policy import (
    AUTH_METHODS,
    ESP_ENCRYPTIONS,
    ESP_INTEGRITIES,
    IKE_ENCRYPTIONS,
    IKE_HASHES,
    MODES,
    IsakmpPolicy,
    TransformSet,
)
from ipseclab.pools import AddressPool

__all__ = [
    "DH_GROUPS",
    "dump_peer_config",
    "load_peer_config",
    "parse_esp_proposal",
    "parse_ike_proposal",
]

#: strongSwan's names of the Diffie-Hellman groups (RFC 2409, 3526, 5903, 8031).
DH_GROUPS: dict[str, int] = {
    "modp768": 1,
    "modp1024": 2,
    "modp1536": 5,
    "modp2048": 14,
    "modp3072": 15,
    "modp4096": 16,
    "modp6144": 17,
    "modp8192": 18,
    "ecp256": 19,
    "ecp384": 20,
    "ecp521": 21,
    "curve25519": 31,
    "x25519": 31,
}
_GROUP_NAMES: dict[int, str] = {}
for _name, _number in DH_GROUPS.items():
    _GROUP_NAMES.setdefault(_number, _name)

#: strongSwan spells the SHA-2 family either way.
_HASH_ALIASES = {"sha2_256": "sha256", "sha2_384": "sha384", "sha2_512": "sha512"}

_PEER_KEYS = (
    "name",
    "address",
    "port",
    "natt_port",
    "identity",
    "psk",
    "secrets",
    "include_default_policy",
    "ike_policies",
    "cert",
    "key",
    "ca",
    "retransmit_timeout",
    "retransmit_tries",
    "dataplane",
    "half_open_timeout",
    "max_half_open",
    "max_half_open_per_address",
    "failed_sa_grace",
    "max_strangers_per_batch",
    "pools",
    "eap_users",
    "groups",
)
_POLICY_KEYS = ("priority", "proposal", "auth", "lifetime", "additional_ke")
#: IKEv2's additional key exchanges (RFC 9370 ADDKE1) by swanctl's names
_ADDKE = {"mlkem768": 36, "mlkem1024": 37}
_CONNECTION_KEYS = (
    "remote_addrs",
    "remote_port",
    "version",
    "aggressive",
    "remote_id",
    "psk",
    "encap",
    "dpd_delay",
    "dpd_timeout",
    "dpd_action",
    "start_action",
    "close_action",
    "children",
    "vips",
    "pools",
    "local_auth",
    "remote_auth",
    "eap_id",
    "xauth_id",
    "pull",
)
_CHILD_KEYS = ("local_ts", "remote_ts", "esp_proposals", "mode", "life_time", "life_bytes", "life_packets", "rekey_bytes", "rekey_packets")

_T = TypeVar("_T")
_MISSING: Any = object()


def _allowed(values: Iterable[str]) -> str:
    return ", ".join(sorted(values))


def _toml_type(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array", dict: "a table"}
    return names.get(type(value), type(value).__name__)


class _Table:
    """One TOML table being read: typed getters whose errors name ``where.key``."""

    def __init__(self, data: object, where: str, allowed: Iterable[str]) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{where} must be a table (got {_toml_type(data)})")
        self.data: dict[str, Any] = data
        self.where = where
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise ConfigError(f"{self.path(unknown[0])}: unknown key; allowed keys: {_allowed(allowed)}")

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def has(self, key: str) -> bool:
        return key in self.data

    def _get(self, key: str, kind: type | tuple[type, ...], what: str, default: Any) -> Any:
        if key not in self.data:
            if default is _MISSING:
                raise ConfigError(f"{self.path(key)}: missing; {what} is required")
            return default
        value = self.data[key]
        # TOML booleans are not integers here, even though Python's bool is an int
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise ConfigError(f"{self.path(key)}: must be {what} (got {_toml_type(value)} {value!r})")
        if not isinstance(value, kind):
            raise ConfigError(f"{self.path(key)}: must be {what} (got {_toml_type(value)} {value!r})")
        return value

    def string(self, key: str, default: Any = _MISSING, *, what: str = "a string") -> Any:
        value = self._get(key, str, what, default)
        if isinstance(value, str) and not value.strip():
            raise ConfigError(f"{self.path(key)}: must not be empty")
        return value

    def boolean(self, key: str, default: Any = _MISSING) -> Any:
        return self._get(key, bool, "true or false", default)

    def integer(self, key: str, default: Any = _MISSING, *, low: int = 0, high: int | None = None) -> Any:
        what = f"an integer from {low} to {high}" if high is not None else f"an integer of at least {low}"
        value = self._get(key, int, what, default)
        if isinstance(value, int) and (value < low or (high is not None and value > high)):
            raise ConfigError(f"{self.path(key)}: must be {what} (got {value})")
        return value

    def number(self, key: str, default: Any = _MISSING) -> Any:
        value = self._get(key, (int, float), "a positive number", default)
        if isinstance(value, int | float) and value <= 0:
            raise ConfigError(f"{self.path(key)}: must be a positive number (got {value})")
        return float(value) if value is not None else None

    def choice(self, key: str, choices: Iterable[str], default: Any = _MISSING) -> Any:
        choices = list(choices)
        value = self._get(key, str, f"one of {_allowed(choices)}", default)
        if value is not default and value not in choices:
            raise ConfigError(f"{self.path(key)}: {value!r} is not allowed; choose one of {_allowed(choices)}")
        return value

    def address(self, key: str, default: Any = _MISSING, *, allow_any: bool = False) -> Any:
        value = self._get(key, str, "an IP address", default)
        if value is default or (allow_any and value == ANY):
            return value
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            also = f" or {ANY} (any peer may connect; responder only)" if allow_any else ""
            raise ConfigError(f"{self.path(key)}: must be one IP address like 10.99.0.2{also} (got {value!r})") from None

    def table(self, key: str, allowed: Iterable[str] | None = None) -> dict[str, Any]:
        value = self._get(key, dict, "a table", {})
        if allowed is not None:
            _Table(value, self.path(key), allowed)
        return value


def _guard(where: str, make: Callable[[], _T]) -> _T:
    """Build a config object; its own ConfigError gets the key path in front."""
    try:
        return make()
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except ValueError as exc:  # e.g. ipaddress in a dataclass's __post_init__
        raise ConfigError(f"{where}: {exc}") from None


# --- proposals ----------------------------------------------------------------------


def _group(token: str, where: str) -> int:
    if token not in DH_GROUPS:
        raise ConfigError(f"{where}: unknown DH group {token!r}; choose one of {_allowed(DH_GROUPS)}")
    return DH_GROUPS[token]


def parse_ike_proposal(text: str, where: str = "proposal") -> tuple[str, str, int]:
    """``aes128-sha1-modp2048`` → ``("aes128", "sha1", 14)`` (encryption-hash-group)."""
    parts = text.strip().lower().split("-")
    if len(parts) != 3:
        raise ConfigError(
            f"{where}: {text!r} must be encryption-hash-group like aes128-sha1-modp2048 "
            f"(encryption: {_allowed(IKE_ENCRYPTIONS)}; hash: {_allowed(IKE_HASHES)}; "
            f"group: {_allowed(DH_GROUPS)})"
        )
    enc, hash_, group = parts
    hash_ = _HASH_ALIASES.get(hash_, hash_)
    if enc not in IKE_ENCRYPTIONS:
        raise ConfigError(f"{where}: unknown IKE encryption {enc!r}; choose one of {_allowed(IKE_ENCRYPTIONS)}")
    if hash_ not in IKE_HASHES:
        raise ConfigError(f"{where}: unknown IKE hash {hash_!r}; choose one of {_allowed(IKE_HASHES)}")
    return enc, hash_, _group(group, where)


def parse_esp_proposal(text: str, where: str = "esp_proposals") -> tuple[str, str | None, int | None]:
    """``aes128-sha1[-modp2048]`` or ``aes128gcm16[-modp2048]`` → (encryption, integrity, PFS group)."""
    parts = text.strip().lower().split("-")
    enc, rest = parts[0], parts[1:]
    if enc not in ESP_ENCRYPTIONS:
        raise ConfigError(f"{where}: unknown ESP encryption {enc!r} in {text!r}; choose one of {_allowed(ESP_ENCRYPTIONS)}")
    integrity: str | None = None
    if "gcm" not in enc:
        if not rest or rest[0] in DH_GROUPS:
            raise ConfigError(
                f"{where}: {text!r} needs an integrity algorithm after {enc} "
                f"(like {enc}-sha1); choose one of {_allowed(ESP_INTEGRITIES)}"
            )
        integrity = _HASH_ALIASES.get(rest[0], rest[0])
        if integrity not in ESP_INTEGRITIES:
            raise ConfigError(f"{where}: unknown ESP integrity {rest[0]!r} in {text!r}; choose one of {_allowed(ESP_INTEGRITIES)}")
        rest = rest[1:]
    elif rest and rest[0] in ESP_INTEGRITIES:
        raise ConfigError(f"{where}: {enc} is an AEAD cipher and takes no integrity algorithm (got {text!r})")
    if len(rest) > 1:
        raise ConfigError(f"{where}: {text!r} has too many parts; the form is encryption[-integrity][-group]")
    pfs = _group(rest[0], where) if rest else None
    return enc, integrity, pfs


# --- secrets and credentials ----------------------------------------------------------


def _secret(value: str, where: str) -> bytes:
    """A PSK as swanctl writes it: text, ``0x`` hex or ``0s`` base64."""
    try:
        if value.startswith("0x"):
            data = bytes.fromhex(value[2:])
        elif value.startswith("0s"):
            data = base64.b64decode(value[2:], validate=True)
        else:
            data = value.encode()
    except (ValueError, binascii.Error):
        raise ConfigError(f"{where}: {value[:2]}-prefixed secrets must be valid {'hex' if value.startswith('0x') else 'base64'}") from None
    if not data:
        raise ConfigError(f"{where}: the pre-shared key must not be empty")
    return data


def _pem(value: str, where: str, base_dir: Path) -> bytes:
    if value.lstrip().startswith("-----BEGIN"):
        return value.encode()
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read PEM file {str(path)!r}: {exc.strerror or exc}") from None


def _load_cert(data: bytes, where: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise ConfigError(f"{where}: not a PEM X.509 certificate") from None


def _load_credentials(
    peer: _Table, base_dir: Path, *, check_secrets: bool
) -> tuple[LabIdentity | None, x509.Certificate | None]:
    present = [k for k in ("cert", "key", "ca") if peer.has(k)]
    if not present:
        return None, None
    if not check_secrets and "key" not in present:  # a configuration shown without its private key
        ca = _load_cert(_pem(peer.string("ca"), peer.path("ca"), base_dir), peer.path("ca")) if peer.has("ca") else None
        return None, ca
    if len(present) != 3:
        missing = [f"peer.{k}" for k in ("cert", "key", "ca") if k not in present]
        raise ConfigError(f"{', '.join(missing)}: missing; RSA signatures need peer.cert, peer.key and peer.ca together")
    cert = _load_cert(_pem(peer.string("cert"), peer.path("cert"), base_dir), peer.path("cert"))
    ca = _load_cert(_pem(peer.string("ca"), peer.path("ca"), base_dir), peer.path("ca"))
    try:
        key = serialization.load_pem_private_key(_pem(peer.string("key"), peer.path("key"), base_dir), password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"{peer.path('key')}: not an unencrypted PEM private key") from None
    if not isinstance(key, RSAPrivateKey):
        raise ConfigError(f"{peer.path('key')}: must be an RSA private key (IKEv1 RSA signatures)")
    if key.public_key().public_numbers() != cert.public_key().public_numbers():  # type: ignore[union-attr]
        raise ConfigError(f"{peer.path('key')}: this key does not belong to the certificate in peer.cert")
    return LabIdentity(key, cert), ca


# --- loading --------------------------------------------------------------------------


def _policies(peer: _Table) -> list[IsakmpPolicy]:
    raw = peer._get("ike_policies", list, "an array of tables ([[peer.ike_policies]])", None)
    if raw is None:
        return [IsakmpPolicy(10)]
    if not raw:
        raise ConfigError("peer.ike_policies: needs at least one policy")
    out = []
    for i, item in enumerate(raw):
        t = _Table(item, f"peer.ike_policies[{i}]", _POLICY_KEYS)
        priority = t.integer("priority", (i + 1) * 10, low=1, high=65535)
        enc, hash_, group = parse_ike_proposal(t.string("proposal"), t.path("proposal"))
        auth = t.choice("auth", AUTH_METHODS, "psk")
        lifetime = t.integer("lifetime", 86400, low=1)
        addke = _ADDKE[t.choice("additional_ke", tuple(_ADDKE), None)] if t.has("additional_ke") else None
        out.append(_guard(t.where, lambda p=priority, e=enc, h=hash_, a=auth, g=group, lt=lifetime, k=addke: IsakmpPolicy(p, e, h, a, g, lt, addke=k)))
    priorities = [p.priority for p in out]
    dup = next((p for p in priorities if priorities.count(p) > 1), None)
    if dup is not None:
        raise ConfigError(f"peer.ike_policies: priority {dup} is used twice; every policy needs its own priority")
    return out


def _esp_list(child: _Table) -> list[str]:
    raw = child.data.get("esp_proposals", ["aes128-sha1"])
    if isinstance(raw, str):
        raw = [p.strip() for p in raw.split(",") if p.strip()]
    if not isinstance(raw, list) or not raw or not all(isinstance(p, str) for p in raw):
        raise ConfigError(
            f"{child.path('esp_proposals')}: must be a non-empty array of strings like [\"aes128-sha1\", \"aes128gcm16-modp2048\"]"
        )
    return raw


def _child(name: str, data: object, where: str) -> ChildConfig:
    t = _Table(data, where, _CHILD_KEYS)
    mode = t.choice("mode", MODES, "tunnel")
    lifetime = t.integer("life_time", 3600, low=1)
    # swanctl's names; IKEv1 negotiates bytes in kilobytes (RFC 2407 §4.5): rounded up
    life_bytes = t.integer("life_bytes", None, low=1)
    kilobytes = -(-life_bytes // 1024) if life_bytes else None
    limits = {
        "life_kilobytes": kilobytes,
        "life_packets": t.integer("life_packets", None, low=1),
        "rekey_bytes": t.integer("rekey_bytes", None, low=1),
        "rekey_packets": t.integer("rekey_packets", None, low=1),
    }
    sets = []
    for proposal in _esp_list(t):
        enc, integ, pfs = parse_esp_proposal(proposal, t.path("esp_proposals"))
        sets.append(_guard(where, lambda p=proposal, e=enc, i=integ, g=pfs: TransformSet(p, e, i, mode, g, lifetime, **limits)))
    local_ts, remote_ts = t.string("local_ts"), t.string("remote_ts")
    for key, value in (("local_ts", local_ts), ("remote_ts", remote_ts)):
        _guard(t.path(key), lambda v=value: parse_ts(v))
    return _guard(where, lambda: ChildConfig(name, local_ts, remote_ts, tuple(sets)))


def _connection(name: str, data: object, secrets: dict[str, Any]) -> Connection:
    where = f"connections.{name}"
    t = _Table(data, where, _CONNECTION_KEYS)
    version = t.integer("version", 1, low=0)
    if version not in (1, 2):
        raise ConfigError(f"{t.path('version')}: the IKE version is 1 or 2 (got {version})")
    remote = t.address("remote_addrs", allow_any=True)
    remote_id = t.string("remote_id", None)
    psk = t.string("psk", None)
    if psk is not None and name in secrets:
        raise ConfigError(f"{t.path('psk')}: also given as peer.secrets.{name}; keep one of them")
    if psk is None and name in secrets:
        psk = secrets[name]
    children_raw = t.table("children")
    children = tuple(_child(cname, cdata, f"{where}.children.{cname}") for cname, cdata in children_raw.items())
    kwargs: dict[str, Any] = {
        "remote_port": t.integer("remote_port", 500, low=1, high=65535),
        "mode": "aggressive" if t.boolean("aggressive", False) else "main",
        "remote_identity": Identity.parse(remote_id) if remote_id else None,
        "force_encapsulation": t.boolean("encap", False),
        "dpd_delay": t.number("dpd_delay", None) or 0.0,
        "dpd_timeout": t.number("dpd_timeout", 150.0),
        "dpd_action": t.choice("dpd_action", ("clear", "trap", "restart", "none"), "clear"),
        "start_action": t.string("start_action", "none"),
        "close_action": t.string("close_action", "none"),
        "psk": _secret(psk, t.path("psk") if t.has("psk") else f"peer.secrets.{name}") if psk is not None else None,
        "version": version,
        "vips": tuple(_strings(t, "vips")),
        "pools": tuple(_strings(t, "pools")),
        "local_auth": t.choice("local_auth", USER_AUTH_METHODS, ""),
        "remote_auth": t.choice("remote_auth", USER_AUTH_METHODS, ""),
        "eap_id": t.string("eap_id", None) or t.string("xauth_id", None) or "",
        "pull": t.boolean("pull", True),
    }
    return _guard(where, lambda: Connection(name, remote, children=children, **kwargs))


def _secrets_table(peer: _Table) -> dict[str, Any]:
    secrets = peer.table("secrets")
    for name, value in secrets.items():
        if not isinstance(value, str):
            raise ConfigError(f"peer.secrets.{name}: must be a string (the connection's pre-shared key)")
    return secrets


def parse_peer_config(
    text: str, *, base_dir: str | Path | None = None, check_secrets: bool = True
) -> PeerConfig:
    """Parse TOML text; relative PEM paths are taken from ``base_dir`` (default: the working
    directory).  ``check_secrets=False`` accepts a configuration whose secrets were left out
    (``dump_peer_config(..., secrets=False)``): no PSK, no private key."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}") from None
    top = _Table(doc, "", ("peer", "connections"))
    if not top.has("peer"):
        raise ConfigError("[peer]: missing; the file needs a [peer] table with name and address")
    peer = _Table(doc["peer"], "peer", _PEER_KEYS)
    name = peer.string("name")
    address = peer.address("address")
    port = peer.integer("port", 500, low=1, high=65535)
    natt_port = peer.integer("natt_port", 4500, low=1, high=65535)
    if port == natt_port:
        raise ConfigError(f"peer.natt_port: must differ from peer.port (both are {port})")
    identity = peer.string("identity", None)
    psk_text = peer.string("psk", None)
    policies = _policies(peer)
    secrets = _secrets_table(peer)
    conns_raw = top.table("connections")
    unknown = sorted(set(secrets) - set(conns_raw))
    if unknown:
        raise ConfigError(f"peer.secrets.{unknown[0]}: there is no connection named {unknown[0]!r}; connections: {_allowed(conns_raw) or 'none'}")
    connections = [_connection(cname, cdata, secrets) for cname, cdata in conns_raw.items()]
    credentials, ca = _load_credentials(
        peer, Path(base_dir) if base_dir is not None else Path.cwd(), check_secrets=check_secrets
    )
    psk = _secret(psk_text, peer.path("psk")) if psk_text is not None else None
    include_default = peer.boolean("include_default_policy", True)
    retransmit_timeout = peer.number("retransmit_timeout", 2.0)
    retransmit_tries = peer.integer("retransmit_tries", 5, low=1)
    bounds = {
        "half_open_timeout": peer.number("half_open_timeout", 30.0),
        "max_half_open": peer.integer("max_half_open", 1000, low=1),
        "max_half_open_per_address": peer.integer("max_half_open_per_address", 5, low=1),
        "failed_sa_grace": peer.number("failed_sa_grace", 10.0),
        "max_strangers_per_batch": peer.integer("max_strangers_per_batch", 4, low=1),
    }
    dataplane = peer.boolean("dataplane", False)
    pools = [_pool(pname, pdata) for pname, pdata in peer.table("pools").items()]
    groups: dict[str, tuple[str, ...]] = {}
    groups_table = _Table(peer.table("groups"), "peer.groups", peer.table("groups").keys())
    for group in groups_table.data:
        groups[group] = tuple(_strings(groups_table, group))
    eap_users: dict[str, bytes] = {}
    for user, password in peer.table("eap_users").items():
        if not isinstance(password, str):
            raise ConfigError(f"peer.eap_users.{user}: must be a string (the user's EAP password)")
        eap_users[user] = _secret(password, f"peer.eap_users.{user}")

    if check_secrets and any(p.auth == "psk" for p in policies) and psk is None:
        lacking = [c.name for c in connections if c.psk is None]
        if lacking or not connections:
            where = f"connections.{lacking[0]}.psk" if lacking else "peer.psk"
            raise ConfigError(
                f"{where}: missing; an ike_policy uses auth = \"psk\": set peer.psk, psk in every connection, "
                "or [peer.secrets] with one key per connection"
            )
    if check_secrets and any(p.auth == "rsa-sig" for p in policies) and credentials is None:
        raise ConfigError("peer.cert: missing; an ike_policy uses auth = \"rsa-sig\": set peer.cert, peer.key and peer.ca (PEM files)")

    return _guard(
        "peer",
        lambda: PeerConfig(
            name=name,
            address=address,
            port=port,
            natt_port=natt_port,
            identity=Identity.parse(identity) if identity else None,
            psk=psk,
            credentials=credentials,
            ca_cert=ca,
            isakmp_policies=policies,
            include_default_policy=include_default,
            connections=connections,
            retransmit_timeout=retransmit_timeout,
            retransmit_tries=retransmit_tries,
            **bounds,
            dataplane=dataplane,
            pools=pools,
            eap_users=eap_users,
            groups=groups,
        ),
    )


def _pool(name: str, data: object) -> AddressPool:
    """``[peer.pools.<name>]``: ``addrs`` (a subnet) and ``dns`` (addresses), as swanctl's ``pools``."""
    t = _Table(data, f"peer.pools.{name}", ("addrs", "dns", "users"))
    addrs = t.string("addrs")
    dns = _strings(t, "dns")
    users = _strings(t, "users")
    return _guard(t.where, lambda: AddressPool(name, addrs, tuple(dns), tuple(users)))


def _strings(t: _Table, key: str) -> list[str]:
    value = t.data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{t.path(key)}: must be an array of strings")
    return value


def load_peer_config(
    source: str | Path, *, base_dir: str | Path | None = None, check_secrets: bool = True
) -> PeerConfig:
    """A :class:`PeerConfig` from a TOML file (a :class:`Path`, or a string naming an existing
    file) or from TOML text.  Relative PEM paths are relative to the file's directory."""
    if isinstance(source, Path) or ("\n" not in source and "=" not in source and Path(source).is_file()):
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read configuration file {str(path)!r}: {exc}") from None
        return parse_peer_config(
            text, base_dir=base_dir if base_dir is not None else path.parent, check_secrets=check_secrets
        )
    return parse_peer_config(source, base_dir=base_dir, check_secrets=check_secrets)


# --- writing --------------------------------------------------------------------------


def _q(value: object) -> str:
    """A TOML value: JSON's string escapes are TOML basic-string escapes."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_q(v) for v in value) + "]"
    return json.dumps(str(value))


def _key(name: str) -> str:
    """A bare TOML key when the name allows it, else a quoted one."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)


def _secret_text(data: bytes) -> str:
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return "0x" + data.hex()
    return text if text.isprintable() and not text.startswith(("0x", "0s")) else "0x" + data.hex()


def _esp_text(ts: TransformSet) -> str:
    parts = [ts.encryption]
    if ts.integrity:
        parts.append(ts.integrity)
    if ts.pfs_group:
        parts.append(_GROUP_NAMES.get(ts.pfs_group) or _unknown_group(ts.pfs_group))
    return "-".join(parts)


def _unknown_group(group: int) -> str:
    raise ConfigError(f"DH group {group} has no strongSwan name; use one of {_allowed(DH_GROUPS)}")


def dump_peer_config(cfg: PeerConfig, *, secrets: bool = True) -> str:
    """The TOML text :func:`load_peer_config` reads back into an equal configuration
    (transform sets are named after their proposal).  ``secrets=False`` leaves out the
    pre-shared keys and the private key."""
    lines = ["[peer]", f"name = {_q(cfg.name)}", f"address = {_q(cfg.address)}"]
    if cfg.port != 500:
        lines.append(f"port = {cfg.port}")
    if cfg.natt_port != 4500:
        lines.append(f"natt_port = {cfg.natt_port}")
    if cfg.identity is not None and cfg.identity != Identity("address", cfg.address):
        if cfg.identity.kind == "dn":
            raise ConfigError("peer.identity: a DN identity comes from the certificate and is not written to TOML")
        lines.append(f"identity = {_q(str(cfg.identity))}")
    if secrets and cfg.psk is not None:
        lines.append(f"psk = {_q(_secret_text(cfg.psk))}")
    lines.append(f"include_default_policy = {_q(cfg.include_default_policy)}")
    if cfg.retransmit_timeout != 2.0:
        lines.append(f"retransmit_timeout = {_q(float(cfg.retransmit_timeout))}")
    if cfg.retransmit_tries != 5:
        lines.append(f"retransmit_tries = {cfg.retransmit_tries}")
    defaults = PeerConfig(name="x", address="127.0.0.1")
    for key in ("half_open_timeout", "max_half_open", "max_half_open_per_address", "failed_sa_grace", "max_strangers_per_batch"):
        if getattr(cfg, key) != getattr(defaults, key):
            lines.append(f"{key} = {getattr(cfg, key)}")
    if cfg.dataplane:
        lines.append("dataplane = true")
    if cfg.credentials is not None:
        lines.append(f"cert = {_q(cfg.credentials.cert_pem().decode())}")
        if secrets:
            lines.append(f"key = {_q(cfg.credentials.key_pem().decode())}")
    if cfg.ca_cert is not None:
        lines.append(f"ca = {_q(cfg.ca_cert.public_bytes(serialization.Encoding.PEM).decode())}")
    for p in cfg.isakmp_policies:
        group = _GROUP_NAMES.get(p.group) or _unknown_group(p.group)
        lines += [
            "",
            "[[peer.ike_policies]]",
            f"priority = {p.priority}",
            f"proposal = {_q(f'{p.encryption}-{p.hash}-{group}')}",
            f"auth = {_q(p.auth)}",
            f"lifetime = {p.lifetime}",
        ]
        if p.addke:
            lines.append(f"additional_ke = {_q({v: k for k, v in _ADDKE.items()}[p.addke])}")
    if secrets and cfg.eap_users:
        lines += ["", "[peer.eap_users]"] + [f"{_key(u)} = {_q(_secret_text(p))}" for u, p in cfg.eap_users.items()]
    if cfg.groups:
        lines += ["", "[peer.groups]"] + [f"{_key(g)} = {_q(list(users))}" for g, users in cfg.groups.items()]
    for pool in cfg.pools:
        lines += ["", f"[peer.pools.{_key(pool.name)}]", f"addrs = {_q(pool.addrs)}"]
        if pool.dns:
            lines.append(f"dns = {_q(list(pool.dns))}")
        if pool.users:
            lines.append(f"users = {_q(list(pool.users))}")
    for c in cfg.connections:
        lines += ["", f"[connections.{_key(c.name)}]", f"remote_addrs = {_q(c.remote_address)}"]
        if c.remote_port != 500:
            lines.append(f"remote_port = {c.remote_port}")
        lines += [f"version = {c.version}", f"aggressive = {_q(c.mode == 'aggressive')}"]
        if c.remote_identity is not None:
            lines.append(f"remote_id = {_q(str(c.remote_identity))}")
        if secrets and c.psk is not None:
            lines.append(f"psk = {_q(_secret_text(c.psk))}")
        lines.append(f"encap = {_q(c.force_encapsulation)}")
        for key in ("start_action", "close_action"):
            if getattr(c, key) != "none":
                lines.append(f"{key} = {_q(getattr(c, key))}")
        if c.dpd_delay:
            lines += [f"dpd_delay = {c.dpd_delay}", f"dpd_timeout = {c.dpd_timeout}", f"dpd_action = {_q(c.dpd_action)}"]
        for key in ("vips", "pools"):
            if getattr(c, key):
                lines.append(f"{key} = {_q(list(getattr(c, key)))}")
        for key in ("local_auth", "remote_auth", "eap_id"):
            if getattr(c, key):
                lines.append(f"{key} = {_q(getattr(c, key))}")
        if not c.pull:
            lines.append("pull = false")
        for ch in c.children:
            first = ch.transform_sets[0]
            limits = ("mode", "lifetime", "life_kilobytes", "life_packets", "rekey_bytes", "rekey_packets")
            if any(getattr(ts, a) != getattr(first, a) for ts in ch.transform_sets for a in limits):
                raise ConfigError(
                    f"connections.{c.name}.children.{ch.name}: all ESP proposals of a child share one mode, life_time and byte/packet limits"
                )
            lines += [
                "",
                f"[connections.{_key(c.name)}.children.{_key(ch.name)}]",
                f"local_ts = {_q(ch.local_ts)}",
                f"remote_ts = {_q(ch.remote_ts)}",
                f"esp_proposals = {_q([_esp_text(ts) for ts in ch.transform_sets])}",
                f"mode = {_q(first.mode)}",
                f"life_time = {first.lifetime}",
            ]
            if first.life_kilobytes:
                lines.append(f"life_bytes = {first.life_kilobytes * 1024}")
            for key in ("life_packets", "rekey_bytes", "rekey_packets"):
                if getattr(first, key):
                    lines.append(f"{key} = {getattr(first, key)}")
    return "\n".join(lines) + "\n"
