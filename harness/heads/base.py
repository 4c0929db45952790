"""Building blocks shared by every pooling head.

Every head maps backbone states to one pooled vector per example:

    V     (B, N, D)   token states / ViT patches / a CNN grid flattened to N = H * W positions
    mask  (B, N)      True at real positions (text padding is False; all True for images)
    first (B, D)      the backbone's first (CLS) token, where it has one, else None
    grid  (H, W)      the spatial shape of the N positions, for grids, else None
    ->
    HeadOutput.pooled (B, D_out)

Heads import nothing from Hugging Face: the patcher extracts (V, mask, first, grid) per family.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class HeadOutput:
    """What a head returns.

    pooled:     (B, D_out) the vector handed to the classifier.
    attentions: per attention layer, (B, N) weights summing to 1 over real positions;
                only filled when the head is called with ``return_internals=True``.
    latents:    per layer, the latent spatial map s_t (B, N, d), same condition.
    """

    pooled: torch.Tensor
    attentions: Optional[list[torch.Tensor]] = None
    latents: Optional[list[torch.Tensor]] = None


class PoolingHead(nn.Module):
    """Base class: subclasses set ``out_dim`` and implement ``forward``."""

    out_dim: int

    def forward(
        self,
        states: torch.Tensor,
        mask: Optional[torch.Tensor] = None,
        first: Optional[torch.Tensor] = None,
        grid: Optional[tuple[int, int]] = None,
        return_internals: bool = False,
    ) -> HeadOutput:  # pragma: no cover - interface
        raise NotImplementedError


def full_mask(states: torch.Tensor) -> torch.Tensor:
    """(B, N) all-True mask for inputs without padding (images)."""
    return torch.ones(states.shape[:2], dtype=torch.bool, device=states.device)


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dim of (B, N) scores, restricted to ``mask``.

    Padding gets exactly zero weight: the masked scores are pushed to the dtype's minimum
    (so exp underflows to 0) and the result is multiplied by the mask, which also turns a row
    with no real position into zeros instead of NaN.
    """
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return torch.softmax(scores, dim=-1) * mask


def masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, N, D), (B, N) -> (B, D): mean over real positions only."""
    weights = mask.to(states.dtype).unsqueeze(-1)  # (B, N, 1)
    return (states * weights).sum(1) / weights.sum(1).clamp_min(1.0)


class PositionConv(nn.Module):
    """A convolution over positions: ``W v_i`` with a 1x1 kernel, a local kernel k otherwise.

    kernel=1 is a per-position linear map (the paper's "1x1 convolution"). kernel=k>1 mixes
    neighbours: along the sequence (Conv1d) for text, over the H x W grid (Conv2d) for images,
    chosen by ``spatial_dims`` at construction. Padded positions are zeroed first, so a real
    position next to padding sees exactly what it would see at the sequence's end (the
    convolution's own zero padding): extra padding never changes a real position's output.
    """

    def __init__(self, in_dim: int, out_dim: int, kernel: int = 1, spatial_dims: int = 1, bias: bool = True):
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"kernel must be a positive odd integer (1, 3, 5, ...), got {kernel}")
        if spatial_dims not in (1, 2):
            raise ValueError(f"spatial_dims must be 1 (sequence) or 2 (grid), got {spatial_dims}")
        self.kernel, self.spatial_dims = kernel, spatial_dims
        if kernel == 1:
            self.proj = nn.Linear(in_dim, out_dim, bias=bias)
        elif spatial_dims == 1:
            self.proj = nn.Conv1d(in_dim, out_dim, kernel, padding=kernel // 2, bias=bias)
        else:
            self.proj = nn.Conv2d(in_dim, out_dim, kernel, padding=kernel // 2, bias=bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, grid: Optional[tuple[int, int]] = None) -> torch.Tensor:
        # x: (B, N, C_in) -> (B, N, C_out)
        if self.kernel == 1:
            return self.proj(x)
        x = x * mask.unsqueeze(-1).to(x.dtype)
        if self.spatial_dims == 1:
            return self.proj(x.transpose(1, 2)).transpose(1, 2)
        if grid is None:
            raise ValueError("a 2-D kernel needs the grid (H, W) of the positions; this input has none")
        h, w = grid
        b, n, c = x.shape
        if h * w != n:
            raise ValueError(f"grid {h}x{w} does not match {n} positions")
        y = self.proj(x.transpose(1, 2).reshape(b, c, h, w))  # (B, C_out, H, W)
        return y.flatten(2).transpose(1, 2)


QUERY_SOURCES = ("mean", "cls", "learned")


class InitialQuery(nn.Module):
    """The first query q0 (B, D): ``mean`` of real positions, the backbone's ``cls`` token, or a
    ``learned`` vector (as in latent-query pooling)."""

    def __init__(self, dim: int, source: str = "mean"):
        super().__init__()
        if source not in QUERY_SOURCES:
            raise ValueError(f"query must be one of {QUERY_SOURCES}, got {source!r}")
        self.source = source
        self.learned = nn.Parameter(torch.randn(dim) * 0.02) if source == "learned" else None

    def forward(self, states: torch.Tensor, mask: torch.Tensor, first: Optional[torch.Tensor]) -> torch.Tensor:
        if self.source == "mean":
            return masked_mean(states, mask)
        if self.source == "cls":
            if first is None:
                raise ValueError("query=cls needs the backbone's first token, and this backbone has none: use query=mean or query=learned")
            return first
        return self.learned.to(states.dtype).expand(states.shape[0], -1)


ACTIVATIONS = {"relu": F.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "gelu": F.gelu}


class AdditiveAttentionLayer(nn.Module):
    """One layer of additive attention, the unit that ``attn``, ``san-K`` and ``sla-K`` stack:

        s_i = phi(W_in x_i + W_q q)      latent spatial state        (B, N, d)
        e_i = w . s_i                    relative importance         (B, N)
        a   = masked softmax(e)          padding gets exactly zero   (B, N)

    ``x`` is V itself (attn, san) or V concatenated with the carried latent state (sla). The
    caller forms the content vector z = sum_i a_i v_i, since what is summed differs by head.
    """

    def __init__(self, in_dim: int, query_dim: int, d: int, kernel: int = 1, phi: str = "tanh", spatial_dims: int = 1):
        super().__init__()
        if phi not in ACTIVATIONS:
            raise ValueError(f"phi must be one of {sorted(ACTIVATIONS)}, got {phi!r}")
        self.phi = ACTIVATIONS[phi]
        self.proj_in = PositionConv(in_dim, d, kernel, spatial_dims)  # W_in
        self.proj_q = nn.Linear(query_dim, d, bias=False)  # W_q
        self.score = nn.Linear(d, 1, bias=False)  # w

    def forward(self, x, query, mask, grid=None) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.phi(self.proj_in(x, mask, grid) + self.proj_q(query).unsqueeze(1))  # (B, N, d)
        a = masked_softmax(self.score(s).squeeze(-1), mask)  # (B, N)
        return s, a


def attend(weights: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """z = sum_i a_i v_i: (B, N), (B, N, C) -> (B, C)."""
    return torch.bmm(weights.unsqueeze(1).to(values.dtype), values).squeeze(1)


def next_query(query: torch.Tensor, content: torch.Tensor, update: str) -> torch.Tensor:
    """q_{t+1} = z_t (``replace``) or q_t + z_t (``residual``, as the original SAN)."""
    return content if update == "replace" else query + content


def collect(enabled: bool) -> Optional[list]:
    """A list to gather internals into when asked, else None (no cost when not asked)."""
    return [] if enabled else None


def maybe_append(store: Optional[Sequence], item) -> None:
    if store is not None:
        store.append(item)


class HeadOptionError(ValueError):
    """A head option that does not exist or has a value outside its choices."""


def check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise HeadOptionError(f"option {name}={value!r} is not valid: choose one of {', '.join(map(str, choices))}")


def check_positive(name: str, value: int) -> None:
    if value < 1:
        raise HeadOptionError(f"option {name}={value} must be a positive integer")


def check_common(config) -> None:
    """Checks the options that attn, san and sla share: d, kernel, query (and depth, query_update)."""
    check_positive("d", config.d)
    if config.kernel < 1 or config.kernel % 2 == 0:
        raise HeadOptionError(f"option kernel={config.kernel} must be a positive odd integer (1, 3, 5, ...)")
    check_choice("query", config.query, QUERY_SOURCES)
    if hasattr(config, "depth"):
        check_positive("depth (the K in san-K / sla-K)", config.depth)
    if hasattr(config, "query_update"):
        check_choice("query_update", config.query_update, ("replace", "residual"))
