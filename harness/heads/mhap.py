"""``mhap``: multi-head latent-query attention pooling, the modern reference.

A learned latent query attends over V with several heads, then a residual MLP, as the MAP
heads of SigLIP / timm's ``AttentionPoolLatent``:

    h      = MultiHeadAttention(query=l, keys=V, values=V, mask)   (B, 1, D), l learned (1, 1, D)
    pooled = h + MLP(LayerNorm(h))                                 (B, D)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .base import HeadOptionError, HeadOutput, PoolingHead, check_positive, collect, full_mask, maybe_append


@dataclass
class MHAPConfig:
    heads: int = 8
    mlp_ratio: float = 4.0

    def __post_init__(self):
        check_positive("heads", self.heads)
        if self.mlp_ratio <= 0:
            raise HeadOptionError(f"option mlp_ratio={self.mlp_ratio} must be positive")


class MultiheadAttentionPool(PoolingHead):
    def __init__(self, dim: int, config: MHAPConfig | None = None, spatial_dims: int = 1):
        super().__init__()
        config = config or MHAPConfig()
        if dim % config.heads:
            divisors = [h for h in (1, 2, 4, 6, 8, 12, 16) if dim % h == 0]
            raise HeadOptionError(f"mhap: heads={config.heads} does not divide the hidden size {dim}; try heads={divisors[-1]}")
        self.config, self.out_dim = config, dim
        self.latent = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.attn = nn.MultiheadAttention(dim, config.heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        hidden = int(dim * config.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, states, mask=None, first=None, grid=None, return_internals=False) -> HeadOutput:
        mask = full_mask(states) if mask is None else mask
        latent = self.latent.to(states.dtype).expand(states.shape[0], -1, -1)  # (B, 1, D)
        h, weights = self.attn(latent, states, states, key_padding_mask=~mask, need_weights=return_internals)
        pooled = (h + self.mlp(self.norm(h)))[:, 0]  # (B, D)
        attentions = collect(return_internals)
        maybe_append(attentions, None if weights is None else weights[:, 0])  # (B, N), averaged over heads
        return HeadOutput(pooled, attentions)
