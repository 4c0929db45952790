"""benchmarks/speed/ (python -m benchmarks.speed) at a tiny size: the structure of its results, with numbers
(no timing thresholds).

Every section runs once, on CPU, with tiny-bert (2 layers, hidden 64) on toy-sentiment for the
overhead/glue sections and 1-layer, hidden-32 BERT/ViT shapes for the heads: batch 4, 2 timed steps
after 1 warm-up step, 1 repeat, one torch thread.
"""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `benchmarks` is not an installed package

from benchmarks import speed  # noqa: E402

HEADS = ["native", "mean", "sla-3"]
TEXT_SHAPE, VISION_SHAPE = (1, 32, 16, 4), (1, 32, 32, 4)  # layers, hidden, seq / image side, batch
TINY = ["--device", "cpu", "--precision", "no", "--model", "tiny-bert", "--batch-size", "4", "--steps", "2",
        "--warmup", "1", "--repeats", "1", "--heads", ",".join(HEADS), "--text-shape", "1,32,16,4",
        "--vision-shape", "1,32,32,4", "--memory", "off"]


def positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


@pytest.fixture(scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models gain nothing from threads; a busy machine loses a lot
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def results(one_thread):
    return speed.run(speed.parse_args(TINY))


def test_header_and_settings(results):
    env = results["environment"]
    assert env["device"] == "cpu" and env["device_name"] and env["torch"] == torch.__version__
    assert env["precision"] == "no"
    head = results["markdown"].splitlines()[:6]
    assert any("device: **cpu**" in line for line in head) and any("precision: **no**" in line for line in head)
    assert json.loads(json.dumps(results, default=str))["environment"]["torch"] == torch.__version__  # --out's JSON


def test_overhead_section(results):
    r = results["overhead"]
    assert r["batches_verified"]  # fit trained on exactly the batches the bare loop used
    assert r["samples_timed"] == 2 * 4
    for loop in ("harness", "bare"):
        s = r["samples_per_s"][loop]
        assert len(s["values"]) == 1 and positive(s["median"])
    assert positive(r["ratio"]["median"])
    assert r["ratio"]["median"] == pytest.approx(r["samples_per_s"]["harness"]["median"]
                                                 / r["samples_per_s"]["bare"]["median"])
    assert r["target"] == 0.97 and r["meets_target"] == (r["ratio"]["median"] >= 0.97)
    assert "harness/bare" in results["markdown"]


def test_glue_section(results):
    r = results["glue"]
    for pipeline in ("harness", "trainer"):
        assert positive(r["samples_per_s"][pipeline]["median"])
        assert 0 <= r["padding"][pipeline]["padding_fraction"] < 1
    assert positive(r["ratio"]["median"])
    # run_glue pads every row to 128; the harness pads each length-grouped batch to its longest row
    assert r["padding"]["trainer"]["padding_fraction"] > r["padding"]["harness"]["padding_fraction"]
    assert r["padding"]["trainer"]["tokens_per_sample"] == 128
    assert r["padding"]["harness"]["tokens_per_sample"] < 128
    assert "harness/Trainer" in results["markdown"]


@pytest.mark.parametrize("kind", ["text", "vision"])
def test_heads_section(results, kind):
    r = results["heads"][kind]
    assert list(r["heads"]) == HEADS  # every requested head, none failed
    assert not r["reference_shape"] and r["shape"]["layers"] == 1 and r["shape"]["hidden"] == 32
    rows = r["heads"]
    for head, row in rows.items():
        assert "error" not in row, row
        assert positive(row["step_ms"]["median"]) and positive(row["step_ratio"]["median"])
        assert positive(row["flops_per_sample"]) and positive(row["head_params"])
        assert math.isfinite(row["extra_step"])
    assert rows["sla-3"]["extra_params"] == rows["sla-3"]["total_params"] - rows["native"]["total_params"] > 0
    assert rows["sla-3"]["extra_step"] == pytest.approx(rows["sla-3"]["step_ratio"]["median"] - 1.0)
    assert rows["sla-3"]["flops_per_sample"] > rows["native"]["flops_per_sample"]
    assert rows["sla-3"]["extra_flops_per_sample"] > 0
    assert rows["sla-3"]["head_params"] > rows["native"]["head_params"]
    assert rows["mean"]["head_params"] == rows["native"]["head_params"]  # parameter-free: only the classifier
    assert "peak_mib" not in rows["sla-3"] and "not measured" in r["memory_method"]  # --memory off on CPU


def test_sla_target_is_reported_only_as_indicative_off_bert_base(results):
    target = results["heads"]["text"]["target"]
    assert target["head"] == "sla-3" and target["max_extra_step"] == 0.05 and target["applies"] is False
    assert "indicative only" in results["markdown"]


def test_cpu_peak_memory_in_a_fresh_process(one_thread):
    args = speed.parse_args(TINY)
    rss = speed.cpu_peak_rss("text", TEXT_SHAPE, ["sla-3"], args)
    assert positive(rss["sla-3"]["peak_mib"]) and rss["sla-3"]["peak_mib"] >= rss["sla-3"]["built_mib"]


def test_interleave_alternates_and_ratios_pair_rounds():
    order = []
    runs = speed.interleave({"a": lambda: order.append("a") or 1.0, "b": lambda: order.append("b") or 2.0}, 3)
    assert order == ["a", "b"] * 3 and runs == {"a": [1.0] * 3, "b": [2.0] * 3}
    ratio = speed.paired_ratio([2.0, 4.0, 9.0], [1.0, 2.0, 3.0])
    assert ratio["values"] == [2.0, 2.0, 3.0] and ratio["median"] == 2.0


def test_step_window_times_exactly_the_requested_iterations(monkeypatch):
    window = speed.StepWindow(torch.device("cpu"), first=2, count=3)
    clock = iter(range(100, 200))  # a clock that reads 100, 101, ... at each tick
    ticks = []

    def perf_counter():
        ticks.append(window.iteration)
        return float(next(clock))

    monkeypatch.setattr(speed.time, "perf_counter", perf_counter)
    for _ in range(5):
        window.tick()
    with pytest.raises(RuntimeError, match="needs 6"):
        window.seconds
    window.tick()
    assert ticks == [2, 5]  # read at the start of iteration 2 and of iteration 5: iterations 2, 3, 4
    assert window.seconds == 1.0  # two clock reads, one apart


def test_arguments():
    args = speed.parse_args(["--device", "cpu", "--heads", "sla-3,mhap"])
    assert args.heads == ["native", "sla-3", "mhap"]  # native is always the reference
    assert args.precision == "no" and args.sections == list(speed.SECTIONS)
    assert args.text_shape == speed.BERT_BASE and args.vision_shape == speed.VIT_B16
    for bad in (["--sections", "speed"], ["--text-shape", "1,2,3"], ["--steps", "0"]):
        with pytest.raises(SystemExit):
            speed.parse_args(["--device", "cpu", *bad])


def test_python_dash_m_runs_the_package():
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-m", "benchmarks.speed", "--help"], cwd=root, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: python -m benchmarks.speed") and "--sections SECTIONS" in done.stdout
    assert "Sections (``--sections overhead,glue,heads``)" in done.stdout  # the package's docstring is the help
