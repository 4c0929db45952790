"""The paper's analyses: depth, gradient flow, attention weights, width.

:mod:`harness.analyses.plots` turns the tidy frames the harness records into PNG figures and the CSV
behind each one. Its functions are re-exported here, imported on first use (matplotlib is not loaded
until a figure is asked for).
"""

from __future__ import annotations

import importlib
from typing import Any

_PLOTS = (
    "CI_LEVEL",
    "mean_ci",
    "summarize",
    "plot_depth",
    "plot_width",
    "plot_gradient_variance",
    "plot_gradient_histograms",
    "plot_attention",
    "gradient_variance_tables",
    "gradient_histogram_tables",
    "attention_tables",
    "draw_gradient_variance",
    "draw_gradient_histograms",
    "draw_attention",
)

__all__ = list(_PLOTS)


def __getattr__(name: str) -> Any:
    if name in _PLOTS:
        return getattr(importlib.import_module(".plots", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
