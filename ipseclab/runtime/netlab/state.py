"""The state file of a lab: ``/run/ipseclab/<name>/lab.json``.

It lets another process (``ipseclab lab status``/``down``, a crashed notebook's successor) find
a lab and tear it down: kind, options, hosts and the processes started in it.  Writes are atomic
(temporary file + rename) and read-modify-write updates hold an ``flock`` on ``lab.lock``, so
several processes working in one lab do not lose each other's PIDs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ipseclab.errors import NetlabError

RUN_DIR = Path("/run/ipseclab")
STATE_FILE = "lab.json"
LOCK_FILE = "lab.lock"


def lab_dir(name: str) -> Path:
    """Directory holding a lab's runtime state (removed as a whole when the lab goes down)."""
    return RUN_DIR / name


def claim(name: str) -> Path:
    """Create the lab's state directory; NetlabError if it exists (the name is taken)."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    path = lab_dir(name)
    try:
        path.mkdir(mode=0o700)  # configurations with keys, control sockets, captures: root's only
    except FileExistsError as exc:
        raise NetlabError(
            f"lab {name!r} already exists (state in {path}); "
            f"tear it down first: python -m ipseclab.runtime.netlab down {name}"
        ) from exc
    return path


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    path = lab_dir(name)
    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write(name: str, data: dict[str, Any]) -> None:
    path = lab_dir(name) / STATE_FILE
    tmp = path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def read(name: str) -> dict[str, Any] | None:
    """The lab's state, or None if it has no (readable) state file."""
    try:
        return json.loads((lab_dir(name) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def write(name: str, data: dict[str, Any]) -> None:
    """Replace the state file (under the lock)."""
    with _locked(name):
        _write(name, data)


def update(name: str, change: Callable[[dict[str, Any]], None]) -> None:
    """Read, ``change`` in place, write back, holding the lock; no-op if the lab dir is gone."""
    if not lab_dir(name).is_dir():
        return
    with _locked(name):
        data = read(name) or {}
        change(data)
        _write(name, data)


def remove(name: str) -> None:
    """Remove the lab's whole state directory (idempotent)."""
    shutil.rmtree(lab_dir(name), ignore_errors=True)


def names() -> list[str]:
    """Names of labs that have a state file."""
    try:
        return sorted(p.name for p in RUN_DIR.iterdir() if (p / STATE_FILE).is_file())
    except FileNotFoundError:
        return []
