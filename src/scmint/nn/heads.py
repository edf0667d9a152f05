"""Heads on a cell embedding: SMILE's projection and soft-clustering heads."""

from __future__ import annotations

from torch import Tensor, nn

from scmint.nn.encoders import init_xavier_zero_


class ProjectionHead(nn.Module):
    """Linear map of the embedding to the space where instance-level NT-Xent is computed (SMILE: 128 -> 32)."""

    def __init__(self, d_in: int = 128, d_out: int = 32) -> None:
        super().__init__()
        if d_in < 1 or d_out < 1:
            raise ValueError(f"projection head sizes must be >= 1, got {d_in} -> {d_out}")
        self.linear = nn.Linear(d_in, d_out)

    def forward(self, z: Tensor) -> Tensor:
        return self.linear(z)


class ClusterHead(nn.Module):
    """Linear map + softmax: each cell's soft assignment to ``n_clusters`` clusters (SMILE: K = 25)."""

    def __init__(self, d_in: int = 128, n_clusters: int = 25) -> None:
        super().__init__()
        if d_in < 1 or n_clusters < 2:
            raise ValueError(
                f"cluster head needs d_in >= 1 and n_clusters >= 2, got {d_in}, {n_clusters}"
            )
        self.linear = nn.Linear(d_in, n_clusters)

    def forward(self, z: Tensor) -> Tensor:
        return self.linear(z).softmax(dim=1)


class ContrastiveHeads(nn.Module):
    """SMILE's two heads on one embedding; pSMILE shares one instance between its modalities.

    ``forward(z)`` returns ``(projection [B, d_proj], soft clusters [B, K])``.
    """

    def __init__(self, d_in: int = 128, d_proj: int = 32, n_clusters: int = 25) -> None:
        super().__init__()
        self.projection = ProjectionHead(d_in, d_proj)
        self.cluster = ClusterHead(d_in, n_clusters)
        init_xavier_zero_(self)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return self.projection(z), self.cluster(z)
