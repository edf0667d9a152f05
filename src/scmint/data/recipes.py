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
import pandas as pd
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
    adata: ad.AnnData,
    flavor: str = "sklearn",
    norm: str | None = None,
    smooth_idf: bool | None = None,
    sublinear_tf: bool | None = None,
    log_tf: bool | None = None,
    log_idf: bool | None = None,
    log_tfidf: bool | None = None,
    scale_factor: float | None = None,
) -> ad.AnnData:
    """TF-IDF of peak counts, in one of two flavours; the IDF is kept in ``var["idf"]``.

    ``flavor="sklearn"`` (default): scikit-learn's ``TfidfTransformer``, ``tf = counts``,
    ``idf = ln((1+n)/(1+df)) + 1`` (``smooth_idf``, default True; ``sublinear_tf``, default False).
    ``norm`` None keeps the raw TF x IDF; "l2" is scikit-learn's default (as in SMILE's tutorials).

    ``flavor="muon"``: ``muon.atac.pp.tfidf`` (muon 0.1.9), computed here without muon:
    ``tf = counts / cell total``, times ``scale_factor`` (default 1e4; 0 or 1: no scaling), then
    ``log1p`` if ``log_tf`` (default True); ``idf = n_cells / peak total``, ``log1p`` if
    ``log_idf`` (default True); ``log_tfidf`` (default False; only with both logs off) takes
    ``log1p`` of the product. Defaults give muon's ``log(1 + 1e4 TF) x log(1 + IDF)``, the
    transform of the UMINT authors' ATAC preprocessing. Cells or peaks with no counts give 0
    (muon: 0 in X; its IDF is inf for a peak with no counts, here 0).

    Options of the other flavour are refused rather than ignored.
    """
    if flavor == "sklearn":
        _refuse_options(
            "sklearn",
            log_tf=log_tf,
            log_idf=log_idf,
            log_tfidf=log_tfidf,
            scale_factor=scale_factor,
        )
        transformer = TfidfTransformer(
            norm=norm,
            smooth_idf=True if smooth_idf is None else smooth_idf,
            sublinear_tf=False if sublinear_tf is None else sublinear_tf,
        )
        x = transformer.fit_transform(sp.csr_matrix(adata.X))
        idf = transformer.idf_
    elif flavor == "muon":
        _refuse_options("muon", norm=norm, smooth_idf=smooth_idf, sublinear_tf=sublinear_tf)
        x, idf = _tfidf_muon(
            adata.X,
            log_tf=True if log_tf is None else log_tf,
            log_idf=True if log_idf is None else log_idf,
            log_tfidf=False if log_tfidf is None else log_tfidf,
            scale_factor=1e4 if scale_factor is None else scale_factor,
        )
    else:
        raise ValueError(f"tfidf: unknown flavor {flavor!r}; choose 'sklearn' or 'muon'")
    adata.X = x.astype(np.float32)
    adata.var["idf"] = idf
    return adata


def _refuse_options(flavor: str, **options: Any) -> None:
    given = sorted(k for k, v in options.items() if v is not None)
    if given:
        raise ValueError(f"tfidf(flavor={flavor!r}) does not take {given} (the other flavor's)")


def _tfidf_muon(
    x: Any, *, log_tf: bool, log_idf: bool, log_tfidf: bool, scale_factor: float
) -> tuple[sp.csr_matrix, np.ndarray]:
    """muon's TF-IDF (see :func:`tfidf`) in float64, sparse throughout."""
    if log_tfidf and (log_tf or log_idf):
        raise ValueError("tfidf(flavor='muon'): log_tfidf needs log_tf and log_idf false (as muon)")
    counts = sp.csr_matrix(x, dtype=np.float64)
    cell_total = np.asarray(counts.sum(axis=1)).ravel()
    peak_total = np.asarray(counts.sum(axis=0)).ravel()
    inv_total = np.divide(1.0, cell_total, out=np.zeros_like(cell_total), where=cell_total > 0)
    idf = np.divide(
        counts.shape[0], peak_total, out=np.zeros_like(peak_total), where=peak_total > 0
    )
    tf = sp.csr_matrix(sp.diags(inv_total) @ counts)
    if scale_factor not in (0, 1):  # muon skips 0 and 1 alike
        tf.data *= float(scale_factor)
    if log_tf:
        tf.data = np.log1p(tf.data)  # log1p(0) = 0: sparsity kept
    if log_idf:
        idf = np.log1p(idf)
    out = sp.csr_matrix(tf @ sp.diags(idf))
    if log_tfidf:
        out.data = np.log1p(out.data)
    out.eliminate_zeros()
    return out, idf


@step("top_idf")
def top_idf(adata: ad.AnnData, fraction: float = 0.1) -> ad.AnnData:
    """Keep the ``fraction`` of features with the highest IDF (needs a ``tfidf`` step before)."""
    if "idf" not in adata.var:
        raise DataError("top_idf needs var['idf']: put a `tfidf` step before it in the recipe")
    k = max(1, int(np.ceil(fraction * adata.n_vars)))
    keep = np.argsort(-adata.var["idf"].to_numpy(), kind="stable")[:k]
    log.info("top_idf: kept %d of %d features", k, adata.n_vars)
    return adata[:, np.sort(keep)].copy()


@step("combat")
def combat(adata: ad.AnnData, key: str = "batch", modality: str = "") -> ad.AnnData:
    """Remove batch effects with ComBat (``scanpy.pp.combat``: per-feature location/scale
    adjustment with empirical-Bayes shrinkage) on log-scale data, e.g. the log-normalised RNA or
    the CLR ADT, before the z-score.

    The batches are ``obs[key]``: the ``batch`` column that :class:`~scmint.data.MultiOmicsDataModule`
    fills from the dataset's ``data.batch_key``. Refused (naming the modality and the column) when
    the column is absent, has missing values, or holds a single batch. Features constant within
    some batch (ComBat would divide by their zero variance) pass through uncorrected (logged). The
    result is dense (ComBat densifies), float32.
    """
    where = f"preprocess.{modality}: step 'combat'" if modality else "step 'combat'"
    if key not in adata.obs.columns:
        raise DataError(
            f"{where} needs the cells' batches in obs[{key!r}], but modality "
            f"{modality or '?'!r} has no {key!r} column (columns: {list(adata.obs.columns)}); set "
            f"data.batch_key to the dataset's batch column, or drop 'combat' from the recipe"
        )
    batches = adata.obs[key]
    if batches.isna().any():
        raise DataError(
            f"{where}: obs[{key!r}] of modality {modality or '?'!r} has no batch for "
            f"{int(batches.isna().sum())} of {adata.n_obs} cells; ComBat needs one for every cell"
        )
    labels = batches.astype(str)
    names = pd.unique(labels)
    if len(names) < 2:
        raise DataError(
            f"{where}: obs[{key!r}] of modality {modality or '?'!r} holds a single batch "
            f"({', '.join(map(repr, names)) or 'no cells'}); there is no batch effect to remove: "
            f"drop 'combat' from the recipe (e.g. use the recipe without '_combat')"
        )
    x = adata.X.toarray() if sp.issparse(adata.X) else np.asarray(adata.X)
    x = x.astype(np.float64, copy=True)
    categories = pd.Categorical(labels.to_numpy())
    codes = categories.codes
    # ComBat standardises each feature by its pooled and per-batch variances: a feature constant
    # within any batch would give NaN, so those stay as they are.
    ok = np.ones(adata.n_vars, dtype=bool)
    for b in np.unique(codes):
        ok &= x[codes == b].var(axis=0) > 0
    if ok.any():
        obs = pd.DataFrame({key: categories}, index=adata.obs_names)
        sub = ad.AnnData(x[:, ok], obs=obs)
        sc.pp.combat(sub, key=key)
        x[:, ok] = sub.X
    if not ok.all():
        log.info(
            "combat (%s): %d of %d features constant within a batch, left uncorrected",
            modality or "?",
            int((~ok).sum()),
            adata.n_vars,
        )
    if not np.isfinite(x).all():
        raise DataError(f"{where}: ComBat produced non-finite values for modality {modality!r}")
    adata.X = x.astype(np.float32)
    log.info(
        "combat (%s): corrected %d batches over %d features",
        modality or "?",
        len(names),
        int(ok.sum()),
    )
    return adata


#: Steps that take logs of counts: negative input is refused before they run.
_NEEDS_NONNEGATIVE = {"normalize_total", "log1p", "clr", "tfidf"}
#: Steps meant for raw counts: non-integer input is logged (it may be intended).
_EXPECTS_COUNTS = {"normalize_total", "clr", "tfidf", "filter_features"}
#: Steps told which modality they process (for their error messages).
_TAKES_MODALITY = {"combat"}


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
        if name in _TAKES_MODALITY:
            options.setdefault("modality", modality)
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
