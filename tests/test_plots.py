"""harness.analyses.plots: each figure is written as a PNG, with the CSV behind it holding the right numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from harness.analyses import (
    mean_ci,
    plot_attention,
    plot_depth,
    plot_gradient_histograms,
    plot_gradient_variance,
    plot_width,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
T_975_2 = 4.302652729749462  # scipy.stats.t.ppf(0.975, df=2)


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 5000


def half_width(values) -> float:
    values = np.asarray(values, float)
    return T_975_2 * values.std(ddof=1) / math.sqrt(len(values))  # 3 values: df = 2


def test_mean_ci_known_values():
    n, mean, low, high = mean_ci([0.70, 0.72, 0.74])
    assert n == 3 and mean == pytest.approx(0.72)
    assert (low, high) == pytest.approx((0.72 - 0.0496827, 0.72 + 0.0496827), abs=1e-6)
    assert mean_ci([0.5, float("nan"), 0.5])[1:] == (0.5, 0.5, 0.5)  # NaN dropped; zero width
    n, mean, low, high = mean_ci([0.6])
    assert (n, mean) == (1, 0.6) and math.isnan(low) and math.isnan(high)
    assert mean_ci([])[0] == 0


def score_frame(x: str, xs) -> pd.DataFrame:
    rows = []
    for task in ("pointer-2", "pointer-4"):
        for family, slope in (("san", 0.0), ("sla", 0.05)):
            for i, value in enumerate(xs):
                for seed, noise in enumerate((-0.02, 0.0, 0.02)):
                    rows.append((task, family, value, seed, 0.6 + slope * i + noise, "accuracy"))
    return pd.DataFrame(rows, columns=["task", "head_family", x, "seed", "score", "metric"])


def test_plot_depth(tmp_path):
    frame = score_frame("depth", range(1, 7))
    png, csv = plot_depth(frame, tmp_path / "figs" / "depth.png")
    assert (png.name, csv.name) == ("depth.png", "depth.csv")
    assert_png(png)
    table = pd.read_csv(csv)
    assert list(table.columns) == ["task", "head_family", "depth", "n", "mean", "ci_low", "ci_high"]
    assert len(table) == 2 * 2 * 6
    row = table[(table.task == "pointer-4") & (table.head_family == "sla") & (table.depth == 3)].iloc[0]
    scores = [0.70 - 0.02, 0.70, 0.70 + 0.02]  # 0.6 + 0.05 * 2, three seeds
    assert row["n"] == 3 and row["mean"] == pytest.approx(0.70)
    assert row["ci_low"] == pytest.approx(0.70 - half_width(scores))
    assert row["ci_high"] == pytest.approx(0.70 + half_width(scores))
    # a CSV path works as input, and a missing column is named
    frame.to_csv(tmp_path / "runs.csv", index=False)
    assert plot_depth(tmp_path / "runs.csv", tmp_path / "again")[1].read_text() == csv.read_text()
    with pytest.raises(ValueError, match="depth"):
        plot_depth(frame.drop(columns="depth"), tmp_path / "bad")


def test_plot_width(tmp_path):
    png, csv = plot_width(score_frame("d", [16, 32, 64, 128]), tmp_path / "width")
    assert_png(png)
    table = pd.read_csv(csv)
    assert list(table.columns) == ["task", "head_family", "d", "n", "mean", "ci_low", "ci_high"]
    row = table[(table.task == "pointer-2") & (table.head_family == "san") & (table.d == 64)].iloc[0]
    assert row["mean"] == pytest.approx(0.6) and row["ci_high"] - row["mean"] == pytest.approx(
        half_width([0.58, 0.60, 0.62]))


def test_plot_gradient_variance(tmp_path):
    rows = []
    for family, scale in (("san", 0.01), ("sla", 1.0)):
        for seed in range(3):
            for layer in (1, 2, 3):
                for step in range(40):
                    norm = scale * layer * (seed + 1) * (1 + step % 4)  # steps cycle through 1, 2, 3, 4
                    rows.append(("pointer-3", family, seed, layer, step, norm, norm / 10))
    frame = pd.DataFrame(rows, columns=["task", "head_family", "seed", "layer", "step", "grad_norm", "grad_std"])
    png, csv, curves_csv = plot_gradient_variance(frame, tmp_path / "grad_var.png")
    assert_png(png)
    table = pd.read_csv(csv)
    assert list(table.columns) == ["task", "head_family", "layer", "n", "mean", "ci_low", "ci_high"]
    cycle = np.tile([1.0, 2.0, 3.0, 4.0], 10)
    per_seed = [np.var(1.0 * 2 * (s + 1) * cycle, ddof=1) for s in range(3)]  # sla, layer 2
    row = table[(table.head_family == "sla") & (table.layer == 2)].iloc[0]
    assert row["n"] == 3 and row["mean"] == pytest.approx(np.mean(per_seed))
    assert row["ci_high"] - row["mean"] == pytest.approx(half_width(per_seed))
    san = table[(table.head_family == "san") & (table.layer == 2)].iloc[0]
    assert san["mean"] == pytest.approx(row["mean"] * 1e-4)
    assert curves_csv.name == "grad_var_curves.csv.gz" and curves_csv.read_bytes()[:2] == b"\x1f\x8b"  # gzip
    assert curves_csv.read_bytes()[4:8] == bytes(4)  # no timestamp: a rewrite of the same numbers is byte-identical
    curves = pd.read_csv(curves_csv)
    assert len(curves) == 2 * 3 * 40
    c = curves[(curves.head_family == "sla") & (curves.layer == 1) & (curves.step == 5)].iloc[0]
    assert c["mean"] == pytest.approx(np.mean([1 * (s + 1) * 2 for s in range(3)]))


def test_plot_gradient_histograms(tmp_path):
    rng = np.random.default_rng(0)
    samples = pd.concat(
        pd.DataFrame({"head_family": family, "layer": layer, "value": rng.normal(0, scale * layer, n)})
        for family, scale, n in (("san", 0.001, 500), ("sla", 0.01, 800))
        for layer in (1, 2, 3)
    )
    png, csv, summary_csv = plot_gradient_histograms(samples, tmp_path / "grad_hist", bins=40)
    assert_png(png)
    table = pd.read_csv(csv)
    counts = table.groupby(["head_family", "layer"])["count"].sum()
    assert (counts.xs("san") == 500).all() and (counts.xs("sla") == 800).all()
    assert table.groupby(["head_family", "layer"])["fraction"].sum().to_numpy() == pytest.approx(1.0)
    assert len(table) == 2 * 3 * 40
    summary = pd.read_csv(summary_csv)
    g = samples[(samples.head_family == "sla") & (samples.layer == 3)]["value"]
    row = summary[(summary.head_family == "sla") & (summary.layer == 3)].iloc[0]
    assert row["n"] == 800 and row["var"] == pytest.approx(np.var(g, ddof=1))


def test_plot_attention(tmp_path):
    rng = np.random.default_rng(1)
    weights, entropy = [], []
    for family, alpha in (("san", 1.0), ("sla", 0.3)):
        for layer in (1, 2):
            a = rng.dirichlet(np.full(12, alpha), size=60)  # 60 examples, 12 real positions
            weights.append(pd.DataFrame({"head_family": family, "layer": layer, "weight": a.ravel()}))
            entropy.append(pd.DataFrame({"head_family": family, "layer": layer,
                                         "entropy": -(a * np.log(a)).sum(axis=1)}))
    weights, entropy = pd.concat(weights), pd.concat(entropy)
    paths = plot_attention(weights, tmp_path / "attention", entropy, bins=20)
    png, csv, summary_csv, entropy_csv = paths
    assert_png(png)
    table = pd.read_csv(csv)
    assert (table.groupby(["head_family", "layer"])["count"].sum() == 60 * 12).all()
    assert table["bin_low"].min() == 0.0 and table["bin_high"].max() == 1.0
    summary = pd.read_csv(summary_csv)
    assert summary["mean"].to_numpy() == pytest.approx(1 / 12)  # weights sum to 1 over 12 positions
    ent = pd.read_csv(entropy_csv)
    e = entropy[(entropy.head_family == "sla") & (entropy.layer == 2)]["entropy"].to_numpy()
    row = ent[(ent.head_family == "sla") & (ent.layer == 2)].iloc[0]
    half = 2.000995378088267 * e.std(ddof=1) / math.sqrt(60)  # t.ppf(0.975, 59)
    assert row["n"] == 60 and row["mean"] == pytest.approx(e.mean())
    assert row["ci_high"] - row["mean"] == pytest.approx(half, rel=1e-9)
    assert row["mean"] - row["ci_low"] == pytest.approx(half, rel=1e-9)
    # without entropies: one CSV fewer
    assert len(plot_attention(weights, tmp_path / "attention_only")) == 3


def test_layer_figures_keep_tasks_apart(tmp_path):
    """Two tasks with different layer counts: each (task, layer) gets its own histogram and entropy,
    never a pool of both tasks' weights or gradients."""
    rng = np.random.default_rng(2)
    weights, entropy, grads = [], [], []
    for task, layers, positions in (("pointer-1", (1, 2), 4), ("pointer-2", (1, 2, 3), 16)):
        for family in ("san", "sla"):
            for layer in layers:
                a = rng.dirichlet(np.ones(positions), size=30)
                weights.append(pd.DataFrame({"task": task, "head_family": family, "layer": layer, "weight": a.ravel()}))
                entropy.append(pd.DataFrame({"task": task, "head_family": family, "layer": layer,
                                             "entropy": -(a * np.log(a)).sum(axis=1)}))
                grads.append(pd.DataFrame({"task": task, "head_family": family, "layer": layer,
                                           "value": rng.normal(0, 1.0 if task == "pointer-1" else 1e-3, 200)}))
    weights, entropy, grads = pd.concat(weights), pd.concat(entropy), pd.concat(grads)
    png, csv, summary_csv, entropy_csv = plot_attention(weights, tmp_path / "attention", entropy, bins=10)
    assert_png(png)
    counts = pd.read_csv(csv).groupby(["task", "head_family", "layer"])["count"].sum()
    assert counts.xs("pointer-1").eq(30 * 4).all() and counts.xs("pointer-2").eq(30 * 16).all()
    assert len(counts) == 2 * (2 + 3)
    summary = pd.read_csv(summary_csv).set_index(["task", "head_family", "layer"])
    assert summary.loc[("pointer-1", "san", 2), "mean"] == pytest.approx(1 / 4)
    assert summary.loc[("pointer-2", "san", 2), "mean"] == pytest.approx(1 / 16)
    ent = pd.read_csv(entropy_csv).set_index(["task", "head_family", "layer"])
    e = entropy[(entropy.task == "pointer-2") & (entropy.head_family == "sla") & (entropy.layer == 3)]["entropy"]
    assert ent.loc[("pointer-2", "sla", 3), "mean"] == pytest.approx(e.mean())
    assert ("pointer-1", "sla", 3) not in ent.index
    # gradient bins are set per task: pointer-2's tiny gradients are not lost in pointer-1's range
    png, csv, summary_csv = plot_gradient_histograms(grads, tmp_path / "grad_hist", bins=20)
    assert_png(png)
    table = pd.read_csv(csv)
    p2 = table[(table.task == "pointer-2") & (table.layer == 1)]
    assert p2["bin_high"].max() < 0.01 and (p2.groupby("head_family")["count"].sum() == 200).all()
    assert (p2["count"] > 0).sum() > 10  # spread over the bins, not piled into one
    summary = pd.read_csv(summary_csv)
    assert set(zip(summary.task, summary.layer)) == {("pointer-1", 1), ("pointer-1", 2), ("pointer-2", 1),
                                                     ("pointer-2", 2), ("pointer-2", 3)}
