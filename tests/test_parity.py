"""The harness's training loop against transformers.Trainer given the same recipe (benchmarks/parity.py)."""
import copy

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from transformers import BertConfig, BertForSequenceClassification

from benchmarks.parity import summarize, t_interval, trainer_for
from harness import data, train
from harness.models import word_level_tokenizer
from tasks import get_task

STEPS = 12


def _setup(n=96, regression=False):
    task = get_task("toy-sentiment")
    split = task.load()[task.train_split].select(range(n))
    tokenizer = word_level_tokenizer(split["sentence"])
    rows = data.TextRows(split, task, tokenizer, max_length=32)
    if regression:  # a real-valued target from the same rows, as STS-B's 0-5 scores
        rows.labels = rows.labels.float() * 4 + torch.linspace(0, 1, len(rows.labels))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=1 if regression else 2,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, classifier_dropout=0.0)
    return task, rows, tokenizer, BertForSequenceClassification(config)


def _record_losses(model) -> list:
    losses = []
    model.register_forward_hook(lambda m, i, out: losses.append(out.loss.item()) if out.loss is not None else None)
    return losses


def _harness_losses(model, rows, recipe, monkeypatch) -> list:
    # Both sides read the rows in order, so they see the same batches.
    sequential = data.loader
    monkeypatch.setattr(train.data, "loader", lambda r, b, seed=None, group_by_length=False: sequential(r, b))
    losses = _record_losses(model)
    train.fit(model, rows, {}, recipe, seed=0, accelerator=Accelerator(cpu=True))
    return losses, model


def _trainer_losses(model, rows, tokenizer, recipe, tmp_path) -> list:
    records = [{**{k: v[i] for k, v in rows.features.items()}, "labels": rows.labels[i]} for i in range(len(rows))]
    trainer = trainer_for(model, records, tokenizer, recipe, seed=0, total_steps=STEPS, output_dir=str(tmp_path),
                          sampling="sequential")
    losses = _record_losses(model)
    trainer.train()
    return losses, model


@pytest.mark.parametrize("regression", [False, True], ids=["classification", "regression"])
def test_per_step_losses_equal_trainers(tmp_path, monkeypatch, regression):
    """Same initial weights, same batches, dropout off: the harness's per-step training losses equal
    Trainer's given the harness's optimizer, parameter groups, schedule and clipping (cross-entropy,
    and MSE for a one-output regression model)."""
    _, rows, tokenizer, model = _setup(regression=regression)
    recipe = train.TrainConfig(max_steps=STEPS, batch_size=8, lr=5e-4, head_lr=5e-3, group_by_length=False)
    ours, mine = _harness_losses(copy.deepcopy(model), rows, recipe, monkeypatch)
    theirs, stock = _trainer_losses(copy.deepcopy(model), rows, tokenizer, recipe, tmp_path)
    assert len(ours) == len(theirs) == STEPS
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    start = dict(model.named_parameters())
    for name, p in mine.named_parameters():  # both ended at the same weights, far from where they began
        torch.testing.assert_close(p, dict(stock.named_parameters())[name], rtol=1e-4, atol=1e-5)
    moved = max((p - start[n]).abs().max().item() for n, p in mine.named_parameters())
    assert moved > 1e-3


def test_a_different_recipe_is_told_apart(tmp_path, monkeypatch):
    """The comparison can fail: Trainer given another head learning rate gives other losses by step 2."""
    _, rows, tokenizer, model = _setup()
    recipe = train.TrainConfig(max_steps=STEPS, batch_size=8, lr=5e-4, head_lr=5e-3, group_by_length=False)
    ours, _ = _harness_losses(copy.deepcopy(model), rows, recipe, monkeypatch)
    other = train.TrainConfig(**{**recipe.__dict__, "head_lr": 5e-4})
    theirs, _ = _trainer_losses(copy.deepcopy(model), rows, tokenizer, other, tmp_path)
    assert ours[0] == pytest.approx(theirs[0], abs=1e-6)  # same weights, same first batch
    assert max(abs(a - b) for a, b in zip(ours[1:], theirs[1:])) > 1e-4


def test_verdict_needs_zero_inside_the_interval_and_a_small_gap():
    import pandas as pd

    task = get_task("sst2")
    near = pd.DataFrame({"harness": [0.80, 0.81, 0.79], "trainer": [0.805, 0.80, 0.795], "harness_sps": 1.0,
                         "trainer_sps": 1.0})
    assert summarize(task, near)["meets"]
    apart = near.assign(trainer=near["harness"] - [0.02, 0.021, 0.019])  # tight interval far from 0
    verdict = summarize(task, apart)
    assert not verdict["meets"] and verdict["ci_low"] > 0
    low, high = t_interval(np.array([1.0, 2.0, 3.0]))
    # mean 2, sd 1, n 3: t(0.975, 2) = 4.303 -> half-width 4.303 / sqrt(3) = 2.484
    assert (low, high) == pytest.approx((2 - 2.4843, 2 + 2.4843), abs=1e-3)


def test_trainer_predictions_come_back_in_dataset_order(tmp_path):
    """Trainer batches evaluation by length under group_by_length; the benchmark's Trainer reads rows
    in order, so predictions pair with the dataset's labels."""
    _, rows, tokenizer, model = _setup(n=40)
    records = [{**{k: v[i] for k, v in rows.features.items()}, "labels": rows.labels[i]} for i in range(len(rows))]
    recipe = train.TrainConfig(max_steps=1, batch_size=8)
    trainer = trainer_for(model, records, tokenizer, recipe, seed=0, total_steps=1, output_dir=str(tmp_path))
    assert trainer.args.train_sampling_strategy == "group_by_length"
    output = trainer.predict(records)
    np.testing.assert_array_equal(output.label_ids, rows.labels.numpy())
