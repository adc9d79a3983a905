"""Writing files that hold secrets or captures, safely on a shared classroom host.

A key table or a capture may be written by root into a directory another user can
write to (``/tmp``, a shared lab folder).  :func:`open_private` never follows a
symbolic link planted at the path (``O_NOFOLLOW``), refuses a file that another user
owns or that has other hard links (truncating it would clobber the file it links to),
and leaves the file mode 0600 whatever the umask.
"""

from __future__ import annotations

import os
import stat
from typing import IO

from ipseclab.errors import IpsecLabError


class UnsafePathError(IpsecLabError):
    """A path where writing would follow a link or touch someone else's file."""


def open_private(path: str | os.PathLike[str], mode: str = "w") -> IO:
    """Open ``path`` for writing (``"w"`` text or ``"wb"`` binary), created 0600, truncated.

    Raises :class:`UnsafePathError` for a symbolic link, a non-regular file, a file owned
    by another user or one with more than one hard link.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if os.path.islink(path):
            raise UnsafePathError(f"{path} is a symbolic link: refusing to write through it") from None
        raise exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePathError(f"{path} is not a regular file: refusing to write to it")
        if st.st_uid != os.geteuid():
            raise UnsafePathError(f"{path} belongs to uid {st.st_uid}, not to us: refusing to overwrite it")
        if st.st_nlink > 1:
            raise UnsafePathError(f"{path} has {st.st_nlink} hard links: refusing to overwrite what it links to")
        os.fchmod(fd, 0o600)
        os.ftruncate(fd, 0)
        return os.fdopen(fd, mode)
    except BaseException:
        os.close(fd)
        raise


def private_directory(path: str | os.PathLike[str]) -> None:
    """Create ``path`` (0700) if missing; refuse a symbolic link someone else planted, or a
    directory of another user's that others may write to."""
    if os.path.islink(path) and os.lstat(path).st_uid != os.geteuid():
        raise UnsafePathError(f"{path} is a symbolic link of uid {os.lstat(path).st_uid}: refusing to write through it")
    os.makedirs(path, mode=0o700, exist_ok=True)
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(f"{path} is not a directory")
    if st.st_uid != os.geteuid() and st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX:
        raise UnsafePathError(f"{path} belongs to uid {st.st_uid} and others may write to it: refusing to write into it")
