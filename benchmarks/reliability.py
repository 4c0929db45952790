"""Reliability benchmark: faults injected into real studies, and the figures that say what survived.

    python -m benchmarks.reliability --out results/reliability          # every section, a few minutes on 2 CPUs
    python -m benchmarks.reliability --sections kill --kills 40 --workers 4

Every study is the same tiny grid (tiny-bert on toy-sentiment, heads native, mean, sla-2:d=16, 6 seeds:
18 cells of 8 steps), run by ``run_bench.py`` processes exactly as a user starts them. A clean run
with one worker is the reference; every faulty study must end with the reference's rows: the same
run_ids, each once, with the same score and metrics.

Sections (``--sections``, comma-separated):

kill        ``--workers`` processes (3) start the same command on one folder; at random instants
            spread over the grid (each kill waits until a random number of rows, 0 to 17, is written and
            a worker is training, then 0-2.5 s more) one of them gets ``kill -9`` (a random worker
            training a cell; one time in four any worker: starting up, between cells, appending) and a
            new worker replaces it, until ``--kills`` (20) kills have landed. After every kill ``runs.csv`` is parsed (whole rows only, no run_id twice, no row
            lost). Then the folder is resumed (the live workers finish, one more runs to the end) and
            compared with the reference: lost, duplicated, corrupt rows and differing scores counted.
            When a grid finishes before all kills have landed, the next round starts in a new folder.
enospc      the disk fills up mid-study. Injected: ``os.fsync`` of runs.csv's temporary file fails with
            ENOSPC after 2 appends (``python -m benchmarks.faults``). Real, where this process may
            mount one (root): a 3 MiB tmpfs that a filler file fills once 3 rows are written. Either
            way the worker must exit 3 with a message, leave the rows written intact and no temporary
            file, and the same command must then finish the grid with the reference's scores.
unwritable  an --out (or --cache-dir) that cannot be used: a file, a folder under a file, a read-only
            folder and one inside it (chmod 0o555, or ``chattr +i`` as root), a system folder (/sys),
            an immutable lock file, a read-only probe cache. Each must exit 2 with a message before
            any training, and leave the folder as it was.
cache       probe mode; an entry of the feature cache is damaged three ways (a flipped byte, cut in
            half, another key's entry renamed over it). The next study must say so, recompute it and
            score exactly as the study that made the entry.
bad-inputs  every bad input the test suite knows (the tests marked ``bad_input``), run through pytest:
            each must exit 2 with its message and write nothing. Counted.

Writes ``OUT/reliability.json`` (every figure), ``OUT/reliability.md`` (the table) and
``OUT/README.md`` (the command and how to read the table). The studies themselves run in a temporary
folder that is removed afterwards.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SECTIONS = ("kill", "enospc", "unwritable", "cache", "bad-inputs")
GRID = ["--tasks", "toy-sentiment", "--models", "tiny-bert", "--heads", "native,mean,sla-2:d=16", "--seeds", "6",
        "--max-train-samples", "64", "--max-eval-samples", "40", "--max-steps", "8", "--batch-size", "16"]
CELLS = 18
PROBE = ["--tasks", "toy-sentiment", "--models", "tiny-bert", "--heads", "native,sla-2:d=16", "--seeds", "2",
         "--max-train-samples", "64", "--max-eval-samples", "40", "--max-steps", "4", "--batch-size", "16",
         "--mode", "probe"]


def _env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
            "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def _worker(out: Path, log: Path, *prefix: str, extra=()) -> subprocess.Popen:
    command = [sys.executable, *prefix] if prefix else [sys.executable, str(ROOT / "run_bench.py")]
    handle = open(log, "ab")
    try:
        return subprocess.Popen([*command, *GRID, "--out", str(out), "-q", *extra], cwd=ROOT, env=_env(),
                                stdout=handle, stderr=handle)
    finally:
        handle.close()


def _run(out: Path, log: Path, *prefix: str, timeout: float = 900) -> int:
    proc = _worker(out, log, *prefix)
    return proc.wait(timeout=timeout)


# ---------------------------------------------------------------- reading a study's folder

def read_rows(out: Path) -> tuple[Optional[list], str]:
    """(rows, "") when runs.csv parses as whole rows of our schema; (None, why) when not."""
    from harness import results

    path = out / "runs.csv"
    if not path.exists():
        return [], ""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            records = list(csv.reader(handle))
        if records and (records[0] != results.COLUMNS or any(len(r) != len(results.COLUMNS) for r in records[1:])):
            return None, "a partial row or a wrong header"
        return results.ResultsStore(path).rows(), ""
    except (ValueError, csv.Error, OSError) as error:
        return None, str(error)[:200]


def compare(rows: list, reference: dict) -> dict:
    """Lost, duplicated, extra and differing rows of a finished study against the reference."""
    ids = [r["run_id"] for r in rows]
    by_id = {r["run_id"]: r for r in rows}
    ok = {rid for rid, r in by_id.items() if r["status"] == "ok"}
    differ = sum(1 for rid in set(reference) & set(by_id)
                 if (by_id[rid]["score"], by_id[rid]["metrics"]) != reference[rid])
    return {"rows": len(rows), "lost": len(set(reference) - ok), "duplicated": len(ids) - len(set(ids)),
            "extra": len(set(by_id) - set(reference)), "scores_differ": differ,
            "failed": sum(1 for r in rows if r["status"] != "ok")}


def _leftovers(out: Path) -> dict:
    temps = sorted(str(p.relative_to(out)) for p in out.rglob("*") if ".tmp-" in p.name)
    claims = out / "runs.csv.claims"
    held = len(json.loads(claims.read_text())) if claims.exists() else 0
    return {"temp_files": len(temps), "temp_names": temps, "claims_left": held}


def _claimants(out: Path) -> set:
    """pids of this machine's workers that hold a claim now."""
    try:
        claims = json.loads((out / "runs.csv.claims").read_text())
    except (OSError, ValueError):
        return set()
    host = socket.gethostname()
    pids = set()
    for claim in claims.values():
        name, _, rest = claim.get("worker", "").partition(":")
        if name == host:
            pids.add(int(rest.split(":")[0]))
    return pids


# ---------------------------------------------------------------- sections

def reference(work: Path) -> dict:
    out = work / "reference"
    code = _run(out, work / "reference.log")
    rows, why = read_rows(out)
    if code != 0 or rows is None or len(rows) != CELLS:
        raise SystemExit(f"the clean reference run failed (exit {code}, {why}); see {work / 'reference.log'}")
    return {r["run_id"]: (r["score"], r["metrics"]) for r in rows}


def section_kill(work: Path, ref: dict, kills_wanted: int, workers: int, rng: random.Random) -> dict:
    kills, checks, corrupt, lost_between, rounds = [], 0, 0, 0, []
    folder_index = 0
    while len(kills) < kills_wanted:
        folder_index += 1
        out = work / f"kill-{folder_index}"
        log = work / f"kill-{folder_index}.log"
        live = [_worker(out, log) for _ in range(workers)]
        last_count = 0
        # spread over the grid: each kill waits for a random number of rows to be written first
        targets = sorted(rng.randrange(CELLS) for _ in range(kills_wanted - len(kills)))
        for target in targets:
            live = [p for p in live if p.poll() is None]
            deadline = time.monotonic() + 600
            while any(p.poll() is None for p in live) and time.monotonic() < deadline and (
                    len(read_rows(out)[0] or []) < target
                    or not _claimants(out) & {p.pid for p in live if p.poll() is None}):
                time.sleep(0.05)  # until the grid is that far and a live worker trains a cell
            time.sleep(rng.uniform(0.0, 2.5))
            live = [p for p in live if p.poll() is None]
            if not live:
                break  # the grid is done in this folder: the kills left go to the next round
            training = [p for p in live if p.pid in _claimants(out)]
            # mostly a worker training a cell; one time in four any worker (start-up, between cells, appending)
            victim = rng.choice(training if training and rng.random() >= 0.25 else live)
            mid_cell = victim.pid in _claimants(out)
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            rows, why = read_rows(out)
            checks += 1
            if rows is None:
                corrupt += 1
                rows = []
            count = len(rows)
            lost_between += count < last_count
            last_count = max(last_count, count)
            kills.append({"round": folder_index, "rows_when_killed": count, "mid_cell": mid_cell})
            live.remove(victim)
            live.append(_worker(out, log))
        for proc in live:  # resume: the workers still alive finish, and one more runs to the end
            proc.wait(timeout=900)
        code = _run(out, log)
        rows, why = read_rows(out)
        if rows is None:
            corrupt += 1
            rows = []
        rounds.append({"folder": out.name, "resume_exit": code, **compare(rows, ref), **_leftovers(out)})
    total = {k: sum(r[k] for r in rounds) for k in ("rows", "lost", "duplicated", "extra", "scores_differ",
                                                   "failed", "temp_files", "claims_left")}
    return {"workers": workers, "kills": len(kills), "kills_mid_cell": sum(k["mid_cell"] for k in kills),
            "rounds": len(rounds), "cells": CELLS * len(rounds), "file_checks": checks, "corrupt_files": corrupt,
            "rows_lost_between_kills": lost_between, "resume_exits": [r["resume_exit"] for r in rounds],
            **total, "per_round": rounds, "kill_log": kills}


def _enospc_check(out: Path, code: int, log: Path, ref: dict, rows_before: Optional[int]) -> dict:
    text = log.read_text(errors="replace")
    rows, why = read_rows(out)
    intact = rows is not None and (rows_before is None or len(rows) >= rows_before)
    written = len(rows) if rows is not None else None
    left = _leftovers(out)
    resume = _run(out, log)
    final, _ = read_rows(out)
    return {"exit": code, "message": "No space left on device" in text and "the study stopped" in text,
            "traceback": "Traceback" in text, "rows_intact": intact, "rows_when_stopped": written,
            "temp_files_after_stop": left["temp_files"], "resume_exit": resume,
            **compare(final or [], ref)}


def section_enospc(work: Path, ref: dict) -> dict:
    out, log = work / "enospc-injected", work / "enospc-injected.log"
    code = _run(out, log, "-m", "benchmarks.faults", "enospc", "--after", "2", "--")
    result = {"injected": _enospc_check(out, code, log, ref, rows_before=2)}
    result["real_tmpfs"] = _enospc_tmpfs(work, ref)
    return result


def _enospc_tmpfs(work: Path, ref: dict) -> dict:
    mount = work / "small-disk"
    mount.mkdir()
    if shutil.which("mount") is None or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True).returncode != 0:
        return {"skipped": "mounting a tmpfs is not permitted here (needs root with CAP_SYS_ADMIN)"}
    try:
        out, log = mount / "out", work / "enospc-tmpfs.log"
        proc = _worker(out, log)
        while proc.poll() is None and len(read_rows(out)[0] or []) < 3:
            time.sleep(0.02)
        rows_before = len(read_rows(out)[0] or [])
        filler = mount / "filler"
        with open(filler, "wb") as handle:  # another program fills the disk
            try:
                while True:
                    handle.write(b"\0" * 65536)
                    handle.flush()
            except OSError:
                pass
        code = proc.wait(timeout=900)
        text = log.read_text(errors="replace")
        rows, _ = read_rows(out)
        stopped = {"exit": code, "message": "No space left on device" in text and "the study stopped" in text,
                   "traceback": "Traceback" in text, "rows_when_disk_filled": rows_before,
                   "rows_intact": rows is not None and len(rows) >= rows_before,
                   "rows_when_stopped": len(rows) if rows is not None else None}
        filler.unlink()
        stopped["temp_files_after_stop"] = _leftovers(out)["temp_files"]
        resume = _run(out, log)
        final, _ = read_rows(out)
        return {**stopped, "resume_exit": resume, **compare(final or [], ref)}
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


@contextlib.contextmanager
def _captured():
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        yield err


def _listing(folder: Path) -> list:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.is_dir() else []


def section_unwritable(work: Path) -> dict:
    from benchmarks.faults import unwritable_folder
    from harness.cli import main

    base = work / "unwritable"
    base.mkdir()
    cases = []

    def attempt(name, out, watch, words, extra=()):
        before = _listing(watch)
        with _captured() as err:
            code = main([*GRID, "--out", str(out), *extra])
        message = err.getvalue()
        cases.append({"case": name, "exit": code, "message": all(w in message for w in words),
                      "unchanged": _listing(watch) == before, "trained": (Path(out) / "predictions").exists(),
                      "text": message.strip().splitlines()[-1][:300] if message.strip() else ""})

    file = base / "notes.txt"
    file.write_text("not a folder\n")
    attempt("--out is a file", file, base, ["is a file, not a folder"])
    attempt("--out under a file", file / "study", base, ["cannot be made"])
    ro = base / "read-only"
    ro.mkdir()
    with unwritable_folder(ro) as how:
        if how is None:
            cases.append({"case": "read-only folder", "skipped": "neither chmod nor chattr stops writes here"})
        else:
            attempt(f"--out is a read-only folder ({how})", ro, base, ["cannot write there"])
            attempt(f"--out inside a read-only folder ({how})", ro / "study", base, ["cannot write there"])
            attempt(f"--cache-dir read-only, probe mode ({how})", base / "probe-out", base, ["--cache-dir", "cannot write"],
                    extra=["--mode", "probe", "--cache-dir", str(ro)])
    if _sys_unwritable():
        attempt("--out in a system folder (/sys)", "/sys/sla-bench-study", base, ["cannot write there"])
    locked = base / "locked"
    locked.mkdir()
    (locked / "runs.csv.lock").write_text("")
    chattr = shutil.which("chattr")
    if chattr and subprocess.run([chattr, "+i", str(locked / "runs.csv.lock")], capture_output=True).returncode == 0:
        try:
            attempt("runs.csv.lock not writable (chattr +i)", locked, locked, ["cannot write there"])
        finally:
            subprocess.run([chattr, "-i", str(locked / "runs.csv.lock")], capture_output=True)
    run = [c for c in cases if "skipped" not in c]
    passed = [c for c in run if c["exit"] == 2 and c["message"] and c["unchanged"] and not c["trained"]]
    return {"cases": len(run), "passed": len(passed), "skipped": len(cases) - len(run), "detail": cases}


def _sys_unwritable() -> bool:
    if not Path("/sys").is_dir():
        return False
    try:
        with tempfile.TemporaryFile(dir="/sys"):
            return False
    except OSError:
        return True


def section_cache(work: Path) -> dict:
    import logging

    from harness import results
    from harness.cli import main

    cache = work / "cache"

    def study(name):
        out = work / name
        records = []

        class Keep(logging.Handler):
            def emit(self, record):
                records.append(record.getMessage())

        handler = Keep(level=logging.WARNING)
        logging.getLogger("harness.features").addHandler(handler)
        try:
            with _captured():
                code = main([*PROBE, "--out", str(out), "--cache-dir", str(cache)])
        finally:
            logging.getLogger("harness.features").removeHandler(handler)
        rows = {r["run_id"]: (r["score"], r["metrics"]) for r in results.ResultsStore(out / "runs.csv").rows()}
        return code, rows, records

    code, first, _ = study("cache-first")
    entries = sorted(cache.glob("features-*.safetensors"))
    out = {"entries": len(entries), "first_exit": code, "damages": []}
    good = {p: p.read_bytes() for p in entries}
    for kind in ("flipped byte", "cut in half", "another key's entry"):
        target = entries[0]
        data = good[target]
        if kind == "flipped byte":
            target.write_bytes(data[:-3] + bytes([data[-3] ^ 0x40]) + data[-2:])
        elif kind == "cut in half":
            target.write_bytes(data[: len(data) // 2])
        else:
            target.write_bytes(good[entries[1]])
        code, rows, warnings = study(f"cache-{kind.split()[0].replace(chr(39), '')}")
        said = any("is damaged" in w and "recomputing it" in w for w in warnings)
        out["damages"].append({"damage": kind, "exit": code, "said": said, "same_scores": rows == first,
                               "entry_restored": _entry_ok(target)})
    out["detected"] = sum(d["said"] and d["same_scores"] and d["exit"] == 0 and d["entry_restored"]
                          for d in out["damages"])
    return out


def _entry_ok(path: Path) -> bool:
    from harness.features import DamagedEntry, load_entry

    try:
        load_entry(path, path.name[len("features-"):-len(".safetensors")])
        return True
    except (DamagedEntry, OSError):
        return False


def section_bad_inputs() -> dict:
    try:
        import pytest
    except ImportError:
        return {"not_run": "pytest is not installed (pip install -e .[test])"}

    class Count:
        def __init__(self):
            self.passed, self.failed, self.skipped = [], [], []

        def pytest_runtest_logreport(self, report):
            if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
                getattr(self, {"passed": "passed", "failed": "failed"}.get(report.outcome, "skipped")).append(
                    report.nodeid)

    count = Count()
    with _captured():
        code = pytest.main(["-q", "-m", "bad_input", "-p", "no:cacheprovider", str(ROOT / "tests")], plugins=[count])
    return {"cases": len(count.passed) + len(count.failed), "passed": len(count.passed), "failed": count.failed,
            "skipped": len(count.skipped), "pytest_exit": int(code)}


# ---------------------------------------------------------------- the table

def table(figures: dict) -> str:
    lines = ["| fault | what was done | result |", "| --- | --- | --- |"]
    k = figures.get("kill")
    if k:
        lines.append(f"| kill -9 | {k['kills']} kills at random instants ({k['kills_mid_cell']} mid-cell) across "
                     f"{k['rounds']} grid{'s' if k['rounds'] != 1 else ''} of {CELLS} cells, {k['workers']} concurrent workers, then resume | "
                     f"{k['lost']} lost, {k['duplicated']} duplicated, {k['corrupt_files']} corrupt "
                     f"({k['file_checks']} checks after kills), {k['scores_differ']} scores differ from the clean "
                     f"run; {k['temp_files']} temp files and {k['claims_left']} claims left |")
    e = figures.get("enospc")
    if e:
        for name, r in (("injected ENOSPC after 2 appends", e["injected"]), ("real 3 MiB tmpfs filled mid-study",
                                                                            e["real_tmpfs"])):
            if "skipped" in r:
                lines.append(f"| disk full | {name} | skipped: {r['skipped']} |")
                continue
            lines.append(f"| disk full | {name} | exit {r['exit']}, message {'yes' if r['message'] else 'NO'}, "
                         f"traceback {'YES' if r['traceback'] else 'no'}, {r['rows_when_stopped']} rows intact "
                         f"{'yes' if r['rows_intact'] else 'NO'}, {r['temp_files_after_stop']} temp files; "
                         f"resume exit {r['resume_exit']}: {r['lost']} lost, {r['duplicated']} duplicated, "
                         f"{r['scores_differ']} scores differ |")
    u = figures.get("unwritable")
    if u:
        lines.append(f"| unwritable output | {u['cases']} cases: " + "; ".join(
            c["case"] for c in u["detail"] if "skipped" not in c) +
            f" | {u['passed']}/{u['cases']} exit 2 with the fix before training, nothing written"
            + (f" ({u['skipped']} skipped)" if u["skipped"] else "") + " |")
    c = figures.get("cache")
    if c:
        lines.append(f"| damaged probe-cache entry | " + ", ".join(d["damage"] for d in c["damages"]) +
                     f" | {c['detected']}/{len(c['damages'])} detected, said, recomputed, same scores |")
    b = figures.get("bad-inputs")
    if b:
        if "not_run" in b:
            lines.append(f"| bad input | the tests marked bad_input | not run: {b['not_run']} |")
        else:
            lines.append(f"| bad input | every bad input the tests know ({b['cases']} cases, tests marked bad_input)"
                         f" | {b['passed']}/{b['cases']} exit 2 with a message, nothing written"
                         + (f"; failed: {', '.join(b['failed'])}" if b["failed"] else "")
                         + (f" ({b['skipped']} skipped)" if b["skipped"] else "") + " |")
    return "\n".join(lines) + "\n"


README = """# Reliability benchmark

Written by `{command}` ({seconds:.0f} s on {machine}).

{table}
How to read it: every study is the same tiny grid ({cells} cells: tiny-bert on toy-sentiment, heads native,
mean and sla-2:d=16, 6 seeds, 8 steps each), run by real `run_bench.py` processes. A clean run with one
worker is the reference: "lost" counts its cells without an `ok` row at the end, "duplicated" rows whose
run_id appears more than once in `runs.csv`, "corrupt" files that did not parse as whole rows after a kill,
"scores differ" rows whose score or metrics are not exactly the reference's. The sections and their
faults are described in `benchmarks/reliability.py` and [docs/reliability.md](../../docs/reliability.md).
`reliability.json` holds every figure, with the log of each kill (how many rows the file held, whether the
killed worker was training a cell).
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.reliability", description=__doc__.split("\n")[0])
    p.add_argument("--out", default="results/reliability", help="folder of reliability.json/.md and README.md")
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated: {', '.join(SECTIONS)}")
    p.add_argument("--kills", type=int, default=20, help="kill -9 landings in the kill section")
    p.add_argument("--workers", type=int, default=3, help="concurrent workers in the kill section")
    p.add_argument("--seed", type=int, default=0, help="seed of the kill instants and victims")
    p.add_argument("--render", metavar="JSON", help="only rewrite the table and README from this reliability.json")
    args = p.parse_args(argv)
    if args.render:
        return render(Path(args.render), Path(args.out))
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        p.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    os.environ.update({k: v for k, v in _env().items() if k != "PYTHONPATH"})
    start = time.perf_counter()
    figures: dict = {}
    with tempfile.TemporaryDirectory(prefix="sla-bench-reliability-") as tmp:
        work = Path(tmp)
        ref = reference(work) if {"kill", "enospc"} & set(sections) else {}
        if "kill" in sections:
            figures["kill"] = section_kill(work, ref, args.kills, args.workers, random.Random(args.seed))
        if "enospc" in sections:
            figures["enospc"] = section_enospc(work, ref)
        if "unwritable" in sections:
            figures["unwritable"] = section_unwritable(work)
        if "cache" in sections:
            figures["cache"] = section_cache(work)
        if "bad-inputs" in sections:
            figures["bad-inputs"] = section_bad_inputs()
    seconds = time.perf_counter() - start
    given = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python -m benchmarks.reliability", *given])
    machine = f"{os.cpu_count()} CPUs, {platform.system()}, Python {platform.python_version()}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from harness.fileio import atomic_write

    atomic_write(out / "reliability.json", json.dumps({"command": command, "seconds": round(seconds, 1),
                                                       "machine": machine, **figures}, indent=1) + "\n")
    return render(out / "reliability.json", out)


def render(source: Path, out: Path) -> int:
    """Write ``reliability.md`` and ``README.md`` into ``out`` from a ``reliability.json``, and print the table."""
    from harness.fileio import atomic_write

    data = json.loads(source.read_text())
    text = table(data)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "reliability.md", text)
    atomic_write(out / "README.md", README.format(command=data["command"], seconds=data["seconds"],
                                                  machine=data["machine"], table=text, cells=CELLS))
    print(text)
    print(f"wrote {out}/reliability.md, README.md ({data['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
