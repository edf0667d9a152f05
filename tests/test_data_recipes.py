"""Preprocessing steps and the recipe configs in conf/preprocess/."""

from __future__ import annotations

import logging
from pathlib import Path

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
from omegaconf import OmegaConf

from scmint.data.recipes import apply_recipe, pending_scale
from scmint.data.validation import DataError

RECIPES = Path(__file__).resolve().parents[1] / "conf" / "preprocess"


def _counts(n_cells=120, n_features=60, seed=0, rate=2.0) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    x = rng.poisson(rng.gamma(0.5, rate, size=(1, n_features)), size=(n_cells, n_features)).astype(
        np.float32
    )
    x[:, 0] += 1  # no empty cell
    return ad.AnnData(sp.csr_matrix(x))


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_recipe_runs_and_gives_finite_values(path):
    steps = OmegaConf.to_container(OmegaConf.load(path))
    out = apply_recipe(_counts(), steps, path.stem, defer_final_scale=False)
    x = out.X.toarray() if sp.issparse(out.X) else out.X
    assert out.n_vars >= 1 and np.isfinite(x).all()
    if steps[-1] == {"step": "scale"}:  # unclipped z-score: centred features
        assert np.allclose(x.mean(0), 0, atol=1e-4)


def test_hvg_with_fewer_features_keeps_all(caplog):
    caplog.set_level(logging.INFO)
    out = apply_recipe(
        _counts(n_features=30),
        [{"step": "log1p"}, {"step": "highly_variable_genes", "n_top": 2000}],
        "rna",
    )
    assert out.n_vars == 30 and "keeping all" in caplog.text


def test_hvg_selects_n_top():
    out = apply_recipe(
        _counts(n_features=200),
        [
            {"step": "normalize_total"},
            {"step": "log1p"},
            {"step": "highly_variable_genes", "n_top": 50},
        ],
        "rna",
    )
    assert out.n_vars == 50


def test_clr_is_seurat_definition():
    x = np.array([[1.0, 3.0, 0.0], [10.0, 0.0, 5.0]], dtype=np.float32)
    out = apply_recipe(ad.AnnData(x), [{"step": "clr"}], "adt")
    g = np.exp(np.log1p(x).mean(axis=1, keepdims=True))
    assert np.allclose(out.X, np.log1p(x / g), atol=1e-6)


def test_tfidf_then_top_idf_keeps_rarest_peaks():
    x = np.zeros((10, 4), dtype=np.float32)
    x[:, 0] = 1  # open everywhere: lowest IDF
    x[:2, 1] = 1  # rare: highest IDF
    x[:5, 2] = 1
    x[:8, 3] = 1
    out = apply_recipe(
        ad.AnnData(x),
        [{"step": "tfidf", "norm": None}, {"step": "top_idf", "fraction": 0.25}],
        "atac",
    )
    assert out.n_vars == 1 and out.var_names[0] == "1"


def test_filter_features_fraction_and_counts():
    x = np.zeros((10, 3), dtype=np.float32)
    x[:, 0] = 1  # in 100 % of cells: above max_cell_fraction 0.5
    x[:3, 1] = 2  # 6 counts in 30 % of cells: kept
    x[:1, 2] = 1  # 1 count: below min_counts 5
    out = apply_recipe(
        ad.AnnData(x),
        [{"step": "filter_features", "min_counts": 5, "max_cell_fraction": 0.5}],
        "atac",
    )
    assert list(out.var_names) == ["1"]
    with pytest.raises(DataError, match="removed all 3 features"):
        apply_recipe(ad.AnnData(x), [{"step": "filter_features", "min_cells": 11}], "atac")


def test_final_scale_on_sparse_is_deferred_not_densified():
    out = apply_recipe(_counts(), [{"step": "log1p"}, {"step": "scale", "max_value": 3}], "rna")
    assert sp.issparse(out.X)
    mean, std, clip = pending_scale(out)
    assert mean.shape == (out.n_vars,) and clip == 3.0 and (std > 0).all()


def test_input_untouched_and_unknown_step_named():
    a = _counts()
    before = a.X.copy()
    apply_recipe(a, [{"step": "log1p"}], "rna")
    assert (before != a.X).nnz == 0
    with pytest.raises(ValueError, match=r"preprocess.rna: unknown step 'nope'"):
        apply_recipe(a, [{"step": "nope"}], "rna")
    with pytest.raises(ValueError, match="bad options for step 'log1p'"):
        apply_recipe(a, [{"step": "log1p", "base": 2, "wrong": 1}], "rna")
