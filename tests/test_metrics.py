"""Metrics from the evaluate library: a task names one (a local module the test writes, or a hub id) beside
the built-in scikit-learn/scipy metrics; run_bench.py scores with it end to end, and refuses with exit 2
and the fix when it cannot be loaded."""
import json
import textwrap

import pytest

from bench_helpers import runs, tiny_args
from harness.cli import main
from tasks import MetricLoadError, Task
from tasks.metrics import load_evaluate_metric

pytest.importorskip("evaluate")

ACC100 = textwrap.dedent('''
    """Accuracy in percent, and the share of examples predicted as class 1."""
    import datasets
    import evaluate


    class Acc100(evaluate.Metric):
        def _info(self):
            return evaluate.MetricInfo(
                description="accuracy in percent", citation="", inputs_description="",
                features=datasets.Features({"predictions": datasets.Value("int64"),
                                            "references": datasets.Value("int64")}))

        def _compute(self, predictions, references):
            right = sum(int(p == r) for p, r in zip(predictions, references))
            return {"acc100": 100.0 * right / len(references),
                    "ones": sum(int(p == 1) for p in predictions) / len(predictions)}
''')


@pytest.fixture
def acc100(tmp_path):
    path = tmp_path / "acc100.py"
    path.write_text(ACC100)
    return path


def text_task(name, **fields):
    return Task(name=name, modality="text", num_labels=2, text_columns=("sentence",), **fields)


def test_an_evaluate_metric_scores_beside_the_built_in_ones(acc100):
    task = text_task("eval-unit", metric="acc100", metrics=("accuracy", "acc100", "ones"),
                     evaluate_metrics={"acc100": acc100, "ones": str(acc100)})
    scores = task.compute_metrics([1, 0, 1, 1, 0], [1, 1, 1, 1, 0])
    assert scores["accuracy"] == pytest.approx(0.8)  # built in: scikit-learn/scipy, not evaluate
    assert scores["acc100"] == pytest.approx(80.0) and scores["ones"] == pytest.approx(0.6)
    assert scores["combined"] == pytest.approx((0.8 + 80.0 + 0.6) / 3)
    # logits are arg-maxed first, as for the built-in metrics
    assert task.compute_metrics([[0.1, 0.9], [2.0, -1.0]], [1, 1])["acc100"] == pytest.approx(50.0)
    assert task.summary()["evaluate_metrics"] == {"acc100": str(acc100), "ones": str(acc100)}
    assert hash(task)  # frozen and hashable like every task


def test_bad_definitions_name_the_fix(acc100):
    with pytest.raises(ValueError, match="another name"):  # a built-in name stays the built-in metric
        text_task("eval-shadow", metric="accuracy", evaluate_metrics={"accuracy": "accuracy"})
    with pytest.raises(ValueError, match="evaluate_metrics="):
        text_task("eval-unknown", metric="acc100")
    with pytest.raises(ValueError, match="hub id or a metric module path"):
        text_task("eval-empty", metric="acc100", evaluate_metrics={"acc100": ""})
    task = text_task("eval-keys", metric="pct", evaluate_metrics={"pct": acc100})
    with pytest.raises(ValueError, match=r"returned \['acc100', 'ones'\], none named 'pct'"):
        task.compute_metrics([1, 0], [1, 1])


def test_metrics_that_cannot_be_loaded(tmp_path):
    with pytest.raises(MetricLoadError, match="does not exist"):
        load_evaluate_metric(str(tmp_path / "missing.py"))
    (tmp_path / "not_a_metric.py").write_text("x = 1\n")
    with pytest.raises(MetricLoadError, match="evaluate.Metric subclass"):
        load_evaluate_metric(str(tmp_path / "not_a_metric.py"))
    with pytest.raises(MetricLoadError, match="network access"):  # offline: a hub id cannot be fetched
        load_evaluate_metric("exact_match_not_cached")


TASK_FILE = '''
from pathlib import Path

from tasks import Task, register_task
from tasks.toy import TOY_SENTIMENT

register_task(Task(name="{name}", modality="text", num_labels=2, metric="acc100", metrics=("accuracy", "acc100"),
                   text_columns=TOY_SENTIMENT.text_columns, label_names=TOY_SENTIMENT.label_names,
                   loader=TOY_SENTIMENT.loader,
                   evaluate_metrics={{"acc100": {ref}}}))
'''


def test_run_bench_scores_a_task_with_a_local_evaluate_metric(tmp_path, acc100):
    task_file = tmp_path / "eval_task.py"
    task_file.write_text(TASK_FILE.format(name="eval-toy", ref='str(Path(__file__).parent / "acc100.py")'))
    out = tmp_path / "out"
    assert main(tiny_args(out, tasks="eval-toy", heads="native", seeds=1, extra=["--task-file", str(task_file)])) == 0
    row = runs(out).iloc[0]
    metrics = json.loads(row["metrics"])
    assert row["status"] == "ok" and row["metric"] == "acc100"
    assert row["score"] == metrics["acc100"] == pytest.approx(100 * metrics["accuracy"])
    assert 0 < metrics["acc100"] <= 100 and metrics["combined"] == pytest.approx(
        (metrics["accuracy"] + metrics["acc100"]) / 2)


@pytest.mark.bad_input
@pytest.mark.parametrize("ref, words", [('"exact_match_not_cached"', "network access"),
                                        ('str(Path(__file__).parent / "nowhere.py")', "does not exist")])
def test_a_metric_that_cannot_be_loaded_exits_2_before_training(tmp_path, capsys, ref, words):
    task_file = tmp_path / "bad_metric_task.py"
    name = "eval-bad-" + ("hub" if "exact" in ref else "path")
    task_file.write_text(TASK_FILE.format(name=name, ref=ref))
    out = tmp_path / "out"
    assert main(tiny_args(out, tasks=name, heads="native", seeds=1, extra=["--task-file", str(task_file)])) == 2
    err = capsys.readouterr().err
    assert "evaluate metric" in err and words in err
    assert not (out / "runs.csv").exists()
