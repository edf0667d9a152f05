"""UMINT: a modular autoencoder with one small encoder per modality (Maitra et al. 2023).

Each modality m gets its own first layer Dense(d_m -> h_m); the layers' outputs are concatenated
and compressed to a non-negative latent code. The decoder mirrors the encoder per modality. Versus
a plain autoencoder on the concatenated input, the first layer drops the cross-modality blocks of
its weight matrix: sum_i d_i * sum_{j != i} h_j fewer parameters.

Reference settings (authors' Keras code, DESIGN.md §3): latent 64 with ReLU; h = (128, 10) for
CITE-seq and (128, 128) for RNA+ATAC; loss sum_m lambda_m MSE_m + alpha * L1 of the hidden
activations (divided by the batch size, as Keras does) + beta * sum W^2 over the hidden kernels;
He-uniform / bias 0.1 hidden init, Glorot / zero bias outputs; Adam(1e-3, eps 1e-7), batch 16,
25 epochs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from scmint.data.spec import DataSpec
from scmint.models.base import Batch, IntegrationModule, OptimizerFactory, Requirements
from scmint.nn.dense import Dense, l1_activity_penalty, l2_kernel_penalty

#: Hidden width per modality kind when the config gives none (the paper's choices).
DEFAULT_HIDDEN = {"rna": 128, "adt": 10, "atac": 128, "other": 128}


def resolve_widths(spec: DataSpec, hidden: Mapping[str, int] | None, key: str = "model.hidden") -> dict[str, int]:
    """Per-modality hidden widths: the config's, else the paper's default for the modality kind."""
    hidden = dict(hidden or {})
    unknown = sorted(set(hidden) - set(spec.modalities))
    if unknown:
        raise ValueError(
            f"{key} sets widths for {unknown}, which the data lacks "
            f"(its modalities: {spec.names}); remove them or choose other data"
        )
    widths = {m: int(hidden.get(m, DEFAULT_HIDDEN[spec.kind(m)])) for m in spec.modalities}
    for m, h in widths.items():
        if h < 1:
            raise ValueError(f"{key}.{m} must be >= 1, got {h}")
    return widths


class UMINT(IntegrationModule):
    """UMINT LightningModule.

    Args:
        data_spec: the data's modalities and sizes.
        optimizer: optimiser factory (Adam lr 1e-3, eps 1e-7 in the reference).
        latent_dim: size of the latent code (64).
        hidden: modality -> hidden width; missing modalities use :data:`DEFAULT_HIDDEN`.
        loss_weights: modality -> lambda_m (default 1 each).
        alpha: L1 activity penalty weight (1e-4).
        beta: L2 kernel penalty weight (1e-3).
    """

    requirements: ClassVar[Requirements] = Requirements(min_modalities=1, paired=True)
    method_name: ClassVar[str] = "umint"

    def __init__(
        self,
        data_spec: DataSpec | Mapping[str, Any],
        optimizer: OptimizerFactory,
        latent_dim: int = 64,
        hidden: Mapping[str, int] | None = None,
        loss_weights: Mapping[str, float] | None = None,
        alpha: float = 1e-4,
        beta: float = 1e-3,
    ) -> None:
        super().__init__(data_spec, optimizer)
        if latent_dim < 1:
            raise ValueError(f"model.latent_dim must be >= 1, got {latent_dim}")
        if alpha < 0 or beta < 0:
            raise ValueError(f"model.alpha and model.beta must be >= 0, got {alpha}, {beta}")
        self.save_hyperparameters(logger=False)  # everything load_from_checkpoint needs
        self.widths = resolve_widths(self.spec, hidden)
        lambdas = dict(loss_weights or {})
        unknown = sorted(set(lambdas) - set(self.spec.modalities))
        if unknown:
            raise ValueError(f"model.loss_weights names {unknown}, which the data lacks ({self.spec.names})")
        self.loss_weights = {m: float(lambdas.get(m, 1.0)) for m in self.spec.modalities}
        self.alpha, self.beta = alpha, beta

        dims = self.spec.modalities
        self.encoders = nn.ModuleDict({m: Dense(dims[m], self.widths[m]) for m in dims})
        self.bottleneck = Dense(sum(self.widths.values()), latent_dim)
        self.decoder_hidden = nn.ModuleDict({m: Dense(latent_dim, self.widths[m]) for m in dims})
        self.decoder_out = nn.ModuleDict(
            {m: Dense(self.widths[m], dims[m], activation=None, hidden=False) for m in dims}
        )
        self._hidden_layers = [*self.encoders.values(), self.bottleneck, *self.decoder_hidden.values()]

    def _encode(self, x: Mapping[str, Tensor]) -> tuple[Tensor, list[Tensor]]:
        encoded = [self.encoders[m](x[m]) for m in self.spec.modalities]
        latent = self.bottleneck(torch.cat(encoded, dim=1))
        return latent, [*encoded, latent]

    def forward(self, x: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, Tensor], list[Tensor]]:
        latent, activations = self._encode(x)
        recon = {}
        for m in self.spec.modalities:
            h = self.decoder_hidden[m](latent)
            activations.append(h)
            recon[m] = self.decoder_out[m](h)
        return latent, recon, activations

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        x = batch["x"]
        _, recon, activations = self(x)
        parts = {}
        for m in self.spec.modalities:
            err = (recon[m] - x[m]).pow(2).mean(dim=1)
            if not self.spec.fully_paired:  # cells lacking m contribute nothing to MSE_m
                present = batch["mask"][m].to(err.dtype)
                err = err * present * (len(present) / present.sum().clamp(min=1.0))
            parts[f"mse_{m}"] = self.loss_weights[m] * err.mean()
        parts["l1_activity"] = self.alpha * l1_activity_penalty(activations)
        parts["l2_kernel"] = self.beta * l2_kernel_penalty(self._hidden_layers)
        return parts

    def embed(self, batch: Batch) -> Tensor:
        return self._encode(batch["x"])[0]

    def reconstruct(self, batch: Batch) -> dict[str, Tensor]:
        return self(batch["x"])[1]
