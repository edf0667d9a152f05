"""The metric building blocks on hand-made cases, and against scanpy / scikit-learn / umap where
they compute the same thing."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import adjusted_rand_score, silhouette_samples

from scmint.metrics.batch import graph_connectivity, silhouette_batch
from scmint.metrics.clustering import leiden
from scmint.metrics.lisi import kernel_weights, lisi
from scmint.metrics.modality import foscttm, silhouette_modality
from scmint.metrics.neighbors import Neighbours, to_igraph
from scmint.metrics.reconstruction import distance_correlation
from scmint.metrics.transfer import knn_f1_batch, knn_f1_cv


def test_neighbours_put_each_cell_first_even_with_duplicates():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3))
    x[7] = x[8] = x[9]  # triplets: a query may list a twin before itself
    nb = Neighbours.search(x, 5)
    assert (nb.indices[:, 0] == np.arange(50)).all()
    assert (nb.distances[:, 0] == 0).all()
    assert (nb.indices[:, 1:] != np.arange(50)[:, None]).all()
    assert nb.without_self(3)[1].shape == (50, 3)


def test_connectivities_are_a_symmetric_fuzzy_graph():
    x = np.random.default_rng(0).normal(size=(200, 5))
    graph = Neighbours.search(x, 14).connectivities(15)
    assert abs(graph - graph.T).max() < 1e-12
    assert graph.diagonal().max() == 0
    assert graph.data.min() > 0 and graph.data.max() <= 1 + 1e-12
    # Every cell keeps an edge of weight 1 to its nearest neighbour (rho is that distance).
    assert np.allclose(graph.max(axis=1).toarray().ravel(), 1.0)


@pytest.mark.slow
def test_connectivities_match_scanpy():
    """Same graph as ``scanpy.pp.neighbors`` (slow only because scanpy compiles umap's numba code)."""
    import anndata as ad
    import scanpy as sc

    x = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)
    adata = ad.AnnData(x)
    sc.pp.neighbors(adata, n_neighbors=15, use_rep="X", transformer="sklearn")
    ours = Neighbours.search(x, 14).connectivities(15)
    assert abs(ours - adata.obsp["connectivities"]).max() < 1e-5


def test_leiden_matches_scanpy_igraph_flavour():
    import anndata as ad
    import scanpy as sc

    rng = np.random.default_rng(0)
    x = np.repeat(rng.normal(0, 10, (5, 4)), 40, axis=0) + rng.normal(size=(200, 4))
    graph = Neighbours.search(x, 14).connectivities(15)
    ours = leiden(to_igraph(graph), 1.0, n_iterations=2, seed=0)
    adata = ad.AnnData(np.zeros((200, 1), dtype=np.float32))
    sc.tl.leiden(
        adata,
        resolution=1.0,
        adjacency=graph,
        flavor="igraph",
        n_iterations=2,
        directed=False,
        random_state=0,
    )
    assert adjusted_rand_score(adata.obs["leiden"], ours) == pytest.approx(1.0)
    assert len(np.unique(ours)) == 5


def test_leiden_is_seeded_and_leaves_global_random_alone():
    import random

    graph = to_igraph(
        Neighbours.search(np.random.default_rng(1).normal(size=(150, 3)), 9).connectivities(10)
    )
    random.seed(123)
    expected = random.random()
    random.seed(123)
    a = leiden(graph, 1.0, 2, seed=4)
    assert random.random() == expected
    assert (a == leiden(graph, 1.0, 2, seed=4)).all()


def test_lisi_kernel_is_calibrated_to_the_perplexity():
    d = np.sort(np.random.default_rng(0).gamma(2.0, 1.0, size=(100, 90)), axis=1)
    p = kernel_weights(d, perplexity=30)
    assert np.allclose(p.sum(axis=1), 1.0)
    entropy = -(p * np.log(np.where(p > 0, p, 1))).sum(axis=1)
    assert np.allclose(np.exp(entropy), 30, rtol=1e-3)


def test_lisi_counts_effective_categories():
    n, k = 6, 12
    distances = np.ones((n, k))  # equal distances: uniform weights whatever beta
    categories = np.array([0, 1, 0, 1, 2, 2])
    pure = np.zeros((n, k), dtype=int)  # every neighbour is cell 0 (category 0)
    assert np.allclose(lisi(distances, pure, categories, perplexity=3), 1.0)
    halves = np.tile([0, 1], (n, k // 2))  # half category 0, half category 1
    assert np.allclose(lisi(distances, halves, categories, perplexity=3), 2.0)
    thirds = np.tile([0, 1, 4], (n, k // 3))
    assert np.allclose(lisi(distances, thirds, categories, perplexity=3), 3.0)


def test_silhouette_batch_is_scib_form():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4))
    labels = np.repeat([0, 1, 2], 40)
    batches = rng.integers(0, 2, 120)
    expected = np.mean(
        [
            np.mean(1 - np.abs(silhouette_samples(x[labels == c], batches[labels == c])))
            for c in range(3)
        ]
    )
    assert silhouette_batch(x, labels, batches) == pytest.approx(expected)
    one_batch_labels = np.where(labels == 2, 2, labels)
    only_one = batches.copy()
    only_one[labels == 2] = 0  # label 2 in one batch: skipped, as scIB does
    expected_two = np.mean(
        [
            np.mean(1 - np.abs(silhouette_samples(x[labels == c], batches[labels == c])))
            for c in range(2)
        ]
    )
    assert silhouette_batch(x, one_batch_labels, only_one) == pytest.approx(expected_two)


def test_graph_connectivity_by_hand():
    # label a: cells 0-1 connected, cell 2 alone (largest share 2/3); label b: 3-4 connected (1).
    edges = [(0, 1), (3, 4), (2, 3)]
    rows, cols = zip(*edges, strict=True)
    adjacency = sp.coo_matrix((np.ones(3), (rows, cols)), shape=(5, 5))
    adjacency = adjacency + adjacency.T
    labels = np.array(["a", "a", "a", "b", "b"])
    assert graph_connectivity(adjacency, labels) == pytest.approx((2 / 3 + 1) / 2)


def test_foscttm_identical_vs_unmatched():
    x = np.random.default_rng(0).normal(size=(300, 5))
    assert foscttm({"a": x, "b": x}) == 0.0
    shuffled = x[np.random.default_rng(1).permutation(300)]
    assert 0.4 < foscttm({"a": x, "b": shuffled}) < 0.6


def test_silhouette_modality_mixed_vs_separated():
    x = np.random.default_rng(0).normal(size=(200, 5))
    y = np.random.default_rng(1).normal(size=(200, 5))
    assert abs(silhouette_modality({"a": x, "b": y})) < 0.05
    assert silhouette_modality({"a": x, "b": y + 100}) > 0.9


def test_distance_correlation_perfect_scaled_and_noise():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 20))
    assert distance_correlation(x, x) == pytest.approx(1.0)
    assert distance_correlation(x, 3 * x + 1) == pytest.approx(1.0)  # translation and scale
    assert abs(distance_correlation(x, rng.normal(size=(150, 20)))) < 0.1


def test_knn_transfer_perfect_and_rare_labels():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 30)
    x = labels[:, None] * 50.0 + rng.normal(size=(90, 3))
    assert knn_f1_cv(x, labels, k=5, folds=5, seed=0) == pytest.approx(1.0)
    rare = np.append(labels, 3)  # one cell of label 3 cannot be predicted in CV
    x_rare = np.vstack([x, [[500.0, 500.0, 500.0]]])
    score = knn_f1_cv(x_rare, rare, k=5, folds=5, seed=0)
    # Label 3 gets F1 = 0; its cell is called label 2 (the nearest), whose F1 becomes 60/61.
    assert score == pytest.approx((1 + 1 + 60 / 61 + 0) / 4)
    batches = np.tile([0, 1], 45)
    assert knn_f1_batch(x, labels, batches, k=5) == pytest.approx(1.0)
