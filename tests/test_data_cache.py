"""The processed cache: hit, miss, a changed recipe, atomic writes, and inputs never written."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from scmint.data import MultiOmicsDataModule
from scmint.data import datamodule as dm_module
from scmint.data.cache import ProcessedCache, atomic_write_h5mu, file_sha256
from scmint.data.readers import mudata
from scmint.data.sources import FilesSource

RECIPE = {
    "rna": [{"step": "normalize_total", "target_sum": 1e4}, {"step": "log1p"}, {"step": "scale"}]
}


@pytest.fixture
def h5ad(tmp_path):
    x = np.random.default_rng(0).poisson(2.0, size=(50, 12)).astype(np.float32) + 1
    obs = pd.DataFrame({"cell_type": ["a", "b"] * 25}, index=[f"c{i}" for i in range(50)])
    path = tmp_path / "input.h5ad"
    ad.AnnData(sp.csr_matrix(x), obs=obs).write_h5ad(path)
    return path


def _module(h5ad, cache_dir, recipe=RECIPE):
    return MultiOmicsDataModule(
        FilesSource(path=str(h5ad)), recipe, batch_size=8, cache_dir=str(cache_dir)
    )


def test_miss_then_hit(h5ad, tmp_path, monkeypatch):
    first = _module(h5ad, tmp_path / "c")
    first.setup()
    entries = list((tmp_path / "c").glob("*.h5mu"))
    assert len(entries) == 1
    calls = []
    monkeypatch.setattr(dm_module, "apply_recipe", lambda *a, **k: calls.append(1))  # must not run
    second = _module(h5ad, tmp_path / "c")
    second.setup()
    assert not calls, "a cache hit does not preprocess again"
    assert torch.equal(first.features("rna"), second.features("rna"))


def test_changed_recipe_makes_a_new_entry(h5ad, tmp_path):
    _module(h5ad, tmp_path / "c").setup()
    changed = {"rna": [*RECIPE["rna"][:-1], {"step": "scale", "max_value": 1.0}]}
    dm = _module(h5ad, tmp_path / "c", changed)
    dm.setup()
    assert len(list((tmp_path / "c").glob("*.h5mu"))) == 2
    assert dm.features("rna").max() <= 1.0


def test_changed_input_file_makes_a_new_entry(h5ad, tmp_path):
    _module(h5ad, tmp_path / "c").setup()
    a = ad.read_h5ad(h5ad)
    a.X = a.X * 2
    a.write_h5ad(h5ad)
    _module(h5ad, tmp_path / "c").setup()
    assert len(list((tmp_path / "c").glob("*.h5mu"))) == 2


def test_input_file_never_written(h5ad, tmp_path):
    before = (file_sha256(h5ad), h5ad.stat().st_mtime_ns)
    for storage in ("dense", "sparse", "backed"):
        dm = MultiOmicsDataModule(
            FilesSource(path=str(h5ad)), RECIPE, storage=storage, cache_dir=str(tmp_path / "c")
        )
        dm.setup()
        next(iter(dm.train_dataloader()))
    assert (file_sha256(h5ad), h5ad.stat().st_mtime_ns) == before


def test_interrupted_write_leaves_no_entry(tmp_path, monkeypatch):
    target = tmp_path / "c" / "x.h5mu"
    m = mudata({"rna": ad.AnnData(np.ones((3, 2), np.float32))})

    def crash(self, path, **kwargs):
        with open(path, "wb") as f:
            f.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(type(m), "write_h5mu", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_h5mu(m, target)
    assert not target.exists()
    assert not list((tmp_path / "c").iterdir()), "the temporary file is removed too"


def test_damaged_entry_is_recomputed(h5ad, tmp_path):
    _module(h5ad, tmp_path / "c").setup()
    entry = next((tmp_path / "c").glob("*.h5mu"))
    entry.write_bytes(b"not hdf5")
    dm = _module(h5ad, tmp_path / "c")
    dm.setup()
    assert dm.spec.n_cells == 50


def test_synthetic_source_is_not_cached_by_default(tmp_path, monkeypatch):
    from scmint.data.synthetic import SyntheticSource

    monkeypatch.setenv("SCMINT_DATA_DIR", str(tmp_path))
    dm = MultiOmicsDataModule(SyntheticSource(n_cells=60, n_genes=20, n_proteins=4), batch_size=8)
    dm.setup()
    assert not (tmp_path / "processed").exists()
    assert ProcessedCache().directory == tmp_path / "processed"
