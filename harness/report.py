"""From ``runs.csv`` (and the saved predictions) to ``deltas.csv``, ``summary.md`` and a printed table.

Read-only with respect to training: everything here is derived from the results rows.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from . import fileio, results, stats


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


def delta_frame(out_dir: Path, tasks: Iterable = (), baselines: Sequence[str] = ("native",)) -> pd.DataFrame:
    """The delta table of every run in ``out_dir/runs.csv``, against each head of ``baselines``.

    Runs are compared only within one recipe (the ``config`` column: budget, learning rates,
    precision, ...): rows of several commands can share a folder without ever being paired
    across recipes. The ``recipe`` column names each partition, the ``baseline`` column the head
    the deltas are taken against. Within a (task, model, mode, recipe, baseline) block the
    baseline's own row comes first, then the other heads in natural order (``san-2`` before ``san-10``).
    """
    frame = results.ResultsStore(Path(out_dir) / "runs.csv").read_frame(dedupe=True)
    columns = stats.DELTA_TABLE_COLUMNS[:5] + ["recipe", "baseline"] + stats.DELTA_TABLE_COLUMNS[5:]
    tables = []
    for baseline in baselines:
        for recipe, part in frame.groupby("config", sort=True):
            table = stats.delta_table(part, baseline=baseline,
                                      predictions_loader=lambda rid: results.load_predictions(out_dir, rid),
                                      metric_fns=metric_functions(tasks))
            table["recipe"] = recipe_id(recipe)
            table["baseline"] = baseline
            tables.append(table)
    if not tables:
        return pd.DataFrame(columns=columns)
    out = pd.concat(tables, ignore_index=True)[columns]
    order = {b: i for i, b in enumerate(baselines)}
    keys = [(order[r.baseline], r.task, r.model, r.mode, r.recipe, r.head != r.baseline, natural_key(r.head))
            for r in out.itertuples()]
    return out.iloc[sorted(range(len(out)), key=keys.__getitem__)].reset_index(drop=True)


def natural_key(label: str) -> tuple:
    """Sort key that orders the numbers inside a head label by value: san-2 < san-10 < sla-2."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", label))


def _fmt(value, digits=4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{digits}f}"


def _spread(mean, std) -> str:
    """``mean ± std``; one seed has no spread, so its cell is the score alone."""
    return _fmt(mean) if _fmt(std) == "" else f"{_fmt(mean)} ± {_fmt(std)}"


def _delta(r) -> str:
    if r["n_paired"] == 0:
        return ""
    if math.isnan(r["delta_ci_low"]):
        return f"{r['delta_mean']:+.4f} (1 seed: no CI)" if r["n_paired"] == 1 else f"{r['delta_mean']:+.4f}"
    return f"{r['delta_mean']:+.4f} ({_fmt(r['delta_ci_low'])}, {_fmt(r['delta_ci_high'])})"


def markdown(table: pd.DataFrame) -> str:
    """The delta table as GitHub markdown: scores and paired deltas, one table per baseline."""
    baselines = list(dict.fromkeys(table["baseline"])) if "baseline" in table and len(table) else ["native"]
    blocks = []
    for baseline in baselines:
        part = table[table["baseline"] == baseline] if "baseline" in table else table
        head = (f"| task | model | mode | recipe | head | seeds | mean ± std | median | Δ vs {baseline} (95% CI) | "
                "paired test p | win rate | head params | GFLOPs/sample | samples/s |")
        lines = [head, "|" + "|".join(["---"] * 14) + "|"]
        for _, r in part.iterrows():
            test = "" if not r["test"] else f"{_fmt(r['p_value'], 3)} ({r['test']}, n={int(r['test_n'])})"
            lines.append(
                f"| {r['task']} | {r['model']} | {r['mode']} | {r['recipe']} | {r['head']} | {int(r['n_seeds'])} | "
                f"{_spread(r['mean'], r['std'])} | {_fmt(r['median'])} | {_delta(r)} | {test} | "
                f"{_fmt(r['win_rate'], 2)} | {'' if pd.isna(r['params_head']) else int(r['params_head'])} | "
                f"{_fmt(r['flops_per_sample'] / 1e9, 3)} | {_fmt(r['samples_per_second'], 1)} |")
        missing = _without_baseline(part, baseline)
        note = (f"\nNo `{baseline}` runs for: {', '.join(missing)}; those rows have no delta. Add `{baseline}` to "
                "--heads, or pick another --baseline.\n" if missing else "")
        blocks.append((f"Baseline: `{baseline}`.\n\n" if len(baselines) > 1 or baseline != "native" else "")
                      + "\n".join(lines) + "\n" + note)
    return "\n".join(blocks)


def _without_baseline(part: pd.DataFrame, baseline: str) -> list[str]:
    """The (task/model/mode/recipe) blocks that hold no run of ``baseline``."""
    blocks = part.groupby(["task", "model", "mode", "recipe"], sort=False)["head"].apply(set)
    return ["/".join(key) for key, heads in blocks.items() if baseline not in heads]


EXPLAIN = """
How to read this: runs are compared only within one `recipe` (a hash of the `config` column of
runs.csv: budget, learning rates, precision); `mean ± std` is the main metric over seeds (`metric` column of deltas.csv);
`Δ vs B` is the mean over shared seeds of (head − B) for the same seed (same data order), where B is the
table's baseline head (`--baseline`, default `native`),
with a 95% percentile-bootstrap CI over those per-seed deltas (with 3-5 seeds this interval is
too narrow: read it as a range, not a guarantee); the paired test is per example on the
evaluation set, pooled over shared seeds: exact McNemar for classification, a paired bootstrap of
the metric for regression; win rate is the share of seeds where the head beat the baseline.
"""


def write_report(out_dir: Path, tasks: Iterable = (), command: str = "",
                 baselines: Sequence[str] = ("native",)) -> pd.DataFrame:
    """Write ``deltas.csv`` and ``summary.md`` into ``out_dir``; return the table.

    The table covers every run in ``runs.csv``, whichever commands wrote them; ``command`` (the one
    writing the report now) is named under the title, as the last writer, not as the source of all rows.
    """
    out_dir = Path(out_dir)
    table = delta_frame(out_dir, list(tasks), baselines)
    _write_atomic(out_dir / "deltas.csv", table.to_csv(index=False))
    head = f"# sla-bench results: {out_dir}\n\n" + (f"Last written by `{command}`.\n\n" if command else "")
    _write_atomic(out_dir / "summary.md", head + markdown(table) + EXPLAIN)
    return table


def _write_atomic(path: Path, text: str) -> None:
    """Concurrent shards may both write the report: each write is whole or not at all."""
    fileio.atomic_write(path, text)
