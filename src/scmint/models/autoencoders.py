"""The UMINT paper's autoencoder baselines (AE, DAE, SAE) and the base they share with UMINT.

:class:`RegularizedAutoencoder` holds what UMINT and the baselines have in common in the authors'
Keras code (DESIGN.md §3): a ReLU latent code, MSE reconstruction, an activity penalty on every
hidden layer's output (L1, alpha 1e-4, divided by the batch size as Keras does), ``beta * sum W^2``
on every hidden kernel (beta 1e-3; biases and output layers free), Adam. A subclass defines the
network (:meth:`~RegularizedAutoencoder.encode` / :meth:`~RegularizedAutoencoder.decode`) and,
where it differs, the reconstruction loss, the activity penalty or the input corruption.

The baselines are one stream on the concatenated modalities::

    Dense(sum d -> H, ReLU) -> Dense(H -> 64, ReLU) = latent -> Dense(64 -> H, ReLU) -> Dense(H -> sum d)

with one MSE over all features and H = 128 (138 in the paper's timing runs). DAE trains on
inputs plus Gaussian noise (sigma 0.01) against clean targets; SAE replaces the L1 activity
penalty by a KL sparsity penalty (rho 0.01, weight 3). Reconstructions are split back per
modality so the reconstruction score is computed per modality.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal, NamedTuple

import torch
from torch import Tensor

from scmint.data.spec import DataSpec
from scmint.models.base import (
    Batch,
    DataMismatchError,
    IntegrationModule,
    OptimizerFactory,
    Requirements,
)
from scmint.nn.dense import Dense
from scmint.nn.penalties import kl_sparsity_penalty, l1_activity_penalty, l2_kernel_penalty

#: How the kernels are initialised: see :class:`RegularizedAutoencoder`.
InitSeeding = Literal["independent", "per_layer_seed"]


class Encoded(NamedTuple):
    """Latent code and the hidden activations computed on the way (all penalised)."""

    latent: Tensor
    activations: list[Tensor]


class Decoded(NamedTuple):
    """Per-modality reconstructions and the decoder's hidden activations (all penalised)."""

    reconstruction: dict[str, Tensor]
    activations: list[Tensor]


def masked_mse(reconstruction: Tensor, target: Tensor, present: Tensor | None) -> Tensor:
    """Keras ``mean_squared_error``: mean over features, then over the cells that have the modality.

    ``present`` (BoolTensor[B]) drops cells lacking the modality (partially paired data); None
    means every cell has it.
    """
    per_cell = (reconstruction - target).pow(2).mean(dim=1)
    if present is None:
        return per_cell.mean()
    weight = present.to(per_cell.dtype)
    return (per_cell * weight).sum() / weight.sum().clamp(min=1.0)


class RegularizedAutoencoder(IntegrationModule):
    """Base of UMINT, AE, DAE and SAE: loss bookkeeping, penalties, embedding, reconstruction.

    Subclasses build their layers, list the penalised ones in ``self.hidden_layers`` (every
    hidden Dense layer, never an output layer) and implement :meth:`encode` and :meth:`decode`.

    Args:
        data_spec: the data's modalities and sizes.
        optimizer: optimiser factory (Adam lr 1e-3, eps 1e-7 in the reference).
        latent_dim: size of the ReLU latent code (64).
        alpha: weight of the L1 activity penalty (1e-4).
        beta: weight of the L2 kernel penalty (1e-3).
        init_seeding: ``independent`` (default) draws every kernel from torch's global generator;
            ``per_layer_seed`` reproduces the authors' seeded Keras initializers for exact
            comparisons: every kernel comes from a fresh generator seeded with ``init_seed``, so
            same-shape layers start identical (:mod:`scmint.nn.dense`).
        init_seed: the seed of ``per_layer_seed``; None draws one from torch's global generator
            (so it follows the run seed). Ignored by ``independent``.
    """

    requirements: ClassVar[Requirements] = Requirements(min_modalities=1, paired=True)

    def __init__(
        self,
        data_spec: DataSpec | Mapping[str, Any],
        optimizer: OptimizerFactory,
        latent_dim: int = 64,
        alpha: float = 1e-4,
        beta: float = 1e-3,
        init_seeding: InitSeeding = "independent",
        init_seed: int | None = None,
    ) -> None:
        super().__init__(data_spec, optimizer)
        if latent_dim < 1:
            raise ValueError(f"model.latent_dim must be >= 1, got {latent_dim}")
        if alpha < 0 or beta < 0:
            raise ValueError(f"model.alpha and model.beta must be >= 0, got {alpha}, {beta}")
        if init_seeding not in ("independent", "per_layer_seed"):
            raise ValueError(
                "model.init_seeding must be 'independent' or 'per_layer_seed', "
                f"got {init_seeding!r}"
            )
        self.init_seeding = init_seeding
        #: The seed every kernel is drawn with under ``per_layer_seed``; None under ``independent``.
        self.kernel_seed: int | None = None
        if init_seeding == "per_layer_seed":
            self.kernel_seed = (
                int(torch.randint(0, 2**62, ()).item()) if init_seed is None else int(init_seed)
            )
        # Collects the init arguments of the whole subclass chain: what load_from_checkpoint needs.
        self.save_hyperparameters(logger=False)
        self.latent_dim = latent_dim
        self.alpha, self.beta = alpha, beta
        self.hidden_layers: list[Dense] = []

    # ---- the network (subclasses) ----------------------------------------------------------
    def encode(self, x: Mapping[str, Tensor]) -> Encoded:
        raise NotImplementedError

    def decode(self, latent: Tensor) -> Decoded:
        raise NotImplementedError

    # ---- loss parts (overridable) --------------------------------------------------------
    def corrupt(self, batch: Batch) -> dict[str, Tensor]:
        """The inputs the network sees in training (DAE adds noise); targets stay clean."""
        return batch["x"]

    def reconstruction_loss(
        self, batch: Batch, reconstruction: Mapping[str, Tensor]
    ) -> dict[str, Tensor]:
        """One MSE over all features (the baselines); UMINT overrides with one per modality."""
        names = self.spec.names
        target = torch.cat([batch["x"][m] for m in names], dim=1)
        output = torch.cat([reconstruction[m] for m in names], dim=1)
        return {"mse": masked_mse(output, target, None)}

    def activity_penalty(self, activations: list[Tensor]) -> dict[str, Tensor]:
        """alpha * L1 of the hidden activations (SAE overrides with its KL penalty)."""
        return {"l1_activity": self.alpha * l1_activity_penalty(activations)}

    def kernel_penalty(self) -> dict[str, Tensor]:
        return {
            "l2_kernel": self.beta
            * l2_kernel_penalty([layer.kernel for layer in self.hidden_layers])
        }

    # ---- IntegrationModule API -----------------------------------------------------------
    def forward(self, x: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, Tensor], list[Tensor]]:
        """Latent code, per-modality reconstructions and every hidden activation (layer order)."""
        encoded = self.encode(x)
        decoded = self.decode(encoded.latent)
        return encoded.latent, decoded.reconstruction, [*encoded.activations, *decoded.activations]

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        # Lightning puts the module in eval mode for validation: validation sees clean inputs,
        # as the reference's validation_data=(val, val).
        inputs = self.corrupt(batch) if self.training else batch["x"]
        _, reconstruction, activations = self(inputs)
        return {
            **self.reconstruction_loss(batch, reconstruction),
            **self.activity_penalty(activations),
            **self.kernel_penalty(),
        }

    def embed(self, batch: Batch) -> Tensor:
        return self.encode(batch["x"]).latent

    def reconstruct(self, batch: Batch) -> dict[str, Tensor]:
        return self.decode(self.encode(batch["x"]).latent).reconstruction


class AE(RegularizedAutoencoder):
    """Plain autoencoder on the concatenated modalities (the UMINT paper's AE baseline).

    Args:
        data_spec, optimizer, latent_dim, alpha, beta: see :class:`RegularizedAutoencoder`.
        hidden_dim: H, the width of the hidden layers around the latent code (128; the paper's
            timing runs use 138 = 128 + 10 to match UMINT's CITE-seq widths).
    """

    method_name: ClassVar[str] = "ae"

    def __init__(
        self,
        data_spec: DataSpec | Mapping[str, Any],
        optimizer: OptimizerFactory,
        latent_dim: int = 64,
        hidden_dim: int = 128,
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
        if hidden_dim < 1:
            raise ValueError(f"model.hidden_dim must be >= 1, got {hidden_dim}")
        if len(self.spec.modalities) > 1 and not self.spec.fully_paired:
            raise DataMismatchError(
                f"{self.method_name} concatenates the modalities {self.spec.names}, so every cell "
                "needs all of them, but some cells lack one; use model=umint (which masks missing "
                "modalities) or select cells measured in every modality."
            )
        self.hidden_dim = hidden_dim
        n_features = self.spec.total_features
        seed = self.kernel_seed
        self.encoder1 = Dense(n_features, hidden_dim, seed=seed)
        self.encoder2 = Dense(hidden_dim, latent_dim, seed=seed)
        self.decoder1 = Dense(latent_dim, hidden_dim, seed=seed)
        self.decoder2 = Dense(hidden_dim, n_features, activation=None, hidden=False, seed=seed)
        self.hidden_layers = [self.encoder1, self.encoder2, self.decoder1]

    def encode(self, x: Mapping[str, Tensor]) -> Encoded:
        h = self.encoder1(torch.cat([x[m] for m in self.spec.names], dim=1))
        latent = self.encoder2(h)
        return Encoded(latent, [h, latent])

    def decode(self, latent: Tensor) -> Decoded:
        h = self.decoder1(latent)
        parts = torch.split(self.decoder2(h), list(self.spec.modalities.values()), dim=1)
        return Decoded(dict(zip(self.spec.names, parts, strict=True)), [h])


class DAE(AE):
    """Denoising autoencoder: AE trained on noisy inputs against clean targets.

    Args:
        noise_std: sigma of the additive Gaussian noise (0.01 in the authors' code).
        noise: ``per_batch`` draws fresh noise for every training batch (our default: the usual
            denoising-autoencoder practice); ``fixed`` draws one noise matrix for all cells
            before training and reuses it every epoch, as the authors' code does.
        noise_seed: seed of the ``fixed`` noise; None draws it from torch's global generator at
            construction (so it follows the run seed). It is stored in the checkpoint, so a
            resumed run adds the same noise.
        Other arguments: see :class:`AE`.
    """

    method_name: ClassVar[str] = "dae"

    def __init__(
        self,
        data_spec: DataSpec | Mapping[str, Any],
        optimizer: OptimizerFactory,
        latent_dim: int = 64,
        hidden_dim: int = 128,
        alpha: float = 1e-4,
        beta: float = 1e-3,
        noise_std: float = 0.01,
        noise: Literal["per_batch", "fixed"] = "per_batch",
        noise_seed: int | None = None,
        init_seeding: InitSeeding = "independent",
        init_seed: int | None = None,
    ) -> None:
        super().__init__(
            data_spec, optimizer, latent_dim, hidden_dim, alpha, beta, init_seeding, init_seed
        )
        if noise not in ("per_batch", "fixed"):
            raise ValueError(f"model.noise must be 'per_batch' or 'fixed', got {noise!r}")
        if noise_std < 0:
            raise ValueError(f"model.noise_std must be >= 0, got {noise_std}")
        self.noise_std, self.noise = noise_std, noise
        # Drawn after the layers, so a DAE starts from the same weights as an AE of the same seed.
        seed = int(torch.randint(0, 2**62, ()).item()) if noise_seed is None else int(noise_seed)
        self.register_buffer("noise_seed", torch.tensor(seed, dtype=torch.int64))
        self._fixed_noise: Tensor | None = None

    def fixed_noise(self) -> Tensor:
        """The noise matrix [n_cells, sum d] of ``noise: fixed``, rebuilt from ``noise_seed``.

        Built on first use rather than in ``__init__``: a resumed run loads ``noise_seed`` from its
        checkpoint after construction. Not saved itself (it can be large; the seed suffices).
        """
        if self._fixed_noise is None or self._fixed_noise.device != self.device:
            generator = torch.Generator().manual_seed(int(self.noise_seed))
            noise = torch.randn(self.spec.n_cells, self.spec.total_features, generator=generator)
            self._fixed_noise = noise.to(self.device)
        return self._fixed_noise

    def load_state_dict(self, state_dict: Mapping[str, Any], *args: Any, **kwargs: Any) -> Any:
        self._fixed_noise = None  # a new noise_seed arrives with the weights
        return super().load_state_dict(state_dict, *args, **kwargs)

    def corrupt(self, batch: Batch) -> dict[str, Tensor]:
        x = batch["x"]
        if self.noise == "fixed":
            rows = self.fixed_noise()[batch["index"].to(self.device)]
            parts = torch.split(rows, list(self.spec.modalities.values()), dim=1)
            noise = dict(zip(self.spec.names, parts, strict=True))
        else:
            noise = {m: torch.randn_like(x[m]) for m in self.spec.names}
        return {m: x[m] + self.noise_std * noise[m] for m in self.spec.names}


class SAE(AE):
    """Sparse autoencoder: AE with a KL sparsity penalty in place of the L1 activity penalty.

    The penalty is ``weight * KL(rho || mean activation) / batch size`` on each of the three
    hidden layers, the mean taken over the whole batch x units matrix, as in the authors' code
    (see :func:`scmint.nn.penalties.kl_sparsity_penalty`). The L2 kernel penalty stays.

    Args:
        sparsity_target: rho (0.01).
        sparsity_weight: the KL's weight (3).
        legacy_kl: reproduce the authors' operator-precedence bug, log(1 - rho - rho_hat) in
            place of log((1 - rho) / (1 - rho_hat)), for exact comparison with their numbers.
        Other arguments: see :class:`AE` (no ``alpha``: there is no L1 penalty).
    """

    method_name: ClassVar[str] = "sae"

    def __init__(
        self,
        data_spec: DataSpec | Mapping[str, Any],
        optimizer: OptimizerFactory,
        latent_dim: int = 64,
        hidden_dim: int = 128,
        beta: float = 1e-3,
        sparsity_target: float = 0.01,
        sparsity_weight: float = 3.0,
        legacy_kl: bool = False,
        init_seeding: InitSeeding = "independent",
        init_seed: int | None = None,
    ) -> None:
        super().__init__(
            data_spec,
            optimizer,
            latent_dim,
            hidden_dim,
            alpha=0.0,
            beta=beta,
            init_seeding=init_seeding,
            init_seed=init_seed,
        )
        if not 0 < sparsity_target < 1:
            raise ValueError(f"model.sparsity_target must be in (0, 1), got {sparsity_target}")
        if sparsity_weight < 0:
            raise ValueError(f"model.sparsity_weight must be >= 0, got {sparsity_weight}")
        self.sparsity_target, self.sparsity_weight = sparsity_target, sparsity_weight
        self.legacy_kl = legacy_kl

    def activity_penalty(self, activations: list[Tensor]) -> dict[str, Tensor]:
        kl = kl_sparsity_penalty(activations, self.sparsity_target, legacy=self.legacy_kl)
        return {"kl_sparsity": self.sparsity_weight * kl}
