"""Dense layers with the initialisations of the UMINT authors' Keras code.

Keras and PyTorch initialise differently (PyTorch's ``nn.Linear`` default is Kaiming-uniform with
a=sqrt(5), i.e. limit 1/sqrt(fan_in), and a uniform bias); the reference uses He-uniform kernels
with a constant bias of 0.1 in hidden layers and Glorot-uniform kernels with zero bias in output
layers. The penalties on these layers live in :mod:`scmint.nn.penalties`.

Two ways of drawing the kernels (``seed`` below):

* ``None`` (scmint's default): every layer draws its kernel independently from torch's global
  generator, so no two layers share values.
* an int: the authors' seeded Keras initializers, reproduced for exact comparisons. Their code
  builds every layer with ``he_uniform(seed)`` / ``GlorotUniform(seed)`` and the same run seed;
  a seeded Keras initializer is stateless, so every layer starts from the same uniform stream:
  layers of the same shape get identical kernels, and a layer of another shape the same leading
  draws, each scaled by its own limit. :func:`seeded_uniform_kernel` draws that way from a fresh
  ``torch.Generator`` (torch's stream, not TensorFlow's: the structure is reproduced, not the
  values).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def seeded_uniform_kernel(d_in: int, d_out: int, limit: float, seed: int) -> Tensor:
    """U(-limit, limit) kernel [d_out, d_in] drawn as a seeded Keras initializer draws it.

    A fresh generator seeded with ``seed`` fills Keras' kernel shape (fan_in, fan_out) row-major,
    ``-limit + 2 * limit * u``, and the result is transposed into torch's (out, in) layout. The
    same seed and shape give the same kernel; another shape the same leading uniforms ``u``.
    """
    generator = torch.Generator().manual_seed(int(seed))
    uniform = torch.rand(d_in, d_out, generator=generator)
    return (uniform * (2.0 * limit) - limit).T.contiguous()


def _seeded_(layer: nn.Linear, limit: float, seed: int) -> None:
    d_out, d_in = layer.weight.shape
    with torch.no_grad():
        layer.weight.copy_(seeded_uniform_kernel(d_in, d_out, limit, seed))


def init_hidden_(layer: nn.Linear, bias: float = 0.1, seed: int | None = None) -> nn.Linear:
    """He-uniform kernel, constant bias: UMINT's hidden layers (Keras ``he_uniform``, bias 0.1).

    Keras' He-uniform draws from U(-limit, limit) with limit = sqrt(6 / fan_in), which is
    ``kaiming_uniform_`` with the ReLU gain. ``seed``: see the module docstring.
    """
    if seed is None:
        nn.init.kaiming_uniform_(layer.weight, mode="fan_in", nonlinearity="relu")
    else:
        _seeded_(layer, math.sqrt(6.0 / layer.weight.shape[1]), seed)
    nn.init.constant_(layer.bias, bias)
    return layer


def init_output_(layer: nn.Linear, seed: int | None = None) -> nn.Linear:
    """Glorot-uniform kernel, zero bias: UMINT's output layers (Keras defaults).

    limit = sqrt(6 / (fan_in + fan_out)). ``seed``: see the module docstring.
    """
    if seed is None:
        nn.init.xavier_uniform_(layer.weight)
    else:
        _seeded_(layer, math.sqrt(6.0 / sum(layer.weight.shape)), seed)
    nn.init.zeros_(layer.bias)
    return layer


class Dense(nn.Module):
    """Linear layer + optional activation, exposing its kernel for explicit penalties.

    Args:
        d_in, d_out: feature sizes.
        activation: "relu" or None (linear).
        hidden: True for He-uniform + bias 0.1 (hidden layers), False for Glorot + zero bias.
        seed: None draws the kernel from torch's global generator; an int draws it from a fresh
            generator with that seed, as the authors' seeded Keras initializers do (module
            docstring).
    """

    def __init__(
        self,
        d_in: int,
        d_out: int,
        activation: str | None = "relu",
        hidden: bool = True,
        seed: int | None = None,
    ):
        super().__init__()
        if d_in < 1 or d_out < 1:
            raise ValueError(f"Dense layer sizes must be >= 1, got {d_in} -> {d_out}")
        if activation not in ("relu", None):
            raise ValueError(
                f"Dense activation must be 'relu' or None (linear), got {activation!r}"
            )
        self.linear = nn.Linear(d_in, d_out)
        if hidden:
            init_hidden_(self.linear, seed=seed)
        else:
            init_output_(self.linear, seed=seed)
        self.activation = nn.ReLU() if activation == "relu" else nn.Identity()

    @property
    def kernel(self) -> Tensor:
        """The weight matrix [d_out, d_in] (what ``kernel_regularizer`` penalises in Keras)."""
        return self.linear.weight

    def forward(self, x: Tensor) -> Tensor:
        return self.activation(self.linear(x))
