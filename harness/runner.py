"""The grid: every (task, model, seed, head) cell fine-tuned (or probed), one results row each.

Data flows one way: task adapter -> data rows -> model (+ ``patch``) -> ``train.fit`` -> a row in
``runs.csv`` and the evaluation predictions. The runner knows no architecture: models come
from ``models.load_model``, heads from ``patch``.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import platform
import subprocess
import time
import traceback
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import torch
from tqdm.auto import tqdm

from . import __version__, data, results
from .claims import DEFAULT_LEASE, Claims
from .analyses.drivers import callbacks as analysis_callbacks
from .analyses.record import head_family
from .callbacks import TrackerCallback
from .features import ProbeModel, probe_rows
from .fileio import is_write_error
from .heads import HeadSpec
from .models import LoadedModel, load_model, model_modality
from .patcher import head_parameters, patch
from .train import NonFiniteLoss, progress_disabled, TrainConfig, backbone_lr, fit


log = logging.getLogger(__name__)


@dataclass
class GridConfig:
    tasks: list  # tasks.Task
    models: list[str]
    heads: list[HeadSpec]
    seeds: list[int]
    out_dir: Path
    train: TrainConfig = field(default_factory=TrainConfig)
    data_dir: Optional[str] = None
    max_train_samples: Optional[int] = None
    max_eval_samples: Optional[int] = None
    max_length: int = 128
    precision: str = "no"
    mode: str = "finetune"
    force: bool = False
    shard: tuple[int, int] = (0, 1)  # (i, n): this process runs cells i, i+n, i+2n, ...
    lease: float = DEFAULT_LEASE  # seconds a claimed cell stays reserved without renewal (claims.py); not in run_id
    cache_dir: Path = field(default_factory=lambda: default_cache_dir())  # probe-mode backbone features
    analyses: tuple = ()  # recorders to attach: "gradients", "attention" (see analyses.drivers)
    baselines: tuple = ("native",)  # heads the report's deltas are taken against (no effect on training)
    report_to: tuple = ()  # accelerate trackers to log each run to ("tensorboard", ...); no effect on training


def default_cache_dir() -> Path:
    return Path(os.environ.get("SLA_BENCH_CACHE", "~/.cache/sla-bench")).expanduser()


@dataclass(frozen=True)
class Cell:
    task: object
    model: str
    seed: int
    head: HeadSpec
    run_id: str
    budget: str  # canonical JSON of what else defines the run


def budget(config: GridConfig) -> dict:
    """Everything besides (task, model, head, seed) that changes a run's result."""
    t = config.train
    return dict(mode=config.mode, epochs=t.epochs, max_steps=t.max_steps, batch_size=t.batch_size, lr=t.lr,
                head_lr=t.head_lr, weight_decay=t.weight_decay, warmup_ratio=t.warmup_ratio,
                group_by_length=t.group_by_length, max_train_samples=config.max_train_samples,
                max_eval_samples=config.max_eval_samples, max_length=config.max_length, precision=config.precision,
                data_dir=str(config.data_dir) if config.data_dir else None,
                **({"compile": True} if t.compile else {}))  # only when set: earlier run_ids stay valid


def pairs(config: GridConfig) -> list[tuple]:
    """(task, model) pairs of the same modality: a text model never meets an image task."""
    modality = {m: model_modality(m) for m in config.models}
    return [(t, m) for t in config.tasks for m in config.models if modality[m] == t.modality]


def cells(config: GridConfig) -> list[Cell]:
    """All cells in a fixed order (task, model, seed, head): a stopped grid leaves whole seeds."""
    spend = budget(config)
    out, seen = [], set()
    for task, model in pairs(config):
        for seed in config.seeds:
            for head in config.heads:
                rid = results.run_id(task=task.name, model=model, head=head.label, head_options=head.options,
                                     seed=seed, **spend)
                if rid in seen:  # two specs of one head ('san-2' and the width sweep's 'san-2:d=256'): run it once
                    continue
                seen.add(rid)
                out.append(Cell(task, model, seed, head, rid, results.canonical_json(spend)))
    return out


def pending(config: GridConfig, store: results.ResultsStore) -> list[Cell]:
    """This shard's cells, minus those already finished (unless ``force``)."""
    index, count = config.shard
    mine = [c for i, c in enumerate(cells(config)) if i % count == index]
    if config.force:
        return mine
    done = store.completed_ids()
    return [c for c in mine if c.run_id not in done]


def versions() -> dict:
    import accelerate
    import datasets
    import transformers

    return {"sla_bench": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "datasets": datasets.__version__,
            "accelerate": accelerate.__version__}


CODE_FILES = ("*.py", "pyproject.toml", "constraints.txt")  # what a run executes; results and docs are not


@functools.lru_cache(maxsize=None)
def git_sha(root: Optional[Path] = None) -> str:
    """The code's commit, ``-dirty`` when a tracked code file (``CODE_FILES``) has local changes, read
    once: the code a process runs is the code it started with. A study writing its own tracked
    ``results/`` files does not make the code dirty."""
    try:
        root = Path(root) if root is not None else Path(__file__).resolve().parent.parent
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *CODE_FILES],
                               cwd=root, capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + ("-dirty" if sha and dirty else "")
    except (OSError, subprocess.SubprocessError):
        return ""


class Prepared:
    """Per (task, model): the loaded model factory and the encoded splits, built once and reused
    by every head and seed."""

    def __init__(self, task, splits, model_name: str, config: GridConfig):
        train = splits[task.train_split]
        self.loaded: LoadedModel = load_model(model_name, task.num_labels,
                                              texts=lambda: _texts(train, task), label_names=task.label_names)
        self.train = data.encode(train, task, self.loaded, config.max_length)
        self.evals = {s: data.encode(splits[s], task, self.loaded, config.max_length) for s in task.eval_splits}
        self.features = None  # probe mode: {split: FeatureRows}, made on first use

    def probe_features(self, task, config: GridConfig, accelerator) -> dict:
        if self.features is None:
            rows = {task.train_split: self.train, **self.evals}
            self.features, status = probe_rows(self.loaded, rows, config.precision, config.cache_dir,
                                               config.train.eval_batch_size, accelerator)
            log.info("probe features for %s/%s: %s (cache %s)", task.name, self.loaded.name,
                     ", ".join(f"{k} {v}" for k, v in status.items()), config.cache_dir)
        return self.features


def _texts(dataset, task):
    for column in task.text_columns:
        yield from dataset[column]


def load_splits(task, config: GridConfig) -> dict:
    """The task's splits, subset to the budget (a fixed subset, the same for every cell)."""
    raw = task.load(data_dir=config.data_dir)
    splits = {task.train_split: data.subset(raw[task.train_split], config.max_train_samples)}
    for split in task.eval_splits:
        splits[split] = data.subset(raw[split], config.max_eval_samples)
    return splits


def eval_flops(model, rows, batch: int = 8) -> float:
    """Forward FLOPs per example (:func:`harness.flops.forward_flops`) on the first ``batch`` evaluation
    rows, at their own padded length; NaN when the counter fails."""
    from .flops import forward_flops

    try:
        return forward_flops(model, rows.collate(list(range(min(batch, len(rows))))))
    except Exception:  # a cost column is not worth a failed run
        return float("nan")


def run_cell(cell: Cell, prepared: Prepared, config: GridConfig, accelerator) -> dict:
    """Train one cell; return its row (status ok or failed: a failure never stops the grid)."""
    task = cell.task
    row = dict(run_id=cell.run_id, task=task.name, model=cell.model, head=cell.head.label,
               head_options=cell.head.options, seed=cell.seed, mode=config.mode, metric=task.metric,
               n_train=len(prepared.train), n_eval=len(prepared.evals[task.primary_eval_split]),
               versions=versions(), git_sha=git_sha(), config=json.loads(cell.budget))
    probe = config.mode == "probe"
    try:
        # Backbone init (from-scratch models) and native classifier; in probe mode one fixed backbone
        # (seed 0) serves every seed, as the cached features do.
        torch.manual_seed(0 if probe else cell.seed)
        model = prepared.loaded.build()
        torch.manual_seed(cell.seed)  # head init
        model = patch(model, cell.head)
        row.update(params_total=sum(p.numel() for p in model.parameters()), params_head=head_parameters(model))
        lr = backbone_lr(config.train.lr, prepared.loaded.pretrained)
        train = TrainConfig(**{**asdict(config.train), "lr": lr, "freeze_backbone": probe})
        row["config"] = {**row["config"], "lr": lr}
        row["flops_per_sample"] = eval_flops(model, prepared.evals[task.primary_eval_split])
        train_rows, eval_rows = prepared.train, prepared.evals
        if probe and not cell.head.is_native:  # the head trains on cached backbone states
            features = prepared.probe_features(task, config, accelerator)
            train_rows, eval_rows = features[task.train_split], {s: features[s] for s in task.eval_splits}
            model = ProbeModel(model, train_rows.f.grid)
        labels = dict(task=task.name, head=cell.head.label, head_family=head_family(cell.head.label), seed=cell.seed)
        hooks = analysis_callbacks(config.analyses, config.out_dir, cell.run_id, labels,
                                   eval_rows[task.primary_eval_split], accelerator.is_main_process)
        if config.report_to:
            hooks.append(TrackerCallback(accelerator, cell.run_id, {**row["config"], **labels, "model": cell.model}))
        result = fit(model, train_rows, eval_rows, train, cell.seed, accelerator, is_regression=task.is_regression,
                     desc=f"{task.name}/{cell.model}/{cell.head.label}/s{cell.seed}", callbacks=hooks,
                     metrics=task.compute_metrics)
        metrics = dict(result.metrics)
        # Training loss at the end (moving average, main process): beside the score it tells a task that
        # was memorised (low train_loss, chance score) from one that was never fitted.
        metrics["train_loss"] = round(result.final_loss, 4)
        row.update(score=metrics[task.metric], metrics=metrics, epochs=round(result.epochs, 4), steps=result.steps,
                   train_seconds=round(result.train_seconds, 3),
                   samples_per_second=round(result.samples_per_second, 2), status="ok", error="")
        if accelerator.is_main_process:
            split = task.primary_eval_split
            results.save_predictions(config.out_dir, cell.run_id, result.predictions[split], result.labels[split])
    except Exception as error:  # NaN loss, out of memory, a family's quirk: the grid goes on
        if is_write_error(error):  # disk full, read-only folder: no later run could be kept either; stop
            raise
        if "out of memory" in str(error).lower() and torch.cuda.is_available():
            torch.cuda.empty_cache()
        row.update(status="failed", error=f"{type(error).__name__}: {error}"[:2000])
        log.warning("failed: %s/%s/%s/seed %d: %s", task.name, cell.model, cell.head.label, cell.seed, row["error"])
        if not isinstance(error, NonFiniteLoss):
            log.debug("%s", traceback.format_exc(limit=-3))
    row["finished_at"] = results.utc_now()
    return row


def finished_since(config: GridConfig, since: float):
    """What a worker started at ``since`` (unix time) counts as done when it looks for its next cell: any
    row written since then (ok or failed: a run that failed is not tried again by every worker of the
    same launch) and, without ``force``, any ``ok`` row."""
    def finished(rows) -> set:
        done = {r["run_id"] for r in rows if results.finished_key(r["finished_at"])[1] >= since}
        if not config.force:
            done |= {r["run_id"] for r in rows if r["status"] == "ok"}
        return done
    return finished


def _next_cell(claims: Optional[Claims], todo: list, finished, accelerator) -> Optional[Cell]:
    """The main process claims the next free cell; under a launcher every process trains that one."""
    index = -1
    if claims is not None:
        cell, _ = claims.claim_next(todo, finished)
        index = next(i for i, c in enumerate(todo) if c is cell) if cell is not None else -1
    if accelerator.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        index = broadcast_object_list([index])[0]
    return todo[index] if index >= 0 else None


def run_grid(config: GridConfig, accelerator, splits_by_task: Optional[dict] = None) -> dict:
    """Run every pending cell this worker can claim (``claims``: workers started with the same command
    on one folder split its cells, each trained once); returns counts: ``pending`` the runs made here,
    ``elsewhere`` the cells left pending at the start that other workers ran or still hold.
    ``splits_by_task`` may hold already-loaded data."""
    store = results.ResultsStore(config.out_dir / "runs.csv")
    git_sha()  # read at the start, not when each row is written
    started = time.time()
    todo = pending(config, store)
    counts = {"total": len(cells(config)), "pending": len(todo), "ok": 0, "failed": 0, "elsewhere": 0}
    claims = Claims(store, config.lease) if accelerator.is_main_process else None
    finished = finished_since(config, started)
    prepared: dict = {}
    splits_by_task = dict(splits_by_task or {})
    bar = tqdm(total=len(todo), desc="grid", unit="run", disable=progress_disabled(accelerator))
    while (cell := _next_cell(claims, todo, finished, accelerator)) is not None:
        key = (cell.task.name, cell.model)
        if key not in prepared:
            prepared.clear()  # one (task, model) in memory at a time
            if cell.task.name not in splits_by_task:
                splits_by_task[cell.task.name] = load_splits(cell.task, config)
            prepared[key] = Prepared(cell.task, splits_by_task[cell.task.name], cell.model, config)
        with claims.held(cell.run_id) if claims is not None else nullcontext():
            row = run_cell(cell, prepared[key], config, accelerator)
            if accelerator.is_main_process:
                store.append(row)
        counts[row["status"]] += 1
        bar.set_postfix(ok=counts["ok"], failed=counts["failed"], refresh=False)
        bar.update(1)
    bar.close()
    counts["pending"] = counts["ok"] + counts["failed"]
    counts["elsewhere"] = len(todo) - counts["pending"]
    return counts
