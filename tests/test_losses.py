"""NT-Xent and the cluster-level contrastive loss: hand-computed cases, limits, stability."""

from __future__ import annotations

import math

import pytest
import torch

from scmint.nn.losses import cluster_contrastive, nt_xent


def reference_nt_xent(a: torch.Tensor, b: torch.Tensor, t: float) -> float:
    """The SimCLR formula written out anchor by anchor, in float64 (the definition, not the code)."""
    z = torch.cat([a, b]).double()
    z = z / z.norm(dim=1, keepdim=True)
    n2 = z.shape[0]
    total = 0.0
    for i in range(n2):
        positive = (i + n2 // 2) % n2
        sims = [float(z[i] @ z[k]) / t for k in range(n2)]
        denominator = sum(math.exp(s) for k, s in enumerate(sims) if k != i)
        total += -math.log(math.exp(sims[positive]) / denominator)
    return total / n2


def test_nt_xent_hand_case_orthogonal_views():
    # two cells, identical views e1, e2: each anchor sees its positive at cosine 1 and two
    # negatives at cosine 0, so loss = -log(e^(1/t) / (e^(1/t) + 2)) = log(1 + 2 e^(-1/t))
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    for t in (1.0, 0.5):
        expected = math.log(1 + 2 * math.exp(-1 / t))
        assert nt_xent(a, a.clone(), t).item() == pytest.approx(expected, rel=1e-6)


def test_nt_xent_hand_case_scale_invariant():
    # rows are L2-normalised: scaling a view changes nothing
    a = torch.tensor([[3.0, 0.0], [0.0, 0.5]])
    b = torch.tensor([[0.2, 0.0], [0.0, 7.0]])
    assert nt_xent(a, b, 1.0).item() == pytest.approx(math.log(1 + 2 * math.exp(-1)), rel=1e-6)


def test_nt_xent_matches_the_written_out_formula():
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    for t in (0.05, 0.1, 1.0):
        assert nt_xent(a, b, t).item() == pytest.approx(reference_nt_xent(a, b, t), rel=1e-5)


@pytest.mark.parametrize("n", [8, 256])
def test_nt_xent_of_random_embeddings_is_log_2n_minus_1(n):
    # uninformative, high-dimensional embeddings: all cosines ~ 0, so each anchor's softmax is
    # uniform over its 2N - 1 candidates
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, 2048, generator=g), torch.randn(n, 2048, generator=g)
    assert nt_xent(a, b, 1.0).item() == pytest.approx(math.log(2 * n - 1), abs=0.02)


def test_nt_xent_of_one_pair_is_zero():
    # with N = 1 the positive is the only candidate
    assert nt_xent(torch.randn(1, 3), torch.randn(1, 3), 0.05).item() == pytest.approx(
        0.0, abs=1e-6
    )


def test_nt_xent_is_stable_at_low_temperature():
    # e^(1/0.01) overflows float32; log-sum-exp does not
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    loss = nt_xent(a, a.clone(), 0.01)
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(math.log1p(2 * math.exp(-100)), abs=1e-6)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 32, generator=g, requires_grad=True)
    nt_xent(x, x.detach() + 0.01 * torch.randn(64, 32, generator=g), 0.01).backward()
    assert torch.isfinite(x.grad).all()


def test_nt_xent_refuses_bad_input():
    with pytest.raises(ValueError, match="one shape"):
        nt_xent(torch.randn(3, 2), torch.randn(4, 2), 0.1)
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(torch.randn(3, 2), torch.randn(3, 2), 0.0)


def test_cluster_loss_hand_case_orthogonal_columns():
    # columns of the 3 x 2 assignment matrix are (1,0,1) and (0,1,0): orthogonal, identical views
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    assert cluster_contrastive(p, p.clone(), 1.0).item() == pytest.approx(
        math.log(1 + 2 * math.exp(-1)), rel=1e-6
    )


def test_cluster_loss_hand_case_overlapping_columns():
    # columns u1 = (0.5, 1), u2 = (1, 0); cos(u1, u2) = 0.5 / sqrt(1.25). Every anchor has its
    # positive at cosine 1 and two negatives at that cosine: loss = log(e + 2 e^c) - 1 at t = 1
    p = torch.tensor([[0.5, 1.0], [1.0, 0.0]])
    c = 0.5 / math.sqrt(1.25)
    expected = math.log(math.e + 2 * math.exp(c)) - 1
    assert cluster_contrastive(p, p.clone(), 1.0).item() == pytest.approx(expected, rel=1e-6)


def test_cluster_loss_contrasts_columns_not_rows():
    g = torch.Generator().manual_seed(2)
    p_a = torch.softmax(torch.randn(7, 4, generator=g), dim=1)
    p_b = torch.softmax(torch.randn(7, 4, generator=g), dim=1)
    loss = cluster_contrastive(p_a, p_b, 0.15)
    assert loss.item() == pytest.approx(reference_nt_xent(p_a.T, p_b.T, 0.15), rel=1e-5)
    # permuting the cells of both views alike leaves the columns' cosines, hence the loss, unchanged
    perm = torch.randperm(7, generator=g)
    assert cluster_contrastive(p_a[perm], p_b[perm], 0.15).item() == pytest.approx(
        loss.item(), rel=1e-5
    )
