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

    def layer_gradients(self) -> list[torch.Tensor]:
        """Per stacked attention layer t (0 = nearest the input), the gradient of that layer's own
        parameters as one flat vector (empty before a backward pass). Heads without stacked
        layers (``cls``, ``mean``, ``mhap``) have none."""
        return []


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
        check_kernel(kernel)
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
            raise ValueError("a 2-D kernel needs the grid (H, W) of the positions, and this input has none: "
                             "use kernel=1, or pass grid=(H, W)")
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
        check_choice("query", source, QUERY_SOURCES)
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


class AttentionStack(nn.Module):
    """K layers of additive attention over V: the unit that ``attn`` (K=1), ``san-K`` and ``sla-K`` share.

        s_t = phi(W_v,t V + W_c,t c_{t-1} + W_q,t q_t)   latent spatial state   (B, N, d)
        a_t = masked softmax(w_t . s_t)                  relative importance    (B, N)

    ``W_c,t c_{t-1}`` is the carried latent state of SLA (``carry_dim`` > 0); SAN has none. The V
    projections of all K layers are one convolution with K*d outputs, computed once: the same
    maps as K separate ones (a block each), with one pass over V instead of K. Likewise
    P_t [V ; c] = P_t^V V + P_t^c c, so SLA's projection of the concatenation is split the same way.
    The caller forms z_t and the next query, since those differ by head.
    """

    def __init__(self, dim: int, depth: int, d: int, kernel: int = 1, phi: str = "tanh", spatial_dims: int = 1,
                 carry_dim: int = 0):
        super().__init__()
        check_choice("phi", phi, sorted(ACTIVATIONS))
        self.depth, self.d, self.phi = depth, d, ACTIVATIONS[phi]
        self.proj_v = PositionConv(dim, depth * d, kernel, spatial_dims)  # [W_v,1; ...; W_v,K]
        self.proj_q = nn.ModuleList(nn.Linear(dim, d, bias=False) for _ in range(depth))  # W_q,t
        self.score = nn.ModuleList(nn.Linear(d, 1, bias=False) for _ in range(depth))  # w_t
        self.proj_c = nn.ModuleList(PositionConv(carry_dim, d, kernel, spatial_dims, bias=False)
                                    for _ in range(depth - 1)) if carry_dim else None  # W_c,t, t >= 2

    def layer_parameters(self, t: int) -> list[torch.Tensor]:
        """Layer t's own parameters (0-based): its block of the fused V projection (rows t*d..(t+1)*d
        of the weight and bias, as views), W_q,t, w_t and, for SLA at t >= 1, W_c,t."""
        d = self.d
        parts = [self.proj_v.proj.weight[t * d:(t + 1) * d], self.proj_q[t].weight, self.score[t].weight]
        if self.proj_v.proj.bias is not None:
            parts.append(self.proj_v.proj.bias[t * d:(t + 1) * d])
        if self.proj_c is not None and t > 0:
            parts.append(self.proj_c[t - 1].proj.weight)
        return parts

    def layer_gradients(self) -> list[torch.Tensor]:
        """Per layer t, the gradient of ``layer_parameters(t)`` flattened into one float vector."""
        d = self.d
        out = []
        for t in range(self.depth):
            grads = [self.proj_v.proj.weight.grad, self.proj_q[t].weight.grad, self.score[t].weight.grad]
            if any(g is None for g in grads):
                return []
            parts = [grads[0][t * d:(t + 1) * d], grads[1], grads[2]]
            if self.proj_v.proj.bias is not None and self.proj_v.proj.bias.grad is not None:
                parts.append(self.proj_v.proj.bias.grad[t * d:(t + 1) * d])
            if self.proj_c is not None and t > 0 and self.proj_c[t - 1].proj.weight.grad is not None:
                parts.append(self.proj_c[t - 1].proj.weight.grad)
            out.append(torch.cat([p.detach().float().flatten() for p in parts]))
        return out

    def project_values(self, states, mask, grid=None) -> list[torch.Tensor]:
        """[W_v,t V for t in 1..K], each (B, N, d)."""
        return list(self.proj_v(states, mask, grid).split(self.d, dim=-1))

    def layer(self, t: int, projected, query, mask, carry=None, grid=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer t (0-based): (s_t (B, N, d), a_t (B, N))."""
        pre = projected + self.proj_q[t](query).unsqueeze(1)
        if carry is not None:
            pre = pre + self.proj_c[t - 1](carry, mask, grid)
        s = self.phi(pre)
        return s, masked_softmax(self.score[t](s).squeeze(-1), mask)


def in_compute_dtype(states: torch.Tensor) -> torch.Tensor:
    """V cast once to the autocast dtype (when autocast is on), not once per layer and use."""
    kind = states.device.type
    if torch.is_autocast_enabled(kind):
        return states.to(torch.get_autocast_dtype(kind))
    return states


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


def check_kernel(kernel: int) -> None:
    if kernel < 1 or kernel % 2 == 0:  # odd: 'same' padding keeps every position centred
        raise HeadOptionError(f"option kernel={kernel} must be a positive odd integer (1, 3, 5, ...)")


def check_common(config) -> None:
    """Checks the options that attn, san and sla share: d, kernel, query (and depth, query_update)."""
    check_positive("d", config.d)
    check_kernel(config.kernel)
    check_choice("query", config.query, QUERY_SOURCES)
    if hasattr(config, "depth"):
        check_positive("depth (the K in san-K / sla-K)", config.depth)
    if hasattr(config, "query_update"):
        check_choice("query_update", config.query_update, ("replace", "residual"))
