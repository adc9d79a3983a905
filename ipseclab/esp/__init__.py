"""Userspace ESP data plane (RFC 4303, RFC 4106, RFC 3948).

* :mod:`ipseclab.esp.sa` — :class:`EspSa`, one direction of an SA: ``protect`` / ``unprotect``.
* :mod:`ipseclab.esp.replay` — the anti-replay window (RFC 4303 §3.4.3, Appendix A).
* :mod:`ipseclab.esp.packet` — IPv4/IPv6 header work on raw bytes: tunnel and transport
  mode, UDP encapsulation (RFC 3948), checksums.
* :mod:`ipseclab.esp.dataplane` — :class:`DataPlane`, the sans-I/O SAD + SPD.
* :mod:`ipseclab.esp.inspect` — an ESP packet taken apart for trace events and notebooks.
"""

from ipseclab.esp.errors import (
    DROP_REASONS,
    EspConfigError,
    EspDrop,
    EspError,
    EspLifetimeExpired,
    EspSeqOverflow,
)
from ipseclab.esp.replay import ReplayWindow
from ipseclab.esp.sa import EspCounters, EspLifetime, EspSa

__all__ = [
    "DROP_REASONS",
    "EspConfigError",
    "EspCounters",
    "EspDrop",
    "EspError",
    "EspLifetime",
    "EspLifetimeExpired",
    "EspSa",
    "EspSeqOverflow",
    "ReplayWindow",
]
