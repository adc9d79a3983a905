"""The plan of a lab: lab names, namespace names and the hosts and links a topology is made of.

Pure data (no kernel calls), shared by :mod:`ipseclab.runtime.netlab.topology` and the code that reads
``lab.json`` back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ipseclab.errors import NetlabError

PREFIX = "ipl-"
ROLES = ("left", "right", "router")
MAX_NAME = 10  # "ipl" + name + "0a" must fit IFNAMSIZ (15 characters)
_NAME_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
NETNS_RE = re.compile(rf"{PREFIX}([a-z0-9-]+)-({'|'.join(ROLES)})")

LEFT_PROTECTED = ("10.1.0.1", "10.1.1.1", "10.1.2.1")
RIGHT_PROTECTED = ("10.2.0.1", "10.2.1.1", "10.2.2.1")
LEFT_PROTECTED_NET = "10.1.0.0/16"
RIGHT_PROTECTED_NET = "10.2.0.0/16"


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid lab name, else raise NetlabError.

    1 to 10 characters of ``[a-z0-9-]``, not starting or ending with ``-``.
    """
    if not isinstance(name, str) or not name or len(name) > MAX_NAME or not _NAME_RE.fullmatch(name):
        raise NetlabError(
            f"invalid lab name {name!r}: use 1-{MAX_NAME} characters a-z, 0-9 and '-' "
            "(not first or last), so interface names fit the kernel's 15-character limit"
        )
    return name


def netns_name(lab: str, role: str) -> str:
    """The namespace of ``role`` in lab ``lab``: ``ipl-<lab>-<role>``."""
    return f"{PREFIX}{lab}-{role}"


@dataclass(frozen=True)
class Host:
    """One namespace of a lab, as the IPsec peers and the charon harness see it.

    ``address`` is the outer (IKE) address; ``protected`` are /32 addresses on ``lo``;
    ``interface`` is the veth the host talks through (the router: its outside veth);
    ``links`` lists every veth as ``(ifname, "address/prefix")``; ``routes`` the plain routes
    installed at ``up`` as ``(destination, via)`` (besides the default route via ``gateway``).
    """

    role: str
    netns: str
    address: str
    protected: tuple[str, ...]
    interface: str
    gateway: str | None
    links: tuple[tuple[str, str], ...] = ()
    routes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Link:
    """A veth pair: end ``a`` in host ``a_role`` as ``a_if`` with ``a_cidr``, likewise ``b``."""

    index: int
    a_role: str
    a_if: str
    a_cidr: str
    b_role: str
    b_if: str
    b_cidr: str

    def temp_names(self, lab: str) -> tuple[str, str]:
        """Unique names for the two ends while they are still in the root namespace."""
        return (f"ipl{lab}{self.index}a", f"ipl{lab}{self.index}b")

    def ends(self) -> tuple[tuple[str, str, str], tuple[str, str, str]]:
        return ((self.a_role, self.a_if, self.a_cidr), (self.b_role, self.b_if, self.b_cidr))


@dataclass(frozen=True)
class Nat:
    """Masquerade traffic from ``inside`` (CIDR) leaving ``router`` by ``outside_if``."""

    router: str
    inside: str
    outside_if: str
    port_remap: bool = False
