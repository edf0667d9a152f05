"""Every shared real subset read through its data config (Hydra compose of conf/train.yaml)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from conftest import SHARED_DATA as SHARED
from conftest import compose_config

ROOT = Path(__file__).resolve().parents[1]
needs_shared = pytest.mark.skipif(
    not SHARED.exists(), reason=f"shared real data not found at {SHARED}"
)

# name -> (modalities and feature counts after the config's recipes, cells, labels, batches).
# Feature counts after filtering are fixed by the data and the recipe: bmmc_multiome_500's
# 597 genes + 465 peaks are the sizes behind the authors' 306,278 UMINT parameters (issue 4).
EXPECTED = {
    "bmmc_cite_600": ({"rna": 1000, "adt": 134}, 600, 41, 2),
    "bmmc_multiome_500": ({"rna": 597, "atac": 465}, 500, 21, 2),
    "pbmc1k_protein": ({"rna": 630, "adt": 17}, 747, 0, 1),
    "pancreas_xin_wang": ({"rna": 219}, 1175, 7, 2),
    "cell_lines_pcs": ({"pca": 20}, 9478, 2, 3),
    "snare_cellline_1047": ({"rna": 500, "atac": 19}, 1047, 4, 1),
    "muon_rna_atac": ({"rna": 45, "atac": 172}, 1000, 0, 1),
}
REGISTRY = [
    "cbmc8k",
    "bmcite30k",
    "malt10k",
    "kotliarov50k",
    "pbmc10k_multiome",
    "snare_cellline",
    "pancreas",
]


def _data_cfg(name: str, cache_dir: Path):
    """``cfg.data`` of conf/train.yaml with ``data=name``, reading the shared subsets."""
    overrides = [f"data={name}", f"paths.shared_data_dir={SHARED}", f"paths.cache_dir={cache_dir}"]
    return compose_config(overrides).data


@needs_shared
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shared_subset_through_its_config(name, tmp_path):
    modalities, n_cells, n_labels, n_batches = EXPECTED[name]
    dm = instantiate(_data_cfg(name, tmp_path))
    dm.setup()
    assert dm.spec.modalities == modalities
    assert dm.spec.n_cells == n_cells
    assert dm.spec.n_labels == n_labels
    assert dm.spec.n_batches == n_batches
    assert len(dm.train_index) + len(dm.val_index) == n_cells
    assert abs(len(dm.val_index) - 0.2 * n_cells) <= 1
    batch = next(iter(dm.train_dataloader()))
    for m, d in modalities.items():
        assert batch["x"][m].shape == (dm.batch_size, d)
        assert batch["x"][m].dtype == torch.float32
        assert torch.isfinite(batch["x"][m]).all()
    if n_labels:
        labels = dm.labels()
        assert labels is not None and len(set(labels)) == n_labels
    else:
        assert dm.labels() is None
    assert list(dm.obs_names[:1])  # cells keep their names
    assert any(tmp_path.glob("*.h5mu")), "file sources are cached in paths.cache_dir"


@needs_shared
def test_paired_files_stay_paired():
    """Cells of the two bmmc_cite_600 files are matched by name: labels agree on every cell."""
    import anndata as ad

    dm = instantiate(_data_cfg("bmmc_cite_600", Path("/nonexistent")), cache=False)
    dm.setup()
    adt = ad.read_h5ad(SHARED / "bmmc_cite_600" / "openproblems_bmmc_cite_starter.output_mod2.h5ad")
    assert list(dm.obs_names) == list(adt.obs_names)
    assert np.array_equal(dm.labels().astype(str), adt.obs["cell_type"].astype(str).to_numpy())
    assert dm.spec.fully_paired


@needs_shared
def test_partially_paired_cells_are_masked():
    """muon's ATAC has 19 cells without a single count: they lose ATAC (mask False, zero rows)."""
    dm = instantiate(_data_cfg("muon_rna_atac", Path("/nonexistent")), cache=False)
    dm.setup()
    mask = dm.store.masks["atac"]
    assert int((~mask).sum()) == 19 and dm.store.masks["rna"].all()
    assert dm.spec.paired and not dm.spec.fully_paired
    assert torch.all(dm.features("atac")[~mask] == 0)


@pytest.mark.parametrize("name", REGISTRY)
def test_registry_configs_compose(name, tmp_path):
    """Registry configs resolve and name a known dataset; nothing is downloaded here."""
    cfg = _data_cfg(name, tmp_path)
    data = OmegaConf.to_container(cfg, resolve=True)
    assert data["source"]["name"] == name
    assert "batch_size" in data  # set globally by the model config, never by the data config
    assert set(data["preprocess"]) == set(data["modalities"])
    dm = instantiate(cfg)
    assert dm.source.entry.name == name


def test_data_configs_do_not_set_batch_size():
    for path in (ROOT / "conf" / "data").glob("*.yaml"):
        if path.name.startswith("synthetic_"):
            continue
        assert "batch_size" not in OmegaConf.load(path), path.name
