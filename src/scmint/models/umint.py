"""UMINT: a modular autoencoder with one small encoder per modality (Maitra et al. 2023).

Each modality m gets its own first layer Dense(d_m -> h_m, ReLU); their outputs are concatenated
and compressed to a non-negative latent code Dense(sum h -> 64, ReLU). The decoder mirrors the
encoder per modality: Dense(64 -> h_m, ReLU) -> Dense(h_m -> d_m, linear). With n modalities the
network has 2n + 1 hidden layers, all carrying the L1 activity and L2 kernel penalties; the n
output layers carry none (authors' Keras code, ``Proposed/umint.py``; DESIGN.md §3).

Versus an autoencoder of matching widths on the concatenated input (H = sum h), the first layer
drops the cross-modality blocks of its weight matrix, sum_i d_i * sum_{j != i} h_j weights, and
the output layer drops as many again.

The loss is sum_m lambda_m MSE_m + alpha L1 + beta L2 (see
:class:`~scmint.models.autoencoders.RegularizedAutoencoder`); each MSE_m is logged on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from scmint.data.spec import DataSpec
from scmint.models.autoencoders import (
    Decoded,
    Encoded,
    InitSeeding,
    RegularizedAutoencoder,
    masked_mse,
)
from scmint.models.base import Batch, OptimizerFactory
from scmint.nn.dense import Dense

#: Hidden width per modality kind when the config gives none: the paper's CITE-seq (RNA 128,
#: ADT 10) and RNA+ATAC (128, 128) choices; other kinds get 128.
DEFAULT_HIDDEN = {"rna": 128, "adt": 10, "atac": 128, "other": 128}


def resolve_widths(
    spec: DataSpec, hidden: Mapping[str, int] | None, key: str = "model.hidden"
) -> dict[str, int]:
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


def resolve_loss_weights(
    spec: DataSpec, weights: Mapping[str, float] | None, key: str = "model.loss_weights"
) -> dict[str, float]:
    """lambda_m per modality: the config's, else 1 (the authors' ``lossWeights``)."""
    weights = dict(weights or {})
    unknown = sorted(set(weights) - set(spec.modalities))
    if unknown:
        raise ValueError(
            f"{key} names {unknown}, which the data lacks (its modalities: {spec.names}); "
            "remove them or choose other data"
        )
    resolved = {m: float(weights.get(m, 1.0)) for m in spec.modalities}
    negative = {m: w for m, w in resolved.items() if w < 0}
    if negative:
        raise ValueError(f"{key} must be >= 0, got {negative}")
    return resolved


class UMINT(RegularizedAutoencoder):
    """UMINT LightningModule, for any number of modalities.

    Args:
        data_spec: the data's modalities and sizes.
        optimizer: optimiser factory (Adam lr 1e-3, eps 1e-7 in the reference).
        latent_dim: size of the latent code (64).
        hidden: modality -> hidden width h_m; missing modalities use :data:`DEFAULT_HIDDEN`.
        loss_weights: modality -> lambda_m (default 1 each).
        alpha: L1 activity penalty weight (1e-4).
        beta: L2 kernel penalty weight (1e-3).
        init_seeding, init_seed: ``independent`` (default) or the authors' seeded Keras
            initializers (``per_layer_seed``); see :class:`RegularizedAutoencoder`.
    """

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
        init_seeding: InitSeeding = "independent",
        init_seed: int | None = None,
    ) -> None:
        super().__init__(
            data_spec,
            optimizer,
            latent_dim=latent_dim,
            alpha=alpha,
            beta=beta,
            init_seeding=init_seeding,
            init_seed=init_seed,
        )
        self.widths = resolve_widths(self.spec, hidden)
        self.loss_weights = resolve_loss_weights(self.spec, loss_weights)

        dims, widths, seed = self.spec.modalities, self.widths, self.kernel_seed
        # Layer creation order = the authors' (encoders, bottleneck, decoders, outputs).
        self.encoders = nn.ModuleDict({m: Dense(dims[m], widths[m], seed=seed) for m in dims})
        self.bottleneck = Dense(sum(widths.values()), latent_dim, seed=seed)
        self.decoder_hidden = nn.ModuleDict(
            {m: Dense(latent_dim, widths[m], seed=seed) for m in dims}
        )
        self.decoder_out = nn.ModuleDict(
            {m: Dense(widths[m], dims[m], activation=None, hidden=False, seed=seed) for m in dims}
        )
        self.hidden_layers = [
            *self.encoders.values(),
            self.bottleneck,
            *self.decoder_hidden.values(),
        ]

    def encode(self, x: Mapping[str, Tensor]) -> Encoded:
        per_modality = [self.encoders[m](x[m]) for m in self.spec.names]
        latent = self.bottleneck(torch.cat(per_modality, dim=1))
        return Encoded(latent, [*per_modality, latent])

    def decode(self, latent: Tensor) -> Decoded:
        hidden = {m: self.decoder_hidden[m](latent) for m in self.spec.names}
        reconstruction = {m: self.decoder_out[m](h) for m, h in hidden.items()}
        return Decoded(reconstruction, list(hidden.values()))

    def reconstruction_loss(
        self, batch: Batch, reconstruction: Mapping[str, Tensor]
    ) -> dict[str, Tensor]:
        """lambda_m * MSE_m per modality, each its own loss part (``mse_<modality>``)."""
        masks = None if self.spec.fully_paired else batch["mask"]
        return {
            f"mse_{m}": self.loss_weights[m]
            * masked_mse(reconstruction[m], batch["x"][m], None if masks is None else masks[m])
            for m in self.spec.names
        }
