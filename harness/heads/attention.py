"""``attn``: one layer of standard additive attention pooling.

    s_i = tanh(W_v v_i + W_h q0)      (B, N, d)   W_v: a convolution over positions (1x1 by default)
    e_i = w_u . s_i                   (B, N)
    a   = masked softmax(e)           padding gets exactly zero weight
    z   = sum_i a_i v_i               (B, D)      the pooled output
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import (AttentionStack, HeadOutput, InitialQuery, PoolingHead, attend, check_common, collect, full_mask,
                   in_compute_dtype, maybe_append)


@dataclass
class AttnConfig:
    d: int = 256  # latent size of s
    kernel: int = 1  # 1: per-position projection; 3, 5: local convolution over the sequence / grid
    query: str = "mean"  # q0: mean of V, the backbone's cls token, or a learned vector

    def __post_init__(self):
        check_common(self)


class AttentionPool(PoolingHead):
    def __init__(self, dim: int, config: AttnConfig | None = None, spatial_dims: int = 1):
        super().__init__()
        config = config or AttnConfig()
        self.config, self.out_dim = config, dim
        self.query = InitialQuery(dim, config.query)
        # The same parameter names as sla-1, so that sla-1 (phi=tanh, readout=z) can load them.
        self.stack = AttentionStack(dim, 1, config.d, config.kernel, "tanh", spatial_dims)

    def layer_gradients(self) -> list:
        return self.stack.layer_gradients()

    def forward(self, states, mask=None, first=None, grid=None, return_internals=False) -> HeadOutput:
        mask = full_mask(states) if mask is None else mask
        states = in_compute_dtype(states)
        s, a = self.stack.layer(0, self.stack.project_values(states, mask, grid)[0],
                                self.query(states, mask, first), mask, grid=grid)
        attentions, latents = collect(return_internals), collect(return_internals)
        maybe_append(attentions, a)
        maybe_append(latents, s)
        return HeadOutput(attend(a, states), attentions, latents)
