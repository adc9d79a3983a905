"""Payload tree for teaching views (ipseclab.wire.v1.tree)."""

from __future__ import annotations

from test_wire_isakmp import INFORMATIONAL, MAIN_MODE_1, sample_messages
from wire_support import check_tree, find

from ipseclab.wire.v1.constants import HeaderFlag, PayloadType
from ipseclab.wire.v1.isakmp import HashPayload, Message, NoncePayload, encode_payloads
from ipseclab.wire.v1.tree import message_tree


def test_main_mode_tree() -> None:
    tree = message_tree(MAIN_MODE_1)
    check_tree(tree, MAIN_MODE_1)
    header = tree["children"][0]
    fields = {c["name"]: c["value"] for c in header["children"]}
    assert fields == {
        "Initiator cookie": "0001020304050607",
        "Responder cookie": "0000000000000000",
        "Next payload": "SA (1)",
        "Version": "1.0",
        "Exchange type": "MAIN (2)",
        "Flags": "none (0)",
        "Message ID": "0x00000000",
        "Length": "108",
    }
    names = [c["name"] for c in tree["children"]]
    assert names == ["Header", "Security Association", "Vendor ID"]
    assert tree["children"][2]["value"] == "RFC 3947 NAT-T"
    enc = find(tree, "Encryption Algorithm")[0]
    assert enc["value"] == "AES-CBC (7)"
    assert MAIN_MODE_1[enc["offset"] : enc["offset"] + enc["length"]] == bytes.fromhex("80010007")
    life = find(tree, "Life Duration")[0]
    assert life["value"] == "86400"
    assert MAIN_MODE_1[life["offset"] : life["offset"] + life["length"]] == bytes.fromhex(
        "000c000400015180"
    )
    transform = find(tree, "Transform #1")[0]
    assert transform["value"] == "KEY_IKE (1)" and (transform["offset"], transform["length"]) == (
        48,
        40,
    )


def test_all_samples_tree_invariants() -> None:
    for msg in sample_messages():
        data = msg.encode()
        tree = message_tree(data)
        check_tree(tree, data)
        assert not find(tree, "Malformed")
        if not msg.flags & HeaderFlag.ENCRYPTION:
            assert len(tree["children"]) == 1 + len(msg.payloads)


def test_informational_tree() -> None:
    tree = message_tree(INFORMATIONAL)
    check_tree(tree, INFORMATIONAL)
    notify = tree["children"][1]
    assert (notify["name"], notify["value"]) == ("Notification", "INITIAL_CONTACT (24578)")
    spis = find(tree, "SPI")
    assert [s["value"] for s in spis][-2:] == ["c0010203", "c0010204"]


def test_encrypted_without_plaintext() -> None:
    msg = Message(
        b"i" * 8,
        b"r" * 8,
        2,
        flags=HeaderFlag.ENCRYPTION,
        encrypted_body=bytes(32),
        first_payload=PayloadType.HASH,
    )
    data = msg.encode()
    tree = message_tree(data)
    check_tree(tree, data)
    enc = tree["children"][1]
    assert (enc["name"], enc["value"], enc["offset"], enc["length"]) == (
        "Encrypted payloads",
        "<32 bytes>",
        28,
        32,
    )
    assert len(tree["children"]) == 2


def test_encrypted_with_plaintext() -> None:
    first, chain = encode_payloads([HashPayload(b"h" * 20), NoncePayload(b"n" * 16)])
    plaintext = chain + bytes(3) + b"\x03"
    msg = Message(
        b"i" * 8,
        b"r" * 8,
        32,
        flags=1,
        message_id=5,
        encrypted_body=bytes(len(plaintext)),
        first_payload=first,
    )
    data = msg.encode()
    tree = message_tree(data, plaintext)
    check_tree(tree, data, plaintext)
    names = [(c["name"], c["space"]) for c in tree["children"]]
    assert names == [
        ("Header", "wire"),
        ("Encrypted payloads", "wire"),
        ("Hash", "plaintext"),
        ("Nonce", "plaintext"),
        ("Padding", "plaintext"),
    ]
    assert tree["children"][2]["offset"] == 0
    assert tree["children"][4]["offset"] == len(chain)


def test_malformed_nodes() -> None:
    tree = message_tree(MAIN_MODE_1[:20])
    assert [c["name"] for c in tree["children"]] == ["Malformed"]
    bad = MAIN_MODE_1[:47] + b"\x05" + MAIN_MODE_1[48:]  # transform count 5
    tree = message_tree(bad)
    check_tree(tree, bad)
    last = tree["children"][-1]
    assert last["name"] == "Malformed" and "announces 5 transforms" in last["value"]
    assert last["offset"] == 47
    tree = message_tree(MAIN_MODE_1 + b"xx")
    check_tree(tree, MAIN_MODE_1 + b"xx")
    assert tree["children"][-1]["name"] == "Ignored bytes"



def test_attribute_payload_tree() -> None:
    """draft-dukes-ike-mode-cfg §3.2: type, identifier, each attribute over its own bytes, values in words."""
    from ipseclab.wire.v1.constants import CfgAttribute, CfgType, ExchangeType
    from ipseclab.wire.v1.isakmp import Attribute, AttributePayload

    attr = AttributePayload(CfgType.REPLY, 7, [Attribute(CfgAttribute.INTERNAL_IP4_ADDRESS, bytes([10, 3, 0, 1])),
                                               Attribute(CfgAttribute.XAUTH_USER_PASSWORD, b"secret"),
                                               Attribute(CfgAttribute.XAUTH_STATUS, 1)])
    msg = Message(bytes(range(8)), bytes(8), ExchangeType.TRANSACTION, message_id=5, payloads=[HashPayload(b"\x11" * 20), attr])
    data = msg.encode()
    tree = message_tree(data)
    check_tree(tree, data)
    node = find(tree, "Attribute")[0]
    assert node["value"] == "REPLY (2), 3 attribute(s)"
    assert find(node, "INTERNAL_IP4_ADDRESS (1)")[0]["value"] == "10.3.0.1"
    assert "secret" not in str(find(node, "XAUTH_USER_PASSWORD (16522)")[0]["value"])  # the length, not the password
    assert find(node, "XAUTH_STATUS (16527)")[0]["value"] == "1 (OK)"
