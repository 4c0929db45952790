"""Recorders that read a head's internals during and after training, for the gradient and
attention analyses. They work on any model with a ``head`` built on ``AttentionStack``
(``attn``, ``san-K``, ``sla-K``): a patched HF model or a probe model alike.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..callbacks import Callback


class GradientRecorder(Callback):
    """After each backward pass: per layer (``head.layer_gradients()``), the norm and spread of the
    gradient reaching that layer, plus a fixed random sample of raw entries every ``sample_every``
    steps. At the end of training, ``save(rows, samples)`` (if given) keeps them."""

    def __init__(self, labels: dict, sample: int = 50, sample_every: int = 10, seed: int = 0, save=None):
        self.labels, self.sample, self.sample_every, self.save = labels, sample, sample_every, save
        self.rows, self.samples = [], []
        self.rng = np.random.default_rng(seed)

    def on_after_backward(self, model, step: int) -> None:
        head = getattr(model, "head", None)
        if head is None or not hasattr(head, "layer_gradients"):
            return
        for t, grad in enumerate(head.layer_gradients()):
            self.rows.append({**self.labels, "layer": t + 1, "step": step, "grad_norm": grad.norm().item(),
                              "grad_std": grad.std().item()})
            if step % self.sample_every == 0:
                picks = self.rng.choice(grad.numel(), size=min(self.sample, grad.numel()), replace=False)
                self.samples += [{**self.labels, "layer": t + 1, "value": v} for v in grad[picks].tolist()]

    def on_train_end(self, model, result) -> None:
        if self.save is not None:
            self.save(steps=self.rows, samples=self.samples)


class AttentionRecorder(Callback):
    """After training: ``attention_weights`` of the head on ``rows`` (the primary evaluation split),
    handed to ``save(weights, entropy)``."""

    def __init__(self, rows, labels: dict, save):
        self.rows, self.labels, self.save = rows, labels, save

    def on_train_end(self, model, result) -> None:
        weights, entropy = attention_weights(model, self.rows, self.labels)
        self.save(weights=weights, entropy=entropy)


@torch.no_grad()
def attention_weights(model, rows, labels: dict, batch_size: int = 128, max_weights: int = 2000,
                      seed: int = 0) -> tuple[list, list]:
    """After training: per layer, attention weights at real positions (a random sample) and the
    entropy -sum_i a_i log a_i of each example's attention (nats)."""
    from ..data import loader

    if not hasattr(model, "capture_internals"):
        return [], []
    model.eval()
    model.capture_internals = True
    weights, entropies = {}, []
    try:
        for batch in loader(rows, batch_size):
            batch.pop("labels")
            model(**batch)
            out = model.last_head_output
            if out is None or not out.attentions:
                return [], []
            mask = batch.get("attention_mask", batch.get("mask"))
            for t, a in enumerate(out.attentions):
                a = a.float()
                real = torch.ones_like(a, dtype=torch.bool) if mask is None else mask.bool()
                weights.setdefault(t + 1, []).append(a[real])
                entropy = -(a * torch.log(a.clamp_min(1e-12))).sum(-1)
                entropies += [{**labels, "layer": t + 1, "entropy": e} for e in entropy.tolist()]
    finally:
        model.capture_internals = False
        model.train()
    rng = np.random.default_rng(seed)
    samples = []
    for layer, parts in weights.items():
        values = torch.cat(parts).numpy()
        keep = rng.choice(len(values), size=min(max_weights, len(values)), replace=False)
        samples += [{**labels, "layer": layer, "weight": float(v)} for v in values[keep]]
    return samples, entropies


def head_family(label: str) -> Optional[str]:
    """'sla-3:d=64' -> 'sla': the heads whose attention the analyses read (``attn``, ``san``, ``sla`` and
    ``mhap``'s latent queries); None for the others (``native``, ``cls``, ``mean``). Gradients per layer
    come from heads built on ``AttentionStack`` only (``GradientRecorder`` skips the rest)."""
    name = label.split(":")[0].split("-")[0]
    return name if name in ("attn", "san", "sla", "mhap") else None
