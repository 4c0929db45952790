"""Where each Hugging Face family keeps what a pooling head needs.

A family adapter turns a backbone's output into the heads' inputs (see ``heads.base``):
``states`` (B, N, D), ``mask`` (B, N), ``first`` (B, D) or None, ``grid`` (H, W) or None.
Adding a family is one entry in ``FAMILIES``; nothing here knows about tasks or training.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn


class UnsupportedArchitectureError(ValueError):
    """A model whose family sla-bench cannot patch."""


@dataclass(frozen=True)
class Family:
    """How to read one family's backbone.

    layout: ``tokens`` (text: every position, a padding mask), ``vit`` (a CLS-like prefix of
    ``n_prefix`` tokens, then an H x W patch grid), ``swin`` (an H x W grid of tokens, no
    prefix), ``cnn`` (a (B, C, H, W) feature map).
    """

    modality: str  # "text" | "image"
    layout: str
    hidden_size: Callable[[object], int]
    n_prefix: Callable[[object], int] = lambda config: 0

    @property
    def spatial_dims(self) -> int:
        return 1 if self.layout == "tokens" else 2


def _hidden(config) -> int:
    return config.hidden_size


def _last_stage(config) -> int:
    return config.hidden_sizes[-1]


_TEXT = Family("text", "tokens", _hidden)

FAMILIES: dict[str, Family] = {
    # text: model_type -> adapter
    "bert": _TEXT, "roberta": _TEXT, "xlm-roberta": _TEXT, "camembert": _TEXT, "distilbert": _TEXT,
    "albert": _TEXT, "electra": _TEXT, "deberta-v2": _TEXT, "modernbert": _TEXT,
    # vision
    "vit": Family("image", "vit", _hidden, lambda c: 1),
    "deit": Family("image", "vit", _hidden, lambda c: 2),  # CLS + distillation token
    "beit": Family("image", "vit", _hidden, lambda c: 1),
    "dinov2": Family("image", "vit", _hidden, lambda c: 1),
    "swin": Family("image", "swin", _hidden),
    "convnext": Family("image", "cnn", _last_stage),
    "resnet": Family("image", "cnn", _last_stage),
}


def supported_families() -> str:
    text = sorted(k for k, f in FAMILIES.items() if f.modality == "text")
    image = sorted(k for k, f in FAMILIES.items() if f.modality == "image")
    return f"text: {', '.join(text)}; vision: {', '.join(image)}"


def family_of(config) -> Family:
    model_type = getattr(config, "model_type", None)
    if model_type not in FAMILIES:
        raise UnsupportedArchitectureError(
            f"sla-bench cannot patch model_type {model_type!r}. Supported families: {supported_families()}. "
            "Use head='native' for any other model, or add an entry to harness/families.py:FAMILIES.")
    return FAMILIES[model_type]


def drop_native_pooling(backbone: nn.Module) -> None:
    """Remove the backbone's own pooling layers (their output is no longer used), so they hold no
    parameters that never receive a gradient. Parameter-free pooling is left in place."""
    if isinstance(getattr(backbone, "pooler", None), nn.Module) and any(True for _ in backbone.pooler.parameters()):
        backbone.pooler = None
    if getattr(backbone.config, "model_type", None) == "convnext":
        backbone.layernorm = nn.Identity()  # ConvNeXt's norm only serves its mean-pooled output


def _swin_grid(config, pixel_values: torch.Tensor) -> tuple[int, int]:
    # The patch embedding pads to a multiple of the patch size; every patch merging halves (rounding up).
    patch = config.patch_size if isinstance(config.patch_size, int) else config.patch_size[0]
    h, w = -(-pixel_values.shape[-2] // patch), -(-pixel_values.shape[-1] // patch)
    for _ in range(len(config.depths) - 1):
        h, w = (h + 1) // 2, (w + 1) // 2
    return h, w


def head_inputs(family: Family, config, last_hidden_state: torch.Tensor, inputs: dict
                ) -> tuple[torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor], Optional[tuple[int, int]]]:
    """(states (B, N, D), mask (B, N) or None, first (B, D) or None, grid (H, W) or None)."""
    if family.layout == "tokens":
        mask = inputs.get("attention_mask")
        return last_hidden_state, None if mask is None else mask.bool(), last_hidden_state[:, 0], None
    if family.layout == "cnn":  # (B, C, H, W) -> (B, H*W, C)
        h, w = last_hidden_state.shape[-2:]
        return last_hidden_state.flatten(2).transpose(1, 2), None, None, (h, w)
    pixel_values = inputs["pixel_values"]
    if family.layout == "swin":
        return last_hidden_state, None, None, _swin_grid(config, pixel_values)
    # vit: prefix tokens, then the patch grid in row-major order
    prefix = family.n_prefix(config)
    patch = config.patch_size if isinstance(config.patch_size, int) else config.patch_size[0]
    grid = (pixel_values.shape[-2] // patch, pixel_values.shape[-1] // patch)
    return last_hidden_state[:, prefix:], None, last_hidden_state[:, 0], grid
