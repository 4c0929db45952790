"""The multi-hop tasks: answers computable from the row, exactly ``hops`` reads, every shortcut at chance, and
the backbone that embeds a cell as the sum of value, pointer and position codes."""

from __future__ import annotations

from collections import Counter

import datasets
import numpy as np
import pytest
import torch

from tasks import available_tasks, get_task
from tasks.multihop import (MULTIHOP_SIZES, N_CELLS, N_VALUES, make_multihop_example, multihop_rows, parse_example,
                            solve, trace)

datasets.disable_progress_bars()

HOPS = (1, 2, 3, 4)
CHANCE = 1 / N_VALUES


def examples(hops: int, n: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [make_multihop_example(rng, hops) for _ in range(n)]


def arrays(rows):
    """(values (n, N), pointers (n, N), labels (n,), chains (n, hops)) of generated rows."""
    parsed = [parse_example(words) for words, _, _ in rows]
    return (np.array([v for v, _ in parsed]), np.array([p for _, p in parsed]), np.array([y for _, y, _ in rows]),
            np.array([c for _, _, c in rows]))


def in_degree(pointers):
    """(n, N): how many other cells point to each cell (a cell's pointer to itself is not counted)."""
    n, cells = pointers.shape
    out = np.zeros((n, cells), dtype=int)
    rows, cols = np.nonzero(pointers != np.arange(cells))
    np.add.at(out, (rows, pointers[rows, cols]), 1)
    return out


def test_docstring_example():
    row = "a0p3 a1p1 a1p2 a1p3 a0p4 a1p4 a1p6 a1p7"
    assert trace(row, 2) == (1, [0, 3])
    assert solve(row.split(), 2) == 1
    assert trace("a1p5 a1p1 a1p2 a1p3 a0p4 a1p4 a1p6 a1p7", 3) == (0, [0, 5, 4])  # start at the other chain
    with pytest.raises(ValueError, match="2 hops, not 3"):
        trace(row, 3)
    with pytest.raises(ValueError, match="not a multihop row"):
        trace("k5v8 k8a2", 2)
    with pytest.raises(ValueError, match="names cell 9"):
        trace("a0p9 a1p1", 1)
    with pytest.raises(ValueError, match="cycle"):  # a cycle never reaches an end: an error, not a hang
        trace("a0p1 a1p0", 2)


@pytest.mark.parametrize("hops", HOPS)
def test_rows_are_well_formed_and_solvable(hops):
    for words, label, chain in examples(hops):
        values, pointers = parse_example(words)
        assert len(words) == N_CELLS and all(0 <= v < N_VALUES for v in values)
        assert chain[0] == 0 and len(chain) == hops and len(set(chain)) == hops
        assert all(pointers[a] == b for a, b in zip(chain, chain[1:]))  # each read names the next
        assert pointers[chain[-1]] == chain[-1] and values[chain[-1]] == label
        assert trace(words, hops) == (label, chain)
        assert solve(" ".join(words), hops) == label


@pytest.mark.parametrize("hops", HOPS)
def test_every_chain_looks_alike(hops):
    """4 chains of `hops` cells, each answer at one end; the rest are self-pointing fillers nobody points to."""
    values, pointers, labels, _ = arrays(examples(hops))
    selfish = pointers == np.arange(N_CELLS)
    indeg = in_degree(pointers)
    assert (indeg <= 1).all()  # no cell pointed to twice by others
    starts = ~selfish & (indeg == 0) if hops >= 2 else None
    for r in range(len(values)):
        words = [f"a{v}p{p}" for v, p in zip(values[r], pointers[r])]
        if hops == 1:
            assert selfish[r].all()
            continue
        ends = np.flatnonzero(selfish[r] & (indeg[r] == 1))
        assert sorted(values[r, ends]) == list(range(N_VALUES))  # each answer at exactly one end
        assert (selfish[r] & (indeg[r] == 0)).sum() == N_CELLS - N_VALUES * hops  # the fillers
        assert starts[r, 0] and starts[r].sum() == N_VALUES  # cell 0 starts one of the 4 chains
        for start in np.flatnonzero(starts[r]):  # every chain is exactly `hops` cells long
            moved = list(words)
            moved[0], moved[start] = moved[start], moved[0]  # relabel: put that chain's start at cell 0
            moved = [_swap_cells(w, 0, start) for w in moved]
            assert len(trace(moved, hops)[1]) == hops


def _swap_cells(word: str, i: int, j: int) -> str:
    value, pointer = word[1:].split("p")
    pointer = {i: j, j: i}.get(int(pointer), int(pointer))
    return f"a{value}p{pointer}"


@pytest.mark.parametrize("hops", HOPS)
def test_positional_partial_and_bag_shortcuts_score_chance(hops):
    """Every guess that takes fewer than `hops` reads scores 1/4 (3000 rows: one standard error is 0.008)."""
    values, pointers, labels, chains = arrays(examples(hops, n=3000, seed=1))
    rows = np.arange(len(labels))
    guesses = {"class 0": np.zeros_like(labels)}
    for j in range(N_CELLS if hops >= 2 else 0):  # the value at a fixed cell (one read: for 1 hop, cell 0 answers)
        guesses[f"value at cell {j}"] = values[:, j]
    for t in range(hops - 1):  # what a head that stops short reads: the value of any cell before the last
        guesses[f"value at read {t + 1}"] = values[rows, chains[:, t]]
    counts = np.stack([(values == v).sum(1) for v in range(N_VALUES)], 1)
    guesses["most frequent value"], guesses["least frequent value"] = counts.argmax(1), counts.argmin(1)
    if hops >= 2:  # the ends (self-pointing, pointed to): each answer once, whichever is taken
        ends = (pointers == np.arange(N_CELLS)) & (in_degree(pointers) == 1)
        first, last = ends.argmax(1), N_CELLS - 1 - ends[:, ::-1].argmax(1)
        guesses["first end"], guesses["last end"] = values[rows, first], values[rows, last]
    scores = {name: float((guess == labels).mean()) for name, guess in guesses.items()}
    off = {name: s for name, s in scores.items() if abs(s - CHANCE) >= 0.035}
    assert not off, off
    assert Counter(labels.tolist()).most_common(1)[0][1] / len(labels) < CHANCE + 0.035
    assert (values[rows, chains[:, -1]] == labels).all()  # and the hops-th read is the answer


def _fit_accuracy(x: np.ndarray, y: np.ndarray, hidden: int = 0, n_train: int = 6000, steps: int = 100) -> float:
    """Held-out accuracy of a linear (hidden=0) or one-hidden-layer classifier fitted on the first n_train rows."""
    torch.manual_seed(0)
    x, y = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    d = x.shape[1]
    model = torch.nn.Linear(d, N_VALUES) if not hidden else torch.nn.Sequential(
        torch.nn.Linear(d, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, N_VALUES))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x[:n_train]), y[:n_train]).backward()
        opt.step()
    with torch.no_grad():
        return float((model(x[n_train:]).argmax(1) == y[n_train:]).float().mean())


def _one_hot(ids: np.ndarray, n: int) -> np.ndarray:
    return np.eye(n, dtype=np.float32)[ids].reshape(len(ids), -1)


@pytest.mark.parametrize("hops", HOPS)
def test_simple_classifiers_need_every_read(hops):
    """Fitted classifiers (6000 rows, 3000 held out): a linear model on the whole row, and a 1-hidden-layer
    network on everything the first `hops - 1` reads return plus the bags of values and pointers, score chance;
    the same network given the `hops`-th read too scores 1."""
    values, pointers, labels, chains = arrays(examples(hops, n=9000, seed=2))
    rows = np.arange(len(labels))
    whole = np.concatenate([_one_hot(values, N_VALUES), _one_hot(pointers, N_CELLS)], 1)  # (n, 16 * 20)
    linear = _fit_accuracy(whole, labels)
    if hops == 1:
        assert linear > 0.99  # one read at a fixed cell is linear: the classifiers can learn
    else:
        assert abs(linear - CHANCE) < 0.04, linear
    bags = [np.stack([(values == v).sum(1) for v in range(N_VALUES)], 1) / N_CELLS, in_degree(pointers) / 2.0]
    reads = [np.concatenate([_one_hot(values[rows, c], N_VALUES), _one_hot(pointers[rows, c], N_CELLS),
                             _one_hot(c, N_CELLS)], 1) for c in chains[:, :-1].T]  # reads 1 .. hops-1
    short = np.concatenate(bags + reads, 1)
    assert abs(_fit_accuracy(short, labels, hidden=64) - CHANCE) < 0.04
    last = _one_hot(values[rows, chains[:, -1]], N_VALUES)
    assert _fit_accuracy(np.concatenate([short, last], 1), labels, hidden=64) > 0.98


@pytest.mark.parametrize("hops", HOPS)
def test_splits_balanced_disjoint_deterministic(hops):
    rows = multihop_rows(hops)
    for split, n in MULTIHOP_SIZES.items():
        sentences, labels = rows[split]
        assert len(sentences) == len(labels) == n
        counts = np.bincount(labels, minlength=N_VALUES)
        assert counts.max() - counts.min() <= 1  # exactly balanced
        assert all(solve(s, hops) == y for s, y in zip(sentences[:300], labels[:300]))
    assert not set(rows["train"][0]) & set(rows["validation"][0])
    multihop_rows.cache_clear()
    assert multihop_rows(hops) == rows  # same seed, same rows


def test_registered_tasks_load():
    assert {f"multihop-{h}" for h in HOPS} <= set(available_tasks("text"))
    task = get_task("multihop-3")
    assert (task.num_labels, task.metric, task.text_columns) == (N_VALUES, "accuracy", ("sentence",))
    data = task.load()
    assert list(data) == ["train", "validation"]
    assert {k: len(v) for k, v in data.items()} == MULTIHOP_SIZES
    assert data["train"].column_names == ["sentence", "label", "idx"]
    assert data["train"].features["label"].names == [f"a{j}" for j in range(N_VALUES)]
    row = data["validation"][7]
    assert row["idx"] == 7 and solve(row["sentence"], 3) == row["label"]
    assert get_task("multihop-1").load()["train"]["sentence"][:5] != data["train"]["sentence"][:5]


def test_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="hops >= 1"):
        make_multihop_example(rng, 0)
    with pytest.raises(ValueError, match="need 20 cells"):
        make_multihop_example(rng, 5)
    with pytest.raises(ValueError, match="label must be"):
        make_multihop_example(rng, 2, label=4)


# ---------------------------------------------------------------------------- the backbone: multihop-bert


@pytest.fixture(scope="module")
def loaded():
    from harness.models import load_model

    task = get_task("multihop-2")
    return task, load_model("multihop-bert", N_VALUES, texts=lambda: multihop_rows(2)["train"][0][:200],
                            label_names=task.label_names)


def test_cell_tokenizer_one_position_per_cell(loaded):
    from harness.models import CellTokenizer

    _, model = loaded
    tok = model.tokenizer
    out = tok("a0p3 a1p1 a1p2 a1p3")
    a0, a1 = tok.vocab["a0"], tok.vocab["a1"]
    assert out["input_ids"] == [tok.cls_token_id, a0, a1, a1, a1, tok.sep_token_id]
    assert out["token_type_ids"] == [0, 4, 2, 3, 4, 0]  # a pointer to cell j is type j + 1: the position of cell j
    assert out["attention_mask"] == [1] * 6
    assert tok(["a2p0", "a3p0 a0p1"])["input_ids"][1][1:3] == [tok.vocab["a3"], a0]
    for bad, match in (("a2p", "not a cell"), ("a1p60", "does not fit")):
        with pytest.raises(ValueError, match=match):
            tok(bad)
    with pytest.raises(ValueError, match="need 33 ids"):
        CellTokenizer([" ".join(f"v{i}p0" for i in range(29))])


def _states(model, batch):
    with torch.no_grad():
        return model.base_model(**{k: v for k, v in batch.items() if k != "labels"}).last_hidden_state


def test_backbone_embeds_the_sum_of_fixed_codes(loaded):
    """Every position: one affine map of onehot(value) + onehot(pointer) + onehot(position); frozen; a row's
    mean is set by its bags of values and pointers, not by which cell points where."""
    from harness import data, patch
    from harness.models import CELL_BLOCKS

    task, model = loaded
    built = model.build()
    row = "a0p3 a1p1 a1p2 a1p3 a0p4 a1p4 a1p6 a1p7"
    # the same bags of values and pointers, other edges: cells 0 and 5 exchange their pointers
    other = "a0p4 a1p1 a1p2 a1p3 a0p4 a1p3 a1p6 a1p7"
    ds = datasets.Dataset.from_dict({"sentence": [row, other], "label": [1, 1]})
    batch = data.encode(ds, task, model).collate([0, 1])
    assert batch["token_type_ids"][0, 1:9].tolist() == [4, 2, 3, 4, 5, 5, 7, 8]
    states = _states(built, batch)  # (2, 10, 128)
    codes = torch.zeros(2, 10, 128)
    for name, ids in (("word", batch["input_ids"]), ("token_type", batch["token_type_ids"]),
                      ("position", torch.arange(10).expand(2, -1))):
        codes.scatter_add_(2, (CELL_BLOCKS[name][0] + ids).unsqueeze(-1), torch.ones(2, 10, 1))
    expected = torch.nn.functional.layer_norm(codes, (128,), eps=1e-12)  # BERT LayerNorm at identity init
    assert torch.allclose(states, expected, atol=1e-5)
    flat, out = codes.reshape(-1, 128), states.reshape(-1, 128)
    scale = (out - out.mean(1, keepdim=True)) / (flat - flat.mean(1, keepdim=True))
    assert torch.allclose(scale, scale[0, 0].expand_as(scale), rtol=1e-4)  # one scale for every position: affine
    assert not torch.allclose(states[0], states[1])
    assert torch.allclose(states[0].mean(0), states[1].mean(0), atol=1e-6)  # the mean holds no edge
    patched = patch(built, head="sla-2:query=learned")
    trainable = {n for n, p in patched.named_parameters() if p.requires_grad}
    backbone = {f"backbone.{n}" for n, _ in patched.backbone.named_parameters()}
    assert trainable and not trainable & backbone  # only the head and classifier train
    out = patched(**batch)
    out.loss.backward()
    assert all(p.grad is None for p in patched.backbone.parameters())
    torch.manual_seed(123)
    assert torch.equal(_states(model.build(), batch), states)  # the codes do not depend on the seed
