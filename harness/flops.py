"""Forward FLOPs per example: the ``flops_per_sample`` column of runs.csv and the speed benchmark's head costs.

One forward pass in eval mode under PyTorch's ``FlopCounterMode``, which counts matrix multiplications,
convolutions and attention (elementwise ops, softmax and normalisations are not counted):

    flops_per_example = counted FLOPs of the forward pass on ``inputs`` / batch size

A matmul of ``(m, k) @ (k, n)`` counts ``2 m k n``. ``scaled_dot_product_attention`` is forced to its
math kernel, so attention counts as its two matmuls on every device (the fused CPU kernel has no FLOP
formula, and would count 0). Autograd stays on: the counter's module tracker fails on some heads under
``no_grad``.
"""
from __future__ import annotations

from typing import Mapping, Optional

import torch

__all__ = ["forward_flops"]


def forward_flops(model: torch.nn.Module, inputs: Mapping[str, torch.Tensor], batch: Optional[int] = None) -> float:
    """Forward FLOPs per example of ``model`` on ``inputs`` (a batch of model inputs: ``input_ids``,
    ``attention_mask``, ``pixel_values``, ...; a ``labels`` entry is ignored), on its first ``batch``
    examples when given. The inputs go to the model's device; the model is left in train mode."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.parameters()).device
    sample = {k: (v if batch is None else v[:batch]).to(device) for k, v in inputs.items() if k != "labels"}
    if not sample:
        raise ValueError("forward_flops needs model inputs (input_ids, pixel_values, ...); got only labels")
    counter = FlopCounterMode(display=False)
    model.eval()
    try:
        with sdpa_kernel([SDPBackend.MATH]), counter:
            model(**sample)
    finally:
        model.train()
    return counter.get_total_flops() / len(next(iter(sample.values())))
