"""Harmony (Korsunsky et al. 2019) through harmonypy: iterative soft clustering of PCs with
per-cluster linear removal of group effects.

Like scanpy's ``harmony_integrate``, it corrects principal components; which rows and groups it
sees on paired data is ``paired_mode`` (:func:`~scmint.models.baselines.inputs.correction_rows`).
The corrected PCs are the embedding.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

import pandas as pd

from scmint.data.datamodule import MultiOmicsDataModule
from scmint.models.baselines.base import Baseline
from scmint.models.baselines.inputs import DEFAULT_N_PCS, check_groups, correction_rows
from scmint.models.baselines.packages import require
from scmint.models.inference import Embeddings

log = logging.getLogger(__name__)


class Harmony(Baseline):
    """harmonypy's ``run_harmony`` on the data's PCs, across batches (and modalities).

    Args:
        n_pcs: principal components it corrects (scanpy's default 50, capped by the data).
        paired_mode: on paired data, "modalities" (each modality a group of its own, aligned into
            one space; the joint embedding is their mean) or "concat" (one row per cell, all
            modalities' features, groups = batches).
        options: keyword arguments of ``harmonypy.run_harmony`` (empty: its defaults, e.g.
            theta 2, sigma 0.1, up to 10 iterations). ``random_state`` comes from the run's seed.
    """

    method_name: ClassVar[str] = "harmony"
    packages: ClassVar[tuple[str, ...]] = ("harmonypy",)

    def __init__(
        self,
        data_spec,
        seed: int = 0,
        n_pcs: int = DEFAULT_N_PCS,
        paired_mode: str = "modalities",
        options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(data_spec, seed)
        check_groups(self.method_name, self.spec, paired_mode)
        if n_pcs < 1:
            raise ValueError(f"model.n_pcs must be >= 1, got {n_pcs}")
        self.n_pcs = n_pcs
        self.paired_mode = paired_mode
        self.options = dict(options or {})
        self.harmonypy = require("harmonypy", self.method_name)

    def fit_embed(self, datamodule: MultiOmicsDataModule) -> Embeddings:
        rows = correction_rows(datamodule, self.paired_mode, self.n_pcs, self.seed)
        options = {"verbose": False, **self.options, "random_state": self.seed}
        result = self.harmonypy.run_harmony(
            rows.x, pd.DataFrame({"group": rows.groups}), "group", **options
        )
        corrected = result.Z_corr
        if corrected.shape != rows.x.shape:  # harmonypy < 2 returned PCs x cells
            corrected = corrected.T
        self.fit_facts = {"correction_groups": len(set(rows.groups))}
        return rows.embeddings(corrected)
