"""The textbook data path, kept here only as a baseline: one cell per ``__getitem__``, default collate.

It reads the same store, in the same order, and yields the same batch dict as scmint's data path
(:mod:`scmint.data.loading`), but it fetches cells one at a time and lets ``default_collate``
stack B small dicts of tensors. The difference between the two is what whole-batch gathering saves.
"""

from __future__ import annotations

from typing import Any

import torch
from benchmarks.clock import now
from torch.utils.data import DataLoader, Dataset

from scmint.data.datamodule import MultiOmicsDataModule
from scmint.data.loading import BatchIndexSampler


class PerCellDataset(Dataset):
    """``ds[i]`` is cell ``i``: its features per modality, mask, index, label and batch."""

    def __init__(self, datamodule: MultiOmicsDataModule) -> None:
        self.store = datamodule.store

    def __len__(self) -> int:
        return self.store.n_cells

    def __getitem__(self, i: int) -> dict[str, Any]:
        index = torch.tensor([i])
        return {
            "x": {m: self.store.take(m, index)[0] for m in self.store.modalities},
            "mask": {m: k[i] for m, k in self.store.masks.items()},
            "index": i,
            "label": self.store.labels[i],
            "batch": self.store.batches[i],
        }


def naive_loader(datamodule: MultiOmicsDataModule) -> DataLoader:
    """Per-cell loader over the training cells in the order of scmint's epoch-0 shuffle."""
    sampler = BatchIndexSampler(
        datamodule.train_index, 1, shuffle=True, seed=datamodule.shuffle_seed, drop_last=False
    )
    order = torch.cat(list(sampler)).tolist()
    return DataLoader(PerCellDataset(datamodule), batch_size=datamodule.batch_size, sampler=order)


def seconds_per_batch(loader: DataLoader, n_batches: int) -> float:
    """Mean seconds to produce one batch (data only, no training), after one warm-up batch."""
    batches = iter(loader)
    next(batches)
    start = now("cpu")
    for _ in range(n_batches):
        next(batches)
    return (now("cpu") - start) / n_batches
