"""A simulator of paired single-cell multi-omics data with known truth.

Cells belong to types; each type is a point in a low-dimensional space of *programs* and every
cell scatters around its type's point. Each modality reads the programs through its own loadings:

* RNA: negative-binomial (gamma-Poisson) counts with log-normal library sizes;
* ADT: Poisson counts of a few surface proteins, each cell's counts being a mix of a
  program-driven specific signal and an ambient background shared by all cells (CITE-seq-like);
* ATAC: sparse Poisson peak counts, most peaks closed, opening with the programs that drive
  them (Multiome-like), optionally binarised.

Batches add a per-feature log-fold shift (strength ``batch_effect``) and a library-size scale,
the two ways batches differ in real data. Everything is drawn from one ``numpy`` generator seeded
by ``seed``, cell chunk by cell chunk, so the result depends on the seed alone and 100,000 cells
never need more than one chunk of dense intermediates in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import scipy.sparse as sp

MODALITY_KINDS = ("rna", "adt", "atac")


@dataclass(frozen=True)
class SimulationParams:
    """Every size and strength of the simulation (see :func:`simulate_multiome`)."""

    n_cells: int = 3000
    n_types: int = 8
    modalities: tuple[str, ...] = ("rna", "adt")
    n_genes: int = 2000
    n_proteins: int = 25
    n_peaks: int = 5000
    n_batches: int = 1
    batch_effect: float = 0.5
    n_programs: int = 10
    type_separation: float = 1.5
    within_type_sd: float = 0.5
    type_balance: float = 5.0
    rna_library_mean: float = 3000.0
    rna_dispersion: float = 0.3
    adt_library_mean: float = 2000.0
    adt_ambient_fraction: float = 0.2
    atac_library_mean: float = 1500.0
    atac_binary: bool = False
    seed: int = 0
    chunk_size: int = 10_000
    extra: dict = field(default_factory=dict)

    def validate(self) -> None:
        positive = {
            "n_cells": self.n_cells,
            "n_types": self.n_types,
            "n_programs": self.n_programs,
            "n_batches": self.n_batches,
            "chunk_size": self.chunk_size,
        }
        for key, value in positive.items():
            if value < 1:
                raise ValueError(f"data.source.{key} must be >= 1, got {value}")
        if not self.modalities:
            raise ValueError("data.source.modalities must name at least one of rna, adt, atac")
        for m in self.modalities:
            if m not in MODALITY_KINDS:
                raise ValueError(
                    f"data.source.modalities: unknown modality {m!r}; choose from {MODALITY_KINDS}"
                )
        sizes = {"rna": self.n_genes, "adt": self.n_proteins, "atac": self.n_peaks}
        for m in self.modalities:
            if sizes[m] < 1:
                key = {"rna": "n_genes", "adt": "n_proteins", "atac": "n_peaks"}[m]
                raise ValueError(f"data.source.{key} must be >= 1 when {m} is simulated")
        for key in ("batch_effect", "within_type_sd", "adt_ambient_fraction", "rna_dispersion"):
            if getattr(self, key) < 0:
                raise ValueError(f"data.source.{key} must be >= 0, got {getattr(self, key)}")
        if not 0 <= self.adt_ambient_fraction < 1:
            raise ValueError("data.source.adt_ambient_fraction must be in [0, 1)")


def simulate_multiome(
    n_cells: int = 3000,
    n_types: int = 8,
    modalities: Sequence[str] = ("rna", "adt"),
    *,
    seed: int = 0,
    **kwargs,
) -> md.MuData:
    """Simulate paired multi-omics counts; returns a MuData with known truth.

    Args:
        n_cells: number of cells.
        n_types: number of cell types (each a latent program profile).
        modalities: any of "rna", "adt", "atac"; all are measured in every cell.
        seed: the only source of randomness: same seed, same data.
        **kwargs: any other :class:`SimulationParams` field (sizes, strengths, library sizes).

    Returns:
        MuData with one AnnData per modality (raw counts in ``X`` as CSR float32) and, in
        ``obs`` of the MuData and of each modality, ``cell_type`` and ``batch`` (categorical).
        ``obsm["X_programs"]`` holds each cell's true program activities; ``uns["simulation"]``
        the parameters.
    """
    params = SimulationParams(
        n_cells=n_cells, n_types=n_types, modalities=tuple(modalities), seed=seed, **kwargs
    )
    params.validate()
    rng = np.random.default_rng(params.seed)

    # Truth shared by all modalities: type profiles, cell types, batches, per-cell programs.
    type_profiles = rng.normal(
        0.0, params.type_separation, size=(params.n_types, params.n_programs)
    )
    proportions = rng.dirichlet(np.full(params.n_types, params.type_balance))
    cell_types = rng.choice(params.n_types, size=params.n_cells, p=proportions)
    batches = rng.integers(0, params.n_batches, size=params.n_cells)
    programs = type_profiles[cell_types] + rng.normal(
        0.0, params.within_type_sd, size=(params.n_cells, params.n_programs)
    )

    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical([f"type_{t}" for t in cell_types]),
            "batch": pd.Categorical([f"batch_{b}" for b in batches]),
        },
        index=pd.Index([f"cell_{i:07d}" for i in range(params.n_cells)], name="cell"),
    )
    mods = {}
    for modality in params.modalities:
        simulate = {"rna": _simulate_rna, "adt": _simulate_adt, "atac": _simulate_atac}[modality]
        counts, var_names = simulate(params, rng, programs, batches)
        var = pd.DataFrame(index=pd.Index(var_names, name="feature"))
        var["feature_type"] = modality
        mods[modality] = ad.AnnData(X=counts, obs=obs.copy(), var=var)

    mdata = md.MuData(mods)
    mdata.obs["cell_type"] = obs["cell_type"].values
    mdata.obs["batch"] = obs["batch"].values
    mdata.obsm["X_programs"] = programs.astype(np.float32)
    mdata.uns["simulation"] = {
        k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(params).items()
    }
    return mdata


def _chunks(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def _loadings(
    rng: np.random.Generator, n_programs: int, n_features: int, density: float
) -> np.ndarray:
    """Sparse program -> feature loadings: each feature responds to a few programs."""
    weights = rng.normal(0.0, 1.0, size=(n_programs, n_features))
    weights *= rng.random((n_programs, n_features)) < density
    return weights


def _library_sizes(
    rng: np.random.Generator, n: int, mean: float, batch_scale: np.ndarray
) -> np.ndarray:
    return mean * batch_scale * rng.lognormal(-0.125, 0.5, size=n)  # E[lognormal(-s^2/2, s)] = 1


def _batch_shifts(rng: np.random.Generator, params: SimulationParams, n_features: int):
    shift = rng.normal(0.0, params.batch_effect, size=(params.n_batches, n_features))
    scale = np.exp(rng.normal(0.0, params.batch_effect / 2, size=params.n_batches))
    if params.n_batches == 1:
        shift[:] = 0.0
        scale[:] = 1.0
    return shift, scale


def _softmax_rows(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True)
    return logits


def _simulate_rna(params, rng, programs, batches):
    g = params.n_genes
    baseline = rng.normal(0.0, 1.0, size=g)  # some genes are always higher than others
    loadings = _loadings(rng, params.n_programs, g, density=0.15)
    shift, scale = _batch_shifts(rng, params, g)
    library = _library_sizes(rng, params.n_cells, params.rna_library_mean, scale[batches])
    shape = 1.0 / max(params.rna_dispersion, 1e-8)
    blocks = []
    for rows in _chunks(params.n_cells, params.chunk_size):
        profile = _softmax_rows(baseline + programs[rows] @ loadings + shift[batches[rows]])
        mean = profile * library[rows, None]
        rate = rng.gamma(shape, mean / shape) if params.rna_dispersion > 0 else mean
        blocks.append(sp.csr_matrix(rng.poisson(rate).astype(np.float32)))
    return sp.vstack(blocks, format="csr"), [f"gene_{i:05d}" for i in range(g)]


def _simulate_adt(params, rng, programs, batches):
    p = params.n_proteins
    loadings = _loadings(rng, params.n_programs, p, density=0.4)
    ambient_profile = rng.dirichlet(np.ones(p))
    shift, scale = _batch_shifts(rng, params, p)
    library = _library_sizes(rng, params.n_cells, params.adt_library_mean, scale[batches])
    blocks = []
    for rows in _chunks(params.n_cells, params.chunk_size):
        specific = _softmax_rows(programs[rows] @ loadings + shift[batches[rows]])
        mix = (
            1 - params.adt_ambient_fraction
        ) * specific + params.adt_ambient_fraction * ambient_profile
        blocks.append(sp.csr_matrix(rng.poisson(mix * library[rows, None]).astype(np.float32)))
    return sp.vstack(blocks, format="csr"), [f"adt_{i:03d}" for i in range(p)]


def _simulate_atac(params, rng, programs, batches):
    k = params.n_peaks
    baseline = rng.normal(-1.0, 1.0, size=k)
    loadings = _loadings(rng, params.n_programs, k, density=0.05) * 2.0
    shift, scale = _batch_shifts(rng, params, k)
    library = _library_sizes(rng, params.n_cells, params.atac_library_mean, scale[batches])
    blocks = []
    for rows in _chunks(params.n_cells, params.chunk_size):
        accessibility = _softmax_rows(baseline + programs[rows] @ loadings + shift[batches[rows]])
        counts = rng.poisson(accessibility * library[rows, None])
        if params.atac_binary:
            counts = np.minimum(counts, 1)
        blocks.append(sp.csr_matrix(counts.astype(np.float32)))
    return sp.vstack(blocks, format="csr"), [f"peak_{i:06d}" for i in range(k)]


class SyntheticSource:
    """A data source for :class:`~scmint.data.datamodule.MultiOmicsDataModule` (Hydra target).

    Keeps the simulation parameters; ``load()`` simulates, ``fingerprint()`` identifies the result
    so preprocessed data can be cached.
    """

    def __init__(self, **params) -> None:
        self.params = SimulationParams(
            **{k: (tuple(v) if k == "modalities" else v) for k, v in params.items()}
        )
        self.params.validate()

    @property
    def name(self) -> str:
        return "synthetic"

    def prepare(self) -> None:
        """Nothing to download."""

    def fingerprint(self) -> str:
        return "synthetic:" + repr(sorted(asdict(self.params).items()))

    def load(self) -> md.MuData:
        p = asdict(self.params)
        return simulate_multiome(
            p.pop("n_cells"), p.pop("n_types"), p.pop("modalities"), seed=p.pop("seed"), **p
        )
