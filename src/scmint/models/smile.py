"""SMILE, pSMILE and mpSMILE: contrastive integration by mutual information (Xu et al. 2022).

Reference: Xu, Das & McCord, "SMILE: mutual information learning for integration of single-cell
omics data", Bioinformatics 38(2):476 (2022), doi 10.1093/bioinformatics/btab706; settings from the
authors' code (rpmccordlab/SMILE) and tutorials, DESIGN.md §3.

All three share one network layout and one objective, only what counts as a positive pair changes:

* **SMILE** (one modality, batches): two noisy views ``x + N(0, sigma^2)`` of each cell go through one
  encoder (d -> 1000 -> 512 -> 128, BatchNorm + ReLU), a 32-d projection head and a K-way softmax
  head; NT-Xent pulls the two views of a cell together (tau 0.05) and NT-Xent on the softmax
  *columns* pulls the two views of a cluster together (tau 0.15). Embedding: the 128-d encoder output.
* **pSMILE** (two paired modalities): one encoder per modality, heads shared; the positives are the
  two modalities of a cell (tau 0.1 / 1.0), plus an optional MSE between the two 128-d embeddings.
* **mpSMILE**: pSMILE plus SMILE's self-pairing of the anchor modality (RNA by default): one more
  NT-Xent pair between the anchor and a second noisy view of it, on both heads.

Each view is encoded in its own forward pass, as in the authors' trainers, so BatchNorm sees
the statistics of one view (encoding both views in one call would pool them).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scmint.data.spec import DataSpec
from scmint.models.base import (
    Batch,
    DataMismatchError,
    IntegrationModule,
    OptimizerFactory,
    Requirements,
)
from scmint.nn.encoders import MLPEncoder
from scmint.nn.heads import ContrastiveHeads
from scmint.nn.losses import cluster_contrastive, nt_xent

log = logging.getLogger(__name__)


def noisy_view(x: Tensor, sigma: float) -> Tensor:
    """SMILE's augmentation: additive Gaussian noise, drawn from torch's global RNG.

    The global RNG (not a private generator) is what the base class saves in checkpoints, so a
    resumed run draws the same noise as an uninterrupted one.
    """
    return x + sigma * torch.randn_like(x) if sigma > 0 else x


def contrast(
    heads: ContrastiveHeads, z_a: Tensor, z_b: Tensor, tau_feature: float, tau_cluster: float
) -> tuple[Tensor, Tensor]:
    """Instance-level NT-Xent on the projections and cluster-level NT-Xent on the soft assignments."""
    f_a, p_a = heads(z_a)
    f_b, p_b = heads(z_b)
    return nt_xent(f_a, f_b, tau_feature), cluster_contrastive(p_a, p_b, tau_cluster)


def check_training_batch(n: int, method: str) -> None:
    """BatchNorm's batch statistics and NT-Xent's negatives need at least two cells per batch."""
    if n < 2:
        raise ValueError(
            f"{method} needs at least 2 cells per training batch (BatchNorm statistics, contrastive "
            f"negatives), got {n}; raise data.batch_size or use a dataset with more training cells"
        )


def resolve_anchor(spec: DataSpec, anchor: str | None, key: str = "model.anchor") -> str:
    """The modality that is self-paired (mpSMILE) or taught from: the config's, else the first RNA-like one."""
    if anchor is not None:
        if anchor not in spec.modalities:
            raise ValueError(
                f"{key}={anchor!r} is not a modality of the data (it has {spec.names})"
            )
        return anchor
    rna_like = [m for m in spec.names if spec.kind(m) == "rna"]
    if rna_like:
        return rna_like[0]
    log.info("%s: no RNA-like modality in %s; using the first, %s", key, spec.names, spec.names[0])
    return spec.names[0]


def check_fully_paired(spec: DataSpec, method: str) -> None:
    """Paired SMILE variants contrast the modalities of one cell, so every cell needs every modality."""
    if not spec.fully_paired:
        raise DataMismatchError(
            f"{method} needs paired data (every cell measured in every modality) but the modalities "
            f"{', '.join(spec.names)} are only partly paired or not paired at all; use a paired "
            f"dataset, or integrate one modality's batches with model=smile"
        )


class _SmileFamily(IntegrationModule):
    """What SMILE, pSMILE and mpSMILE share: network sizes, heads, temperatures, noise, optimiser."""

    def __init__(
        self,
        data_spec: DataSpec | Mapping[str, Any],
        optimizer: OptimizerFactory,
        n_clusters: int,
        latent_dim: int,
        hidden: Sequence[int],
        projection_dim: int,
        noise_sigma: float,
        tau_feature: float,
        tau_cluster: float,
    ) -> None:
        super().__init__(data_spec, optimizer)
        if noise_sigma < 0:
            raise ValueError(f"model.noise_sigma must be >= 0, got {noise_sigma}")
        if tau_feature <= 0 or tau_cluster <= 0:
            raise ValueError(
                f"model.tau_feature and model.tau_cluster must be > 0, got {tau_feature}, {tau_cluster}"
            )
        self.hidden = tuple(int(h) for h in hidden)
        self.latent_dim = int(latent_dim)
        self.noise_sigma = float(noise_sigma)
        self.tau_feature, self.tau_cluster = float(tau_feature), float(tau_cluster)
        self.heads = ContrastiveHeads(self.latent_dim, projection_dim, n_clusters)

    def make_encoder(self, modality: str) -> MLPEncoder:
        return MLPEncoder(self.spec.modalities[modality], self.hidden, self.latent_dim)

    def contrast(self, z_a: Tensor, z_b: Tensor) -> tuple[Tensor, Tensor]:
        return contrast(self.heads, z_a, z_b, self.tau_feature, self.tau_cluster)


class SMILE(_SmileFamily):
    """SMILE on one modality (horizontal integration of its batches).

    Args:
        data_spec: the data; exactly one modality (select one with ``data.modalities=[rna]``).
        optimizer: optimiser factory (authors: SGD lr 0.01, momentum 0.9, weight decay 5e-4).
        n_clusters: K of the softmax head (authors' tutorials 25; their code's default is 10).
        latent_dim: embedding size (128).
        hidden: encoder hidden widths (1000, 512).
        projection_dim: projection head size (32).
        noise_sigma: sd of the Gaussian noise of each view (1, on z-scored input).
        tau_feature: NT-Xent temperature on the projections (0.05).
        tau_cluster: NT-Xent temperature on the softmax columns (0.15).
    """

    requirements: ClassVar[Requirements] = Requirements(min_modalities=1, max_modalities=1)
    method_name: ClassVar[str] = "smile"

    def __init__(
        self,
        data_spec: DataSpec | Mapping[str, Any],
        optimizer: OptimizerFactory,
        n_clusters: int = 25,
        latent_dim: int = 128,
        hidden: Sequence[int] = (1000, 512),
        projection_dim: int = 32,
        noise_sigma: float = 1.0,
        tau_feature: float = 0.05,
        tau_cluster: float = 0.15,
    ) -> None:
        super().__init__(
            data_spec,
            optimizer,
            n_clusters,
            latent_dim,
            hidden,
            projection_dim,
            noise_sigma,
            tau_feature,
            tau_cluster,
        )
        self.save_hyperparameters(logger=False)
        self.modality = self.spec.names[0]
        self.encoder = self.make_encoder(self.modality)

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        x = batch["x"][self.modality]
        if self.training:
            check_training_batch(x.shape[0], self.method_name)
        z_1 = self.encoder(noisy_view(x, self.noise_sigma))
        z_2 = self.encoder(noisy_view(x, self.noise_sigma))
        feature, cluster = self.contrast(z_1, z_2)
        return {"nt_xent_self": feature, "cluster_self": cluster}

    def embed(self, batch: Batch) -> Tensor:
        return self.encoder(batch["x"][self.modality])


class PSMILE(_SmileFamily):
    """pSMILE: two paired modalities, one encoder each, shared heads; a cell's modalities are positives.

    Args:
        data_spec: the data; exactly two fully paired modalities.
        optimizer, n_clusters, latent_dim, hidden, projection_dim: as :class:`SMILE`.
        noise_sigma: sd of the Gaussian noise added to every modality's input (1, as the authors'
            paired trainer does; 0 turns it off).
        tau_feature: NT-Xent temperature on the projections (0.1).
        tau_cluster: NT-Xent temperature on the softmax columns (1.0).
        mse_weight: weight of the mean squared difference of the two 128-d embeddings (0, as the
            published code; the paper describes the term).
        anchor: the modality listed first in the loss and self-paired by mpSMILE (default: the
            first RNA-like modality).
    """

    requirements: ClassVar[Requirements] = Requirements(
        min_modalities=2, max_modalities=2, paired=True
    )
    method_name: ClassVar[str] = "psmile"

    def __init__(
        self,
        data_spec: DataSpec | Mapping[str, Any],
        optimizer: OptimizerFactory,
        n_clusters: int = 25,
        latent_dim: int = 128,
        hidden: Sequence[int] = (1000, 512),
        projection_dim: int = 32,
        noise_sigma: float = 1.0,
        tau_feature: float = 0.1,
        tau_cluster: float = 1.0,
        mse_weight: float = 0.0,
        anchor: str | None = None,
    ) -> None:
        spec = DataSpec.from_dict(data_spec)
        if len(spec.modalities) > 2:
            raise DataMismatchError(
                f"{self.method_name} pairs exactly two modalities but the data has {len(spec.modalities)} "
                f"({', '.join(spec.names)}); pick two with data.modalities=[a,b], or put all of them in "
                f"one space with experiment=smile_teacher"
            )
        super().__init__(
            spec,
            optimizer,
            n_clusters,
            latent_dim,
            hidden,
            projection_dim,
            noise_sigma,
            tau_feature,
            tau_cluster,
        )
        check_fully_paired(self.spec, self.method_name)
        if mse_weight < 0:
            raise ValueError(f"model.mse_weight must be >= 0, got {mse_weight}")
        self.save_hyperparameters(logger=False)
        self.mse_weight = float(mse_weight)
        self.anchor = resolve_anchor(self.spec, anchor)
        self.partner = next(m for m in self.spec.names if m != self.anchor)
        self.encoders = nn.ModuleDict({m: self.make_encoder(m) for m in self.spec.names})

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        x = batch["x"]
        if self.training:
            check_training_batch(x[self.anchor].shape[0], self.method_name)
        z_a = self.encoders[self.anchor](noisy_view(x[self.anchor], self.noise_sigma))
        z_b = self.encoders[self.partner](noisy_view(x[self.partner], self.noise_sigma))
        feature, cluster = self.contrast(z_a, z_b)
        parts = {"nt_xent_pair": feature, "cluster_pair": cluster}
        if self.mse_weight > 0:
            parts["mse_pair"] = self.mse_weight * F.mse_loss(z_a, z_b)
        parts.update(self.self_pair_loss(x, z_a))
        return parts

    def self_pair_loss(self, x: Mapping[str, Tensor], z_a: Tensor) -> dict[str, Tensor]:
        """Extra loss parts given the anchor's first view (none for pSMILE)."""
        return {}

    def embed_modalities(self, batch: Batch) -> dict[str, Tensor]:
        """Per-modality embeddings, L2-normalised (as the authors' tutorials compute them)."""
        return {m: F.normalize(self.encoders[m](batch["x"][m]), dim=1) for m in self.spec.names}

    def embed(self, batch: Batch) -> Tensor:
        """The joint embedding: the mean of the L2-normalised per-modality embeddings."""
        return torch.stack(list(self.embed_modalities(batch).values())).mean(dim=0)


class MPSMILE(PSMILE):
    """mpSMILE: pSMILE plus self-pairing of the anchor with a second noisy view of itself.

    The authors' paired trainer (``PairedSMILE_trainer``) is this method: the anchor's first view
    is contrasted with the partner modality and with the anchor's second view, on both heads,
    with the same temperatures (0.1 / 1.0) and weight 1 each.
    """

    method_name: ClassVar[str] = "mpsmile"

    def self_pair_loss(self, x: Mapping[str, Tensor], z_a: Tensor) -> dict[str, Tensor]:
        z_a2 = self.encoders[self.anchor](noisy_view(x[self.anchor], self.noise_sigma))
        feature, cluster = self.contrast(z_a, z_a2)
        return {"nt_xent_self": feature, "cluster_self": cluster}
