"""The interface of a non-gradient comparison method."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from scmint.data.datamodule import MultiOmicsDataModule
from scmint.data.spec import DataSpec
from scmint.models.base import Requirements
from scmint.models.baselines.inputs import (
    DEFAULT_N_PCS,
    CorrectionRows,
    check_groups,
    correction_rows,
)
from scmint.models.baselines.packages import require, version
from scmint.models.inference import Embeddings


class Baseline(ABC):
    """A method that embeds all cells in one call; ``train.py`` skips the Lightning Trainer for it.

    Subclasses set ``requirements``, ``method_name`` and ``packages`` and implement
    :meth:`fit_embed`.

    Args:
        data_spec: the data's spec (checked against ``requirements`` at construction).
        seed: seed of any randomness in the method.
    """

    requirements: ClassVar[Requirements] = Requirements()
    method_name: ClassVar[str] = "baseline"
    #: pip distributions that do the method's work; their versions go into the run record.
    packages: ClassVar[tuple[str, ...]] = ()

    def __init__(self, data_spec: DataSpec | Mapping[str, Any], seed: int = 0) -> None:
        self.spec = DataSpec.from_dict(data_spec)
        self.requirements.check(self.method_name, self.spec)
        self.seed = seed
        self.n_params = 0
        #: Facts about the fit for the run record (e.g. epochs an early-stopped model trained).
        self.fit_facts: dict[str, Any] = {}

    def run_info(self) -> dict[str, Any]:
        """What ``train.py`` writes into metrics.json beside the scores: package versions, fit facts."""
        info: dict[str, Any] = dict(self.fit_facts)
        if self.packages:
            info["baseline_versions"] = {p: version(p) for p in self.packages}
        return info

    @abstractmethod
    def fit_embed(self, datamodule: MultiOmicsDataModule) -> Embeddings:
        """Fit on all cells of ``datamodule`` and return their embeddings in dataset order."""


class PCCorrection(Baseline):
    """A batch-correction method run on principal components across groups (Harmony, Scanorama).

    Both take the same settings and read the same rows; only the package call differs, in each
    subclass's :meth:`fit_embed`. ``packages[0]`` is imported at construction (a clear error
    naming the ``baselines`` extra when it is missing) and kept as ``self.package``.

    Args:
        n_pcs: principal components it corrects (scanpy's default 50, capped by the data).
        paired_mode: on paired data, "modalities" (each modality a group of its own, aligned into
            one space; the joint embedding is their mean) or "concat" (one row per cell, all
            modalities' features, groups = batches).
        options: keyword arguments of the package's call (empty: its defaults).
    """

    def __init__(
        self,
        data_spec: DataSpec | Mapping[str, Any],
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
        self.package = require(self.packages[0], self.method_name)

    def correction_rows(self, datamodule: MultiOmicsDataModule) -> CorrectionRows:
        """The rows (PCs) and groups the method corrects, as ``paired_mode`` asks."""
        return correction_rows(datamodule, self.paired_mode, self.n_pcs, self.seed)
