"""Dense layers with the initialisations of the UMINT authors' Keras code.

Keras and PyTorch initialise differently (PyTorch's ``nn.Linear`` default is Kaiming-uniform with
a=sqrt(5), i.e. limit 1/sqrt(fan_in), and a uniform bias); the reference uses He-uniform kernels
with a constant bias of 0.1 in hidden layers and Glorot-uniform kernels with zero bias in output
layers. The penalties on these layers live in :mod:`scmint.nn.penalties`.
"""

from __future__ import annotations

from torch import Tensor, nn


def init_hidden_(layer: nn.Linear, bias: float = 0.1) -> nn.Linear:
    """He-uniform kernel, constant bias: UMINT's hidden layers (Keras ``he_uniform``, bias 0.1).

    Keras' He-uniform draws from U(-limit, limit) with limit = sqrt(6 / fan_in), which is
    ``kaiming_uniform_`` with the ReLU gain.
    """
    nn.init.kaiming_uniform_(layer.weight, mode="fan_in", nonlinearity="relu")
    nn.init.constant_(layer.bias, bias)
    return layer


def init_output_(layer: nn.Linear) -> nn.Linear:
    """Glorot-uniform kernel, zero bias: UMINT's output layers (Keras defaults)."""
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class Dense(nn.Module):
    """Linear layer + optional activation, exposing its kernel for explicit penalties.

    Args:
        d_in, d_out: feature sizes.
        activation: "relu" or None (linear).
        hidden: True for He-uniform + bias 0.1 (hidden layers), False for Glorot + zero bias.
    """

    def __init__(self, d_in: int, d_out: int, activation: str | None = "relu", hidden: bool = True):
        super().__init__()
        if d_in < 1 or d_out < 1:
            raise ValueError(f"Dense layer sizes must be >= 1, got {d_in} -> {d_out}")
        if activation not in ("relu", None):
            raise ValueError(
                f"Dense activation must be 'relu' or None (linear), got {activation!r}"
            )
        self.linear = nn.Linear(d_in, d_out)
        (init_hidden_ if hidden else init_output_)(self.linear)
        self.activation = nn.ReLU() if activation == "relu" else nn.Identity()

    @property
    def kernel(self) -> Tensor:
        """The weight matrix [d_out, d_in] (what ``kernel_regularizer`` penalises in Keras)."""
        return self.linear.weight

    def forward(self, x: Tensor) -> Tensor:
        return self.activation(self.linear(x))
