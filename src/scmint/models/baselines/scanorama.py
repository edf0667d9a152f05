"""Scanorama (Hie et al. 2019): panoramic stitching of datasets by mutual nearest neighbours.

Like scanpy's ``scanorama_integrate``, it runs ``scanorama.assemble`` on principal components,
one dataset per group; which rows and groups it sees on paired data is ``paired_mode``
(:func:`~scmint.models.baselines.inputs.correction_rows`). The assembled PCs are the embedding.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from scmint.data.datamodule import MultiOmicsDataModule
from scmint.models.baselines.base import Baseline
from scmint.models.baselines.inputs import DEFAULT_N_PCS, check_groups, correction_rows
from scmint.models.baselines.packages import captured_stdout, require
from scmint.models.inference import Embeddings

log = logging.getLogger(__name__)


class Scanorama(Baseline):
    """``scanorama.assemble`` of the data's PCs, one dataset per batch (and modality).

    Args:
        n_pcs: principal components (scanpy's default 50, capped by the data).
        paired_mode: as for :class:`~scmint.models.baselines.Harmony`.
        options: keyword arguments of ``scanorama.assemble`` (empty: its defaults: knn 20,
            sigma 15, alpha 0.1, approximate neighbours).

    Scanorama has no seed: with ``approx=True`` it builds Annoy indexes, whose own seed is fixed,
    so a run is repeatable; ``seed`` only seeds the PCA before it.
    """

    method_name: ClassVar[str] = "scanorama"
    packages: ClassVar[tuple[str, ...]] = ("scanorama",)

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
        self.scanorama = require("scanorama", self.method_name)

    def fit_embed(self, datamodule: MultiOmicsDataModule) -> Embeddings:
        rows = correction_rows(datamodule, self.paired_mode, self.n_pcs, self.seed)
        names = list(dict.fromkeys(rows.groups))  # datasets in order of first appearance
        members = [np.flatnonzero(rows.groups == g) for g in names]
        with captured_stdout(log, "scanorama"):
            assembled = self.scanorama.assemble([rows.x[i] for i in members], **self.options)
        corrected = np.empty_like(rows.x)
        for index, part in zip(members, assembled, strict=True):
            corrected[index] = part
        self.fit_facts = {"correction_groups": len(names)}
        return rows.embeddings(corrected)
