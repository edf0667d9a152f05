"""The base every scmint method derives from: data requirements, embedding API, loss bookkeeping.

A method is a LightningModule built from a :class:`~scmint.data.spec.DataSpec`. The base class
keeps what is common and easy to get wrong out of each method:

* ``requirements`` are checked against the data *before* any network is built, so a method given
  the wrong data fails with one line that says what it needs;
* loss parts are summed on the device and logged once per epoch: per-step ``self.log`` calls and
  ``.item()`` syncs cost more than a whole optimiser step at UMINT's batch size of 16;
* the optimiser is stepped by ``training_step`` itself (Lightning's manual optimisation) unless the
  Trainer asks for a feature only Lightning's automatic loop has (see
  :attr:`IntegrationModule.automatic_optimization`): the same update, with less per-step Python;
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


def needs_automatic_loop(trainer: L.Trainer) -> bool:
    """Whether ``trainer`` asks for what only Lightning's automatic optimisation provides."""
    clip = trainer.gradient_clip_val
    return (clip is not None and clip > 0) or trainer.accumulate_grad_batches != 1


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
        # Per stage: running sum of the stacked loss parts, their names, and the step count.
        self._loss_sums: dict[str, Tensor | None] = {"train": None, "val": None}
        self._loss_names: dict[str, list[str]] = {"train": [], "val": []}
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
    @property
    def automatic_optimization(self) -> bool:
        """Whether Lightning's automatic-optimisation loop steps the optimiser.

        By default it does not: :meth:`training_step` runs ``zero_grad``, ``manual_backward`` and
        ``step`` itself, the same update without the closure, precision-plugin and hook layers the
        automatic loop wraps around it. On CPU that saves about 0.25 ms per step, 7 % of a UMINT
        step at batch 16 (docs/performance.md, "Manual optimisation, measured"). A Trainer that asks for
        gradient clipping (``trainer.gradient_clip_val``) or gradient accumulation
        (``trainer.accumulate_grad_batches > 1``), which only the automatic loop provides, gets
        the automatic loop. A method that steps its own optimisers sets this to False.
        """
        if not self._automatic_optimization:
            return False
        trainer = self._trainer
        return trainer is not None and needs_automatic_loop(trainer)

    @automatic_optimization.setter
    def automatic_optimization(self, value: bool) -> None:
        self._automatic_optimization = value

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        parts = self.loss(batch)
        total = self._accumulate("train", parts)
        if not self.automatic_optimization:
            optimizer = self.optimizers()
            optimizer.zero_grad(set_to_none=True)
            self.manual_backward(total)
            optimizer.step()
        return total

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._accumulate("val", self.loss(batch))

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
    def _accumulate(self, stage: str, parts: Mapping[str, Tensor]) -> Tensor:
        """The total loss of ``parts``; their detached values join the epoch's running sum.

        The parts travel as one stacked tensor, so a step adds a single on-device vector
        (no per-part ops, no host sync); names are kept once per epoch.
        """
        stacked = torch.stack(list(parts.values()))
        detached = stacked.detach()
        if self._loss_counts[stage] == 0:
            self._loss_names[stage] = list(parts)
            self._loss_sums[stage] = detached.clone()
        else:
            self._loss_sums[stage] += detached
        self._loss_counts[stage] += 1
        return stacked.sum()

    def _log_epoch(self, stage: str) -> None:
        count = self._loss_counts[stage]
        if count == 0 or (stage == "val" and self.trainer.sanity_checking):
            self._reset(stage)
            return
        means = self._loss_sums[stage] / count
        for name, value in zip(self._loss_names[stage], means, strict=True):
            self.log(f"{stage}/{name}", value, sync_dist=True)
        self.log(f"{stage}/loss", means.sum(), prog_bar=True, sync_dist=True)
        self._reset(stage)

    def _reset(self, stage: str) -> None:
        self._loss_sums[stage] = None
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
