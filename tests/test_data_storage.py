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


def test_storage_modes_serve_identical_batches(partial_h5mu, tmp_path):
    modules = {s: _module(partial_h5mu, tmp_path, s) for s in ("dense", "sparse", "backed")}
    for dm in modules.values():
        dm.setup()
    assert modules["sparse"].storage_used == "sparse" and modules["backed"].storage_used == "backed"
    index = torch.tensor(
        [64, 0, 17, 3, 17, 59, 61]
    )  # unsorted, repeated, ADT-only and RNA-only cells
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
    assert np.allclose(store.take("rna", index).numpy(), x[index.numpy()].toarray())
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
