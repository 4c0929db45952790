"""The pointer-chasing tasks: the answer is computable, takes exactly ``hops`` hops, and has no shortcut."""

from __future__ import annotations

from collections import Counter

import datasets
import numpy as np
import pytest

from tasks import available_tasks, get_task
from tasks.pointer import (N_ANSWERS, N_KEYS, POINTER_SIZES, make_pointer_example, parse_cell, parse_example,
                           pointer_rows, solve, trace)

datasets.disable_progress_bars()

HOPS = (1, 2, 3, 4)
CHANCE = 1 / N_ANSWERS


def examples(hops: int, n: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [make_pointer_example(rng, hops) for _ in range(n)]


def test_docstring_example():
    line = "q5 k5v8 k9v10 k12v7 k10a0 k8a2 k7a1"
    assert trace(line, 2) == (2, [5, 8])
    assert trace("q9 k5v8 k9v10 k12v7 k10a0 k8a2 k7a1", 2) == (0, [9, 10])
    with pytest.raises(ValueError, match="2 hops, not 3"):
        trace(line, 3)
    with pytest.raises(ValueError, match="not a pointer example"):
        trace("query k5 hops 2", 2)
    with pytest.raises(ValueError, match="not a pointer cell"):
        trace("q5 k5v8 k8", 2)
    with pytest.raises(ValueError, match="not 2"):  # a cycle never reaches an answer: an error, not a hang
        trace("q5 k5v8 k8v5", 2)


@pytest.mark.parametrize("hops", HOPS)
def test_examples_are_well_formed_and_solvable(hops):
    for tokens, label, chain in examples(hops):
        _, cells = parse_example(tokens)
        assert len(tokens) == 1 + N_ANSWERS * hops and len(cells) == N_ANSWERS * hops  # distinct keys
        assert all(0 <= k < N_KEYS for k in cells)
        assert tokens[0] == f"q{chain[0]}"
        assert len(chain) == hops and len(set(chain)) == hops
        assert trace(tokens, hops) == (label, chain)
        assert solve(" ".join(tokens), hops) == label


@pytest.mark.parametrize("hops", HOPS)
def test_every_chain_looks_alike(hops):
    """The structure gives nothing away: each answer once, every chain `hops` long, no odd in-degree."""
    for tokens, label, _ in examples(hops):
        _, cells = parse_example(tokens)
        ends = sorted(v for kind, v in cells.values() if kind == "a")
        assert ends == list(range(N_ANSWERS))  # each answer exactly once
        pointed = Counter(v for kind, v in cells.values() if kind == "v")
        assert set(pointed.values()) <= {1}  # no key pointed to twice
        starts = [k for k in cells if k not in pointed]
        assert len(starts) == N_ANSWERS  # one start per chain, and the query's is one of them
        assert int(tokens[0][1:]) in starts
        for start in starts:  # every chain is exactly `hops` cells long
            assert len(trace([f"q{start}"] + tokens[1:], hops)[1]) == hops


@pytest.mark.parametrize("hops", HOPS)
def test_positional_and_partial_shortcuts_score_chance(hops):
    data = examples(hops, n=3000, seed=1)
    labels = np.array([y for _, y, _ in data])

    def accuracy(guess):
        return np.mean([guess(t) == y for t, y, _ in data])

    def answers_in_order(tokens):
        return [v for _, kind, v in map(parse_cell, tokens[1:]) if kind == "a"]

    for name, guess in {"first answer written": lambda t: answers_in_order(t)[0],
                        "last answer written": lambda t: answers_in_order(t)[-1],
                        "class 0": lambda t: 0}.items():
        assert abs(accuracy(guess) - CHANCE) < 0.04, name
    assert Counter(labels.tolist()).most_common(1)[0][1] / len(labels) < CHANCE + 0.04
    # after `hops - 1` follows the query's chain is known up to its last cell, which is not yet read: the
    # answer written right after the last cell read (in text order) is chance too
    if hops >= 2:
        def after_last_read(t):
            _, chain = trace(t, hops)
            last = next(i for i, c in enumerate(t[1:], 1) if parse_cell(c)[0] == chain[-2])
            return answers_in_order([t[0]] + t[last + 1:] + t[1:last])[0]
        assert abs(accuracy(after_last_read) - CHANCE) < 0.04


@pytest.mark.parametrize("hops", HOPS)
def test_splits_balanced_disjoint_deterministic(hops):
    rows = pointer_rows(hops)
    for split, n in POINTER_SIZES.items():
        sentences, labels = rows[split]
        assert len(sentences) == len(labels) == n
        counts = np.bincount(labels, minlength=N_ANSWERS)
        assert counts.max() - counts.min() <= 1  # exactly balanced
        assert all(solve(s, hops) == y for s, y in zip(sentences[:200], labels[:200]))
    assert not set(rows["train"][0]) & set(rows["validation"][0])
    pointer_rows.cache_clear()
    assert pointer_rows(hops) == rows  # same seed, same rows


def test_registered_tasks_load():
    assert {f"pointer-{h}" for h in HOPS} <= set(available_tasks("text"))
    task = get_task("pointer-3")
    assert (task.num_labels, task.metric, task.text_columns) == (N_ANSWERS, "accuracy", ("sentence",))
    data = task.load()
    assert list(data) == ["train", "validation"]
    assert {k: len(v) for k, v in data.items()} == POINTER_SIZES
    assert data["train"].column_names == ["sentence", "label", "idx"]
    assert isinstance(data["train"].features["label"], datasets.ClassLabel)
    assert data["train"].features["label"].names == [f"a{j}" for j in range(N_ANSWERS)]
    row = data["validation"][7]
    assert row["idx"] == 7 and solve(row["sentence"], 3) == row["label"]
    assert len(row["sentence"].split()) == 1 + N_ANSWERS * 3
    again = get_task("pointer-3").load(splits="validation")
    assert again["validation"]["sentence"] == data["validation"]["sentence"]
    assert get_task("pointer-1").load()["train"]["sentence"][:5] != data["train"]["sentence"][:5]


def test_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="hops >= 1"):
        make_pointer_example(rng, 0)
    with pytest.raises(ValueError, match="need 18 keys"):
        make_pointer_example(rng, 6)
    with pytest.raises(ValueError, match="label must be"):
        make_pointer_example(rng, 2, label=3)
