"""From a task's raw rows to batches: text tokenized once, images decoded once, padding per batch.

Text: tokenized without padding (truncated to ``max_length``); each batch is padded to its own
longest row (dynamic padding), and with ``group_by_length`` rows of similar length are batched
together. Images: decoded once to a uint8 tensor (N, 3, H, W); each batch is resized to the
model's input side and normalised on the fly.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F


def subset(dataset, limit: Optional[int], seed: int = 0):
    """A fixed random subset of ``limit`` rows (the same for every head and seed), or all rows."""
    if not limit or limit >= len(dataset):
        return dataset
    order = np.random.default_rng(seed).permutation(len(dataset))[:limit]
    return dataset.select(np.sort(order))


class TextRows(torch.utils.data.Dataset):
    """Token ids per row (lists, unpadded) and labels."""

    def __init__(self, dataset, task, tokenizer, max_length: int):
        columns = [list(dataset[c]) for c in task.text_columns]
        encoded = tokenizer(*columns, truncation=True, max_length=max_length)
        self.features = {k: v for k, v in encoded.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        dtype = torch.float32 if task.is_regression else torch.long
        self.labels = torch.tensor(np.asarray(list(dataset[task.label_column])), dtype=dtype)
        self.lengths = [len(ids) for ids in self.features["input_ids"]]
        self.pad_id = tokenizer.pad_token_id or 0

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return i

    def collate(self, indices) -> dict:
        width = max(self.lengths[i] for i in indices)
        batch = {}
        for key, rows in self.features.items():
            pad = self.pad_id if key == "input_ids" else 0
            out = torch.full((len(indices), width), pad, dtype=torch.long)
            for r, i in enumerate(indices):
                out[r, : self.lengths[i]] = torch.as_tensor(rows[i])
            batch[key] = out
        batch["labels"] = self.labels[indices]
        return batch


class ImageRows(torch.utils.data.Dataset):
    """Images decoded once into a uint8 tensor (N, 3, H, W); normalised per batch."""

    def __init__(self, dataset, task, size: int, mean, std):
        images = list(dataset[task.image_column])
        self.pixels = torch.from_numpy(np.stack([np.asarray(im.convert("RGB")) for im in images])).permute(0, 3, 1, 2)
        self.labels = torch.tensor(np.asarray(list(dataset[task.label_column])), dtype=torch.long)
        self.size = size
        self.mean = torch.tensor(mean).view(1, 3, 1, 1)
        self.std = torch.tensor(std).view(1, 3, 1, 1)
        self.lengths = None

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return i

    def collate(self, indices) -> dict:
        x = self.pixels[indices].float().div_(255)  # (B, 3, H, W)
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return {"pixel_values": (x - self.mean) / self.std, "labels": self.labels[indices]}


def encode(dataset, task, loaded, max_length: int = 128):
    """Rows of one split, ready for batching with ``.collate``."""
    if task.modality == "text":
        return TextRows(dataset, task, loaded.tokenizer, max_length)
    return ImageRows(dataset, task, loaded.image_size, loaded.image_mean, loaded.image_std)


class LengthGroupedSampler(torch.utils.data.Sampler):
    """Random batches of rows of similar length: shuffle, cut into chunks of ``50 x batch``,
    sort each chunk by length, cut into batches, shuffle the batches. Less padding per batch,
    still a random order (seeded by ``generator``)."""

    def __init__(self, lengths, batch_size: int, generator: torch.Generator, mega: int = 50):
        self.lengths, self.batch_size, self.generator, self.mega = lengths, batch_size, generator, mega

    def __iter__(self):
        order = torch.randperm(len(self.lengths), generator=self.generator).tolist()
        chunk = self.batch_size * self.mega
        batches = []
        for start in range(0, len(order), chunk):
            part = sorted(order[start:start + chunk], key=lambda i: -self.lengths[i])
            batches += [part[i:i + self.batch_size] for i in range(0, len(part), self.batch_size)]
        for b in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[b]

    def __len__(self):
        return -(-len(self.lengths) // self.batch_size)


def loader(rows, batch_size: int, seed: Optional[int] = None, group_by_length: bool = False):
    """Training loader (``seed`` given: a seeded shuffle, the same order for every head) or an
    evaluation loader (in order)."""
    if seed is None:
        return torch.utils.data.DataLoader(rows, batch_size=batch_size, shuffle=False, collate_fn=rows.collate)
    generator = torch.Generator().manual_seed(seed)
    if group_by_length and rows.lengths is not None:
        sampler = LengthGroupedSampler(rows.lengths, batch_size, generator)
        return torch.utils.data.DataLoader(rows, batch_sampler=sampler, collate_fn=rows.collate)
    return torch.utils.data.DataLoader(rows, batch_size=batch_size, shuffle=True, generator=generator,
                                       collate_fn=rows.collate, drop_last=False)
