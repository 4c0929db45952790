"""sla-bench: Stacked Latent Attention and its references as drop-in pooling for HF classifiers.

    import harness
    model = harness.patch(hf_classifier, head="sla-3")

Names are imported lazily, so ``harness.results`` and ``harness.stats`` load without torch.
"""
from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "patch": "patcher", "from_pretrained": "patcher", "head_parameters": "patcher",
    "PatchedModelForSequenceClassification": "patcher", "PatchedModelForImageClassification": "patcher",
    "UnsupportedArchitectureError": "families", "supported_families": "families",
    "HeadOptionError": "heads", "HeadSpec": "heads", "UnknownHeadError": "heads", "available_heads": "heads",
    "build_head": "heads", "parse_head_spec": "heads", "register_head": "heads",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
