"""run_bench.py end to end on tiny offline grids: rows, report, resume, user tasks, and bad input."""
import json
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from bench_helpers import runs, tiny_args
from harness import results
from harness.cli import main


def test_grid_end_to_end_text_and_vision(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(tiny_args(out, tasks="toy-sentiment,digits", models="tiny-bert,tiny-vit", heads="native,sla-2:d=16,mhap")) == 0
    frame = runs(out)
    # text model x text task, image model x image task: 2 pairs x 2 seeds x 3 heads
    assert len(frame) == 12 and frame["run_id"].is_unique and (frame["status"] == "ok").all()
    assert set(zip(frame["task"], frame["model"])) == {("toy-sentiment", "tiny-bert"), ("digits", "tiny-vit")}
    assert list(frame.columns) == results.COLUMNS
    row = frame[(frame["head"] == "sla-2:d=16") & (frame["task"] == "digits")].iloc[0]
    assert json.loads(row["head_options"])["d"] == 16 and json.loads(row["head_options"])["phi"] == "relu"
    assert row["n_train"] == 64 and row["n_eval"] == 40 and row["steps"] == 2
    assert row["params_head"] > 0 and row["params_total"] > row["params_head"] and row["flops_per_sample"] > 0
    assert 0.0 <= row["score"] <= 1.0 and json.loads(row["metrics"])["accuracy"] == row["score"]
    assert 0.0 < json.loads(row["metrics"])["train_loss"] < 10.0  # cross-entropy of a 10-class task, finite
    assert json.loads(row["versions"])["torch"] and json.loads(row["config"])["lr"] == 1e-3  # from-scratch default
    for rid in frame["run_id"]:
        pred, labels = results.load_predictions(out, rid)
        assert pred.shape == labels.shape == (40,)
    deltas = pd.read_csv(out / "deltas.csv")
    assert len(deltas) == 6
    sla = deltas[(deltas["task"] == "digits") & (deltas["head"] == "sla-2:d=16")].iloc[0]
    native = frame[(frame["task"] == "digits") & (frame["head"] == "native")].set_index("seed")["score"]
    mine = frame[(frame["task"] == "digits") & (frame["head"] == "sla-2:d=16")].set_index("seed")["score"]
    assert sla["delta_mean"] == pytest.approx((mine - native).mean())
    assert sla["n_paired"] == 2 and sla["test"] == "mcnemar" and sla["test_n"] == 80
    assert "| digits | tiny-vit |" in (out / "summary.md").read_text()
    assert "Δ vs native" in capsys.readouterr().out


def test_resume_skips_finished_cells_and_force_reruns(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(tiny_args(out, seeds=1)) == 0
    first = runs(out)
    assert main(tiny_args(out, seeds=2)) == 0  # one more seed: only its two cells run
    assert "2 run now" in capsys.readouterr().out
    second = runs(out)
    assert len(second) == 4 and second["run_id"].is_unique
    assert second.iloc[:2]["finished_at"].tolist() == first["finished_at"].tolist()  # untouched
    assert main(tiny_args(out, seeds=2)) == 0
    assert "0 run now" in capsys.readouterr().out and len(runs(out)) == 4
    assert main(tiny_args(out, seeds=1, extra=["--force"])) == 0
    assert len(runs(out)) == 6  # reruns are appended; the report keeps the latest per run
    assert len(pd.read_csv(out / "deltas.csv")) == 2


def test_regression_task_and_a_user_task_from_outside(tmp_path):
    task_file = tmp_path / "my_task.py"
    task_file.write_text(textwrap.dedent('''
        import datasets
        import numpy as np
        from tasks import Task, register_task

        def load(task, data_dir, splits):
            rng = np.random.default_rng(0)
            def split(n):
                x = rng.integers(0, 10, size=n)
                return datasets.Dataset.from_dict({
                    "sentence": [" ".join(["w%d" % v] * (1 + v % 3)) for v in x],
                    "label": (x / 2.0).astype("float32")})
            return datasets.DatasetDict({s: split(80 if s == "train" else 40) for s in splits})

        register_task(Task(name="cli-regression", modality="text", num_labels=1, metric="pearson",
                           text_columns=("sentence",), loader=load))
    '''))
    out = tmp_path / "out"
    assert main(tiny_args(out, tasks="cli-regression", extra=["--task-file", str(task_file)])) == 0
    frame = runs(out)
    assert (frame["status"] == "ok").all() and (frame["metric"] == "pearson").all()
    pred, labels = results.load_predictions(out, frame["run_id"][0])
    assert pred.dtype.kind == "f" and labels.dtype.kind == "f"
    assert (pd.read_csv(out / "deltas.csv").dropna(subset=["delta_mean"])["test"] == "paired-bootstrap").all()


def test_non_finite_loss_fails_the_run_not_the_grid(tmp_path):
    out = tmp_path / "out"
    args = tiny_args(out, seeds=1, heads="native,mean", extra=["--lr", "1e30", "--head-lr", "1e30"])
    args[args.index("--max-steps") + 1] = "10"
    assert main(args) == 0
    frame = runs(out)
    assert len(frame) == 2 and (frame["status"] == "failed").all()
    assert frame["error"].str.contains("NaN or infinite").all()


# ---------------------------------------------------------------- bad input: exit 2, a message, nothing written

def _fails(capsys, args, *words):
    assert main(args) == 2
    message = capsys.readouterr().err
    for word in words:
        assert word in message, message
    return message


def _parquet(path: Path, frame: pd.DataFrame):
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path)


@pytest.mark.bad_input
@pytest.mark.parametrize("change,words", [
    ({"--tasks": "sst3"}, ["Unknown task", "sst2", "--task-file"]),
    ({"--heads": "native,slaa-2"}, ["unknown head", "sla-K"]),
    ({"--heads": "sla-2:colour=red"}, ["no option 'colour'", "phi"]),
    ({"--models": "no-such-model"}, ["cannot load model", "tiny-bert"]),
    ({"--seeds": "0"}, ["--seeds 0", "at least 1"]),
    ({"--data-dir": "/no/such/dir"}, ["does not exist", "glue/<task>/<split>.parquet"]),
    ({"--shard": "2/2"}, ["0 <= i < n"]),
    ({"--tasks": "digits", "--models": "tiny-bert"}, ["image task", "tiny-vit"]),
    ({"--lr": "0"}, ["--lr 0.0", "must be positive"]),
    ({"--analysis": "depth", "--depths": "a-3"}, ["--depths 'a-3'", "1-8"]),
    ({"--analysis": "width", "--width-depth": "0"}, ["--width-depth 0", "must be positive"]),
])
def test_bad_arguments(tmp_path, capsys, change, words):
    out = tmp_path / "out"
    args = tiny_args(out)
    for flag, value in change.items():
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    _fails(capsys, args, *words)
    assert not out.exists()


@pytest.mark.bad_input
def test_missing_split_missing_column_labels_out_of_range(tmp_path, capsys):
    data = tmp_path / "data"
    good = pd.DataFrame({"sentence": ["a b", "c d"], "label": [0, 1], "idx": [0, 1]})
    _parquet(data / "glue/sst2/train.parquet", good)
    out = tmp_path / "out"
    base = tiny_args(out, tasks="sst2") + ["--data-dir", str(data)]
    _fails(capsys, base, "validation.parquet", "glue/<task>/<split>.parquet")
    _parquet(data / "glue/sst2/validation.parquet", good.rename(columns={"sentence": "text"}))
    _fails(capsys, base, "sentence", "validation")
    _parquet(data / "glue/sst2/validation.parquet", good.assign(label=[0, 7]))
    _fails(capsys, base, "label", "range")
    assert not out.exists()


def test_report_only_needs_runs_csv_not_the_data(tmp_path, capsys):
    data = tmp_path / "data"
    split = pd.DataFrame({"sentence": ["good fun", "bad film", "great", "awful"] * 8, "label": [1, 0, 1, 0] * 8,
                          "idx": range(32)})
    for name in ("train", "validation"):
        _parquet(data / f"glue/sst2/{name}.parquet", split)
    out = tmp_path / "out"
    assert main(tiny_args(out, tasks="sst2", seeds=1) + ["--data-dir", str(data)]) == 0
    (out / "deltas.csv").unlink()
    capsys.readouterr()
    assert main(tiny_args(out, tasks="sst2", seeds=1) + ["--report-only"]) == 0  # no --data-dir, hub offline
    assert len(pd.read_csv(out / "deltas.csv")) == 2 and "0 run now" not in capsys.readouterr().out
    summary = (out / "summary.md").read_text()
    assert f"# sla-bench results: {out}" in summary and "Last written by `run_bench.py --tasks sst2" in summary


@pytest.mark.bad_input
def test_unsupported_architecture(tmp_path, capsys):
    from transformers import Wav2Vec2Config

    model_dir = tmp_path / "wav2vec2-tiny"  # an audio model: no text or image classifier to patch
    Wav2Vec2Config(architectures=["Wav2Vec2ForSequenceClassification"]).save_pretrained(model_dir)
    out = tmp_path / "out"
    _fails(capsys, tiny_args(out, models=str(model_dir)), "wav2vec2", "ForSequenceClassification", "Families tested")
    assert not out.exists()


@pytest.mark.bad_input
@pytest.mark.parametrize("content,words", [
    ("hello,world\n1,2\n", ["not a sla-bench runs file", "--out"]),
    (None, ["incompatible", "sla-bench/runs/0"]),
    ("\x00\x01\x02binary", ["runs.csv"]),
])
def test_bad_results_file_is_refused_and_kept(tmp_path, capsys, content, words):
    out = tmp_path / "out"
    out.mkdir()
    path = out / "runs.csv"
    if content is None:  # a file of an older schema version
        content = ",".join(results.COLUMNS) + "\n" + "sla-bench/runs/0,abc" + "," * (len(results.COLUMNS) - 2) + "\n"
    path.write_text(content)
    _fails(capsys, tiny_args(out), *words)
    assert path.read_text() == content and sorted(p.name for p in out.iterdir()) == ["runs.csv"]


# ---------------------------------------------------------------- a new user's own task and model

def _task_file(path: Path, name: str) -> Path:
    path.write_text(textwrap.dedent(f'''
        from tasks import Task, register_task
        register_task(Task(name="{name}", modality="text", num_labels=4, metric="accuracy",
                           text_columns=("text",), local_subdir="news", eval_splits=("test",)))
    '''))
    return path


@pytest.mark.parametrize("first", ["--list", "--task-file"])
def test_list_shows_the_tasks_of_a_task_file(tmp_path, capsys, first):
    name = f"listed-news-{first.strip('-')}"
    assert main(["--list"]) == 0
    assert name not in capsys.readouterr().out
    task_file = str(_task_file(tmp_path / "my_task.py", name))
    argv = ["--list", "--task-file", task_file] if first == "--list" else ["--task-file", task_file, "--list"]
    assert main(argv) == 0
    listed = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [name, "text", "accuracy", "(from", "--task-file)"] in listed
    assert ["sst2", "text", "accuracy"] in listed  # the built-in tasks are still there


@pytest.mark.bad_input
def test_list_with_a_missing_task_file(tmp_path, capsys):
    _fails(capsys, ["--list", "--task-file", str(tmp_path / "absent.py")], "task file not found", "absent.py")


@pytest.mark.bad_input
@pytest.mark.parametrize("model,tasks,near", [("minlm", "toy-sentiment", "minilm"), ("tiny-vitt", "digits", "tiny-vit")])
def test_misspelled_model_fails_at_once_with_the_near_name(tmp_path, capsys, monkeypatch, model, tasks, near):
    """Offline (HF_HUB_OFFLINE=1, as in conftest), a name that is no alias, named config or folder is only
    looked up in the local hub cache: no request, no retries; the message lists the names and the near one."""
    from harness import models

    calls, real = [], models.AutoConfig

    class Spy:
        @staticmethod
        def from_pretrained(name, **kwargs):
            calls.append((name, kwargs))
            return real.from_pretrained(name, **kwargs)

    monkeypatch.setattr(models, "AutoConfig", Spy)
    out = tmp_path / "out"
    message = _fails(capsys, tiny_args(out, tasks=tasks, models=model), f"cannot load model {model!r}",
                     "not a known name", f"Did you mean {near!r}", "HF_HUB_OFFLINE=1", "tiny-bert, embed-bert",
                     "minilm")
    assert message.startswith("run_bench.py: error: ") and "Traceback" not in message
    assert calls and all(kwargs == {"local_files_only": True} for _, kwargs in calls), calls
    assert not out.exists()


@pytest.mark.bad_input
def test_train_and_test_only_and_a_misspelled_column_name_the_fix(tmp_path, capsys):
    data = tmp_path / "data"
    rows = pd.DataFrame({"headline": ["markets up", "team wins", "new chip", "rain"], "label": [2, 1, 3, 0]})
    for split in ("train", "test"):
        _parquet(data / "news" / f"{split}.parquet", rows)
    task_file = tmp_path / "news_task.py"
    task_file.write_text(textwrap.dedent('''
        from tasks import Task, register_task
        register_task(Task(name="cli-news", modality="text", num_labels=4, metric="accuracy",
                           text_columns=("headline",), local_subdir="news"))
        register_task(Task(name="cli-news-typo", modality="text", num_labels=4, metric="accuracy",
                           text_columns=("headlne",), local_subdir="news", eval_splits=("test",)))
    '''))
    out = tmp_path / "out"
    base = ["--task-file", str(task_file), "--data-dir", str(data)]
    _fails(capsys, tiny_args(out, tasks="cli-news") + base, "validation.parquet", "contains: test.parquet",
           'define the task with eval_splits=("test",)')
    message = _fails(capsys, tiny_args(out, tasks="cli-news-typo") + base, "missing column(s) ['headlne']",
                     "Did you mean 'headline' for 'headlne'?")
    assert message.split("Fix:", 1)[1].lstrip().startswith('define the task with text_columns=("headline",)')
    assert not out.exists()


def test_demo_output_is_ignored_by_git():
    """`python run_bench.py` writes results/default/; a checkout stays clean after the demo."""
    import shutil
    import subprocess

    from harness.cli import build_parser

    root = Path(__file__).resolve().parents[1]
    assert build_parser().parse_args([]).out == "results/default"
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    for path in ("results/default/runs.csv", "results/default/predictions/abc.npz", "results/default/summary.md"):
        check = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=root)
        assert check.returncode == 0, f"{path} is not ignored by git"
    kept = subprocess.run(["git", "check-ignore", "-q", "--no-index", "results/glue-cifar-minilm/runs.csv"], cwd=root)
    assert kept.returncode == 1  # committed result sets stay tracked


def test_two_specs_of_one_head_make_one_cell(tmp_path):
    """'san-2' and 'san-2:d=256' (the default d) are one head: one cell, one row per seed."""
    from harness.heads import parse_head_spec
    from harness.runner import GridConfig, cells
    from tasks import get_task

    config = GridConfig(tasks=[get_task("toy-sentiment")], models=["tiny-bert"], seeds=[0, 1], out_dir=tmp_path,
                        heads=[parse_head_spec(h) for h in ("san-2", "sla-2", "san-2:d=256", "san-2:d=64")])
    grid = cells(config)
    assert [(c.seed, c.head.label) for c in grid] == [(s, h) for s in (0, 1) for h in ("san-2", "sla-2", "san-2:d=64")]
    assert len({c.run_id for c in grid}) == len(grid)


# ---------------------------------------------------------------- checked before training; write errors mid-study

import sys as _sys  # noqa: E402

_sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `benchmarks` is not an installed package
from benchmarks.faults import enospc_on_fsync, unwritable_folder  # noqa: E402


@pytest.mark.bad_input
@pytest.mark.parametrize("flag,value", [("--epochs", "nan"), ("--lr", "inf"), ("--head-lr", "nan"),
                                        ("--epochs", "-inf"), ("--lr", "-1e-3")])
def test_non_finite_numbers_are_refused(tmp_path, capsys, flag, value):
    out = tmp_path / "out"
    message = _fails(capsys, tiny_args(out) + [f"{flag}={value}"], "finite")
    assert flag[2:].replace("-", "_") in message.replace("-", "_") and str(float(value)) in message, message
    assert not out.exists()


@pytest.mark.bad_input
def test_out_that_is_a_file(tmp_path, capsys):
    path = tmp_path / "results.txt"
    path.write_text("my notes\n")
    _fails(capsys, tiny_args(path), f"--out {path}: is a file, not a folder")
    _fails(capsys, tiny_args(path / "sub"), f"--out {path / 'sub'}: cannot be made, {path} is a file")
    assert path.read_text() == "my notes\n" and sorted(p.name for p in tmp_path.iterdir()) == ["results.txt"]


@pytest.mark.bad_input
@pytest.mark.parametrize("inside", [False, True])
def test_unwritable_out_folder_fails_before_training(tmp_path, capsys, inside):
    """A read-only --out (or one under a read-only folder) used to train the first cell, then die with a
    PermissionError traceback on runs.csv.lock (exit 1). Root ignores chmod, so as root the folder is
    made immutable (chattr +i); where neither works the test is skipped."""
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "keep.txt").write_text("x")
    out = folder / "sub" if inside else folder
    with unwritable_folder(folder) as how:
        if how is None:
            pytest.skip("neither chmod 0o555 nor chattr +i stops writes here (root without chattr)")
        message = _fails(capsys, tiny_args(out), f"--out {out}: cannot write there", "choose another --out")
        assert ("its nearest existing folder" in message) == inside
        assert sorted(p.name for p in folder.iterdir()) == ["keep.txt"]


@pytest.mark.bad_input
def test_disk_without_room_for_predictions(tmp_path, capsys, monkeypatch):
    import shutil

    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=200_000))
    out = tmp_path / "out"
    # 4 runs x (40 predictions x 16 B + 8 KiB) + 1 MiB spare = 1,083,904 B
    _fails(capsys, tiny_args(out), "its disk has 195.3 KiB free; the study needs about 1.0 MiB",
           "predictions and rows of 4 runs", "free some space")
    assert not out.exists()


def test_disk_full_mid_study_stops_cleanly_and_resumes(tmp_path, capsys):
    """ENOSPC on the third append: before, a traceback (exit 1); now exit 3, the message says what
    happened, the two rows written stay intact and the same command resumes."""
    out = tmp_path / "out"
    with enospc_on_fsync(after=2) as fault:
        assert main(tiny_args(out)) == 3
    assert fault["raised"] == 1
    err = capsys.readouterr().err
    assert "the study stopped" in err and "No space left on device [ENOSPC]" in err, err
    assert "the 2 rows already in runs.csv are intact" in err and "rerun the same command" in err
    assert "Traceback" not in err
    assert len(runs(out)) == 2 and not [p for p in out.iterdir() if ".tmp-" in p.name]
    assert main(tiny_args(out)) == 0
    assert "2 run now" in capsys.readouterr().out
    frame = runs(out)
    assert len(frame) == 4 and frame["run_id"].is_unique and (frame["status"] == "ok").all()


def _joined(out: Path) -> str:  # two runs files joined with cat
    one = results.ResultsStore(out.parent / "one.csv")
    one.append({"run_id": "a", "status": "ok"})
    text = (out.parent / "one.csv").read_text()
    return text + text


def _cut(out: Path) -> str:  # a row cut short, as a full disk or an interrupted copy leaves it
    one = results.ResultsStore(out.parent / "one.csv")
    one.append({"run_id": "a", "status": "ok", "config": {"lr": 0.001}})
    return (out.parent / "one.csv").read_text()[:-12]


@pytest.mark.bad_input
@pytest.mark.parametrize("make,words", [
    (_joined, ["line 3 is a second header", "run_bench.py merge"]),
    (_cut, ["the file is truncated", "(line 2)", "delete that line"]),
    (lambda out: ",".join(results.COLUMNS[:-1]) + "\n", ["missing column(s) config"]),
])
def test_malformed_results_file_is_refused_and_kept(tmp_path, capsys, make, words):
    out = tmp_path / "out"
    out.mkdir()
    content = make(out)
    (out / "runs.csv").write_text(content)
    _fails(capsys, tiny_args(out), *words)
    assert (out / "runs.csv").read_text() == content and sorted(p.name for p in out.iterdir()) == ["runs.csv"]


def test_python_m_harness_and_quiet_logs(tmp_path):
    """``python -m harness`` is run_bench.py; with output redirected there are no progress bars, and
    -q leaves only the table on stdout and nothing on stderr."""
    import subprocess
    import sys

    out = tmp_path / "out"
    command = [sys.executable, "-m", "harness", *tiny_args(out, seeds=1)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr
    assert "| toy-sentiment | tiny-bert |" in done.stdout and len(runs(out)) == 2
    assert "it/s" not in done.stderr and "step/s" not in done.stderr and "run/s" not in done.stderr  # no bars
    assert "run_bench.py: INFO: wrote" in done.stderr
    quiet = subprocess.run(command + ["-q"], capture_output=True, text=True, timeout=300,
                           cwd=Path(__file__).parent.parent)
    assert quiet.returncode == 0 and quiet.stderr.strip() == "" and "| toy-sentiment |" in quiet.stdout


def test_one_version_source():
    from importlib.metadata import version

    import harness

    assert version("sla-bench") == harness.__version__
