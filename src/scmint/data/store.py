"""Preprocessed cells held as tensors, ready to be gathered a batch at a time."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor


class DenseCellStore:
    """All modalities as dense float32 tensors aligned on one cell axis.

    Rows of a modality a cell lacks hold zeros and are flagged False in its mask, so partially
    paired data keeps one index space.
    """

    def __init__(
        self,
        features: dict[str, np.ndarray | sp.spmatrix | Tensor],
        masks: dict[str, np.ndarray | Tensor],
        labels: np.ndarray | Tensor,
        batches: np.ndarray | Tensor,
    ) -> None:
        self.features = {m: _as_float_tensor(x) for m, x in features.items()}
        self.masks = {m: torch.as_tensor(np.asarray(k), dtype=torch.bool) for m, k in masks.items()}
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        self.batches = torch.as_tensor(np.asarray(batches), dtype=torch.long)

    @property
    def n_cells(self) -> int:
        return len(self.labels)

    def gather(self, index: Tensor) -> dict[str, Any]:
        return {
            "x": {m: x.index_select(0, index) for m, x in self.features.items()},
            "mask": {m: k.index_select(0, index) for m, k in self.masks.items()},
            "index": index,
            "label": self.labels.index_select(0, index),
            "batch": self.batches.index_select(0, index),
        }

    def nbytes(self) -> int:
        return sum(x.element_size() * x.nelement() for x in self.features.values())


def _as_float_tensor(x: np.ndarray | sp.spmatrix | Tensor) -> Tensor:
    if isinstance(x, Tensor):
        return x.float().contiguous()
    if sp.issparse(x):
        x = x.toarray()
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
