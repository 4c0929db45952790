"""The paper's analyses as figures: tidy frames in, a PNG and the CSV behind it out.

Every function takes a pandas DataFrame (or the path of a CSV holding one) in long ("tidy") form,
writes ``<path>.png`` and ``<path>.csv`` (plus, where a figure has more to show, CSVs
``<path>_<what>.csv`` or ``.csv.gz``, named in each function's docstring) and returns the written paths,
PNG first. ``path`` may end in ``.png`` or not.
Figures are drawn on a bare :class:`matplotlib.figure.Figure` (Agg canvas, no pyplot state), so this
works headless and never changes the caller's backend.

========================== ======================================================= ==========================
function                   frame columns (``[x]`` = optional)                      what it shows
========================== ======================================================= ==========================
:func:`plot_depth`         ``task, head_family, depth, [seed], score, [metric]``   score vs K per task, CI band
:func:`plot_width`         ``task, head_family, d, [seed], score, [metric]``       score vs latent size d (log2)
:func:`plot_gradient_      ``[task], head_family, [seed], layer, step,             variance over steps of the
variance`                  grad_norm, [grad_std]``                                 gradient norm per layer; the
                                                                                   norm over steps per layer
:func:`plot_gradient_      ``[task], head_family, layer, value`` (raw gradient     per-layer histograms, SAN vs
histograms`                entries)                                                SLA overlaid (paper Fig. 5)
:func:`plot_attention`     ``[task], head_family, layer, weight`` + entropy frame  per-layer weight histograms
                           ``[task], head_family, layer, entropy`` (one row per    and mean entropy (Fig. 6)
                           example)
========================== ======================================================= ==========================

The layer-by-layer figures come in two steps, so that they can be redrawn without the raw records:
``gradient_variance_tables`` / ``gradient_histogram_tables`` / ``attention_tables`` reduce the frames
to the per-(task, head_family, layer) tables behind the figure (the CSVs it writes), and
``draw_gradient_variance`` / ``draw_gradient_histograms`` / ``draw_attention`` draw the figure and write
those CSVs from the tables alone; ``plot_*`` is the one after the other.

``layer`` is 1-based, 1 = the attention layer nearest the input. Layer-by-layer figures draw each task
apart (a row of panels per task): layers of different tasks are never pooled. A frame without ``task``
is one task, named ``all``. Confidence intervals (:func:`mean_ci`)
are two-sided Student-t intervals of the mean, ``mean +- t(0.975, n-1) * sd / sqrt(n)`` with ``sd`` the
ddof=1 standard deviation: over seeds for scores and gradient variances, over examples for entropies.
They are NaN with fewer than 2 values (the plot then shows the mean alone).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.colors import to_rgb
from scipy import stats

__all__ = [
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
]

CI_LEVEL = 0.95
SUMMARY_COLUMNS = ("n", "mean", "ci_low", "ci_high")
_KNOWN_COLORS = {"sla": "tab:red", "san": "tab:blue", "attn": "tab:gray", "mhap": "tab:green",
                 "native": "black", "cls": "tab:brown", "mean": "tab:olive"}
_CI_NOTE = "{shape}: {pct:g}% Student-t CI of the mean over {over} (scipy.stats.t)"


# ---------------------------------------------------------------------------- statistics
def mean_ci(values: Iterable[float], level: float = CI_LEVEL) -> tuple[int, float, float, float]:
    """``(n, mean, ci_low, ci_high)`` of the finite values: Student-t interval; NaN bounds if n < 2."""
    x = np.asarray(list(values), dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return 0, math.nan, math.nan, math.nan
    mean = float(x.mean())
    if n == 1:
        return 1, mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return n, mean, mean - half, mean + half


def summarize(frame: pd.DataFrame, by: Sequence[str], value: str, level: float = CI_LEVEL) -> pd.DataFrame:
    """One row per group of ``by``: ``by..., n, mean, ci_low, ci_high`` of ``value`` (see :func:`mean_ci`)."""
    rows = [(*(key if isinstance(key, tuple) else (key,)), *mean_ci(group[value], level))
            for key, group in frame.groupby(list(by), sort=True)]
    return pd.DataFrame(rows, columns=[*by, *SUMMARY_COLUMNS])


# ---------------------------------------------------------------------------- helpers
def _frame(data: pd.DataFrame | str | Path, required: Sequence[str], name: str) -> pd.DataFrame:
    frame = data.copy() if isinstance(data, pd.DataFrame) else pd.read_csv(data)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"{name}: the frame lacks column(s) {missing}; it has {list(frame.columns)}")
    if frame.empty:
        raise ValueError(f"{name}: the frame is empty")
    return frame


def _out(path: str | Path, *extra: str) -> list[Path]:
    """``[<path>.png, <path>.csv, <path>_<extra>.csv ...]``, the folder created."""
    base = Path(path)
    base = base.with_suffix("") if base.suffix.lower() in (".png", ".csv") else base
    base.parent.mkdir(parents=True, exist_ok=True)
    return [base.with_name(base.name + ".png"), base.with_name(base.name + ".csv"),
            *(base.with_name(f"{base.name}_{e}.csv") for e in extra)]


def _colors(families: Iterable[str]) -> dict[str, str]:
    spare = itertools.cycle(("tab:orange", "tab:purple", "tab:pink", "tab:cyan"))  # not in _KNOWN_COLORS
    # 'sla-6:d=64' takes the colour of 'sla'
    return {f: _KNOWN_COLORS.get(str(f).lower().split(":")[0].split("-")[0]) or next(spare) for f in families}


def _shade(color: str, strength: float) -> tuple[float, float, float]:
    """``color`` mixed with white: strength 1 = the colour itself, 0 = white."""
    rgb = np.array(to_rgb(color))
    return tuple(1 - strength * (1 - rgb))


def _six(values: pd.Series) -> np.ndarray:
    """``values`` at 6 significant digits (``%.6g``), as a compressed curves CSV holds them."""
    return np.array([float(f"{v:.6g}") for v in values], dtype=float)


def _range(n: pd.Series) -> str:
    return f"{n.min()}" if n.min() == n.max() else f"{n.min()}-{n.max()}"


def _label(family: str) -> str:
    return str(family).upper() if len(str(family)) <= 4 else str(family)


def _grid(n: int, ncols: int = 3, size: tuple[float, float] = (4.4, 3.4)):
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows + 0.9), layout="constrained", dpi=110)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, list(axes[:n])


def _with_task(frame: pd.DataFrame) -> pd.DataFrame:
    return frame if "task" in frame else frame.assign(task="all")


def _task_grid(tasks: Sequence[str], n: int, size: tuple[float, float] = (3.8, 3.2)):
    """``n`` panels per task: one task wraps them 4 to a row; several get a row each, so that a
    column is one layer across tasks. Returns the figure and ``{task: [axes]}``."""
    if len(tasks) == 1:
        fig, axes = _grid(n, ncols=4, size=size)
        return fig, {tasks[0]: axes}
    fig = Figure(figsize=(size[0] * n, size[1] * len(tasks) + 0.9), layout="constrained", dpi=110)
    axes = fig.subplots(len(tasks), n, squeeze=False)
    return fig, {task: list(row) for task, row in zip(tasks, axes)}


def _panel_title(task: str, layer: int, several: bool) -> str:
    title = f"attention layer {layer}" + (" (nearest the input)" if layer == 1 else "")
    return f"{task}: {title}" if several else title


def _finish(fig: Figure, title: str, caption: str, png: Path) -> None:
    fig.suptitle(title, fontsize=12)
    fig.supxlabel(caption, fontsize=8, color="0.3")
    fig.savefig(png)


def _hist_table(frame: pd.DataFrame, value: str, edges: Callable[[np.ndarray], np.ndarray]) -> pd.DataFrame:
    """Per (task, head_family, layer): counts and fractions of ``value`` in the bins ``edges(values of
    the task's layer)``, shared by the families of a layer; values beyond the ends go to the end bins."""
    rows = []
    for (task, layer), gl in frame.groupby(["task", "layer"], sort=True):
        e = edges(gl[value].to_numpy(float))
        for family, g in gl.groupby("head_family", sort=True):
            x = np.clip(g[value].to_numpy(float), e[0], e[-1])
            counts, _ = np.histogram(x, bins=e)
            rows += [(task, family, int(layer), lo, hi, int(c), c / max(len(x), 1))
                     for lo, hi, c in zip(e[:-1], e[1:], counts)]
    return pd.DataFrame(rows, columns=["task", "head_family", "layer", "bin_low", "bin_high", "count", "fraction"])


def _hist_panels(table: pd.DataFrame, axes: dict, colors: dict, xlabel: str) -> dict:
    """Draws each (task, layer) histogram in its panel; returns ``{(task, layer): ax}``."""
    panels = {}
    for task, gt in table.groupby("task", sort=True):
        for ax, (layer, g) in zip(axes[task], gt.groupby("layer", sort=True)):
            panels[task, layer] = ax
            for family, h in g.groupby("head_family", sort=True):
                edges = np.append(h["bin_low"].to_numpy(), h["bin_high"].iloc[-1])
                frac = np.where(h["fraction"] > 0, h["fraction"], np.nan)
                ax.stairs(h["fraction"], edges, fill=True, alpha=0.3, color=colors[family])
                ax.stairs(frac, edges, color=colors[family], label=_label(family), linewidth=1.2)
            ax.set_yscale("log")
            ax.set_title(_panel_title(task, layer, len(axes) > 1), fontsize=10)
            ax.set_xlabel(xlabel)
            ax.set_ylabel("fraction of samples (log)")
            ax.legend(fontsize=8)
    for task, row in axes.items():  # a task with fewer layers than the widest row leaves panels empty
        for ax in row[table.loc[table["task"] == task, "layer"].nunique():]:
            ax.set_visible(False)
    return panels


def _score_curves(frame, path, x: str, xlabel: str, what: str, log2: bool, level: float) -> list[Path]:
    png, csv = _out(path)
    table = summarize(frame, ["task", "head_family", x], "score", level)
    table.to_csv(csv, index=False)
    colors = _colors(sorted(table["head_family"].unique()))
    metrics = frame.groupby("task")["metric"].first().astype(str) if "metric" in frame else {}
    tasks = sorted(table["task"].unique())
    fig, axes = _grid(len(tasks))
    for ax, task in zip(axes, tasks):
        for family, g in table[table["task"] == task].groupby("head_family", sort=True):
            g = g.sort_values(x)
            ax.plot(g[x], g["mean"], marker="o", color=colors[family], label=_label(family))
            ax.fill_between(g[x], g["ci_low"], g["ci_high"], color=colors[family], alpha=0.2, linewidth=0)
        if log2:
            ax.set_xscale("log", base=2)
        ticks = sorted(table.loc[table["task"] == task, x].unique())
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.set_title(str(task), fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{metrics.get(task, 'score')} (mean over seeds)")
        ax.grid(alpha=0.3)
        ax.legend(title="head", fontsize=8)
    note = _CI_NOTE.format(shape="shaded band", pct=100 * level, over="seeds")
    caption = f"{note}; seeds per point: {_range(table['n'])}"
    metric = set(metrics.values) if len(metrics) else {"score"}
    _finish(fig, f"{metric.pop() if len(metric) == 1 else 'score'} vs {what}", caption, png)
    return [png, csv]


# ---------------------------------------------------------------------------- the analyses
def plot_depth(frame: pd.DataFrame | str | Path, path: str | Path, *, level: float = CI_LEVEL) -> list[Path]:
    """Score vs number of attention layers K, one panel per task, a line + CI band per head family.

    ``frame``: ``task, head_family, depth, [seed], score, [metric]``, one row per trained run.
    CSV: ``task, head_family, depth, n, mean, ci_low, ci_high`` (CI over seeds).
    """
    frame = _frame(frame, ["task", "head_family", "depth", "score"], "plot_depth")
    return _score_curves(frame, path, "depth", "attention layers K", "stacked attention layers K",
                         log2=False, level=level)


def plot_width(frame: pd.DataFrame | str | Path, path: str | Path, *, level: float = CI_LEVEL) -> list[Path]:
    """Score vs latent size d (log2 axis), one panel per task, a line + CI band per head family.

    ``frame``: ``task, head_family, d, [seed], score, [metric]``. CSV: ``task, head_family, d, n, mean,
    ci_low, ci_high``.
    """
    frame = _frame(frame, ["task", "head_family", "d", "score"], "plot_width")
    return _score_curves(frame, path, "d", "latent size d (log2 scale)", "latent size d", log2=True, level=level)


def gradient_variance_tables(frame: pd.DataFrame | str | Path, *, level: float = CI_LEVEL) -> dict[str, pd.DataFrame]:
    """The tables :func:`plot_gradient_variance` draws, from its ``frame`` (see there).

    ``{"table": task, head_family, layer, n, mean, ci_low, ci_high}``: per layer, the variance over steps of
    ``grad_norm`` (ddof=1) of each run (task, head_family, seed), then :func:`mean_ci` over the ``n`` seeds;
    ``{"curves": task, head_family, layer, step, n, mean, ci_low, ci_high}``: ``grad_norm`` per step, mean
    over seeds with its CI.
    """
    frame = _frame(frame, ["head_family", "layer", "step", "grad_norm"], "plot_gradient_variance")
    frame = frame.assign(task=frame.get("task", "all"), seed=frame.get("seed", 0))
    per_run = (frame.groupby(["task", "head_family", "seed", "layer"])["grad_norm"]
               .var(ddof=1).rename("var").reset_index())
    return {"table": summarize(per_run, ["task", "head_family", "layer"], "var", level),
            "curves": summarize(frame, ["task", "head_family", "layer", "step"], "grad_norm", level)}


def plot_gradient_variance(
    frame: pd.DataFrame | str | Path, path: str | Path, *, level: float = CI_LEVEL
) -> list[Path]:
    """Per attention layer: the variance over training steps of the gradient norm reaching it.

    ``frame``: ``[task], head_family, [seed], layer, step, grad_norm`` (one row per step and layer; other
    columns such as ``grad_std`` are ignored). Per task, left panel: for each layer (x) and head family
    (bars), the variance over steps of ``grad_norm`` (ddof=1), mean over seeds with CI; right panel:
    ``grad_norm`` over steps (mean over seeds), colour = layer, line style = head family.
    CSVs: ``<path>.csv`` = ``task, head_family, layer, n, mean, ci_low, ci_high`` (``mean`` is the mean
    over ``n`` seeds of the per-run variance); ``<path>_curves.csv.gz`` = ``task, head_family, layer, step,
    n, mean, ci_low, ci_high`` of ``grad_norm`` (one row per step: compressed, 6 significant digits). The
    curves are drawn at those 6 digits, so that the figure redrawn from that CSV is the same figure.
    """
    return draw_gradient_variance(gradient_variance_tables(frame, level=level), path, level=level)


def draw_gradient_variance(tables: dict[str, pd.DataFrame], path: str | Path, *, level: float = CI_LEVEL) -> list[Path]:
    """:func:`plot_gradient_variance`'s figure and CSVs from its tables (:func:`gradient_variance_tables`)."""
    table, curves = tables["table"], tables["curves"]
    png, csv, curves_csv = _out(path, "curves")
    curves_csv = curves_csv.with_name(curves_csv.name + ".gz")
    table.to_csv(csv, index=False)
    # mtime 0: the same numbers give the same bytes, so a --report-only rewrite leaves git quiet
    curves.to_csv(curves_csv, index=False, float_format="%.6g", compression={"method": "gzip", "mtime": 0})
    families = sorted(table["head_family"].unique())
    colors, styles = _colors(families), dict(zip(families, ["-", "--", ":", "-."] * 3))
    layers = sorted(table["layer"].unique())
    shade = {(f, l): _shade(colors[f], 0.35 + 0.65 * i / max(len(layers) - 1, 1))
             for f in families for i, l in enumerate(layers)}
    tasks = sorted(table["task"].unique())
    fig = Figure(figsize=(11, 3.8 * len(tasks) + 0.8), layout="constrained", dpi=110)
    axes = fig.subplots(len(tasks), 2, squeeze=False)
    width = 0.8 / len(families)
    for (ax_var, ax_curve), task in zip(axes, tasks):
        for i, family in enumerate(families):
            g = table[(table["task"] == task) & (table["head_family"] == family)].sort_values("layer")
            xs = g["layer"].to_numpy(float) + (i - (len(families) - 1) / 2) * width
            err = np.vstack([g["mean"] - g["ci_low"], g["ci_high"] - g["mean"]])
            ax_var.bar(xs, g["mean"], width, color=colors[family], alpha=0.8, label=_label(family),
                       yerr=np.nan_to_num(err), capsize=3)
            c = curves[(curves["task"] == task) & (curves["head_family"] == family)]
            for layer, lc in c.groupby("layer", sort=True):
                ax_curve.plot(lc["step"], _six(lc["mean"]), linestyle=styles[family], color=shade[family, layer],
                              linewidth=1.1, label=f"{_label(family)} layer {layer}")
        ax_var.set_yscale("log")
        ax_var.set_xticks(layers)
        ax_var.set_xlabel("attention layer (1 = nearest the input)")
        ax_var.set_ylabel("variance over steps of ||grad|| (log)")
        ax_var.set_title(f"{task}: gradient-norm variance per layer", fontsize=10)
        ax_var.legend(title="head", fontsize=8)
        ax_curve.set_yscale("log")
        ax_curve.set_xlabel("training step")
        ax_curve.set_ylabel("||grad|| of the layer's parameters (log)")
        ax_curve.set_title(f"{task}: gradient norm during training", fontsize=10)
        ax_curve.legend(fontsize=7, ncols=len(families), title="darker = nearer the output", title_fontsize=7)
    note = _CI_NOTE.format(shape="error bars", pct=100 * level, over="seeds")
    caption = (f"L2 norm of the gradient of each attention layer's parameters, recorded every step; left: "
               f"{note}, seeds per bar: {_range(table['n'])}; right: mean over seeds")
    _finish(fig, "Gradient flow per attention layer", caption, png)
    return [png, csv, curves_csv]


def gradient_histogram_tables(samples: pd.DataFrame | str | Path, *, bins: int = 60,
                              clip_quantile: float = 0.999) -> dict[str, pd.DataFrame]:
    """The tables :func:`plot_gradient_histograms` draws, from its ``samples`` (see there).

    ``{"table": task, head_family, layer, bin_low, bin_high, count, fraction}`` (``bins`` rows per task,
    family and layer) and ``{"summary": task, head_family, layer, n, mean, std, var, excess_kurtosis}``.
    """
    frame = _with_task(_frame(samples, ["head_family", "layer", "value"], "plot_gradient_histograms"))

    def edges(values: np.ndarray) -> np.ndarray:
        lim = float(np.quantile(np.abs(values[np.isfinite(values)]), clip_quantile)) or 1.0
        return np.linspace(-lim, lim, bins + 1)

    summary = frame.groupby(["task", "head_family", "layer"])["value"].agg(
        n="count", mean="mean", std="std", var="var",
        excess_kurtosis=lambda v: float(stats.kurtosis(v, fisher=True))).reset_index()
    return {"table": _hist_table(frame, "value", edges), "summary": summary}


def plot_gradient_histograms(
    samples: pd.DataFrame | str | Path, path: str | Path, *, bins: int = 60, clip_quantile: float = 0.999
) -> list[Path]:
    """Per task and attention layer, the histogram of raw gradient entries, head families overlaid
    (paper Fig. 5).

    ``samples``: ``[task], head_family, layer, value`` (gradient entries sampled during training). Per
    task and layer, symmetric bins over ``+-`` the ``clip_quantile`` of that layer's ``|value|`` (shared by the
    families so they compare; layers differ in scale); values beyond are counted in the end bins.
    Y = fraction of that family's samples (log scale), so families with different sample counts compare.
    CSVs: ``<path>.csv`` = ``task, head_family, layer, bin_low, bin_high, count, fraction``;
    ``<path>_summary.csv`` = ``task, head_family, layer, n, mean, std, var, excess_kurtosis`` (peakiness
    at 0).
    """
    tables = gradient_histogram_tables(samples, bins=bins, clip_quantile=clip_quantile)
    return draw_gradient_histograms(tables, path, clip_quantile=clip_quantile)


def _bins(table: pd.DataFrame) -> int:
    """The number of bins of a histogram table (rows per task, family and layer)."""
    return int(table.groupby(["task", "head_family", "layer"]).size().iloc[0])


def draw_gradient_histograms(tables: dict[str, pd.DataFrame], path: str | Path, *,
                             clip_quantile: float = 0.999) -> list[Path]:
    """:func:`plot_gradient_histograms`'s figure and CSVs from its tables (:func:`gradient_histogram_tables`;
    ``clip_quantile`` only names the bin range in the caption)."""
    table, summary = tables["table"], tables["summary"]
    png, csv, summary_csv = _out(path, "summary")
    bins = _bins(table)
    table.to_csv(csv, index=False)
    summary.to_csv(summary_csv, index=False)
    colors = _colors(sorted(table["head_family"].unique()))
    tasks = sorted(table["task"].unique())
    fig, axes = _task_grid(tasks, int(table.groupby("task")["layer"].nunique().max()))
    panels = _hist_panels(table, axes, colors, "gradient entry value")
    for (task, layer), g in summary.groupby(["task", "layer"], sort=True):
        note = "\n".join(f"{_label(r.head_family)} var {r.var:.2g}" for r in g.itertuples())
        panels[task, layer].text(0.02, 0.97, note, transform=panels[task, layer].transAxes, va="top", fontsize=7)
    caption = (f"raw gradient entries sampled during training; per task and layer {bins} bins on +-L, L = "
               f"the {100 * clip_quantile:g}th percentile of |value| in that layer (both heads), values "
               f"beyond counted in the end bins; x ranges differ between panels")
    _finish(fig, "Distribution of gradients per attention layer", caption, png)
    return [png, csv, summary_csv]


def attention_tables(frame: pd.DataFrame | str | Path, frame_entropy: pd.DataFrame | str | Path | None = None, *,
                     bins: int = 50, level: float = CI_LEVEL) -> dict[str, pd.DataFrame]:
    """The tables :func:`plot_attention` draws, from its frames (see there).

    ``{"table": task, head_family, layer, bin_low, bin_high, count, fraction}`` (``bins`` bins on [0, 1]),
    ``{"summary": task, head_family, layer, n, mean, median, p90, p99, max}`` of the weights and, when
    entropies are given, ``{"entropy": task, head_family, layer, n, mean, ci_low, ci_high}`` (CI over examples).
    """
    frame = _with_task(_frame(frame, ["head_family", "layer", "weight"], "plot_attention"))
    w = frame.groupby(["task", "head_family", "layer"])["weight"]
    tables = {"table": _hist_table(frame, "weight", lambda _: np.linspace(0.0, 1.0, bins + 1)),
              "summary": w.agg(n="count", mean="mean", median="median", p90=lambda v: v.quantile(0.9),
                               p99=lambda v: v.quantile(0.99), max="max").reset_index()}
    if frame_entropy is not None:
        ent = _with_task(_frame(frame_entropy, ["head_family", "layer", "entropy"], "plot_attention (entropy)"))
        tables["entropy"] = summarize(ent, ["task", "head_family", "layer"], "entropy", level)
    return tables


def plot_attention(
    frame: pd.DataFrame | str | Path,
    path: str | Path,
    frame_entropy: pd.DataFrame | str | Path | None = None,
    *,
    bins: int = 50,
    level: float = CI_LEVEL,
) -> list[Path]:
    """Per task and attention layer, the histogram of attention weights, head families overlaid, and
    the mean attention entropy per layer with CI (paper Fig. 6).

    ``frame``: ``[task], head_family, layer, weight`` (weights on real positions, sampled).
    ``frame_entropy``: ``[task], head_family, layer, entropy`` (one row per example, natural log, nats).
    CSVs: ``<path>.csv`` = ``task, head_family, layer, bin_low, bin_high, count, fraction`` (bins on
    [0, 1]); ``<path>_summary.csv`` = ``task, head_family, layer, n, mean, median, p90, p99, max`` of the
    weights; ``<path>_entropy.csv`` = ``task, head_family, layer, n, mean, ci_low, ci_high`` (CI over
    examples), when entropies are given.
    """
    return draw_attention(attention_tables(frame, frame_entropy, bins=bins, level=level), path, level=level)


def draw_attention(tables: dict[str, pd.DataFrame], path: str | Path, *, level: float = CI_LEVEL) -> list[Path]:
    """:func:`plot_attention`'s figure and CSVs from its tables (:func:`attention_tables`; with an
    ``entropy`` table, the entropy panels and ``<path>_entropy.csv``)."""
    table, summary, etable = tables["table"], tables["summary"], tables.get("entropy")
    png, csv, summary_csv, entropy_csv = _out(path, "summary", "entropy")
    bins = _bins(table)
    table.to_csv(csv, index=False)
    summary.to_csv(summary_csv, index=False)
    families = sorted(table["head_family"].unique())
    colors = _colors(families)
    tasks = sorted(table["task"].unique())
    n_layers = int(table.groupby("task")["layer"].nunique().max())
    fig, axes = _task_grid(tasks, n_layers + (etable is not None))
    _hist_panels(table, {t: a[:n_layers] for t, a in axes.items()}, colors, "attention weight")
    written = [png, csv, summary_csv]
    if etable is not None:
        etable.to_csv(entropy_csv, index=False)
        written.append(entropy_csv)
        for task in tasks:
            ax = axes[task][-1]
            for i, family in enumerate(families):
                g = etable[(etable["task"] == task) & (etable["head_family"] == family)].sort_values("layer")
                err = np.nan_to_num(np.vstack([g["mean"] - g["ci_low"], g["ci_high"] - g["mean"]]))
                ax.errorbar(g["layer"] + 0.08 * (i - (len(families) - 1) / 2), g["mean"], yerr=err, marker="o",
                            capsize=3, color=colors[family], label=_label(family))
            ax.set_xticks(sorted(etable.loc[etable["task"] == task, "layer"].unique()))
            ax.set_xlabel("attention layer (1 = nearest the input)")
            ax.set_ylabel("mean attention entropy (nats)")
            title = f"entropy per layer ({100 * level:g}% t-CI)"
            ax.set_title(f"{task}: {title}" if len(tasks) > 1 else title, fontsize=10)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    caption = ("attention weights on real (non-padding) positions, sampled from the evaluation set; "
               "y = fraction of that head's sampled weights per bin of width "
               f"{1 / bins:g}" + ("; last panel: entropy -sum a log a per example, mean with its Student-t CI "
                                  "over examples" if etable is not None else ""))
    _finish(fig, "Attention weights per layer", caption, png)
    return written
