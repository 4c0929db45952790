"""``san-K``: stacked attention (Yang et al. 2016), the control SLA argues against.

K additive-attention layers; layer t's query is built from the previous content vector, and
each layer recomputes its latent state from V alone (the previous s_t is thrown away):

    s_t = tanh(W_v,t V + W_h,t q_t)    (B, N, d)
    a_t = masked softmax(w_t . s_t)    (B, N)
    z_t = sum_i a_t,i v_i              (B, D)
    q_{t+1} = z_t   (query_update=replace)   or   q_t + z_t   (residual, as the original SAN)
    pooled = z_K
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import (AttentionStack, HeadOutput, InitialQuery, PoolingHead, attend, check_common, collect, full_mask,
                   in_compute_dtype, maybe_append, next_query)


@dataclass
class SANConfig:
    depth: int = 2  # K, the number of stacked layers
    d: int = 256
    kernel: int = 1
    query: str = "mean"
    query_update: str = "replace"

    def __post_init__(self):
        check_common(self)


class StackedAttention(PoolingHead):
    def __init__(self, dim: int, config: SANConfig | None = None, spatial_dims: int = 1):
        super().__init__()
        config = config or SANConfig()
        self.config, self.out_dim = config, dim
        self.query = InitialQuery(dim, config.query)
        self.stack = AttentionStack(dim, config.depth, config.d, config.kernel, "tanh", spatial_dims)

    def layer_gradients(self) -> list:
        return self.stack.layer_gradients()

    def forward(self, states, mask=None, first=None, grid=None, return_internals=False) -> HeadOutput:
        mask = full_mask(states) if mask is None else mask
        attentions, latents = collect(return_internals), collect(return_internals)
        states = in_compute_dtype(states)
        query = self.query(states, mask, first)  # (B, D)
        for t, projected in enumerate(self.stack.project_values(states, mask, grid)):  # W_v,t V: from V alone
            s, a = self.stack.layer(t, projected, query, mask, grid=grid)
            content = attend(a, states)  # (B, D)
            query = next_query(query, content, self.config.query_update)
            maybe_append(attentions, a)
            maybe_append(latents, s)
        return HeadOutput(content, attentions, latents)
