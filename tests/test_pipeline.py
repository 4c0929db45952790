"""The library under run_bench.py: a study run from Python, without the command line."""
import pytest

from bench_helpers import runs
from harness.pipeline import RunOptions, UsageError, prepare, run_study
from harness.study import StudyConfig


def _study(out, **keys):
    return StudyConfig.from_mapping({"out": str(out), "tasks": "toy-sentiment", "models": "tiny-bert",
                                     "heads": "native,sla-2:d=16", "seeds": 1, "max_train_samples": 64,
                                     "max_eval_samples": 40, "max_steps": 2, "batch_size": 16, **keys})


def test_run_study_from_python(tmp_path):
    out = tmp_path / "out"
    result = run_study(_study(out), command="notebook")
    assert [c["pending"] for c in result.counts] == [2] and len(runs(out)) == 2
    assert list(result.table["head"]) == ["native", "sla-2:d=16"]
    assert "Last written by `notebook`" in (out / "summary.md").read_text()
    again = run_study(_study(out), RunOptions(report_only=True))
    assert again.counts == [] and len(runs(out)) == 2  # re-rendered, nothing trained


def test_checks_run_before_anything_is_written(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(UsageError, match="--epochs 0.0"):
        prepare(_study(out, epochs=0, max_steps=None))
    with pytest.raises(UsageError, match="--shard"):
        prepare(_study(out), RunOptions(shard="3/2"))
    assert not out.exists()
