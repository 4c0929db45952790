"""The delta table: a chosen baseline, its row first, one-seed cells, and a re-render without retraining."""
import json

import pandas as pd
import pytest

from bench_helpers import runs, tiny_args
from harness.cli import main
from harness.report import markdown, natural_key


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study") / "out"
    assert main(tiny_args(out, heads="native,mean,sla-2:d=16", seeds=2)) == 0
    return out


def test_baseline_rerenders_without_retraining(study, capsys):
    before = (study / "runs.csv").read_bytes()
    native = pd.read_csv(study / "deltas.csv")
    assert set(native["baseline"]) == {"native"}
    assert main(tiny_args(study, heads="native,mean,sla-2:d=16", extra=["--report-only", "--baseline", "mean"])) == 0
    assert (study / "runs.csv").read_bytes() == before  # nothing trained, nothing appended
    table = pd.read_csv(study / "deltas.csv")
    assert set(table["baseline"]) == {"mean"} and table.iloc[0]["head"] == "mean"
    frame = runs(study).set_index(["head", "seed"])["score"]
    want = (frame["sla-2:d=16"] - frame["mean"]).mean()
    assert table.set_index("head").loc["sla-2:d=16", "delta_mean"] == pytest.approx(want)
    # the native row against mean is the mirror of mean against native
    mirrored = native.set_index("head").loc["mean", "delta_mean"]
    assert table.set_index("head").loc["native", "delta_mean"] == pytest.approx(-mirrored)
    summary = (study / "summary.md").read_text()
    assert "Baseline: `mean`" in summary and "Δ vs mean (95% CI)" in summary and "Δ vs native" not in summary
    assert "Δ vs mean" in capsys.readouterr().out


def test_two_baselines_give_two_tables(study):
    assert main(tiny_args(study, heads="native,mean,sla-2:d=16", extra=["--report-only", "--baseline", "native,mean"])) == 0
    table = pd.read_csv(study / "deltas.csv")
    assert table["baseline"].tolist() == ["native"] * 3 + ["mean"] * 3
    assert table["head"].tolist()[:1] == ["native"] and table["head"].tolist()[3:4] == ["mean"]
    summary = (study / "summary.md").read_text()
    assert summary.count("| task | model |") == 2 and "Δ vs native" in summary and "Δ vs mean" in summary


def test_missing_baseline_is_named_with_the_fix(study):
    assert main(tiny_args(study, heads="native,mean,sla-2:d=16", extra=["--report-only", "--baseline", "san-3"])) == 0
    summary = (study / "summary.md").read_text()
    assert "No `san-3` runs for: toy-sentiment/tiny-bert/finetune/" in summary and "--baseline" in summary
    assert pd.read_csv(study / "deltas.csv")["n_paired"].eq(0).all()


def test_baseline_row_first_then_natural_order():
    assert sorted(["sla-2", "san-10", "mean", "san-2"], key=natural_key) == ["mean", "san-2", "san-10", "sla-2"]
    rows = [dict(task="t", model="m", mode="finetune", recipe="r", baseline="native", head=h, n_seeds=1,
                 mean=0.5, std=float("nan"), median=0.5, n_paired=0 if h == "native" else 1, delta_mean=0.01,
                 delta_ci_low=float("nan"), delta_ci_high=float("nan"), test="", test_n=0, p_value=float("nan"),
                 win_rate=1.0, params_head=1, flops_per_sample=1e9, samples_per_second=1.0)
            for h in ("native", "mean")]
    text = markdown(pd.DataFrame(rows))
    # one seed: a score without a dangling "±", a delta without an empty "(, )"
    assert "± " not in text.split("\n", 2)[2] and "(, )" not in text
    assert "| 0.5000 |" in text and "+0.0100 (1 seed: no CI)" in text


def test_one_seed_study_prints_clean_cells(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(tiny_args(out, heads="mean,native", seeds=1)) == 0
    printed = capsys.readouterr().out
    body = [line for line in printed.splitlines() if line.startswith("| toy-sentiment")]
    assert [line.split("|")[5].strip() for line in body] == ["native", "mean"]  # the baseline first
    assert all("± |" not in line and "(, )" not in line for line in body)


@pytest.mark.parametrize("flags, words", [
    (["--baseline", "nope"], "nope"),
    (["--baseline", " , "], "--baseline needs a head"),
    (["--weight-decay", "-0.1"], "--weight-decay"),
    (["--warmup-ratio", "1.0"], "--warmup-ratio"),
    (["--warmup-ratio", "nan"], "--warmup-ratio"),
])
def test_bad_report_and_recipe_flags(tmp_path, capsys, flags, words):
    assert main(tiny_args(tmp_path / "out", extra=flags)) == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_weight_decay_and_warmup_are_recipe_fields(tmp_path):
    out = tmp_path / "out"
    assert main(tiny_args(out, heads="native", seeds=1)) == 0
    assert main(tiny_args(out, heads="native", seeds=1, extra=["--weight-decay", "0.1", "--warmup-ratio", "0"])) == 0
    frame = runs(out)
    configs = [json.loads(c) for c in frame["config"]]
    assert [(c["weight_decay"], c["warmup_ratio"]) for c in configs] == [(0.01, 0.1), (0.1, 0.0)]
    assert frame["run_id"].is_unique  # another recipe is another run, never a resumed one
