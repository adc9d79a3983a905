"""Network namespaces and the processes that run inside them.

Low-level helpers shared by :mod:`ipseclab.runtime.netlab.topology` and
:mod:`ipseclab.runtime.netlab.capture`:

* entering a namespace: :func:`netns_preexec` (for a child process, called between ``fork`` and
  ``exec``) and :func:`in_netns` (for the calling *thread* only);
* identifying processes robustly: a PID plus its kernel start time (field 22 of
  ``/proc/PID/stat``), so a recycled PID is never mistaken for ours;
* stopping processes by PID only: :func:`terminate` (SIGTERM, grace period, SIGKILL) and
  :func:`pids_in_netns` (which processes still sit in a namespace).

Everything here talks to the kernel through pyroute2 and ``/proc``; nothing shells out to ``ip``.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from pyroute2 import netns as _netns

from ipseclab.errors import NetlabError

NETNS_DIR = "/var/run/netns"
T = TypeVar("T")


def netns_path(name: str) -> str:
    """The bind-mount path of a named namespace (what ``ip netns`` uses too)."""
    return os.path.join(NETNS_DIR, name)


def netns_exists(name: str) -> bool:
    """True if the named namespace exists."""
    return name in _netns.listnetns()


def netns_inode(name: str) -> tuple[int, int] | None:
    """(device, inode) identifying a named namespace, or None if it is gone."""
    try:
        st = os.stat(netns_path(name))
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


# Loaded once in the parent: a pre-exec hook must not look libc up (find_library runs ldconfig).
_LIBC = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


# The namespace this process started in ("the root namespace" of the lab's view).
_HOME_NETNS = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)


def _setns_fd(fd: int) -> None:
    _netns.setns(fd, flags=0, libc=_LIBC)


def netns_preexec(name: str) -> tuple[int, Callable[[], None]]:
    """Open namespace ``name`` now and return ``(fd, preexec)`` for :class:`subprocess.Popen`.

    ``preexec`` runs in the child after ``fork`` and moves it into the namespace with ``setns``
    (pyroute2), so ``exec`` starts the program inside.  The fd is opened in the parent (close-on-
    exec) so the child does as little as possible; the caller closes it after ``Popen`` returns.
    """
    try:
        fd = os.open(netns_path(name), os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise NetlabError(f"network namespace {name!r} does not exist ({exc.strerror})") from exc

    def preexec() -> None:
        _setns_fd(fd)

    return fd, preexec


@contextlib.contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Move the *calling thread* into namespace ``name`` for the ``with`` block.

    Only this thread changes namespace (``setns`` is per thread); other threads and the rest of
    the process stay where they are.  Sockets created inside the block stay bound to the
    namespace after it ends.  Do not ``await`` inside the block: another task could run on this
    thread while it is in the namespace.
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            target = os.open(netns_path(name), os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise NetlabError(f"network namespace {name!r} does not exist ({exc.strerror})") from exc
        try:
            _setns_fd(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns_fd(own)
    finally:
        os.close(own)


def run_in_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a fresh thread and return its result (or raise its exception).

    pyroute2's synchronous API runs its own asyncio loop and refuses to work on a thread whose
    loop is already running (a Jupyter kernel's main thread).  The thread starts in the
    namespace the process had when this module was imported, even if the caller is inside an
    :func:`in_netns` block.  A Ctrl+C while waiting does not
    abandon ``fn`` half way: the wait goes on until ``fn`` ends, then KeyboardInterrupt is raised.
    """
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            box["error"] = exc

    def in_home_netns() -> None:
        # a new thread inherits its creator's namespace: leave any in_netns() block behind
        _setns_fd(_HOME_NETNS)
        target()

    thread = threading.Thread(target=in_home_netns, name="ipseclab-netlab", daemon=True)
    thread.start()
    interrupted: KeyboardInterrupt | None = None
    while thread.is_alive():
        try:
            thread.join()
        except KeyboardInterrupt as exc:
            interrupted = exc
    if "error" in box:
        error = box["error"]
        assert isinstance(error, BaseException)
        if interrupted is not None:
            raise interrupted from error
        raise error
    if interrupted is not None:
        raise interrupted
    return box.get("result")  # type: ignore[return-value]


def write_sysctl(key: str, value: str) -> bool:
    """Write ``/proc/sys/<key>`` (dots become slashes) in the calling thread's namespace.

    Returns False when the key does not exist (e.g. IPv6 compiled out), True when written.
    """
    path = "/proc/sys/" + key.replace(".", "/")
    try:
        with open(path, "w") as f:
            f.write(value)
    except FileNotFoundError:
        return False
    return True


# -- process identity ---------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    # comm (field 2) is in parentheses and may contain spaces: split after the last ')'
    return data[data.rfind(")") + 2 :].split()


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if there is no such process."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def is_running(pid: int, started: int | None = None) -> bool:
    """True if ``pid`` exists, is not a zombie and (if given) started at ``started``."""
    fields = _stat_fields(pid)
    if not fields or fields[0] in ("Z", "X"):
        return False
    return started is None or int(fields[19]) == started


def cmdline(pid: int) -> list[str]:
    """The argv of a running process ([] if gone or a kernel thread)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def pids_in_netns(names: Iterable[str]) -> list[int]:
    """PIDs (other than our own) whose network namespace is one of the named ones."""
    inodes = {ino for name in names if (ino := netns_inode(name)) is not None}
    if not inodes:
        return []
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in inodes and is_running(int(entry)):
            found.append(int(entry))
    return sorted(found)


def terminate(pids: Iterable[tuple[int, int | None]], grace: float = 3.0) -> list[int]:
    """Stop processes given as ``(pid, start_time)``: SIGTERM, wait ``grace`` s, then SIGKILL.

    A PID whose start time no longer matches (the process ended and the PID was reused) is left
    alone.  Returns the PIDs that were signalled.  Children of this process must still be reaped
    by the caller (``Popen.wait``); zombies count as stopped.
    """
    targets = [(pid, started) for pid, started in pids if is_running(pid, started)]
    for pid, _ in targets:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(is_running(p, s) for p, s in targets):
        time.sleep(0.02)
    for pid, started in targets:
        if is_running(pid, started):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and any(is_running(p, s) for p, s in targets):
        time.sleep(0.02)
    return [pid for pid, _ in targets]
