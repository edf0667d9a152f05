"""Per-modality preprocessing recipes: named steps applied in order to one AnnData.

A recipe is a list of step dicts, e.g. ``[{step: normalize_total, target_sum: 1e4}, {step: log1p}]``,
as written in ``conf/preprocess/*.yaml``. Steps are plain functions ``(AnnData, **options) -> AnnData``
registered in :data:`STEPS`; scanpy (or scikit-learn) does the work wherever it has the step.

A final ``scale`` on a sparse matrix is *deferred*: its per-feature mean and standard deviation are
stored in ``var`` (:data:`SCALE_MEAN`, :data:`SCALE_STD`) and applied a batch at a time by the
cell store, because z-scoring densifies: 1,000,000 cells x 2,000 genes is 8 GB dense but a few
hundred MB sparse. The numbers are those of ``scanpy.pp.scale`` (unbiased variance, zero-variance
features divided by 1, clipping at +/- ``max_value``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import anndata as ad
import numpy as np
import scanpy as sc
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.utils.sparsefuncs import mean_variance_axis

from scmint.data.validation import DataError, check_nonnegative, warn_if_not_counts

log = logging.getLogger(__name__)

Step = Callable[..., ad.AnnData]
STEPS: dict[str, Step] = {}

#: ``var`` columns / ``uns`` key of a deferred final z-score (see the module docstring).
SCALE_MEAN, SCALE_STD, SCALE_CLIP = (
    "scmint_scale_mean",
    "scmint_scale_std",
    "scmint_scale_max_value",
)


def step(name: str) -> Callable[[Step], Step]:
    """Register a preprocessing step under ``name``."""

    def register(fn: Step) -> Step:
        STEPS[name] = fn
        return fn

    return register


@step("filter_features")
def filter_features(
    adata: ad.AnnData,
    min_cells: int | None = None,
    min_counts: float | None = None,
    max_cell_fraction: float | None = None,
) -> ad.AnnData:
    """Keep features detected in >= ``min_cells`` cells, with >= ``min_counts`` total counts and
    detected in at most ``max_cell_fraction`` of cells (scanpy's ``filter_genes``, one call each)."""
    n = adata.n_vars
    if min_cells is not None:
        sc.pp.filter_genes(adata, min_cells=min_cells)
    if min_counts is not None:
        sc.pp.filter_genes(adata, min_counts=min_counts)
    if max_cell_fraction is not None:
        sc.pp.filter_genes(adata, max_cells=int(np.floor(max_cell_fraction * adata.n_obs)))
    if adata.n_vars == 0:
        raise DataError(
            f"filter_features(min_cells={min_cells}, min_counts={min_counts}, "
            f"max_cell_fraction={max_cell_fraction}) removed all {n} features"
        )
    log.info("filter_features: kept %d of %d features", adata.n_vars, n)
    return adata


@step("normalize_total")
def normalize_total(adata: ad.AnnData, target_sum: float = 1e4) -> ad.AnnData:
    """Scale each cell to ``target_sum`` total counts."""
    sc.pp.normalize_total(adata, target_sum=target_sum)
    return adata


@step("log1p")
def log1p(adata: ad.AnnData) -> ad.AnnData:
    sc.pp.log1p(adata)
    return adata


@step("highly_variable_genes")
def highly_variable_genes(
    adata: ad.AnnData, n_top: int | None = 2000, flavor: str = "seurat", **kwargs: Any
) -> ad.AnnData:
    """Keep the highly variable features (``n_top`` of them, or by the cut-offs in ``kwargs``,
    e.g. ``min_mean``/``max_mean``/``min_disp`` when ``n_top`` is None); with fewer features than
    ``n_top``, keep all (logged)."""
    if n_top is not None and adata.n_vars <= n_top:
        log.info("highly_variable_genes: %d features <= n_top=%d, keeping all", adata.n_vars, n_top)
        return adata
    sc.pp.highly_variable_genes(adata, n_top_genes=n_top, flavor=flavor, **kwargs)
    keep = adata.var["highly_variable"].to_numpy()
    if not keep.any():
        raise DataError(f"highly_variable_genes({kwargs}) selected no feature of {adata.n_vars}")
    log.info("highly_variable_genes: kept %d of %d features", int(keep.sum()), adata.n_vars)
    return adata[:, keep].copy()


@step("scale")
def scale(adata: ad.AnnData, max_value: float | None = None) -> ad.AnnData:
    """Per-feature z-score (zero mean, unit variance), optionally clipped at +/- ``max_value``."""
    sc.pp.scale(adata, max_value=max_value)
    return adata


@step("clr")
def clr(adata: ad.AnnData, axis: int = 1) -> ad.AnnData:
    """Centred log-ratio as Seurat and muon define it: ``log1p(x / g)`` with ``g`` the geometric
    mean ``exp(mean(log1p(x)))`` of each cell (``axis=1``) or of each feature (``axis=0``)."""
    x = adata.X.toarray() if sp.issparse(adata.X) else np.asarray(adata.X, dtype=np.float64)
    g = np.exp(np.log1p(x).mean(axis=axis, keepdims=True))
    adata.X = np.log1p(x / g).astype(np.float32)
    return adata


@step("tfidf")
def tfidf(
    adata: ad.AnnData, norm: str | None = None, smooth_idf: bool = True, sublinear_tf: bool = False
) -> ad.AnnData:
    """TF-IDF of peak counts with scikit-learn's ``TfidfTransformer`` (``idf = ln((1+n)/(1+df)) + 1``).

    ``norm`` None keeps the raw TF x IDF (UMINT's recipe normalises per cell afterwards); "l2" is
    scikit-learn's default (as in SMILE's tutorials). The IDF is kept in ``var["idf"]``.
    """
    transformer = TfidfTransformer(norm=norm, smooth_idf=smooth_idf, sublinear_tf=sublinear_tf)
    x = transformer.fit_transform(sp.csr_matrix(adata.X))
    adata.X = x.astype(np.float32)
    adata.var["idf"] = transformer.idf_
    return adata


@step("top_idf")
def top_idf(adata: ad.AnnData, fraction: float = 0.1) -> ad.AnnData:
    """Keep the ``fraction`` of features with the highest IDF (needs a ``tfidf`` step before)."""
    if "idf" not in adata.var:
        raise DataError("top_idf needs var['idf']: put a `tfidf` step before it in the recipe")
    k = max(1, int(np.ceil(fraction * adata.n_vars)))
    keep = np.argsort(-adata.var["idf"].to_numpy(), kind="stable")[:k]
    log.info("top_idf: kept %d of %d features", k, adata.n_vars)
    return adata[:, np.sort(keep)].copy()


#: Steps that take logs of counts: negative input is refused before they run.
_NEEDS_NONNEGATIVE = {"normalize_total", "log1p", "clr", "tfidf"}
#: Steps meant for raw counts: non-integer input is logged (it may be intended).
_EXPECTS_COUNTS = {"normalize_total", "clr", "tfidf", "filter_features"}


def apply_recipe(
    adata: ad.AnnData,
    steps: Sequence[Mapping[str, Any]],
    modality: str = "",
    *,
    copy: bool = True,
    defer_final_scale: bool = True,
) -> ad.AnnData:
    """Apply ``steps`` in order to ``adata`` (to a copy unless ``copy=False``).

    With ``defer_final_scale``, a last ``scale`` step on a sparse matrix is recorded in ``var``
    instead of densifying (see :func:`pending_scale`).
    """
    out = adata.copy() if copy else adata
    steps = [dict(s) for s in steps]
    for i, options in enumerate(steps):
        name = options.pop("step", None)
        if name not in STEPS:
            raise ValueError(
                f"preprocess.{modality}: unknown step {name!r}; available: {sorted(STEPS)}"
            )
        if name in _NEEDS_NONNEGATIVE:
            check_nonnegative(out, modality, name)
        if name in _EXPECTS_COUNTS and i == 0:
            warn_if_not_counts(out, modality, name)
        if name == "scale" and i == len(steps) - 1 and defer_final_scale and sp.issparse(out.X):
            out = _defer_scale(out, **options)
            continue
        try:
            out = STEPS[name](out, **options)
        except TypeError as err:
            raise ValueError(
                f"preprocess.{modality}: bad options for step {name!r}: {err}"
            ) from err
    return out


def _defer_scale(adata: ad.AnnData, max_value: float | None = None) -> ad.AnnData:
    mean, var = mean_variance_axis(sp.csr_matrix(adata.X), axis=0)  # float64 accumulators
    mean, var = mean.astype(np.float64), var.astype(np.float64)
    n = adata.n_obs
    if n > 1:
        var = var * n / (n - 1)  # scanpy's (R's) unbiased variance
    std = np.sqrt(var)
    std[std == 0] = 1.0
    adata.var[SCALE_MEAN] = mean
    adata.var[SCALE_STD] = std
    adata.uns[SCALE_CLIP] = float(max_value) if max_value is not None else -1.0
    return adata


def pending_scale(adata: ad.AnnData) -> tuple[np.ndarray, np.ndarray, float | None] | None:
    """(mean, std, max_value) of a deferred z-score, or None when ``X`` is final."""
    if SCALE_MEAN not in adata.var:
        return None
    clip_at = float(adata.uns.get(SCALE_CLIP, -1.0))
    return (
        adata.var[SCALE_MEAN].to_numpy(np.float32),
        adata.var[SCALE_STD].to_numpy(np.float32),
        clip_at if clip_at >= 0 else None,
    )
