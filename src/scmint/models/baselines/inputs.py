"""What the comparison methods read from the datamodule, in the form their packages expect.

Every baseline sees the same cells as scmint's own methods: the datamodule's preprocessed cells
and features. Two things need more than ``datamodule.features(m)``:

* count models (TotalVI) and LIGER, which normalise counts themselves, read the *source's* values
  (raw counts where the dataset config reads counts, e.g. ``layers: {rna: counts}``) for exactly
  the datamodule's cells and selected features (:func:`source_values`);
* batch-correction methods (Harmony, Scanorama) need one matrix of rows and the group each row
  belongs to; on paired data that is either each modality as its own group or the modalities
  side by side (:func:`correction_rows`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp

from scmint.data.datamodule import MultiOmicsDataModule
from scmint.data.spec import DataSpec
from scmint.models.base import DataMismatchError
from scmint.models.inference import Embeddings

#: How batch-correction methods read paired data (see :func:`correction_rows`).
PAIRED_MODES = ("modalities", "concat")

#: scanpy's default number of principal components (``scanpy.settings.N_PCS``); Harmony and
#: Scanorama run on PCs as scanpy's ``harmony_integrate`` / ``scanorama_integrate`` do.
DEFAULT_N_PCS = 50


def require_fully_paired(method: str, spec: DataSpec) -> None:
    """Paired methods here need every cell in every modality (no partial pairing)."""
    if not spec.fully_paired:
        raise DataMismatchError(
            f"{method} needs every cell measured in every modality ({', '.join(spec.names)}), "
            "but some cells lack a modality; select fully paired cells or use model=umint"
        )


def modality_of_kind(method: str, spec: DataSpec, kind: str, name: str | None) -> str:
    """The modality named ``name``, or else the one modality of ``kind`` (rna/adt/atac)."""
    if name is not None:
        if name not in spec.modalities:
            raise DataMismatchError(
                f"{method}: modality {name!r} is not in the data (it has {spec.names})"
            )
        return name
    matches = [m for m in spec.names if spec.kind(m) == kind]
    if len(matches) != 1:
        raise DataMismatchError(
            f"{method} needs one {kind.upper()} modality; the data's modalities {spec.names} have "
            f"kinds {[spec.kind(m) for m in spec.names]}: name it with the model's modality option"
        )
    return matches[0]


def principal_components(x: np.ndarray, n_comps: int, seed: int) -> np.ndarray:
    """scanpy's PCA of ``x`` (cells x features), ``n_comps`` capped by the matrix's rank bound."""
    k = min(n_comps, min(x.shape) - 1)
    if k < 1:
        raise DataMismatchError(
            f"PCA needs at least 2 cells and 2 features, got a {x.shape} matrix"
        )
    return np.asarray(
        sc.pp.pca(x.astype(np.float32), n_comps=k, random_state=seed), dtype=np.float64
    )


def source_values(
    datamodule: MultiOmicsDataModule, modalities: Sequence[str], method: str
) -> dict[str, ad.AnnData]:
    """The source's own values (before preprocessing) of the datamodule's cells and features.

    The source is read again because preprocessing replaces ``X``; rows follow the datamodule's
    cell order and columns its selected features (e.g. the highly variable genes), so a count
    model sees the same cells and genes as every other method.
    """
    raw = datamodule.source.load()
    cells = datamodule.obs_names
    out = {}
    for m in modalities:
        if m not in raw.mod:
            raise DataMismatchError(
                f"{method}: the source of {datamodule.name!r} has no modality {m!r}"
            )
        features = datamodule.mdata.mod[m].var_names
        values = raw.mod[m][cells, features]
        x = values.X.toarray() if sp.issparse(values.X) else np.asarray(values.X)
        if (x < 0).any():
            raise DataMismatchError(
                f"{method} needs non-negative values (counts) in modality {m!r} of {datamodule.name!r}, "
                "but the source has negative ones; point the dataset config's source at the counts "
                "(e.g. data.source.layers={" + m + ": counts})"
            )
        out[m] = ad.AnnData(
            sp.csr_matrix(x, dtype=np.float32),
            obs=pd.DataFrame(index=pd.Index(cells.astype(str), name="cell")),
            var=pd.DataFrame(index=pd.Index(features.astype(str), name="feature")),
        )
    return out


@dataclass(frozen=True)
class CorrectionRows:
    """Rows for a batch-correction method, the group of each row, and how to read the result.

    Attributes:
        x: [rows, d] matrix to correct (principal components).
        groups: [rows] group (batch, modality or both) of each row.
        modalities: None when each row is a cell; else the modalities stacked in this order,
            ``n_cells`` rows each.
        n_cells: number of cells.
    """

    x: np.ndarray
    groups: np.ndarray
    modalities: tuple[str, ...] | None
    n_cells: int

    def embeddings(self, corrected: np.ndarray) -> Embeddings:
        """Corrected rows -> the cell embedding (stacked modalities: their mean, as mpSMILE)."""
        corrected = np.asarray(corrected, dtype=np.float32)
        if self.modalities is None:
            return Embeddings(embedding=corrected)
        n = self.n_cells
        views = {m: corrected[i * n : (i + 1) * n] for i, m in enumerate(self.modalities)}
        return Embeddings(
            embedding=np.mean(list(views.values()), axis=0), modality_embeddings=views
        )


def check_groups(method: str, spec: DataSpec, paired_mode: str) -> None:
    """Fail before fitting when the data gives a batch-correction method nothing to correct."""
    if paired_mode not in PAIRED_MODES:
        raise ValueError(f"model.paired_mode must be one of {PAIRED_MODES}, got {paired_mode!r}")
    stacked = paired_mode == "modalities" and len(spec.modalities) > 1
    if stacked:
        require_fully_paired(method, spec)
    elif spec.n_batches < 2:
        hint = (
            "model.paired_mode=modalities aligns the modalities instead"
            if len(spec.modalities) > 1
            else "use data with a batch column (data.batch_key)"
        )
        raise DataMismatchError(
            f"{method} corrects batches, but the data has one batch and "
            f"{'its modalities side by side' if len(spec.modalities) > 1 else 'one modality'}: "
            f"nothing to correct; {hint}"
        )


def correction_rows(
    datamodule: MultiOmicsDataModule, paired_mode: str, n_pcs: int, seed: int
) -> CorrectionRows:
    """The PCs a batch-correction method corrects, and the groups it corrects across.

    * One modality: its PCs, grouped by batch.
    * Paired data, ``paired_mode="modalities"``: each modality is a dataset of its own (the
      SMILE paper's use of batch-correction methods on multi-omics): its PCs are stacked under
      the other modality's, grouped by modality (and batch, where the data has batches). The
      modalities share no features, so each gets its own PCA with the same number of components.
    * Paired data, ``paired_mode="concat"``: one row per cell, the PCs of its modalities' features
      side by side (the PCA floor's input), grouped by batch.
    """
    spec = datamodule.spec
    batches = datamodule.batches()
    cell_batches = np.zeros(spec.n_cells, dtype=object) if batches is None else batches.astype(str)
    if paired_mode == "modalities" and len(spec.modalities) > 1:
        k = min([n_pcs] + [min(spec.n_cells, d) - 1 for d in spec.modalities.values()])
        pcs = [principal_components(datamodule.features(m).numpy(), k, seed) for m in spec.names]
        groups = [
            np.asarray([m if batches is None else f"{m}/{b}" for b in cell_batches], dtype=object)
            for m in spec.names
        ]
        return CorrectionRows(
            np.vstack(pcs), np.concatenate(groups), tuple(spec.names), spec.n_cells
        )
    x = np.concatenate([datamodule.features(m).numpy() for m in spec.names], axis=1)
    return CorrectionRows(principal_components(x, n_pcs, seed), cell_batches, None, spec.n_cells)
