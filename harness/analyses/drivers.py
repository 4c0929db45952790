"""``--analysis``: which heads a study runs, what it records, and the plots it writes at the end.

- ``depth``: ``san-K`` and ``sla-K`` for K in ``--depths`` (default 1..8), besides the heads given.
- ``width``: ``san-K`` and ``sla-K`` at ``K = --width-depth`` for d in ``--widths``.
- ``gradients``: per step and attention layer, the gradient reaching the layer (``GradientRecorder``).
- ``attention``: after training, per layer, attention weights and their entropy on the evaluation set.

Records go to ``OUT/analyses/<kind>/<run_id>-<name>.csv.gz`` (one file per run, so a resumed study
keeps them; only the columns that vary within a run, the run's task, head and seed are joined back
from runs.csv); plots and the CSV behind each one to ``OUT/analyses/<kind>.png`` / ``.csv``.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..heads import SANConfig
from .record import head_family

ANALYSES = ("depth", "gradients", "attention", "width")


def parse_range(text: str) -> list[int]:
    """'1-8' or '1,2,4' -> [1, ..., 8] / [1, 2, 4]."""
    out = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    if not out or min(out) < 1:
        raise ValueError(f"{text!r}: expected positive integers like 1-8 or 32,64,128")
    return out


def heads_for(analyses, heads: list[str], depths, widths, width_depth: int) -> list[str]:
    """The head specs a study runs: the given ones plus each analysis's sweep (no duplicates)."""
    out = list(heads)
    if "depth" in analyses:
        out += [f"{family}-{k}" for family in ("san", "sla") for k in depths]
    if "width" in analyses:
        out += [f"{family}-{width_depth}:d={d}" for family in ("san", "sla") for d in widths]
    return list(dict.fromkeys(out))


def record_dir(out_dir: Path, kind: str) -> Path:
    return Path(out_dir) / "analyses" / kind


RUN_LABELS = ("task", "head", "head_family", "seed")


def save_records(out_dir: Path, kind: str, run_id: str, **frames) -> None:
    folder = record_dir(out_dir, kind)
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in frames.items():
        if rows:
            frame = pd.DataFrame(rows).drop(columns=list(RUN_LABELS), errors="ignore")
            frame.to_csv(folder / f"{run_id}-{name}.csv.gz", index=False, float_format="%.6g")


def _records(out_dir: Path, kind: str, name: str, runs: pd.DataFrame) -> pd.DataFrame:
    """This study's records of one kind, with each run's labels joined back from its row."""
    labels = runs.set_index("run_id")
    parts = []
    for f in sorted(record_dir(out_dir, kind).glob(f"*-{name}.csv.gz")):
        rid = f.name.split("-")[0]
        if rid in labels.index:
            row = labels.loc[rid]
            parts.append(pd.read_csv(f).assign(task=row["task"], head=row["head"], seed=row["seed"],
                                               head_family=head_family(str(row["head"]))))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _ok_with_family(frame: pd.DataFrame) -> pd.DataFrame:
    """ok runs of the heads the analyses read (``head_family`` not None), with that family as a column."""
    family = frame["head"].map(lambda h: head_family(str(h)))
    return frame[(frame["status"] == "ok") & family.notna()].assign(head_family=family)


def _stack_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """ok runs of san/sla heads, with their family, depth and width from the recorded options."""
    frame = _ok_with_family(frame)
    frame = frame[frame["head_family"].isin(["san", "sla"])].copy()
    options = frame["head_options"].map(json.loads)
    frame["depth"] = options.map(lambda o: o["depth"])
    frame["d"] = options.map(lambda o: o["d"])
    return frame


DEFAULT_D = SANConfig().d  # the latent size of san-K / sla-K when none is given (the same for both)


def one_head_per_family(runs: pd.DataFrame) -> pd.DataFrame:
    """The rows of the one head per (task, head family) that the layer-by-layer plots show.

    Layer t of san-2 and layer t of san-6 are different layers: pooled, the gradient variance and the
    attention weights of a depth or width sweep would mix heads. The head kept is, per task and family,
    the one at the default d (when run), then the deepest, then the widest: in a depth sweep san-K and
    sla-K at the largest K.
    """
    ok = _ok_with_family(runs)
    if ok.empty:
        return ok
    options = ok["head_options"].map(json.loads)
    order = pd.DataFrame({
        "task": ok["task"], "family": ok["head_family"], "head": ok["head"],
        "default_d": options.map(lambda o: o.get("d") == DEFAULT_D), "depth": options.map(lambda o: o.get("depth", 1)),
        "d": options.map(lambda o: o.get("d") or 0),
    })
    best = order.sort_values(["default_d", "depth", "d"]).groupby(["task", "family"]).tail(1)
    chosen = set(zip(best["task"], best["head"]))
    return ok[[(t, h) in chosen for t, h in zip(ok["task"], ok["head"])]]


def _by_head(records: pd.DataFrame) -> pd.DataFrame:
    """Series named by the head plotted (``san-6``), not only its family: the legend says which depth."""
    return records.assign(head_family=records["head"]) if not records.empty else records


def finalize(analyses, out_dir: Path, runs: pd.DataFrame, width_depth: int = 3) -> list[Path]:
    """Write each analysis's plots from this study's runs (``runs``: its rows of runs.csv).

    Depth and width plot every san/sla run; gradients and attention plot, per task, one head per family
    (``one_head_per_family``), whose per-run records for every head stay under ``analyses/<kind>/``.
    """
    from . import plots

    out_dir, written = Path(out_dir), []
    base = out_dir / "analyses"
    base.mkdir(parents=True, exist_ok=True)
    stack = _stack_rows(runs)
    if "depth" in analyses and not stack.empty:
        depth = stack[stack["d"] == DEFAULT_D] if (stack["d"] == DEFAULT_D).any() else stack
        written += plots.plot_depth(depth[["task", "head_family", "depth", "seed", "score", "metric"]], base / "depth")
    if "width" in analyses and not stack.empty:
        width = stack[stack["depth"] == width_depth]
        written += plots.plot_width(width[["task", "head_family", "d", "seed", "score", "metric"]], base / "width")
    internals = one_head_per_family(runs)
    if "gradients" in analyses:
        steps = _by_head(_records(out_dir, "gradients", "steps", internals))
        samples = _by_head(_records(out_dir, "gradients", "samples", internals))
        if not steps.empty:
            written += plots.plot_gradient_variance(steps, base / "gradient-variance")
            written += plots.plot_gradient_histograms(samples, base / "gradient-histograms")
    if "attention" in analyses:
        weights = _by_head(_records(out_dir, "attention", "weights", internals))
        entropy = _by_head(_records(out_dir, "attention", "entropy", internals))
        if not weights.empty:
            written += plots.plot_attention(weights, base / "attention", frame_entropy=entropy)
    return written
