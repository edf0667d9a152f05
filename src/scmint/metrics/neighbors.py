"""Nearest-neighbour structures shared by several metrics, built once per evaluation.

One exact kNN search (scikit-learn) serves both the kNN graph (Leiden, graph connectivity) and the
LISI neighbourhoods. The graph's edge weights are scanpy's default (UMAP connectivities, the ones
``scanpy.pp.neighbors`` computes), so Leiden sees the graph scIB would build.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import igraph as ig
import numpy as np
import scipy.sparse as sp
from sklearn.neighbors import NearestNeighbors


@dataclass(frozen=True)
class Neighbours:
    """Exact Euclidean nearest neighbours of every cell; column 0 is the cell itself.

    Attributes:
        distances: [n, k + 1] distances, ascending.
        indices: [n, k + 1] neighbour rows.
    """

    distances: np.ndarray
    indices: np.ndarray

    @classmethod
    def search(cls, x: np.ndarray, k: int) -> Neighbours:
        """The ``k`` nearest other cells of every row of ``x`` (capped at n - 1), plus itself.

        With duplicated rows a query may list a twin before the cell itself; the cell is moved to
        column 0 so that "without self" means the same thing for every row.
        """
        n = len(x)
        k = min(k, n - 1)
        dist, idx = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
        is_self = idx == np.arange(n)[:, None]
        # A cell missing from its own list (many twins) loses its farthest neighbour instead.
        is_self[~is_self.any(axis=1), -1] = True
        others = ~is_self
        idx = np.column_stack([np.arange(n), idx[others].reshape(n, k)])
        dist = np.column_stack([np.zeros(n), dist[others].reshape(n, k)])
        return cls(dist, idx)

    @property
    def k(self) -> int:
        return self.indices.shape[1] - 1

    def without_self(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(distances, indices) of the ``k`` nearest other cells (at most those searched)."""
        k = min(k, self.k)
        return self.distances[:, 1 : k + 1], self.indices[:, 1 : k + 1]

    def connectivities(self, n_neighbors: int) -> sp.csr_matrix:
        """UMAP connectivities of the ``n_neighbors``-NN graph, the cell counted among its
        neighbours as in ``scanpy.pp.neighbors`` (see :func:`fuzzy_connectivities`)."""
        n_neighbors = min(n_neighbors, self.k + 1)
        return fuzzy_connectivities(self.distances[:, :n_neighbors], self.indices[:, :n_neighbors])


#: UMAP's constants: bisection tolerance and steps, and the floor of sigma relative to the mean
#: neighbour distance.
_TOLERANCE = 1e-5
_STEPS = 64
_MIN_SIGMA_SCALE = 1e-3


def fuzzy_connectivities(distances: np.ndarray, indices: np.ndarray) -> sp.csr_matrix:
    """UMAP's fuzzy simplicial set (McInnes et al. 2018), the edge weights of scanpy's kNN graph.

    ``distances``/``indices`` are [n, k] with the cell itself in column 0. For cell i, rho_i is
    the distance to its nearest other cell and sigma_i is found by bisection so that
    sum_j exp(-max(0, d_ij - rho_i) / sigma_i) = log2(k) over its k - 1 other neighbours; the
    directed weights w_ij = exp(-max(0, d_ij - rho_i) / sigma_i) are symmetrised by the fuzzy
    union w + w^T - w * w^T.

    The same numbers as ``umap.fuzzy_simplicial_set`` (checked in the tests), vectorised in
    numpy: umap's numba kernels cost 10-25 s of compilation in every new process, more than
    the whole graph at 30,000 cells.
    """
    n, k = indices.shape
    d = distances[:, 1:].astype(np.float32).astype(np.float64)
    positive = np.where(d > 0, d, np.inf)
    rho = np.where(np.isfinite(positive.min(axis=1)), positive.min(axis=1), 0.0)
    excess = np.maximum(d - rho[:, None], 0.0)
    target = np.log2(k)
    sigma, lo, hi = np.ones(n), np.zeros(n), np.full(n, np.inf)
    active = np.ones(n, dtype=bool)
    for _ in range(_STEPS):
        rows = np.flatnonzero(active)
        if not len(rows):
            break
        total = np.exp(-excess[rows] / sigma[rows, None]).sum(axis=1)
        active[rows[np.abs(total - target) < _TOLERANCE]] = False
        too_wide = active[rows] & (total > target)
        too_narrow = active[rows] & (total <= target)
        shrink, grow = rows[too_wide], rows[too_narrow]
        hi[shrink] = sigma[shrink]
        sigma[shrink] = (lo[shrink] + hi[shrink]) / 2
        lo[grow] = sigma[grow]
        sigma[grow] = np.where(np.isinf(hi[grow]), sigma[grow] * 2, (lo[grow] + hi[grow]) / 2)
    floor = _MIN_SIGMA_SCALE * np.where(rho > 0, distances.mean(axis=1), distances.mean())
    sigma = np.maximum(sigma, floor)
    weights = np.exp(-excess / sigma[:, None])
    directed = sp.csr_matrix(
        (weights.ravel(), (np.repeat(np.arange(n), k - 1), indices[:, 1:].ravel())), shape=(n, n)
    )
    directed.eliminate_zeros()
    union = directed + directed.T - directed.multiply(directed.T)
    union.eliminate_zeros()
    return sp.csr_matrix(union)


def to_igraph(adjacency: sp.spmatrix) -> ig.Graph:
    """Undirected weighted igraph graph of a symmetric sparse adjacency matrix."""
    upper = sp.triu(adjacency, k=1).tocoo()
    return ig.Graph(
        n=adjacency.shape[0],
        edges=np.column_stack([upper.row, upper.col]),
        directed=False,
        edge_attrs={"weight": upper.data.astype(np.float64)},
    )


@contextmanager
def igraph_seed(seed: int) -> Iterator[None]:
    """Seed igraph's random number generator for a block, then give it back Python's ``random``.

    igraph draws from the global ``random`` module by default; a private generator keeps
    Leiden's result a function of ``seed`` alone and leaves the caller's random state untouched.
    """
    ig.set_random_number_generator(random.Random(seed))
    try:
        yield
    finally:
        ig.set_random_number_generator(random)
