"""The UMINT family's explicit penalties, checked against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from scmint.nn.penalties import (
    kl_sparsity,
    kl_sparsity_penalty,
    l1_activity_penalty,
    l2_kernel_penalty,
)


def test_l1_activity_divides_each_layer_by_its_batch_size():
    # layer 1: |1| + |-2| + |3| + |0| = 6 over a batch of 2 -> 3; layer 2: 0.5 + 1.5 = 2 over 2 -> 1
    a1 = torch.tensor([[1.0, -2.0], [3.0, 0.0]])
    a2 = torch.tensor([[0.5], [1.5]])
    assert l1_activity_penalty([a1, a2]).item() == pytest.approx(4.0)


def test_l2_kernel_is_sum_of_squares_without_a_half():
    w1 = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # 1 + 4 + 9 + 16 = 30
    w2 = torch.tensor([[-0.5]])  # 0.25
    assert l2_kernel_penalty([w1, w2]).item() == pytest.approx(30.25)


def test_kl_sparsity_correct_form():
    rho, q = 0.01, torch.tensor(0.05)
    # 0.01 ln(0.01/0.05) + 0.99 ln(0.99/0.95) = -0.0160944 + 0.0408303
    assert kl_sparsity(q, rho).item() == pytest.approx(0.0247359, abs=1e-6)
    assert kl_sparsity(torch.tensor(rho), rho).item() == pytest.approx(0.0, abs=1e-7)


def test_kl_sparsity_legacy_reproduces_the_precedence_bug():
    rho, q = 0.01, torch.tensor(0.05)
    # the authors' log(1-p/1-p_hat) = log(1 - 0.01 - 0.05) = ln(0.94):
    # 0.01 ln(0.2) + 0.99 ln(0.94) = -0.0160944 - 0.0612566
    assert kl_sparsity(q, rho, legacy=True).item() == pytest.approx(-0.0773510, abs=1e-6)
    # no clamping, as in their code: a mean activation >= 1 - rho is NaN there and here
    assert math.isnan(kl_sparsity(torch.tensor(0.995), rho, legacy=True).item())


def test_kl_sparsity_correct_form_is_finite_where_relu_means_leave_0_1():
    for q in (0.0, 1.0, 2.5):
        assert math.isfinite(kl_sparsity(torch.tensor(q), 0.01).item())


def test_kl_sparsity_penalty_uses_the_mean_of_the_whole_matrix_over_batch_size():
    a = torch.tensor([[0.1, 0.0], [0.1, 0.0]])  # mean over all entries 0.05, batch 2
    assert kl_sparsity_penalty([a], 0.01).item() == pytest.approx(0.0247359 / 2, abs=1e-6)
    assert kl_sparsity_penalty([a, a], 0.01, legacy=True).item() == pytest.approx(
        2 * -0.0773510 / 2, abs=1e-6
    )


def test_penalties_are_differentiable_loss_terms():
    w = torch.tensor([[1.0, -2.0]], requires_grad=True)
    l2_kernel_penalty([w]).backward()
    assert torch.equal(w.grad, torch.tensor([[2.0, -4.0]]))  # d/dW sum W^2 = 2W


def test_legacy_kl_past_its_domain_has_a_nan_value_but_a_finite_gradient():
    """Why the authors' SAE trains at all: d log(x)/dx = 1/x is finite for x < 0, so batches whose
    mean activation passes 1 - rho log a NaN loss but still update the weights (TF does the same)."""
    q = torch.tensor(0.995, requires_grad=True)
    value = kl_sparsity(q, 0.01, legacy=True)
    value.backward()
    assert math.isnan(value.item())
    # d/dq [0.01 ln(0.01/q) + 0.99 ln(0.99 - q)] = -0.01/q - 0.99/(0.99 - q) = 197.99 at q = 0.995
    assert q.grad.item() == pytest.approx(-0.01 / 0.995 + 0.99 / 0.005, rel=1e-4)
