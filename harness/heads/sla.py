"""``sla-K``: Stacked Latent Attention (Fan & Zhou, CVPR 2018), in sla-bench's formulation.

The latent spatial state is carried from layer to layer along a convolutional pathway; each
layer's attention is a side branch whose heat-map is concatenated back onto that pathway:

    c_0 = (nothing)
    s_t = phi(P_t [V ; c_{t-1}] + Q_t q_t)     (B, N, d)   P_t: conv over positions (1x1, or k)
    a_t = masked softmax(w_t . s_t)            (B, N)      the attention branch
    z_t = sum_i a_t,i V_i                      (B, D)      content vector
    c_t = [s_t ; a_t]                          (B, N, d+1) carry=latent+attn   ([s_t] for carry=latent)
    q_{t+1} = z_t                              (replace; residual: q_t + z_t)
    pooled = [z_K ; sum_i a_K,i s_K,i]         (B, D+d)    readout=z+latent    (z_K for readout=z)

phi defaults to ReLU, so the pathway V -> s_1 -> ... -> s_K -> pooled has no saturating
activation (the paper's third fault of stacked attention). With K=1, phi=tanh and readout=z
this is exactly ``attn`` (same parameters, same numbers).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import (ACTIVATIONS, AttentionStack, HeadOutput, InitialQuery, PoolingHead, attend, check_choice,
                   check_common, collect, full_mask, in_compute_dtype, maybe_append, next_query)


@dataclass
class SLAConfig:
    depth: int = 2  # K
    d: int = 256  # latent size
    kernel: int = 1
    query: str = "mean"
    query_update: str = "replace"
    phi: str = "relu"  # tanh / sigmoid for ablations of the saturation argument
    carry: str = "latent+attn"  # what c_t carries to the next layer
    readout: str = "z+latent"  # what the classifier sees

    def __post_init__(self):
        check_common(self)
        check_choice("phi", self.phi, sorted(ACTIVATIONS))
        check_choice("carry", self.carry, ("latent+attn", "latent"))
        check_choice("readout", self.readout, ("z+latent", "z"))


class StackedLatentAttention(PoolingHead):
    def __init__(self, dim: int, config: SLAConfig | None = None, spatial_dims: int = 1):
        super().__init__()
        config = config or SLAConfig()
        self.config = config
        self.carry_attn = config.carry == "latent+attn"
        self.readout_latent = config.readout == "z+latent"
        self.out_dim = dim + (config.d if self.readout_latent else 0)
        carried = config.d + (1 if self.carry_attn else 0)
        self.query = InitialQuery(dim, config.query)
        self.stack = AttentionStack(dim, config.depth, config.d, config.kernel, config.phi, spatial_dims,
                                    carry_dim=carried)

    def layer_gradients(self) -> list:
        return self.stack.layer_gradients()

    def forward(self, states, mask=None, first=None, grid=None, return_internals=False) -> HeadOutput:
        mask = full_mask(states) if mask is None else mask
        attentions, latents = collect(return_internals), collect(return_internals)
        states = in_compute_dtype(states)
        query = self.query(states, mask, first)  # (B, D)
        carry = None
        for t, projected in enumerate(self.stack.project_values(states, mask, grid)):  # P_t^V V
            s, a = self.stack.layer(t, projected, query, mask, carry, grid)  # + P_t^c c_{t-1} inside
            content = attend(a, states)  # (B, D)
            query = next_query(query, content, self.config.query_update)
            # c_t (B, N, d [+1]). Padding never reaches a real position: a 1x1 projection keeps positions
            # apart, and a wider kernel zeroes padded positions first (PositionConv).
            carry = torch.cat([s, a.unsqueeze(-1).to(s.dtype)], -1) if self.carry_attn else s
            maybe_append(attentions, a)
            maybe_append(latents, s)
        pooled = torch.cat([content, attend(a, s)], -1) if self.readout_latent else content
        return HeadOutput(pooled, attentions, latents)
