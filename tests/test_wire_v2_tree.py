"""IKEv2 dissection tree for the teaching views (ipseclab.wire.v2.tree)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_wire_v2 import NONCE, SPI_I, SPI_R, esp_sa, ike_sa_init, sample_messages
from wire_support import Node, check_tree, find

from ipseclab.wire.v2.constants import (
    AuthMethod,
    CfgAttributeType,
    CfgType,
    ExchangeType,
    HeaderFlag,
    NotifyType,
    ProtocolId,
)
from ipseclab.wire.v2.message import (
    AuthPayload,
    ConfigAttribute,
    CPPayload,
    DeletePayload,
    EAPPayload,
    EncryptedFragmentPayload,
    EncryptedPayload,
    IDiPayload,
    Message,
    NotifyPayload,
    TrafficSelector,
    TSiPayload,
    TSrPayload,
    encode_payloads,
)
from ipseclab.wire.v2.tree import message_tree


def check_coverage(tree: Node, wire: bytes, plaintext: bytes | None = None) -> None:
    """An IKEv2 tree whose top-level nodes of each space tile that whole buffer, in order."""
    assert tree["name"] == "IKEv2 Message"
    for space, buf in (("wire", wire), ("plaintext", plaintext)):
        if buf is None:
            continue
        top = [n for n in tree["children"] if n["space"] == space]
        pos = 0
        for node in top:
            assert node["offset"] == pos, (space, node["name"])
            pos += node["length"]
        assert pos == len(buf), space


def raw(node: Node, buf: bytes) -> bytes:
    return buf[node["offset"] : node["offset"] + node["length"]]


def fields(node: Node) -> dict[str, str | None]:
    return {c["name"]: c["value"] for c in node["children"]}


# -- IKE_SA_INIT -----------------------------------------------------------------------


def test_ike_sa_init_tree() -> None:
    data = ike_sa_init().encode()
    tree = message_tree(data)
    check_tree(tree, data)
    check_coverage(tree, data)
    assert tree["value"] == "IKE_SA_INIT (34)"
    header = tree["children"][0]
    assert fields(header) == {
        "Initiator SPI": "0001020304050607",
        "Responder SPI": "0000000000000000",
        "Next payload": "SA (33)",
        "Version": "2.0",
        "Exchange type": "IKE_SA_INIT (34)",
        "Flags": "Initiator (0x08)",
        "Message ID": "0",
        "Length": str(len(data)),
    }
    mid = find(header, "Message ID")[0]
    assert (mid["offset"], mid["length"], raw(mid, data)) == (20, 4, bytes(4))
    names = [c["name"] for c in tree["children"]]
    assert names == ["Header", "Security Association", "Key Exchange", "Nonce"] + ["Notify"] * 4 + [
        "Vendor ID"
    ]
    sa = tree["children"][1]
    assert [c["name"] for c in sa["children"][:3]] == [
        "Next payload",
        "Critical bit / Reserved",
        "Payload length",
    ]
    assert [p["name"] for p in sa["children"][3:]] == ["Proposal #1", "Proposal #2"]
    transforms = find(sa, "Transform")
    assert transforms[0]["value"] == "ENCR (1): AES_CBC (12), 256 bits"
    tid = find(transforms[0], "Transform ID")[0]
    assert tid["value"] == "AES_CBC (12)" and raw(tid, data) == b"\x00\x0c"
    assert [find(t, "Transform ID")[0]["value"] for t in transforms[1:5]] == [
        "HMAC_SHA2_256 (5)",
        "HMAC_SHA2_256_128 (12)",
        "ECP_256 (19)",
        "MODP_2048 (14)",
    ]
    addke = [t for t in transforms if t["value"].startswith("ADDKE1")]
    assert addke and find(addke[0], "Transform ID")[0]["value"] == "ML_KEM_768 (36)"
    key_length = find(sa, "Key Length")[0]
    assert key_length["value"] == "256" and raw(key_length, data) == bytes.fromhex("800e0100")
    ke = tree["children"][2]
    assert ke["value"] == "ECP_256 (19)"
    assert raw(find(ke, "Key exchange data")[0], data) == bytes(range(64))
    nonce = find(tree["children"][3], "Nonce data")[0]
    assert raw(nonce, data) == NONCE and nonce["value"] == NONCE.hex()
    nat = tree["children"][4]
    assert nat["value"] == "NAT_DETECTION_SOURCE_IP (16388)"
    assert raw(find(nat, "Notification data")[0], data) == b"\x01" * 20
    assert raw(find(nat, "Notify message type")[0], data) == (16388).to_bytes(2, "big")
    assert tree["children"][-1]["value"] == "ipseclab"
    length = find(tree["children"][1], "Payload length")[0]
    assert raw(length, data) == (100).to_bytes(2, "big")


def test_all_samples_tree_invariants() -> None:
    for msg in sample_messages():
        data = msg.encode()
        tree = message_tree(data)
        check_tree(tree, data)
        check_coverage(tree, data)
        assert not find(tree, "Malformed")
        assert len(tree["children"]) == 1 + len(msg.payloads)
        for node, payload in zip(tree["children"][1:], msg.payloads, strict=True):
            assert raw(node, data)[4:] == payload.encode_body()


# -- IKE_AUTH with SK and its plaintext ----------------------------------------------------


def _ike_auth() -> tuple[bytes, bytes, list[Any]]:
    inner = [
        IDiPayload.from_fqdn("alice.example.org"),
        AuthPayload(AuthMethod.SHARED_KEY_MIC, b"\xaa" * 32),
        esp_sa(),
        TSiPayload([TrafficSelector.from_network("10.1.0.0/16")]),
        TSrPayload(
            [
                TrafficSelector.from_network("10.2.0.0/24", 6, 443),
                TrafficSelector.from_network("2001:db8::/64"),
            ]
        ),
    ]
    first, plaintext = encode_payloads(inner)
    sk = EncryptedPayload(first, bytes(16) + b"\xee" * (len(plaintext) + 16) + bytes(16))
    msg = Message(SPI_I, SPI_R, ExchangeType.IKE_AUTH, HeaderFlag.INITIATOR, 1, [sk])
    return msg.encode(), plaintext, inner


def test_ike_auth_without_plaintext() -> None:
    data, _, _ = _ike_auth()
    tree = message_tree(data)
    check_tree(tree, data)
    check_coverage(tree, data)
    assert [c["name"] for c in tree["children"]] == ["Header", "Encrypted and Authenticated"]
    sk = tree["children"][1]
    assert sk["value"].endswith("first inner payload IDi (35)")
    opaque = sk["children"][-1]
    assert opaque["name"] == "Initialization vector + ciphertext + ICV"
    assert (opaque["offset"], opaque["length"]) == (32, len(data) - 32)
    assert fields(tree["children"][0])["Message ID"] == "1"


def test_ike_auth_with_plaintext() -> None:
    data, plaintext, inner = _ike_auth()
    tree = message_tree(data, plaintext)
    check_tree(tree, data, plaintext)
    check_coverage(tree, data, plaintext)
    assert [(c["name"], c["space"]) for c in tree["children"]] == [
        ("Header", "wire"),
        ("Encrypted and Authenticated", "wire"),
        ("Identification - Initiator", "plaintext"),
        ("Authentication", "plaintext"),
        ("Security Association", "plaintext"),
        ("Traffic Selector - Initiator", "plaintext"),
        ("Traffic Selector - Responder", "plaintext"),
    ]
    for node, payload in zip(tree["children"][2:], inner, strict=True):
        assert raw(node, plaintext)[4:] == payload.encode_body()
    idi = tree["children"][2]
    assert idi["value"] == "FQDN (2) alice.example.org"
    assert raw(find(idi, "Identification data")[0], plaintext) == b"alice.example.org"
    auth = tree["children"][3]
    assert auth["value"] == "SHARED_KEY_MIC (2)"
    assert raw(find(auth, "Authentication data")[0], plaintext) == b"\xaa" * 32
    sa = tree["children"][4]
    assert find(sa, "Proposal #1")[0]["value"] == "ESP (3), 3 transform(s)"
    assert raw(find(sa, "SPI")[0], plaintext) == b"\xc0\x01\x02\x03"
    assert find(sa, "Transform ID")[-1]["value"] == "NO_ESN (0)"
    tsr = tree["children"][6]
    selectors = find(tsr, "Traffic selector")
    assert len(selectors) == 2
    first = fields(selectors[0])
    assert first["TS type"] == "IPV4_ADDR_RANGE (7)"
    assert (first["Starting address"], first["Ending address"]) == ("10.2.0.0", "10.2.0.255")
    assert (first["Start port"], first["End port"], first["IP protocol ID"]) == ("443", "443", "6")
    start = find(selectors[0], "Starting address")[0]
    assert raw(start, plaintext) == bytes([10, 2, 0, 0])
    port = find(selectors[0], "Start port")[0]
    assert raw(port, plaintext) == (443).to_bytes(2, "big")
    v6 = fields(selectors[1])
    assert v6["TS type"] == "IPV6_ADDR_RANGE (8)" and v6["Starting address"] == "2001:db8::"
    # padding left in the plaintext is shown, not flagged
    padded = plaintext + bytes(3) + b"\x03"
    tree = message_tree(data, padded)
    check_tree(tree, data, padded)
    check_coverage(tree, data, padded)
    assert tree["children"][-1]["name"] == "Padding"


# -- INFORMATIONAL, CP, EAP, SKF --------------------------------------------------------------


def test_informational_delete() -> None:
    msg = Message(
        SPI_I,
        SPI_R,
        ExchangeType.INFORMATIONAL,
        HeaderFlag.RESPONSE | HeaderFlag.INITIATOR,
        7,
        [
            DeletePayload(ProtocolId.ESP, 4, [b"\x01\x02\x03\x04", b"\x05\x06\x07\x08"]),
            DeletePayload(ProtocolId.IKE),
            NotifyPayload(NotifyType.REKEY_SA, ProtocolId.ESP, b"\xc0\x01\x02\x03"),
        ],
    )
    data = msg.encode()
    tree = message_tree(data)
    check_tree(tree, data)
    check_coverage(tree, data)
    assert fields(tree["children"][0])["Flags"] == "Initiator, Response (0x28)"
    assert raw(find(tree, "Message ID")[0], data) == (7).to_bytes(4, "big")
    delete = tree["children"][1]
    assert (delete["name"], delete["value"]) == ("Delete", "ESP (3), 2 SPI(s)")
    spis = find(delete, "SPI")
    assert [raw(s, data) for s in spis] == [b"\x01\x02\x03\x04", b"\x05\x06\x07\x08"]
    assert tree["children"][2]["value"] == "IKE (1), 0 SPI(s)"
    notify = tree["children"][3]
    assert fields(notify)["Protocol ID"] == "ESP (3)"
    assert raw(find(notify, "SPI")[0], data) == b"\xc0\x01\x02\x03"


def test_cp_and_eap() -> None:
    msg = Message(
        SPI_I,
        SPI_R,
        ExchangeType.IKE_AUTH,
        HeaderFlag.RESPONSE,
        1,
        [
            CPPayload(
                CfgType.CFG_REPLY,
                [
                    ConfigAttribute.address(CfgAttributeType.INTERNAL_IP4_ADDRESS, "10.3.0.1"),
                    ConfigAttribute.address(CfgAttributeType.INTERNAL_IP6_DNS, "2001:db8::53"),
                    ConfigAttribute(CfgAttributeType.APPLICATION_VERSION, b"ipseclab"),
                    ConfigAttribute(CfgAttributeType.INTERNAL_IP4_DNS),
                ],
            ),
            EAPPayload(1, 7, b"\x01hello"),
        ],
    )
    data = msg.encode()
    tree = message_tree(data)
    check_tree(tree, data)
    check_coverage(tree, data)
    cp = tree["children"][1]
    assert (cp["name"], cp["value"]) == ("Configuration", "CFG_REPLY (2), 4 attribute(s)")
    addr = find(cp, "INTERNAL_IP4_ADDRESS")[0]
    assert addr["value"] == "10.3.0.1"
    assert raw(find(addr, "Value")[0], data) == bytes([10, 3, 0, 1])
    assert raw(addr, data) == bytes.fromhex("00010004") + bytes([10, 3, 0, 1])
    assert find(cp, "INTERNAL_IP6_DNS")[0]["value"] == "2001:db8::53"
    assert find(cp, "APPLICATION_VERSION")[0]["value"] == "ipseclab"
    empty = find(cp, "INTERNAL_IP4_DNS")[0]
    assert empty["value"] == "<empty>" and empty["length"] == 4
    eap = tree["children"][2]
    assert eap["value"] == "REQUEST (1), Identity (1)"
    assert raw(find(eap, "Identity")[0], data) == b"hello"


def test_eap_md5_value_and_name() -> None:
    """RFC 3748 §5.4: Value-Size, Value and Name of an MD5-Challenge, each over its own bytes."""
    challenge = bytes(range(16))
    msg = Message(SPI_I, SPI_R, ExchangeType.IKE_AUTH, 0, 2, [EAPPayload(1, 9, b"\x04\x10" + challenge + b"gw")])
    data = msg.encode()
    tree = message_tree(data)
    check_tree(tree, data)
    check_coverage(tree, data)
    eap = tree["children"][1]
    assert find(eap, "Value-Size")[0]["value"] == "16"
    assert raw(find(eap, "Value")[0], data) == challenge and "(the challenge)" in find(eap, "Value")[0]["value"]
    assert raw(find(eap, "Name")[0], data) == b"gw"


def test_skf() -> None:
    msg = Message(
        SPI_I,
        SPI_R,
        ExchangeType.IKE_AUTH,
        HeaderFlag.INITIATOR,
        1,
        [EncryptedFragmentPayload(2, 3, b"\xef" * 40)],
    )
    data = msg.encode()
    tree = message_tree(data)
    check_tree(tree, data)
    check_coverage(tree, data)
    skf = tree["children"][1]
    assert (skf["name"], skf["value"]) == ("Encrypted Fragment", "fragment 2 of 3")
    assert raw(find(skf, "Fragment number")[0], data) == b"\x00\x02"
    assert raw(find(skf, "Total fragments")[0], data) == b"\x00\x03"
    opaque = find(skf, "Initialization vector + ciphertext + ICV")[0]
    assert raw(opaque, data) == b"\xef" * 40
    # a non-first fragment's plaintext is the middle of a chain: one opaque leaf
    tree = message_tree(data, b"xyz")
    check_tree(tree, data, b"xyz")
    assert tree["children"][-1]["name"] == "Decrypted data"


def test_unknown_critical_payload() -> None:
    data = bytearray(ike_sa_init().encode())
    data[29] = 0x80  # Critical bit on the SA payload's generic header
    tree = message_tree(bytes(data))
    check_tree(tree, bytes(data))
    assert fields(tree["children"][1])["Critical bit / Reserved"] == "critical (1)"


# -- malformed input ------------------------------------------------------------------------------


def test_malformed_nodes() -> None:
    data = ike_sa_init().encode()
    tree = message_tree(data[:20])
    assert [c["name"] for c in tree["children"]] == ["Malformed"]
    assert "truncated header" in tree["children"][0]["value"]
    # truncated datagram whose header Length is fixed up: the Nonce payload runs past the end
    nonce_at = 28 + 100 + 72
    cut = bytearray(data[: nonce_at + 10])
    cut[24:28] = len(cut).to_bytes(4, "big")
    tree = message_tree(bytes(cut))
    check_tree(tree, bytes(cut))
    check_coverage(tree, bytes(cut))
    last = tree["children"][-1]
    assert last["name"] == "Malformed" and "runs past the end" in last["value"]
    assert last["offset"] == nonce_at + 2
    undecoded = tree["children"][-2]
    assert (undecoded["name"], undecoded["offset"], undecoded["length"]) == (
        "Undecoded",
        nonce_at,
        2,
    )
    assert [c["name"] for c in tree["children"][:3]] == [
        "Header",
        "Security Association",
        "Key Exchange",
    ]
    # header Length larger than the datagram
    tree = message_tree(data[:-1])
    check_tree(tree, data[:-1])
    assert tree["children"][-1]["name"] == "Malformed" and tree["children"][-1]["offset"] == 24
    # transform count 9 in proposal #1 (offset 39)
    bad = data[:39] + b"\x09" + data[40:]
    tree = message_tree(bad)
    check_tree(tree, bad)
    last = tree["children"][-1]
    assert "announces 9 transforms" in last["value"] and last["offset"] == 39
    # IKEv1 version byte
    bad = data[:17] + b"\x10" + data[18:]
    tree = message_tree(bad)
    assert (
        tree["children"][-1]["name"] == "Malformed"
        and "major version 1" in tree["children"][-1]["value"]
    )
    # trailing bytes beyond the header Length are shown as ignored
    tree = message_tree(data + b"xx")
    check_tree(tree, data + b"xx")
    check_coverage(tree, data + b"xx")
    assert tree["children"][-1]["name"] == "Ignored bytes"
    # a malformed inner chain is flagged in the plaintext space
    wire, plaintext, _ = _ike_auth()
    tree = message_tree(wire, plaintext[:30])
    check_tree(tree, wire, plaintext[:30])
    assert tree["children"][-1]["name"] == "Malformed"
    assert tree["children"][-1]["space"] == "plaintext"


VALID = [m.encode() for m in sample_messages()] + [_ike_auth()[0]]
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_every_prefix_never_raises() -> None:
    for data in VALID:
        for n in range(len(data) + 1):
            tree = message_tree(data[:n])
            check_tree(tree, data[:n])
            if n < len(data):
                assert find(tree, "Malformed"), n


@FUZZ
@given(st.binary(max_size=300), st.one_of(st.none(), st.binary(max_size=80)))
def test_random_bytes_never_raise(data: bytes, plaintext: bytes | None) -> None:
    tree = message_tree(data, plaintext)
    check_tree(tree, data, plaintext)


@FUZZ
@given(st.sampled_from(VALID), st.data())
def test_mutated_messages_never_raise(seed: bytes, draw: st.DataObject) -> None:
    data = bytearray(seed)
    for _ in range(draw.draw(st.integers(1, 4))):
        pos = draw.draw(st.integers(0, len(data) - 1))
        data[pos] = draw.draw(st.integers(0, 255))
    if draw.draw(st.booleans()):
        data = data[: draw.draw(st.integers(0, len(data)))]
        if len(data) >= 28:
            data[24:28] = len(data).to_bytes(4, "big")
    tree = message_tree(bytes(data), _ike_auth()[1])
    check_tree(tree, bytes(data), _ike_auth()[1])
