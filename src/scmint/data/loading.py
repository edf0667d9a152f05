"""Batches by whole-tensor indexing: the fast data path shared by every method.

A per-cell ``Dataset.__getitem__`` followed by the default collate costs a Python call and a small
copy per cell; at UMINT's batch of 16 on 2,000 genes that is more than the optimiser step itself.
Here the sampler yields *index tensors*, one per batch, and the dataset gathers all rows of a batch
in one ``index_select`` per modality. The sampler is also where shuffling (seeded per epoch, so a
resumed run sees the same order) and DDP sharding (disjoint, equal-length shards per rank) live.

Shuffling is exact (every permutation of the cells equally likely) unless ``block_size`` asks for
block shuffling, meant for ``storage=backed`` when the file is not in the page cache: reading 256
cells scattered over a file on disk costs hundreds of random reads per batch, while a few
contiguous blocks cost a few sequential ones. The cells are cut into blocks of ``block_size``
consecutive cells, the blocks are shuffled, and the cells of every ``window`` consecutive batches
are shuffled together, so each batch mixes cells of about ``window * batch_size / block_size``
blocks and each block is read once (as in scDataset's block sampling).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Protocol

import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler


class CellStore(Protocol):
    """Anything that can return one batch dict for a tensor of cell indices."""

    def gather(self, index: Tensor) -> dict[str, Any]: ...


def check_block_shuffle(block_size: int | None, window: int) -> None:
    """Refuse block-shuffling options no sampler can use (named by their config keys)."""
    if block_size is not None and block_size < 1:
        raise ValueError(f"data.shuffle_block_size must be >= 1 or null, got {block_size}")
    if window < 1:
        raise ValueError(f"data.shuffle_window must be >= 1, got {window}")


class BatchIndexSampler(Sampler[Tensor]):
    """Yields one LongTensor of cell indices per batch.

    Args:
        indices: the cells this loader covers (e.g. the training split).
        batch_size: cells per batch on each rank.
        shuffle: reshuffle every epoch with a generator seeded by ``seed + epoch``.
        drop_last: drop the last partial batch (SMILE's contrastive loss wants full batches).
        seed: base seed of the shuffle.
        rank, world_size: DDP position; each rank gets a disjoint shard of equal length.
        block_size: shuffle blocks of this many consecutive cells (of ``indices``) instead of
            single cells; None or 1: exact per-cell shuffling.
        window: with ``block_size``, the cells of this many consecutive batches are shuffled
            together.
    """

    def __init__(
        self,
        indices: Tensor,
        batch_size: int,
        *,
        shuffle: bool,
        drop_last: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        block_size: int | None = None,
        window: int = 8,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be >= 1, got {batch_size}")
        check_block_shuffle(block_size, window)
        self.indices = indices.long()
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.block_size = block_size if block_size and block_size > 1 else None
        self.window = window
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        self.epoch = epoch

    def _shard_size(self) -> int:
        return math.ceil(len(self.indices) / self.world_size)

    def __len__(self) -> int:
        n = self._shard_size()
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[Tensor]:
        order = self.indices
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            if self.block_size is None:
                order = order[torch.randperm(len(order), generator=generator)]
            else:
                order = order[self._block_order(generator)]
        if self.world_size > 1:  # pad by wrapping so every rank runs the same number of steps
            total = self._shard_size() * self.world_size
            if total > len(order):
                order = torch.cat([order, order[: total - len(order)]])
            order = order[self.rank :: self.world_size]
        n_batches = len(self)
        for b in range(n_batches):
            yield order[b * self.batch_size : (b + 1) * self.batch_size]

    def _block_order(self, generator: torch.Generator) -> Tensor:
        """A permutation of ``range(len(indices))``: shuffled blocks of ``block_size`` consecutive
        positions, then the positions of every window of ``window * batch_size`` shuffled."""
        n, size = len(self.indices), self.block_size
        n_blocks = math.ceil(n / size)
        blocks = torch.randperm(n_blocks, generator=generator)
        order = (blocks.unsqueeze(1) * size + torch.arange(size)).ravel()
        if n % size:  # the last block is short: drop the positions past the end
            order = order[order < n]
        # within each window, sort by (window, random key): one argsort shuffles every window
        cells = self.window * self.batch_size * self.world_size  # windows of the unsharded order
        key = (torch.arange(n) // cells) << 32
        key += torch.randint(0, 1 << 32, (n,), generator=generator)
        return order[torch.argsort(key, stable=True)]


class IndexedBatches(Dataset):
    """A map-style dataset whose keys are index tensors: ``ds[index_tensor] -> batch dict``."""

    def __init__(self, store: CellStore, n_cells: int) -> None:
        self.store = store
        self.n_cells = n_cells

    def __len__(self) -> int:
        return self.n_cells

    def __getitem__(self, index: Tensor) -> dict[str, Any]:
        return self.store.gather(index)


def identity_collate(batch: dict[str, Any]) -> dict[str, Any]:
    """The batch is already collated by ``gather``; a module-level function so workers can pickle it."""
    return batch
