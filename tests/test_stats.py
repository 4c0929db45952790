import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from harness.stats import (
    DELTA_TABLE_COLUMNS,
    bootstrap_ci,
    delta_table,
    mcnemar,
    paired_bootstrap,
    pearson,
    win_rate,
)

# ---------------------------------------------------------------- basics


def test_bootstrap_ci_contains_mean_and_is_ordered():
    values = [0.81, 0.83, 0.80, 0.86, 0.84, 0.82, 0.79, 0.85]
    low, high = bootstrap_ci(values, n_resamples=2000)
    assert low < np.mean(values) < high
    assert min(values) <= low < high <= max(values)
    # deterministic for a given seed, wider at higher confidence
    assert bootstrap_ci(values, n_resamples=2000) == (low, high)
    low99, high99 = bootstrap_ci(values, confidence=0.99, n_resamples=2000)
    assert low99 <= low and high99 >= high


def test_bootstrap_ci_degenerate():
    assert all(math.isnan(v) for v in bootstrap_ci([]))
    assert all(math.isnan(v) for v in bootstrap_ci([0.5]))
    assert all(math.isnan(v) for v in bootstrap_ci([0.5, float("nan")]))
    assert bootstrap_ci([0.25, 0.25, 0.25]) == (0.25, 0.25)


def test_mcnemar_hand_constructed():
    # 10 pairs where only A is right, 2 where only B is right, 30 both right, 8 both wrong
    a = np.array([True] * 10 + [False] * 2 + [True] * 30 + [False] * 8)
    b = np.array([False] * 10 + [True] * 2 + [True] * 30 + [False] * 8)
    res = mcnemar(a, b)
    assert res["b"] == 10 and res["c"] == 2 and res["n"] == 50
    assert res["statistic"] == 2
    expected = st.binomtest(2, 12).pvalue
    assert res["p_value"] == pytest.approx(expected, rel=1e-12)
    assert res["p_value"] == pytest.approx(0.0385742, abs=1e-6)  # 2 * sum_{k<=2} C(12,k) / 2^12
    # symmetric in the direction of the difference
    assert mcnemar(b, a)["p_value"] == pytest.approx(expected, rel=1e-12)


def test_mcnemar_no_discordant_pairs():
    a = np.array([True, False, True])
    res = mcnemar(a, a.copy())
    assert res["b"] == 0 and res["c"] == 0 and res["p_value"] == 1.0


def test_win_rate():
    assert win_rate([0.1, -0.2, 0.0, 0.3]) == pytest.approx(2.5 / 4)
    assert win_rate([0.01, 0.02]) == 1.0
    assert math.isnan(win_rate([]))


# ---------------------------------------------------------------- paired bootstrap


def _regression_data(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    worse = y + 1.0 * rng.normal(size=n)
    better = y + 0.5 * rng.normal(size=n)
    return y, worse, better


def test_paired_bootstrap_identical_systems():
    y, a, _ = _regression_data(300)
    res = paired_bootstrap("pearson", a, a.copy(), y, n_resamples=500)
    assert res["delta"] == 0.0
    assert res["p_value"] == 1.0
    assert res["low"] == 0.0 and res["high"] == 0.0


def test_paired_bootstrap_clearly_better_system():
    y, worse, better = _regression_data(1500)
    res = paired_bootstrap("pearson", worse, better, y, n_resamples=2000)
    expected = pearson(better, y) - pearson(worse, y)
    assert res["delta"] == pytest.approx(expected, abs=1e-12)
    assert res["delta"] == pytest.approx(st.pearsonr(better, y)[0] - st.pearsonr(worse, y)[0], abs=1e-12)
    assert res["delta"] > 0.1
    assert res["p_value"] < 0.01
    assert 0 < res["low"] < res["delta"] < res["high"]
    # reversing the systems flips the sign, not the p-value
    rev = paired_bootstrap("pearson", better, worse, y, n_resamples=2000)
    assert rev["delta"] == pytest.approx(-res["delta"])
    assert rev["p_value"] < 0.01


def test_paired_bootstrap_plain_callable_matches_named_metric():
    y, worse, better = _regression_data(1500)
    plain = paired_bootstrap(lambda p, l: np.corrcoef(p, l)[0, 1], worse, better, y, n_resamples=2000)
    named = paired_bootstrap("pearson", worse, better, y, n_resamples=2000)
    # same seed -> same resamples -> same numbers, whichever path computed them
    assert plain["low"] == pytest.approx(named["low"], abs=1e-9)
    assert plain["high"] == pytest.approx(named["high"], abs=1e-9)


def test_paired_bootstrap_no_real_difference_is_not_significant():
    rng = np.random.default_rng(3)
    y = rng.normal(size=400)
    a = y + rng.normal(size=400)
    b = y + rng.normal(size=400)  # same quality, different noise
    res = paired_bootstrap("pearson", a, b, y, n_resamples=1000)
    assert res["p_value"] > 0.05
    assert res["low"] < 0 < res["high"]


def test_batched_metrics_are_the_per_run_definitions_row_by_row():
    """harness.stats' vectorised metrics give, on every row of a batch of resamples, the score
    tasks.metrics (scikit-learn/scipy) gives on that row alone: one definition, two speeds."""
    from harness.stats import METRICS
    from tasks import metrics as task_metrics

    rng = np.random.default_rng(11)
    labels = np.round(rng.normal(size=(40, 30)), 1)  # rounded: ties, which ranks average
    preds = np.round(labels + rng.normal(size=(40, 30)), 1)
    preds[3] = 2.0  # a constant row: the correlation is undefined (NaN) on both sides
    preds[5] = -labels[5]  # exactly anti-correlated
    for name in ("pearson", "spearmanr"):
        got = METRICS[name](preds, labels)
        want = np.array([task_metrics.METRICS[name](preds[i], labels[i], 1) for i in range(len(labels))])
        assert np.isnan(got[3]) and np.isnan(want[3])
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
        assert got[5] == pytest.approx(-1.0)
    assert METRICS["spearman"] is METRICS["spearmanr"]
    classes = rng.integers(0, 3, size=(40, 25))
    logits = rng.normal(size=(40, 25, 3))
    got = METRICS["accuracy"](logits, classes)
    want = [task_metrics.accuracy(logits[i].argmax(-1), classes[i], 3) for i in range(40)]
    np.testing.assert_array_equal(got, want)


def test_the_bootstrap_takes_any_regression_metric_of_tasks_by_name():
    from tasks import metrics as task_metrics

    y, worse, better = _regression_data(300)
    # spearmanr, as tasks name it, is the vectorised form
    assert paired_bootstrap("spearmanr", worse, better, y, n_resamples=300) == paired_bootstrap(
        "spearman", worse, better, y, n_resamples=300)

    @task_metrics.register_metric("neg_mse_test", classification=False)
    def neg_mse(predictions, labels, num_labels):
        return -float(np.mean((predictions - labels) ** 2))

    try:
        res = paired_bootstrap("neg_mse_test", worse, better, y, n_resamples=300)
        # worse has noise sd 1, better sd 0.5: the MSE gap is about 1 - 0.25
        assert res["delta"] == pytest.approx(np.mean((worse - y) ** 2) - np.mean((better - y) ** 2))
        assert 0.6 < res["delta"] < 0.9 and res["low"] > 0 and res["n_resamples"] == 300
    finally:
        task_metrics.METRICS.pop("neg_mse_test")
    with pytest.raises(ValueError, match="McNemar"):
        paired_bootstrap("matthews_correlation", worse, better, y, n_resamples=10)


# ---------------------------------------------------------------- delta table


def _frame():
    rows = []
    native = [0.80, 0.82, 0.81]
    sla = [0.83, 0.84, 0.82]
    for seed, score in enumerate(native):
        rows.append(dict(run_id=f"n{seed}", task="sst2", model="bert", mode="finetune", head="native",
                         head_options="", seed=seed, score=score, status="ok",
                         params_head=1000, samples_per_second=100.0 + seed, train_seconds=10.0,
                         flops_per_sample=float("nan")))
    for seed, score in enumerate(sla):
        rows.append(dict(run_id=f"s{seed}", task="sst2", model="bert", mode="finetune", head="sla",
                         head_options="{}", seed=seed, score=score, status="ok",
                         params_head=5000, samples_per_second=80.0, train_seconds=12.0 + seed,
                         flops_per_sample=2.0e6))
    # sla with other options: one paired seed (1), one unpaired seed (7), a failed run
    rows.append(dict(run_id="o1", task="sst2", model="bert", mode="finetune", head="sla",
                     head_options='{"heads": 4}', seed=1, score=0.80, status="ok"))
    rows.append(dict(run_id="o7", task="sst2", model="bert", mode="finetune", head="sla",
                     head_options='{"heads": 4}', seed=7, score=0.99, status="ok"))
    rows.append(dict(run_id="o2", task="sst2", model="bert", mode="finetune", head="sla",
                     head_options='{"heads": 4}', seed=2, score=0.10, status="failed"))
    # mean head: seed 3 has no native partner
    for seed, score in [(0, 0.79), (1, 0.82), (3, 0.95)]:
        rows.append(dict(run_id=f"m{seed}", task="sst2", model="bert", mode="finetune", head="mean",
                         head_options="", seed=seed, score=score, status="ok"))
    # a head in probe mode: no native probe rows -> nothing to pair with
    rows.append(dict(run_id="p0", task="sst2", model="bert", mode="probe", head="sla",
                     head_options="", seed=0, score=0.7, status="ok"))
    return pd.DataFrame(rows)


def _by(table, head, options=""):
    hit = table[(table["head"] == head) & (table["head_options"] == options) & (table["mode"] == "finetune")]
    assert len(hit) == 1
    return hit.iloc[0]


def test_delta_table_known_deltas():
    table = delta_table(_frame(), n_resamples=2000)
    assert list(table.columns) == DELTA_TABLE_COLUMNS
    assert len(table) == 5
    # sorted by task, model, mode, head (then options)
    assert list(zip(table["mode"], table["head"], table["head_options"])) == [
        ("finetune", "mean", ""),
        ("finetune", "native", ""),
        ("finetune", "sla", ""),
        ("finetune", "sla", '{"heads":4}'),
        ("probe", "sla", ""),
    ]
    sla = _by(table, "sla")
    assert sla["n_seeds"] == 3 and sla["n_paired"] == 3
    assert sla["mean"] == pytest.approx(0.83, abs=1e-12)
    assert sla["median"] == pytest.approx(0.83, abs=1e-12)
    assert sla["std"] == pytest.approx(0.01, abs=1e-12)
    assert sla["delta_mean"] == pytest.approx(0.02, abs=1e-12)  # deltas 0.03, 0.02, 0.01
    assert sla["delta_ci_low"] <= 0.02 <= sla["delta_ci_high"]
    assert 0.01 - 1e-12 <= sla["delta_ci_low"] < sla["delta_ci_high"] <= 0.03 + 1e-12
    assert sla["win_rate"] == 1.0
    assert sla["params_head"] == 5000 and sla["train_seconds"] == pytest.approx(13.0)
    assert sla["flops_per_sample"] == 2.0e6
    assert sla["test"] == "" and math.isnan(sla["p_value"])


def test_delta_table_baseline_row_is_nan():
    table = delta_table(_frame(), n_resamples=2000)
    native = _by(table, "native")
    assert native["n_seeds"] == 3 and native["n_paired"] == 0
    assert native["mean"] == pytest.approx(0.81)
    for col in ("delta_mean", "delta_ci_low", "delta_ci_high", "win_rate", "p_value"):
        assert math.isnan(native[col]), col
    assert native["samples_per_second"] == pytest.approx(101.0)
    assert math.isnan(native["flops_per_sample"])


def test_delta_table_unpaired_and_options_kept_apart():
    table = delta_table(_frame(), n_resamples=2000)
    other = _by(table, "sla", '{"heads":4}')
    # failed seed 2 dropped; seed 7 unpaired -> only seed 1 paired
    assert other["n_seeds"] == 2 and other["n_paired"] == 1
    assert other["mean"] == pytest.approx((0.80 + 0.99) / 2)
    assert other["delta_mean"] == pytest.approx(0.80 - 0.82, abs=1e-12)
    assert math.isnan(other["delta_ci_low"]) and math.isnan(other["delta_ci_high"])  # one pair: no CI
    assert other["win_rate"] == 0.0
    mean = _by(table, "mean")
    assert mean["n_seeds"] == 3 and mean["n_paired"] == 2  # seed 3 has no native run
    assert mean["delta_mean"] == pytest.approx(((0.79 - 0.80) + (0.82 - 0.82)) / 2, abs=1e-12)
    assert mean["win_rate"] == pytest.approx(0.25)  # one loss, one tie
    probe = table[table["mode"] == "probe"].iloc[0]
    assert probe["n_paired"] == 0 and math.isnan(probe["delta_mean"])


def test_delta_table_rejects_ambiguous_seeds():
    frame = _frame()
    dup = frame.iloc[[3]].copy()
    dup["run_id"] = "s0-other-config"
    with pytest.raises(ValueError, match="ambiguous"):
        delta_table(pd.concat([frame, dup]))
    # the same run_id twice (a re-run) is not ambiguous: the latest one counts
    rerun = frame.iloc[[3]].copy()
    rerun["score"] = 0.90
    frame["finished_at"] = "2024-01-01T00:00:00+00:00"
    rerun["finished_at"] = "2024-01-02T00:00:00+00:00"
    table = delta_table(pd.concat([frame, rerun]), n_resamples=500)
    assert _by(table, "sla")["delta_mean"] == pytest.approx(((0.90 - 0.80) + 0.02 + 0.01) / 3)


def test_delta_table_mcnemar_from_predictions():
    rng = np.random.default_rng(0)
    n = 200
    labels = rng.integers(0, 2, size=n)
    preds = {}
    for seed in range(3):
        base = labels.copy()
        flip = rng.random(n) < 0.25
        base[flip] = 1 - base[flip]
        head = labels.copy()
        flip = rng.random(n) < 0.10
        head[flip] = 1 - head[flip]
        preds[f"n{seed}"] = (base, labels)
        preds[f"s{seed}"] = (head, labels)
    # logits for one run: argmax must be taken
    logits = np.zeros((n, 2))
    logits[np.arange(n), preds["s2"][0]] = 1.0
    preds["s2"] = (logits, labels)

    table = delta_table(_frame(), predictions_loader=preds.get, n_resamples=500)
    sla = _by(table, "sla")
    ca = np.concatenate([preds[f"n{s}"][0] == labels for s in range(3)])
    cb = np.concatenate([np.asarray(preds[f"s{s}"][0]).reshape(n, -1).argmax(-1) if s == 2 else preds[f"s{s}"][0]
                         for s in range(3)]) == np.tile(labels, 3)
    expected = mcnemar(ca, cb)
    assert sla["test"] == "mcnemar" and sla["test_n"] == 3 * n
    assert sla["p_value"] == pytest.approx(expected["p_value"], rel=1e-12)
    assert sla["p_value"] < 1e-6
    # heads whose predictions are missing get no test
    assert _by(table, "mean")["test"] == "" and math.isnan(_by(table, "mean")["p_value"])
    assert _by(table, "native")["test"] == ""


def test_delta_table_regression_paired_bootstrap():
    rng = np.random.default_rng(1)
    n = 300
    y = rng.normal(size=n)
    preds = {}
    rows = []
    for seed in range(3):
        for head, noise, prefix in (("native", 1.0, "n"), ("sla", 0.4, "s")):
            p = y + noise * rng.normal(size=n)
            preds[f"{prefix}{seed}"] = (p, y)
            rows.append(dict(run_id=f"{prefix}{seed}", task="stsb", model="bert", mode="finetune", head=head,
                             head_options="", seed=seed, score=float(np.corrcoef(p, y)[0, 1]), status="ok"))
    frame = pd.DataFrame(rows)
    table = delta_table(frame, predictions_loader=preds.get, n_resamples=500, test_resamples=500)
    sla = _by(table, "sla")
    assert sla["test"] == "paired-bootstrap" and sla["test_n"] == 3 * n
    assert sla["p_value"] < 0.01
    # a task-specific metric is honoured: a constant metric gives no difference at all
    const = lambda p, l: 0.5  # noqa: E731
    table = delta_table(frame, predictions_loader=preds.get, metric_fns={"stsb": const},
                        n_resamples=500, test_resamples=200)
    assert _by(table, "sla")["p_value"] == 1.0


def test_delta_table_from_results_store(tmp_path):
    from harness.results import ResultsStore

    store = ResultsStore(tmp_path / "runs.csv")
    for _, row in _frame().iterrows():
        store.append({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
    table = delta_table(store.read_frame(), n_resamples=2000)
    direct = delta_table(_frame(), n_resamples=2000)
    pd.testing.assert_frame_equal(table, direct)


def test_delta_table_empty():
    frame = _frame()
    frame["status"] = "failed"
    table = delta_table(frame)
    assert list(table.columns) == DELTA_TABLE_COLUMNS and len(table) == 0
