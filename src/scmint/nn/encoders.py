"""Modality encoders: MLPs that map one modality's features to a cell embedding."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from torch import Tensor, nn


def init_xavier_zero_(module: nn.Module) -> None:
    """Glorot-uniform weights and zero biases on every Linear layer.

    The SMILE authors' tutorials apply exactly this (``weights_init``) to their networks before
    training; BatchNorm layers keep PyTorch's defaults (weight 1, bias 0).
    """
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)


class MLPEncoder(nn.Module):
    """``d -> hidden... -> out`` with Linear, BatchNorm1d and ReLU at *every* layer, the last included.

    This is the SMILE encoder (d -> 1000 -> 512 -> 128): the embedding is the output of the final
    BatchNorm + ReLU, so it is non-negative. BatchNorm normalises with batch statistics in training
    mode and with its running averages in eval mode, which is how embeddings are computed.

    Args:
        d_in: input features.
        hidden: widths of the hidden layers (SMILE: 1000, 512).
        d_out: embedding size (SMILE: 128).
    """

    def __init__(self, d_in: int, hidden: Sequence[int] = (1000, 512), d_out: int = 128) -> None:
        super().__init__()
        widths = [int(d_in), *(int(h) for h in hidden), int(d_out)]
        if min(widths) < 1:
            raise ValueError(f"encoder layer sizes must be >= 1, got {widths}")
        layers: list[nn.Module] = []
        for w_in, w_out in itertools.pairwise(widths):
            layers += [nn.Linear(w_in, w_out), nn.BatchNorm1d(w_out), nn.ReLU()]
        self.net = nn.Sequential(*layers)
        self.d_out = widths[-1]
        init_xavier_zero_(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
