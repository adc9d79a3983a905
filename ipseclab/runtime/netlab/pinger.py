"""``ping`` (Debian's iputils) between two lab addresses, with its summary parsed.

Used to prove a tunnel carries traffic: ``ping -I <protected source> <protected destination>``
inside a lab host, so the echo requests take the route into the TUN device (ours ``ipl0`` or
charon's ``ipsec0``) and the replies come back through the peer's::

    stats = ping(topo, "left", "10.1.0.1", "10.2.0.1", count=5)
    stats.lost, stats.rtt_avg_ms
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ipseclab.errors import IpsecLabError

if TYPE_CHECKING:
    from ipseclab.runtime.netlab.topology import Topology

_SUMMARY = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")
_RTT = re.compile(r"= ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms")


@dataclass
class PingStats:
    """What ``ping`` reported: counts, round-trip times (ms) and its output lines."""

    src: str
    dst: str
    sent: int = 0
    received: int = 0
    rtt_min_ms: float | None = None
    rtt_avg_ms: float | None = None
    rtt_max_ms: float | None = None
    lines: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.sent - self.received


def ping_available() -> str | None:
    """None if ``ping`` is installed, else the reason."""
    return None if shutil.which("ping") else "ping is not installed (Debian: apt-get install iputils-ping)"


def parse(output: str, src: str, dst: str, count: int) -> PingStats:
    """Counts and RTTs from iputils ``ping`` output (no summary: nothing received)."""
    stats = PingStats(src, dst, sent=count, lines=[line for line in output.splitlines() if line.strip()])
    found = _SUMMARY.search(output)
    if found:
        stats.sent, stats.received = int(found.group(1)), int(found.group(2))
    rtt = _RTT.search(output)
    if rtt:
        stats.rtt_min_ms, stats.rtt_avg_ms, stats.rtt_max_ms = (float(rtt.group(i)) for i in (1, 2, 3))
    return stats


def ping(
    topo: Topology,
    role: str,
    src: str,
    dst: str,
    count: int = 5,
    *,
    interval: float = 0.1,
    wait: float = 2.0,
    size: int = 56,
) -> PingStats:
    """``ping -n -c count -i interval -W wait -s size -I src dst`` inside ``role``'s namespace
    (``-q`` above 20 pings).  An interval below 0.2 s needs root, as the lab does anyway."""
    quiet = ["-q"] if count > 20 else []  # long runs: the summary only
    argv = ["ping", "-n", *quiet, "-c", str(count), "-i", f"{interval:g}", "-W", f"{wait:g}", "-s", str(size), "-I", src, dst]
    try:
        done = topo.run(role, argv, capture_output=True, text=True, timeout=count * interval + wait + 20)
        output = done.stdout + done.stderr
    except (OSError, subprocess.TimeoutExpired, IpsecLabError) as exc:
        output = f"ping failed: {exc}"
    return parse(output, src, dst, count)
