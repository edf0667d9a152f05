"""The `combat` preprocessing step (ComBat batch correction) and its recipes / experiment arm."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from conftest import compose_config
from scmint.data.cache import ProcessedCache
from scmint.data.recipes import apply_recipe
from scmint.data.validation import DataError
from scmint.train import build_datamodule

COMBAT = [{"step": "combat"}]


def _shifted(n_cells=200, n_features=40, shift=2.0, seed=0) -> tuple[ad.AnnData, np.ndarray]:
    """Log-scale data: two cell types (features 0-9 up in type 1), two batches (+shift on half
    of the features in batch 1). Returns the AnnData and the cell types."""
    rng = np.random.default_rng(seed)
    types = rng.integers(0, 2, n_cells)
    batches = rng.integers(0, 2, n_cells)
    x = rng.normal(1.0, 0.3, size=(n_cells, n_features))
    x[:, :10] += 1.5 * types[:, None]
    x[:, n_features // 2 :] += shift * batches[:, None]
    obs = pd.DataFrame(
        {"batch": pd.Categorical(np.where(batches, "b1", "b0"))},
        index=[f"c{i}" for i in range(n_cells)],
    )
    return ad.AnnData(x.astype(np.float32), obs=obs), types


def _gap(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per-feature difference of the two groups' means."""
    return np.abs(x[groups == 1].mean(0) - x[groups == 0].mean(0))


def test_combat_removes_a_batch_shift_and_keeps_the_types():
    adata, types = _shifted()
    batches = (adata.obs["batch"] == "b1").to_numpy().astype(int)
    before = np.asarray(adata.X)
    out = apply_recipe(adata, COMBAT, "rna")
    after = np.asarray(out.X)
    assert out.X.dtype == np.float32 and np.isfinite(after).all()
    assert _gap(before, batches)[20:].mean() > 1.5  # the shift is there before
    assert _gap(after, batches).max() < 0.2 * _gap(before, batches)[20:].mean()  # and gone after
    assert _gap(after, types)[:10].mean() > 0.7 * _gap(before, types)[:10].mean()  # types kept
    assert np.array_equal(np.asarray(adata.X), before)  # apply_recipe copies


def test_combat_on_sparse_input_and_features_constant_within_a_batch(caplog):
    adata, _ = _shifted()
    x = np.asarray(adata.X).copy()
    b0 = (adata.obs["batch"] == "b0").to_numpy()
    x[b0, 3] = 0.0  # constant within batch b0: ComBat would divide by zero
    adata.X = sp.csr_matrix(x)
    caplog.set_level("INFO")
    out = apply_recipe(adata, COMBAT, "adt")
    assert not sp.issparse(out.X) and np.isfinite(out.X).all()
    np.testing.assert_array_equal(out.X[:, 3], x[:, 3].astype(np.float32))  # left as it was
    assert "1 of 40 features constant within a batch" in caplog.text


def test_combat_refuses_no_batch_column_naming_modality_and_column():
    adata, _ = _shifted()
    del adata.obs["batch"]
    with pytest.raises(DataError, match=r"preprocess\.adt: step 'combat'.*obs\['batch'\]"):
        apply_recipe(adata, COMBAT, "adt")
    adata.obs["site"] = "s1"
    with pytest.raises(DataError, match=r"preprocess\.rna.*no 'donor' column"):
        apply_recipe(adata, [{"step": "combat", "key": "donor"}], "rna")


def test_combat_refuses_one_batch_and_missing_batches():
    adata, _ = _shifted()
    adata.obs["batch"] = "only"
    with pytest.raises(
        DataError, match=r"preprocess\.rna: .*obs\['batch'\].*single batch \('only'\)"
    ):
        apply_recipe(adata, COMBAT, "rna")
    adata.obs["batch"] = pd.Categorical(["b0", None] * (adata.n_obs // 2))
    with pytest.raises(DataError, match=r"preprocess\.rna: .*no batch for 100 of 200 cells"):
        apply_recipe(adata, COMBAT, "rna")


COMBAT_ARM = (
    "preprocess@data.preprocess.rna=umint_rna_combat",
    "preprocess@data.preprocess.adt=umint_adt_combat",
)
SMALL = ("data.source.n_cells=200", "data.source.n_genes=100", "logger=none")


def test_datamodule_hands_batches_to_combat_and_drops_them(tmp_path):
    """Through the datamodule: the dataset's batch column reaches the step, the cached modalities
    carry no per-modality obs, and the batch shift of the simulator is smaller after ComBat."""
    spread = {}
    for arm in ("none", "combat"):
        overrides = [
            "data=synthetic_cite_batches",
            *SMALL,
            *(COMBAT_ARM if arm == "combat" else ()),
        ]
        dm = build_datamodule(compose_config(overrides, tmp_path / arm))
        assert list(dm.batch_names) == ["batch_0", "batch_1"]
        batches = dm.mdata.obs["batch"].astype(str).to_numpy() == "batch_1"
        for m, adata in dm.mdata.mod.items():
            assert adata.obs.columns.empty, m
        x = np.asarray(dm.mdata.mod["adt"].X)
        spread[arm] = _gap(x, batches).mean()
    assert spread["combat"] < 0.5 * spread["none"]


def test_datamodule_combat_on_one_batch_names_modality(tmp_path):
    overrides = ["data=synthetic_cite", *SMALL, *COMBAT_ARM]
    with pytest.raises(DataError, match=r"preprocess\.rna: step 'combat'.*single batch"):
        build_datamodule(compose_config(overrides, tmp_path))


def test_combat_recipes_change_the_processed_cache_key():
    def key(*overrides: str) -> str:
        data = compose_config(["experiment=umint_batch_effect", *overrides]).data
        return ProcessedCache.key("same-source", data.preprocess, None, "cell_type", "batch")

    keys = {
        key(f"preprocess@data.preprocess.rna={rna}", f"preprocess@data.preprocess.adt={adt}")
        for rna in ("umint_rna", "umint_rna_combat")
        for adt in ("umint_adt", "umint_adt_combat")
    }
    assert len(keys) == 4
