"""Typed exceptions shared by the whole package."""

from __future__ import annotations


class IpsecLabError(Exception):
    """Base class of every error ipseclab raises on purpose."""


class ParseError(IpsecLabError):
    """Malformed or unsupported wire input.

    ``offset`` is the byte offset (from the start of the buffer handed to the
    decoder) where decoding could not go on; ``reason`` says why in words.
    """

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(f"{reason} (at offset {offset})")
        self.reason = reason
        self.offset = offset


class CryptoError(IpsecLabError):
    """A cryptographic operation failed (unknown transform, bad key size, bad padding)."""


class ConfigError(IpsecLabError):
    """A peer, policy or CLI configuration is inconsistent."""


class NetlabError(IpsecLabError):
    """Building, using or tearing down a network lab (namespaces, veths, nftables) failed."""


class ControlError(IpsecLabError):
    """The peer daemon's control API: a request the daemon refused or did not answer,
    or a daemon that cannot start (sockets it cannot bind)."""
