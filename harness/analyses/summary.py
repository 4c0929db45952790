"""The compact summary of a study's analysis records: what the layer-by-layer figures draw, without the raw records.

The raw records (``OUT/analyses/gradients/`` and ``OUT/analyses/attention/``: one file per run with every
step's gradient norm, sampled gradient entries, sampled attention weights and one entropy per example)
are large, and the figures use only per-(task, head, layer) tables computed from them. ``finalize``
writes those tables to one file per kind, ``OUT/analyses/<kind>-summary.csv.gz`` (``gradients-summary``,
``attention-summary``), and redraws the figures from it when the raw records are absent (a fresh clone):
every figure and the CSVs beside it come out byte-identical to the ones drawn from the raw records.
One table stays out of the summary file: the gradient norm per step (``gradient-variance_curves``, one row
per step and layer, most of the bytes) is read back from the figure's own
``gradient-variance_curves.csv.gz`` (:func:`read_curves`), at the 6 significant digits the figure draws.

Format: a gzipped CSV (gzip header without timestamp or file name: the same numbers give the same bytes)
in long form. Column ``table`` names the table a row belongs to; the other columns are the union of the
tables' columns (:data:`SCHEMAS`), empty where a table has no such column.

======================================== ====================================================================
``table``                                columns (``plots`` function that computes it)
======================================== ====================================================================
``runs``                                 ``task, head, seed, run_id``: the runs whose records went in
``gradient-variance``                    ``task, head_family, layer, n, mean, ci_low, ci_high``
                                         (``gradient_variance_tables``: ``table``)
``gradient-histograms``                  ``task, head_family, layer, bin_low, bin_high, count, fraction``
                                         (``gradient_histogram_tables``: ``table``)
``gradient-histograms_summary``          ``task, head_family, layer, n, mean, std, var, excess_kurtosis``
``attention``                            ``task, head_family, layer, bin_low, bin_high, count, fraction``
                                         (``attention_tables``: ``table``)
``attention_summary``                    ``task, head_family, layer, n, mean, median, p90, p99, max``
``attention_entropy``                    ``task, head_family, layer, n, mean, ci_low, ci_high``
======================================== ====================================================================

Each table is the CSV of the same name beside the figure, at full precision: floats are written as
Python's shortest round-trip ``repr`` (``float(repr(x)) == x``), so the tables read back are bit-identical
to the ones written. Reading parses text into strings, integers and floats: it executes nothing.
"""
from __future__ import annotations

import csv
import gzip
import io
import math
from pathlib import Path
from typing import Mapping

import pandas as pd

__all__ = ["SCHEMAS", "CURVES", "FIGURE_TABLES", "write_summary", "read_summary", "read_curves", "SummaryError"]

_S, _I, _F = "str", "int", "float"
_KEYS = [("task", _S), ("head_family", _S), ("layer", _I)]
_HIST = [*_KEYS, ("bin_low", _F), ("bin_high", _F), ("count", _I), ("fraction", _F)]
_CI = [("n", _I), ("mean", _F), ("ci_low", _F), ("ci_high", _F)]

#: Per table, its columns in order, with their types.
SCHEMAS: dict[str, list[tuple[str, str]]] = {
    "runs": [("task", _S), ("head", _S), ("seed", _I), ("run_id", _S)],
    "gradient-variance": [*_KEYS, *_CI],
    "gradient-histograms": _HIST,
    "gradient-histograms_summary": [*_KEYS, ("n", _I), ("mean", _F), ("std", _F), ("var", _F),
                                    ("excess_kurtosis", _F)],
    "attention": _HIST,
    "attention_summary": [*_KEYS, ("n", _I), ("mean", _F), ("median", _F), ("p90", _F), ("p99", _F), ("max", _F)],
    "attention_entropy": [*_KEYS, *_CI],
}

#: The table read from the figure's own ``gradient-variance_curves.csv.gz``, not from the summary file.
CURVES = "gradient-variance_curves"
_CURVES_SCHEMA = [*_KEYS, ("step", _I), *_CI]

#: Per figure, its tables: ``plots`` key -> table name (:data:`SCHEMAS`, or :data:`CURVES`).
FIGURE_TABLES: dict[str, dict[str, str]] = {
    "gradient-variance": {"table": "gradient-variance", "curves": "gradient-variance_curves"},
    "gradient-histograms": {"table": "gradient-histograms", "summary": "gradient-histograms_summary"},
    "attention": {"table": "attention", "summary": "attention_summary", "entropy": "attention_entropy"},
}

_COLUMNS = list(dict.fromkeys(name for schema in SCHEMAS.values() for name, _ in schema))


class SummaryError(ValueError):
    """A summary file that is not in the format :func:`write_summary` writes."""


def _text(value, kind: str) -> str:
    if kind == _S:
        return str(value)
    if kind == _I:
        return str(int(value))
    value = float(value)
    return "" if math.isnan(value) else repr(value)


def _value(text: str, kind: str):
    if kind == _S:
        return text
    if kind == _I:
        return int(text)
    return float(text) if text != "" else math.nan


def write_summary(path: str | Path, tables: Mapping[str, pd.DataFrame]) -> bytes:
    """Write ``tables`` (summary table name -> frame with the :data:`SCHEMAS` columns) to ``path``,
    atomically; returns the bytes written. Tables are written in :data:`SCHEMAS` order, rows as given;
    :data:`CURVES`, if present, is left out (the figure writes it)."""
    from ..fileio import atomic_write

    tables = {name: table for name, table in tables.items() if name != CURVES}  # kept beside its figure
    unknown = sorted(set(tables) - set(SCHEMAS))
    if unknown:
        raise ValueError(f"unknown summary table(s) {unknown}; known: {list(SCHEMAS)}")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["table", *_COLUMNS])
    for name, schema in SCHEMAS.items():
        if name not in tables:
            continue
        frame = tables[name]
        missing = [c for c, _ in schema if c not in frame.columns]
        if missing:
            raise ValueError(f"summary table {name!r} lacks column(s) {missing}")
        kinds = dict(schema)
        columns = [list(frame[c]) if c in kinds else None for c in _COLUMNS]
        for i in range(len(frame)):
            writer.writerow([name, *("" if col is None else _text(col[i], kinds[c])
                                     for c, col in zip(_COLUMNS, columns))])
    data = gzip.compress(out.getvalue().encode("utf-8"), compresslevel=9, mtime=0)
    atomic_write(path, data)
    return data


def read_summary(path: str | Path) -> dict[str, pd.DataFrame]:
    """The tables of a summary file (name -> frame with the :data:`SCHEMAS` columns and types); a table
    with no rows in the file is absent. Raises :class:`SummaryError` when the file is not a summary."""
    path = Path(path)
    try:
        text = gzip.decompress(path.read_bytes()).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise SummaryError(f"{path} is not a gzipped summary CSV ({error}); delete it and rerun with the raw "
                           "records, or restore it from git") from error
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if header is None or header[0] != "table" or not set(header[1:]) <= set(_COLUMNS):
        raise SummaryError(f"{path}: not a summary file (its header is {header}); expected the columns "
                           f"{['table', *_COLUMNS]}")
    index = {c: i for i, c in enumerate(header)}
    found: dict[str, list[list]] = {}
    try:
        for row in rows:
            name = row[0]
            if name not in SCHEMAS:
                raise SummaryError(f"{path}: unknown table {name!r}; known: {list(SCHEMAS)}")
            found.setdefault(name, []).append([_value(row[index[c]], kind) for c, kind in SCHEMAS[name]])
    except (KeyError, IndexError, ValueError) as error:
        if isinstance(error, SummaryError):
            raise
        raise SummaryError(f"{path}: a row does not fit its table's columns ({error!r})") from error
    return {name: _frame(values, SCHEMAS[name]) for name, values in found.items()}


def _frame(values: list, schema: list) -> pd.DataFrame:
    frame = pd.DataFrame(values, columns=[c for c, _ in schema])
    for column, kind in schema:
        if kind == _I:
            frame[column] = frame[column].astype("int64")
        elif kind == _F:
            frame[column] = frame[column].astype("float64")
    return frame


def read_curves(path: str | Path) -> pd.DataFrame:
    """The :data:`CURVES` table from the figure's ``gradient-variance_curves.csv.gz`` (columns ``task,
    head_family, layer, step, n, mean, ci_low, ci_high``; floats parsed exactly as written)."""
    path = Path(path)
    try:
        rows = csv.reader(io.StringIO(gzip.decompress(path.read_bytes()).decode("utf-8")))
        header = next(rows, None)
        names = [c for c, _ in _CURVES_SCHEMA]
        if header != names:
            raise SummaryError(f"{path}: its columns are {header}, expected {names}")
        return _frame([[_value(text, kind) for text, (_, kind) in zip(row, _CURVES_SCHEMA)] for row in rows],
                      _CURVES_SCHEMA)
    except (OSError, EOFError, UnicodeDecodeError, ValueError) as error:
        if isinstance(error, SummaryError):
            raise
        raise SummaryError(f"{path} is not a curves CSV of plot_gradient_variance ({error!r}); rerun the study "
                           "with its raw records to rewrite it") from error
