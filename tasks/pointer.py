"""``pointer-1`` ... ``pointer-4``: a generated pointer-chasing task whose answer takes exactly ``hops`` hops.

Format
======
One example is a line of space-separated word tokens: a 5-token header, then ``n_cells`` (8) cells of
two tokens each, ``<key> <value>``::

    query k5 hops 2 cells k3 v0 k6 v2 k5 v1 k0 v7 k1 v6 k4 v4 k7 v5 k2 v3

* The keys ``k0 .. k7`` each appear exactly once as a cell key, in a random order (so the position of a
  cell says nothing about its key).
* A value ``vj`` points to the key ``kj``. The values form a random permutation of ``v0 .. v7``: every
  value appears exactly once too, so counting tokens tells nothing.
* ``query k5`` names the start key; ``hops 2`` the number of pointer follows (constant within a task).
* The label is the index ``j`` of the value ``vj`` reached after ``hops`` follows (8 classes, named
  ``v0 .. v7``).

Worked example (the line above, ``hops = 2``): start at ``k5``; the cell ``k5 v1`` points to ``k1``
(hop 1); the cell ``k1 v6`` gives ``v6`` (hop 2): label 6. With ``hops = 1`` the label would be 1.
The cells read (``chain``) are ``[5, 1]``: one per hop.

Why it takes ``hops`` hops
==========================
The value read at hop ``t`` names the cell to read at hop ``t + 1``, and nothing else in the line says
which cell that is: each key is written once, at a random position, and each value once. So the cell of
hop ``t + 1`` can only be found after hop ``t`` has been read; an attention head that reads one cell per
layer needs ``hops`` layers (a backbone can of course do some of the hops before the head).

How an example is drawn (:func:`make_pointer_example`): the label ``y`` is drawn uniform over the 8
classes (exactly balanced per split) independently of the query ``s``; the intermediate keys
``c1 .. c(hops-1)`` uniform without repeats among the keys other than ``s`` and ``y``; then
``s -> c1 -> ... -> c(hops-1) -> y`` is written into the cells and the remaining cells get a uniformly
random bijection of the remaining keys to the remaining values. So the cells read are all distinct
(the hop count is exact), ``y`` may equal ``s`` (a cycle closing on the last hop) with probability
exactly 1/8, and ``y`` is uniform given ``s``.

Shortcuts, measured (see tests/test_pointer.py): the query key and any fixed class score chance (1/8);
token counts carry nothing (every key and value appears once). A permutation never revisits a cell, so
``y`` differs from ``c1 .. c(hops-1)``: a model that followed ``j < hops`` hops can rule out ``j``
classes and score at most ``(7/8) / (7 - j)`` (hops 2 after 1 hop: 14.6%; hops 4 after 3 hops: 21.9%,
against 12.5% chance), and the 1-hop answer itself scores 0 for ``hops >= 2``. That residue is the
price of the permutation; drawing the values independently instead would let "predict the most
frequent value" score ~32% without following any pointer.

Splits: train 4000 / validation 1000, labels exactly balanced, no line in both splits, columns
``sentence``, ``label`` (ClassLabel ``v0 .. v7``), ``idx``; seed ``POINTER_SEED + hops``. ``data_dir`` is
ignored; nothing is written to disk; the rows are built in memory (~0.05 s per task) and cached.
Vocabulary: 24 words (``query hops cells 1 2 3 4 k0..k7 v0..v7``).
"""

from __future__ import annotations

import functools

import numpy as np

from .base import Task
from .generated import sentence_dataset_dict
from .registry import register_task

__all__ = [
    "N_CELLS",
    "POINTER_HOPS",
    "POINTER_SEED",
    "POINTER_SIZES",
    "make_pointer_example",
    "pointer_rows",
    "solve",
    "trace",
]

N_CELLS = 8
POINTER_HOPS = (1, 2, 3, 4)
POINTER_SEED = 20240700  # + hops
POINTER_SIZES = {"train": 4000, "validation": 1000}
_HEADER = 5  # query <key> hops <n> cells


def make_pointer_example(
    rng: np.random.Generator, hops: int, n_cells: int = N_CELLS, label: int | None = None
) -> tuple[list[str], int, list[int]]:
    """One example: ``(tokens, label, chain)``; ``chain`` = the keys of the ``hops`` cells read, in order.

    ``label`` forces the answer (used to balance the splits); by default it is drawn uniform.
    """
    if not 1 <= hops <= n_cells - 1:
        raise ValueError(f"hops must be in [1, n_cells - 1] = [1, {n_cells - 1}], got {hops}")
    start = int(rng.integers(n_cells))
    y = int(rng.integers(n_cells)) if label is None else int(label)
    if not 0 <= y < n_cells:
        raise ValueError(f"label must be in [0, {n_cells}), got {y}")
    others = [k for k in range(n_cells) if k not in (start, y)]
    chain = [start] + [others[i] for i in rng.permutation(len(others))[: hops - 1]]
    value = dict(zip(chain, chain[1:] + [y]))  # key -> value along the chain
    free_keys = [k for k in range(n_cells) if k not in value]
    free_values = [v for v in range(n_cells) if v not in value.values()]
    value.update(zip(free_keys, (free_values[i] for i in rng.permutation(len(free_values)))))
    tokens = ["query", f"k{start}", "hops", str(hops), "cells"]
    for key in rng.permutation(n_cells):
        tokens += [f"k{key}", f"v{value[int(key)]}"]
    return tokens, y, chain


def trace(tokens: list[str] | str) -> tuple[int, list[int]]:
    """Follow the pointers written in an example: ``(label, chain)``, from the text alone."""
    tokens = tokens.split() if isinstance(tokens, str) else list(tokens)
    if len(tokens) < _HEADER or tokens[0] != "query" or tokens[2] != "hops" or tokens[4] != "cells":
        raise ValueError(f"not a pointer example: {' '.join(tokens[:_HEADER])!r} ...")
    cells = dict(zip(tokens[_HEADER::2], tokens[_HEADER + 1 :: 2]))  # "k3" -> "v7"
    key, chain = tokens[1], []
    for _ in range(int(tokens[3])):
        chain.append(int(key[1:]))
        key = "k" + cells[key][1:]
    return int(key[1:]), chain


def solve(tokens: list[str] | str) -> int:
    """The label of an example, computed by following its pointers."""
    return trace(tokens)[0]


@functools.lru_cache(maxsize=None)
def pointer_rows(hops: int, n_cells: int = N_CELLS) -> dict[str, tuple[tuple[str, ...], tuple[int, ...]]]:
    """``{split: (sentences, labels)}``, deterministic; train first, then validation, never a line in both."""
    rng = np.random.default_rng(POINTER_SEED + hops)
    seen: set[str] = set()
    out = {}
    for split, n in POINTER_SIZES.items():
        sentences: list[str] = []
        labels = rng.permutation(np.arange(n) % n_cells)  # exactly balanced (up to n % n_cells)
        for y in labels:
            while True:
                tokens, label, _ = make_pointer_example(rng, hops, n_cells, label=int(y))
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
        num_labels=N_CELLS,
        metric="accuracy",
        text_columns=("sentence",),
        label_names=tuple(f"v{j}" for j in range(N_CELLS)),
        eval_splits=("validation",),
        loader=_load_pointer,
        description=f"Generated pointer chasing, {hops} hop(s) over {N_CELLS} key-value cells "
                    f"(offline, 4000/1000, 8 balanced classes).",
    ))
    for hops in POINTER_HOPS
}
