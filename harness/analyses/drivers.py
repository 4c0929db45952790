"""``--analysis``: which heads a study runs, what it records, and the plots it writes at the end.

- ``depth``: ``san-K`` and ``sla-K`` for K in ``--depths`` (default 1..8), besides the heads given.
- ``width``: ``san-K`` and ``sla-K`` at ``K = --width-depth`` for d in ``--widths``.
- ``gradients``: per step and attention layer, the gradient reaching the layer (``GradientRecorder``).
- ``attention``: after training, per layer, attention weights and their entropy on the evaluation set.

Records go to ``OUT/analyses/<kind>/<run_id>-<name>.csv.gz`` (one file per run, so a resumed study
keeps them; only the columns that vary within a run, the run's task, head and seed are joined back
from runs.csv); plots and the CSV behind each one to ``OUT/analyses/<kind>.png`` / ``.csv``.
The tables the gradient and attention figures draw also go, with the runs they cover, to
``OUT/analyses/<kind>-summary.csv.gz`` (:mod:`harness.analyses.summary`): a few MB where the raw records
take a hundred, enough (with the figure's own ``gradient-variance_curves.csv.gz``) to redraw every figure
byte-identical when the raw records are gone.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from ..heads import SANConfig
from .record import head_family

ANALYSES = ("depth", "gradients", "attention", "width")

#: Per kind of record, the record files each run writes (``<run_id>-<name>.csv.gz``).
RECORDS = {"gradients": ("steps", "samples"), "attention": ("weights", "entropy")}

log = logging.getLogger(__name__)


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


def callbacks(analyses, out_dir: Path, run_id: str, labels: dict, eval_rows, is_main: bool) -> list:
    """The recorders a run needs for ``analyses`` (``fit`` callbacks), each saving its records under
    ``OUT/analyses/<kind>/`` at the end of training (on the main process only). Runs of heads with
    no attention to read (``head_family`` None: ``native``, ``cls``, ``mean``) get none."""
    from .record import AttentionRecorder, GradientRecorder

    if not labels.get("head_family"):
        return []

    def saver(kind):
        return lambda **frames: save_records(out_dir, kind, run_id, **frames) if is_main else None

    out = []
    if "gradients" in analyses:
        out.append(GradientRecorder(labels, save=saver("gradients")))
    if "attention" in analyses and is_main:
        out.append(AttentionRecorder(eval_rows, labels, save=saver("attention")))
    return out


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


def summary_path(out_dir: Path, kind: str) -> Path:
    """``OUT/analyses/<kind>-summary.csv.gz``: the tables of ``kind``'s figures, for the runs they cover."""
    return Path(out_dir) / "analyses" / f"{kind}-summary.csv.gz"


def _recorded(out_dir: Path, kind: str, runs: pd.DataFrame) -> set:
    """The run_ids of ``runs`` whose raw records of ``kind`` are on disk."""
    folder = record_dir(out_dir, kind)
    if not folder.is_dir():
        return set()
    first = RECORDS[kind][0]
    return {f.name.split("-")[0] for f in folder.glob(f"*-{first}.csv.gz")} & set(runs["run_id"].astype(str))


def _tables_from_records(out_dir: Path, kind: str, runs: pd.DataFrame) -> dict:
    """The summary tables of ``kind`` (:data:`summary.SCHEMAS` names) computed from the raw records of ``runs``."""
    from . import plots
    from .summary import FIGURE_TABLES

    def named(figure: str, tables: dict) -> dict:
        return {FIGURE_TABLES[figure][key]: table for key, table in tables.items()}

    first, second = (_by_head(_records(out_dir, kind, name, runs)) for name in RECORDS[kind])
    if first.empty:
        return {}
    if kind == "gradients":
        return {**named("gradient-variance", plots.gradient_variance_tables(first)),
                **named("gradient-histograms", plots.gradient_histogram_tables(second))}
    return named("attention", plots.attention_tables(first, second))


def layer_tables(out_dir: Path, kind: str, runs: pd.DataFrame) -> dict:
    """The tables of ``kind``'s figures (``gradients`` or ``attention``) for the runs ``runs`` (rows of
    runs.csv), with ``runs``: the runs they cover; empty when there is nothing to draw.

    From the raw records when they are on disk for every run the summary file covers (a study that
    keeps its records, or a new one); else from ``OUT/analyses/<kind>-summary.csv.gz`` (and, for the
    gradient norm per step, ``gradient-variance_curves.csv.gz``) when it covers every run whose records are
    on disk and only runs of ``runs`` (a clone without the raw records).
    Otherwise (the records of some runs are gone and the summary covers other runs) nothing is
    drawn: the figures and the summary stay as they are, and a warning says how to regenerate the records.
    """
    from .summary import read_summary

    on_disk = _recorded(out_dir, kind, runs)
    path = summary_path(out_dir, kind)
    summary = read_summary(path) if path.is_file() else {}
    covered = set(summary["runs"]["run_id"]) if "runs" in summary else set()
    if covered <= on_disk:
        if not on_disk:
            return {}
        kept = runs[runs["run_id"].astype(str).isin(on_disk)]
        tables = _tables_from_records(out_dir, kind, kept)
        if tables:
            tables["runs"] = (kept[["task", "head", "seed", "run_id"]].astype({"seed": "int64"})
                              .sort_values(["task", "head", "seed", "run_id"]).reset_index(drop=True))
        return tables
    if on_disk <= covered <= set(runs["run_id"].astype(str)):
        if kind == "gradients":  # the norm per step is read back from the figure's own CSV (6 digits)
            from .summary import CURVES, read_curves

            curves = Path(out_dir) / "analyses" / f"{CURVES}.csv.gz"
            if not curves.is_file():
                log.warning("gradient figures not redrawn: %s covers the runs, but %s, the gradient norm per step "
                            "it goes with, is missing; restore it (git checkout) or regenerate the raw records "
                            "(rerun the study's command with --force).", path, curves)
                return {}
            summary[CURVES] = read_curves(curves)
        return summary
    lost = sorted(covered - on_disk)
    log.warning("%s figures not redrawn: the raw records of %d run(s) the summary %s covers are not under %s "
                "(e.g. %s), and %d run(s) it does not cover have records there; the figures and the summary "
                "are kept as they are. To redraw from every run, regenerate the records: rerun the study's "
                "command with --force (it retrains every run).", kind, len(lost), path,
                record_dir(out_dir, kind), ", ".join(lost[:3]), len(on_disk - covered))
    return {}


def finalize(analyses, out_dir: Path, runs: pd.DataFrame, width_depth: int = 3) -> list[Path]:
    """Write each analysis's plots from this study's runs (``runs``: its rows of runs.csv).

    Depth and width plot every san/sla run; gradients and attention plot, per task, one head per family
    (``one_head_per_family``), whose per-run records for every head stay under ``analyses/<kind>/``,
    and write the tables they draw to ``analyses/<kind>-summary.csv.gz`` (see :func:`layer_tables`).
    """
    from . import plots
    from .summary import FIGURE_TABLES, write_summary

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
    draw = {"gradients": [("gradient-variance", plots.draw_gradient_variance),
                          ("gradient-histograms", plots.draw_gradient_histograms)],
            "attention": [("attention", plots.draw_attention)]}
    for kind in ("gradients", "attention"):
        if kind not in analyses or internals.empty:
            continue
        tables = layer_tables(out_dir, kind, internals)
        if not tables:
            continue
        for figure, fn in draw[kind]:
            written += fn({key: tables[name] for key, name in FIGURE_TABLES[figure].items() if name in tables},
                          base / figure)
        write_summary(summary_path(out_dir, kind), tables)
        written.append(summary_path(out_dir, kind))
    return written
