"""Options of the evaluation protocol, shared by ``train.py`` (``cfg.evaluation``) and ``scmint-eval``.

The values live in ``conf/evaluation/*.yaml`` (each documented there); this dataclass holds their
defaults, so ``evaluate_embedding`` works without Hydra, and validates a mapping from any source
with errors that name the offending ``evaluation.<key>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

#: Metric groups, in the order they run. See docs/evaluation.md for what each computes.
GROUPS = ("clustering", "label_structure", "batch", "modality", "transfer", "reconstruction")

#: scIB's Leiden resolution grid (``cluster_optimal_resolution``: 0.1, 0.2, ..., 2.0).
SCIB_RESOLUTIONS = tuple(round(0.1 * i, 1) for i in range(1, 21))


@dataclass(frozen=True)
class EvaluationConfig:
    """Every option of the evaluation protocol (defaults = ``conf/evaluation/default.yaml``).

    Attributes:
        groups: metric groups to compute; groups left out are absent from the metrics dict.
        n_neighbors: neighbours of the kNN graph used by Leiden and graph connectivity
            (scanpy's and scIB's default, 15).
        leiden_resolutions: resolution grid of the scIB-style best-NMI Leiden clustering; also the
            starting points of the search for the resolution whose cluster count is closest to k.
        leiden_search_steps: extra Leiden runs allowed to bisect (or extend) the grid towards
            exactly k clusters.
        leiden_iterations: Leiden iterations per run (igraph; 2 is scanpy's igraph-flavour default,
            -1 iterates until the partition no longer changes).
        kmeans_n_init: k-means restarts (scikit-learn's classic default, used by the UMINT code).
        ward_max_cells: Ward clustering needs O(n^2) memory; above this many labelled cells it
            runs on a uniform random subsample of this size (None: never subsample).
        silhouette_max_cells: label and batch silhouettes are O(n^2) in time; above this many
            cells they use a uniform subsample of this size (None: never).
        lisi_perplexity: perplexity of the LISI kernel (Korsunsky et al. 2019: 30); LISI uses
            3 x perplexity nearest neighbours.
        knn_classifier_k: neighbours of the kNN label-transfer classifier.
        cv_folds: stratified cross-validation folds of the label-transfer F1.
        modality_max_cells: cells used for silhouette_modality and FOSCTTM (both O(n^2)).
        reconstruction_max_cells: cells used for the reconstruction score (n x n distance
            matrices; the issue's default 5,000).
    """

    groups: tuple[str, ...] = GROUPS
    n_neighbors: int = 15
    leiden_resolutions: tuple[float, ...] = SCIB_RESOLUTIONS
    leiden_search_steps: int = 10
    leiden_iterations: int = 2
    kmeans_n_init: int = 10
    ward_max_cells: int | None = 10_000
    silhouette_max_cells: int | None = 20_000
    lisi_perplexity: float = 30.0
    knn_classifier_k: int = 15
    cv_folds: int = 5
    modality_max_cells: int | None = 10_000
    reconstruction_max_cells: int | None = 5_000

    def __post_init__(self) -> None:
        unknown = [g for g in self.groups if g not in GROUPS]
        if unknown:
            raise ValueError(
                f"evaluation.groups: unknown group(s) {unknown}; choose from {list(GROUPS)}"
            )
        if not self.leiden_resolutions or any(r <= 0 for r in self.leiden_resolutions):
            raise ValueError(
                f"evaluation.leiden_resolutions must be a non-empty list of positive numbers, "
                f"got {list(self.leiden_resolutions)}"
            )
        at_least = {
            "n_neighbors": 2,
            "knn_classifier_k": 1,
            "cv_folds": 2,
            "kmeans_n_init": 1,
            "leiden_search_steps": 0,
            "lisi_perplexity": 1,
        }
        for key, low in at_least.items():
            if getattr(self, key) < low:
                raise ValueError(f"evaluation.{key} must be >= {low}, got {getattr(self, key)}")
        for key in (
            "ward_max_cells",
            "silhouette_max_cells",
            "modality_max_cells",
            "reconstruction_max_cells",
        ):
            value = getattr(self, key)
            if value is not None and value < 10:
                raise ValueError(f"evaluation.{key} must be null (no limit) or >= 10, got {value}")

    @classmethod
    def from_any(cls, config: EvaluationConfig | Mapping[str, Any] | None) -> EvaluationConfig:
        """Build from None (defaults), an EvaluationConfig, a dict or an OmegaConf DictConfig."""
        if config is None:
            return cls()
        if isinstance(config, EvaluationConfig):
            return config
        if not isinstance(config, Mapping):
            raise TypeError(
                f"evaluation config must be a mapping or EvaluationConfig, got {type(config).__name__}"
            )
        options = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in config if k not in options)
        if unknown:
            raise ValueError(
                f"evaluation: unknown option(s) {unknown}; the options are {sorted(options)} "
                "(see conf/evaluation/default.yaml)"
            )
        values = {
            k: tuple(v) if k in ("groups", "leiden_resolutions") else v for k, v in config.items()
        }
        return replace(cls(), **values)
