"""Modality mixing of paired methods: do a cell's per-modality embeddings land together?"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations

import numpy as np
from sklearn.metrics import silhouette_score
from sklearn.metrics.pairwise import euclidean_distances

from scmint.metrics.sampling import subsample

#: Every key this group writes (all None without per-modality embeddings).
KEYS = ("silhouette_modality", "foscttm", "modality_subsampled_n")

#: Rows per block of the FOSCTTM distance computation (bounds memory at ~block x n floats).
_BLOCK = 2048


def silhouette_modality(embeddings: Mapping[str, np.ndarray]) -> float:
    """Silhouette of the stacked per-modality embeddings with the modality as the label.

    Near 0 = modalities mixed; near 1 = each modality in its own region (not integrated).
    """
    stacked = np.concatenate([np.asarray(e) for e in embeddings.values()])
    which = np.repeat(np.arange(len(embeddings)), [len(e) for e in embeddings.values()])
    return float(silhouette_score(stacked, which))


def foscttm_one_way(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per cell i: the fraction of the other n - 1 cells j whose b_j is closer to a_i than b_i."""
    n = len(a)
    fractions = np.empty(n)
    for start in range(0, n, _BLOCK):
        stop = min(start + _BLOCK, n)
        d = euclidean_distances(a[start:stop], b, squared=True)
        rows = np.arange(stop - start)
        true = d[rows, np.arange(start, stop)]
        fractions[start:stop] = (d < true[:, None]).sum(axis=1) / (n - 1)
    return fractions


def foscttm(embeddings: Mapping[str, np.ndarray]) -> float:
    """Fraction of samples closer than the true match (Liu et al. 2019), averaged over both
    directions of every pair of modalities. 0 = every cell's nearest cross-modal neighbour is
    itself; about 0.5 = no better than random."""
    values = [
        np.mean(
            [
                foscttm_one_way(embeddings[m1], embeddings[m2]).mean(),
                foscttm_one_way(embeddings[m2], embeddings[m1]).mean(),
            ]
        )
        for m1, m2 in combinations(embeddings, 2)
    ]
    return float(np.mean(values))


def modality_metrics(
    embeddings: Mapping[str, np.ndarray], max_cells: int | None, rng: np.random.Generator
) -> dict[str, float | int | None]:
    """silhouette_modality and FOSCTTM on the cells present in every modality.

    A row containing NaN marks a cell without that modality (partially paired data). Both metrics
    are O(n^2): above ``max_cells`` paired cells a uniform sample of that many is used.
    """
    present = np.logical_and.reduce([np.isfinite(e).all(axis=1) for e in embeddings.values()])
    cells = np.flatnonzero(present)
    index = subsample(len(cells), max_cells, rng)
    if index is not None:
        cells = cells[index]
    if len(embeddings) < 2 or len(cells) < 3:
        return dict.fromkeys(KEYS)
    views = {m: np.asarray(e)[cells] for m, e in embeddings.items()}
    return {
        "silhouette_modality": silhouette_modality(views),
        "foscttm": foscttm(views),
        "modality_subsampled_n": None if index is None else len(cells),
    }
