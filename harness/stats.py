"""Paired statistics for comparing pooling heads against the ``native`` head.

What each number means, and what it assumes
============================================

Per-run score
    ``score`` in runs.csv is the task metric of one trained model (one
    (task, model, mode, head, head_options, seed) cell) on its eval set (all of it, or the fixed
    ``--max-eval-samples`` subset that every cell of the grid shares).

``n_seeds, mean, std, median`` (per group)
    Over the seeds of one group, computed on the per-run scores.  ``std`` uses
    ddof=1 (NaN with a single seed).  Describes training-run variability only;
    it says nothing about how the eval-set sample would vary.

Pairing by seed
    A head's run with seed *s* is paired with the baseline's run with seed *s*
    of the same (task, model, mode).  Only seeds present on both sides count
    (``n_paired``); unpaired seeds are excluded from every delta statistic.
    The pairing is meaningful only if a seed fixes the same data order/split
    for both heads; otherwise the pairs are just two independent samples
    matched arbitrarily (still unbiased for the mean delta, but not a
    variance reduction).

``delta_mean``
    Mean over paired seeds of ``score(head, s) - score(baseline, s)``.

``delta_ci_low, delta_ci_high`` (:func:`bootstrap_ci`)
    Percentile-bootstrap confidence interval of the *mean* of the per-seed
    deltas (``scipy.stats.bootstrap``, ``method="percentile"``).  It treats
    seeds as i.i.d. draws of the training randomness and ignores eval-set
    sampling noise.  With the usual 3-5 seeds the percentile bootstrap
    under-covers (the interval is too narrow, and it can never be wider than
    the range of the observed deltas): read it as descriptive, not as a
    guarantee.  Fewer than 2 paired seeds -> NaN; all deltas equal -> a
    zero-width interval at that value.

``win_rate`` (:func:`win_rate`)
    Fraction of paired seeds with delta > 0; a tie (delta == 0) counts half.
    A summary, not a test.

``test, test_n, p_value`` (only when a ``predictions_loader`` is given)
    A per-example paired test of head vs. baseline, *conditional on the
    trained models*: it measures eval-set sampling uncertainty, not
    training-run variability.

    * classification (integer/bool labels): exact McNemar test
      (:func:`mcnemar`) on correct/incorrect, pooled over all
      (seed, example) pairs of the shared seeds.  Pooling treats every
      (seed, example) pair as an independent unit; the same example under
      different seeds is in fact correlated, so with several seeds the p-value
      is optimistic (anti-conservative).  ``test = "mcnemar"``,
      ``test_n`` = number of pooled pairs.
    * regression (float labels): paired bootstrap (:func:`paired_bootstrap`)
      of the task metric (``metric_fns[task]``, default Pearson r).  Examples
      are resampled with replacement, using the *same* indices for both systems
      and for every shared seed (when all seeds share one eval set; otherwise
      each seed's examples are resampled independently); the statistic is the
      mean over seeds of ``metric(head) - metric(baseline)``.
      ``test = "paired-bootstrap"``, ``test_n`` = seeds x examples.

    Two-sided bootstrap p-value: the fraction of resampled deltas on the other
    side of 0 from the observed delta (0 itself counts as the other side),
    doubled, capped at 1; an observed delta of exactly 0 gives p = 1.  Its
    resolution is ``2 / n_resamples``; p = 0 means "below that".

    No correction for multiple comparisons is applied across the rows of the
    table.

Cost columns
    ``params_head, samples_per_second, train_seconds, flops_per_sample`` are
    plain means over the group's runs (NaN-skipping).
"""

from __future__ import annotations

import json
import math
import warnings
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as _st

from .results import canonical_json, latest_index

__all__ = [
    "bootstrap_ci",
    "mcnemar",
    "paired_bootstrap",
    "win_rate",
    "delta_table",
    "METRICS",
    "pearson",
    "spearman",
    "accuracy",
    "DELTA_TABLE_COLUMNS",
]

# --------------------------------------------------------------------------
# batched metrics: the metric definitions are tasks.metrics' (see its docstring); these are the
# same definitions on the last axis (1-D input -> scalar), vectorised because a bootstrap scores
# thousands of resamples in one call. Any other tasks.metrics regression metric is used by name,
# one resample at a time.
# --------------------------------------------------------------------------


def pearson(pred: np.ndarray, labels: np.ndarray) -> Any:
    """Pearson r along the last axis (NaN where either side is constant)."""
    x = np.asarray(pred, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    x = x - x.mean(axis=-1, keepdims=True)
    y = y - y.mean(axis=-1, keepdims=True)
    num = (x * y).sum(axis=-1)
    den = np.sqrt((x * x).sum(axis=-1) * (y * y).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num / den
    return np.clip(r, -1.0, 1.0)


def spearman(pred: np.ndarray, labels: np.ndarray) -> Any:
    """Spearman rho along the last axis (average ranks for ties)."""
    return pearson(_st.rankdata(pred, axis=-1), _st.rankdata(labels, axis=-1))


def accuracy(pred: np.ndarray, labels: np.ndarray) -> Any:
    """Accuracy along the last axis; ``pred`` may be class ids or logits (one more axis)."""
    pred = np.asarray(pred)
    labels = np.asarray(labels)
    if pred.ndim == labels.ndim + 1:
        pred = pred.argmax(axis=-1)
    return (pred == labels).mean(axis=-1)


for _fn in (pearson, spearman, accuracy):
    _fn.batched = True  # type: ignore[attr-defined]

#: The batched forms, by their ``tasks.metrics`` name (``spearman`` is also ``spearmanr``).
METRICS: dict[str, Callable] = {"pearson": pearson, "spearmanr": spearman, "spearman": spearman, "accuracy": accuracy}


def _per_run(name: str) -> Callable:
    """``tasks.metrics``' definition of the regression metric ``name``, as ``fn(pred, labels)`` (one resample)."""
    from tasks import metrics as task_metrics

    definition = task_metrics.METRICS[name]

    def fn(pred, labels):
        return definition(np.asarray(pred, dtype=np.float64), np.asarray(labels, dtype=np.float64), 1)

    fn.batched = False  # type: ignore[attr-defined]
    return fn


def _resolve_metric(metric_fn: Callable | str) -> tuple[Callable, bool | None]:
    """(function, batched).  ``batched`` is the callable's ``batched`` attribute
    (True: it takes 2-D arrays, resamples x examples, and returns one value per
    row; False: call it once per resample) or None when unknown (probed).
    A name is one of :data:`METRICS` (batched) or any other regression metric of
    ``tasks.metrics`` (its definition, called once per resample)."""
    if isinstance(metric_fn, str):
        from tasks import metrics as task_metrics

        if metric_fn in METRICS:
            metric_fn = METRICS[metric_fn]
        elif metric_fn in task_metrics.METRICS and metric_fn not in task_metrics.CLASSIFICATION_METRICS:
            metric_fn = _per_run(metric_fn)
        else:
            regression = sorted(set(METRICS) | (set(task_metrics.METRICS) - task_metrics.CLASSIFICATION_METRICS))
            raise ValueError(f"unknown metric {metric_fn!r} for the paired bootstrap; known: {regression} "
                             "(classification is tested with McNemar; pass a callable fn(pred, labels) for "
                             "anything else)")
    if not callable(metric_fn):
        raise TypeError(f"metric_fn must be callable or one of {sorted(METRICS)}, got {metric_fn!r}")
    flag = getattr(metric_fn, "batched", None)
    return metric_fn, (None if flag is None else bool(flag))


def _probe_batched(fn: Callable, pred: np.ndarray, labels: np.ndarray) -> bool:
    """Does ``fn`` accept 2-D (rows = resamples) input and give one value per row?

    Checked on three deterministic resamples against row-by-row calls, so a
    function that reduces over the wrong axis or over everything is detected.
    """
    n = len(labels)
    if n < 3:
        return False
    base = np.arange(n)
    idx = np.stack([base, base[::-1], np.roll(base, 1) // 2])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = np.asarray(fn(pred[idx], labels[idx]), dtype=np.float64)
            want = np.array([fn(pred[i], labels[i]) for i in idx], dtype=np.float64)
    except Exception:
        return False
    return got.shape == want.shape and bool(np.allclose(got, want, rtol=1e-9, atol=1e-12, equal_nan=True))


# --------------------------------------------------------------------------
# basic statistics
# --------------------------------------------------------------------------


def bootstrap_ci(
    values: Sequence[float], confidence: float = 0.95, n_resamples: int = 10000, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap CI of the mean of ``values`` (NaNs dropped).

    Fewer than 2 values -> (nan, nan); all values equal -> (v, v).
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size < 2:
        return (math.nan, math.nan)
    if np.all(x == x[0]):
        return (float(x[0]), float(x[0]))
    res = _st.bootstrap(
        (x,),
        np.mean,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))


def mcnemar(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> dict[str, Any]:
    """Exact McNemar test.

    ``b`` = #(a correct, b wrong), ``c`` = #(a wrong, b correct); the p-value is
    the two-sided exact binomial test of ``c`` successes in ``b + c`` trials
    with p = 0.5 (``scipy.stats.binomtest``); no discordant pairs -> 1.0.
    ``statistic`` is ``min(b, c)`` (the exact test's statistic); ``n`` is the
    number of pairs.
    """
    a = np.asarray(correct_a, dtype=bool).ravel()
    bb = np.asarray(correct_b, dtype=bool).ravel()
    if a.shape != bb.shape:
        raise ValueError(f"correct_a has {a.size} entries, correct_b {bb.size}")
    b = int(np.count_nonzero(a & ~bb))
    c = int(np.count_nonzero(~a & bb))
    p = 1.0 if b + c == 0 else float(_st.binomtest(c, b + c, 0.5).pvalue)
    return {"b": b, "c": c, "statistic": min(b, c), "p_value": min(1.0, p), "n": int(a.size)}


def win_rate(deltas: Sequence[float]) -> float:
    """Fraction of deltas > 0, ties (== 0) counting half; NaNs dropped; empty -> nan."""
    d = np.asarray(deltas, dtype=np.float64).ravel()
    d = d[~np.isnan(d)]
    if d.size == 0:
        return math.nan
    return float((np.count_nonzero(d > 0) + 0.5 * np.count_nonzero(d == 0)) / d.size)


def _bootstrap_p(delta: float, boot: np.ndarray) -> float:
    if boot.size == 0 or not np.isfinite(delta):
        return math.nan
    if delta > 0:
        frac = np.count_nonzero(boot <= 0) / boot.size
    elif delta < 0:
        frac = np.count_nonzero(boot >= 0) / boot.size
    else:
        return 1.0
    return float(min(1.0, 2.0 * frac))


def _pooled_paired_bootstrap(
    metric_fn: Callable | str,
    preds_a: Sequence[np.ndarray],
    preds_b: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    n_resamples: int,
    seed: int,
    confidence: float,
    chunk: int = 250,
) -> dict[str, Any]:
    """Paired bootstrap of ``mean_s metric(b_s) - mean_s metric(a_s)`` over S seeds."""
    fn, batched = _resolve_metric(metric_fn)
    pa = [np.asarray(p) for p in preds_a]
    pb = [np.asarray(p) for p in preds_b]
    ys = [np.asarray(y) for y in labels]
    if not (len(pa) == len(pb) == len(ys)) or not ys:
        raise ValueError("need the same (non-zero) number of prediction/label arrays for both systems")
    for a, b, y in zip(pa, pb, ys):
        if not (len(a) == len(b) == len(y)):
            raise ValueError(f"length mismatch: {len(a)} / {len(b)} predictions, {len(y)} labels")
        if len(y) == 0:
            raise ValueError("empty evaluation set")
    n_sets = len(ys)
    if batched is None:
        batched = _probe_batched(fn, pa[0], ys[0])
    shared = all(len(y) == len(ys[0]) and np.array_equal(y, ys[0]) for y in ys)

    def metric(p: np.ndarray, y: np.ndarray) -> np.ndarray:
        if batched:
            return np.asarray(fn(p, y), dtype=np.float64)
        return np.array([fn(p[i], y[i]) for i in range(p.shape[0])], dtype=np.float64)

    delta = float(np.mean([float(fn(b, y)) - float(fn(a, y)) for a, b, y in zip(pa, pb, ys)]))
    rng = np.random.default_rng(seed)
    out = np.empty(n_resamples, dtype=np.float64)
    done = 0
    while done < n_resamples:
        k = min(chunk, n_resamples - done)
        acc = np.zeros(k, dtype=np.float64)
        idx = rng.integers(0, len(ys[0]), size=(k, len(ys[0]))) if shared else None
        for a, b, y in zip(pa, pb, ys):
            ix = idx if shared else rng.integers(0, len(y), size=(k, len(y)))
            yi = y[ix]
            acc += metric(b[ix], yi) - metric(a[ix], yi)
        out[done : done + k] = acc / n_sets
        done += k
    boot = out[np.isfinite(out)]
    if boot.size:
        alpha = (1.0 - confidence) / 2.0
        low, high = (float(v) for v in np.quantile(boot, [alpha, 1.0 - alpha]))
    else:
        low = high = math.nan
    return {
        "delta": delta,
        "low": low,
        "high": high,
        "p_value": _bootstrap_p(delta, boot),
        "n_resamples": int(boot.size),
    }


def paired_bootstrap(
    metric_fn: Callable | str,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    labels: np.ndarray,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Paired bootstrap of ``delta = metric(pred_b) - metric(pred_a)``.

    Examples are resampled with replacement, with the same indices for both
    systems.  ``metric_fn(pred, labels) -> float`` may be a callable, a name
    in :data:`METRICS` (vectorised) or another regression metric of ``tasks.metrics``.  A callable is used vectorised (2-D
    arrays, resamples x examples, one value per row) when it has attribute
    ``batched = True``, row by row when ``batched = False``, and otherwise
    after a probe on three resamples checks that a 2-D call matches row-by-row
    calls.  Resamples whose delta is NaN (e.g.
    Pearson of a constant resample) are dropped.

    Returns ``dict(delta, low, high, p_value, n_resamples)``: the observed
    delta, the percentile CI of the resampled deltas at ``confidence``, the
    two-sided bootstrap p (see module docstring) and the number of valid
    resamples.
    """
    return _pooled_paired_bootstrap(metric_fn, [pred_a], [pred_b], [labels], n_resamples, seed, confidence)


# --------------------------------------------------------------------------
# the delta table
# --------------------------------------------------------------------------

_KEYS = ["task", "model", "mode", "head", "head_options"]
_COST_COLUMNS = ["params_head", "samples_per_second", "train_seconds", "flops_per_sample"]

DELTA_TABLE_COLUMNS = [
    *_KEYS,
    "metric",
    "n_seeds",
    "mean",
    "std",
    "median",
    "n_paired",
    "delta_mean",
    "delta_ci_low",
    "delta_ci_high",
    "win_rate",
    "test",
    "test_n",
    "p_value",
    *_COST_COLUMNS,
]


def _canonical_options(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, (dict, list)):
        obj = value
    else:
        text = str(value).strip()
        if not text:
            return ""
        try:
            obj = json.loads(text)
        except ValueError:
            return text
    return "" if obj in (None, {}, []) else canonical_json(obj)


def _prepare(frame: pd.DataFrame, baseline: str) -> pd.DataFrame:
    missing = [c for c in ("task", "model", "head", "seed", "score") if c not in frame.columns]
    if missing:
        raise ValueError(f"runs frame lacks required column(s) {missing}")
    df = frame.copy()
    defaults = {"mode": "", "head_options": "", "status": "ok", "run_id": "", "finished_at": "", "metric": ""}
    for col, default in defaults.items():
        if col not in df.columns:
            df[col] = default
    for col in _COST_COLUMNS:
        if col not in df.columns:
            df[col] = np.nan
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    for col in ("task", "model", "mode", "head", "status", "run_id", "finished_at", "metric"):
        df[col] = df[col].astype(object).where(df[col].notna(), "").astype(str)
    df = df[df["status"] == "ok"].copy()
    df["score"] = pd.to_numeric(df["score"], errors="coerce").astype("float64")
    df = df[np.isfinite(df["score"])].copy()
    df["seed"] = pd.to_numeric(df["seed"], errors="coerce")
    df = df[df["seed"].notna()].copy()
    df["seed"] = df["seed"].astype("int64")
    df["head_options"] = [_canonical_options(v) for v in df["head_options"]]
    # One row per run_id (a forced re-run replaces the earlier result).
    df["_order"] = np.arange(len(df))
    named = df[df["run_id"] != ""]
    keep = latest_index({"run_id": r, "status": "ok", "finished_at": f} for r, f in zip(named["run_id"], named["finished_at"]))
    df = pd.concat([named.iloc[keep], df[df["run_id"] == ""]]).sort_values("_order")
    dup = df.duplicated(_KEYS + ["seed"], keep=False)
    if dup.any():
        first = df[dup].iloc[0]
        raise ValueError(
            "runs frame has several ok runs for the same cell "
            f"(task={first['task']!r}, model={first['model']!r}, mode={first['mode']!r}, "
            f"head={first['head']!r}, head_options={first['head_options']!r}, seed={first['seed']}) "
            "with different run_ids; pairing by seed would be ambiguous. Filter the frame "
            "(e.g. to one configuration) before calling delta_table."
        )
    base = df[df["head"] == baseline]
    bdup = base.duplicated(["task", "model", "mode", "seed"], keep=False)
    if bdup.any():
        first = base[bdup].iloc[0]
        raise ValueError(
            f"baseline head {baseline!r} has several head_options for task={first['task']!r}, "
            f"model={first['model']!r}, mode={first['mode']!r}, seed={first['seed']}; "
            "the baseline must be unique per (task, model, mode). Filter the frame first."
        )
    return df


def _is_classification(labels: Sequence[np.ndarray]) -> bool:
    return all(np.issubdtype(np.asarray(y).dtype, np.integer) or np.asarray(y).dtype == bool for y in labels)


def _example_test(
    task: str,
    base_ids: Sequence[str],
    head_ids: Sequence[str],
    loader: Callable[[str], Any],
    metric_fns: Mapping[str, Callable | str],
    n_resamples: int,
    seed: int,
) -> tuple[str, int, float]:
    preds_a, preds_b, labels = [], [], []
    for rid_a, rid_b in zip(base_ids, head_ids):
        if not rid_a or not rid_b:
            continue
        la, lb = loader(rid_a), loader(rid_b)
        if la is None or lb is None:
            continue
        pa, ya = (np.asarray(v) for v in la)
        pb, yb = (np.asarray(v) for v in lb)
        if ya.shape != yb.shape or not np.array_equal(ya, yb):
            warnings.warn(
                f"runs {rid_a} and {rid_b} were evaluated on different labels; "
                "skipping this seed in the per-example test",
                stacklevel=3,
            )
            continue
        preds_a.append(pa)
        preds_b.append(pb)
        labels.append(ya)
    if not labels:
        return "", 0, math.nan
    if _is_classification(labels):
        ca, cb = [], []
        for pa, pb, y in zip(preds_a, preds_b, labels):
            if pa.ndim == y.ndim + 1:
                pa = pa.argmax(axis=-1)
            if pb.ndim == y.ndim + 1:
                pb = pb.argmax(axis=-1)
            ca.append(np.ravel(pa == y))
            cb.append(np.ravel(pb == y))
        res = mcnemar(np.concatenate(ca), np.concatenate(cb))
        return "mcnemar", res["n"], res["p_value"]
    fn = metric_fns.get(task, "pearson")
    res = _pooled_paired_bootstrap(fn, preds_a, preds_b, labels, n_resamples, seed, 0.95)
    return "paired-bootstrap", int(sum(len(y) for y in labels)), res["p_value"]


def delta_table(
    frame: pd.DataFrame,
    baseline: str = "native",
    predictions_loader: Callable[[str], tuple[np.ndarray, np.ndarray] | None] | None = None,
    metric_fns: Mapping[str, Callable | str] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 10000,
    test_resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per (task, model, mode, head, head_options) group; see the module docstring.

    ``frame``: runs as from ``ResultsStore.read_frame()``.  Required columns:
    task, model, head, seed, score; missing optional columns default to
    mode="", head_options="", status="ok", run_id="", finished_at="", costs NaN.
    Only ``status == "ok"`` rows with a finite score are used; rows sharing a
    run_id are reduced to the latest ``finished_at``.  head_options are
    compared as canonical JSON ("", "{}" and "null" are the same: no options).
    Raises ValueError if one group has two different runs for one seed, or
    the baseline is not unique per (task, model, mode).

    ``predictions_loader(run_id) -> (pred, labels) | None`` enables the
    per-example test; ``metric_fns[task]`` (callable or a :data:`METRICS`
    name, default "pearson") is the regression metric for it.
    ``n_resamples``/``confidence``/``seed`` drive the per-seed delta CI,
    ``test_resamples`` the paired bootstrap.

    Columns: :data:`DELTA_TABLE_COLUMNS`.  The baseline's own rows, and rows
    with no paired baseline seed, have ``n_paired = 0`` and NaN delta columns
    (``win_rate``, ``p_value`` NaN, ``test = ""``, ``test_n = 0``).  Sorted by
    task, model, mode, head, head_options.
    """
    metric_fns = dict(metric_fns or {})
    df = _prepare(frame, baseline)
    records = []
    for keys, group in df.groupby(_KEYS, sort=True):
        task, model, mode, head, options = keys
        group = group.sort_values("seed")
        scores = group["score"].to_numpy(dtype=np.float64)
        metrics = sorted({m for m in group["metric"] if m})
        rec: dict[str, Any] = dict(zip(_KEYS, keys))
        rec.update(
            metric=",".join(metrics),
            n_seeds=int(len(scores)),
            mean=float(np.mean(scores)),
            std=float(np.std(scores, ddof=1)) if len(scores) > 1 else math.nan,
            median=float(np.median(scores)),
            n_paired=0,
            delta_mean=math.nan,
            delta_ci_low=math.nan,
            delta_ci_high=math.nan,
            win_rate=math.nan,
            test="",
            test_n=0,
            p_value=math.nan,
        )
        for col in _COST_COLUMNS:
            vals = group[col].to_numpy(dtype=np.float64)
            vals = vals[np.isfinite(vals)]
            rec[col] = float(vals.mean()) if vals.size else math.nan
        if head != baseline:
            base = df[(df["task"] == task) & (df["model"] == model) & (df["mode"] == mode) & (df["head"] == baseline)]
            paired = group.merge(base[["seed", "score", "run_id"]], on="seed", suffixes=("", "_base"))
            paired = paired.sort_values("seed")
            if len(paired):
                deltas = (paired["score"] - paired["score_base"]).to_numpy(dtype=np.float64)
                low, high = bootstrap_ci(deltas, confidence=confidence, n_resamples=n_resamples, seed=seed)
                rec.update(
                    n_paired=int(len(deltas)),
                    delta_mean=float(np.mean(deltas)),
                    delta_ci_low=low,
                    delta_ci_high=high,
                    win_rate=win_rate(deltas),
                )
                if predictions_loader is not None:
                    test, test_n, p = _example_test(
                        task,
                        paired["run_id_base"].tolist(),
                        paired["run_id"].tolist(),
                        predictions_loader,
                        metric_fns,
                        test_resamples,
                        seed,
                    )
                    rec.update(test=test, test_n=test_n, p_value=p)
        records.append(rec)
    out = pd.DataFrame.from_records(records, columns=DELTA_TABLE_COLUMNS)
    if len(out):
        out = out.sort_values(_KEYS, kind="stable").reset_index(drop=True)
    out["n_seeds"] = out["n_seeds"].astype("int64")
    out["n_paired"] = out["n_paired"].astype("int64")
    out["test_n"] = out["test_n"].astype("int64")
    return out
