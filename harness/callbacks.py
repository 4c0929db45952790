"""Hooks into ``train.fit``: what analyses, trackers and tests attach to a run without the loop (or
the runner) knowing them by name.

A callback overrides the methods it needs; ``fit`` calls them on every process, in this order:

    on_train_begin(model)                 once, after ``accelerator.prepare``
    on_after_backward(model, step)        every step: gradients are in ``.grad``, before clipping
    on_step_end(model, step, loss)        every step, after the optimizer step; ``loss`` is the
                                          step's detached 0-d tensor (reading it is a host sync)
    on_train_end(model, result)           once, after the evaluation predictions and metrics

``model`` is the unwrapped model (a patched HF model, or the probe model); ``step`` counts from 0.
"""
from __future__ import annotations

from typing import Iterable, Sequence


class Callback:
    """A no-op at every hook; subclasses override what they need."""

    def on_train_begin(self, model) -> None:
        pass

    def on_after_backward(self, model, step: int) -> None:
        pass

    def on_step_end(self, model, step: int, loss) -> None:
        pass

    def on_train_end(self, model, result) -> None:
        pass


class CallbackList(Callback):
    """Many callbacks called as one, in order."""

    def __init__(self, callbacks: Iterable[Callback] = ()):
        self.callbacks: Sequence[Callback] = [c for c in callbacks if c is not None]

    def __bool__(self) -> bool:
        return bool(self.callbacks)

    def on_train_begin(self, model) -> None:
        for c in self.callbacks:
            c.on_train_begin(model)

    def on_after_backward(self, model, step: int) -> None:
        for c in self.callbacks:
            c.on_after_backward(model, step)

    def on_step_end(self, model, step: int, loss) -> None:
        for c in self.callbacks:
            c.on_step_end(model, step, loss)

    def on_train_end(self, model, result) -> None:
        for c in self.callbacks:
            c.on_train_end(model, result)


class TrackerCallback(Callback):
    """Logs a run to accelerate's trackers (``Accelerator(log_with=...)``: tensorboard, wandb, mlflow,
    ... whichever are installed): the training loss every ``every`` steps and the learning rates,
    then the run's final metrics. One tracker run per training run, named by its ``run_id``."""

    def __init__(self, accelerator, run_name: str, config: dict, every: int = 10):
        self.accelerator, self.run_name, self.config, self.every = accelerator, run_name, config, every

    def on_train_begin(self, model) -> None:
        self.accelerator.init_trackers(self.run_name, config=_flat(self.config))

    def on_step_end(self, model, step: int, loss) -> None:
        if (step + 1) % self.every == 0:
            self.accelerator.log({"train/loss": float(loss)}, step=step + 1)

    def on_train_end(self, model, result) -> None:
        values = {f"eval/{k}": float(v) for k, v in result.metrics.items() if isinstance(v, (int, float))}
        values["train/samples_per_second"] = result.samples_per_second
        self.accelerator.log(values, step=result.steps)
        self.accelerator.end_training()


def _flat(config: dict) -> dict:
    """Tracker configs take scalars: None becomes "none", anything else not scalar its string."""
    return {k: ("none" if v is None else v if isinstance(v, (int, float, str, bool)) else str(v))
            for k, v in config.items()}
