"""The ``runs.csv`` store: the single source of truth for a benchmark run.

One row per finished (or failed) cell of the (task, model, head, seed) grid.
The file is plain CSV (``csv`` module, ``QUOTE_MINIMAL``, ``"\\n"`` line
terminator, UTF-8) whose header is exactly :data:`COLUMNS`, and every row
carries :data:`SCHEMA` in its ``schema`` column.

Crash safety
------------
:meth:`ResultsStore.append` never edits the file in place.  Under an
inter-process lock (``filelock.FileLock(path + ".lock")``) it reads the
current file, writes all rows plus the new one to a temporary file in the
same directory (``.<name>.tmp-*``), flushes and fsyncs it, ``os.replace``-s it
onto the path and fsyncs the directory.  A ``kill -9`` at any instant
therefore leaves either the old or the new complete file (plus, at worst, a
stray temp file that readers never look at and that the next ``append``
removes while it holds the lock), and concurrent appenders from several
processes serialise on the lock so no row is lost.

Readers do not take the lock: ``os.replace`` is atomic, so a reader sees
either the old or the new file.

Values
------
:meth:`ResultsStore.rows` returns the rows exactly as stored: ``dict[str,
str]`` with every column present ("" for empty).  :meth:`ResultsStore.read_frame`
returns a pandas DataFrame with numeric columns typed (integer columns as
nullable ``Int64``, float columns as ``float64``, empty -> NA/NaN) and all
other columns as ``str``.

The same ``run_id`` may appear more than once in a file (a failed run that was
retried, or a forced re-run); :func:`latest_rows` / ``read_frame(dedupe=True)``
pick one row per run_id with the same rule as :func:`merge_results` (an
``ok`` row beats a ``failed`` one; among equals the latest ``finished_at``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

import filelock
import numpy as np
import pandas as pd

from . import fileio

__all__ = [
    "SCHEMA",
    "COLUMNS",
    "JSON_COLUMNS",
    "INT_COLUMNS",
    "FLOAT_COLUMNS",
    "STATUSES",
    "MODES",
    "ResultsFileError",
    "ResultsStore",
    "merge_results",
    "latest_rows",
    "latest_index",
    "run_id",
    "canonical_json",
    "utc_now",
    "save_predictions",
    "load_predictions",
    "predictions_path",
]

SCHEMA = "sla-bench/runs/1"

COLUMNS: list[str] = [
    "schema",
    "run_id",
    "task",
    "model",
    "head",
    "head_options",
    "seed",
    "mode",
    "metric",
    "score",
    "metrics",
    "n_train",
    "n_eval",
    "epochs",
    "steps",
    "train_seconds",
    "samples_per_second",
    "params_total",
    "params_head",
    "flops_per_sample",
    "status",
    "error",
    "finished_at",
    "versions",
    "git_sha",
    "config",
]

#: Columns holding JSON text (dict/list values are serialised with
#: :func:`canonical_json`; a str value must already be valid JSON).
JSON_COLUMNS = ("head_options", "metrics", "versions", "config")
#: Columns typed as nullable ``Int64`` by :meth:`ResultsStore.read_frame`.
INT_COLUMNS = ("seed", "n_train", "n_eval", "steps", "params_total", "params_head")
#: Columns typed as ``float64`` by :meth:`ResultsStore.read_frame`.
FLOAT_COLUMNS = ("score", "epochs", "train_seconds", "samples_per_second", "flops_per_sample")
STATUSES = ("ok", "failed")
MODES = ("finetune", "probe")

_DIALECT = dict(
    delimiter=",",
    quotechar='"',
    doublequote=True,
    quoting=csv.QUOTE_MINIMAL,
    lineterminator="\n",
    skipinitialspace=False,
    strict=True,
)

_WHAT_TO_DO = "Use another --out directory, or move this file away."


class ResultsFileError(ValueError):
    """A runs.csv file that cannot be used (foreign file, wrong header, wrong schema)."""


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")


def canonical_json(obj: Any) -> str:
    """Compact JSON with sorted keys (numpy scalars/arrays and Paths allowed)."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default, allow_nan=True
    )


def run_id(**fields: Any) -> str:
    """Stable 16-hex-char id: sha256 of ``canonical_json(fields)``.

    The id depends on exactly the fields given (names and values, including
    their JSON type: ``1`` and ``1.0`` differ).  Pass everything that defines
    a cell (task, model, head, head_options, seed, mode, hyper-parameters...).
    """
    return hashlib.sha256(canonical_json(fields).encode("utf-8")).hexdigest()[:16]


def utc_now() -> str:
    """Current UTC time as ISO-8601 (the format ``finished_at`` should use)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _to_cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, np.generic):
        value = value.item()
    if column in JSON_COLUMNS:
        if isinstance(value, str):
            if value.strip():
                try:
                    json.loads(value)
                except ValueError as exc:
                    raise ValueError(f"column {column!r} must hold JSON; got {value[:80]!r} ({exc})") from None
            return value
        return canonical_json(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return repr(value)
    if isinstance(value, (dict, list, tuple)):
        return canonical_json(value)
    return str(value)


_fsync_dir = fileio.fsync_dir
_temp_prefix = fileio.temp_prefix
_remove_stale_temps = fileio.remove_stale_temps


def _atomic_write_rows(path: str, rows: Iterable[Mapping[str, str]]) -> None:
    """Write header + rows to a temp file next to ``path`` and replace it (:func:`fileio.atomic_write`)."""

    def write(fh) -> None:
        text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
        writer = csv.writer(text, **_DIALECT)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([row.get(c, "") for c in COLUMNS])
        text.flush()
        text.detach()

    fileio.atomic_write(path, write)


def _read_rows(path: str) -> list[dict[str, str]]:
    """Read and validate a runs file.  Missing or empty (whitespace-only) file -> []."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        return []
    except IsADirectoryError:
        raise ResultsFileError(f"{path}: is a directory, not a runs.csv file. {_WHAT_TO_DO}") from None
    if not raw.strip():
        return []
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ResultsFileError(
            f"{path}: not a sla-bench runs file (not UTF-8 text; found {raw[:40]!r}...). {_WHAT_TO_DO}"
        ) from None
    records = _records(path, text)  # [(first line, fields)], blank lines dropped
    if not records:
        return []
    (_, header), body = records[0], records[1:]
    if header != COLUMNS:
        # An older/newer schema of ours: report the version, not just the header.
        if "schema" in header and body:
            idx = header.index("schema")
            found = body[0][1][idx] if idx < len(body[0][1]) else ""
            if found != SCHEMA and found.startswith("sla-bench/"):
                raise ResultsFileError(_schema_message(path, found))
        raise ResultsFileError(_header_message(path, header))
    rows = []
    for number, (lineno, record) in enumerate(body, start=1):
        last = number == len(body)
        if record[:2] == ["schema", "run_id"]:
            raise ResultsFileError(
                f"{path}: line {lineno} is a second header: two runs files were joined into one (e.g. with "
                f"`cat a.csv b.csv`). Combine runs files with `python run_bench.py merge A/runs.csv B/runs.csv "
                f"--out DIR`; to repair this one, delete line {lineno} (the rows around it are complete)."
            )
        cut = last and not text.endswith("\n")  # the writer ends every row with a newline
        if len(record) != len(COLUMNS) or (cut and (not record[-1] or not _json_ok(record))):
            if cut and len(record) <= len(COLUMNS):
                raise ResultsFileError(_truncated_message(path, lineno, f"has {len(record)} of {len(COLUMNS)} "
                                                                        "fields and no line end"))
            raise ResultsFileError(
                f"{path}: line {lineno} has {len(record)} fields, expected {len(COLUMNS)} "
                f"({','.join(COLUMNS[:4])},...): the row was cut or edited by hand. The other rows are "
                f"complete: fix or delete line {lineno}, or {_WHAT_TO_DO[0].lower() + _WHAT_TO_DO[1:]}"
            )
        row = dict(zip(COLUMNS, record))
        if row["schema"] != SCHEMA:
            raise ResultsFileError(_schema_message(path, row["schema"]))
        if not row["run_id"]:
            raise ResultsFileError(f"{path}: line {lineno} has no run_id (edited by hand?); delete that line "
                                   f"or {_WHAT_TO_DO[0].lower() + _WHAT_TO_DO[1:]}")
        rows.append(row)
    return rows


def _records(path: str, text: str) -> list[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), **_DIALECT)
    records, lineno = [], 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return records
        except csv.Error as exc:
            if "unexpected end of data" in str(exc) or not text.endswith("\n"):
                raise ResultsFileError(_truncated_message(path, lineno, "ends inside a quoted field")) from None
            raise ResultsFileError(f"{path}: not a sla-bench runs file (not valid CSV at line {reader.line_num}: "
                                   f"{exc}). {_WHAT_TO_DO}") from None
        if record:  # blank lines carry no data
            records.append((lineno, record))
        lineno = reader.line_num + 1


def _json_ok(record: list[str]) -> bool:
    for column in JSON_COLUMNS:
        value = record[COLUMNS.index(column)] if len(record) == len(COLUMNS) else ""
        if value.strip():
            try:
                json.loads(value)
            except ValueError:
                return False
    return True


def _truncated_message(path: str, lineno: int, what: str) -> str:
    return (f"{path}: the file is truncated: its last row (line {lineno}) {what}, as a copy cut short or a "
            f"disk that filled up would leave it. The rows before line {lineno} are complete: delete that "
            f"line (a rerun trains that run again), or {_WHAT_TO_DO[0].lower() + _WHAT_TO_DO[1:]}")


def _header_message(path: str, header: list[str]) -> str:
    shown = ",".join(header)
    if len(shown) > 200:
        shown = shown[:200] + "..."
    missing = [c for c in COLUMNS if c not in header]
    extra = [c for c in header if c not in COLUMNS]
    if not missing and not extra and len(header) == len(COLUMNS):
        detail = "the right columns in another order"
    elif len(missing) < len(COLUMNS) // 2:  # mostly ours: name the difference
        detail = "; ".join(part for part in (f"missing column(s) {', '.join(missing)}" if missing else "",
                                             f"unknown column(s) {', '.join(extra)}" if extra else "",
                                             "a column repeated" if len(set(header)) < len(header) else "") if part)
    else:
        detail = ""
    return (f"{path}: not a sla-bench runs file of schema {SCHEMA!r}: its header is {shown!r}"
            + (f" ({detail})" if detail else "")
            + f", expected the {len(COLUMNS)} columns {','.join(COLUMNS)!r}. {_WHAT_TO_DO}")


def _schema_message(path: str, found: str) -> str:
    return (
        f"{path}: written by an incompatible schema version {found!r}; this sla-bench reads "
        f"and writes {SCHEMA!r}. {_WHAT_TO_DO}"
    )


def finished_key(value: str) -> tuple[int, float, str]:
    """Sort key for ``finished_at``: empty < anything; ISO-8601 compared as instants."""
    if not value:
        return (0, 0.0, "")
    try:
        dt = datetime.fromisoformat(value)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return (1, dt.timestamp(), value)
    except ValueError:
        return (1, float("-inf"), value)


def _preference(row: Mapping[str, str]) -> tuple:
    return (1 if row.get("status") == "ok" else 0, finished_key(row.get("finished_at", "")))


def latest_index(rows: Iterable[Mapping[str, str]]) -> list[int]:
    """The positions of the rows :func:`latest_rows` keeps, in order of first appearance of their
    run_id: the one rule of de-duplication (runs.csv readers, merges and the delta table use it)."""
    best: dict[str, tuple[int, tuple]] = {}
    for i, row in enumerate(rows):
        rid, rank = row.get("run_id", ""), _preference(row)
        if rid not in best or rank > best[rid][1]:
            best[rid] = (i, rank)
    return [i for i, _ in best.values()]


def latest_rows(rows: Iterable[Mapping[str, str]]) -> list[dict[str, str]]:
    """One row per run_id: ``ok`` beats anything else; among equals the latest
    ``finished_at`` wins (exact ties: the first seen).  Order: first appearance."""
    rows = list(rows)
    return [dict(rows[i]) for i in latest_index(rows)]


def _type_frame(frame: pd.DataFrame) -> pd.DataFrame:
    for col in INT_COLUMNS:
        num = pd.to_numeric(frame[col].replace("", np.nan), errors="coerce")
        finite = num.dropna()
        if (finite == np.round(finite)).all():
            frame[col] = num.round().astype("Int64")
        else:  # non-integral values: keep them rather than truncate
            frame[col] = num.astype("float64")
    for col in FLOAT_COLUMNS:
        frame[col] = pd.to_numeric(frame[col].replace("", np.nan), errors="coerce").astype("float64")
    return frame


# --------------------------------------------------------------------------
# the store
# --------------------------------------------------------------------------


class ResultsStore:
    """Append-only, crash-safe ``runs.csv``.

    ``ResultsStore(path)`` validates an existing file immediately (raising
    :class:`ResultsFileError`); a missing or empty file is a new store.
    """

    def __init__(self, path: str | os.PathLike[str], lock_timeout: float = 600.0):
        self.path = os.fspath(path)
        self.lock_path = self.path + ".lock"
        self.lock_timeout = lock_timeout
        _read_rows(self.path)  # validate early

    def __repr__(self) -> str:
        return f"ResultsStore({self.path!r})"

    def _lock(self) -> filelock.BaseFileLock:
        return filelock.FileLock(self.lock_path, timeout=self.lock_timeout)

    @staticmethod
    def normalise_row(row: Mapping[str, Any]) -> dict[str, str]:
        """Check keys/values of a row to append and turn it into stored strings."""
        unknown = [k for k in row if k not in COLUMNS]
        if unknown:
            raise ValueError(f"unknown column(s) {unknown} in results row; known columns: {COLUMNS}")
        schema = row.get("schema")
        if schema not in (None, "", SCHEMA):
            raise ValueError(f"row has schema {schema!r}, this store writes {SCHEMA!r}")
        out = {c: _to_cell(c, row.get(c)) for c in COLUMNS}
        out["schema"] = SCHEMA
        if not out["run_id"]:
            raise ValueError("results row needs a non-empty run_id")
        if out["status"] and out["status"] not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {out['status']!r}")
        if out["mode"] and out["mode"] not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {out['mode']!r}")
        return out

    def append(self, row: Mapping[str, Any]) -> dict[str, str]:
        """Append one row atomically (see module docstring).  Returns the row as stored."""
        new = self.normalise_row(row)
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        with self._lock():
            _remove_stale_temps(self.path)
            rows = _read_rows(self.path)
            rows.append(new)
            _atomic_write_rows(self.path, rows)
        return new

    def rows(self) -> list[dict[str, str]]:
        """All rows in file order, as stored (``dict[str, str]``, every column present)."""
        return _read_rows(self.path)

    def read_frame(self, dedupe: bool = False) -> pd.DataFrame:
        """Rows as a DataFrame with columns :data:`COLUMNS`; numeric columns typed
        (``INT_COLUMNS`` -> ``Int64``, ``FLOAT_COLUMNS`` -> ``float64``), the rest str.
        ``dedupe=True`` keeps one row per run_id (:func:`latest_rows`)."""
        rows = self.rows()
        if dedupe:
            rows = latest_rows(rows)
        frame = pd.DataFrame(rows, columns=COLUMNS, dtype=object)
        frame = frame.fillna("")
        return _type_frame(frame)

    def completed_ids(self, include_failed: bool = False) -> set[str]:
        """run_ids with a ``status == "ok"`` row (also ``failed`` ones if ``include_failed``)."""
        wanted = {"ok", "failed"} if include_failed else {"ok"}
        return {r["run_id"] for r in self.rows() if r["status"] in wanted}


def merge_results(sources: Iterable[str | os.PathLike[str]], dest: str | os.PathLike[str]) -> int:
    """Merge several runs.csv files into ``dest``; returns the number of rows written.

    Every source is validated like :class:`ResultsStore` does (missing source ->
    ``FileNotFoundError``).  Rows already in ``dest`` are kept as if ``dest`` were
    one more (first) source, so merging is idempotent and never drops data.
    Duplicated run_ids are resolved by :func:`latest_rows`.  ``dest`` is written
    atomically under its lock.
    """
    dest = os.fspath(dest)
    gathered: list[dict[str, str]] = []
    per_source = []
    for src in sources:
        src = os.fspath(src)
        if not os.path.exists(src):
            raise FileNotFoundError(f"merge source {src} does not exist")
        per_source.append(_read_rows(src))
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    with filelock.FileLock(dest + ".lock"):
        _remove_stale_temps(dest)
        gathered.extend(_read_rows(dest))
        for rows in per_source:
            gathered.extend(rows)
        merged = latest_rows(gathered)
        _atomic_write_rows(dest, merged)
    return len(merged)


# --------------------------------------------------------------------------
# per-example predictions
# --------------------------------------------------------------------------


def _check_run_id(rid: str) -> None:
    if not rid or not all(ch.isalnum() or ch in "-_." for ch in rid) or rid.startswith("."):
        raise ValueError(f"run_id {rid!r} is not usable as a file name")


def predictions_path(directory: str | os.PathLike[str], rid: str) -> str:
    """``<directory>/predictions/<run_id>.npz``."""
    _check_run_id(rid)
    return os.path.join(os.fspath(directory), "predictions", f"{rid}.npz")


def save_predictions(
    directory: str | os.PathLike[str], rid: str, predictions: np.ndarray, labels: np.ndarray
) -> str:
    """Write ``predictions``/``labels`` to ``<directory>/predictions/<run_id>.npz``
    atomically (temp file + fsync + ``os.replace``).  Returns the path.

    Convention used by :func:`harness.stats.delta_table`: for classification
    store integer ``labels`` and either predicted class ids (1-D) or
    logits/scores (2-D, argmax is taken); for regression float labels and 1-D
    float predictions.
    """
    path = predictions_path(directory, rid)
    pdir = os.path.dirname(path)
    os.makedirs(pdir, exist_ok=True)
    predictions = np.asarray(predictions)
    labels = np.asarray(labels)
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions but {len(labels)} labels")
    fileio.remove_stale_temps(path)  # left by a killed writer of this run (the run's claim serialises them)
    fileio.atomic_write(path, lambda fh: np.savez(fh, predictions=predictions, labels=labels), mode=0o644)
    return path


def load_predictions(directory: str | os.PathLike[str], rid: str) -> tuple[np.ndarray, np.ndarray] | None:
    """``(predictions, labels)`` saved by :func:`save_predictions`, or None when missing."""
    path = predictions_path(directory, rid)
    try:
        with np.load(path, allow_pickle=False) as data:
            return data["predictions"], data["labels"]
    except FileNotFoundError:
        return None
