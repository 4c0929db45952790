"""The compact summary of the analysis records (harness/analyses/summary.py): the gradient and attention
figures redraw byte-identical from it once the raw per-run records are gone, its numbers are the ones
the raw records give, and it never mixes runs it does not cover."""
from __future__ import annotations

import gzip
import json
import logging
import math
import shutil

import numpy as np
import pandas as pd
import pytest

from harness.analyses.drivers import finalize, record_dir, save_records, summary_path
from harness.analyses.summary import SCHEMAS, SummaryError, read_curves, read_summary, write_summary

TASKS = ("pointer-1", "pointer-2")
HEADS = {"san-2": dict(d=256, depth=2), "sla-2": dict(d=256, depth=2), "native": {}}
STEPS, LAYERS = 30, 2


def grad_norm(task: int, family: str, seed: int, layer: int, step: int) -> float:
    """A known series: the variance over steps of each run's norm is computable by hand."""
    scale = (1e-3 if family == "san" else 1.0) * layer * (task + 1)
    return scale * (seed + 1) * (1 + step % 3)


def write_run(out, runs: list, task: int, head: str, seed: int) -> None:
    rid = f"r{task}{head[:3]}{seed}"
    runs.append(dict(run_id=rid, task=TASKS[task], head=head, head_options=json.dumps(HEADS[head]), seed=seed,
                     status="ok", score=0.5))
    if head == "native":
        return  # no attention to read, no records
    rng = np.random.default_rng([task, seed, len(head)])
    family = head[:3]
    steps = [dict(layer=layer, step=step, grad_norm=grad_norm(task, family, seed, layer, step), grad_std=0.1)
             for layer in range(1, LAYERS + 1) for step in range(STEPS)]
    samples = [dict(layer=layer, value=v) for layer in range(1, LAYERS + 1) for v in rng.normal(0, layer, 40)]
    a = rng.dirichlet(np.ones(6), size=20)
    weights = [dict(layer=layer, weight=w) for layer in range(1, LAYERS + 1) for w in a.ravel()]
    entropy = [dict(layer=layer, entropy=e) for layer in range(1, LAYERS + 1) for e in -(a * np.log(a)).sum(1)]
    save_records(out, "gradients", rid, steps=steps, samples=samples)
    save_records(out, "attention", rid, weights=weights, entropy=entropy)


def study(out, seeds=(0, 1)) -> pd.DataFrame:
    runs = []
    for task in range(len(TASKS)):
        for seed in seeds:
            for head in HEADS:
                write_run(out, runs, task, head, seed)
    return pd.DataFrame(runs)


def figure_files(out) -> dict:
    """Every file directly under OUT/analyses (figures, the CSVs behind them, the summaries), as bytes."""
    return {p.name: p.read_bytes() for p in sorted((out / "analyses").iterdir()) if p.is_file()}


ANALYSES = ("gradients", "attention")
FIGURES = {"gradient-variance.png", "gradient-variance.csv", "gradient-variance_curves.csv.gz",
           "gradient-histograms.png", "gradient-histograms.csv", "gradient-histograms_summary.csv",
           "attention.png", "attention.csv", "attention_summary.csv", "attention_entropy.csv",
           "gradients-summary.csv.gz", "attention-summary.csv.gz"}


def test_figures_redraw_byte_identical_from_the_summary_alone(tmp_path):
    out = tmp_path / "study"
    runs = study(out)
    written = finalize(ANALYSES, out, runs)
    assert {p.name for p in written} == FIGURES
    from_records = figure_files(out)
    assert set(from_records) == FIGURES

    tables = read_summary(summary_path(out, "gradients"))
    covered = tables["runs"]
    assert sorted(covered["run_id"]) == sorted(runs.loc[runs["head"] != "native", "run_id"])
    # the variance over 30 steps of (seed + 1) * scale * (1, 2, 3, 1, 2, 3, ...), mean over the 2 seeds
    var = tables["gradient-variance"].set_index(["task", "head_family", "layer"])
    cycle = np.tile([1.0, 2.0, 3.0], STEPS // 3)
    expected = np.mean([np.var((s + 1) * 2 * 2 * cycle, ddof=1) for s in (0, 1)])  # pointer-2, layer 2, sla
    assert var.loc[("pointer-2", "sla-2", 2), "mean"] == pytest.approx(expected, rel=1e-5)
    assert var.loc[("pointer-2", "sla-2", 2), "n"] == 2
    assert var.loc[("pointer-2", "san-2", 2), "mean"] == pytest.approx(expected * 1e-6, rel=1e-5)
    assert "gradient-variance_curves" not in tables  # the norm per step stays in the figure's own CSV
    curves = read_curves(out / "analyses" / "gradient-variance_curves.csv.gz")
    assert len(curves) == len(TASKS) * 2 * LAYERS * STEPS
    c = curves.set_index(["task", "head_family", "layer", "step"]).loc[("pointer-1", "sla-2", 1, 4)]
    assert c["n"] == 2 and c["mean"] == pytest.approx(np.mean([grad_norm(0, "sla", s, 1, 4) for s in (0, 1)]))

    # a clone: the raw records are gone, the summaries (and the curves CSV) stay; every figure and CSV is
    # rewritten as it was
    shutil.rmtree(record_dir(out, "gradients"))
    shutil.rmtree(record_dir(out, "attention"))
    inputs = {"gradients-summary.csv.gz", "attention-summary.csv.gz", "gradient-variance_curves.csv.gz"}
    for path in written:
        if path.name not in inputs:
            path.unlink()  # every figure and every other CSV is drawn anew
    again = finalize(ANALYSES, out, runs)
    assert {p.name for p in again} == FIGURES
    assert figure_files(out) == from_records


def test_records_on_disk_for_more_runs_than_the_summary_grow_it(tmp_path):
    out = tmp_path / "study"
    runs = study(out)
    finalize(ANALYSES, out, runs)
    runs = pd.concat([runs, study(out, seeds=(2,))], ignore_index=True)  # a resumed study adds a seed
    finalize(ANALYSES, out, runs)
    tables = read_summary(summary_path(out, "attention"))
    assert sorted(tables["runs"]["seed"].unique()) == [0, 1, 2]
    assert (tables["attention_entropy"]["n"] == 3 * 20).all()  # 20 examples per run, 3 seeds


def test_lost_records_and_runs_the_summary_lacks_keep_the_figures(tmp_path, caplog):
    out = tmp_path / "study"
    runs = study(out)
    finalize(ANALYSES, out, runs)
    before = figure_files(out)
    shutil.rmtree(record_dir(out, "gradients"))  # a clone without the raw records ...
    shutil.rmtree(record_dir(out, "attention"))
    runs = pd.concat([runs, study(out, seeds=(2,))], ignore_index=True)  # ... that then trains a new seed
    with caplog.at_level(logging.WARNING, logger="harness.analyses.drivers"):
        written = finalize(ANALYSES, out, runs)
    assert written == []  # neither the summary (seeds 0, 1) nor the records (seed 2) cover every run
    assert figure_files(out) == before
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and all("--force" in m and "kept as they are" in m for m in messages)


def test_a_summary_without_its_curves_csv_draws_no_gradient_figure(tmp_path, caplog):
    out = tmp_path / "study"
    runs = study(out)
    finalize(ANALYSES, out, runs)
    shutil.rmtree(record_dir(out, "gradients"))
    (out / "analyses" / "gradient-variance_curves.csv.gz").unlink()
    before = figure_files(out)
    with caplog.at_level(logging.WARNING, logger="harness.analyses.drivers"):
        written = finalize(("gradients",), out, runs)
    assert written == [] and figure_files(out) == before
    assert "gradient-variance_curves.csv.gz" in caplog.text and "git checkout" in caplog.text


def test_summary_tables_round_trip_bit_exactly_with_deterministic_bytes(tmp_path):
    floats = [0.1 + 0.2, 1 / 3, 5e-324, -2.5e-300, 1e300, math.nan, 7.0, -0.0]
    entropy = pd.DataFrame({"task": ["NA", "nan", "1", "pointer-1", "a", "b", "c", "d"],
                            "head_family": ["sla-6:d=64"] * 8, "layer": np.arange(1, 9),
                            "n": np.arange(8) * 1000, "mean": floats, "ci_low": floats[::-1], "ci_high": floats})
    runs = pd.DataFrame({"task": ["0"], "head": ["san-2"], "seed": [3], "run_id": ["0123abcd"]})
    path = tmp_path / "attention-summary.csv.gz"
    data = write_summary(path, {"attention_entropy": entropy, "runs": runs})
    assert write_summary(tmp_path / "other-name.csv.gz", {"runs": runs, "attention_entropy": entropy}) == data
    assert data[3] == 0 and data[4:8] == bytes(4)  # no file name, no timestamp in the gzip header
    back = read_summary(path)
    assert set(back) == {"attention_entropy", "runs"}
    got = back["attention_entropy"]
    assert list(got.columns) == [c for c, _ in SCHEMAS["attention_entropy"]]
    assert got["layer"].dtype == np.int64 and got["n"].dtype == np.int64 and got["task"].tolist() == entropy["task"].tolist()
    for column in ("mean", "ci_low", "ci_high"):
        a, b = got[column].to_numpy(), entropy[column].to_numpy()
        assert np.array_equal(a, b, equal_nan=True)
        assert [repr(x) for x in a] == [repr(x) for x in b]  # -0.0 stays -0.0, 5e-324 stays 5e-324
    assert back["runs"].to_dict("records") == [{"task": "0", "head": "san-2", "seed": 3, "run_id": "0123abcd"}]


def test_a_file_that_is_not_a_summary_is_refused(tmp_path):
    path = tmp_path / "gradients-summary.csv.gz"
    path.write_bytes(b"not gzip")
    with pytest.raises(SummaryError, match="delete it"):
        read_summary(path)
    path.write_bytes(gzip.compress(b"a,b\n1,2\n"))
    with pytest.raises(SummaryError, match="not a summary file"):
        read_summary(path)
    path.write_bytes(gzip.compress(b"table,task,head,seed,run_id\nruns,a,b,not-a-number,x\n"))
    with pytest.raises(SummaryError, match="does not fit"):
        read_summary(path)
    with pytest.raises(ValueError, match="unknown summary table"):
        write_summary(path, {"weights": pd.DataFrame()})
