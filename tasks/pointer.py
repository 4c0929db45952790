"""``pointer-1`` ... ``pointer-4``: a generated pointer-chasing task whose answer takes exactly ``hops`` hops.

Retired for depth studies: no head learns 2 to 4 hops here, because the relation a hop follows is hidden
inside each cell token's identity. ``multihop-H`` (tasks/multihop.py) exposes it in the input; this task stays
for the committed ``pointer-*`` analyses (tasks/README.md says more).

Format
======
One example is a line of space-separated word tokens: the start token ``q<s>``, then ``3 * hops``
cells, one token each: ``k<key>v<next>`` (a pointer to the cell whose key is ``next``) or
``k<key>a<answer>`` (the end of a chain)::

    q5 k5v8 k9v10 k12v7 k10a0 k8a2 k7a1          (hops = 2)

* The cells form 3 chains of exactly ``hops`` cells each; every chain ends in a different answer
  ``a0``, ``a1``, ``a2``. ``q<s>`` names the first key of one chain: the query's.
* Keys are ``hops * 3`` distinct draws from ``k0 .. k15``, and the cells are written in a random order,
  so neither a key nor a position says which chain a cell is in.
* The label is the answer at the end of the query's chain (3 classes, ``a0 .. a2``).

Worked example (the line above): start at ``k5``; the cell ``k5v8`` points to ``k8`` (hop 1); the cell
``k8a2`` ends the chain (hop 2): label 2. The cells read (``chain``) are ``[5, 8]``: one per hop.

Why one token per cell: an attention layer returns the positions it attends to, so what it reads must sit
at the key's own position; with ``k5 v8`` as two tokens an attention head that finds ``k5`` reads
``k5`` back, not ``v8``.

Why it takes ``hops`` hops
==========================
The pointer read at hop ``t`` names the cell of hop ``t + 1``, and nothing else in the line says which
cell that is, so it can only be found after hop ``t`` has been read; an attention head that reads one
cell per layer needs ``hops`` layers. The backbone the task is meant for (``embed-bert``,
harness/models.py) has no transformer layer, so every hop has to happen in the head.

No shortcut, by construction (tests/test_pointer.py checks each): all three chains have the same
length, so every chain looks alike: each answer appears exactly once, every answer cell's key is
pointed to by exactly one cell (for ``hops >= 2``), and every chain start by none. A model that
followed ``j < hops`` hops knows cells of the query's chain but not which answer ends it: all three
remain possible (a first design with one chain and distractor cells of other lengths let a 2-layer head
solve 4 hops from which answer cell is pointed to). Labels are exactly balanced per split, so any fixed
class, the first or last answer written, or the answer nearest the start token score chance (1/3).

A bag of the tokens still describes the whole graph; a head whose query is a mean over tokens can use
it to check one edge against a position in a single layer, so it may need fewer than ``hops`` layers.
The depth results in results/paper-analyses/ say which query was used.

Splits: train 20000 / validation 1000, labels exactly balanced, no line in both splits, columns
``sentence``, ``label`` (ClassLabel ``a0 .. a2``), ``idx``; seed ``POINTER_SEED + hops``. ``data_dir`` is
ignored; nothing is written to disk; the rows are built in memory (~0.5 s per task) and cached.
"""

from __future__ import annotations

import functools

import numpy as np

from .base import Task
from .generated import sentence_dataset_dict
from .registry import register_task

__all__ = [
    "N_ANSWERS",
    "N_KEYS",
    "POINTER_HOPS",
    "POINTER_SEED",
    "POINTER_SIZES",
    "make_pointer_example",
    "parse_cell",
    "parse_example",
    "pointer_rows",
    "solve",
    "trace",
]

N_ANSWERS = 3
N_KEYS = 16  # the key alphabet; each example uses n_answers * hops distinct keys
POINTER_HOPS = (1, 2, 3, 4)
POINTER_SEED = 20240700  # + hops
POINTER_SIZES = {"train": 20000, "validation": 1000}


def make_pointer_example(
    rng: np.random.Generator, hops: int, n_answers: int | None = None, label: int | None = None
) -> tuple[list[str], int, list[int]]:
    """One example: ``(tokens, label, chain)``; ``chain`` = the keys of the ``hops`` cells read, in order.

    ``label`` forces the answer (used to balance the splits); by default it is drawn uniform.
    """
    n_answers = N_ANSWERS if n_answers is None else n_answers
    if hops < 1 or n_answers < 2:
        raise ValueError(f"need hops >= 1 and n_answers >= 2, got hops={hops}, n_answers={n_answers}")
    y = int(rng.integers(n_answers)) if label is None else int(label)
    if not 0 <= y < n_answers:
        raise ValueError(f"label must be in [0, {n_answers}), got {y}")
    n_cells = n_answers * hops
    if n_cells > N_KEYS:
        raise ValueError(f"{n_answers} chains of {hops} cells need {n_cells} keys; there are {N_KEYS}")
    keys = [int(k) for k in rng.choice(N_KEYS, n_cells, replace=False)]
    answers = [y] + [int(a) for a in rng.permutation(n_answers) if a != y]
    value = {}
    for c, answer in enumerate(answers):  # chain c: keys[c*hops : (c+1)*hops], the query's is chain 0
        path = keys[c * hops: (c + 1) * hops]
        value.update({k: f"v{nxt}" for k, nxt in zip(path, path[1:])})
        value[path[-1]] = f"a{answer}"
    chain = keys[:hops]
    tokens = [f"q{chain[0]}"] + [f"k{key}{value[key]}" for key in rng.permutation(keys).tolist()]
    return tokens, y, chain


def parse_cell(cell: str) -> tuple[int, str, int]:
    """``"k5v8"`` -> ``(5, "v", 8)`` (a pointer to key 8); ``"k8a2"`` -> ``(8, "a", 2)`` (answer 2)."""
    kinds = [kind for kind in "va" if kind in cell]
    if not cell.startswith("k") or len(kinds) != 1:
        raise ValueError(f"not a pointer cell: {cell!r} (expected k<key>v<key> or k<key>a<answer>)")
    key, value = cell[1:].split(kinds[0])
    return int(key), kinds[0], int(value)


def parse_example(tokens: list[str] | str) -> tuple[int, dict[int, tuple[str, int]]]:
    """``(start, {key: (kind, value)})`` parsed from an example's text."""
    tokens = tokens.split() if isinstance(tokens, str) else list(tokens)
    if len(tokens) < 2 or not (tokens[0].startswith("q") and tokens[0][1:].isdigit()):
        raise ValueError(f"not a pointer example: {' '.join(tokens[:3])!r} ...")
    cells = {key: (kind, value) for key, kind, value in map(parse_cell, tokens[1:])}
    return int(tokens[0][1:]), cells


def trace(tokens: list[str] | str, hops: int) -> tuple[int, list[int]]:
    """Follow ``hops`` pointers written in an example: ``(label, chain)``, from the text alone."""
    key, cells = parse_example(tokens)
    chain = []
    for _ in cells:  # a chain reads each cell at most once; a cycle runs out of cells and fails below
        chain.append(key)
        kind, key = cells[key]
        if kind == "a":
            break
    if len(chain) != hops or kind != "a":
        raise ValueError(f"this example's chain has {len(chain)} hops, not {hops}")
    return key, chain


def solve(tokens: list[str] | str, hops: int) -> int:
    """The label of an example, computed by following its pointers."""
    return trace(tokens, hops)[0]


@functools.lru_cache(maxsize=None)
def pointer_rows(hops: int, n_answers: int = N_ANSWERS) -> dict[str, tuple[tuple[str, ...], tuple[int, ...]]]:
    """``{split: (sentences, labels)}``, deterministic; train first, then validation, never a line in both."""
    rng = np.random.default_rng(POINTER_SEED + hops)
    seen: set[str] = set()
    out = {}
    for split, n in POINTER_SIZES.items():
        sentences: list[str] = []
        labels = rng.permutation(np.arange(n) % n_answers)  # exactly balanced (up to n % n_answers)
        for y in labels:
            while True:
                tokens, label, _ = make_pointer_example(rng, hops, n_answers, label=int(y))
                line = " ".join(tokens)
                if line not in seen:
                    break
            seen.add(line)
            sentences.append(line)
        out[split] = (tuple(sentences), tuple(int(y) for y in labels))
    return out


def _load_pointer(task: Task, data_dir, splits):
    hops = int(task.name.rsplit("-", 1)[1])
    return sentence_dataset_dict(task, pointer_rows(hops, task.num_labels), splits)


POINTER_TASKS = {
    hops: register_task(Task(
        name=f"pointer-{hops}",
        modality="text",
        num_labels=N_ANSWERS,
        metric="accuracy",
        text_columns=("sentence",),
        label_names=tuple(f"a{j}" for j in range(N_ANSWERS)),
        eval_splits=("validation",),
        loader=_load_pointer,
        description=f"Generated pointer chasing: {N_ANSWERS} chains of {hops} cell(s), follow the queried one "
                    f"(offline, 20000/1000, {N_ANSWERS} balanced classes; backbone: embed-bert).",
    ))
    for hops in POINTER_HOPS
}
