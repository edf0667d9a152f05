"""Readers: every supported file layout in, one :class:`mudata.MuData` out.

Supported layouts (``format`` names in brackets; ``auto`` picks by extension):

* one ``.h5mu`` file [h5mu]: modalities and pairing (``obsmap``) as stored;
* one ``.h5ad`` per modality [h5ad], paired by ``obs_names`` (cells missing from some files are
  dropped with a warning; no shared name at all is an error);
* one ``.h5ad`` holding several modalities [h5ad with ``slots``]: ``X``, a layer or an ``obsm``
  matrix each become a modality (e.g. SNARE-seq: RNA in ``X``, ATAC in ``obsm["X_atac_SCOT"]``);
* a 10x Genomics ``filtered_feature_bc_matrix.h5`` [10x_h5] or its Matrix Market folder [mtx],
  split by feature type (Gene Expression -> rna, Antibody Capture -> adt, Peaks -> atac);
* GEO-style text matrices [csv], features in rows and cells in columns, optionally gzipped.

scanpy/anndata/mudata do the parsing wherever they have a reader; what is added here is
pairing, modality naming, layer choice and errors that name the file. Matrices come out as CSR
float32 (row gathers are what the data module does) and the input files are only ever read.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp

from scmint.data.validation import DataError, pair_by_obs_names, require_file

log = logging.getLogger(__name__)

#: 10x feature types -> scmint modality names.
FEATURE_TYPES = {"Gene Expression": "rna", "Antibody Capture": "adt", "Peaks": "atac"}

#: Standard obs columns every dataset maps its own label/batch columns onto.
LABEL_COLUMN = "cell_type"
BATCH_COLUMN = "batch"


def mudata(mods: Mapping[str, ad.AnnData]) -> md.MuData:
    """A MuData of ``mods``. Features may share names across modalities (the CD4 gene and the CD4
    protein): features are always addressed within their modality, so mudata's warning is noise."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="var_names are not unique")
        return md.MuData(dict(mods))


def read_h5mu(path: str | Path, backed: bool = False) -> md.MuData:
    """Read an .h5mu file (see :func:`mudata`)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="var_names are not unique")
        return md.read_h5mu(path, backed=backed)


def detect_format(path: str | Path) -> str:
    """The reader for a path, from its extension (or folder contents)."""
    p = Path(path)
    name = p.name.lower()
    if p.is_dir():
        if any(p.glob("matrix.mtx*")) or any(p.glob("*matrix.mtx*")):
            return "mtx"
        raise DataError(
            f"{p} is a folder without a matrix.mtx[.gz]; expected a 10x Matrix Market folder"
        )
    for suffix, fmt in ((".h5mu", "h5mu"), (".h5ad", "h5ad"), (".h5", "10x_h5")):
        if name.endswith(suffix):
            return fmt
    if name.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".txt.gz")):
        return "csv"
    raise DataError(
        f"cannot tell the format of {p}; name it .h5mu/.h5ad/.h5/.csv[.gz]/.tsv[.gz] "
        f"or set data.source.format"
    )


def read_dataset(
    path: str | Path | None = None,
    files: Mapping[str, str | Path] | None = None,
    *,
    format: str = "auto",
    slots: Mapping[str, str] | None = None,
    feature_types: Mapping[str, str] | None = None,
    layers: Mapping[str, str] | None = None,
    modality: str = "rna",
    label_key: str | None = None,
    batch_key: str | None = None,
) -> md.MuData:
    """Read one dataset from ``path`` (one file or folder) or ``files`` (one per modality).

    Args:
        path: an .h5mu, .h5ad, 10x .h5, Matrix Market folder or text matrix.
        files: modality -> file, each read on its own and paired by cell name.
        format: reader name (see the module docstring) or "auto".
        slots: for a single .h5ad: modality -> "X", "layers/<key>" or "obsm/<key>".
        feature_types: for 10x input: modality -> 10x feature type (default :data:`FEATURE_TYPES`).
        layers: modality -> layer whose values replace ``X`` (e.g. raw counts in "counts").
        modality: name of the single modality of a one-matrix file (.h5ad without ``slots``, csv).
        label_key, batch_key: obs columns copied to ``cell_type`` / ``batch`` (see :func:`map_obs`).
    """
    if (path is None) == (files is None):
        raise DataError(
            "data.source: give exactly one of `path` (one file) or `files` (one per modality)"
        )
    if files is not None:
        mods, origins = {}, {}
        for m, f in files.items():
            p = require_file(f, f"data.source.files.{m}")
            fmt = detect_format(p) if format == "auto" else format
            mods[m] = _read_one_modality(p, fmt, m)
            origins[m] = str(p)
        mods = pair_by_obs_names(mods, origins)
        mdata = mudata(mods)
    else:
        p = require_file(path, "data.source.path")
        fmt = detect_format(p) if format == "auto" else format
        mdata = _read_guarded(p, fmt, lambda: _read_path(p, fmt, slots, feature_types, modality))
        origins = {m: str(p) for m in mdata.mod}
    for m, layer in (layers or {}).items():
        _use_layer(mdata, m, layer, origins.get(m, "?"))
    for adata in mdata.mod.values():
        adata.X = as_csr32(adata.X)
    lift_obs(mdata)
    if label_key is not None or batch_key is not None:
        map_obs(mdata, label_key, batch_key)
    return mdata


def _read_path(p: Path, fmt: str, slots, feature_types, modality: str) -> md.MuData:
    if fmt == "h5mu":
        return read_h5mu(p)
    if fmt == "h5ad":
        return split_slots(ad.read_h5ad(p), slots or {modality: "X"}, str(p))
    if fmt == "10x_h5":
        return split_feature_types(sc.read_10x_h5(p, gex_only=False), feature_types, str(p))
    if fmt == "mtx":
        return split_feature_types(sc.read_10x_mtx(p, gex_only=False), feature_types, str(p))
    if fmt == "csv":
        return mudata({modality: read_text_matrix(p)})
    raise DataError(
        f"data.source.format: unknown format {fmt!r}; choose auto, h5mu, h5ad, 10x_h5, mtx or csv"
    )


def _read_one_modality(p: Path, fmt: str, modality: str) -> ad.AnnData:
    """One file that holds one modality (a whole 10x file is one modality here)."""

    def read() -> ad.AnnData:
        if fmt == "h5ad":
            return ad.read_h5ad(p)
        if fmt == "csv":
            return read_text_matrix(p)
        if fmt == "10x_h5":
            return sc.read_10x_h5(p, gex_only=False)
        if fmt == "mtx":
            return sc.read_10x_mtx(p, gex_only=False)
        raise DataError(
            f"data.source.files.{modality}: format {fmt!r} holds more than one modality; use `path`"
        )

    adata = _read_guarded(p, fmt, read)
    adata.var_names_make_unique()
    return adata


def _read_guarded(p: Path, fmt: str, read: Callable):
    """Run a reader; turn the low-level errors of a damaged file into one clear message."""
    try:
        return read()
    except DataError:
        raise
    except Exception as err:  # h5py/zlib/pandas raise many types for one cause: a bad file
        raise DataError(
            f"could not read {p} as {fmt}: {type(err).__name__}: {err}. The file may be truncated "
            f"or corrupt (re-download or re-copy it), or not in the {fmt} format (set data.source.format)"
        ) from err


def read_text_matrix(path: str | Path, chunk_rows: int = 2000) -> ad.AnnData:
    """A GEO-style text matrix: features in rows, cells in columns, feature names first.

    Read in chunks of rows with pandas' C parser and stored sparse, so a 30,000-gene x 30,000-cell
    file never exists densely in memory.
    """
    p = Path(path)
    sep = "," if ".csv" in p.name.lower() else "\t"
    blocks, features = [], []
    cells = None
    for chunk in pd.read_csv(p, sep=sep, index_col=0, chunksize=chunk_rows):
        if cells is None:
            cells = chunk.columns.astype(str)
        features.extend(chunk.index.astype(str))
        blocks.append(sp.csr_matrix(chunk.to_numpy(dtype=np.float32)))
    if cells is None or not blocks:
        raise DataError(f"{p} holds no matrix (expected features in rows, cells in columns)")
    x = sp.vstack(blocks, format="csr").T.tocsr()  # cells x features
    adata = ad.AnnData(
        X=x, obs=pd.DataFrame(index=pd.Index(cells)), var=pd.DataFrame(index=pd.Index(features))
    )
    adata.var_names_make_unique()
    return adata


def split_feature_types(
    adata: ad.AnnData, feature_types: Mapping[str, str] | None, origin: str
) -> md.MuData:
    """Split a 10x matrix into modalities by its ``var["feature_types"]``."""
    adata.var_names_make_unique()
    wanted = dict(feature_types) if feature_types else {v: k for k, v in FEATURE_TYPES.items()}
    present = adata.var["feature_types"].astype(str) if "feature_types" in adata.var else None
    if present is None:
        return mudata({next(iter(wanted)): adata})
    mods = {
        m: adata[:, (present == t).to_numpy()].copy()
        for m, t in wanted.items()
        if (present == t).any()
    }
    if not mods:
        raise DataError(
            f"{origin}: none of the feature types {sorted(wanted.values())} found "
            f"(the file has {sorted(present.unique())}); set data.source.feature_types"
        )
    return mudata(mods)


def split_slots(adata: ad.AnnData, slots: Mapping[str, str], origin: str) -> md.MuData:
    """Build modalities from slots of one AnnData: ``X``, ``layers/<key>`` or ``obsm/<key>``."""
    mods = {}
    for m, slot in slots.items():
        kind, _, key = slot.partition("/")
        if kind == "X":
            mods[m] = ad.AnnData(X=adata.X, obs=adata.obs, var=adata.var, layers=dict(adata.layers))
        elif kind == "layers" and key in adata.layers:
            mods[m] = ad.AnnData(X=adata.layers[key], obs=adata.obs, var=adata.var)
        elif kind == "obsm" and key in adata.obsm:
            x = adata.obsm[key]
            x = x.to_numpy() if isinstance(x, pd.DataFrame) else x
            var = pd.DataFrame(index=pd.Index([f"{key}_{i}" for i in range(x.shape[1])]))
            mods[m] = ad.AnnData(X=x, obs=adata.obs, var=var)
        else:
            available = (
                ["X"] + [f"layers/{k}" for k in adata.layers] + [f"obsm/{k}" for k in adata.obsm]
            )
            raise DataError(
                f"data.source.slots.{m}: {slot!r} not found in {origin}; available: {available}"
            )
    return mudata(mods)


def _use_layer(mdata: md.MuData, modality: str, layer: str, origin: str) -> None:
    if modality not in mdata.mod:
        raise DataError(
            f"data.source.layers: no modality {modality!r} in {origin} (it has {list(mdata.mod)})"
        )
    adata = mdata.mod[modality]
    if layer not in adata.layers:
        raise DataError(
            f"data.source.layers.{modality}: layer {layer!r} not in modality {modality!r} of {origin} "
            f"(layers: {list(adata.layers)})"
        )
    adata.X = adata.layers[layer]


def as_csr32(x):
    """CSR float32 for sparse input, C-contiguous float32 for dense (row gathers are cheap on both)."""
    if sp.issparse(x):
        x = sp.csr_matrix(x)
        return x if x.dtype == np.float32 else x.astype(np.float32)
    return np.ascontiguousarray(x, dtype=np.float32)


def lift_obs(mdata: md.MuData) -> None:
    """Copy every modality's obs columns into the MuData's obs (first modality wins a name).

    Paired files each carry the cell metadata; the data module reads labels from the MuData's obs.
    A column missing for some cells (a cell absent from the modality that has it) becomes NaN.
    """
    obs = mdata.obs
    for adata in mdata.mod.values():
        for col in adata.obs.columns:
            values = adata.obs[col].reindex(obs.index)
            if col not in obs.columns:
                obs[col] = values
            elif obs[col].isna().any():
                obs[col] = obs[col].astype(object).where(obs[col].notna(), values.astype(object))


def map_obs(mdata: md.MuData, label_key: str | None, batch_key: str | None) -> tuple[bool, bool]:
    """Copy a dataset's own label/batch columns to ``cell_type`` / ``batch`` in ``mdata.obs``.

    A key may name a MuData obs column or ``"<modality>:<column>"``. A missing label column is not
    an error (training never reads labels; evaluation reports them as absent). Returns whether
    labels and batches were found.
    """
    found = []
    for key, target in ((label_key, LABEL_COLUMN), (batch_key, BATCH_COLUMN)):
        column = _find_column(mdata, key) if key else None
        if column is not None:
            mdata.obs[target] = pd.Categorical(column.astype(object).where(column.notna(), None))
        elif key:
            consequence = (
                "training runs; evaluation will report labels as absent"
                if target == LABEL_COLUMN
                else "all cells are treated as one batch"
            )
            log.warning(
                "no obs column %r for %s (columns: %s); %s",
                key,
                target,
                list(mdata.obs.columns),
                consequence,
            )
        found.append(column is not None)
    return found[0], found[1]


def _find_column(mdata: md.MuData, key: str) -> pd.Series | None:
    if key in mdata.obs.columns:
        return mdata.obs[key]
    modality, sep, column = key.partition(":")
    if sep and modality in mdata.mod and column in mdata.mod[modality].obs.columns:
        return mdata.mod[modality].obs[column].reindex(mdata.obs_names)
    return None
