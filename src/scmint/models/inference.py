"""Embedding all cells with a trained method: the input of every evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from lightning.fabric.utilities.apply_func import move_data_to_device

from scmint.models.base import IntegrationModule


@dataclass
class Embeddings:
    """What a trained method says about every cell, in dataset order.

    Attributes:
        embedding: the joint cell embedding [n, d].
        modality_embeddings: per-modality embeddings of paired methods (modality -> [n, d]).
        reconstructions: per-modality reconstructions of autoencoders (modality -> [n, d_m]).
    """

    embedding: np.ndarray
    modality_embeddings: dict[str, np.ndarray] = field(default_factory=dict)
    reconstructions: dict[str, np.ndarray] = field(default_factory=dict)


@torch.no_grad()
def embed_all(model: IntegrationModule, loader) -> Embeddings:
    """Run ``model.predict_step`` in eval mode over ``loader`` (all cells, in order).

    A plain loop rather than ``Trainer.predict``: it runs on one process after (DDP) training and
    needs no second Trainer.
    """
    was_training = model.training
    model.eval()
    chunks: dict[str, list] = {"embedding": []}
    per_modality: dict[str, list] = {}
    recon: dict[str, list] = {}
    for batch in loader:
        out = model.predict_step(move_data_to_device(batch, model.device))
        chunks["embedding"].append(out["embedding"].float().cpu())
        for m, emb in out.get("modality_embeddings", {}).items():
            per_modality.setdefault(m, []).append(emb.float().cpu())
        for m, rec in out.get("reconstruction", {}).items():
            recon.setdefault(m, []).append(rec.float().cpu())
    model.train(was_training)
    cat = lambda parts: torch.cat(parts).numpy()  # noqa: E731
    return Embeddings(
        embedding=cat(chunks["embedding"]),
        modality_embeddings={m: cat(v) for m, v in per_modality.items()},
        reconstructions={m: cat(v) for m, v in recon.items()},
    )
