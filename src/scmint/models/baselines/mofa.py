"""MOFA+ (Argelaguet et al. 2020): multi-omics factor analysis with mofapy2, run through muon.

A linear latent-factor model of all modalities at once; the cell embedding is the factor matrix Z
(``obsm["X_mofa"]``). ``muon.tl.mofa`` is the documented Python entry to mofapy2 for MuData; it
writes the trained model to an HDF5 file, which goes to a temporary folder here (the run record
keeps the embedding, not the model).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import anndata as ad
import numpy as np
import pandas as pd

from scmint.data.datamodule import MultiOmicsDataModule
from scmint.models.base import Requirements
from scmint.models.baselines.base import Baseline
from scmint.models.baselines.inputs import require_fully_paired
from scmint.models.baselines.packages import captured_stdout, require
from scmint.models.inference import Embeddings

log = logging.getLogger(__name__)


class MOFA(Baseline):
    """MOFA+ on the preprocessed modalities (Gaussian likelihood: the features are z-scored).

    Args:
        options: keyword arguments of ``muon.tl.mofa`` (empty: its defaults, e.g. 10 factors,
            up to 1,000 iterations, "fast" convergence). ``seed`` comes from the run's seed.
    """

    method_name: ClassVar[str] = "mofa"
    requirements: ClassVar[Requirements] = Requirements(min_modalities=2, paired=True)
    packages: ClassVar[tuple[str, ...]] = ("mofapy2", "muon")

    def __init__(self, data_spec, seed: int = 0, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(data_spec, seed)
        require_fully_paired(self.method_name, self.spec)
        self.options = dict(options or {})
        reserved = {"seed", "outfile", "copy"} & set(self.options)
        if reserved:
            raise ValueError(f"model.options: {sorted(reserved)} are set by scmint; remove them")
        self.mu = require("muon", self.method_name)
        require("mofapy2", self.method_name)

    def fit_embed(self, datamodule: MultiOmicsDataModule) -> Embeddings:
        cells = pd.DataFrame(index=datamodule.obs_names.astype(str))
        mdata = self.mu.MuData(
            {
                m: ad.AnnData(datamodule.features(m).numpy(), obs=cells.copy())
                for m in self.spec.names
            }
        )
        with (
            tempfile.TemporaryDirectory(prefix="scmint_mofa_") as folder,
            captured_stdout(log, "mofapy2"),
        ):
            # use_var=None: the datamodule already selected the features (muon's default looks for
            # a "highly_variable" column, which preprocessed data does not carry, and then uses all).
            self.mu.tl.mofa(
                mdata,
                **{"use_var": None, **self.options},
                seed=self.seed,
                outfile=str(Path(folder) / "mofa.hdf5"),
            )
        factors = np.asarray(mdata.obsm["X_mofa"], dtype=np.float32)
        self.fit_facts = {"mofa_factors": int(factors.shape[1])}
        return Embeddings(embedding=factors)
