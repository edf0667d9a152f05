"""The interface of a non-gradient comparison method."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from scmint.data.datamodule import MultiOmicsDataModule
from scmint.data.spec import DataSpec
from scmint.models.base import Requirements
from scmint.models.baselines.packages import version
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
