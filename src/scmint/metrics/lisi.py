"""Local inverse Simpson's index (LISI; Korsunsky et al., Nature Methods 2019, Harmony).

For each cell, the neighbourhood is its 3 x perplexity nearest neighbours (the cell itself
excluded), weighted by a kernel exp(-beta * d) on Euclidean distances d whose ``beta`` is
calibrated per cell by bisection until the weights' perplexity equals the target (as in the
authors' ``lisi`` package and harmonypy). LISI is the inverse Simpson's index of the categories
under those weights: the effective number of categories around the cell, from 1 (one category)
to the number of categories (perfectly even).

No library ships this for plain numpy (scib needs its compiled C++ extension, scib-metrics needs
JAX), so it is written here, vectorised over all cells at once.
"""

from __future__ import annotations

import numpy as np

#: Bisection settings of the reference implementation.
_TOLERANCE = 1e-5
_MAX_TRIES = 50


def kernel_weights(distances: np.ndarray, perplexity: float) -> np.ndarray:
    """Row-normalised weights exp(-beta_i d_ij), each row calibrated to ``perplexity``.

    Distances are shifted by their row minimum first: this changes neither the normalised
    weights nor the entropy, and keeps exp() from underflowing where neighbours are far apart.
    """
    d = distances - distances.min(axis=1, keepdims=True)
    n = len(d)
    target = np.log(perplexity)
    beta = np.ones(n)
    beta_min = np.full(n, -np.inf)
    beta_max = np.full(n, np.inf)
    active = np.ones(n, dtype=bool)
    p = np.empty_like(d)
    for _ in range(_MAX_TRIES + 1):
        rows = np.flatnonzero(active)
        if not len(rows):
            break
        w = np.exp(-d[rows] * beta[rows, None])
        total = w.sum(axis=1)
        entropy = np.log(total) + beta[rows] * (d[rows] * w).sum(axis=1) / total
        p[rows] = w / total[:, None]
        diff = entropy - target
        done = np.abs(diff) <= _TOLERANCE
        active[rows[done]] = False
        rows, diff = rows[~done], diff[~done]
        # Entropy too high: sharpen the kernel (raise beta); too low: widen it.
        up, down = rows[diff > 0], rows[diff <= 0]
        beta_min[up] = beta[up]
        beta[up] = np.where(np.isinf(beta_max[up]), beta[up] * 2, (beta[up] + beta_max[up]) / 2)
        beta_max[down] = beta[down]
        beta[down] = np.where(
            np.isinf(beta_min[down]), beta[down] / 2, (beta[down] + beta_min[down]) / 2
        )
    return p


def lisi(
    distances: np.ndarray, indices: np.ndarray, categories: np.ndarray, perplexity: float
) -> np.ndarray:
    """Per-cell LISI of ``categories`` ([n] integer codes) over kNN ``distances``/``indices`` [n, k].

    The perplexity is capped at k / 3 when there are fewer neighbours than 3 x perplexity.
    """
    perplexity = min(perplexity, distances.shape[1] / 3)
    weights = kernel_weights(distances, perplexity)
    n_categories = int(categories.max()) + 1
    n = len(indices)
    # Weight mass of each category around each cell: one bincount over (cell, category) pairs.
    cell_category = np.arange(n)[:, None] * n_categories + categories[indices]
    mass = np.bincount(cell_category.ravel(), weights=weights.ravel(), minlength=n * n_categories)
    return 1.0 / (mass.reshape(n, n_categories) ** 2).sum(axis=1)


def scaled_ilisi(median_lisi: float, n_batches: int) -> float:
    """scIB's iLISI scale: (median - 1) / (B - 1), 0 = no mixing, 1 = ideal mixing."""
    return (median_lisi - 1) / (n_batches - 1)


def scaled_clisi(median_lisi: float, n_labels: int) -> float:
    """scIB's cLISI scale: (L - median) / (L - 1), 1 = pure label neighbourhoods."""
    return (n_labels - median_lisi) / (n_labels - 1)
