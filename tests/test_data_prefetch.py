"""Background-thread prefetching changes when batches are gathered, never which or in what order."""

from __future__ import annotations

import gc
import threading
import time

import anndata as ad
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from conftest import TINY, compose_config
from scmint.data import prefetch
from scmint.data.loading import BatchIndexSampler, IndexedBatches, identity_collate
from scmint.data.prefetch import PrefetchingDataLoader, ThreadPrefetcher
from scmint.train import build_datamodule, train


class CountingStore:
    """A store whose batch is its index tensor, counting gathers (and failing at ``fail_at``)."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.gathers = 0
        self.fail_at = fail_at

    def gather(self, index: torch.Tensor) -> dict:
        self.gathers += 1
        if self.gathers == self.fail_at:
            raise OSError(f"cannot read cells {index.tolist()[:3]}...")
        return {"index": index, "x": {"rna": index.float()[:, None] * torch.ones(1, 4)}}


def _loaders(store, n_cells: int = 100, batch_size: int = 8):
    def make(cls):
        sampler = BatchIndexSampler(torch.arange(n_cells), batch_size, shuffle=True, seed=5)
        return cls(
            IndexedBatches(store, n_cells),
            sampler=sampler,
            batch_size=None,
            collate_fn=identity_collate,
        )

    return make(DataLoader), make(PrefetchingDataLoader)


def test_prefetched_batches_equal_the_plain_loaders_epoch_after_epoch():
    plain, ahead = _loaders(CountingStore())
    for epoch in range(3):
        plain.sampler.set_epoch(epoch)
        ahead.sampler.set_epoch(epoch)
        expected = [b["index"] for b in plain]
        got = [b["index"] for b in ahead]
        assert len(got) == len(expected) == 13
        assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))


def test_the_thread_gathers_at_most_depth_batches_ahead():
    store = CountingStore()
    _, ahead = _loaders(store)
    batches = iter(ahead)
    for taken in range(1, 4):
        next(batches)
        time.sleep(0.2)  # room for the thread to run ahead, were it allowed to
        assert store.gathers <= taken + prefetch.DEPTH


def test_stopping_mid_epoch_ends_the_thread():
    _, ahead = _loaders(CountingStore())
    batches = iter(ahead)
    next(batches)
    thread = batches._thread
    batches.close()
    thread.join(timeout=5)
    assert not thread.is_alive()
    with pytest.raises(StopIteration):
        next(batches)


def test_dropping_the_iterator_mid_epoch_ends_the_thread():
    """Lightning drops an epoch's iterator when ``max_steps`` ends the fit mid-epoch; the thread
    (and the batch it holds) must not outlive it, or every such fit of a sweep would leak one."""
    _, ahead = _loaders(CountingStore())
    batches = iter(ahead)
    next(batches)
    thread = batches._thread
    del batches
    gc.collect()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_a_failed_gather_reaches_the_training_thread():
    _, ahead = _loaders(CountingStore(fail_at=3))
    batches = iter(ahead)
    next(batches), next(batches)
    with pytest.raises(OSError, match="cannot read cells"):
        next(batches)


def test_prefetching_loader_refuses_worker_processes():
    loader = PrefetchingDataLoader(
        IndexedBatches(CountingStore(), 10), batch_size=None, num_workers=1
    )
    with pytest.raises(ValueError, match="num_workers=0"):
        iter(loader)


def test_no_thread_is_left_behind_after_an_epoch():
    before = threading.active_count()
    _, ahead = _loaders(CountingStore())
    assert len(list(ahead)) == 13
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == before
    assert isinstance(iter(ahead), ThreadPrefetcher)


@pytest.mark.parametrize(
    ("overrides", "threaded"),
    [
        ((), False),  # auto: the tiny data is stored dense, whose gather is a plain copy
        (("+data.storage=sparse",), True),  # auto: the gather densifies CSR rows
        (("+data.storage=backed",), True),  # auto: the gather reads the processed file
        (("+data.storage=sparse", "+data.prefetch=false"), False),
        (("+data.prefetch=true",), True),
        (("+data.prefetch=true", "+data.num_workers=1"), False),  # workers gather ahead
        (("+data.storage=sparse", "+data.num_workers=1"), False),
    ],
)
def test_prefetch_option_picks_the_loader(tmp_path, overrides, threaded):
    datamodule = build_datamodule(compose_config([*TINY, *overrides], tmp_path))
    datamodule.prepare_data()
    datamodule.setup("fit")
    assert isinstance(datamodule.train_dataloader(), PrefetchingDataLoader) is threaded
    assert isinstance(datamodule.val_dataloader(), PrefetchingDataLoader) is threaded


def test_prefetch_option_is_checked(tmp_path):
    cfg = compose_config([*TINY, "+data.prefetch=sometimes"], tmp_path)
    with pytest.raises(ValueError, match=r"data\.prefetch must be true, false or auto"):
        build_datamodule(cfg)


def test_training_with_and_without_prefetch_gives_the_same_embedding(tmp_path):
    runs = {}
    for choice in ("true", "false"):
        out = tmp_path / choice
        train(compose_config([*TINY, "seed=4", "evaluate=false", f"+data.prefetch={choice}"], out))
        runs[choice] = ad.read_h5ad(out / "embedding.h5ad").obsm["X_scmint"]
    np.testing.assert_array_equal(runs["true"], runs["false"])
