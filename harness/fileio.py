"""Crash-safe file writes shared by every file the tool writes (runs.csv, predictions, the probe
cache, claims, reports), and the write probe that checks a folder before a study starts.

:func:`atomic_write` writes to a temporary file in the target's folder (``.<name>.tmp-*``), flushes
and fsyncs it, ``os.replace``-s it onto the target and fsyncs the folder: a ``kill -9`` or a full
disk at any instant leaves the old complete file or the new one, never a mix, plus at worst a stray
temporary file that readers never look at and :func:`remove_stale_temps` removes (call it only while
holding the lock that serialises the target's writers).

No torch here: ``harness.results`` imports this module, and it must stay light.
"""
from __future__ import annotations

import errno
import glob
import os
import tempfile
from typing import BinaryIO, Callable, Optional, Union

__all__ = ["atomic_write", "fsync_dir", "temp_prefix", "remove_stale_temps", "probe_writable", "WRITE_ERRNOS",
           "is_write_error"]

#: errno values of a write that cannot succeed by retrying the same run: the study stops cleanly on them.
WRITE_ERRNOS = frozenset(
    e for e in (getattr(errno, n, None) for n in ("ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EFBIG"))
    if e is not None)


def is_write_error(error: BaseException) -> bool:
    """An ``OSError`` that says the output cannot be written (disk full, quota, read-only, permissions)."""
    return isinstance(error, OSError) and error.errno in WRITE_ERRNOS


def fsync_dir(directory: str) -> None:
    """fsync a folder, so that a rename inside it survives a power cut (no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def temp_prefix(path: str) -> str:
    """Prefix of the temporary files of ``path``: ``.<name>.tmp-``."""
    return f".{os.path.basename(path)}.tmp-"


def atomic_write(path: Union[str, os.PathLike], content: Union[bytes, str, Callable[[BinaryIO], None]],
                 mode: Optional[int] = None) -> None:
    """Replace ``path`` with ``content`` (bytes, text written as UTF-8, or a function writing to a
    binary file) atomically: temp file, fsync, ``os.replace``, folder fsync.

    The file keeps the permission bits of the file it replaces (``mode`` when given, else 0o644 for a
    new file). On any error the temporary file is removed and the error is raised; ``path`` is untouched.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), dir=directory)
    try:
        if mode is None:
            try:
                mode = os.stat(path).st_mode & 0o777
            except FileNotFoundError:
                mode = 0o644
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            if callable(content):
                content(fh)
            else:
                fh.write(content.encode("utf-8") if isinstance(content, str) else content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(directory)


def remove_stale_temps(path: Union[str, os.PathLike]) -> int:
    """Remove the temporary files left next to ``path`` by killed writers; returns how many.
    Call only while holding the lock of ``path``'s writers."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    removed = 0
    for tmp in glob.glob(os.path.join(glob.escape(directory), glob.escape(temp_prefix(path)) + "*")):
        try:
            os.unlink(tmp)
            removed += 1
        except OSError:
            pass
    return removed


def probe_writable(directory: Union[str, os.PathLike], size: int = 4096) -> None:
    """Create, fill with ``size`` bytes, fsync and remove a temporary file in ``directory``: raises the
    ``OSError`` a real write would meet. Unlike ``os.access`` this also holds for root (for whom
    permission bits do not count) on a read-only mount, an immutable folder or a full disk."""
    fd, tmp = tempfile.mkstemp(prefix=".sla-bench-write-probe.tmp-", dir=os.fspath(directory))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(b"\0" * size)
            fh.flush()
            os.fsync(fh.fileno())
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
