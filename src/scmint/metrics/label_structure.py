"""How well the embedding separates the ground-truth labels, without clustering it."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import davies_bouldin_score, silhouette_score

from scmint.metrics.config import EvaluationConfig
from scmint.metrics.lisi import lisi, scaled_clisi
from scmint.metrics.sampling import subsample, take

#: Every key this group writes (all None when labels are absent).
KEYS = ("silhouette_label", "davies_bouldin", "clisi", "clisi_scaled", "silhouette_subsampled_n")


def label_structure_metrics(
    x: np.ndarray,
    codes: np.ndarray,
    knn: tuple[np.ndarray, np.ndarray],
    config: EvaluationConfig,
    rng: np.random.Generator,
) -> dict[str, float | int | None]:
    """Silhouette of labels, Davies-Bouldin index and cLISI of labelled cells.

    ``codes`` are integer label codes; ``knn`` is (distances, indices) of the cells' LISI
    neighbourhoods (:func:`~scmint.metrics.neighbors.neighbors_without_self`). With a single
    label the silhouette and Davies-Bouldin are undefined (None) and cLISI is trivially 1.
    """
    n_labels = len(np.unique(codes))
    index = subsample(len(x), config.silhouette_max_cells, rng)
    out: dict[str, float | int | None] = {
        "silhouette_subsampled_n": None if index is None else len(index)
    }
    if n_labels >= 2:
        x_sil, y_sil = take(index, x, codes)
        out["silhouette_label"] = (
            float(silhouette_score(x_sil, y_sil)) if len(np.unique(y_sil)) > 1 else None
        )
        out["davies_bouldin"] = float(davies_bouldin_score(x, codes))
    else:
        out["silhouette_label"] = out["davies_bouldin"] = None
    median = float(np.median(lisi(*knn, codes, config.lisi_perplexity)))
    out["clisi"] = median
    out["clisi_scaled"] = scaled_clisi(median, n_labels) if n_labels >= 2 else None
    return out
