"""Crash safety, concurrent shards and determinism, with real processes of run_bench.py."""
import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from bench_helpers import runs, tiny_args
from harness import results
from harness.cli import main

ROOT = Path(__file__).resolve().parent.parent
GRID = dict(heads="native,mean,sla-2:d=16", seeds=2)  # 6 cells
CELLS = 6


def _start(args) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, str(ROOT / "run_bench.py"), *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_until_training(proc, out: Path, timeout: float = 300.0) -> None:
    """Until the worker holds a claim (it is training a cell) or has exited."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and not (out / "runs.csv.claims").exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def _check_file(path: Path) -> list:
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == results.COLUMNS
    assert all(len(r) == len(results.COLUMNS) for r in rows[1:])  # no partial row
    return results.ResultsStore(path).rows()


def test_kill_minus_nine_at_random_moments_then_resume(tmp_path):
    out = tmp_path / "out"
    args = tiny_args(out, heads="native,mean,sla-2:d=16", seeds=6)  # 18 cells: long enough to interrupt
    rng = random.Random(1234)
    kills = attempts = 0
    counts = []  # rows in runs.csv after each kill
    while kills < 10 and attempts < 40:  # until 10 kills have landed, wherever the grid is
        attempts += 1
        proc = _start(args)
        _wait_until_training(proc, out)  # start-up takes seconds on a loaded machine: kill mid-grid, not in imports
        time.sleep(rng.uniform(0.0, 2.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        if (out / "runs.csv").exists():
            rows = _check_file(out / "runs.csv")  # parses, whole rows only, after every kill
            assert len({r["run_id"] for r in rows}) == len(rows)
            assert len(rows) >= (counts[-1] if counts else 0)  # nothing written is lost
            counts.append(len(rows))
    assert kills >= 10
    assert any(0 < n < 18 for n in counts), counts  # some kill landed mid-grid, with rows before and after
    proc = _start(args)
    assert proc.wait(timeout=600) == 0, proc.stderr.read().decode()[-2000:]
    rows = _check_file(out / "runs.csv")
    assert len(rows) == 18 and len({r["run_id"] for r in rows}) == 18
    assert all(r["status"] == "ok" for r in rows)


def test_two_concurrent_shards_on_one_file(tmp_path):
    out = tmp_path / "out"
    shards = [_start(tiny_args(out, **GRID) + ["--shard", f"{i}/2"]) for i in range(2)]
    for proc in shards:
        assert proc.wait(timeout=600) == 0, proc.stderr.read().decode()[-2000:]
    rows = _check_file(out / "runs.csv")
    assert len(rows) == CELLS and len({r["run_id"] for r in rows}) == CELLS
    assert sorted(r["seed"] for r in rows) == ["0", "0", "0", "1", "1", "1"]
    assert len(pd.read_csv(out / "deltas.csv")) == 3


def test_shards_in_separate_files_merge(tmp_path, capsys):
    for i in range(2):
        assert main(tiny_args(tmp_path / f"s{i}", **GRID) + ["--shard", f"{i}/2"]) == 0
    assert [len(runs(tmp_path / f"s{i}")) for i in range(2)] == [3, 3]
    assert main(["merge", str(tmp_path / "s0/runs.csv"), str(tmp_path / "s1/runs.csv"), "--out", str(tmp_path / "all")]) == 0
    merged = runs(tmp_path / "all")
    assert len(merged) == CELLS and merged["run_id"].is_unique
    assert len(list((tmp_path / "all/predictions").glob("*.npz"))) == CELLS
    # the merged folder resumes as one: nothing left to run
    assert main(tiny_args(tmp_path / "all", **GRID)) == 0
    assert "0 run now" in capsys.readouterr().out


def test_same_command_twice_gives_identical_scores(tmp_path):
    for name in ("a", "b"):
        assert main(tiny_args(tmp_path / name, tasks="toy-sentiment,digits", models="tiny-bert,tiny-vit",
                              heads="native,sla-2:d=16", seeds=1)) == 0
    a, b = runs(tmp_path / "a"), runs(tmp_path / "b")
    assert list(a["run_id"]) == list(b["run_id"])
    assert list(a["score"]) == list(b["score"])
    assert list(a["metrics"]) == list(b["metrics"])


def test_data_parallel_over_two_cpu_processes_writes_each_row_once(tmp_path):
    """torchrun with 2 processes (gloo): each run trains data-parallel, rows are written once."""
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    args = tiny_args(out, heads="native,sla-2:d=16", seeds=1)
    args[args.index("--batch-size") + 1] = "8"
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_port", "29531", str(ROOT / "run_bench.py"), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    frame = runs(out)
    assert len(frame) == 2 and frame["run_id"].is_unique and (frame["status"] == "ok").all()
    # 64 rows in batches of 8 split over 2 processes: 4 steps an epoch, so 2 steps are half an epoch
    assert (frame["epochs"] == 0.5).all() and (frame["n_eval"] == 40).all()
    pred, labels = results.load_predictions(out, frame["run_id"][0])
    assert pred.shape == (40,)  # gathered from both processes, padding dropped


def test_git_sha_is_dirty_for_code_changes_only(tmp_path):
    """A study that writes its tracked results/ files must not mark its own rows '-dirty'."""
    from harness.runner import git_sha

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    (tmp_path / "results").mkdir()
    (tmp_path / "model.py").write_text("x = 1\n")
    (tmp_path / "results" / "runs.csv").write_text("a\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "start")
    clean = git_sha(tmp_path)
    assert len(clean) == 12 and not clean.endswith("-dirty")
    (tmp_path / "results" / "runs.csv").write_text("a\n1\n")
    git_sha.cache_clear()
    assert git_sha(tmp_path) == clean
    (tmp_path / "model.py").write_text("x = 2\n")
    git_sha.cache_clear()
    assert git_sha(tmp_path) == clean + "-dirty"
    git_sha.cache_clear()


# ---------------------------------------------------------------- workers that share a study split it

def test_two_workers_with_the_same_command_train_each_cell_once(tmp_path):
    """Before, each of two identical commands trained every pending cell: 12 rows for 6 cells."""
    out = tmp_path / "out"
    args = tiny_args(out, **GRID)
    args[args.index("--max-steps") + 1] = "12"  # long enough cells that the workers overlap
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    workers = [subprocess.Popen([sys.executable, str(ROOT / "run_bench.py"), *args], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [w.communicate(timeout=600) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [e[-2000:] for _, e in outputs]
    rows = _check_file(out / "runs.csv")
    assert len(rows) == CELLS and len({r["run_id"] for r in rows}) == CELLS  # no cell trained twice
    ran = [int(o.split("grid: 6 cells, ")[1].split(" run now")[0]) for o, _ in outputs]
    assert sum(ran) == CELLS, ran
    assert not (out / "runs.csv.claims").exists()  # every claim dropped once its row was written


def _grid_ids(out, **grid):
    from harness.cli import build_parser
    from harness.pipeline import RunOptions, prepare
    from harness.runner import cells
    from harness.study import study_from_args

    study = study_from_args(build_parser().parse_args(tiny_args(out, **grid)), set())
    config, _ = prepare(study, RunOptions(report_only=True))[0]
    return [c.run_id for c in cells(config)]


def _claims_file(out, claims):
    out.mkdir(parents=True, exist_ok=True)
    (out / "runs.csv.claims").write_text(json.dumps(claims))


def test_a_live_claim_is_left_alone_and_an_expired_or_dead_one_retaken(tmp_path, capsys):
    grid = dict(heads="native,mean", seeds=1)
    out = tmp_path / "out"
    first, second = _grid_ids(out, **grid)
    # another machine's worker holds the first cell, its lease valid for an hour
    _claims_file(out, {first: {"worker": "elsewhere:4242:abcdef", "expires": time.time() + 3600}})
    assert main(tiny_args(out, **grid)) == 0
    assert "grid: 2 cells, 1 run now" in capsys.readouterr().out
    assert [r["run_id"] for r in results.ResultsStore(out / "runs.csv").rows()] == [second]
    assert set(json.loads((out / "runs.csv.claims").read_text())) == {first}
    # its lease ran out (the worker was killed): the next run takes the cell
    _claims_file(out, {first: {"worker": "elsewhere:4242:abcdef", "expires": time.time() - 1}})
    assert main(tiny_args(out, **grid)) == 0
    assert "grid: 2 cells, 1 run now" in capsys.readouterr().out
    assert [r["run_id"] for r in results.ResultsStore(out / "runs.csv").rows()] == [second, first]
    assert not (out / "runs.csv.claims").exists()


def test_a_claim_of_a_dead_process_on_this_machine_is_retaken_at_once(tmp_path, capsys):
    import socket

    grid = dict(heads="native", seeds=1)
    out = tmp_path / "out"
    (rid,) = _grid_ids(out, **grid)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _claims_file(out, {rid: {"worker": f"{socket.gethostname()}:{dead.pid}:abcdef", "expires": time.time() + 3600}})
    assert main(tiny_args(out, **grid)) == 0
    assert "grid: 1 cells, 1 run now" in capsys.readouterr().out
    assert [r["run_id"] for r in results.ResultsStore(out / "runs.csv").rows()] == [rid]


class _Cell:
    def __init__(self, run_id):
        self.run_id = run_id


def test_claims_lease_renewal_release_and_a_damaged_file(tmp_path, caplog):
    from harness.claims import Claims

    store = results.ResultsStore(tmp_path / "runs.csv")
    now = [1000.0]
    a = Claims(store, lease=60, worker="host-a:1:aa", clock=lambda: now[0])
    b = Claims(store, lease=60, worker="host-b:1:bb", clock=lambda: now[0])
    grid = [_Cell("x"), _Cell("y")]
    has_row = lambda rows: {r["run_id"] for r in rows}  # noqa: E731  (done: a row is written)
    assert a.claim_next(grid, has_row)[0].run_id == "x"
    cell, elsewhere = b.claim_next(grid, has_row)
    assert cell.run_id == "y" and elsewhere == 1
    d = Claims(store, lease=60, worker="host-d:1:dd", clock=lambda: now[0])
    assert d.claim_next(grid, has_row) == (None, 2)  # both held by live workers
    now[0] = 1059.0
    a.renew(["x"])
    assert a.read()["x"] == {"worker": "host-a:1:aa", "expires": 1119.0}
    now[0] = 1100.0  # y's lease (until 1060) ran out, x's did not
    c = Claims(store, lease=60, worker="host-c:1:cc", clock=lambda: now[0])
    assert c.claim_next(grid, has_row) == (grid[1], 1)
    a.release("x")
    b.release("y")  # no longer b's: left to c
    assert a.read() == {"y": {"worker": "host-c:1:cc", "expires": 1160.0}}
    store.append({"run_id": "y", "status": "ok"})
    assert c.claim_next(grid, has_row) == (grid[0], 0)  # y has its row
    (tmp_path / "runs.csv.claims").write_text("{half a file")
    assert a.read() == {}
    assert "is not valid JSON" in caplog.text


def test_a_held_claim_is_renewed_while_its_cell_trains(tmp_path):
    from harness.claims import Claims

    store = results.ResultsStore(tmp_path / "runs.csv")
    now = [0.0]
    claims = Claims(store, lease=0.2, worker="host:1:aa", clock=lambda: now[0])
    assert claims.claim_next([_Cell("x")], lambda rows: set())[0].run_id == "x"
    with claims.held("x"):
        now[0] = 500.0
        for _ in range(1000):  # the heartbeat (every lease / 4) pushes the expiry past the new time
            if claims.read()["x"]["expires"] == 500.2:
                break
            time.sleep(0.01)
        assert claims.read()["x"] == {"worker": "host:1:aa", "expires": 500.2}
    assert claims.read() == {}  # dropped when the block ends
