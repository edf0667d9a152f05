"""The hardware limit of a training step: its matrix products, timed alone on this machine.

A dispatch mode records every matrix product (``mm``, ``addmm``, ``bmm``, ``baddbmm``) that one
bare training step runs, forward and backward, with the exact shapes, strides and dtypes of its
operands. FLOPs per step are ``2 * m * k * n`` summed over them (for a Linear layer that is the
forward product plus the two backward ones, about 3x the forward FLOPs, 2x for a first layer whose
input needs no gradient). The limit is the time these same products take when run back to back on
this machine with nothing else in between (each at its fastest over two timings, one before
and one after the benchmark's fits); a step can be no faster than that, so
``limit seconds / measured step seconds`` is the fraction of the hardware limit a loop reaches.
Element-wise work (activations, losses, the optimiser) is not counted: the fraction is an
upper bound of what removing all framework overhead could give.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from benchmarks.bare_loop import bare_step, optimizer_of
from benchmarks.clock import now
from torch.utils._python_dispatch import TorchDispatchMode

from scmint.models.base import IntegrationModule

aten = torch.ops.aten
MATMULS = {aten.mm.default, aten.addmm.default, aten.bmm.default, aten.baddbmm.default}


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: torch.dtype

    def make(self, device: torch.device) -> torch.Tensor:
        return torch.empty_strided(
            self.shape, self.stride, dtype=self.dtype, device=device
        ).normal_()


@dataclass(frozen=True)
class MatmulCall:
    """One recorded matrix product: the op, its arguments (tensors as specs) and its FLOPs."""

    op: Any
    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...]
    flops: int


def _flops(op: Any, args: tuple[Any, ...]) -> int:
    if op in (aten.mm.default, aten.addmm.default):
        a, b = args[-2], args[-1]
        return 2 * a.shape[0] * a.shape[1] * b.shape[1]
    a, b = args[-2], args[-1]  # bmm / baddbmm: [batch, m, k] @ [batch, k, n]
    return 2 * a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]


def _spec(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return TensorSpec(tuple(value.shape), tuple(value.stride()), value.dtype)
    return value


class MatmulRecorder(TorchDispatchMode):
    """Records the matrix products run under it (forward and autograd's backward alike)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[MatmulCall] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in MATMULS:
            self.calls.append(
                MatmulCall(
                    func,
                    tuple(_spec(a) for a in args),
                    tuple(sorted((k, _spec(v)) for k, v in kwargs.items())),
                    _flops(func, args),
                )
            )
        return func(*args, **kwargs)


def record_step(model: IntegrationModule, batch: Mapping[str, Any]) -> list[MatmulCall]:
    """The matrix products of one training step of ``model`` on ``batch`` (weights are updated)."""
    optimizer = optimizer_of(model)
    with MatmulRecorder() as recorder:
        bare_step(model, optimizer, batch)
    return recorder.calls


def time_call(call: MatmulCall, device: torch.device, round_seconds: float = 0.01) -> float:
    """Seconds of one run of ``call`` on fresh random operands of the recorded layout: the
    fastest of 3 rounds of enough runs to last about ``round_seconds`` (one run when it is longer).
    The fastest, because noise (another process, a slow VM second) only ever adds time, and the
    limit is what the hardware can do."""
    args = [a.make(device) if isinstance(a, TensorSpec) else a for a in call.args]
    kwargs = {k: (v.make(device) if isinstance(v, TensorSpec) else v) for k, v in call.kwargs}
    start = now(device)
    call.op(*args, **kwargs)  # warm-up (allocations, kernel selection), and a first estimate
    per_round = max(1, round(round_seconds / max(now(device) - start, 1e-7)))
    times = []
    for _ in range(3):
        start = now(device)
        for _ in range(per_round):
            call.op(*args, **kwargs)
        times.append((now(device) - start) / per_round)
    return min(times)


#: Seconds of each distinct product of a step, as :func:`time_products` measures them.
ProductTimes = dict[MatmulCall, float]


def time_products(calls: list[MatmulCall], device: torch.device) -> ProductTimes:
    """:func:`time_call` of each distinct product of ``calls``."""
    return {call: time_call(call, device) for call in dict.fromkeys(calls)}


@dataclass(frozen=True)
class StepLimit:
    """FLOPs of one step and the seconds its matrix products take alone."""

    flops: int
    seconds: float
    n_products: int

    @property
    def flops_per_second(self) -> float:
        return self.flops / self.seconds


def step_limit(calls: list[MatmulCall], *timings: ProductTimes) -> StepLimit:
    """Add up the products' times as often as the step runs them.

    Each product counts at its fastest over ``timings``, taken at different moments (the
    benchmark times them before and after its fits): one timing lasts a fraction of a second, and
    a slow second of a shared machine inside it once made a row read 1.27 of a limit that no
    loop can pass.
    """
    if not timings:
        raise ValueError("step_limit needs at least one timing of the products (time_products)")
    counts = Counter(calls)
    seconds = sum(n * min(times[call] for times in timings) for call, n in counts.items())
    return StepLimit(flops=sum(c.flops for c in calls), seconds=seconds, n_products=len(calls))
