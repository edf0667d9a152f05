"""Explicit regularisation terms of the UMINT family, written the way Keras computes them.

The UMINT authors' Keras code regularises through layer arguments; to match their numbers the
terms here reproduce what Keras adds to the loss, not the textbook forms:

* ``activity_regularizer`` penalties are computed on a layer's output and **divided by the batch
  size** (Keras ``Layer._handle_activity_regularization``), once per layer;
* ``kernel_regularizer=l2(beta)`` adds ``beta * sum(W ** 2)``: no 1/2, bias not included. It is a
  loss term, so Adam rescales its gradient like any other: it is *not* optimiser weight decay.

Each function returns the unweighted sum over layers; the model multiplies by its weight and
logs the product as its own loss part.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

#: Floor and ceiling of the mean activation in the *correct* KL: ReLU units can be exactly 0 on
#: average (log p/0) or above 1 (log of a negative), where the KL of two Bernoullis is undefined.
KL_EPS = 1e-6


def l2_kernel_penalty(kernels: Sequence[Tensor]) -> Tensor:
    """sum over ``kernels`` of sum(W ** 2): Keras ``l2`` without its weight (no 1/2)."""
    return torch.stack([w.pow(2).sum() for w in kernels]).sum()


def l1_activity_penalty(activations: Sequence[Tensor]) -> Tensor:
    """sum over layers of sum|a| / batch size: Keras ``activity_regularizer=l1`` without its weight."""
    return torch.stack([a.abs().sum() / a.shape[0] for a in activations]).sum()


def kl_sparsity(mean_activation: Tensor, rho: float, legacy: bool = False) -> Tensor:
    """KL(rho || rho_hat) of a layer's mean activation ``rho_hat`` (a scalar tensor).

    Correct form: rho log(rho / rho_hat) + (1 - rho) log((1 - rho) / (1 - rho_hat)), with
    rho_hat clamped to [KL_EPS, 1 - KL_EPS] (ReLU means can leave (0, 1); our choice).

    ``legacy=True`` reproduces the UMINT authors' ``sparse_regularizer``, which writes
    ``log(1-p/1-p_hat)``: operator precedence makes that log(1 - rho - rho_hat). No clamping,
    as in their code. This term *decreases* as the mean activation grows towards 1 - rho, so it
    rewards dense codes rather than sparse ones; past 1 - rho its value is NaN but its gradient
    (d log x / dx = 1/x) stays finite, in TensorFlow as here, so training goes on (with NaN in
    the logged loss of such batches) and mean activations end well above 1. It is kept only to
    compare with the published SAE numbers.
    """
    if legacy:
        return rho * torch.log(rho / mean_activation) + (1 - rho) * torch.log(
            1 - rho - mean_activation
        )
    q = mean_activation.clamp(KL_EPS, 1 - KL_EPS)
    return rho * torch.log(rho / q) + (1 - rho) * (math.log(1 - rho) - torch.log1p(-q))


def kl_sparsity_penalty(activations: Sequence[Tensor], rho: float, legacy: bool = False) -> Tensor:
    """sum over layers of KL(rho || mean(a)) / batch size, as the authors' Keras SAE applies it.

    The authors' regulariser takes the mean over the *whole* activation matrix (all cells and
    units of the batch: ``K.mean`` without an axis), and being an activity regulariser, Keras
    divides it by the batch size.
    """
    return torch.stack([kl_sparsity(a.mean(), rho, legacy) / a.shape[0] for a in activations]).sum()
