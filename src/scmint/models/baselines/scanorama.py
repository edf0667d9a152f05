"""Scanorama (Hie et al. 2019): panoramic stitching of datasets by mutual nearest neighbours.

Like scanpy's ``scanorama_integrate``, it runs ``scanorama.assemble`` on principal components,
one dataset per group; which rows and groups it sees on paired data is ``paired_mode``
(:func:`~scmint.models.baselines.inputs.correction_rows`). The assembled PCs are the embedding.
"""

from __future__ import annotations

import logging
from typing import ClassVar

import numpy as np

from scmint.data.datamodule import MultiOmicsDataModule
from scmint.models.baselines.base import PCCorrection
from scmint.models.baselines.packages import captured_stdout
from scmint.models.inference import Embeddings

log = logging.getLogger(__name__)


class Scanorama(PCCorrection):
    """``scanorama.assemble`` of the data's PCs, one dataset per batch (and modality).

    Args (see :class:`~scmint.models.baselines.base.PCCorrection`):
        options: keyword arguments of ``scanorama.assemble`` (empty: its defaults: knn 20,
            sigma 15, alpha 0.1, approximate neighbours).

    Scanorama has no seed: with ``approx=True`` it builds Annoy indexes with their own fixed
    seed; ``seed`` only seeds the PCA before it. Runs in one process repeat, but one run in a
    separate process differed (ARI 0.305 vs 0.298 for seed 0; docs/baselines.md).
    """

    method_name: ClassVar[str] = "scanorama"
    packages: ClassVar[tuple[str, ...]] = ("scanorama",)

    def fit_embed(self, datamodule: MultiOmicsDataModule) -> Embeddings:
        rows = self.correction_rows(datamodule)
        names = list(dict.fromkeys(rows.groups))  # datasets in order of first appearance
        members = [np.flatnonzero(rows.groups == g) for g in names]
        with captured_stdout(log, "scanorama"):
            assembled = self.package.assemble([rows.x[i] for i in members], **self.options)
        corrected = np.empty_like(rows.x)
        for index, part in zip(members, assembled, strict=True):
            corrected[index] = part
        self.fit_facts = {"correction_groups": len(names)}
        return rows.embeddings(corrected)
