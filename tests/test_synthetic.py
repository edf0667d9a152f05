"""The simulator: shapes, count properties, known truth, determinism, parameter checks."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from scmint.data.synthetic import SyntheticSource, simulate_multiome


@pytest.fixture(scope="module")
def cite():
    return simulate_multiome(
        400, 5, ("rna", "adt", "atac"), n_genes=300, n_proteins=12, n_peaks=500, n_batches=2, seed=3
    )


def test_shapes_and_modalities(cite):
    assert list(cite.mod) == ["rna", "adt", "atac"]
    assert cite["rna"].shape == (400, 300)
    assert cite["adt"].shape == (400, 12)
    assert cite["atac"].shape == (400, 500)
    assert cite.n_obs == 400
    assert cite.obsm["X_programs"].shape[0] == 400


@pytest.mark.parametrize("modality", ["rna", "adt", "atac"])
def test_counts_are_nonnegative_integers(cite, modality):
    x = cite[modality].X
    assert sp.issparse(x)
    values = x.data
    assert (values >= 0).all()
    assert np.array_equal(values, np.round(values))
    assert x.sum() > 0


def test_atac_is_sparse_and_adt_has_ambient_background(cite):
    atac_density = cite["atac"].X.nnz / np.prod(cite["atac"].shape)
    assert atac_density < 0.5
    adt = cite["adt"].X.toarray()
    # ambient background: almost every protein is detected in almost every cell
    assert (adt > 0).mean() > 0.9


def test_types_and_batches_present(cite):
    assert cite.obs["cell_type"].nunique() == 5
    assert cite.obs["batch"].nunique() == 2
    for m in cite.mod:
        assert list(cite[m].obs["cell_type"]) == list(cite.obs["cell_type"])


def test_same_seed_same_data_different_seed_differs():
    a = simulate_multiome(200, 4, ("rna", "adt"), n_genes=100, seed=7)
    b = simulate_multiome(200, 4, ("rna", "adt"), n_genes=100, seed=7)
    c = simulate_multiome(200, 4, ("rna", "adt"), n_genes=100, seed=8)
    for m in ("rna", "adt"):
        assert (a[m].X != b[m].X).nnz == 0
        assert (a[m].X != c[m].X).nnz > 0
    assert list(a.obs["cell_type"]) == list(b.obs["cell_type"])


def test_chunking_does_not_change_shape_or_truth():
    small_chunks = simulate_multiome(250, 3, ("rna",), n_genes=50, seed=1, chunk_size=64)
    assert small_chunks["rna"].shape == (250, 50)
    assert small_chunks.obs["cell_type"].nunique() == 3


def test_batch_effect_shifts_batches_apart():
    """With a strong batch effect, cells of one type differ more across batches than within."""
    data = simulate_multiome(600, 1, ("rna",), n_genes=200, n_batches=2, batch_effect=2.0, seed=0)
    x = np.log1p(data["rna"].X.toarray())
    batch = data.obs["batch"].to_numpy()
    m0, m1 = x[batch == "batch_0"].mean(0), x[batch == "batch_1"].mean(0)
    no_effect = simulate_multiome(
        600, 1, ("rna",), n_genes=200, n_batches=2, batch_effect=0.0, seed=0
    )
    y = np.log1p(no_effect["rna"].X.toarray())
    b = no_effect.obs["batch"].to_numpy()
    assert (
        np.abs(m0 - m1).mean()
        > 3 * np.abs(y[b == "batch_0"].mean(0) - y[b == "batch_1"].mean(0)).mean()
    )


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"n_cells": 0}, "n_cells"),
        ({"n_types": 0}, "n_types"),
        ({"modalities": ("rna", "methylation")}, "modalities"),
        ({"batch_effect": -1.0}, "batch_effect"),
        ({"n_genes": 0}, "n_genes"),
    ],
)
def test_impossible_parameters_name_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        SyntheticSource(**kwargs)


def test_source_fingerprint_tracks_parameters():
    assert SyntheticSource(n_cells=10).fingerprint() == SyntheticSource(n_cells=10).fingerprint()
    assert SyntheticSource(n_cells=10).fingerprint() != SyntheticSource(n_cells=11).fingerprint()
