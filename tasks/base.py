"""The :class:`Task` definition: what data a benchmark task reads, and how it is scored.

A task is a frozen dataclass. It knows where its data lives (Hugging Face Hub path, or a
parquet layout under a local ``--data-dir``), which columns the model reads, how many labels
there are (1 means regression) and which metrics to report. ``Task.load`` returns a
validated :class:`datasets.DatasetDict` holding exactly the splits asked for; any problem with
the data is raised as :class:`TaskDataError` with a message that says what to fix.
"""

from __future__ import annotations

import difflib
import os
import re
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from . import metrics as _metrics

if TYPE_CHECKING:  # importing datasets costs ~1 s; do it only when data is loaded
    import datasets

__all__ = ["Task", "TaskDataError", "LOCAL_LAYOUT_HELP"]


class TaskDataError(ValueError):
    """The data of a task is missing or does not have the expected shape."""


LOCAL_LAYOUT_HELP = (
    "Expected layout under the data directory DIR (--data-dir DIR): one parquet file per split the task "
    "reads (its train_split and eval_splits), in the folder named by its local_subdir:\n"
    "  DIR/<local_subdir>/<split>.parquet  e.g. DIR/news/train.parquet, DIR/news/test.parquet (local_subdir='news')\n"
    "  built-in tasks: DIR/glue/<task>/<split>.parquet (e.g. DIR/glue/sst2/validation.parquet) and "
    "DIR/cifar10/<split>.parquet (e.g. DIR/cifar10/test.parquet)\n"
    "(sharded files DIR/.../<split>-00000-of-00002.parquet are accepted too)."
)

_SHARD_RE = re.compile(r"^(?P<split>.+?)-\d+-of-\d+$")

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")

#: ``loader(task, data_dir, splits) -> DatasetDict`` (or a mapping split -> Dataset)
Loader = Callable[["Task", "str | Path | None", "tuple[str, ...]"], Any]


def _tuple_source(items) -> str:
    """A tuple of strings as it is written in a task definition: ``("test",)``."""
    items = [f'"{i}"' for i in items]
    return f"({', '.join(items)}{',' if len(items) == 1 else ''})"


def _metric_ref(ref: Any) -> Any:
    """An evaluate metric reference as stored: a path as a string, ``[path, config]`` as a tuple."""
    if isinstance(ref, os.PathLike):
        return os.fspath(ref)
    if isinstance(ref, (tuple, list)):
        return tuple(os.fspath(r) if isinstance(r, os.PathLike) else r for r in ref)
    return ref


def _split_of(path: Path) -> str:
    """The split a parquet file holds: ``test.parquet`` and ``test-00000-of-00002.parquet`` -> ``test``."""
    match = _SHARD_RE.match(path.stem)
    return match["split"] if match else path.stem


@dataclass(frozen=True)
class Task:
    """A benchmark task.

    Fields beyond the obvious ones:

    * ``eval_splits``: the first one is the primary evaluation split.
    * ``local_subdir``: where the task's parquet files live, relative to ``data_dir``
      (``<data_dir>/<local_subdir>/<split>.parquet``).
    * ``metrics``: the metrics ``compute_metrics`` reports (names in
      :data:`tasks.metrics.METRICS`); empty means just ``(metric,)``. With more than one,
      ``combined`` (their mean) is added.
    * ``loader``: optional ``loader(task, data_dir, splits)`` that builds the data itself
      (generated tasks, CSV files, ...); it replaces the hub/parquet loading, and its result is
      validated the same way.
    * ``evaluate_metrics``: metrics of the ``evaluate`` library, ``{name: ref}``: ``ref`` a hub id,
      the path of a local metric module (a ``.py`` file defining an ``evaluate.Metric`` subclass), or
      ``(id or path, config_name)``. Each ``name`` may then appear in ``metric`` / ``metrics`` like a
      built-in one; its score is the metric's result of that name (or its only result).
    """

    name: str
    modality: str
    num_labels: int
    metric: str
    text_columns: tuple[str, ...] = ()
    image_column: str | None = None
    label_column: str = "label"
    train_split: str = "train"
    eval_splits: tuple[str, ...] = ("validation",)
    hub_path: str | None = None
    hub_config: str | None = None
    local_subdir: str | None = None
    label_names: tuple[str, ...] | None = None
    description: str = ""
    metrics: tuple[str, ...] = ()
    loader: Loader | None = field(default=None, repr=False)
    evaluate_metrics: Any = ()  # {name: hub id or local module path}; stored as ((name, ref), ...)

    # ------------------------------------------------------------------ definition checks
    def __post_init__(self) -> None:
        # accept lists for the tuple fields (lists are unhashable and compare oddly)
        for name in ("text_columns", "eval_splits", "metrics"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = (value,)
            object.__setattr__(self, name, tuple(value))
        if self.label_names is not None:
            object.__setattr__(self, "label_names", tuple(str(n) for n in self.label_names))
        extra = self.evaluate_metrics  # {name: ref} -> ((name, ref), ...): hashable, like the other fields
        pairs = list(extra.items()) if isinstance(extra, Mapping) else list(extra or ())
        object.__setattr__(self, "evaluate_metrics", tuple(
            (p[0], _metric_ref(p[1])) if isinstance(p, (tuple, list)) and len(p) == 2 else p for p in pairs))

        def bad(msg: str) -> None:
            raise ValueError(f"invalid task definition {self.name!r}: {msg}")

        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            bad("name must be non-empty and use only letters, digits, '_', '-', '.'")
        if self.modality not in ("text", "image"):
            bad(f"modality must be 'text' or 'image', got {self.modality!r}")
        if not isinstance(self.num_labels, int) or self.num_labels < 1:
            bad(f"num_labels must be an int >= 1 (1 = regression), got {self.num_labels!r}")
        if self.modality == "text" and not self.text_columns:
            bad("a text task needs text_columns, e.g. ('sentence',) or ('sentence1', 'sentence2')")
        if self.modality == "image" and not self.image_column:
            bad("an image task needs image_column, e.g. 'img'")
        if not self.eval_splits:
            bad("eval_splits must name at least one split")
        if self.label_names is not None and len(self.label_names) != self.num_labels:
            bad(f"{len(self.label_names)} label_names for num_labels={self.num_labels}")
        if self.is_regression and self.label_names is not None:
            bad("a regression task (num_labels=1) has no label_names")
        for pair in self.evaluate_metrics:
            if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str) and pair[0]
                    and (isinstance(pair[1], str) and pair[1] or isinstance(pair[1], tuple) and len(pair[1]) == 2)):
                bad(f"evaluate_metrics must map names to an evaluate hub id or a metric module path (or "
                    f"(path, config_name)), e.g. {{'exact_match': 'metrics/exact_match.py'}}; got {pair!r}")
            if pair[0] in _metrics.METRICS or pair[0] == "combined":
                bad(f"evaluate metric name {pair[0]!r} is a built-in metric's; give it another name, e.g. "
                    f"'{pair[0]}_evaluate' (the built-in one stays scikit-learn/scipy)")
        names = self.metric_names
        unknown = [m for m in names if m not in _metrics.METRICS and m not in self._evaluate_refs]
        if unknown:
            bad(f"unknown metric(s) {unknown}; known: {sorted(_metrics.METRICS)}, or name an evaluate metric "
                f"in evaluate_metrics={{{unknown[0]!r}: 'hub id or path/to/metric.py'}}")
        allowed = set(names) | ({"combined"} if len(names) > 1 else set())
        if self.metric not in allowed:
            bad(f"main metric {self.metric!r} is not among the reported metrics {sorted(allowed)}")
        if self.is_regression:
            cls_metrics = [m for m in names if m in _metrics.CLASSIFICATION_METRICS]
            if cls_metrics:
                bad(f"classification metric(s) {cls_metrics} on a regression task")

    # ------------------------------------------------------------------ properties
    @property
    def is_regression(self) -> bool:
        return self.num_labels == 1

    @property
    def _evaluate_refs(self) -> dict:
        return dict(self.evaluate_metrics)

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The metrics computed by :meth:`compute_metrics` (``combined`` aside)."""
        return self.metrics or (self.metric,)

    @property
    def primary_eval_split(self) -> str:
        return self.eval_splits[0]

    @property
    def splits(self) -> tuple[str, ...]:
        """All splits :meth:`load` returns by default: train first, then the eval splits."""
        return tuple(dict.fromkeys((self.train_split, *self.eval_splits)))

    @property
    def input_columns(self) -> tuple[str, ...]:
        """The columns the model reads: the text columns, or the image column."""
        return self.text_columns if self.modality == "text" else (str(self.image_column),)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column :meth:`load` guarantees: inputs then the label."""
        return (*self.input_columns, self.label_column)

    def summary(self) -> dict[str, Any]:
        """Plain-JSON description of the task (for results files)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "loader"}
        out = {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}
        out["metrics"] = list(self.metric_names)
        out["is_regression"] = self.is_regression
        out["custom_loader"] = self.loader is not None
        out["evaluate_metrics"] = {n: r if isinstance(r, str) else list(r) for n, r in self.evaluate_metrics}
        return out

    # ------------------------------------------------------------------ metrics
    def compute_metrics(self, predictions: Any, labels: Any) -> dict[str, float]:
        """Scores as plain floats; keys are :attr:`metric_names` (+ ``combined`` if several).

        ``predictions``: class ids (or logits of shape ``(n, num_labels)``, arg-maxed) for
        classification; real values (shape ``(n,)`` or ``(n, 1)``) for regression.
        """
        return _metrics.compute(
            self.metric_names,
            predictions,
            labels,
            num_labels=self.num_labels,
            regression=self.is_regression,
            evaluate_metrics=self._evaluate_refs,
        )

    def load_metrics(self) -> None:
        """Load the task's ``evaluate`` metrics now (a run checks them before training); raises
        :class:`tasks.metrics.MetricLoadError` naming the fix."""
        used = set(self.metric_names)
        for name, ref in self.evaluate_metrics:
            if name in used:
                _metrics.load_evaluate_metric(ref)

    # ------------------------------------------------------------------ loading
    def load(
        self,
        data_dir: str | Path | None = None,
        splits: Sequence[str] | str | None = None,
        *,
        cache_dir: str | None = None,
    ) -> "datasets.DatasetDict":
        """Load and validate the task's data.

        Without ``data_dir``: ``datasets.load_dataset(hub_path, hub_config)``. With it: the
        parquet files ``<data_dir>/<local_subdir>/<split>.parquet``. A task with a ``loader``
        uses that instead. ``splits`` defaults to :attr:`splits` (train + eval splits); the
        result holds exactly those splits, in that order. ``cache_dir`` goes to
        ``datasets.load_dataset``.
        """
        if splits is None:
            wanted = self.splits
        elif isinstance(splits, str):
            wanted = (splits,)
        else:
            wanted = tuple(dict.fromkeys(splits))
        if self.loader is not None:
            try:
                data = self.loader(self, data_dir, wanted)
            except FileNotFoundError as e:  # e.g. a CSV file of a split the data does not have
                raise TaskDataError(
                    f"Task '{self.name}': its loader found no data for one of the splits {list(wanted)}: {e}. "
                    + self._split_fix([s for s in wanted if s != self.train_split], [])
                ) from e
        elif data_dir is not None:
            data = self._load_local(Path(data_dir), wanted, cache_dir)
        else:
            data = self._load_hub(cache_dir)
        return self.validate(data, wanted)

    def local_dir(self, data_dir: str | Path) -> Path:
        """``<data_dir>/<local_subdir>``: the folder of the task's parquet files."""
        if self.local_subdir is None:
            raise TaskDataError(
                f"Task '{self.name}' has no local data layout (local_subdir is None), so it cannot be "
                f"loaded from a data directory. Give it local_subdir='...' or a loader=."
            )
        return Path(data_dir) / self.local_subdir

    def local_split_path(self, data_dir: str | Path, split: str) -> Path:
        """``<data_dir>/<local_subdir>/<split>.parquet``: where :meth:`load` looks for a split."""
        return self.local_dir(data_dir) / f"{split}.parquet"

    def _load_local(self, data_dir: Path, splits: tuple[str, ...], cache_dir: str | None):
        import datasets

        base = self.local_dir(data_dir)
        if not base.is_dir():
            expected = "\n".join(f"  {self.local_split_path(data_dir, s)}" for s in splits)
            hint = "" if data_dir.is_dir() else f" (the data directory {data_dir} itself does not exist)"
            raise TaskDataError(
                f"Task '{self.name}': data directory {base} not found{hint}. Expected the files\n"
                f"{expected}\n{LOCAL_LAYOUT_HELP}"
            )
        data_files: dict[str, list[str]] = {}
        missing: list[Path] = []
        for split in splits:
            path = self.local_split_path(data_dir, split)
            if path.is_file():
                data_files[split] = [str(path)]
                continue
            shards = sorted(base.glob(f"{split}-*.parquet"))
            if shards:
                data_files[split] = [str(p) for p in shards]
            else:
                missing.append(path)
        if missing:
            found = sorted(p.name for p in base.iterdir()) or ["nothing"]
            have = [_split_of(p) for p in sorted(base.glob("*.parquet"))]
            raise TaskDataError(
                f"Task '{self.name}': split file(s) not found:\n"
                + "\n".join(f"  {p}" for p in missing)
                + f"\n{base} contains: {', '.join(found)}.\n"
                + self._split_fix([p.stem for p in missing], have)
                + f"\n{LOCAL_LAYOUT_HELP}"
            )
        # One split at a time: a split whose columns differ from another's then gets the validation
        # message naming its missing column, not the datasets library's schema-cast error.
        loaded = {}
        for split, files in data_files.items():
            try:
                loaded[split] = datasets.load_dataset("parquet", data_files={split: files}, cache_dir=cache_dir)[split]
            except Exception as e:  # corrupt / non-parquet file, schema clash between shards, ...
                raise TaskDataError(
                    f"Task '{self.name}', split '{split}': could not read {files}: {type(e).__name__}: {e}. "
                    "Check that the files are parquet in the dataset's schema."
                ) from e
        return datasets.DatasetDict(loaded)

    def _load_hub(self, cache_dir: str | None):
        import datasets

        if self.hub_path is None:
            raise TaskDataError(
                f"Task '{self.name}' has no hub_path, so it can only be loaded from a data directory "
                f"(pass data_dir / --data-dir)."
            )
        try:
            return datasets.load_dataset(self.hub_path, self.hub_config, cache_dir=cache_dir)
        except Exception as e:
            where = self.hub_path + (f" (config {self.hub_config!r})" if self.hub_config else "")
            local = (
                f" Or pass a data directory holding {self.local_subdir}/<split>.parquet (--data-dir)."
                if self.local_subdir
                else ""
            )
            raise TaskDataError(
                f"Task '{self.name}': could not load {where} from the Hugging Face Hub: "
                f"{type(e).__name__}: {e}. Offline? Make sure the dataset is in the HF cache.{local}"
            ) from e

    # ------------------------------------------------------------------ validation
    def validate(
        self, data: "datasets.DatasetDict | Mapping[str, datasets.Dataset]", splits: Sequence[str] | None = None
    ) -> "datasets.DatasetDict":
        """Check (and normalise) loaded data; return a DatasetDict of exactly ``splits``.

        Checks: every split present; every column in :attr:`columns` present; no missing
        inputs or labels; class ids in ``[0, num_labels)``. Normalises: integer (or, with
        ``label_names``, string) labels become ``ClassLabel``; regression labels become
        ``float32``; an image column stored as ``{bytes, path}`` structs or file paths becomes
        an ``Image()`` feature (decoded to ``PIL.Image`` on access).
        """
        import datasets

        splits = tuple(splits) if splits is not None else self.splits
        present = list(data.keys())
        out = {}
        for split in splits:
            if split not in data:
                raise TaskDataError(
                    f"Task '{self.name}': split '{split}' not found in the loaded data; it has "
                    f"{present}. " + self._split_fix([split], present)
                )
            out[split] = self._validate_split(data[split], split)
        return datasets.DatasetDict(out)

    def _split_fix(self, missing: Sequence[str], present: Sequence[str]) -> str:
        """The fix for splits the data lacks: name the splits it has in the task definition."""
        others = [s for s in dict.fromkeys(present) if s != self.train_split and s not in missing]
        missing_eval = [s for s in missing if s in self.eval_splits]
        if missing_eval and others:
            splits = tuple(s for s in self.eval_splits if s not in missing_eval) + tuple(others)
            return (f"Fix: the data has no {' / '.join(repr(s) for s in missing_eval)} split; to evaluate on "
                    f"{' and '.join(repr(s) for s in others)} instead, define the task with "
                    f"eval_splits={_tuple_source(splits)}.")
        if missing_eval:
            return (f"Fix: provide the {' / '.join(repr(s) for s in missing_eval)} split, or, if the data has "
                    f"another held-out split (say 'test'), define the task with eval_splits=(\"test\",).")
        return ("Fix: provide the split, or set train_split=/eval_splits= in the task definition to the split "
                "names of your data.")

    def _missing_columns(self, missing: list[str], found: list[str]) -> str:
        """The message for columns the data lacks; a near name in the data is most likely a typo."""
        unused = [c for c in found if c not in self.columns]
        near = {}
        for c in missing:
            close = difflib.get_close_matches(c, [u for u in unused if u not in near.values()], n=1, cutoff=0.6)
            if close:
                near[c] = close[0]
        msg = f"missing column(s) {missing}; found columns {found}; the task expects {list(self.columns)}."
        if near:
            msg += " Did you mean " + ", ".join(f"{v!r} for {k!r}" for k, v in near.items()) + "?"
            fields_ = []
            if any(c in near for c in self.text_columns):
                fields_.append(f"text_columns={_tuple_source(near.get(c, c) for c in self.text_columns)}")
            if self.modality == "image" and self.image_column in near:
                fields_.append(f"image_column={near[self.image_column]!r}")
            if self.label_column in near:
                fields_.append(f"label_column={near[self.label_column]!r}")
            return (msg + f" Fix: define the task with {', '.join(fields_)} (the names in your data), or rename "
                    "those columns of your data to the names the task expects.")
        source = unused[0] if unused else "text"
        return (msg + f" Fix: rename the columns of your data (e.g. dataset.rename_column({source!r}, "
                f"'{missing[0]}')), or define the task with text_columns=/image_column=/label_column= "
                "set to the names in your data.")

    def _fail(self, split: str, msg: str) -> TaskDataError:
        return TaskDataError(f"Task '{self.name}', split '{split}': {msg}")

    def _validate_split(self, ds: "datasets.Dataset", split: str) -> "datasets.Dataset":
        import datasets
        import pyarrow as pa
        import pyarrow.compute as pc

        found = list(ds.column_names)
        missing = [c for c in self.columns if c not in found]
        if missing:
            raise self._fail(split, self._missing_columns(missing, found))

        def col(name: str) -> pa.ChunkedArray:
            return ds.with_format("arrow")[name]  # no decoding, honours an indices mapping

        for c in self.text_columns:
            arr = col(c)
            if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)
                    or pa.types.is_string_view(arr.type)):
                raise self._fail(split, f"text column '{c}' has type {arr.type}, expected strings: "
                                          f"convert it to strings, or name another column in text_columns.")
            if arr.null_count:
                raise self._fail(split, f"text column '{c}' has {arr.null_count} missing value(s): "
                                          f"drop those rows or fill them with ''.")

        if self.modality == "image":
            c = str(self.image_column)
            feat = ds.features[c]
            if not isinstance(feat, datasets.Image):
                arr_type = col(c).type
                is_struct = pa.types.is_struct(arr_type) and {"bytes", "path"} <= {
                    arr_type.field(i).name for i in range(arr_type.num_fields)
                }
                if not (is_struct or pa.types.is_string(arr_type) or pa.types.is_large_string(arr_type)):
                    raise self._fail(
                        split,
                        f"image column '{c}' has feature {feat} (arrow type {arr_type}); expected a datasets "
                        f"Image() feature, {{bytes, path}} structs, or image file paths.",
                    )
                ds = ds.cast_column(c, datasets.Image())
            if col(c).null_count:
                raise self._fail(split, f"image column '{c}' has {col(c).null_count} missing value(s): drop those rows.")

        c = self.label_column
        labels = col(c)
        if labels.null_count:
            raise self._fail(split, f"label column '{c}' has {labels.null_count} missing value(s): drop those "
                                      f"rows (unlabeled splits cannot be evaluated).")
        if self.is_regression:
            if not (pa.types.is_integer(labels.type) or pa.types.is_floating(labels.type)):
                raise self._fail(split, f"regression label column '{c}' has type {labels.type}, expected numbers: "
                                          f"convert it, or set num_labels > 1 for a classification task.")
            if not pa.types.is_float32(labels.type):
                ds = ds.cast_column(c, datasets.Value("float32"))
            return ds

        feat = ds.features[c]
        is_text_label = pa.types.is_string(labels.type) or pa.types.is_large_string(labels.type)
        if is_text_label and self.label_names is not None:
            try:  # map label names to ids
                ds = ds.cast_column(c, datasets.ClassLabel(names=list(self.label_names)))
            except ValueError as e:
                raise self._fail(
                    split, f"label column '{c}' holds names that are not among {list(self.label_names)}: {e}"
                ) from e
            feat, labels = ds.features[c], col(c)
        if not pa.types.is_integer(labels.type):
            raise self._fail(
                split,
                f"label column '{c}' has type {labels.type}; a classification task needs integer class ids "
                f"0..{self.num_labels - 1}"
                + (" (or set label_names= to map string labels)." if is_text_label else "."),
            )
        if len(labels):
            mm = pc.min_max(labels).as_py()
            if mm["min"] < 0 or mm["max"] >= self.num_labels:
                bad = pc.sum(pc.or_(pc.less(labels, 0), pc.greater_equal(labels, self.num_labels))).as_py()
                hint = " (-1 marks unlabeled rows, as in GLUE test splits: evaluate on a labeled split)" if mm[
                    "min"] < 0 else ""
                raise self._fail(
                    split,
                    f"label column '{c}' has {bad} value(s) outside [0, {self.num_labels}) "
                    f"(min {mm['min']}, max {mm['max']}){hint}. Class ids must lie in the range 0..{self.num_labels - 1}: "
                    f"fix those rows, or define the task with the right num_labels.",
                )
        if isinstance(feat, datasets.ClassLabel):
            if feat.num_classes != self.num_labels:
                raise self._fail(
                    split,
                    f"label feature is ClassLabel with {feat.num_classes} classes {feat.names[:12]}, "
                    f"but the task has num_labels={self.num_labels}: define the task with "
                    f"num_labels={feat.num_classes}, or remap the labels.",
                )
            if self.label_names is not None and tuple(feat.names) != self.label_names:
                warnings.warn(
                    f"Task '{self.name}', split '{split}': label names in the data {feat.names} differ from "
                    f"the task's {list(self.label_names)}; using the data's ids as they are.",
                    stacklevel=3,
                )
        else:
            names = list(self.label_names) if self.label_names else [str(i) for i in range(self.num_labels)]
            ds = ds.cast_column(c, datasets.ClassLabel(names=names))
        return ds

