"""Evaluation metrics for tasks, offline (scikit-learn and scipy, no `evaluate`).

They reproduce the official GLUE metrics (as in the `glue` metric of HF `evaluate`):

=============  ==================================================
CoLA           ``matthews_correlation``
SST-2, MNLI,   ``accuracy``
QNLI, RTE,
WNLI
MRPC, QQP      ``accuracy``, ``f1`` (binary, positive class 1), ``combined``
STS-B          ``pearson``, ``spearmanr``, ``combined``
=============  ==================================================

``combined`` is the mean of the other metrics of a task; it is added whenever a task
lists more than one metric (the GLUE leaderboard convention).

Every metric function takes ``(predictions, labels, num_labels)`` as 1-D numpy arrays
and returns a Python float. Degenerate inputs never raise: an empty input gives nan,
a constant input gives nan for the correlations (undefined) and 0.0 for Matthews'
correlation (as scikit-learn does). Add your own with :func:`register_metric`.

A task may also score with a metric of the Hugging Face ``evaluate`` library (``Task.evaluate_metrics``,
a name -> a hub id such as ``"exact_match"``, or the path of a local module: a ``.py`` file defining one
``evaluate.Metric`` subclass). :func:`load_evaluate_metric` loads it (once per process) and
:func:`evaluate_score` scores with it; the built-in metrics above never go through ``evaluate``.

These are the only definitions of the built-in metrics. The per-example paired bootstrap of ``harness.stats``
scores thousands of resamples at once, so it carries vectorised forms of ``pearson``, ``spearmanr`` and
``accuracy`` (``harness.stats.METRICS``: the same definitions along the last axis, checked against these
in ``tests/test_stats.py``); every other regression metric registered here it calls by name, one
resample at a time.
"""

from __future__ import annotations

import functools
import math
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Union

import numpy as np

MetricFn = Callable[[np.ndarray, np.ndarray, int], float]

METRICS: dict[str, MetricFn] = {}

#: metrics whose inputs are class ids; the others take real-valued predictions
CLASSIFICATION_METRICS: set[str] = set()


def register_metric(name: str, *, classification: bool = True) -> Callable[[MetricFn], MetricFn]:
    """Decorator: make ``fn(predictions, labels, num_labels) -> float`` usable as ``Task.metrics``."""

    def deco(fn: MetricFn) -> MetricFn:
        METRICS[name] = fn
        if classification:
            CLASSIFICATION_METRICS.add(name)
        else:
            CLASSIFICATION_METRICS.discard(name)
        return fn

    return deco


@register_metric("accuracy")
def accuracy(predictions: np.ndarray, labels: np.ndarray, num_labels: int) -> float:
    if labels.size == 0:
        return math.nan
    return float(np.mean(predictions == labels))


@register_metric("f1")
def f1(predictions: np.ndarray, labels: np.ndarray, num_labels: int) -> float:
    """Binary F1 of class 1 for two classes (GLUE MRPC/QQP), macro F1 otherwise."""
    if labels.size == 0:
        return math.nan
    from sklearn.metrics import f1_score

    average = "binary" if num_labels == 2 else "macro"
    labels_arg = None if num_labels == 2 else list(range(num_labels))
    return float(f1_score(labels, predictions, average=average, labels=labels_arg, zero_division=0))


@register_metric("f1_macro")
def f1_macro(predictions: np.ndarray, labels: np.ndarray, num_labels: int) -> float:
    if labels.size == 0:
        return math.nan
    from sklearn.metrics import f1_score

    return float(f1_score(labels, predictions, average="macro", labels=list(range(num_labels)), zero_division=0))


@register_metric("matthews_correlation")
def matthews_correlation(predictions: np.ndarray, labels: np.ndarray, num_labels: int) -> float:
    if labels.size == 0:
        return math.nan
    from sklearn.metrics import matthews_corrcoef

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(matthews_corrcoef(labels, predictions))


def _correlation(kind: str, predictions: np.ndarray, labels: np.ndarray) -> float:
    if labels.size < 2:
        return math.nan
    if np.all(predictions == predictions[0]) or np.all(labels == labels[0]):
        return math.nan  # correlation is undefined for a constant input
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fn = stats.pearsonr if kind == "pearson" else stats.spearmanr
        value = fn(predictions, labels)[0]
    return float(value)


@register_metric("pearson", classification=False)
def pearson(predictions: np.ndarray, labels: np.ndarray, num_labels: int) -> float:
    return _correlation("pearson", predictions, labels)


@register_metric("spearmanr", classification=False)
def spearmanr(predictions: np.ndarray, labels: np.ndarray, num_labels: int) -> float:
    return _correlation("spearmanr", predictions, labels)


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def as_class_ids(predictions: Any, num_labels: int) -> np.ndarray:
    """Class ids from ids (any int-valued array) or from logits of shape ``(n, num_labels)``."""
    arr = _to_numpy(predictions)
    if arr.ndim == 2 and arr.shape[1] == num_labels and num_labels > 1:
        return arr.argmax(axis=-1).astype(np.int64)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(
            f"classification predictions must be class ids of shape (n,) or logits of shape "
            f"(n, {num_labels}); got shape {arr.shape}"
        )
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError("classification predictions must be integer class ids, got non-integer floats")
    return arr.astype(np.int64)


def as_scores(predictions: Any) -> np.ndarray:
    arr = _to_numpy(predictions).astype(np.float64)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"regression predictions must have shape (n,) or (n, 1); got shape {arr.shape}")
    return arr


# ---------------------------------------------------------------------------- evaluate metrics
#: An evaluate metric: a hub id or a local module path, or ``(id or path, config_name)``.
EvaluateRef = Union[str, tuple]


class MetricLoadError(ValueError):
    """An ``evaluate`` metric that cannot be loaded (offline hub id, missing file, not a metric module)."""


def _ref_parts(ref: EvaluateRef) -> tuple[str, Any]:
    return (ref, None) if isinstance(ref, str) else (str(ref[0]), ref[1])


def _is_local(path: str) -> bool:
    """A module path rather than a hub id: ends in .py, starts like a path, or exists here."""
    return path.endswith(".py") or path.startswith(("/", ".", "~")) or Path(path).exists()


@functools.lru_cache(maxsize=None)
def load_evaluate_metric(ref: EvaluateRef):
    """The ``evaluate`` metric module of ``ref``: ``evaluate.load(path, config_name, keep_in_memory=True)``.

    ``ref`` is a hub id (``"exact_match"``, ``"evaluate-metric/glue"``: downloaded once, then read from the
    HF cache), the path of a local module (a ``.py`` file, or a folder holding ``<folder name>.py``, defining
    one ``evaluate.Metric`` subclass), or ``(id or path, config_name)``. A local path is taken relative
    to the working directory. Raises :class:`MetricLoadError` saying what to fix.
    """
    path, config = _ref_parts(ref)
    try:
        import evaluate
    except ImportError as error:
        raise MetricLoadError(f"the metric {path!r} is an evaluate metric, and the evaluate package is not "
                              "installed: pip install evaluate (or pip install 'sla-bench[metrics]')") from error
    local = _is_local(path)
    where = Path(path).expanduser()
    if local and not where.exists():
        raise MetricLoadError(f"the evaluate metric module {path!r} does not exist (from the working directory "
                              f"{Path.cwd()}); give its path (absolute, or build it from Path(__file__) in a task "
                              "file)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = evaluate.load(str(where) if local else path, config_name=config, keep_in_memory=True)
    except Exception as error:
        if local:
            fix = ("a local metric module is a .py file that defines one evaluate.Metric subclass with _info() and "
                   "_compute(predictions, references) (see tasks/README.md)")
        else:
            fix = ("a hub id is downloaded from the Hugging Face Hub: run once with network access (it is then "
                   "cached under ~/.cache/huggingface), or give the path of a local metric module (a .py file "
                   "defining an evaluate.Metric subclass)")
        raise MetricLoadError(f"could not load the evaluate metric {path!r}"
                              + (f" (config {config!r})" if config else "")
                              + f": {type(error).__name__}: {error}. Fix: {fix}.") from error
    if not callable(getattr(module, "compute", None)):
        raise MetricLoadError(f"{path!r} loaded as {type(module).__name__}, which has no compute(); it must "
                              "define an evaluate.Metric subclass")
    return module


def evaluate_score(name: str, ref: EvaluateRef, predictions: np.ndarray, labels: np.ndarray,
                   results: dict | None = None) -> float:
    """The score ``name`` of the evaluate metric ``ref`` on these predictions:
    ``module.compute(predictions=..., references=...)[name]``, or its only value when it returns one.
    ``results`` (ref -> result dict) shares one computation among the names of one metric."""
    path, _ = _ref_parts(ref)
    results = {} if results is None else results
    if ref not in results:
        module = load_evaluate_metric(ref)
        results[ref] = dict(module.compute(predictions=predictions.tolist(), references=labels.tolist()) or {})
    result = results[ref]
    if name in result:
        value = result[name]
    elif len(result) == 1:
        value = next(iter(result.values()))
    else:
        raise ValueError(f"the evaluate metric {path!r} returned {sorted(result)}, none named {name!r}: name the "
                         "task's metric after one of them (evaluate_metrics={'<key>': ...})")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"the evaluate metric {path!r} gave {name!r} = {value!r}, not a number") from None


def compute(
    names: Iterable[str], predictions: Any, labels: Any, *, num_labels: int, regression: bool,
    evaluate_metrics: Mapping[str, EvaluateRef] | None = None,
) -> dict[str, float]:
    """Compute the named metrics (plus ``combined`` when there are several): built-in ones by their
    definition here, the names of ``evaluate_metrics`` (name -> evaluate ref) through ``evaluate``."""
    names = list(names)
    if regression:
        preds, labs = as_scores(predictions), as_scores(labels)
    else:
        preds, labs = as_class_ids(predictions, num_labels), as_class_ids(labels, num_labels)
    if preds.shape != labs.shape:
        raise ValueError(f"predictions and labels differ in length: {preds.shape[0]} vs {labs.shape[0]}")
    out: dict[str, float] = {}
    extra, results = dict(evaluate_metrics or {}), {}
    for name in names:
        if name in extra:
            out[name] = evaluate_score(name, extra[name], preds, labs, results)
            continue
        try:
            fn = METRICS[name]
        except KeyError:
            raise ValueError(f"unknown metric {name!r}; known: {', '.join(sorted(METRICS))}") from None
        out[name] = float(fn(preds, labs, num_labels))
    if len(names) > 1:
        out["combined"] = float(np.mean([out[n] for n in names]))
    return out
