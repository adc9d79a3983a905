"""Helpers every wire test uses, for both IKE versions: walking and checking dissection
trees, and the Hypothesis mutations of valid encodings."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

Node = dict[str, Any]


def walk(node: Node) -> list[Node]:
    out = [node]
    for child in node["children"]:
        out.extend(walk(child))
    return out


def find(tree: Node, name: str) -> list[Node]:
    return [n for n in walk(tree) if n["name"] == name]


def check_tree(tree: Node, wire: bytes, plaintext: bytes | None = None) -> None:
    """Keys, bounds, and children tiling their parent exactly (same space)."""
    json.dumps(tree)
    sizes = {"wire": len(wire), "plaintext": len(plaintext) if plaintext is not None else -1}
    for node in walk(tree):
        assert set(node) == {"name", "value", "offset", "length", "space", "children"}
        assert isinstance(node["name"], str)
        assert node["value"] is None or isinstance(node["value"], str)
        assert node["offset"] >= 0 and node["length"] >= 0
        assert node["offset"] + node["length"] <= sizes[node["space"]], node
        assert not str(node["value"]).startswith("internal error"), node
    for node in walk(tree)[1:]:
        kids = node["children"]
        if not kids:
            continue
        pos = node["offset"]
        for kid in kids:
            assert kid["space"] == node["space"]
            assert kid["offset"] == pos, (node["name"], kid)
            pos += kid["length"]
        assert pos == node["offset"] + node["length"], node["name"]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A valid encoding with a few random mutations applied."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["truncate", "flip", "byte", "word", "insert", "delete"]))
        if kind == "truncate":
            del data[pos:]
        elif kind == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte":
            data[pos] = draw(st.integers(0, 255))
        elif kind == "word":
            data[pos : pos + 2] = draw(st.integers(0, 0xFFFF)).to_bytes(2, "big")
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[pos : pos + draw(st.integers(1, 8))]
    return bytes(data)


@st.composite
def mutated_message(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A mutated valid message whose header Length is usually fixed up, so that
    the mutation reaches the payload parsers instead of the length check."""
    data = bytearray(draw(mutated(seeds)))
    if len(data) >= 28 and draw(st.integers(0, 3)):
        data[24:28] = len(data).to_bytes(4, "big")
    return bytes(data)
