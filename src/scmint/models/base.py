"""The base every scmint method derives from: data requirements, embedding API, loss bookkeeping.

A method is a LightningModule built from a :class:`~scmint.data.spec.DataSpec`. The base class
keeps what is common and easy to get wrong out of each method:

* ``requirements`` are checked against the data *before* any network is built, so a method given
  the wrong data fails with one line that says what it needs;
* loss parts are summed on the device and logged once per epoch: per-step ``self.log`` calls and
  ``.item()`` syncs cost more than a whole optimiser step at UMINT's batch size of 16;
* random-number-generator state travels in checkpoints, so a resumed run draws the same noise as
  an uninterrupted one;
* ``predict_step`` returns the embedding (and, where a method has them, per-modality embeddings
  and reconstructions) keyed by cell index, which is all evaluation needs.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import lightning as L
import numpy as np
import torch
from torch import Tensor

from scmint.data.spec import DataSpec

Batch = Mapping[str, Any]
OptimizerFactory = Callable[..., torch.optim.Optimizer]


class DataMismatchError(ValueError):
    """The data does not fit what a method needs (e.g. pSMILE given a single modality)."""


@dataclass(frozen=True)
class Requirements:
    """What a method needs from its data.

    Attributes:
        min_modalities: fewest modalities the method can use.
        max_modalities: most modalities (None = any number).
        paired: the modalities must share cells (vertical integration).
    """

    min_modalities: int = 1
    max_modalities: int | None = None
    paired: bool = False

    def check(self, method: str, spec: DataSpec) -> None:
        n = len(spec.modalities)
        names = ", ".join(spec.names) or "none"
        if n < self.min_modalities:
            raise DataMismatchError(
                f"{method} needs at least {self.min_modalities} modalities but the data has {n} "
                f"({names}); choose a paired dataset (e.g. data=synthetic_cite) or a single-modality "
                f"method (e.g. model=smile)."
            )
        if self.max_modalities is not None and n > self.max_modalities:
            raise DataMismatchError(
                f"{method} takes at most {self.max_modalities} modalities but the data has {n} "
                f"({names}); select modalities with data.modalities=[...]."
            )
        if self.paired and n > 1 and not spec.paired:
            raise DataMismatchError(
                f"{method} needs paired modalities (the same cells measured in each) but the "
                f"modalities {names} share no cells; use a paired dataset or model=smile."
            )


class IntegrationModule(L.LightningModule):
    """Base LightningModule of every scmint method.

    Subclasses set ``requirements``, build their networks in ``__init__`` from ``self.spec`` and
    implement :meth:`loss` (a dict of named, weighted loss parts whose sum is optimised) and
    :meth:`embed`. Optionally :meth:`embed_modalities` (paired methods) and :meth:`reconstruct`
    (autoencoders).

    Args:
        data_spec: the data's :class:`DataSpec` (or its dict form, as stored in checkpoints).
        optimizer: a factory ``params -> Optimizer`` (Hydra ``_partial_: true``).
    """

    requirements: ClassVar[Requirements] = Requirements()
    #: Short method name used in run records and error messages.
    method_name: ClassVar[str] = "method"

    def __init__(self, data_spec: DataSpec | Mapping[str, Any], optimizer: OptimizerFactory):
        super().__init__()
        self.spec = DataSpec.from_dict(data_spec)
        self.requirements.check(self.method_name, self.spec)
        self.optimizer_factory = optimizer
        self._loss_sums: dict[str, dict[str, Tensor]] = {"train": {}, "val": {}}
        self._loss_counts: dict[str, int] = {"train": 0, "val": 0}

    # ---- what subclasses implement -------------------------------------------------------
    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """Named loss parts (already weighted); their sum is what the optimiser minimises."""
        raise NotImplementedError

    def embed(self, batch: Batch) -> Tensor:
        """The cell embedding used for evaluation ([B, latent])."""
        raise NotImplementedError

    def embed_modalities(self, batch: Batch) -> dict[str, Tensor] | None:
        """Per-modality embeddings of paired methods (for modality-mixing metrics), else None."""
        return None

    def reconstruct(self, batch: Batch) -> dict[str, Tensor] | None:
        """Per-modality reconstructions of autoencoders (for the reconstruction score), else None."""
        return None

    # ---- Lightning hooks -----------------------------------------------------------------
    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        parts = self.loss(batch)
        total = torch.stack(list(parts.values())).sum()
        self._accumulate("train", parts, total)
        return total

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        parts = self.loss(batch)
        total = torch.stack(list(parts.values())).sum()
        self._accumulate("val", parts, total)

    def predict_step(self, batch: Batch, batch_idx: int = 0) -> dict[str, Any]:
        out: dict[str, Any] = {"index": batch["index"], "embedding": self.embed(batch)}
        per_modality = self.embed_modalities(batch)
        if per_modality is not None:
            out["modality_embeddings"] = per_modality
        recon = self.reconstruct(batch)
        if recon is not None:
            out["reconstruction"] = recon
        return out

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer_factory(params=self.parameters())

    # ---- bookkeeping -----------------------------------------------------------------------
    def _accumulate(self, stage: str, parts: Mapping[str, Tensor], total: Tensor) -> None:
        sums = self._loss_sums[stage]
        for name, value in {**parts, "loss": total}.items():
            value = value.detach()
            sums[name] = sums[name] + value if name in sums else value.clone()
        self._loss_counts[stage] += 1

    def _log_epoch(self, stage: str) -> None:
        count = self._loss_counts[stage]
        if count == 0 or (stage == "val" and self.trainer.sanity_checking):
            self._reset(stage)
            return
        for name, value in self._loss_sums[stage].items():
            self.log(f"{stage}/{name}", value / count, prog_bar=name == "loss", sync_dist=True)
        self._reset(stage)

    def _reset(self, stage: str) -> None:
        self._loss_sums[stage] = {}
        self._loss_counts[stage] = 0

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["scmint_rng"] = {
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("scmint_rng")
        if state is None:
            return
        random.setstate(state["python"])
        np.random.set_state(state["numpy"])
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])

    # ---- introspection -----------------------------------------------------------------------
    @property
    def n_params(self) -> int:
        """Number of trainable parameters (the figure the papers report)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
