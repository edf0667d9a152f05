"""Seeded uniform sub-sampling for the O(n^2) metrics, recorded in the metrics dict."""

from __future__ import annotations

import numpy as np


def subsample(n: int, max_cells: int | None, rng: np.random.Generator) -> np.ndarray | None:
    """Sorted indices of a uniform sample of ``max_cells`` of ``n`` cells, or None to use all.

    Returning None (rather than ``arange(n)``) lets callers skip a copy of the data and record
    ``<metric>_subsampled_n = None``, meaning "computed on every cell".
    """
    if max_cells is None or n <= max_cells:
        return None
    return np.sort(rng.choice(n, size=max_cells, replace=False))


def take(index: np.ndarray | None, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Rows ``index`` of each array (all rows when ``index`` is None)."""
    if index is None:
        return arrays
    return tuple(a[index] for a in arrays)
