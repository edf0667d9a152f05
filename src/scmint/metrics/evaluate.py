"""``evaluate_embedding``: the one evaluation protocol of every method (DESIGN.md §4).

It sees only arrays (the embedding, labels, batches, per-modality embeddings, inputs and
reconstructions), never a model, so scmint methods and embeddings made by other tools are scored
identically. The result is a flat dict ready for ``metrics.json``: metrics whose inputs are
missing are present as None beside a key that says why (``labels_absent``, ``batches_absent``,
``modality_embeddings_absent``, ``reconstruction_absent``), and every sub-sampling is recorded as
``<what>_subsampled_n`` (None = all cells used).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import igraph as ig
import numpy as np
import pandas as pd
import scipy.sparse as sp

from scmint.metrics import batch as batch_group
from scmint.metrics import clustering as clustering_group
from scmint.metrics import label_structure as label_group
from scmint.metrics import modality as modality_group
from scmint.metrics import transfer as transfer_group
from scmint.metrics.config import GROUPS, EvaluationConfig
from scmint.metrics.neighbors import Neighbours, to_igraph
from scmint.metrics.reconstruction import reconstruction_metrics
from scmint.metrics.sampling import subsample, take

log = logging.getLogger(__name__)

Metrics = dict[str, float | int | str | bool | None]


def evaluate_embedding(
    embedding: np.ndarray,
    labels: np.ndarray | None,
    batches: np.ndarray | None = None,
    modality_embeddings: Mapping[str, np.ndarray] | None = None,
    inputs: Mapping[str, np.ndarray] | None = None,
    reconstructions: Mapping[str, np.ndarray] | None = None,
    seed: int = 0,
    config: EvaluationConfig | Mapping[str, Any] | None = None,
) -> Metrics:
    """Score a cell embedding with every metric group of the protocol.

    Args:
        embedding: [n, d] cell embedding.
        labels: [n] cell-type labels (None entries = unknown cells, left out of label metrics),
            or None when the data has no labels.
        batches: [n] batch of each cell, or None; fewer than two batches count as no batches.
        modality_embeddings: per-modality [n, d] embeddings of paired methods (rows of NaN mark
            cells without that modality).
        inputs: preprocessed per-modality inputs [n, d_m], for the reconstruction score.
        reconstructions: per-modality reconstructions, aligned with ``inputs``.
        seed: seeds every random choice (k-means starts, Leiden, sub-samples, CV folds).
        config: protocol options (:class:`EvaluationConfig`, a dict or ``cfg.evaluation``).

    Returns:
        A flat dict of metrics (see docs/evaluation.md for every key).
    """
    cfg = EvaluationConfig.from_any(config)
    if seed is None or int(seed) < 0:
        raise ValueError(f"evaluation seed must be an integer >= 0, got {seed!r}")
    data = _Inputs(embedding, labels, batches, cfg, int(seed))
    out: Metrics = {
        "n_cells": data.n,
        "embedding_dim": data.x.shape[1],
        "n_cells_labelled": int(data.labelled.sum()),
        "n_labels": data.n_labels,
        "n_batches": data.n_batches,
        "labels_absent": not data.has_labels,
        "batches_absent": not data.has_batches,
    }
    runs: dict[str, Callable[[np.random.Generator], Metrics]] = {
        "clustering": data.clustering,
        "label_structure": data.label_structure,
        "batch": data.batch_mixing,
        "modality": lambda rng: _modality(modality_embeddings, cfg, rng),
        "transfer": data.transfer,
        "reconstruction": lambda rng: _reconstruction(inputs, reconstructions, cfg, rng),
    }
    start = time.perf_counter()
    for group in GROUPS:
        if group not in cfg.groups:
            continue
        tic, cpu = time.perf_counter(), time.process_time()
        # One generator per group, so enabling or disabling a group never changes another's numbers.
        out.update(runs[group](np.random.default_rng([seed, GROUPS.index(group)])))
        log.info(
            "evaluation: %s took %.1f s (%.1f s of CPU, all threads)",
            group,
            time.perf_counter() - tic,
            time.process_time() - cpu,
        )
    out["eval_time_s"] = round(time.perf_counter() - start, 3)
    return {k: _finite_or_none(v) for k, v in out.items()}


class _Inputs:
    """Validated arrays plus the neighbour structures several groups share (built lazily, once)."""

    def __init__(
        self, embedding: Any, labels: Any, batches: Any, config: EvaluationConfig, seed: int
    ) -> None:
        self.config, self.seed = config, seed
        self.x = _matrix(embedding)
        self.n = len(self.x)
        names = _categories(labels, self.n, "labels", allow_missing=True)
        self.labelled = np.zeros(self.n, dtype=bool) if names is None else pd.notna(names)
        self.has_labels = bool(self.labelled.any())
        self.label_codes = _codes(names[self.labelled]) if self.has_labels else None
        self.n_labels = 0 if self.label_codes is None else int(self.label_codes.max()) + 1
        batch_names = _categories(batches, self.n, "batches", allow_missing=False)
        self.batch_codes = None if batch_names is None else _codes(batch_names)
        self.n_batches = 1 if self.batch_codes is None else int(self.batch_codes.max()) + 1
        self.has_batches = self.n_batches >= 2
        self._cache: dict[str, Any] = {}

    # ---- shared neighbour structures ---------------------------------------------------------
    def _cached(self, key: str, build: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def neighbours(self, cells: str) -> Neighbours:
        """One exact kNN search of the labelled cells (``cells="labelled"``) or of all cells,
        deep enough for both the kNN graph and LISI."""
        if cells == "labelled" and self.labelled.all():
            cells = "all"
        x = self.x if cells == "all" else self.x[self.labelled]
        k = max(self.config.n_neighbors - 1, self._lisi_k)
        return self._cached(f"neighbours_{cells}", lambda: Neighbours.search(x, k))

    @property
    def _lisi_k(self) -> int:
        return int(3 * self.config.lisi_perplexity)

    def graph(self) -> tuple[sp.csr_matrix, ig.Graph]:
        """kNN connectivities of the labelled cells and their igraph form."""

        def build() -> tuple[sp.csr_matrix, ig.Graph]:
            adjacency = self.neighbours("labelled").connectivities(self.config.n_neighbors)
            return adjacency, to_igraph(adjacency)

        return self._cached("graph", build)

    def lisi_knn(self, cells: str) -> tuple[np.ndarray, np.ndarray]:
        """LISI neighbourhoods (3 x perplexity nearest other cells)."""
        return self.neighbours(cells).without_self(self._lisi_k)

    # ---- metric groups -----------------------------------------------------------------------
    def clustering(self, rng: np.random.Generator) -> Metrics:
        if not self.has_labels:
            return dict.fromkeys(clustering_group.KEYS)
        _, graph = self.graph()
        return clustering_group.clustering_metrics(
            self.x[self.labelled], self.label_codes, graph, self.config, self.seed, rng
        )

    def label_structure(self, rng: np.random.Generator) -> Metrics:
        if not self.has_labels:
            return dict.fromkeys(label_group.KEYS)
        return label_group.label_structure_metrics(
            self.x[self.labelled], self.label_codes, self.lisi_knn("labelled"), self.config, rng
        )

    def batch_mixing(self, rng: np.random.Generator) -> Metrics:
        out: Metrics = dict.fromkeys(batch_group.KEYS)
        if not self.has_batches:
            return out
        out["ilisi"], out["ilisi_scaled"] = batch_group.ilisi(
            self.lisi_knn("all"), self.batch_codes, self.config.lisi_perplexity
        )
        if self.has_labels:
            x, labels, batches = (
                self.x[self.labelled],
                self.label_codes,
                self.batch_codes[self.labelled],
            )
            index = subsample(len(x), self.config.silhouette_max_cells, rng)
            out["silhouette_batch"] = batch_group.silhouette_batch(*take(index, x, labels, batches))
            out["graph_connectivity"] = batch_group.graph_connectivity(self.graph()[0], labels)
        return out

    def transfer(self, rng: np.random.Generator) -> Metrics:
        out: Metrics = dict.fromkeys(transfer_group.KEYS)
        if not self.has_labels:
            return out
        x, labels, k = self.x[self.labelled], self.label_codes, self.config.knn_classifier_k
        out["knn_f1"] = transfer_group.knn_f1_cv(x, labels, k, self.config.cv_folds, self.seed)
        if self.has_batches:
            out["knn_f1_batch"] = transfer_group.knn_f1_batch(
                x, labels, self.batch_codes[self.labelled], k
            )
        return out


def _modality(
    embeddings: Mapping[str, np.ndarray] | None, config: EvaluationConfig, rng: np.random.Generator
) -> Metrics:
    if not embeddings or len(embeddings) < 2:
        return {**dict.fromkeys(modality_group.KEYS), "modality_embeddings_absent": True}
    views = {
        m: _matrix(e, f"modality_embeddings[{m!r}]", allow_nan=True) for m, e in embeddings.items()
    }
    return {
        **modality_group.modality_metrics(views, config.modality_max_cells, rng),
        "modality_embeddings_absent": False,
    }


def _reconstruction(
    inputs: Mapping[str, np.ndarray] | None,
    reconstructions: Mapping[str, np.ndarray] | None,
    config: EvaluationConfig,
    rng: np.random.Generator,
) -> Metrics:
    if not reconstructions:
        return {"ors": None, "ors_subsampled_n": None, "reconstruction_absent": True}
    if not inputs:
        raise ValueError(
            "reconstructions were given without inputs; pass the preprocessed inputs too"
        )
    return {
        **reconstruction_metrics(inputs, reconstructions, config.reconstruction_max_cells, rng),
        "reconstruction_absent": False,
    }


# ---- input checks ------------------------------------------------------------------------------
def _matrix(values: Any, name: str = "embedding", allow_nan: bool = False) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 2 or len(x) < 3:
        raise ValueError(
            f"{name} must be a 2-D array [cells, dims] with at least 3 cells, got shape {x.shape}"
        )
    if not allow_nan and not np.isfinite(x).all():
        raise ValueError(
            f"{name} has {int((~np.isfinite(x)).sum())} non-finite values (NaN/inf): "
            "the model may have diverged; nothing to evaluate"
        )
    return x


def _categories(values: Any, n: int, name: str, allow_missing: bool) -> np.ndarray | None:
    """Object array of category names (missing as None), or None when ``values`` is None."""
    if values is None:
        return None
    series = pd.Series(np.asarray(values, dtype=object).ravel())
    if len(series) != n:
        raise ValueError(f"{name} has {len(series)} entries but the embedding has {n} cells")
    missing = series.isna()
    if missing.any() and not allow_missing:
        raise ValueError(
            f"{name} has {int(missing.sum())} missing entries; fill them (e.g. with 'unknown') "
            "or drop those cells"
        )
    return np.where(missing, None, series.astype(str)).astype(object)


def _codes(names: np.ndarray) -> np.ndarray:
    """Integer codes 0..c-1 of category names (sorted order)."""
    return np.unique(names.astype(str), return_inverse=True)[1].astype(np.int64)


def _finite_or_none(value: Any) -> Any:
    """NaN/inf floats become None (JSON has no NaN); numpy scalars become Python scalars."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
