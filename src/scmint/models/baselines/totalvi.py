"""totalVI (Gayoso et al. 2021) from scvi-tools: a variational autoencoder of RNA and protein counts.

It models raw counts (negative binomial genes, background/foreground mixture proteins), so it
reads the source's counts, not the z-scored features the other methods see: the same cells, the
RNA modality's selected genes (:func:`~scmint.models.baselines.inputs.source_values`) and every
protein. The UMINT authors fed it min-max-scaled data instead; counts are what its authors intend.
The cell embedding is the posterior mean of the latent variable (``get_latent_representation``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from scmint.data.datamodule import MultiOmicsDataModule
from scmint.models.base import Requirements
from scmint.models.baselines.base import Baseline
from scmint.models.baselines.inputs import modality_of_kind, require_fully_paired, source_values
from scmint.models.baselines.packages import require
from scmint.models.inference import Embeddings

log = logging.getLogger(__name__)


class TotalVI(Baseline):
    """scvi-tools' TOTALVI on raw RNA + ADT counts.

    Args:
        rna, protein: the RNA and ADT modality names (None: the one modality of that kind).
        use_batches: register the data's batches as totalVI's ``batch_key`` (it then corrects
            them). Off by default, as in ``setup_anndata`` and as for the methods it is compared
            with in the UMINT study, which see no batches either.
        model_options: keyword arguments of ``TOTALVI(...)`` (empty: its defaults, e.g. 20 latent
            dimensions).
        train_options: keyword arguments of ``TOTALVI.train`` (empty: its defaults: epochs by
            scvi's data-size heuristic, batch size 256, early stopping on, lr 4e-3).
    """

    method_name: ClassVar[str] = "totalvi"
    requirements: ClassVar[Requirements] = Requirements(
        min_modalities=2, max_modalities=2, paired=True
    )
    packages: ClassVar[tuple[str, ...]] = ("scvi-tools",)

    def __init__(
        self,
        data_spec,
        seed: int = 0,
        rna: str | None = None,
        protein: str | None = None,
        use_batches: bool = False,
        model_options: Mapping[str, Any] | None = None,
        train_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(data_spec, seed)
        require_fully_paired(self.method_name, self.spec)
        self.rna = modality_of_kind(self.method_name, self.spec, "rna", rna)
        self.protein = modality_of_kind(self.method_name, self.spec, "adt", protein)
        self.use_batches = use_batches and self.spec.n_batches > 1
        self.model_options = dict(model_options or {})
        self.train_options = dict(train_options or {})
        self.scvi = require("scvi", self.method_name, "scvi-tools")

    def fit_embed(self, datamodule: MultiOmicsDataModule) -> Embeddings:
        counts = source_values(datamodule, [self.rna, self.protein], self.method_name)
        adata = counts[self.rna]
        proteins = counts[self.protein]
        adata.obsm["protein_expression"] = pd.DataFrame(
            proteins.X.toarray(), index=adata.obs_names, columns=proteins.var_names
        )
        batch_key = None
        if self.use_batches:
            adata.obs["batch"] = pd.Categorical(datamodule.batches().astype(str))
            batch_key = "batch"
        self.scvi.settings.seed = self.seed
        self.scvi.model.TOTALVI.setup_anndata(
            adata, protein_expression_obsm_key="protein_expression", batch_key=batch_key
        )
        model = self.scvi.model.TOTALVI(adata, **self.model_options)
        model.train(**{"enable_progress_bar": False, **self.train_options})
        self.n_params = sum(p.numel() for p in model.module.parameters())
        self.fit_facts = {"totalvi_epochs": len(model.history["elbo_train"])}
        return Embeddings(embedding=np.asarray(model.get_latent_representation(), dtype=np.float32))
