"""LIGER (Welch et al. 2019) through pyliger: integrative non-negative matrix factorisation (iNMF).

Each batch is a dataset; iNMF learns gene loadings shared by all datasets plus dataset-specific
ones, and quantile normalisation aligns the cell factor loadings H. The cell embedding is the
aligned loadings ``H_norm``. LIGER normalises counts itself, so it reads the source's values of
the datamodule's cells and features (:func:`~scmint.models.baselines.inputs.source_values`),
which must be counts: pyliger casts its input to integers.

LIGER integrates datasets that share features (genes). Modalities with different features have
nothing to share, so on paired data it integrates the batches of one modality (``modality``, by
default the RNA one) and the other modalities are not used.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

import anndata as ad
import numpy as np

from scmint.data.datamodule import MultiOmicsDataModule
from scmint.models.base import DataMismatchError
from scmint.models.baselines.base import Baseline
from scmint.models.baselines.inputs import modality_of_kind, source_values
from scmint.models.baselines.packages import captured_stdout, require
from scmint.models.inference import Embeddings

log = logging.getLogger(__name__)


class LIGER(Baseline):
    """pyliger's pipeline: normalize, select_genes, scale_not_center, optimize_ALS, quantile_norm.

    Args:
        k: number of factors (``optimize_ALS`` has no default; 20 is the value of LIGER's
            tutorials and of the LIGER paper's benchmarks).
        modality: the modality it integrates (None: the only one, or the RNA one).
        als_options, quantile_options: keyword arguments of ``optimize_ALS`` / ``quantile_norm``
            (empty: their defaults, e.g. lambda 5, 30 iterations; 50 quantiles). Their
            ``rand_seed`` is the run's seed + 1 (seed 0 = pyliger's default 1).
    """

    method_name: ClassVar[str] = "liger"
    packages: ClassVar[tuple[str, ...]] = ("pyliger",)

    def __init__(
        self,
        data_spec,
        seed: int = 0,
        k: int = 20,
        modality: str | None = None,
        als_options: Mapping[str, Any] | None = None,
        quantile_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(data_spec, seed)
        if k < 1:
            raise ValueError(f"model.k must be >= 1, got {k}")
        if self.spec.n_batches < 2:
            raise DataMismatchError(
                "liger integrates batches of one modality, but the data has one batch: nothing to "
                "integrate; use data with a batch column (data.batch_key)"
            )
        if modality is None and len(self.spec.modalities) == 1:
            modality = self.spec.names[0]
        self.modality = modality_of_kind(self.method_name, self.spec, "rna", modality)
        self.k = k
        self.als_options = dict(als_options or {})
        self.quantile_options = dict(quantile_options or {})
        self.pyliger = require("pyliger", self.method_name)

    def fit_embed(self, datamodule: MultiOmicsDataModule) -> Embeddings:
        values = source_values(datamodule, [self.modality], self.method_name)[self.modality]
        if not np.array_equal(values.X.data, np.round(values.X.data)):
            raise DataMismatchError(
                f"liger needs counts, but modality {self.modality!r} of {datamodule.name!r} holds "
                "non-integer values (pyliger casts its input to integers, which would truncate "
                "them); point the dataset config's source at raw counts (data.source.layers)"
            )
        batches = datamodule.batches().astype(str)
        datasets = []
        for name in dict.fromkeys(batches):
            part = ad.AnnData(
                values.X[batches == name], obs=values.obs[batches == name], var=values.var
            )
            part.uns["sample_name"] = name
            datasets.append(part)
        pyliger = self.pyliger
        with captured_stdout(log, "pyliger"):
            liger = pyliger.create_liger(datasets)
            pyliger.normalize(liger)
            pyliger.select_genes(liger)
            pyliger.scale_not_center(liger)
            # rand_seed = seed + 1: pyliger seeds its j-th restart with rand_seed + j - 1, which
            # must be >= 0; run seed 0 is then pyliger's default seed 1.
            seed = self.seed + 1
            pyliger.optimize_ALS(liger, k=self.k, **{**self.als_options, "rand_seed": seed})
            pyliger.quantile_norm(liger, **{**self.quantile_options, "rand_seed": seed})
        loadings = {
            cell: row
            for part in liger.adata_list
            for cell, row in zip(part.obs_names, part.obsm["H_norm"], strict=True)
        }
        missing = [c for c in values.obs_names if c not in loadings]
        if missing:
            raise DataMismatchError(
                f"liger dropped {len(missing)} cells with no counts in its selected genes "
                f"(e.g. {missing[:3]}); filter such cells in the dataset's preprocessing"
            )
        self.fit_facts = {"liger_genes": len(liger.var_genes)}
        return Embeddings(
            embedding=np.stack([loadings[c] for c in values.obs_names]).astype(np.float32)
        )
