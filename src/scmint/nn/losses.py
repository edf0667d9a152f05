"""Contrastive losses of the SMILE family (Xu et al., Bioinformatics 2022).

Both losses are the NT-Xent (normalised temperature-scaled cross entropy) of SimCLR, written once
here and vectorised so they run at any batch size on CPU or GPU:

* :func:`nt_xent` contrasts rows: row ``i`` of ``a`` and row ``i`` of ``b`` are a positive pair,
  every other row of either matrix is a negative. SMILE applies it to the 32-d projections of two
  views of a batch of cells.
* :func:`cluster_contrastive` contrasts *columns*: SMILE's K-way softmax head turns a batch into a
  ``B x K`` matrix of soft cluster assignments, and column ``k`` of one view should match column
  ``k`` of the other. It is :func:`nt_xent` on the transposed matrices, with its own temperature.
  The authors' code has no entropy term beside it (unlike Li et al.'s Contrastive Clustering),
  so neither has scmint's.

Facts taken from the authors' ``ContrastiveLoss`` (rpmccordlab/SMILE): rows are L2-normalised,
the similarity is the cosine, the denominator of anchor ``i`` sums over all ``2N - 1`` other rows
(the positive included), and the loss is the sum over all ``2N`` anchors divided by ``2N``. Their
version builds a mask for one fixed batch size on CUDA and exponentiates directly; this one builds
nothing batch-size specific and uses log-sum-exp (via ``cross_entropy``), so a temperature of
0.05 cannot overflow.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def nt_xent(a: Tensor, b: Tensor, temperature: float) -> Tensor:
    """NT-Xent between paired rows of ``a`` and ``b`` (both ``[N, d]``), averaged over ``2N`` anchors.

    For anchor ``i`` among the ``2N`` stacked rows with positive ``p(i)``::

        loss_i = -log( exp(s_ip / t) / sum_{k != i} exp(s_ik / t) ),  s = cosine similarity

    With ``N = 1`` the only other row is the positive, so the loss is exactly 0. For random
    (uninformative) embeddings all similarities are about equal and the loss is about
    ``log(2N - 1)``.

    Args:
        a, b: two views, row ``i`` of ``a`` paired with row ``i`` of ``b``.
        temperature: the softmax temperature ``t`` (> 0).
    """
    if a.shape != b.shape or a.dim() != 2:
        raise ValueError(
            f"nt_xent needs two [N, d] tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"nt_xent temperature must be > 0, got {temperature}")
    n = a.shape[0]
    z = F.normalize(torch.cat([a, b]), dim=1)
    logits = (z @ z.T) / temperature
    self_pairs = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_pairs, float("-inf"))  # an anchor is never its own negative
    positives = torch.arange(2 * n, device=z.device).roll(n)  # i <-> i + N
    return F.cross_entropy(logits, positives)  # mean over the 2N anchors, log-sum-exp inside


def cluster_contrastive(p_a: Tensor, p_b: Tensor, temperature: float) -> Tensor:
    """Cluster-level contrast: NT-Xent between the K columns of two ``[B, K]`` soft assignments."""
    return nt_xent(p_a.T, p_b.T, temperature)
