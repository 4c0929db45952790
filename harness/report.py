"""From ``runs.csv`` (and the saved predictions) to ``deltas.csv``, ``summary.md`` and a printed table.

Read-only with respect to training: everything here is derived from the results rows.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable

import pandas as pd

from . import results, stats


def metric_functions(tasks: Iterable) -> dict:
    """Per task, the metric the paired bootstrap recomputes on resampled examples (regression)."""
    fns = {}
    for task in tasks:
        if task.is_regression:
            fns[task.name] = "spearman" if task.metric == "spearmanr" else task.metric if task.metric == "pearson" else (
                lambda p, y, t=task: t.compute_metrics(p, y)[t.metric])
    return fns


def recipe_id(config_json: str) -> str:
    """A short name for a training recipe (the ``config`` column: budget, learning rates, ...)."""
    return results.run_id(config=config_json)[:8]


def delta_frame(out_dir: Path, tasks: Iterable = ()) -> pd.DataFrame:
    """The delta table of every run in ``out_dir/runs.csv``.

    Runs are compared only within one recipe (the ``config`` column: budget, learning rates,
    precision, ...): rows of several commands can share a folder without ever being paired
    across recipes. The ``recipe`` column names each partition.
    """
    frame = results.ResultsStore(Path(out_dir) / "runs.csv").read_frame(dedupe=True)
    columns = stats.DELTA_TABLE_COLUMNS[:5] + ["recipe"] + stats.DELTA_TABLE_COLUMNS[5:]
    tables = []
    for recipe, part in frame.groupby("config", sort=True):
        table = stats.delta_table(part, predictions_loader=lambda rid: results.load_predictions(out_dir, rid),
                                  metric_fns=metric_functions(tasks))
        table["recipe"] = recipe_id(recipe)
        tables.append(table)
    if not tables:
        return pd.DataFrame(columns=columns)
    return pd.concat(tables, ignore_index=True)[columns].sort_values(["task", "model", "mode", "recipe", "head"],
                                                                     ignore_index=True)


def _fmt(value, digits=4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{digits}f}"


def markdown(table: pd.DataFrame) -> str:
    """The delta table as GitHub markdown: scores and paired deltas against ``native``."""
    head = ("| task | model | mode | recipe | head | seeds | mean ± std | median | Δ vs native (95% CI) | paired test p | "
            "win rate | head params | GFLOPs/sample | samples/s |")
    lines = [head, "|" + "|".join(["---"] * 14) + "|"]
    for _, r in table.iterrows():
        delta = "" if r["n_paired"] == 0 else (
            f"{r['delta_mean']:+.4f} ({_fmt(r['delta_ci_low'])}, {_fmt(r['delta_ci_high'])})")
        test = "" if not r["test"] else f"{_fmt(r['p_value'], 3)} ({r['test']}, n={int(r['test_n'])})"
        lines.append(
            f"| {r['task']} | {r['model']} | {r['mode']} | {r['recipe']} | {r['head']} | {int(r['n_seeds'])} | "
            f"{_fmt(r['mean'])} ± {_fmt(r['std'])} | {_fmt(r['median'])} | {delta} | {test} | "
            f"{_fmt(r['win_rate'], 2)} | {'' if pd.isna(r['params_head']) else int(r['params_head'])} | "
            f"{_fmt(r['flops_per_sample'] / 1e9, 3)} | {_fmt(r['samples_per_second'], 1)} |")
    return "\n".join(lines) + "\n"


EXPLAIN = """
How to read this: runs are compared only within one `recipe` (a hash of the `config` column of
runs.csv: budget, learning rates, precision); `mean ± std` is the main metric over seeds (`metric` column of deltas.csv);
`Δ vs native` is the mean over shared seeds of (head − native) for the same seed (same data order),
with a 95% percentile-bootstrap CI over those per-seed deltas (with 3-5 seeds this interval is
too narrow: read it as a range, not a guarantee); the paired test is per example on the
evaluation set, pooled over shared seeds: exact McNemar for classification, a paired bootstrap of
the metric for regression; win rate is the share of seeds where the head beat native.
"""


def write_report(out_dir: Path, tasks: Iterable = (), command: str = "") -> pd.DataFrame:
    """Write ``deltas.csv`` and ``summary.md`` into ``out_dir``; return the table.

    The table covers every run in ``runs.csv``, whichever commands wrote them; ``command`` (the one
    writing the report now) is named under the title, as the last writer, not as the source of all rows.
    """
    out_dir = Path(out_dir)
    table = delta_frame(out_dir, list(tasks))
    _write_atomic(out_dir / "deltas.csv", table.to_csv(index=False))
    head = f"# sla-bench results: {out_dir}\n\n" + (f"Last written by `{command}`.\n\n" if command else "")
    _write_atomic(out_dir / "summary.md", head + markdown(table) + EXPLAIN)
    return table


def _write_atomic(path: Path, text: str) -> None:
    """Concurrent shards may both write the report: each write is whole or not at all."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(text)
    os.replace(temp, path)
