"""Frozen-teacher composition: SMILE-family integration of more than two paired modalities.

SMILE's paper integrates Paired-Tag (RNA + several histone marks) in two stages: train a model of
the anchor modality (SMILE on RNA, or mpSMILE on RNA and one partner), freeze its encoder as a
*teacher*, then train one pSMILE per remaining modality against the frozen anchor. Every student
encoder is pulled into the teacher's embedding space, so all modalities share one space.

Here both stages are one LightningModule trained by one ``Trainer.fit`` (so ``scmint-train
experiment=smile_teacher`` writes the usual run record): the first ``teacher_epochs`` epochs step
the stage-1 optimiser on the stage-1 loss; the remaining epochs freeze the stage-1 networks
(``requires_grad`` off and eval mode, so neither weights nor BatchNorm statistics move) and step
the stage-2 optimiser, which holds only the students' encoders and heads. Each student has its own
freshly initialised heads (pSMILE trained from scratch except for the anchor's encoder).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scmint.data.spec import DataSpec
from scmint.models.base import Batch, IntegrationModule, OptimizerFactory, Requirements
from scmint.models.smile import (
    check_fully_paired,
    check_training_batch,
    contrast,
    noisy_view,
    resolve_anchor,
)
from scmint.nn.encoders import MLPEncoder
from scmint.nn.heads import ContrastiveHeads

#: Stage-1 methods and their reference temperatures (tau on projections, tau on softmax columns).
TEACHER_METHODS = {"smile": (0.05, 0.15), "mpsmile": (0.1, 1.0)}


class TeacherComposition(IntegrationModule):
    """Stage 1 trains a teacher on the anchor; stage 2 trains one pSMILE per other modality against it.

    Args:
        data_spec: the data; at least two fully paired modalities.
        optimizer: optimiser factory, used for both stages (authors: SGD lr 0.01, momentum 0.9,
            weight decay 5e-4).
        teacher_epochs: epochs of stage 1; stage 2 runs the rest of ``trainer.max_epochs``.
        teacher_method: "smile" (anchor alone) or "mpsmile" (anchor + ``teacher_partner``).
        anchor: the teacher's modality (default: the first RNA-like one).
        teacher_partner: mpSMILE's second modality in stage 1 (default: the first non-anchor one);
            it is frozen with the anchor and gets no student.
        teacher_tau_feature, teacher_tau_cluster: stage-1 temperatures (default: the method's,
            SMILE 0.05 / 0.15, mpSMILE 0.1 / 1.0).
        student_tau_feature, student_tau_cluster: pSMILE temperatures of stage 2 (0.1 / 1.0).
        mse_weight: pSMILE's optional MSE between student and anchor embeddings (0).
        n_clusters, latent_dim, hidden, projection_dim, noise_sigma: as :class:`~scmint.models.SMILE`.
    """

    requirements: ClassVar[Requirements] = Requirements(min_modalities=2, paired=True)
    method_name: ClassVar[str] = "smile_teacher"

    def __init__(
        self,
        data_spec: DataSpec | Mapping[str, Any],
        optimizer: OptimizerFactory,
        teacher_epochs: int = 5,
        teacher_method: str = "smile",
        anchor: str | None = None,
        teacher_partner: str | None = None,
        teacher_tau_feature: float | None = None,
        teacher_tau_cluster: float | None = None,
        student_tau_feature: float = 0.1,
        student_tau_cluster: float = 1.0,
        mse_weight: float = 0.0,
        n_clusters: int = 25,
        latent_dim: int = 128,
        hidden: Sequence[int] = (1000, 512),
        projection_dim: int = 32,
        noise_sigma: float = 1.0,
    ) -> None:
        super().__init__(data_spec, optimizer)
        check_fully_paired(self.spec, self.method_name)
        if teacher_method not in TEACHER_METHODS:
            raise ValueError(
                f"model.teacher_method must be one of {sorted(TEACHER_METHODS)}, got {teacher_method!r}"
            )
        if teacher_epochs < 1:
            raise ValueError(f"model.teacher_epochs must be >= 1, got {teacher_epochs}")
        if noise_sigma < 0 or mse_weight < 0:
            raise ValueError(
                f"model.noise_sigma and model.mse_weight must be >= 0, got {noise_sigma}, {mse_weight}"
            )
        self.save_hyperparameters(logger=False)
        self.automatic_optimization = False  # two optimisers, one per stage, stepped by hand

        self.anchor = resolve_anchor(self.spec, anchor)
        self.partner: str | None = None
        if teacher_method == "mpsmile":
            others = [m for m in self.spec.names if m != self.anchor]
            self.partner = teacher_partner if teacher_partner is not None else others[0]
            if self.partner not in others:
                raise ValueError(f"model.teacher_partner={self.partner!r} must be one of {others}")
        elif teacher_partner is not None:
            raise ValueError("model.teacher_partner is only used with model.teacher_method=mpsmile")
        self.students = [m for m in self.spec.names if m not in (self.anchor, self.partner)]
        if not self.students:
            raise ValueError(
                f"no modality is left for stage 2: the data has {self.spec.names}, the teacher uses "
                f"{self.anchor} and {self.partner}; use model=mpsmile for two modalities"
            )

        default_f, default_c = TEACHER_METHODS[teacher_method]
        self.teacher_taus = (
            default_f if teacher_tau_feature is None else float(teacher_tau_feature),
            default_c if teacher_tau_cluster is None else float(teacher_tau_cluster),
        )
        if min(*self.teacher_taus, student_tau_feature, student_tau_cluster) <= 0:
            raise ValueError("model temperatures (teacher_tau_*, student_tau_*) must be > 0")
        self.student_taus = (student_tau_feature, student_tau_cluster)
        self.mse_weight, self.noise_sigma = float(mse_weight), float(noise_sigma)
        self.teacher_epochs = int(teacher_epochs)

        def encoder(m: str) -> MLPEncoder:
            return MLPEncoder(self.spec.modalities[m], hidden, latent_dim)

        self.encoders = nn.ModuleDict({m: encoder(m) for m in self.spec.names})
        self.teacher_heads = ContrastiveHeads(latent_dim, projection_dim, n_clusters)
        self.student_heads = nn.ModuleDict(
            {m: ContrastiveHeads(latent_dim, projection_dim, n_clusters) for m in self.students}
        )
        self._frozen = False

    # ---- stages ----------------------------------------------------------------------------
    @property
    def stage(self) -> int:
        """1 while the teacher trains, then 2."""
        return 1 if self.current_epoch < self.teacher_epochs else 2

    def teacher_modules(self) -> list[nn.Module]:
        """The stage-1 networks, frozen in stage 2."""
        modules = [self.encoders[self.anchor], self.teacher_heads]
        if self.partner is not None:
            modules.append(self.encoders[self.partner])
        return modules

    def student_modules(self) -> list[nn.Module]:
        return [*(self.encoders[m] for m in self.students), *self.student_heads.values()]

    def freeze_teacher(self) -> None:
        """Stop every change to the stage-1 networks: no gradients, BatchNorm on running statistics."""
        for module in self.teacher_modules():
            module.requires_grad_(False)
            module.eval()
        self._frozen = True

    def train(self, mode: bool = True) -> TeacherComposition:
        """Lightning switches the whole model to train mode every epoch; a frozen teacher stays in eval."""
        super().train(mode)
        if getattr(self, "_frozen", False):
            for module in self.teacher_modules():
                module.eval()
        return self

    # ---- Lightning hooks -------------------------------------------------------------------
    def on_fit_start(self) -> None:
        max_epochs = self.trainer.max_epochs
        if max_epochs is None or max_epochs <= self.teacher_epochs:
            raise ValueError(
                f"trainer.max_epochs={max_epochs} leaves no epoch for stage 2: it must exceed "
                f"model.teacher_epochs={self.teacher_epochs} (stage 2 runs the remaining epochs)"
            )

    def on_train_epoch_start(self) -> None:
        if self.stage == 2 and not self._frozen:  # also re-freezes after resuming in stage 2
            self.freeze_teacher()

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        def params(modules: list[nn.Module]) -> list[nn.Parameter]:
            return [p for module in modules for p in module.parameters()]

        return [
            self.optimizer_factory(params=params(self.teacher_modules())),
            self.optimizer_factory(params=params(self.student_modules())),
        ]

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        optimizer = self.optimizers()[self.stage - 1]
        total = self._accumulate("train", self.loss(batch))
        optimizer.zero_grad()
        self.manual_backward(total)
        optimizer.step()
        return total

    # ---- the method ------------------------------------------------------------------------
    def loss(self, batch: Batch) -> dict[str, Tensor]:
        x = batch["x"]
        if self.training:
            check_training_batch(x[self.anchor].shape[0], self.method_name)
        return self.teacher_loss(x) if self.stage == 1 else self.student_loss(x)

    def teacher_loss(self, x: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """SMILE on the anchor, or mpSMILE on anchor + partner (the authors' losses, weight 1 each)."""
        tau_f, tau_c = self.teacher_taus
        anchor = self.encoders[self.anchor]
        z_a = anchor(noisy_view(x[self.anchor], self.noise_sigma))
        z_a2 = anchor(noisy_view(x[self.anchor], self.noise_sigma))
        feature, cluster = contrast(self.teacher_heads, z_a, z_a2, tau_f, tau_c)
        parts = {"teacher_nt_xent_self": feature, "teacher_cluster_self": cluster}
        if self.partner is not None:
            z_b = self.encoders[self.partner](noisy_view(x[self.partner], self.noise_sigma))
            feature, cluster = contrast(self.teacher_heads, z_a, z_b, tau_f, tau_c)
            parts.update(
                {
                    f"teacher_nt_xent_{self.partner}": feature,
                    f"teacher_cluster_{self.partner}": cluster,
                }
            )
        return parts

    def student_loss(self, x: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """One pSMILE per student against the frozen anchor embedding (computed without gradients)."""
        tau_f, tau_c = self.student_taus
        with torch.no_grad():
            z_anchor = self.encoders[self.anchor](noisy_view(x[self.anchor], self.noise_sigma))
        parts = {}
        for m in self.students:
            z_m = self.encoders[m](noisy_view(x[m], self.noise_sigma))
            feature, cluster = contrast(self.student_heads[m], z_anchor, z_m, tau_f, tau_c)
            parts[f"student_nt_xent_{m}"], parts[f"student_cluster_{m}"] = feature, cluster
            if self.mse_weight > 0:
                parts[f"student_mse_{m}"] = self.mse_weight * F.mse_loss(z_m, z_anchor)
        return parts

    def embed_modalities(self, batch: Batch) -> dict[str, Tensor]:
        """Every modality's L2-normalised embedding in the anchor's space."""
        return {m: F.normalize(self.encoders[m](batch["x"][m]), dim=1) for m in self.spec.names}

    def embed(self, batch: Batch) -> Tensor:
        """The joint embedding: the mean of the per-modality embeddings, as pSMILE's."""
        return torch.stack(list(self.embed_modalities(batch).values())).mean(dim=0)
