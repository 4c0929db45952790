"""Probe mode: the frozen backbone's outputs, computed once per (model, task, preprocessing) and
cached on disk, then reused by every head, depth and seed.

A split's features are the heads' inputs (see ``heads.base``) at real positions only:
``states`` (T, D) float16, all rows concatenated (T = sum of row lengths), ``offsets`` (n+1,),
``first`` (n, D) or None, ``labels`` (n,), and the grid (H, W) for images. The cache key hashes
everything that changes them: the model (name, source, config, weight files), the encoded inputs
(task, subset, tokenizer, truncation, image size), the normalisation, the precision and the
format version; any change is a new file, never a stale one.

An entry, ``features-<key>.safetensors``, is a safetensors file (tensors and a JSON header: nothing
in it is executed on load) whose header holds the key and a sha256 of the tensors' names, dtypes,
shapes and bytes. It is written like a runs.csv row (temporary file, fsync, rename, folder fsync)
under a per-entry lock, which also serialises workers that need the same entry (one computes it,
the others then load it) and the removal of temporary files left by killed writers. A load checks
the key and the checksum; an entry that fails (damaged, truncated, another key's file under this
name) is recomputed and replaced, with a warning.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from . import fileio
from .families import backbone_inputs, head_inputs, read_classifier

FORMAT = 2  # 2: safetensors with a content checksum (1 was torch.save)
SUFFIX = ".safetensors"
log = logging.getLogger(__name__)


@dataclass
class Features:
    states: torch.Tensor  # (T, D) float16
    offsets: torch.Tensor  # (n + 1,) int64
    first: Optional[torch.Tensor]  # (n, D) float16
    labels: torch.Tensor  # (n,)
    grid: Optional[tuple]


class FeatureRows(torch.utils.data.Dataset):
    """Cached backbone states of one split; batches are padded to their longest row."""

    def __init__(self, features: Features):
        self.f = features
        self.lengths = (features.offsets[1:] - features.offsets[:-1]).tolist()

    def __len__(self):
        return len(self.lengths)

    def __getitem__(self, i):
        return i

    def collate(self, indices) -> dict:
        width, dim = max(self.lengths[i] for i in indices), self.f.states.shape[1]
        states = torch.zeros(len(indices), width, dim)
        mask = torch.zeros(len(indices), width, dtype=torch.bool)
        for r, i in enumerate(indices):
            start, end = self.f.offsets[i], self.f.offsets[i + 1]
            states[r, : end - start] = self.f.states[start:end].float()
            mask[r, : end - start] = True
        batch = {"states": states, "mask": mask, "labels": self.f.labels[indices]}
        if self.f.first is not None:
            batch["first"] = self.f.first[indices].float()
        return batch


class ProbeModel(nn.Module):
    """A patched model's head and classifier, trained on cached backbone states.

    ``forward`` is the patched model's own ``classify_states`` (same loss, same output class, for
    text and images alike). The backbone is not a submodule: nothing of it is prepared, clipped or
    handed to the optimizer; ``base_model`` is empty because the states come from the cache.
    """

    def __init__(self, patched, grid=None):
        super().__init__()
        self.head, self.dropout, self.classifier = patched.head, patched.dropout, patched.classifier
        self.base_model = nn.Module()
        self.config, self.grid = patched.config, grid
        object.__setattr__(self, "patched", patched)  # a reference, not a registered submodule

    @property
    def capture_internals(self) -> bool:
        return self.patched.capture_internals

    @capture_internals.setter
    def capture_internals(self, value: bool) -> None:
        self.patched.capture_internals = value

    @property
    def last_head_output(self):
        return self.patched.last_head_output

    def forward(self, states, mask=None, first=None, labels=None):
        return self.patched.classify_states(states, mask, first, self.grid, labels)


def _digest(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(np.ascontiguousarray(part).tobytes())
        elif isinstance(part, torch.Tensor):
            h.update(part.contiguous().numpy().tobytes())
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()


def rows_fingerprint(rows) -> str:
    """A hash of exactly what the backbone would read: token ids (text) or pixels (images), and labels."""
    if hasattr(rows, "pixels"):
        return _digest(rows.pixels, rows.labels, rows.size, rows.mean, rows.std)
    ids = rows.features["input_ids"]
    flat = np.fromiter((t for row in ids for t in row), dtype=np.int64)
    extra = [rows.features[k] for k in sorted(rows.features) if k != "input_ids"]
    return _digest(flat, np.asarray(rows.lengths), rows.labels, extra)


def model_fingerprint(loaded, config) -> str:
    files = []
    if loaded.pretrained and os.path.isdir(loaded.source):
        for path in sorted(Path(loaded.source).glob("*")):
            if path.suffix in (".safetensors", ".bin", ".json"):
                stat = path.stat()
                files.append((path.name, stat.st_size, int(stat.st_mtime)))
    return _digest(loaded.name, loaded.source, config.to_json_string(use_diff=False), files)


@torch.no_grad()
def compute(model, rows, batch_size: int, accelerator) -> Features:
    """Run the frozen backbone over ``rows`` in order and keep the heads' inputs."""
    from .data import loader

    backbone, reading = model.base_model.to(accelerator.device).eval(), read_classifier(model)
    states, lengths, firsts, grid = [], [], [], None
    for batch in loader(rows, batch_size):
        batch.pop("labels")
        inputs = {k: v.to(accelerator.device) for k, v in batch.items()}
        with accelerator.autocast():
            outputs = backbone(**backbone_inputs(reading, model.config, inputs))
        v, mask, first, grid = head_inputs(reading, model.config, outputs, inputs)
        mask = torch.ones(v.shape[:2], dtype=torch.bool, device=v.device) if mask is None else mask
        states.append(v[mask].half().cpu())  # real positions only, row after row
        lengths.append(mask.sum(1).cpu())
        if first is not None:
            firsts.append(first.half().cpu())
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cat(lengths).cumsum(0)])
    return Features(torch.cat(states), offsets, torch.cat(firsts) if firsts else None, rows.labels.clone(), grid)


def entry_path(cache_dir: Path, key: str) -> Path:
    return Path(cache_dir) / f"features-{key}{SUFFIX}"


def _tensors(features: Features) -> dict:
    out = {"states": features.states, "offsets": features.offsets, "labels": features.labels}
    if features.first is not None:
        out["first"] = features.first
    return {k: v.contiguous() for k, v in out.items()}


def _checksum(tensors: dict) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name]
        h.update(json.dumps([name, str(t.dtype), list(t.shape)]).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_entry(path: Path, key: str, features: Features) -> None:
    """Write one entry atomically (``fileio.atomic_write``), its key and checksum in the header."""
    from safetensors.torch import save

    tensors = _tensors(features)
    metadata = {"format": str(FORMAT), "key": key, "sha256": _checksum(tensors),
                "grid": json.dumps(list(features.grid) if features.grid is not None else None)}
    fileio.atomic_write(path, save(tensors, metadata=metadata), mode=0o644)


class DamagedEntry(ValueError):
    """A cache entry that cannot be used as it is."""


def load_entry(path: Path, key: str) -> Features:
    """Read and verify one entry; :class:`DamagedEntry` says why it cannot be used."""
    from safetensors.torch import load

    data = path.read_bytes()
    try:
        size = int.from_bytes(data[:8], "little")
        metadata = json.loads(data[8:8 + size])["__metadata__"]
        tensors = load(data)
    except Exception as error:  # truncated, not safetensors, no metadata
        raise DamagedEntry(f"unreadable ({type(error).__name__}: {str(error)[:120]})") from None
    if metadata.get("key") != key or metadata.get("format") != str(FORMAT):
        raise DamagedEntry(f"it holds the entry of another key ({metadata.get('key')!r})")
    if _checksum(tensors) != metadata.get("sha256"):
        raise DamagedEntry("its content does not match its checksum")
    grid = json.loads(metadata.get("grid", "null"))
    return Features(tensors["states"], tensors["offsets"], tensors.get("first"), tensors["labels"],
                    tuple(grid) if grid is not None else None)


def cached(cache_dir: Path, key: str, make) -> tuple[Features, str]:
    """(features, status): loaded from ``cache_dir/features-<key>.safetensors`` ("hit"), or made and
    saved ("miss"; "recomputed" when the entry there was damaged). Under the entry's lock."""
    import filelock

    path = entry_path(cache_dir, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(path) + ".lock"):  # released by the kernel if its holder is killed
        fileio.remove_stale_temps(path)
        status = "miss"
        if path.exists():
            try:
                return load_entry(path, key), "hit"
            except DamagedEntry as why:
                log.warning("probe cache entry %s is damaged: %s; recomputing it", path, why)
                status = "recomputed"
        features = make()
        save_entry(path, key, features)
    return features, status


def probe_rows(loaded, rows_by_split: dict, precision: str, cache_dir: Path, batch_size: int, accelerator
               ) -> tuple[dict, dict]:
    """Per split, FeatureRows of the frozen backbone (built under seed 0), from the cache when possible.
    Returns (rows, {split: "hit" | "miss" | "recomputed"})."""
    model = None
    out, status = {}, {}
    for split, rows in rows_by_split.items():
        if model is None:
            torch.manual_seed(0)  # from-scratch backbones: one fixed random backbone for every seed
            model = loaded.build()
            model_key = model_fingerprint(loaded, model.config)
        key = _digest(FORMAT, model_key, rows_fingerprint(rows), precision)[:24]
        features, status[split] = cached(cache_dir, key, lambda: compute(model, rows, batch_size, accelerator))
        out[split] = FeatureRows(features)
    return out, status
