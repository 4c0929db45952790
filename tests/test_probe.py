"""Probe mode: backbone features computed once, cached on disk, reused; invalidated on any change."""
import pandas as pd
import pytest
import torch

from bench_helpers import runs, tiny_args
from harness.cli import main
from harness.features import FeatureRows, Features


def _probe(tmp_path, out, cache, extra=()):
    return main(tiny_args(out, heads="native,san-2:d=16,sla-2:d=16", seeds=2,
                          extra=["--mode", "probe", "--cache-dir", str(cache), *extra]))


def test_cache_hit_reuse_and_invalidation(tmp_path, capsys):
    cache = tmp_path / "cache"
    assert _probe(tmp_path, tmp_path / "a", cache) == 0
    printed = "".join(capsys.readouterr())  # the cache status is a log message (stderr)
    files = sorted(cache.glob("features-*.safetensors"))
    assert len(files) == 2  # train and validation, computed once for 2 heads x 2 seeds
    assert "train miss" in printed.replace("toy-sentiment/tiny-bert: ", "")
    stamps = {f: f.stat().st_mtime_ns for f in files}
    assert _probe(tmp_path, tmp_path / "b", cache) == 0  # same model, task, preprocessing: hit
    assert "train hit, validation hit" in "".join(capsys.readouterr())
    assert {f: f.stat().st_mtime_ns for f in sorted(cache.glob("features-*.safetensors"))} == stamps
    a, b = runs(tmp_path / "a"), runs(tmp_path / "b")
    assert list(a["score"]) == list(b["score"])  # cached features give the same results
    assert (a["mode"] == "probe").all()
    # any change in preprocessing is a new key: truncation length, subset
    assert _probe(tmp_path, tmp_path / "c", cache, extra=["--max-length", "8"]) == 0
    assert len(list(cache.glob("features-*.safetensors"))) == 4
    args = tiny_args(tmp_path / "d", heads="native,sla-2:d=16", seeds=1,
                     extra=["--mode", "probe", "--cache-dir", str(cache)])
    args[args.index("--max-train-samples") + 1] = "48"
    assert main(args) == 0
    # a new train subset: tiny-bert's tokenizer is fitted on it, so validation's encoding changes too
    assert len(list(cache.glob("features-*.safetensors"))) == 6
    # another backbone: new keys
    args = tiny_args(tmp_path / "f", models="embed-bert", heads="sla-2:d=16", seeds=1,
                     extra=["--mode", "probe", "--cache-dir", str(cache)])
    assert main(args) == 0
    assert len(list(cache.glob("features-*.safetensors"))) == 8


def test_cache_key_covers_precision(tmp_path):
    """The same backbone and rows under another autocast precision are another entry (one process
    holds one accelerate precision, so this calls probe_rows directly)."""
    from accelerate import Accelerator

    from harness import data
    from harness.features import probe_rows
    from harness.models import load_model
    from tasks import get_task

    task = get_task("toy-sentiment")
    train = data.subset(task.load()[task.train_split], 16)
    loaded = load_model("tiny-bert", task.num_labels, texts=lambda: train["sentence"])
    rows = {"train": data.encode(train, task, loaded, 16)}
    accelerator = Accelerator(cpu=True)
    for precision, expected in (("no", "miss"), ("no", "hit"), ("bf16", "miss"), ("bf16", "hit")):
        _, status = probe_rows(loaded, rows, precision, tmp_path, 8, accelerator)
        assert status == {"train": expected}, precision
    assert len(list(tmp_path.glob("features-*.safetensors"))) == 2


def test_probe_trains_only_the_head_and_never_mixes_with_finetune(tmp_path):
    out = tmp_path / "out"
    assert _probe(tmp_path, out, tmp_path / "cache") == 0
    assert main(tiny_args(out, heads="native,sla-2:d=16", seeds=2)) == 0  # fine-tune into the same folder
    frame = runs(out)
    assert sorted(frame["mode"].value_counts().items()) == [("finetune", 4), ("probe", 6)]
    deltas = pd.read_csv(out / "deltas.csv")
    assert sorted(deltas.groupby("mode").size().items()) == [("finetune", 2), ("probe", 3)]
    probe_sla = deltas[(deltas["mode"] == "probe") & (deltas["head"] == "sla-2:d=16")].iloc[0]
    assert probe_sla["n_paired"] == 2  # paired with the probe native runs only


def test_frozen_backbone_stays_bit_identical():
    """What probe mode asks of ``fit``: the backbone (native's pooler included) does not move; the
    classifier does."""
    from accelerate import Accelerator

    from harness import data
    from harness.models import load_model
    from harness.train import TrainConfig, fit
    from tasks import get_task

    task = get_task("toy-sentiment")
    raw = task.load()
    train = data.subset(raw[task.train_split], 64)
    loaded = load_model("tiny-bert", task.num_labels, texts=lambda: train["sentence"])
    torch.manual_seed(0)
    model = loaded.build()
    backbone = {k: v.clone() for k, v in model.base_model.state_dict().items()}
    classifier = model.classifier.weight.detach().clone()
    rows = data.encode(train, task, loaded, 32)
    config = TrainConfig(max_steps=3, batch_size=16, lr=1e-2, head_lr=1e-2, freeze_backbone=True)
    fit(model, rows, {}, config, seed=0, accelerator=Accelerator(cpu=True))
    assert not any(p.requires_grad for p in model.base_model.parameters())
    assert all(torch.equal(v, backbone[k]) for k, v in model.base_model.state_dict().items())
    assert "pooler.dense.weight" in backbone  # the native pooler is part of what stays frozen
    assert not torch.equal(model.classifier.weight, classifier)


def test_feature_rows_pad_and_mask():
    features = Features(states=torch.arange(12.0).view(6, 2).half(), offsets=torch.tensor([0, 1, 4, 6]),
                        first=torch.zeros(3, 2).half(), labels=torch.tensor([0, 1, 0]), grid=None)
    batch = FeatureRows(features).collate([0, 1])
    assert batch["states"].shape == (2, 3, 2)
    assert batch["mask"].tolist() == [[True, False, False], [True, True, True]]
    assert batch["states"][1, 2].tolist() == [6.0, 7.0] and batch["states"][0, 1].abs().sum() == 0


def test_cache_entry_size_is_the_readme_estimate(tmp_path):
    """README: an entry takes about examples x (tokens + 1) x hidden x 2 bytes (float16 states at every
    real token, plus one summary vector per example)."""
    from accelerate import Accelerator

    from harness import data
    from harness.features import SUFFIX, probe_rows
    from harness.models import load_model
    from tasks import get_task

    task = get_task("toy-sentiment")
    train = data.subset(task.load()[task.train_split], 400)
    loaded = load_model("tiny-bert", task.num_labels, texts=lambda: train["sentence"])  # hidden 64
    rows = data.encode(train, task, loaded, 32)
    probe_rows(loaded, {"train": rows}, "no", tmp_path, 64, Accelerator(cpu=True))
    (entry,) = tmp_path.glob(f"features-*{SUFFIX}")
    estimate = len(rows) * (sum(rows.lengths) / len(rows) + 1) * 64 * 2
    assert abs(entry.stat().st_size - estimate) < 0.02 * estimate + 8192, (entry.stat().st_size, estimate)


# ---------------------------------------------------------------- the cache on disk: written like rows, verified on load

def _two_splits():
    from accelerate import Accelerator

    from harness import data
    from harness.models import load_model
    from tasks import get_task

    task = get_task("toy-sentiment")
    raw = task.load()
    train = data.subset(raw[task.train_split], 16)
    loaded = load_model("tiny-bert", task.num_labels, texts=lambda: train["sentence"])
    rows = {"train": data.encode(train, task, loaded, 16),
            "validation": data.encode(data.subset(raw["validation"], 8), task, loaded, 16)}
    return loaded, rows, Accelerator(cpu=True)


def _entry(cache, loaded, rows, accelerator, split):
    """Make the entry of one split alone; returns (its path, its features)."""
    from harness.features import probe_rows

    before = set(cache.glob("features-*.safetensors")) if cache.exists() else set()
    out, status = probe_rows(loaded, {split: rows[split]}, "no", cache, 8, accelerator)
    assert status == {split: "miss"}
    (path,) = set(cache.glob("features-*.safetensors")) - before
    return path, out[split].f


def test_cache_entry_is_safetensors_with_key_and_checksum(tmp_path):
    import json

    loaded, rows, accelerator = _two_splits()
    path, _ = _entry(tmp_path, loaded, rows, accelerator, "train")
    data = path.read_bytes()
    assert not data.startswith(b"PK")  # not a torch.save zip: nothing in it is unpickled on load
    meta = json.loads(data[8:8 + int.from_bytes(data[:8], "little")])["__metadata__"]
    assert meta["format"] == "2" and path.name == f"features-{meta['key']}.safetensors"
    assert len(meta["sha256"]) == 64 and int(meta["sha256"], 16) >= 0 and meta["grid"] == "null"


@pytest.mark.parametrize("damage,reason", [
    ("flip", "its content does not match its checksum"),
    ("truncate", "unreadable"),
    ("swap", "it holds the entry of another key"),
])
def test_damaged_cache_entry_is_recomputed_and_said(tmp_path, caplog, damage, reason):
    """Before, an entry was torch.load-ed as found: a flipped byte passed unseen, another key's file
    renamed into place was used as this one."""
    import logging

    from harness.features import probe_rows

    loaded, rows, accelerator = _two_splits()
    path, fresh = _entry(tmp_path, loaded, rows, accelerator, "train")
    good = path.read_bytes()
    if damage == "flip":
        path.write_bytes(good[:-3] + bytes([good[-3] ^ 0x40]) + good[-2:])
    elif damage == "truncate":
        path.write_bytes(good[: len(good) // 2])
    else:
        other, _ = _entry(tmp_path, loaded, rows, accelerator, "validation")
        path.write_bytes(other.read_bytes())
    with caplog.at_level(logging.WARNING, logger="harness.features"):
        out, status = probe_rows(loaded, {"train": rows["train"]}, "no", tmp_path, 8, accelerator)
    assert status == {"train": "recomputed"}
    assert f"probe cache entry {path} is damaged: {reason}" in caplog.text and "recomputing it" in caplog.text
    assert torch.equal(out["train"].f.states, fresh.states) and torch.equal(out["train"].f.offsets, fresh.offsets)
    assert len(path.read_bytes()) == len(good)  # a whole entry again (and loaded as a hit below)
    assert probe_rows(loaded, {"train": rows["train"]}, "no", tmp_path, 8, accelerator)[1] == {"train": "hit"}


def test_cache_stale_temps_removed_and_a_full_disk_leaves_no_entry(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.faults import enospc_on_fsync
    from harness.features import probe_rows

    loaded, rows, accelerator = _two_splits()
    path, _ = _entry(tmp_path / "a", loaded, rows, accelerator, "train")
    stale = path.with_name(f".{path.name}.tmp-killed")
    stale.write_bytes(b"half an entry")
    assert probe_rows(loaded, {"train": rows["train"]}, "no", tmp_path / "a", 8, accelerator)[1] == {"train": "hit"}
    assert not stale.exists()
    with enospc_on_fsync(pattern=".features-", after=0) as fault:  # the entry's data is fsynced before the rename
        with pytest.raises(OSError, match="No space left on device"):
            probe_rows(loaded, {"train": rows["train"]}, "no", tmp_path / "b", 8, accelerator)
    assert fault["raised"] == 1
    assert [p.name for p in (tmp_path / "b").iterdir() if not p.name.endswith(".lock")] == []


def test_probe_model_is_the_patched_models_own_classify_step():
    """One model path: a probe model's forward is the patched model's classify_states on the cached
    states (same logits, loss and output class, images included), and holds none of the backbone."""
    import harness
    from harness.features import ProbeModel
    from transformers.modeling_outputs import ImageClassifierOutput
    from tiny_models import tiny_model

    torch.manual_seed(0)
    patched = harness.patch(tiny_model("vit"), "sla-2:d=8").eval()
    probe = ProbeModel(patched, grid=(4, 4))
    states, mask, labels = torch.randn(3, 16, 32), torch.ones(3, 16, dtype=torch.bool), torch.tensor([0, 2, 1])
    out = probe(states, mask, None, labels)
    want = patched.classify_states(states, mask, None, (4, 4), labels)
    assert isinstance(out, ImageClassifierOutput) and torch.equal(out.logits, want.logits) and torch.equal(out.loss, want.loss)
    assert {id(p) for p in probe.parameters()} == {id(p) for m in (patched.head, patched.classifier) for p in m.parameters()}
    probe.capture_internals = True
    probe(states, mask)
    assert patched.capture_internals and len(probe.last_head_output.attentions) == 2
