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
    adata = _counts()
    if any(s["step"] == "combat" for s in steps):  # batch-corrected recipes need >= 2 batches
        adata.obs["batch"] = np.where(np.arange(adata.n_obs) % 2, "b1", "b0")
    out = apply_recipe(adata, steps, path.stem, defer_final_scale=False)
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


def _peaks(dense=False) -> ad.AnnData:
    """Small peak-count matrix with an empty cell and an empty peak (the edge cases)."""
    x = _counts(n_cells=40, n_features=25, seed=3, rate=1.0).X.toarray()
    x[7] = 0  # a cell with no counts
    x[:, 4] = 0  # a peak with no counts
    return ad.AnnData(x if dense else sp.csr_matrix(x))


def _dense(x) -> np.ndarray:
    return x.toarray() if sp.issparse(x) else np.asarray(x)


def test_tfidf_muon_flavor_is_log_tf_times_log_idf():
    """Without muon installed: the default muon flavour is log1p(1e4 TF) x log1p(n / peak total)."""
    a = _peaks()
    x = a.X.toarray().astype(np.float64)
    out = apply_recipe(a, [{"step": "tfidf", "flavor": "muon"}], "atac")
    cell, peak = x.sum(1, keepdims=True), x.sum(0, keepdims=True)
    tf = np.divide(x, cell, out=np.zeros_like(x), where=cell > 0)
    idf = np.log1p(np.divide(x.shape[0], peak, out=np.zeros_like(peak), where=peak > 0))
    assert sp.issparse(out.X) and out.X.dtype == np.float32
    np.testing.assert_allclose(out.X.toarray(), np.log1p(1e4 * tf) * idf, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out.var["idf"].to_numpy(), idf.ravel())
    assert not out.X.toarray()[7].any() and not out.X.toarray()[:, 4].any()


MUON_OPTIONS = [
    {},  # muon's defaults: log_tf, log_idf, scale_factor 1e4 (the UMINT authors' call)
    {"scale_factor": 1e4},
    {"log_tf": False},
    {"log_idf": False, "scale_factor": 100.0},
    {"log_tf": False, "log_idf": False, "log_tfidf": True},
    {"log_tf": False, "log_idf": False, "scale_factor": 1},
]


@pytest.mark.parametrize("dense", [False, True], ids=["sparse", "dense"])
@pytest.mark.parametrize("options", MUON_OPTIONS, ids=lambda o: ",".join(o) or "defaults")
def test_tfidf_muon_flavor_matches_muon(options, dense):
    mu_atac = pytest.importorskip(
        "muon.atac", reason="muon (optional, extra 'baselines') is the reference implementation"
    )
    a = _peaks(dense)
    ours = apply_recipe(a, [{"step": "tfidf", "flavor": "muon", **options}], "atac")
    ref = a.copy()
    with np.errstate(divide="ignore", invalid="ignore"):  # muon divides by the empty totals
        mu_atac.pp.tfidf(ref, **options)
    expected = _dense(ref.X)
    if dense:  # muon's dense path leaves 0/0 = NaN in the empty cell (its nan_to_num misses it)
        assert set(np.nonzero(~np.isfinite(expected))[0]) <= {7}
        expected = np.nan_to_num(expected, nan=0.0)
    np.testing.assert_allclose(_dense(ours.X), expected, rtol=1e-5, atol=1e-6)


def test_tfidf_flavors_refuse_each_others_options():
    a = _peaks()
    with pytest.raises(ValueError, match=r"flavor='muon'\) does not take \['norm'\]"):
        apply_recipe(a, [{"step": "tfidf", "flavor": "muon", "norm": "l2"}], "atac")
    with pytest.raises(ValueError, match=r"does not take \['log_tf', 'scale_factor'\]"):
        apply_recipe(a, [{"step": "tfidf", "log_tf": True, "scale_factor": 1e4}], "atac")
    with pytest.raises(ValueError, match="log_tfidf needs log_tf and log_idf false"):
        apply_recipe(a, [{"step": "tfidf", "flavor": "muon", "log_tfidf": True}], "atac")
    with pytest.raises(ValueError, match="unknown flavor 'signac'"):
        apply_recipe(a, [{"step": "tfidf", "flavor": "signac"}], "atac")


def test_umint_multiome_atac_recipe_uses_muon_tfidf():
    """The bmmc_multiome_500 UMINT recipe: the authors' muon TF-IDF, then normalise, log1p."""
    steps = OmegaConf.to_container(OmegaConf.load(RECIPES / "umint_multiome_atac.yaml"))
    assert [s["step"] for s in steps] == [
        "filter_features",
        "tfidf",
        "normalize_total",
        "log1p",
        "scale",
    ]
    assert steps[1]["flavor"] == "muon"


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
