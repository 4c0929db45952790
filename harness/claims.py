"""Workers that share a study split it: each pending cell is claimed before it trains.

Several processes started with the same command on one ``--out`` (two terminals, ``sbatch --array``,
``for i in 1 2 3; do run_bench.py ... & done``) each take the next cell that is neither finished nor
claimed, so every cell trains once. The claims live beside ``runs.csv`` in ``runs.csv.claims``, JSON::

    {"<run_id>": {"worker": "<host>:<pid>:<random>", "expires": <unix time>}, ...}

read and written (atomically) under the lock of ``runs.csv``, the same lock its rows are appended
under, so a claim and the rows it checks against are always seen together.

A claim is a lease: it expires ``lease`` seconds after it was taken or last renewed. A worker renews
the claims it holds from a heartbeat thread every ``lease / 4`` seconds while the cell trains, and
drops its claim when the cell's row is written (or the run stops). A worker killed mid-cell leaves
its claim behind: another worker (or the next run) takes the cell again once the lease has expired,
or at once when the claim's worker was a process of this same machine that no longer exists.

No torch here.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, Optional, Sequence

from . import fileio
from .results import ResultsStore

__all__ = ["DEFAULT_LEASE", "Claims", "worker_id"]

#: Seconds a claim lasts without renewal: long enough for a busy filesystem, short enough that a
#: killed worker's cell is retried within minutes.
DEFAULT_LEASE = 300.0

log = logging.getLogger(__name__)


def worker_id() -> str:
    """``host:pid:random``: unique per process, and says where a claim came from."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _process_gone(worker: str) -> bool:
    """True when ``worker`` names a process of this machine that no longer exists."""
    try:
        host, pid, _ = worker.rsplit(":", 2)
        pid = int(pid)
    except ValueError:
        return False
    if host != socket.gethostname() or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by someone else
        return False
    return False


class Claims:
    """The claims of one ``runs.csv``, seen from one worker."""

    def __init__(self, store: ResultsStore, lease: float = DEFAULT_LEASE, worker: Optional[str] = None,
                 clock: Callable[[], float] = time.time):
        self.store = store
        self.path = store.path + ".claims"
        self.lease = float(lease)
        self.worker = worker or worker_id()
        self.clock = clock

    # ------------------------------------------------------------------ the file
    def read(self) -> dict:
        """All claims in the file (expired ones included); ``{}`` when there is none or it is unreadable."""
        try:
            with open(self.path, encoding="utf-8") as fh:
                data = json.load(fh)
        except FileNotFoundError:
            return {}
        except ValueError:
            log.warning("%s is not valid JSON (edited by hand?); its claims are ignored and rewritten", self.path)
            return {}
        if not isinstance(data, dict):
            log.warning("%s does not hold a JSON object of claims; its claims are ignored", self.path)
            return {}
        return {k: v for k, v in data.items()
                if isinstance(v, dict) and isinstance(v.get("worker"), str)
                and isinstance(v.get("expires"), (int, float))}

    def _write(self, claims: dict) -> None:
        """Replace the file (call under the lock); temporary files of killed writers go first."""
        fileio.remove_stale_temps(self.path)
        if claims:
            fileio.atomic_write(self.path, json.dumps(claims, sort_keys=True, indent=0) + "\n")
        elif os.path.exists(self.path):
            os.unlink(self.path)
            fileio.fsync_dir(os.path.dirname(os.path.abspath(self.path)))

    def _live(self, claims: dict, now: float) -> dict:
        live = {}
        for rid, claim in claims.items():
            mine = claim["worker"] == self.worker
            if mine or (claim["expires"] > now and not _process_gone(claim["worker"])):
                live[rid] = claim
            else:
                why = "expired" if claim["expires"] <= now else "its worker's process is gone"
                log.info("claim on run %s by %s %s; the run is free to take again", rid, claim["worker"], why)
        return live

    # ------------------------------------------------------------------ taking, keeping, dropping
    def claim_next(self, candidates: Sequence, finished: Callable[[list], set]) -> tuple[Optional[object], int]:
        """The first of ``candidates`` (objects with a ``run_id``, in order) that is neither in
        ``finished(rows of runs.csv)`` nor held by another live worker, now claimed by this worker;
        and how many unfinished candidates other workers hold. ``(None, n)`` when none is left."""
        with self.store._lock():
            now = self.clock()
            claims = self.read()
            live = self._live(claims, now)
            done = finished(self.store.rows())
            elsewhere, chosen = 0, None
            for cell in candidates:
                if cell.run_id in done:
                    continue
                holder = live.get(cell.run_id)
                if holder is not None and holder["worker"] != self.worker:
                    elsewhere += 1
                    continue
                if chosen is None:
                    chosen = cell
                    live[cell.run_id] = {"worker": self.worker, "expires": now + self.lease}
            if chosen is not None or live != claims:
                self._write(live)
        return chosen, elsewhere

    def renew(self, run_ids: Iterable[str]) -> None:
        """Push the expiry of these claims of this worker ``lease`` seconds ahead."""
        with self.store._lock():
            now = self.clock()
            claims = self.read()
            for rid in run_ids:
                claim = claims.get(rid)
                if claim is not None and claim["worker"] != self.worker and claim["expires"] > now:
                    log.warning("run %s: this worker's claim lapsed and %s holds it now; both may write a row "
                                "(the report keeps one)", rid, claim["worker"])
                    continue
                claims[rid] = {"worker": self.worker, "expires": now + self.lease}
            self._write(claims)

    def release(self, run_id: str) -> None:
        """Drop this worker's claim on ``run_id`` (its row is written, or the run stopped)."""
        with self.store._lock():
            claims = self.read()
            claim = claims.get(run_id)
            if claim is not None and claim["worker"] == self.worker:
                del claims[run_id]
                self._write(claims)

    @contextmanager
    def held(self, run_id: str) -> Iterator[None]:
        """Keep the claim on ``run_id`` alive while the block runs (a heartbeat thread renews it every
        ``lease / 4`` s), and drop it afterwards, whether the block finished or raised."""
        stop = threading.Event()

        def beat():
            while not stop.wait(self.lease / 4):
                try:
                    self.renew([run_id])
                except Exception as error:  # a full disk must not kill the training thread; the row write reports it
                    log.warning("could not renew the claim on run %s: %s", run_id, error)

        thread = threading.Thread(target=beat, name=f"claim-{run_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            try:
                self.release(run_id)
            except OSError as error:  # the claim then expires by itself
                log.warning("could not drop the claim on run %s: %s", run_id, error)
