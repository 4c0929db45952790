"""Crash safety, concurrent shards and determinism, with real processes of run_bench.py."""
import csv
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
        time.sleep(rng.uniform(1.0, 6.0))
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
