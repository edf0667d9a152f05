"""Clustering agreement: Ward, k-means and Leiden clusterings scored against the labels.

Ward and k-means use k = the number of labels, as the UMINT paper does. Leiden runs on the kNN
graph twice, because the cluster count drives ARI on imbalanced labels: once at the resolution
whose cluster count is closest to k (methods compared at equal counts), and once scIB-style at the
resolution of the grid with the best NMI. Each clustering records its cluster count beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import igraph as ig
import numpy as np
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.metrics import adjusted_rand_score, fowlkes_mallows_score, normalized_mutual_info_score

from scmint.metrics.config import EvaluationConfig
from scmint.metrics.neighbors import igraph_seed
from scmint.metrics.sampling import subsample, take

#: Every key this group writes (all None when labels are absent).
KEYS = tuple(
    [
        f"{score}_{method}"
        for method in ("ward", "kmeans", "leiden", "leiden_best")
        for score in ("ari", "fmi", "nmi")
    ]
    + [
        "n_clusters_ward",
        "n_clusters_kmeans",
        "n_clusters_leiden",
        "n_clusters_leiden_best",
        "leiden_resolution",
        "leiden_best_resolution",
        "ward_subsampled_n",
    ]
)


def agreement(labels: np.ndarray, clusters: np.ndarray) -> dict[str, float]:
    """ARI, FMI and NMI of a clustering against labels (scikit-learn; NMI arithmetic mean)."""
    return {
        "ari": float(adjusted_rand_score(labels, clusters)),
        "fmi": float(fowlkes_mallows_score(labels, clusters)),
        "nmi": float(normalized_mutual_info_score(labels, clusters)),
    }


def ward(x: np.ndarray, k: int) -> np.ndarray:
    """Unstructured Ward agglomerative clustering cut at k clusters (scikit-learn)."""
    return AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(x)


def kmeans(x: np.ndarray, k: int, n_init: int, seed: int) -> np.ndarray:
    """k-means (scikit-learn, k-means++ starts, best of ``n_init``)."""
    return KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(x)


def leiden(graph: ig.Graph, resolution: float, n_iterations: int, seed: int) -> np.ndarray:
    """Leiden partition maximising modularity at ``resolution`` (igraph's implementation).

    igraph's modularity objective with a resolution parameter is the RBConfiguration model that
    scanpy's ``tl.leiden`` uses, so numbers are comparable with scIB's.
    """
    with igraph_seed(seed):
        partition = graph.community_leiden(
            objective_function="modularity",
            weights="weight",
            resolution=resolution,
            n_iterations=n_iterations,
        )
    return np.asarray(partition.membership)


@dataclass(frozen=True)
class LeidenRun:
    resolution: float
    clusters: np.ndarray

    @property
    def n_clusters(self) -> int:
        return int(self.clusters.max()) + 1


def leiden_closest_to_k(
    graph: ig.Graph, k: int, grid: list[LeidenRun], steps: int, n_iterations: int, seed: int
) -> LeidenRun:
    """The run whose cluster count is closest to k, refining the grid by bisection.

    Start from the grid runs; while no run has exactly k clusters and steps remain, run Leiden
    at the midpoint of the lowest pair of neighbouring resolutions whose counts straddle k
    (doubling the highest resolution when every count is below k, halving the lowest when every
    count is above). Ties go to the lower resolution.
    """
    runs = sorted(grid, key=lambda r: r.resolution)
    for _ in range(steps):
        counts = [r.n_clusters for r in runs]
        if k in counts:
            break
        if max(counts) < k:
            resolution = 2 * runs[-1].resolution
        elif min(counts) > k:
            resolution = runs[0].resolution / 2
        else:
            i = next(i for i in range(len(runs) - 1) if (counts[i] - k) * (counts[i + 1] - k) < 0)
            resolution = (runs[i].resolution + runs[i + 1].resolution) / 2
        runs.append(LeidenRun(resolution, leiden(graph, resolution, n_iterations, seed)))
        runs.sort(key=lambda r: r.resolution)
    return min(runs, key=lambda r: (abs(r.n_clusters - k), r.resolution))


def clustering_metrics(
    x: np.ndarray,
    labels: np.ndarray,
    graph: ig.Graph,
    config: EvaluationConfig,
    seed: int,
    rng: np.random.Generator,
) -> dict[str, float | int | None]:
    """All clustering-agreement metrics of the labelled cells ``x`` (see module docstring)."""
    k = len(np.unique(labels))
    out: dict[str, float | int | None] = {}

    index = subsample(len(x), config.ward_max_cells, rng)
    x_ward, y_ward = take(index, x, labels)
    _record(out, "ward", agreement(y_ward, ward(x_ward, k)), n_clusters=k)
    out["ward_subsampled_n"] = None if index is None else len(index)

    _record(
        out, "kmeans", agreement(labels, kmeans(x, k, config.kmeans_n_init, seed)), n_clusters=k
    )

    grid = [
        LeidenRun(r, leiden(graph, r, config.leiden_iterations, seed))
        for r in config.leiden_resolutions
    ]
    closest = leiden_closest_to_k(
        graph, k, grid, config.leiden_search_steps, config.leiden_iterations, seed
    )
    _record(out, "leiden", agreement(labels, closest.clusters), n_clusters=closest.n_clusters)
    out["leiden_resolution"] = float(closest.resolution)

    scored = [(agreement(labels, run.clusters), run) for run in grid]
    best_scores, best = max(scored, key=lambda item: item[0]["nmi"])
    _record(out, "leiden_best", best_scores, n_clusters=best.n_clusters)
    out["leiden_best_resolution"] = float(best.resolution)
    return out


def _record(out: dict, method: str, scores: dict[str, float], n_clusters: int) -> None:
    for score, value in scores.items():
        out[f"{score}_{method}"] = value
    out[f"n_clusters_{method}"] = int(n_clusters)
