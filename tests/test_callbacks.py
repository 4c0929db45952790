"""fit's callbacks: the hooks in order, no effect on the numbers, and the tracker's event files."""
import pytest
import torch
from accelerate import Accelerator

from bench_helpers import runs, tiny_args
from harness import data, train
from harness.callbacks import Callback
from harness.cli import main
from harness.models import load_model
from harness.patcher import patch
from tasks import get_task


class Trace(Callback):
    def __init__(self):
        self.calls = []

    def on_train_begin(self, model):
        self.calls.append(("begin", None))

    def on_after_backward(self, model, step):
        grads = [p.grad for p in model.head.parameters() if p.grad is not None]
        self.calls.append(("backward", step, len(grads) > 0))

    def on_step_end(self, model, step, loss):
        self.calls.append(("step", step, float(loss)))

    def on_train_end(self, model, result):
        self.calls.append(("end", dict(result.metrics)))


def _fit(callbacks=()):
    task = get_task("toy-sentiment")
    split = task.load()
    loaded = load_model("tiny-bert", task.num_labels, texts=lambda: split["train"]["sentence"][:64])
    rows = data.encode(split["train"].select(range(64)), task, loaded)
    evals = {"validation": data.encode(split["validation"].select(range(32)), task, loaded)}
    torch.manual_seed(0)
    model = patch(loaded.build(), "sla-2:d=8")
    config = train.TrainConfig(max_steps=3, batch_size=16, lr=1e-3)
    return train.fit(model, rows, evals, config, seed=0, accelerator=Accelerator(cpu=True), callbacks=callbacks,
                     metrics=task.compute_metrics)


def test_hooks_run_in_order_and_leave_the_numbers_alone():
    trace = Trace()
    traced, plain = _fit([trace]), _fit()
    kinds = [c[0] for c in trace.calls]
    assert kinds == ["begin"] + ["backward", "step"] * 3 + ["end"]
    assert [c[1] for c in trace.calls if c[0] == "step"] == [0, 1, 2]
    assert all(c[2] for c in trace.calls if c[0] == "backward")  # gradients are there when it is called
    assert trace.calls[-1][1] == traced.metrics and 0 <= traced.metrics["accuracy"] <= 1
    assert (traced.predictions["validation"] == plain.predictions["validation"]).all()
    assert traced.final_loss == plain.final_loss


def test_report_to_tensorboard_writes_the_loss_curve_and_final_metrics(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "out"
    assert main(tiny_args(out, heads="native", seeds=1, extra=["--max-steps", "20", "--report-to", "tensorboard"])) == 0
    row = runs(out).iloc[0]
    folder = out / "tracking" / row["run_id"]  # one tracker run per training run, named by its run_id
    assert [p.name for p in (out / "tracking").iterdir()] == [row["run_id"]] and list(folder.glob("events.out.tfevents.*"))
    events = EventAccumulator(str(folder))
    events.Reload()
    loss = events.Scalars("train/loss")
    assert [e.step for e in loss] == [10, 20] and all(0 < e.value < 5 for e in loss)
    assert events.Scalars("eval/accuracy")[-1].value == pytest.approx(row["score"], abs=1e-6)


def test_unknown_or_missing_tracker_exits_2(tmp_path, capsys):
    assert main(tiny_args(tmp_path / "out", extra=["--report-to", "tensorbored"])) == 2
    assert "not a tracker" in capsys.readouterr().err and not (tmp_path / "out").exists()
