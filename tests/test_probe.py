"""Probe mode: backbone features computed once, cached on disk, reused; invalidated on any change."""
import pandas as pd
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
    printed = capsys.readouterr().out
    files = sorted(cache.glob("features-*.pt"))
    assert len(files) == 2  # train and validation, computed once for 2 heads x 2 seeds
    assert "train miss" in printed.replace("toy-sentiment/tiny-bert: ", "")
    stamps = {f: f.stat().st_mtime_ns for f in files}
    assert _probe(tmp_path, tmp_path / "b", cache) == 0  # same model, task, preprocessing: hit
    assert "train hit, validation hit" in capsys.readouterr().out
    assert {f: f.stat().st_mtime_ns for f in sorted(cache.glob("features-*.pt"))} == stamps
    a, b = runs(tmp_path / "a"), runs(tmp_path / "b")
    assert list(a["score"]) == list(b["score"])  # cached features give the same results
    assert (a["mode"] == "probe").all()
    # any change in preprocessing is a new key: truncation length, subset
    assert _probe(tmp_path, tmp_path / "c", cache, extra=["--max-length", "8"]) == 0
    assert len(list(cache.glob("features-*.pt"))) == 4
    args = tiny_args(tmp_path / "d", heads="native,sla-2:d=16", seeds=1,
                     extra=["--mode", "probe", "--cache-dir", str(cache)])
    args[args.index("--max-train-samples") + 1] = "48"
    assert main(args) == 0
    # a new train subset: tiny-bert's tokenizer is fitted on it, so validation's encoding changes too
    assert len(list(cache.glob("features-*.pt"))) == 6
    # another backbone: new keys
    args = tiny_args(tmp_path / "f", models="embed-bert", heads="sla-2:d=16", seeds=1,
                     extra=["--mode", "probe", "--cache-dir", str(cache)])
    assert main(args) == 0
    assert len(list(cache.glob("features-*.pt"))) == 8


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
    assert len(list(tmp_path.glob("features-*.pt"))) == 2


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
