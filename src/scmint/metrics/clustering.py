"""Clustering agreement between an embedding and ground-truth labels (first protocol slice)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.metrics import adjusted_rand_score, fowlkes_mallows_score, normalized_mutual_info_score


def evaluate_embedding(
    embedding: np.ndarray,
    labels: np.ndarray | None,
    batches: np.ndarray | None = None,
    modality_embeddings: Mapping[str, np.ndarray] | None = None,
    inputs: Mapping[str, np.ndarray] | None = None,
    reconstructions: Mapping[str, np.ndarray] | None = None,
    seed: int = 0,
    config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Ward and k-means with k = number of labels; ARI, FMI and NMI of each against the labels."""
    if labels is None:
        return {"labels_absent": True}
    known = np.array([label is not None for label in labels])
    x, y = embedding[known], np.asarray(labels[known]).astype(str)
    k = len(np.unique(y))
    out: dict[str, Any] = {"n_labels": k}
    assignments = {
        "ward": AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(x),
        "kmeans": KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x),
    }
    for name, pred in assignments.items():
        out[f"ari_{name}"] = float(adjusted_rand_score(y, pred))
        out[f"fmi_{name}"] = float(fowlkes_mallows_score(y, pred))
        out[f"nmi_{name}"] = float(normalized_mutual_info_score(y, pred))
    return out
