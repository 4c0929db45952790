"""Pooling heads: Hugging-Face-free modules from backbone states (B, N, D) to a vector (B, D_out)."""
from .attention import AttentionPool, AttnConfig
from .base import HeadOptionError, HeadOutput, PoolingHead, masked_mean, masked_softmax
from .mhap import MHAPConfig, MultiheadAttentionPool
from .registry import HeadSpec, UnknownHeadError, available_heads, build_head, parse_head_spec, register_head
from .san import SANConfig, StackedAttention
from .simple import ClsPool, MeanPool
from .sla import SLAConfig, StackedLatentAttention

__all__ = [
    "AttentionPool", "AttnConfig", "ClsPool", "HeadOptionError", "HeadOutput", "HeadSpec", "MeanPool",
    "MHAPConfig", "MultiheadAttentionPool", "PoolingHead", "SANConfig", "SLAConfig", "StackedAttention",
    "StackedLatentAttention", "UnknownHeadError", "available_heads", "build_head", "masked_mean",
    "masked_softmax", "parse_head_spec", "register_head",
]
