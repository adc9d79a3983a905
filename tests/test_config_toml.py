"""TOML peer configurations (swanctl.conf layout): valid files, every error, round trips.

Every mistake must be a ConfigError whose message names the key and, where there is a
choice, the values allowed — never a traceback.  The shipped examples
``containers/peer-left.toml`` / ``peer-right.toml`` must load, survive dump → load
unchanged and negotiate with each other.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ipseclab.config import Identity
from ipseclab.crypto.certs import issue_peer_cert, make_lab_ca
from ipseclab.demo import DemoOptions, demo_configs
from ipseclab.errors import ConfigError
from ipseclab.ikev1.policy import IsakmpPolicy, TransformSet
from ipseclab.runtime.config_toml import (
    dump_peer_config,
    load_peer_config,
    parse_esp_proposal,
    parse_ike_proposal,
    parse_peer_config,
)
from ipseclab.teaching.lab import LabSession

CONTAINERS = Path(__file__).resolve().parent.parent / "containers"

MINIMAL = """
[peer]
name = "left"
address = "10.99.0.1"
psk = "secret"
"""

FULL = """
[peer]
name = "left"
address = "10.99.0.1"
port = 1500
natt_port = 14500
identity = "left@lab"
psk = "peer-wide"
include_default_policy = false
retransmit_timeout = 0.5
retransmit_tries = 3

[[peer.ike_policies]]
priority = 5
proposal = "aes256-sha2_256-ecp256"
auth = "psk"
lifetime = 28800

[[peer.ike_policies]]
proposal = "3des-md5-modp1024"

[connections.site]
remote_addrs = "10.99.0.2"
remote_port = 1502
version = 1
aggressive = true
remote_id = "gw.right.lab"
psk = "0x00ff10"
encap = true

[connections.site.children.net1]
local_ts = "10.1.0.1"
remote_ts = "10.2.0.0/16"
esp_proposals = "aes128gcm16-modp2048, aes256-sha256"
mode = "transport"
life_time = 1200

[connections.site.children.net2]
local_ts = "10.1.2.0/24"
remote_ts = "10.2.2.0/24"

[connections.other]
remote_addrs = "10.99.0.3"
"""


def test_minimal_config_takes_the_defaults() -> None:
    cfg = parse_peer_config(MINIMAL)
    assert (cfg.name, cfg.address, cfg.port, cfg.natt_port) == ("left", "10.99.0.1", 500, 4500)
    assert cfg.identity == Identity("address", "10.99.0.1")
    assert cfg.psk == b"secret"
    assert cfg.isakmp_policies == [IsakmpPolicy(10)]
    assert cfg.include_default_policy is True
    assert cfg.connections == []


def test_full_config() -> None:
    cfg = parse_peer_config(FULL)
    assert (cfg.port, cfg.natt_port, cfg.retransmit_timeout, cfg.retransmit_tries) == (1500, 14500, 0.5, 3)
    assert cfg.identity == Identity("user_fqdn", "left@lab")
    assert cfg.include_default_policy is False
    assert cfg.isakmp_policies == [
        IsakmpPolicy(5, "aes256", "sha256", "psk", 19, 28800),
        IsakmpPolicy(20, "3des", "md5", "psk", 2, 86400),  # priority: 10 × position by default
    ]


def test_full_config_connections_and_children() -> None:
    cfg = parse_peer_config(FULL)
    site, other = cfg.connections
    assert (site.name, site.remote_address, site.remote_port, site.mode) == ("site", "10.99.0.2", 1502, "aggressive")
    assert site.remote_identity == Identity("fqdn", "gw.right.lab")
    assert site.psk == bytes.fromhex("00ff10") and site.force_encapsulation is True
    net1, net2 = site.children
    assert (net1.local_ts, net1.remote_ts) == ("10.1.0.1", "10.2.0.0/16")
    assert net1.transform_sets == (
        TransformSet("aes128gcm16-modp2048", "aes128gcm16", None, "transport", 14, 1200),
        TransformSet("aes256-sha256", "aes256", "sha256", "transport", None, 1200),
    )
    assert net2.transform_sets == (TransformSet("aes128-sha1", "aes128", "sha1", "tunnel", None, 3600),)
    assert (other.remote_address, other.psk, other.mode, other.children) == ("10.99.0.3", None, "main", ())


def test_policy_priorities_default_to_tens_in_order() -> None:
    cfg = parse_peer_config(
        MINIMAL
        + '[[peer.ike_policies]]\nproposal = "aes128-sha1-modp2048"\n[[peer.ike_policies]]\nproposal = "aes256-sha256-modp3072"\n'
    )
    assert [p.priority for p in cfg.isakmp_policies] == [10, 20]
    assert [p.group for p in cfg.isakmp_policies] == [14, 15]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("aes128-sha1-modp1024", ("aes128", "sha1", 2)),
        ("aes128-sha1-modp1536", ("aes128", "sha1", 5)),
        ("AES256-SHA512-modp4096", ("aes256", "sha512", 16)),
        ("aes192-sha384-ecp384", ("aes192", "sha384", 20)),
        ("aes256-sha2_512-ecp521", ("aes256", "sha512", 21)),
        ("aes128-sha256-curve25519", ("aes128", "sha256", 31)),
        ("aes128-sha256-x25519", ("aes128", "sha256", 31)),
        ("des-md5-modp768", ("des", "md5", 1)),
    ],
)
def test_ike_proposals(text: str, expected: tuple[str, str, int]) -> None:
    assert parse_ike_proposal(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("aes128-sha1", ("aes128", "sha1", None)),
        ("aes128-sha1-modp2048", ("aes128", "sha1", 14)),
        ("aes128gcm16", ("aes128gcm16", None, None)),
        ("aes256gcm16-ecp256", ("aes256gcm16", None, 19)),
        ("3des-md5", ("3des", "md5", None)),
        ("null-sha256", ("null", "sha256", None)),
    ],
)
def test_esp_proposals(text: str, expected: tuple[str, str | None, int | None]) -> None:
    assert parse_esp_proposal(text) == expected


def test_secrets_table_and_encoded_psks() -> None:
    cfg = parse_peer_config(
        textwrap.dedent(
            """
            [peer]
            name = "r"
            address = "10.0.0.2"
            [peer.secrets]
            a = "0sAAEC"
            b = "plain text"
            [connections.a]
            remote_addrs = "10.0.0.1"
            [connections.b]
            remote_addrs = "10.0.0.3"
            """
        )
    )
    assert cfg.psk is None
    assert [c.psk for c in cfg.connections] == [b"\x00\x01\x02", b"plain text"]


def _write_pki(tmp_path: Path) -> None:
    ca = make_lab_ca(key_size=1024)
    me = issue_peer_cert(ca, "left", ip_addresses=["10.99.0.1"], key_size=1024)
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem())
    (tmp_path / "left.pem").write_bytes(me.cert_pem())
    (tmp_path / "left.key").write_bytes(me.key_pem())
    (tmp_path / "other.key").write_bytes(issue_peer_cert(ca, "x", key_size=1024).key_pem())


RSA = """
[peer]
name = "left"
address = "10.99.0.1"
cert = "left.pem"
key = "{key}"
ca = "ca.pem"
[[peer.ike_policies]]
proposal = "aes128-sha1-modp2048"
auth = "rsa-sig"
"""


def test_rsa_credentials_from_pem_files_relative_to_the_file(tmp_path: Path) -> None:
    _write_pki(tmp_path)
    path = tmp_path / "left.toml"
    path.write_text(RSA.format(key="left.key"))
    cfg = load_peer_config(path)
    assert cfg.credentials is not None and cfg.ca_cert is not None
    assert cfg.credentials.cert.subject.rfc4514_string() == "CN=left,O=ipseclab,C=CH"
    assert cfg.psk is None and cfg.isakmp_policies[0].auth == "rsa-sig"
    # the same as a string path, and dumped with inline PEM it loads from anywhere
    assert load_peer_config(str(path)).credentials.cert == cfg.credentials.cert  # type: ignore[union-attr]
    again = parse_peer_config(dump_peer_config(cfg))
    assert again.credentials is not None and again.credentials.cert == cfg.credentials.cert
    assert again.credentials.key.private_numbers() == cfg.credentials.key.private_numbers()
    assert again.ca_cert == cfg.ca_cert


def test_rsa_demo_configs_round_trip_and_negotiate() -> None:
    left, right = demo_configs(DemoOptions(auth="rsa"))
    configs = tuple(parse_peer_config(dump_peer_config(c)) for c in (left, right))
    session = LabSession(configs=configs)  # type: ignore[arg-type]
    session.run_to_end()
    assert session.established(), session.explanation()


@pytest.mark.parametrize("name", ["peer-left.toml", "peer-right.toml"])
def test_shipped_examples_round_trip(name: str) -> None:
    cfg = load_peer_config(CONTAINERS / name)
    assert cfg.name == name.removeprefix("peer-").removesuffix(".toml")
    text = dump_peer_config(cfg)
    assert parse_peer_config(text) == cfg
    assert dump_peer_config(parse_peer_config(text)) == text


def test_shipped_examples_negotiate_with_each_other() -> None:
    left = load_peer_config(CONTAINERS / "peer-left.toml")
    right = load_peer_config(CONTAINERS / "peer-right.toml")
    session = LabSession(configs=(left, right))
    session.run_to_end()
    assert session.established(), session.explanation()
    assert [m.summary for m in session.messages()][-1] == "HDR*, HASH(3)"


@pytest.mark.parametrize("opts", [DemoOptions(), DemoOptions(mode="aggressive", pfs=14, policies=2)])
def test_demo_configs_round_trip(opts: DemoOptions) -> None:
    for cfg in demo_configs(opts):
        text = dump_peer_config(cfg)
        again = parse_peer_config(text)
        assert dump_peer_config(again) == text
        assert (again.name, again.address, again.psk, again.identity) == (cfg.name, cfg.address, cfg.psk, cfg.identity)
        assert again.isakmp_policies == cfg.isakmp_policies


def test_dump_without_secrets() -> None:
    left, _ = demo_configs(DemoOptions())
    text = dump_peer_config(left, secrets=False)
    assert "psk =" not in text and "ipseclab-demo-psk" not in text
    with pytest.raises(ConfigError, match="connections.site.psk: missing"):
        parse_peer_config(text)
    shown = parse_peer_config(text, check_secrets=False)
    assert shown.psk is None and shown.connections[0].name == "site"


def test_binary_psk_is_written_as_hex() -> None:
    cfg = parse_peer_config(MINIMAL.replace('"secret"', '"0x00ff"'))
    assert 'psk = "0x00ff"' in dump_peer_config(cfg)


def _err(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_peer_config(text)
    return str(info.value)


CONN = MINIMAL + '[connections.site]\nremote_addrs = "10.99.0.2"\n'
CHILD = CONN + '[connections.site.children.net1]\nlocal_ts = "10.1.0.0/24"\nremote_ts = "10.2.0.0/24"\n'

ERRORS = [
    # (toml text, words the message must contain)
    ("[peer\nname=1", ["not valid TOML"]),
    ("[other]\nx = 1\n", ["other: unknown key", "allowed keys: connections, peer"]),
    ('[connections.x]\nremote_addrs = "1.2.3.4"\n', ["[peer]: missing"]),
    ("peer = 3\n", ["peer must be a table"]),
    ('[peer]\naddress = "10.0.0.1"\npsk = "x"\n', ["peer.name: missing"]),
    ('[peer]\nname = ""\naddress = "10.0.0.1"\npsk = "x"\n', ["peer.name: must not be empty"]),
    ('[peer]\nname = "a"\npsk = "x"\n', ["peer.address: missing"]),
    ('[peer]\nname = "a"\naddress = "left"\npsk = "x"\n', ["peer.address", "IP address", "'left'"]),
    ('[peer]\nname = "a"\naddress = 10\npsk = "x"\n', ["peer.address: must be an IP address", "an integer"]),
    (MINIMAL + "port = 70000\n", ["peer.port", "from 1 to 65535", "70000"]),
    (MINIMAL + 'port = "500"\n', ["peer.port", "an integer", "a string"]),
    (MINIMAL + "port = true\n", ["peer.port", "an integer", "a boolean"]),
    (MINIMAL + "natt_port = 500\n", ["peer.natt_port: must differ from peer.port"]),
    (MINIMAL + 'include_default_policy = "yes"\n', ["peer.include_default_policy", "true or false"]),
    (MINIMAL + "retransmit_timeout = 0\n", ["peer.retransmit_timeout", "positive"]),
    (MINIMAL + "retransmit_tries = 0\n", ["peer.retransmit_tries", "at least 1"]),
    (MINIMAL + 'adress = "x"\n', ["peer.adress: unknown key", "address", "psk"]),
    (MINIMAL + 'psk2 = "x"\n', ["peer.psk2: unknown key"]),
    ('[peer]\nname = "a"\naddress = "10.0.0.1"\npsk = "0xzz"\n', ["peer.psk", "hex"]),
    ('[peer]\nname = "a"\naddress = "10.0.0.1"\npsk = "0s!!"\n', ["peer.psk", "base64"]),
    ('[peer]\nname = "a"\naddress = "10.0.0.1"\npsk = "0x"\n', ["peer.psk", "must not be empty"]),
    ('[peer]\nname = "a"\naddress = "10.0.0.1"\n', ["peer.psk: missing", 'auth = "psk"']),
    ('[peer]\nname = "a"\naddress = "10.0.0.1"\n[connections.site]\nremote_addrs = "10.0.0.2"\n', ["connections.site.psk: missing"]),
    (MINIMAL + "ike_policies = []\n", ["peer.ike_policies: needs at least one"]),
    (MINIMAL + "ike_policies = 3\n", ["peer.ike_policies: must be an array of tables"]),
    (MINIMAL + "[[peer.ike_policies]]\npriority = 10\n", ["peer.ike_policies[0].proposal: missing"]),
    (MINIMAL + '[[peer.ike_policies]]\nproposal = "aes128-sha1"\n', ["peer.ike_policies[0].proposal", "encryption-hash-group", "modp2048"]),
    (MINIMAL + '[[peer.ike_policies]]\nproposal = "aes512-sha1-modp2048"\n', ["unknown IKE encryption 'aes512'", "3des, aes128"]),
    (MINIMAL + '[[peer.ike_policies]]\nproposal = "aes128-sha3-modp2048"\n', ["unknown IKE hash 'sha3'", "md5, sha1"]),
    (MINIMAL + '[[peer.ike_policies]]\nproposal = "aes128-sha1-modp999"\n', ["unknown DH group 'modp999'", "curve25519", "ecp256"]),
    (MINIMAL + '[[peer.ike_policies]]\nproposal = "aes128-sha1-modp2048"\nauth = "pubkey"\n', ["peer.ike_policies[0].auth", "'pubkey' is not allowed", "psk, rsa-sig"]),
    (MINIMAL + '[[peer.ike_policies]]\nproposal = "aes128-sha1-modp2048"\nlifetime = 0\n', ["peer.ike_policies[0].lifetime", "at least 1"]),
    (MINIMAL + '[[peer.ike_policies]]\nproposal = "aes128-sha1-modp2048"\npriority = 0\n', ["peer.ike_policies[0].priority", "from 1 to 65535"]),
    (MINIMAL + '[[peer.ike_policies]]\nproposal = "aes128-sha1-modp2048"\ngroup = 14\n', ["peer.ike_policies[0].group: unknown key", "auth, lifetime, priority, proposal"]),
    (
        MINIMAL + '[[peer.ike_policies]]\nproposal = "aes128-sha1-modp2048"\n[[peer.ike_policies]]\npriority = 10\nproposal = "aes128-sha1-modp2048"\n',
        ["priority 10 is used twice"],
    ),
    (MINIMAL + '[[peer.ike_policies]]\nproposal = "aes128-sha1-modp2048"\nauth = "rsa-sig"\n', ["peer.cert: missing", "rsa-sig"]),
    (MINIMAL + 'cert = "a.pem"\n', ["peer.key, peer.ca: missing"]),
    (MINIMAL + 'cert = "/nonexistent/a.pem"\nkey = "/nonexistent/a.key"\nca = "/nonexistent/ca.pem"\n', ["peer.cert: cannot read PEM file"]),
    (MINIMAL + "[peer.secrets]\nsite = 3\n", ["peer.secrets.site: must be a string"]),
    (MINIMAL + '[peer.secrets]\nsite = "x"\n', ["peer.secrets.site", "no connection named 'site'"]),
    (CONN.replace('psk = "secret"\n', "") + 'psk = "a"\n[peer.secrets]\nsite = "b"\n', ["connections.site.psk: also given as peer.secrets.site"]),
    (MINIMAL + "[connections]\nsite = 3\n", ["connections.site must be a table"]),
    (MINIMAL + "[connections.site]\nremote_port = 500\n", ["connections.site.remote_addrs: missing"]),
    (MINIMAL + '[connections.site]\nremote_addrs = "10.0.0.2, 10.0.0.3"\n', ["connections.site.remote_addrs", "one IP address"]),
    (MINIMAL + '[connections.site]\nremote_addrs = ["10.0.0.2"]\n', ["connections.site.remote_addrs: must be an IP address", "an array"]),
    (CONN + "version = 3\n", ["connections.site.version", "1 or 2", "got 3"]),
    (CONN + 'aggressive = "no"\n', ["connections.site.aggressive", "true or false"]),
    (CONN + "remote_port = 0\n", ["connections.site.remote_port", "from 1 to 65535"]),
    (CONN + 'encap = 1\n', ["connections.site.encap", "true or false"]),
    (CONN + 'local_addrs = "10.0.0.1"\n', ["connections.site.local_addrs: unknown key", "remote_addrs"]),
    (CONN + 'psk = ""\n', ["connections.site.psk: must not be empty"]),
    (CONN + "children = 3\n", ["connections.site.children: must be a table"]),
    (CONN + "[connections.site.children.net1]\nremote_ts = \"10.2.0.0/24\"\n", ["connections.site.children.net1.local_ts: missing"]),
    (CONN + '[connections.site.children.net1]\nlocal_ts = "10.1.0.0/33"\nremote_ts = "10.2.0.0/24"\n', ["connections.site.children.net1.local_ts", "bad traffic selector"]),
    (CONN + '[connections.site.children.net1]\nlocal_ts = "10.1.0.0/24"\nremote_ts = "nowhere"\n', ["connections.site.children.net1.remote_ts", "bad traffic selector"]),
    (CHILD + 'mode = "tunel"\n', ["connections.site.children.net1.mode", "'tunel' is not allowed", "transport, tunnel"]),
    (CHILD + "life_time = -1\n", ["connections.site.children.net1.life_time", "at least 1"]),
    (CHILD + "esp_proposals = []\n", ["connections.site.children.net1.esp_proposals", "non-empty array of strings"]),
    (CHILD + "esp_proposals = [1]\n", ["connections.site.children.net1.esp_proposals", "non-empty array of strings"]),
    (CHILD + 'esp_proposals = ["aes128"]\n', ["esp_proposals", "needs an integrity algorithm", "sha1"]),
    (CHILD + 'esp_proposals = ["aes128-modp2048"]\n', ["esp_proposals", "needs an integrity algorithm"]),
    (CHILD + 'esp_proposals = ["blowfish-sha1"]\n', ["unknown ESP encryption 'blowfish'", "aes128gcm16"]),
    (CHILD + 'esp_proposals = ["aes128-whirlpool"]\n', ["unknown ESP integrity 'whirlpool'", "md5, sha1"]),
    (CHILD + 'esp_proposals = ["aes128gcm16-sha1"]\n', ["AEAD cipher and takes no integrity"]),
    (CHILD + 'esp_proposals = ["aes128-sha1-modp2048-x"]\n', ["too many parts"]),
    (CHILD + 'esp_proposals = ["aes128-sha1-modp9"]\n', ["unknown DH group 'modp9'"]),
    (CHILD + 'start_action = "trap"\n', ["connections.site.children.net1.start_action: unknown key", "esp_proposals, life_bytes, life_packets, life_time"]),
]


@pytest.mark.parametrize(("text", "words"), ERRORS, ids=[f"e{i:02d}" for i in range(len(ERRORS))])
def test_errors_name_the_key_and_the_choices(text: str, words: list[str]) -> None:
    message = _err(text)
    for w in words:
        assert w in message, message
    assert "Traceback" not in message


def test_key_that_does_not_match_the_certificate(tmp_path: Path) -> None:
    _write_pki(tmp_path)
    with pytest.raises(ConfigError, match="peer.key: this key does not belong to the certificate"):
        parse_peer_config(RSA.format(key="other.key"), base_dir=tmp_path)


def test_pem_files_with_the_wrong_content(tmp_path: Path) -> None:
    _write_pki(tmp_path)
    with pytest.raises(ConfigError, match="peer.key: not an unencrypted PEM private key"):
        parse_peer_config(RSA.format(key="ca.pem"), base_dir=tmp_path)
    (tmp_path / "left.pem").write_text("garbage")
    with pytest.raises(ConfigError, match="peer.cert: not a PEM X.509 certificate"):
        parse_peer_config(RSA.format(key="left.key"), base_dir=tmp_path)


def test_unreadable_file() -> None:
    with pytest.raises(ConfigError, match="cannot read configuration file"):
        load_peer_config(Path("/nonexistent/peer.toml"))


def test_remote_addrs_any_for_a_responder_behind_nat() -> None:
    from ipseclab.runtime.config_toml import parse_peer_config

    text = """
[peer]
name = "right"
address = "203.0.113.2"
psk = "lab"
[[peer.ike_policies]]
priority = 10
proposal = "aes128-sha1-modp2048"
[connections.site]
remote_addrs = "%any"
[connections.site.children.net1]
local_ts = "10.2.0.1/32"
remote_ts = "10.1.0.1/32"
esp_proposals = ["aes128-sha1"]
"""
    cfg = parse_peer_config(text)
    assert cfg.connections[0].accepts_any
    assert cfg.connection_for("203.0.113.1") is cfg.connections[0]


def test_shipped_examples_state_their_life_cycle_choices() -> None:
    """start_action, close_action and DPD are written out in the examples, not left implicit."""
    for name, dpd_action in (("peer-left.toml", "restart"), ("peer-right.toml", "clear")):
        text = (CONTAINERS / name).read_text()
        assert all(f"\n{key} =" in text for key in ("start_action", "close_action", "dpd_delay", "dpd_action"))
        conn = load_peer_config(CONTAINERS / name).connections[0]
        assert (conn.start_action, conn.close_action, conn.dpd_delay, conn.dpd_action) == ("none", "none", 30, dpd_action)


@pytest.mark.parametrize(
    ("extra", "section", "complaint"),
    [
        ("max_strangers_per_batch = 0", "peer", "max_strangers_per_batch"),
        ('max_strangers_per_batch = "lots"', "peer", "max_strangers_per_batch"),
        ('start_action = "sometimes"', "conn", "start_action must be none, trap, start"),
        ('close_action = "restart"', "conn", "close_action must be none, clear, trap, start"),
        ('dpd_action = "panic"', "conn", "dpd_action"),
        ('start_action = "trap"\nremote_addrs = "%any"', "anyconn", "trap needs a peer to initiate to"),
    ],
)
def test_life_cycle_and_load_keys_refuse_nonsense(extra: str, section: str, complaint: str) -> None:
    conn = '\n[connections.site]\nremote_addrs = "10.99.0.2"\n'
    if section == "peer":
        text = MINIMAL + extra + "\n"
    elif section == "conn":
        text = MINIMAL + conn + extra + "\n"
    else:
        text = MINIMAL + "\n[connections.site]\n" + extra + "\n"
    with pytest.raises(ConfigError, match=complaint):
        parse_peer_config(text)


def test_version_2_connection_speaks_ikev2() -> None:
    cfg = parse_peer_config(CONN + "version = 2\n")
    (conn,) = cfg.connections
    assert conn.version == 2
    assert parse_peer_config(CONN).connections[0].version == 1
    again = parse_peer_config(dump_peer_config(cfg))
    assert again.connections[0].version == 2


def test_additional_ke_for_the_pq_hybrid() -> None:
    text = MINIMAL + '[[peer.ike_policies]]\nproposal = "aes256-sha256-modp2048"\nadditional_ke = "mlkem768"\n'
    cfg = parse_peer_config(text)
    assert cfg.isakmp_policies[0].addke == 36
    assert parse_peer_config(dump_peer_config(cfg)).isakmp_policies[0].addke == 36
    with pytest.raises(ConfigError, match="additional_ke"):
        parse_peer_config(text.replace("mlkem768", "mlkem512"))


def test_remote_access_pools_and_vips() -> None:
    text = (MINIMAL + '[peer.pools.rw]\naddrs = "10.3.0.0/24"\ndns = ["10.2.0.53"]\n'
            + '[connections.rw]\nremote_addrs = "%any"\nversion = 2\npools = ["rw"]\n')
    cfg = parse_peer_config(text)
    assert [(p.name, p.addrs, p.dns) for p in cfg.pools] == [("rw", "10.3.0.0/24", ("10.2.0.53",))]
    assert cfg.connections[0].pools == ("rw",)
    again = parse_peer_config(dump_peer_config(cfg))
    assert again.pools == cfg.pools and again.connections[0].pools == ("rw",)
    with pytest.raises(ConfigError, match="pools"):
        parse_peer_config(text.replace('pools = ["rw"]', 'pools = ["other"]'))
    client = parse_peer_config(CONN + 'vips = ["0.0.0.0"]\n')
    assert client.connections[0].vips == ("0.0.0.0",)


def test_eap_users_and_remote_auth() -> None:
    text = (MINIMAL + '[peer.eap_users]\nalice = "alice-secret"\nbob = "0x626f62"\n'
            + '[connections.rw]\nremote_addrs = "%any"\nversion = 2\nremote_auth = "eap-md5"\n')
    cfg = parse_peer_config(text)
    assert cfg.eap_users == {"alice": b"alice-secret", "bob": b"bob"}
    assert cfg.connections[0].remote_auth == "eap-md5"
    assert "alice-secret" not in repr(cfg)
    again = parse_peer_config(dump_peer_config(cfg))
    assert again.eap_users == cfg.eap_users and again.connections[0].remote_auth == "eap-md5"
    assert "alice-secret" not in dump_peer_config(cfg, secrets=False)
    with pytest.raises(ConfigError, match="remote_auth"):
        parse_peer_config(text.replace('"eap-md5"', '"eap-tls"'))
    with pytest.raises(ConfigError, match="EAP, which IKEv2 carries"):
        parse_peer_config(text.replace("version = 2\n", ""))
    client = parse_peer_config(CONN + 'version = 2\nlocal_auth = "eap-md5"\neap_id = "alice"\n')
    assert (client.connections[0].local_auth, client.connections[0].eap_id) == ("eap-md5", "alice")


def test_groups_and_pools_for_users() -> None:
    text = (MINIMAL + '[peer.groups]\nstaff = ["alice", "bob"]\n[peer.pools.staff]\naddrs = "10.3.0.0/24"\nusers = ["staff"]\n'
            + '[connections.rw]\nremote_addrs = "%any"\nversion = 2\npools = ["staff"]\n')
    cfg = parse_peer_config(text)
    assert cfg.groups == {"staff": ("alice", "bob")} and cfg.pools[0].users == ("staff",)
    assert cfg.pools[0].admits("bob", cfg.groups) and not cfg.pools[0].admits("mallory", cfg.groups)
    again = parse_peer_config(dump_peer_config(cfg))
    assert again.groups == cfg.groups and again.pools == cfg.pools
    with pytest.raises(ConfigError, match="peer.groups.staff: must be an array of strings"):
        parse_peer_config(text.replace('staff = ["alice", "bob"]', 'staff = "alice"'))
