"""Batch mixing (scIB forms): batch silhouette, graph connectivity and iLISI.

Each asks whether cells of different batches mix *within* cell types, so a method that merges
everything scores well here and badly on the label metrics: read them together.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from sklearn.metrics import silhouette_samples

from scmint.metrics.lisi import lisi, scaled_ilisi

#: Every key this group writes (all None when there are fewer than two batches).
KEYS = ("silhouette_batch", "graph_connectivity", "ilisi", "ilisi_scaled")


def silhouette_batch(x: np.ndarray, labels: np.ndarray, batches: np.ndarray) -> float | None:
    """scIB's batch ASW: per label, mean over its cells of 1 - |silhouette| with batch as the
    cluster label; then the mean over labels. 1 = batches mixed, 0 = batches separated.

    Labels present in one batch only (or with one cell per batch) are skipped, as in scIB;
    None when every label is skipped.
    """
    per_label = []
    for label in np.unique(labels):
        in_label = labels == label
        b = batches[in_label]
        n_batches = len(np.unique(b))
        if n_batches == 1 or n_batches == in_label.sum():
            continue
        per_label.append(np.mean(1 - np.abs(silhouette_samples(x[in_label], b))))
    return float(np.mean(per_label)) if per_label else None


def graph_connectivity(adjacency: sp.spmatrix, labels: np.ndarray) -> float:
    """scIB's graph connectivity: per label, the share of its cells in the largest connected
    component of the kNN graph restricted to that label; mean over labels. 1 = every label is
    one connected piece."""
    adjacency = sp.csr_matrix(adjacency)
    shares = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        _, component = connected_components(adjacency[members][:, members], connection="strong")
        shares.append(np.bincount(component).max() / len(members))
    return float(np.mean(shares))


def ilisi(
    knn: tuple[np.ndarray, np.ndarray], batch_codes: np.ndarray, perplexity: float
) -> tuple[float, float]:
    """Median iLISI over cells (1 .. number of batches, higher = more mixed) and scIB's scaled
    form in [0, 1]. ``knn`` is (distances, indices) without the cells themselves."""
    median = float(np.median(lisi(*knn, batch_codes, perplexity)))
    return median, scaled_ilisi(median, int(batch_codes.max()) + 1)
