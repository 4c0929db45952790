"""--analysis on tiny runs: the sweeps, the recorders, and the plots with the CSVs behind them."""
import json
import math

import pandas as pd
import pytest
import torch

from bench_helpers import tiny_args
from harness.analyses.drivers import DEFAULT_D, heads_for, one_head_per_family, parse_range
from harness.analyses.record import GradientRecorder
from harness.cli import main
from harness.heads import SANConfig, SLAConfig, build_head


def test_sweeps_expand_heads():
    assert parse_range("1-3") == [1, 2, 3] and parse_range("32,64") == [32, 64]
    heads = heads_for(["depth", "width"], ["native", "sla-2"], [1, 2], [16, 32], 2)
    assert heads == ["native", "sla-2", "san-1", "san-2", "sla-1", "san-2:d=16", "san-2:d=32", "sla-2:d=16",
                     "sla-2:d=32"]
    with pytest.raises(ValueError):
        parse_range("0-2")


def test_layer_plots_take_one_head_per_family():
    def row(task, head, status="ok", **options):
        return dict(task=task, head=head, status=status, head_options=json.dumps(options))
    runs = pd.DataFrame([
        row("a", "native"), row("a", "san-2", depth=2, d=256), row("a", "san-6", depth=6, d=256),
        row("a", "san-8", status="failed", depth=8, d=256), row("a", "sla-6:d=64", depth=6, d=64),
        row("a", "sla-3", depth=3, d=256), row("a", "sla-3:d=512", depth=3, d=512), row("a", "mhap", heads=4),
        row("b", "sla-2:d=32", depth=2, d=32), row("b", "sla-2:d=64", depth=2, d=64),
    ])
    chosen = one_head_per_family(runs)
    assert sorted(zip(chosen["task"], chosen["head"])) == [("a", "mhap"), ("a", "san-6"), ("a", "sla-3"),
                                                           ("b", "sla-2:d=64")]
    # 'the default d' is one number for both families, the one the rows above were written with
    assert SANConfig().d == SLAConfig().d == DEFAULT_D == 256


def test_layer_gradients_are_the_layer_blocks():
    torch.manual_seed(0)
    head = build_head("sla-3:d=4", 8)
    states = torch.randn(2, 5, 8)
    head(states, torch.ones(2, 5, dtype=torch.bool)).pooled.sum().backward()
    grads = head.layer_gradients()
    stack = head.stack
    expected_1 = torch.cat([stack.proj_v.proj.weight.grad[4:8].flatten(), stack.proj_q[1].weight.grad.flatten(),
                            stack.score[1].weight.grad.flatten(), stack.proj_v.proj.bias.grad[4:8],
                            stack.proj_c[0].proj.weight.grad.flatten()])
    assert torch.equal(grads[1], expected_1)
    assert [g.numel() for g in grads] == [4 * 8 + 4 * 8 + 4 + 4, 4 * 8 + 4 * 8 + 4 + 4 + 4 * 5, 4 * 8 + 4 * 8 + 4 + 4 + 4 * 5]
    saved = {}
    recorder = GradientRecorder({"head_family": "sla"}, sample=10, sample_every=1, save=lambda **f: saved.update(f))
    recorder.on_after_backward(type("M", (), {"head": head})(), step=0)
    assert [r["layer"] for r in recorder.rows] == [1, 2, 3] and len(recorder.samples) == 30
    assert recorder.rows[1]["grad_norm"] == pytest.approx(expected_1.norm().item())
    recorder.on_train_end(None, None)
    assert saved["steps"] is recorder.rows and len(saved["samples"]) == 30
    # the parameters each layer's gradient belongs to, as the head names them
    assert sum(p.numel() for p in stack.layer_parameters(1)) == expected_1.numel()
    assert build_head("mean", 8).layer_gradients() == []  # no stacked layers, nothing to record


def test_all_analyses_on_a_tiny_probe_run(tmp_path):
    out = tmp_path / "out"
    args = tiny_args(out, tasks="pointer-2", heads="native", seeds=2,
                     extra=["--mode", "probe", "--cache-dir", str(tmp_path / "cache"), "--analysis",
                            "depth,gradients,attention,width", "--depths", "1-2", "--widths", "8,16",
                            "--width-depth", "2"])
    assert main(args) == 0
    base = out / "analyses"
    for name in ("depth", "width", "gradient-variance", "gradient-histograms", "attention"):
        png = (base / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    depth = pd.read_csv(base / "depth.csv")
    assert sorted(zip(depth["head_family"], depth["depth"])) == [("san", 1), ("san", 2), ("sla", 1), ("sla", 2)]
    assert (depth["n"] == 2).all()
    width = pd.read_csv(base / "width.csv")
    assert sorted(width["d"].unique()) == [8, 16, 256]  # the sweep plus the default-width sla-2 / san-2
    steps = pd.read_csv(base / "gradient-variance_curves.csv.gz")
    # one head per family, the deepest at the default d: the layers of san-1 and san-2:d=8 are not pooled in
    assert set(steps["head_family"]) == {"san-2", "sla-2"}
    assert sorted(steps[steps["head_family"] == "sla-2"]["layer"].unique()) == [1, 2]
    assert set(pd.read_csv(base / "attention_entropy.csv")["head_family"]) == {"san-2", "sla-2"}
    records = [pd.read_csv(f) for f in (base / "gradients").glob("*-steps.csv.gz")]
    assert len(records) == 2 * 2 * 2 + 2 * 2 * 2  # (san, sla) x (depth 1, 2 | width 8, 16) x 2 seeds
    assert all(set(r.columns) == {"layer", "step", "grad_norm", "grad_std"} for r in records)
    assert all((r["grad_norm"] > 0).all() and r["step"].max() == 1 for r in records)
    entropy = pd.concat(pd.read_csv(f) for f in (base / "attention").glob("*-entropy.csv.gz"))
    # a pointer-2 line is 9 real tokens ([CLS], the start, 6 cells, [SEP]): 0 <= entropy <= log 9, and
    # the weights are a distribution over those 9 positions, so they average 1/9
    assert (entropy["entropy"] >= -1e-6).all() and (entropy["entropy"] <= math.log(9) + 1e-5).all()
    weights = pd.concat(pd.read_csv(f) for f in (base / "attention").glob("*-weights.csv.gz"))
    assert weights["weight"].between(0, 1).all() and weights["weight"].mean() == pytest.approx(1 / 9, rel=1e-3)
