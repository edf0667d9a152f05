"""Harmony (Korsunsky et al. 2019) through harmonypy: iterative soft clustering of PCs with
per-cluster linear removal of group effects.

Like scanpy's ``harmony_integrate``, it corrects principal components; which rows and groups it
sees on paired data is ``paired_mode`` (:func:`~scmint.models.baselines.inputs.correction_rows`).
The corrected PCs are the embedding.
"""

from __future__ import annotations

import logging
from typing import ClassVar

import pandas as pd

from scmint.data.datamodule import MultiOmicsDataModule
from scmint.models.baselines.base import PCCorrection
from scmint.models.inference import Embeddings

log = logging.getLogger(__name__)


class Harmony(PCCorrection):
    """harmonypy's ``run_harmony`` on the data's PCs, across batches (and modalities).

    Args (see :class:`~scmint.models.baselines.base.PCCorrection`):
        options: keyword arguments of ``harmonypy.run_harmony`` (empty: its defaults, e.g.
            theta 2, sigma 0.1, up to 10 iterations). ``random_state`` comes from the run's seed.
    """

    method_name: ClassVar[str] = "harmony"
    packages: ClassVar[tuple[str, ...]] = ("harmonypy",)

    def fit_embed(self, datamodule: MultiOmicsDataModule) -> Embeddings:
        rows = self.correction_rows(datamodule)
        options = {"verbose": False, **self.options, "random_state": self.seed}
        result = self.package.run_harmony(
            rows.x, pd.DataFrame({"group": rows.groups}), "group", **options
        )
        corrected = result.Z_corr
        if corrected.shape != rows.x.shape:  # harmonypy < 2 returned PCs x cells
            corrected = corrected.T
        self.fit_facts = {"correction_groups": len(set(rows.groups))}
        return rows.embeddings(corrected)
