"""Dense, sparse and backed storage serve identical batches; partial pairing; DDP shards."""

from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import scipy.sparse as sp
import torch

from scmint.data import MultiOmicsDataModule
from scmint.data.sources import FilesSource

RECIPES = {
    "rna": [
        {"step": "normalize_total", "target_sum": 1e4},
        {"step": "log1p"},
        {"step": "scale", "max_value": 2},
    ],
    "adt": [{"step": "clr"}, {"step": "scale"}],
}


@pytest.fixture
def partial_h5mu(tmp_path):
    """RNA for 60 cells, ADT for 45 of them plus 5 ADT-only cells (partially paired)."""
    rng = np.random.default_rng(0)
    rna_cells = [f"c{i:02d}" for i in range(60)]
    adt_cells = [f"c{i:02d}" for i in range(15, 60)] + [f"a{i}" for i in range(5)]
    rna = ad.AnnData(
        sp.csr_matrix(rng.poisson(1.0, (60, 30)).astype(np.float32) + (rng.random((60, 30)) < 0.02))
    )
    rna.obs_names = rna_cells
    rna.obs["cell_type"] = [f"t{i % 3}" for i in range(60)]
    adt = ad.AnnData(rng.poisson(20.0, (50, 4)).astype(np.float32))
    adt.obs_names = adt_cells
    path = tmp_path / "partial.h5mu"
    md.MuData({"rna": rna, "adt": adt}).write_h5mu(path)
    return path


def _module(path, tmp_path, storage, **kwargs):
    return MultiOmicsDataModule(
        FilesSource(path=str(path)),
        RECIPES,
        label_key="rna:cell_type",
        batch_size=16,
        storage=storage,
        cache_dir=str(tmp_path / "cache"),
        **kwargs,
    )


@pytest.mark.parametrize("compiled", [True, False])
def test_storage_modes_serve_identical_batches(partial_h5mu, tmp_path, monkeypatch, compiled):
    """Also without the compiled (numba) densify: the numpy path gives the same batches."""
    if not compiled:
        monkeypatch.setattr("scmint.data.store._fill_csr_rows", None)
    modules = {s: _module(partial_h5mu, tmp_path, s) for s in ("dense", "sparse", "backed")}
    for dm in modules.values():
        dm.setup()
    assert modules["sparse"].storage_used == "sparse" and modules["backed"].storage_used == "backed"
    mixed = torch.tensor([64, 0, 17, 3, 17, 59, 61])  # unsorted, repeated, ADT-only, RNA-only
    # also batches where one modality is absent from every cell (ADT-only, RNA-only cells)
    for index in (mixed, torch.tensor([60, 62, 64]), torch.tensor([0, 1, 2])):
        reference = modules["dense"].store.gather(index)
        for storage in ("sparse", "backed"):
            batch = modules[storage].store.gather(index)
            for m in ("rna", "adt"):
                assert torch.allclose(batch["x"][m], reference["x"][m], atol=1e-5), (storage, m)
                assert torch.equal(batch["mask"][m], reference["mask"][m])
            assert torch.equal(batch["label"], reference["label"])


def test_partial_pairing_from_obsmap(partial_h5mu, tmp_path):
    dm = _module(partial_h5mu, tmp_path, "sparse")
    dm.setup()
    assert dm.spec.n_cells == 65 and dm.spec.paired and not dm.spec.fully_paired
    masks = dm.store.masks
    assert int(masks["rna"].sum()) == 60 and int(masks["adt"].sum()) == 50
    assert int((masks["rna"] & masks["adt"]).sum()) == 45
    x = dm.features("adt")
    assert torch.all(x[~masks["adt"]] == 0), "cells without ADT get zero rows after the z-score"
    assert (dm.store.labels[~masks["rna"]] == -1).all(), "ADT-only cells have no label"


def test_deferred_scale_equals_scanpy(partial_h5mu, tmp_path):
    """The sparse store's per-batch z-score reproduces scanpy's eager one."""
    dm = _module(partial_h5mu, tmp_path, "sparse")
    dm.setup()
    rna = md.read_h5mu(partial_h5mu).mod["rna"]
    sc.pp.normalize_total(rna, target_sum=1e4)
    sc.pp.log1p(rna)
    sc.pp.scale(rna, max_value=2)
    rows = dm.obs_names.get_indexer(rna.obs_names)
    assert np.allclose(dm.features("rna").numpy()[rows], rna.X, atol=1e-5)


def test_auto_storage_is_dense_when_it_fits(partial_h5mu, tmp_path):
    dm = _module(partial_h5mu, tmp_path, "auto")
    dm.setup()
    assert dm.storage_used == "dense"


def test_backed_needs_the_cache(partial_h5mu, tmp_path):
    with pytest.raises(ValueError, match=r"storage=backed .* set data.cache=true"):
        _module(partial_h5mu, tmp_path, "backed", cache=False).setup()


@pytest.mark.parametrize("storage", ["dense", "backed"])
def test_ddp_ranks_get_disjoint_shards(partial_h5mu, tmp_path, monkeypatch, storage):
    """Under DDP each rank's training loader covers its own cells; together they cover all.

    54 training cells split evenly over 3 ranks (with an uneven count the sampler pads by
    wrapping, as torch's DistributedSampler does, so a few cells appear on two ranks)."""
    seen = []
    for rank in range(3):
        dm = _module(partial_h5mu, tmp_path, storage, val_fraction=0.17)
        dm.setup()
        monkeypatch.setattr(dm, "_rank_world", lambda rank=rank: (rank, 3))
        cells = torch.cat([b["index"] for b in dm.train_dataloader()])
        seen.append(set(cells.tolist()))
    train = set(dm.train_index.tolist())
    assert len(train) == 54 and all(len(s) == 18 for s in seen)
    assert (
        seen[0].isdisjoint(seen[1]) and seen[1].isdisjoint(seen[2]) and seen[0].isdisjoint(seen[2])
    )
    assert set().union(*seen) == train


def test_loader_yields_whole_batches_without_per_cell_calls(partial_h5mu, tmp_path, monkeypatch):
    """The fast path: one gather per batch (counted), never one call per cell."""
    dm = _module(partial_h5mu, tmp_path, "sparse")
    dm.setup()
    calls = []
    gather = dm.store.gather
    monkeypatch.setattr(dm.store, "gather", lambda index: calls.append(len(index)) or gather(index))
    batches = list(dm.train_dataloader())
    assert len(calls) == len(batches) == -(-len(dm.train_index) // 16)


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_backed_rows_from_memory_map_or_hdf5_reads(tmp_path, compression):
    """Backed rows are right for scattered, adjacent, repeated and empty rows, whether a dataset is
    mapped in place (contiguous) or through a .npy copy (chunked or compressed)."""
    from scmint.data.store import BackedCellStore

    rng = np.random.default_rng(1)
    x = sp.random(200, 40, density=0.1, format="csr", random_state=rng, dtype=np.float32)
    x[7] = 0
    x.eliminate_zeros()
    dense = rng.random((200, 3)).astype(np.float32)
    names = [f"c{i}" for i in range(200)]
    mods = {
        "rna": ad.AnnData(x, obs=pd.DataFrame(index=names)),
        "adt": ad.AnnData(dense, obs=pd.DataFrame(index=names)),
    }
    path = tmp_path / "m.h5mu"
    md.MuData(mods).write_h5mu(path, compression=compression)
    ones = np.ones(200, bool)
    store = BackedCellStore(
        path, {"rna": None, "adt": None}, {"rna": ones, "adt": ones}, np.zeros(200), np.zeros(200)
    )
    index = torch.tensor([199, 7, 8, 9, 0, 150, 8])
    assert np.array_equal(store.take("rna", index).numpy(), x[index.numpy()].toarray())
    assert np.allclose(store.take("adt", index).numpy(), dense[index.numpy()])
    copies = sorted(p.name for p in (tmp_path / "m.h5mu.arrays").iterdir())
    expected = ["rna.data.npy", "rna.indices.npy"] + (["adt.X.npy"] if compression else [])
    assert copies == sorted(expected)


def test_files_source_fingerprint_tracks_file(tmp_path):
    path = tmp_path / "a.h5ad"
    ad.AnnData(np.ones((3, 2), np.float32), obs=pd.DataFrame(index=["a", "b", "c"])).write_h5ad(
        path
    )
    source = FilesSource(path=str(path))
    first = source.fingerprint()
    assert first == FilesSource(path=str(path)).fingerprint()
    assert first != FilesSource(path=str(path), layers={"rna": "counts"}).fingerprint()
    ad.AnnData(np.zeros((3, 2), np.float32), obs=pd.DataFrame(index=["a", "b", "c"])).write_h5ad(
        path
    )
    assert source.fingerprint() != first


def test_positions_of_row_ranges():
    """The vectorised positions of CSR row ranges, with empty ranges first, inside and last."""
    from scmint.data.store import _positions

    starts = np.array([5, 9, 0, 2, 2, 30, 7])
    lengths = np.array([0, 3, 2, 0, 4, 1, 0])
    expected = np.concatenate([np.arange(s, s + n) for s, n in zip(starts, lengths, strict=True)])
    assert np.array_equal(_positions(starts, lengths, int(lengths.sum())), expected)
    assert len(_positions(starts[:1], lengths[:1], 0)) == 0


def _epoch(sampler, epoch=0):
    sampler.set_epoch(epoch)
    return [b.clone() for b in sampler]


@pytest.mark.parametrize("n, block, window, batch", [(1000, 16, 4, 32), (997, 10, 3, 25)])
def test_block_shuffle_covers_every_cell_once_and_is_deterministic(n, block, window, batch):
    from scmint.data.loading import BatchIndexSampler

    indices = torch.arange(n) * 2 + 1  # the training cells: any sorted subset of the store
    sampler = BatchIndexSampler(
        indices, batch, shuffle=True, seed=3, block_size=block, window=window
    )
    batches = _epoch(sampler)
    cells = torch.cat(batches)
    assert sorted(cells.tolist()) == indices.tolist(), "every training cell exactly once"
    assert all(len(b) == batch for b in batches[:-1])
    again = BatchIndexSampler(indices, batch, shuffle=True, seed=3, block_size=block, window=window)
    assert all(torch.equal(a, b) for a, b in zip(batches, _epoch(again), strict=True))
    assert not torch.equal(cells, torch.cat(_epoch(sampler, epoch=1))), "reshuffled per epoch"
    assert not torch.equal(cells, indices), "shuffled"
    # contiguous blocks: each window of batches holds the cells of whole blocks (at most two cut
    # at its edges), so it touches ~cells/block blocks, where exact shuffling touches ~cells
    positions = (cells - 1) // 2
    cells_per_window = window * batch
    for start in range(0, n, cells_per_window):
        blocks = set((positions[start : start + cells_per_window] // block).tolist())
        assert len(blocks) <= -(-cells_per_window // block) + 2
        within = positions[start : start + cells_per_window]
        for b in blocks:  # a block's cells come in one window, all of them unless at an edge
            assert (within // block == b).sum() <= block
    exact = torch.cat(_epoch(BatchIndexSampler(indices, batch, shuffle=True, seed=3)))
    exact_blocks = len(set((((exact[:cells_per_window] - 1) // 2) // block).tolist()))
    assert exact_blocks > len(set((positions[:cells_per_window] // block).tolist()))


def test_block_shuffle_mixes_cells_within_a_window():
    """Cells of one window are shuffled together: a batch draws from many blocks, not one."""
    from scmint.data.loading import BatchIndexSampler

    sampler = BatchIndexSampler(torch.arange(4096), 256, shuffle=True, block_size=64, window=8)
    first = _epoch(sampler)[0]
    assert len(set((first // 64).tolist())) > 16  # 8 * 256 / 64 = 32 blocks in the window


def test_block_shuffle_shards_under_ddp():
    from scmint.data.loading import BatchIndexSampler

    indices = torch.arange(300)
    shards = [
        torch.cat(
            list(
                BatchIndexSampler(
                    indices, 16, shuffle=True, rank=r, world_size=3, block_size=8, window=2
                )
            )
        )
        for r in range(3)
    ]
    assert all(len(s) == 100 for s in shards)
    assert sorted(torch.cat(shards).tolist()) == indices.tolist()


def test_block_shuffle_option_reaches_the_training_loader(partial_h5mu, tmp_path):
    """data.shuffle_block_size: training batches follow blocks; deterministic; validated."""
    batches = []
    for _ in range(2):
        dm = _module(partial_h5mu, tmp_path, "backed", shuffle_block_size=4, shuffle_window=1)
        dm.setup()
        batches.append([b["index"] for b in dm.train_dataloader()])
    first, second = batches
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    cells = torch.cat(first)
    assert sorted(cells.tolist()) == dm.train_index.tolist()
    # window of one batch (16 cells) = four blocks of 4 consecutive training cells
    position = {c: i for i, c in enumerate(dm.train_index.tolist())}
    for b in first[:-1]:
        assert len({position[c] // 4 for c in b.tolist()}) <= 5
    with pytest.raises(ValueError, match="shuffle_block_size"):
        _module(partial_h5mu, tmp_path, "backed", shuffle_block_size=0)


def test_compiled_densify_matches_numpy_bit_for_bit(monkeypatch):
    """The numba kernel (densify + z-score + clip in one pass) equals scipy + torch exactly."""
    from scmint.data import store as stores

    rng = np.random.default_rng(2)
    x = sp.random(50, 30, density=0.3, format="csr", random_state=rng, dtype=np.float32) * 5
    x[4] = 0
    x.eliminate_zeros()
    affine = {
        "rna": stores.Affine(rng.random(30, np.float32), rng.random(30, np.float32) + 0.1, 2.0)
    }
    rows = np.where(np.arange(55) < 50, np.arange(55), -1)  # 5 cells without the modality
    mask = rows >= 0
    index = torch.tensor([54, 4, 0, 4, 49, 51, 10])

    def take():
        store = stores.SparseCellStore(
            {"rna": x}, {"rna": rows}, {"rna": mask}, np.zeros(55), np.zeros(55), affine
        )
        return store.take("rna", index)

    compiled = take()
    monkeypatch.setattr(stores, "_fill_csr_rows", None)
    assert torch.equal(compiled, take())
    assert torch.all(compiled[[0, 5]] == 0) and compiled.abs().max() <= 2.0


def test_batches_stay_put_on_cpu_and_move_elsewhere(partial_h5mu, tmp_path):
    """On CPU the data module hands Lightning its batch unchanged (no per-step walk over the
    nested dict); any other device still gets every tensor moved."""
    dm = _module(partial_h5mu, tmp_path, "dense")
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert dm.transfer_batch_to_device(batch, torch.device("cpu"), 0) is batch
    moved = dm.transfer_batch_to_device(batch, torch.device("meta"), 0)
    assert moved["x"]["rna"].device.type == "meta"
    assert moved["mask"]["adt"].device.type == "meta"
