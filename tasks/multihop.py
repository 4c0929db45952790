"""``multihop-1`` ... ``multihop-4``: a generated multi-hop task whose hops can be learned from the input's structure.

Format
======
One example is a row of ``N = 16`` cells, written as 16 space-separated words, cell ``i`` the ``i``-th word.
Cell ``i`` carries a value ``a_i`` (one of 4) and a pointer ``p_i`` to a cell: the word ``a<a_i>p<p_i>``.
The label is the value found after ``hops`` reads from the fixed start, cell 0: read cell 0, follow its
pointer, and so on; the ``hops``-th cell read points to itself (an end) and holds the answer.

Worked example (a row built with ``n_cells=8, n_values=2``, hops = 2)::

    a0p3 a1p1 a1p2 a1p3 a0p4 a1p4 a1p6 a1p7

Read 1: cell 0 (``a0p3``) points to cell 3. Read 2: cell 3 (``a1p3``) points to itself: label 1. The
cells read (``chain``) are ``[0, 3]``: one per hop. The other chain is cell 5 -> cell 4 (``a0p4``, the
other value); cells 1, 2, 6 and 7 are fillers. A head that stops after read 1 gets ``a0``, the start's own
value, which is drawn at random.

Structure
=========
* The cells form ``n_values`` (4) chains of exactly ``hops`` cells each and ``16 - 4 * hops`` filler cells.
  Inside a chain each cell points to the next; the last cell (the end) points to itself, and so does every
  filler. The query's chain starts at cell 0; every other cell sits at a random position.
* The 4 ends hold the 4 values once each (a permutation); every other cell (chain cells before the end,
  fillers) holds a value drawn uniform and independent of everything else.
* The backbone the task is meant for is ``multihop-bert`` (harness/models.py): a BERT with no transformer
  layer that gives cell ``i`` one position, whose input is ``LayerNorm(value[a_i] + pointer[p_i] +
  position[i])`` with fixed one-hot codes (word, token-type and position embeddings, each in its own block
  of coordinates; nothing in the backbone trains). "Points to j" is one vector and "is at j" another, the
  same two in every row and at every hop, so an attention layer can learn to match them from any row; the
  relation a hop follows is in the input, not hidden inside a token's identity as in ``pointer-H``'s
  one-token cells (``k5v8``, 256 cells to learn one by one).

Why it takes ``hops`` reads
===========================
The pointer read at hop ``t`` names the cell of hop ``t + 1``, and nothing else in the row says which cell
that is: a cell does not carry who points to it, and the start is not pointed to. An attention head that
reads one cell per layer needs ``hops`` layers; with ``multihop-bert`` every read happens in the head.

No shortcut, by construction (tests/test_multihop.py measures each on generated rows):

* everything the first ``hops - 1`` reads return (the cells' values, pointers and positions) is independent of
  the label: those cells hold uniform values drawn on their own; a head that stops one hop short reads a
  random value;
* the bag of values is independent of the label (4 ends hold each value once, every other cell is uniform),
  so the most or least frequent value scores chance, and so does the value at any fixed position (for
  ``hops >= 2``);
* every chain looks alike: all 4 are ``hops`` long and end in a self-pointing cell that exactly one cell
  points to (for ``hops >= 2``), so a head that finds the ends, or the ends that are pointed to, meets the
  4 values once each;
* a mean over the row's input vectors (the heads' default first query) is a sum of three separate means
  (values, pointers, positions) and holds no edge "cell i points to j": every position carries three ones,
  so the embedding LayerNorm applies one affine map to all of them (with trained embeddings its
  per-position scale would weight each cell's pointer differently and leak edges into the mean).

A soft read can also return a weighted superposition of many cells; with it a 2-layer head can solve part
of 2 hops backwards (read the ends, weighted by value, then check cell 0's pointer against them): that is
still two reads, and it is lossy.

Labels are exactly balanced per split (chance 1/4). Splits: train 20000 / validation 1000, no row in both,
columns ``sentence``, ``label`` (ClassLabel ``a0 .. a3``), ``idx``; seed ``MULTIHOP_SEED + hops``.
``data_dir`` is ignored; the rows are built in memory (~1 s per task) and cached.
"""

from __future__ import annotations

import functools
import re

import numpy as np

from .base import Task
from .generated import sentence_dataset_dict
from .registry import register_task

__all__ = [
    "MULTIHOP_HOPS",
    "MULTIHOP_SEED",
    "MULTIHOP_SIZES",
    "N_CELLS",
    "N_VALUES",
    "make_multihop_example",
    "multihop_rows",
    "parse_example",
    "solve",
    "trace",
]

N_CELLS = 16  # cells per row
N_VALUES = 4  # values = classes = chains (each chain's end holds one value)
MULTIHOP_HOPS = (1, 2, 3, 4)  # N_VALUES chains of `hops` cells must fit in N_CELLS
MULTIHOP_SEED = 20240800  # + hops
MULTIHOP_SIZES = {"train": 20000, "validation": 1000}

_CELL = re.compile(r"^a(\d+)p(\d+)$")


def make_multihop_example(rng: np.random.Generator, hops: int, n_cells: int = N_CELLS, n_values: int = N_VALUES,
                          label: int | None = None) -> tuple[list[str], int, list[int]]:
    """One row: ``(words, label, chain)``; ``words`` has ``n_cells`` cells ``a<value>p<pointer>``; ``chain`` lists
    the ``hops`` cells read, in order (``chain[0] == 0``, ``chain[-1]`` holds the label).

    ``label`` forces the answer (used to balance the splits); by default it is drawn uniform.
    """
    if hops < 1 or n_values < 2:
        raise ValueError(f"need hops >= 1 and n_values >= 2, got hops={hops}, n_values={n_values}")
    if n_values * hops > n_cells:
        raise ValueError(f"{n_values} chains of {hops} cells need {n_values * hops} cells; a row has {n_cells}")
    y = int(rng.integers(n_values)) if label is None else int(label)
    if not 0 <= y < n_values:
        raise ValueError(f"label must be in [0, {n_values}), got {y}")
    answers = [y] + [int(a) for a in rng.permutation(n_values) if a != y]  # chain c ends in answers[c]
    order = [0] + (1 + rng.permutation(n_cells - 1)).tolist()  # chain c: order[c*hops : (c+1)*hops]
    values = rng.integers(n_values, size=n_cells)  # uniform, independent: every cell that is not an end
    pointers = np.arange(n_cells)  # self-pointing by default: ends and fillers
    for c, answer in enumerate(answers):
        path = order[c * hops: (c + 1) * hops]
        pointers[path[:-1]] = path[1:]
        values[path[-1]] = answer
    words = [f"a{v}p{p}" for v, p in zip(values.tolist(), pointers.tolist())]
    return words, y, order[:hops]


def parse_example(words: list[str] | str) -> tuple[list[int], list[int]]:
    """``(values, pointers)`` of a row, one entry per cell, from its text; checks every pointer names a cell."""
    words = words.split() if isinstance(words, str) else list(words)
    cells = [_CELL.match(w) for w in words]
    bad = [w for w, m in zip(words, cells) if m is None]
    if not words or bad:
        raise ValueError(f"not a multihop row: {bad[:1] or words!r} (expected cells a<value>p<pointer>)")
    values, pointers = [int(m.group(1)) for m in cells], [int(m.group(2)) for m in cells]
    if max(pointers) >= len(words):
        raise ValueError(f"a pointer names cell {max(pointers)}; the row has {len(words)} cells")
    return values, pointers


def trace(words: list[str] | str, hops: int) -> tuple[int, list[int]]:
    """Follow the pointers of a row from cell 0 to its self-pointing end: ``(label, chain)``, from the text alone.

    Raises ValueError if that chain is not ``hops`` cells long (or runs into a cycle and never ends).
    """
    values, pointers = parse_example(words)
    chain = [0]
    while pointers[chain[-1]] != chain[-1]:
        if pointers[chain[-1]] in chain:
            raise ValueError(f"the chain from cell 0 runs into a cycle after {len(chain)} cells; it has no end")
        chain.append(pointers[chain[-1]])
    if len(chain) != hops:
        raise ValueError(f"this row's chain has {len(chain)} hops, not {hops}")
    return values[chain[-1]], chain


def solve(words: list[str] | str, hops: int) -> int:
    """The label of a row, computed by following its pointers."""
    return trace(words, hops)[0]


@functools.lru_cache(maxsize=None)
def multihop_rows(hops: int, n_values: int = N_VALUES) -> dict[str, tuple[tuple[str, ...], tuple[int, ...]]]:
    """``{split: (sentences, labels)}``, deterministic; train first, then validation, never a row in both."""
    rng = np.random.default_rng(MULTIHOP_SEED + hops)
    seen: set[str] = set()
    out = {}
    for split, n in MULTIHOP_SIZES.items():
        sentences: list[str] = []
        labels = rng.permutation(np.arange(n) % n_values)  # exactly balanced (up to n % n_values)
        for y in labels:
            while True:
                words, _, _ = make_multihop_example(rng, hops, n_values=n_values, label=int(y))
                line = " ".join(words)
                if line not in seen:
                    break
            seen.add(line)
            sentences.append(line)
        out[split] = (tuple(sentences), tuple(int(y) for y in labels))
    return out


def _load_multihop(task: Task, data_dir, splits):
    hops = int(task.name.rsplit("-", 1)[1])
    return sentence_dataset_dict(task, multihop_rows(hops, task.num_labels), splits)


MULTIHOP_TASKS = {
    hops: register_task(Task(
        name=f"multihop-{hops}",
        modality="text",
        num_labels=N_VALUES,
        metric="accuracy",
        text_columns=("sentence",),
        label_names=tuple(f"a{j}" for j in range(N_VALUES)),
        eval_splits=("validation",),
        loader=_load_multihop,
        description=f"Generated multi-hop reads: {N_CELLS} cells (value + pointer), the value {hops} read(s) from "
                    f"cell 0 (offline, 20000/1000, {N_VALUES} balanced classes; backbone: multihop-bert).",
    ))
    for hops in MULTIHOP_HOPS
}
