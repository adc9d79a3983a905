"""The dissection trees' nodes, shared by the IKEv1 and IKEv2 trees (``wire.v1.tree``,
``wire.v2.tree``): ``{"name", "value", "offset", "length", "space", "children"}``, where
``offset``/``length`` cover exactly the field's bytes in the buffer named by ``space``
(``"wire"``: the datagram, ``"plaintext"``: a decrypted body)."""

from __future__ import annotations

from typing import Any

Node = dict[str, Any]


def node(name: str, value: str | None, offset: int, length: int, space: str, children: list[Node] | None = None) -> Node:
    return {"name": name, "value": value, "offset": offset, "length": length, "space": space, "children": children or []}


def blob(data: bytes) -> str:
    """Bytes as the trees show them: hex, or ``<empty>``."""
    return data.hex() if data else "<empty>"


def size(n: int) -> str:
    return f"<{n} bytes>"


class NodeBuilder:
    """Emits nodes for one buffer (``space``); positions are absolute in it."""

    def __init__(self, space: str) -> None:
        self.space = space

    def leaf(self, name: str, value: str | None, offset: int, length: int) -> Node:
        return node(name, value, offset, length, self.space)

    def fields(self, offset: int, specs: list[tuple[str, str | None, int]]) -> list[Node]:
        """Consecutive fields given as (name, value, length) starting at ``offset``."""
        out = []
        for name, value, length in specs:
            out.append(self.leaf(name, value, offset, length))
            offset += length
        return out
