"""The pointer-chasing tasks: the answer is computable, takes exactly ``hops`` hops, and has no shortcut."""

from __future__ import annotations

from collections import Counter

import datasets
import numpy as np
import pytest

from tasks import available_tasks, get_task
from tasks.pointer import N_CELLS, POINTER_SIZES, make_pointer_example, pointer_rows, solve, trace

datasets.disable_progress_bars()

HOPS = (1, 2, 3, 4)
CHANCE = 1 / N_CELLS


def examples(hops: int, n: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [make_pointer_example(rng, hops) for _ in range(n)]


def follow(tokens: list[str], steps: int) -> int:
    """The value reached after ``steps`` follows (0 = the query key itself)."""
    cells = dict(zip(tokens[5::2], tokens[6::2]))
    key = tokens[1]
    for _ in range(steps):
        key = "k" + cells[key][1:]
    return int(key[1:])


def test_docstring_example():
    line = "query k5 hops 2 cells k3 v0 k6 v2 k5 v1 k0 v7 k1 v6 k4 v4 k7 v5 k2 v3"
    assert trace(line) == (6, [5, 1])
    assert solve(line.replace("hops 2", "hops 1")) == 1


@pytest.mark.parametrize("hops", HOPS)
def test_examples_are_well_formed_and_solvable(hops):
    for tokens, label, chain in examples(hops):
        assert len(tokens) == 5 + 2 * N_CELLS
        assert tokens[:5] == ["query", f"k{chain[0]}", "hops", str(hops), "cells"]
        keys, values = tokens[5::2], tokens[6::2]
        assert sorted(keys) == sorted(f"k{j}" for j in range(N_CELLS))  # each key once
        assert sorted(values) == sorted(f"v{j}" for j in range(N_CELLS))  # each value once
        assert len(chain) == hops and len(set(chain)) == hops  # `hops` distinct cells read
        assert trace(tokens) == (label, chain)
        assert solve(tokens) == label == solve(" ".join(tokens))


@pytest.mark.parametrize("hops", (2, 3, 4))
def test_fewer_hops_do_not_give_the_answer(hops):
    """Trivial baselines are at or below chance: the query key, the 1-hop answer, any partial chain."""
    data = examples(hops, n=2000, seed=1)
    labels = np.array([y for _, y, _ in data])
    for steps in range(hops):
        acc = np.mean([follow(t, steps) == y for t, y, _ in data])
        if steps == 0:
            assert abs(acc - CHANCE) < 0.03, acc  # predicting the query key: chance
        else:
            assert acc <= CHANCE + 0.03, (steps, acc)  # 1 .. hops-1 follows: never above chance
    assert np.mean([follow(t, hops) == y for t, y, _ in data]) == 1.0
    # the majority class, and the value of the first cell written, are chance too
    assert Counter(labels.tolist()).most_common(1)[0][1] / len(labels) < CHANCE + 0.03
    assert abs(np.mean([int(t[6][1:]) == y for t, y, _ in data]) - CHANCE) < 0.03


@pytest.mark.parametrize("hops", HOPS)
def test_splits_balanced_disjoint_deterministic(hops):
    rows = pointer_rows(hops)
    for split, n in POINTER_SIZES.items():
        sentences, labels = rows[split]
        assert len(sentences) == len(labels) == n
        counts = np.bincount(labels, minlength=N_CELLS)
        assert counts.min() > 0.5 * n / N_CELLS and counts.max() < 2 * n / N_CELLS
        assert all(solve(s) == y for s, y in zip(sentences[:200], labels[:200]))
    assert not set(rows["train"][0]) & set(rows["validation"][0])
    pointer_rows.cache_clear()
    assert pointer_rows(hops) == rows  # same seed, same rows
    vocab = {w for s in rows["train"][0] for w in s.split()}
    assert len(vocab) < 100


def test_registered_tasks_load():
    assert {f"pointer-{h}" for h in HOPS} <= set(available_tasks("text"))
    task = get_task("pointer-3")
    assert (task.num_labels, task.metric, task.text_columns) == (N_CELLS, "accuracy", ("sentence",))
    data = task.load()
    assert list(data) == ["train", "validation"]
    assert {k: len(v) for k, v in data.items()} == POINTER_SIZES
    assert data["train"].column_names == ["sentence", "label", "idx"]
    assert isinstance(data["train"].features["label"], datasets.ClassLabel)
    assert data["train"].features["label"].names == [f"v{j}" for j in range(N_CELLS)]
    row = data["validation"][7]
    assert row["idx"] == 7 and solve(row["sentence"]) == row["label"]
    assert " hops 3 " in row["sentence"]
    again = get_task("pointer-3").load(splits="validation")
    assert again["validation"]["sentence"] == data["validation"]["sentence"]
    assert get_task("pointer-1").load()["train"]["sentence"][:5] != data["train"]["sentence"][:5]
