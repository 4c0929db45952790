"""The two parameter-free references: ``cls`` (first token) and ``mean`` (masked mean)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import HeadOutput, PoolingHead, full_mask, masked_mean


@dataclass
class NoOptions:
    """These heads take no options."""


class ClsPool(PoolingHead):
    """pooled = the backbone's first token (B, D); an error for backbones without one."""

    def __init__(self, dim: int, config: NoOptions | None = None, spatial_dims: int = 1):
        super().__init__()
        self.out_dim = dim

    def forward(self, states, mask=None, first=None, grid=None, return_internals=False) -> HeadOutput:
        if first is None:
            raise ValueError("head 'cls' needs the backbone's first token, and this backbone has none: use 'mean' instead")
        return HeadOutput(first)


class MeanPool(PoolingHead):
    """pooled = sum_i m_i v_i / sum_i m_i, the mean over real positions (B, D)."""

    def __init__(self, dim: int, config: NoOptions | None = None, spatial_dims: int = 1):
        super().__init__()
        self.out_dim = dim

    def forward(self, states, mask=None, first=None, grid=None, return_internals=False) -> HeadOutput:
        mask = full_mask(states) if mask is None else mask
        return HeadOutput(masked_mean(states, mask))
