"""Reconstruction score of autoencoders (UMINT paper): are cell-cell distances preserved?

Per modality, the Pearson correlation between the pairwise squared Euclidean distances of the
preprocessed input and of its reconstruction (each unordered pair of cells once); ``ors`` is the
mean over modalities. Distance matrices are n x n, so at most ``max_cells`` cells are used.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.spatial.distance import squareform
from sklearn.metrics.pairwise import euclidean_distances

from scmint.metrics.sampling import subsample


def distance_correlation(x: np.ndarray, x_hat: np.ndarray) -> float:
    """Pearson r between the condensed squared-Euclidean distance matrices of two views of the
    same cells (rows aligned)."""
    d = squareform(euclidean_distances(x, squared=True), checks=False).astype(np.float64)
    d_hat = squareform(euclidean_distances(x_hat, squared=True), checks=False).astype(np.float64)
    return float(np.corrcoef(d, d_hat)[0, 1])


def reconstruction_metrics(
    inputs: Mapping[str, np.ndarray],
    reconstructions: Mapping[str, np.ndarray],
    max_cells: int | None,
    rng: np.random.Generator,
) -> dict[str, float | int | None]:
    """``recon_pearson_<modality>`` for each reconstructed modality, their mean ``ors`` and
    ``ors_subsampled_n``.

    The same cells are sampled for every modality. A row containing NaN (in the input or the
    reconstruction) marks a cell without that modality and is left out of that modality's score.
    """
    missing = [m for m in reconstructions if m not in inputs]
    if missing:
        raise ValueError(
            f"reconstructions of modalities {missing} have no matching inputs "
            f"(inputs has {list(inputs)}); pass the preprocessed input of every reconstructed modality"
        )
    n = len(next(iter(reconstructions.values())))
    cells = subsample(n, max_cells, rng)
    out: dict[str, float | int | None] = {}
    for modality, x_hat in reconstructions.items():
        x = np.asarray(inputs[modality])
        x_hat = np.asarray(x_hat)
        if x.shape != x_hat.shape:
            raise ValueError(
                f"modality {modality!r}: input shape {x.shape} differs from reconstruction "
                f"shape {x_hat.shape}"
            )
        if cells is not None:
            x, x_hat = x[cells], x_hat[cells]
        present = np.isfinite(x).all(axis=1) & np.isfinite(x_hat).all(axis=1)
        out[f"recon_pearson_{modality}"] = (
            distance_correlation(x[present], x_hat[present]) if present.sum() >= 3 else None
        )
    scores = [v for k, v in out.items() if v is not None]
    out["ors"] = float(np.mean(scores)) if scores else None
    out["ors_subsampled_n"] = None if cells is None else len(cells)
    return out
