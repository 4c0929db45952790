"""Fault injectors for the reliability benchmark and the tests: a disk that fills up mid-write, a
folder nobody can write to (root included).

    python -m benchmarks.faults enospc --after 2 -- <run_bench.py arguments>

runs ``run_bench.py`` in this process with ``os.fsync`` failing with ENOSPC ("No space left on
device") on every runs.csv temporary file after the first ``--after`` ones, as a disk that fills up
after two rows were written would.
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator, Optional


@contextlib.contextmanager
def enospc_on_fsync(pattern: str = ".runs.csv.tmp-", after: int = 0) -> Iterator[dict]:
    """``os.fsync`` of a temporary file (made by ``tempfile.mkstemp``) whose name contains ``pattern``
    raises ENOSPC from the ``after + 1``-th such file on, as a full disk does when the data is flushed.
    Yields counters: ``{"synced": n, "raised": n}``."""
    made: dict[int, tuple[str, int]] = {}  # fd -> (name, inode): a reused fd number is told apart
    real_mkstemp, real_fsync = tempfile.mkstemp, os.fsync
    state = {"synced": 0, "raised": 0}

    def mkstemp(*args, **kwargs):
        fd, name = real_mkstemp(*args, **kwargs)
        made[fd] = (name, os.fstat(fd).st_ino)
        return fd, name

    def fsync(fd):
        name, inode = made.get(fd, ("", -1))
        if pattern in os.path.basename(name) and os.fstat(fd).st_ino == inode:
            if state["synced"] >= after:
                state["raised"] += 1
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), name)
            state["synced"] += 1
        return real_fsync(fd)

    tempfile.mkstemp, os.fsync = mkstemp, fsync
    try:
        yield state
    finally:
        tempfile.mkstemp, os.fsync = real_mkstemp, real_fsync


def _writes(folder: Path) -> bool:
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def unwritable_folder(folder: Path) -> Iterator[Optional[str]]:
    """Make the existing ``folder`` unwritable: ``chmod 0o555``, or where that does not stop writes
    (root) ``chattr +i`` (immutable). Yields how (``"chmod"``, ``"chattr"``), or None when neither
    works here; restores the folder afterwards."""
    folder = Path(folder)
    mode = folder.stat().st_mode & 0o777
    folder.chmod(0o555)
    try:
        if not _writes(folder):
            yield "chmod"
            return
        folder.chmod(mode)
        chattr = shutil.which("chattr")
        if chattr and subprocess.run([chattr, "+i", str(folder)], capture_output=True).returncode == 0:
            try:
                if not _writes(folder):
                    yield "chattr"
                    return
            finally:
                subprocess.run([chattr, "-i", str(folder)], capture_output=True)
        yield None
    finally:
        folder.chmod(mode)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ours, rest = (argv[: argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    p = argparse.ArgumentParser(prog="python -m benchmarks.faults")
    p.add_argument("fault", choices=["enospc"])
    p.add_argument("--after", type=int, default=0, help="runs.csv writes that succeed before the disk is full")
    args = p.parse_args(ours)
    from harness.cli import main as run_bench

    with enospc_on_fsync(after=args.after):
        return run_bench(rest)


if __name__ == "__main__":
    sys.exit(main())
