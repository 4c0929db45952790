"""The training loop: fine-tune (or probe) one model on one task, then predict on evaluation sets.

A plain accelerate loop rather than ``transformers.Trainer``: the whole recipe fits on one
screen, it adds nothing to the bare forward/backward/step (the overhead benchmark checks that),
and ``accelerate launch`` runs it data-parallel unchanged. The recipe:

- AdamW; two learning rates: ``lr`` for the backbone (``model.base_model``, which holds a native
  pretrained pooler such as BERT's), ``head_lr`` for everything else (a patched head and its classifier;
  for ``native``, the classifier);
  linear warm-up over ``warmup_ratio`` of the steps, then linear decay; gradient clipping.
- Seeding: the caller builds the model under ``seed``; here the data order comes from a
  generator seeded with ``seed`` (every head sees the same batches), and the global RNG is
  reseeded at every step from (seed, step), so dropout in the backbone draws the same masks
  whatever the head consumed before.
- Checkpoint rule: the final model is evaluated (no selection on the evaluation set).
- A non-finite loss stops the run, which is then recorded as failed with the step.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from . import data


@dataclass
class TrainConfig:
    epochs: float = 3.0
    max_steps: Optional[int] = None  # overrides epochs
    batch_size: int = 32
    eval_batch_size: int = 128
    lr: Optional[float] = None  # backbone; None: backbone_lr's default for a pretrained model
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    group_by_length: bool = True
    freeze_backbone: bool = False
    compile: bool = False  # torch.compile the model (dynamic shapes: batches are padded per batch)
    check_every: int = 10  # steps between finiteness checks of the loss (each one is a host sync)


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class TrainResult:
    steps: int
    epochs: float
    train_seconds: float
    samples_per_second: float
    final_loss: float
    predictions: dict = field(default_factory=dict)  # eval split -> (N,) predicted class ids or values
    labels: dict = field(default_factory=dict)  # eval split -> (N,) labels
    metrics: dict = field(default_factory=dict)  # from ``fit``'s ``metrics``: "name" (first split), "split/name"


PRETRAINED_LR, SCRATCH_LR = 5e-5, 1e-3


def progress_disabled(accelerator) -> Optional[bool]:
    """tqdm's ``disable``: bars on the local main process only, and only on a terminal (None: tqdm
    turns them off when stderr is not a TTY, so a redirected log holds messages, not bars), and not
    under ``-q`` (the ``harness`` logger above INFO)."""
    quiet = not logging.getLogger("harness").isEnabledFor(logging.INFO)
    return True if quiet or not accelerator.is_local_main_process else None


def backbone_lr(lr: Optional[float], pretrained: bool = True) -> float:
    """The backbone's learning rate: ``lr`` when given, else 5e-5 for pretrained weights (fine-tuning)
    and 1e-3 for a backbone trained from scratch with its head."""
    return lr if lr is not None else PRETRAINED_LR if pretrained else SCRATCH_LR


def adamw(groups) -> torch.optim.Optimizer:
    """AdamW, fused where the build supports it (on CPU about 8x faster a step at MiniLM size)."""
    try:
        return torch.optim.AdamW(groups, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(groups)


def param_groups(model, config: TrainConfig) -> list[dict]:
    backbone = {id(p) for p in model.base_model.parameters()}
    lr = backbone_lr(config.lr)
    groups = {"backbone": ([], lr), "head": ([], config.head_lr)}
    for p in model.parameters():
        if not p.requires_grad:
            continue
        groups["backbone" if id(p) in backbone else "head"][0].append(p)
    out = []
    for name, (params, lr) in groups.items():
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim < 2]  # biases and norms
        out += [{"params": decay, "lr": lr, "weight_decay": config.weight_decay, "name": name},
                {"params": no_decay, "lr": lr, "weight_decay": 0.0, "name": name}]
    return [g for g in out if g["params"]]


def fit(model, train_rows, eval_rows: dict, config: TrainConfig, seed: int, accelerator,
        is_regression: bool = False, desc: str = "", callbacks=(), metrics=None) -> TrainResult:
    """Train ``model`` on ``train_rows`` and predict every split of ``eval_rows``.

    ``callbacks``: :class:`harness.callbacks.Callback` objects (analyses, trackers), called at the
    points that module lists. ``metrics(predictions, labels) -> dict``, if given, scores every
    evaluation split; the first split's names are kept as they are, the others get ``split/``.
    """
    from .callbacks import CallbackList

    callbacks = CallbackList(callbacks)
    if config.freeze_backbone:
        model.base_model.requires_grad_(False)
    train_loader = data.loader(train_rows, config.batch_size, seed=seed, group_by_length=config.group_by_length)
    optimizer = adamw(param_groups(model, config))
    if config.compile:
        model = torch.compile(model, dynamic=True)
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    # Counted after prepare: with N processes each one sees 1/N of the batches of an epoch. The
    # scheduler is not prepared, so it advances once per optimizer step whatever N is.
    steps_per_epoch = max(1, len(train_loader))
    total = config.max_steps or max(1, math.ceil(config.epochs * steps_per_epoch))
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total), total)

    if callbacks:
        callbacks.on_train_begin(accelerator.unwrap_model(model))
    model.train()
    step, seen, running = 0, 0, torch.zeros((), device=accelerator.device)
    bad = torch.zeros((), dtype=torch.bool, device=accelerator.device)
    bar = tqdm(total=total, desc=desc, leave=False, disable=progress_disabled(accelerator), unit="step")
    start = time.perf_counter()
    while step < total:
        for batch in train_loader:
            torch.manual_seed(seed * 1_000_003 + step)  # the same dropout masks for every head
            with accelerator.autocast():
                loss = model(**batch).loss
            accelerator.backward(loss)
            if callbacks:
                callbacks.on_after_backward(accelerator.unwrap_model(model), step)
            if config.max_grad_norm:
                accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            detached = loss.detach()
            bad |= ~torch.isfinite(detached)
            running = 0.9 * running + 0.1 * detached if step else detached
            if callbacks:
                callbacks.on_step_end(accelerator.unwrap_model(model), step, detached)
            step += 1
            seen += batch["labels"].shape[0] * accelerator.num_processes
            if step % config.check_every == 0 or step == total:
                if bad.item():
                    raise NonFiniteLoss(f"loss became NaN or infinite by step {step}")
                bar.set_postfix(loss=f"{running.item():.4f}", refresh=False)
            bar.update(1)
            if step >= total:
                break
    seconds = time.perf_counter() - start
    bar.close()

    predictions, labels = {}, {}
    for split, rows in eval_rows.items():
        predictions[split], labels[split] = predict(model, rows, config.eval_batch_size, accelerator, is_regression)
    scores = {}
    for i, split in enumerate(eval_rows if metrics is not None else ()):
        prefix = "" if i == 0 else f"{split}/"
        scores.update({prefix + k: v for k, v in metrics(predictions[split], labels[split]).items()})
    result = TrainResult(step, step / steps_per_epoch, seconds, seen / max(seconds, 1e-9), float(running.item()),
                         predictions, labels, scores)
    if callbacks:
        callbacks.on_train_end(accelerator.unwrap_model(model), result)
    # The accelerator keeps what it prepared; release it, or a grid holds every run's model and optimizer.
    accelerator.free_memory()
    return result


@torch.no_grad()
def predict(model, rows, batch_size: int, accelerator, is_regression: bool) -> tuple[np.ndarray, np.ndarray]:
    """(predictions, labels) over all rows, in order: class ids, or values for regression."""
    model.eval()
    loader = accelerator.prepare(data.loader(rows, batch_size))
    outputs, targets = [], []
    for batch in loader:
        labels = batch.pop("labels")
        with accelerator.autocast():
            logits = model(**batch).logits.float()
        logits, labels = accelerator.gather_for_metrics((logits, labels))
        outputs.append(logits.squeeze(-1) if is_regression else logits.argmax(-1))
        targets.append(labels)
    model.train()
    return torch.cat(outputs).cpu().numpy(), torch.cat(targets).cpu().numpy()
