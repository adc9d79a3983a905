"""Packet captures with tcpdump inside a lab namespace.

tcpdump runs with ``--immediate-mode -U`` (without immediate mode a quick stop loses buffered
packets) and ``-Z root`` (so it can write where root can).  :meth:`Capture.stop` first asks
tcpdump for its counters (SIGUSR1) until it has written everything the kernel handed it, then
sends SIGINT: tcpdump does not drain its ring buffer on SIGINT.  :meth:`Topology.capture
<ipseclab.runtime.netlab.topology.Topology.capture>` starts it and returns only once tcpdump reports
that it is listening, so no packet sent afterwards is missed.
"""

from __future__ import annotations

import re
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

from ipseclab.errors import NetlabError

# tcpdump's counters: one line on SIGUSR1, three lines when it exits
_STATS = re.compile(
    rb"(\d+) packets? captured[,\s]+(\d+) packets? received by filter[,\s]+"
    rb"(\d+) packets? dropped by kernel"
)


def tcpdump_argv(interface: str, path: Path, bpf_filter: str | None = None) -> list[str]:
    """The tcpdump command line for a capture of ``interface`` into ``path``."""
    binary = shutil.which("tcpdump") or shutil.which("tcpdump", path="/usr/sbin:/sbin")
    if binary is None:
        raise NetlabError("tcpdump is missing (Debian: apt-get install tcpdump)")
    argv = [binary, "--immediate-mode", "-U", "-n", "-Z", "root", "-i", interface, "-w", str(path)]
    if bpf_filter:
        argv.append(bpf_filter)
    return argv


class Capture:
    """A running tcpdump; :meth:`stop` ends it cleanly (SIGINT) and returns the pcap path.

    After :meth:`stop`, :attr:`packets` holds tcpdump's own count of captured packets.
    Usable as a context manager (stops on exit).
    """

    def __init__(self, process: subprocess.Popen[bytes], path: Path, role: str, interface: str) -> None:
        self.process = process
        self.path = path
        self.role = role
        self.interface = interface
        self.packets: int | None = None
        self._stderr = b""

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def _read(self, until: re.Pattern[bytes], start: int, timeout: float) -> re.Match[bytes] | None:
        """Read tcpdump's stderr until ``until`` matches after offset ``start`` (or time out).

        Returns the match, or None on timeout or when tcpdump exits.
        """
        assert self.process.stderr is not None
        fd = self.process.stderr.fileno()
        deadline = time.monotonic() + timeout
        while (match := until.search(self._stderr, start)) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = self.process.stderr.read1(4096)  # type: ignore[attr-defined]
                if not chunk:
                    return None
                self._stderr += chunk
        return match

    def wait_ready(self, timeout: float = 5.0) -> None:
        """Block until tcpdump says ``listening on``; NetlabError if it exits or times out."""
        if self._read(re.compile(rb"listening on"), 0, timeout) is None:
            self._kill()
            raise NetlabError(
                f"tcpdump on {self.role}:{self.interface} did not start: "
                f"{self.output.strip() or f'nothing within {timeout} s'}"
            )

    def _kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def drain(self, timeout: float = 2.0) -> bool:
        """Wait until tcpdump has written every packet the kernel queued for it.

        Asks tcpdump for its counters (SIGUSR1) until "captured" (+ "dropped") reaches
        "received by filter".  Needed because on SIGINT tcpdump exits without reading what is
        still in its ring buffer, which loses the last packets on a busy machine.  Returns
        False if that did not happen within ``timeout``.
        """
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            start = len(self._stderr)
            self.process.send_signal(signal.SIGUSR1)
            match = self._read(_STATS, start, max(0.0, deadline - time.monotonic()))
            if match is None:
                return False
            captured, received, dropped = (int(x) for x in match.groups())
            if captured + dropped >= received:
                return True
            time.sleep(0.01)
        return False

    def stop(self, timeout: float = 5.0) -> Path:
        """Let tcpdump catch up (:meth:`drain`), SIGINT it, wait until it has exited, and
        return the capture file's path."""
        if self.process.poll() is None:
            self.drain(min(timeout, 2.0))
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            _, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            err = b""
        except ValueError:  # stderr already closed by an earlier stop()
            err = b""
        self._stderr += err or b""
        matches = list(_STATS.finditer(self._stderr))
        if matches:
            self.packets = int(matches[-1].group(1))
        return self.path

    @property
    def output(self) -> str:
        """What tcpdump printed on stderr so far."""
        return self._stderr.decode(errors="replace")

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else f"stopped, {self.packets} packets"
        return f"<Capture {self.role}:{self.interface} -> {self.path} ({state})>"
