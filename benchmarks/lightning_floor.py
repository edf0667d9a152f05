"""Lightning's own per-step cost over a bare loop, with caches warm and with caches swept.

At batch 256 scmint's step costs about 0.8 ms more than the bare loop's even with pre-gathered
batches and no callbacks, yet Lightning's loop around a one-parameter model costs about 0.2 ms.
The hypothesis this script tests: Lightning's Python runs slower after a step that has swept the
CPU caches, as every real step of 11–13 ms over 2–5 MB of weights and activations does.

Both loops train a one-parameter model with the same manual optimisation scmint uses
(``zero_grad``, ``manual_backward``, ``step``), on the same pre-made batches, and each step first
writes a buffer of ``--sweep-mib`` MiB (0: no sweep). The difference of their µs per step is what
Lightning adds; if it grows with the sweep, the cost of Lightning's loop depends on what the step
did to the caches. Run from the repository root::

    python -m benchmarks.lightning_floor --sweep-mib 0 8 64
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator

import lightning as L
import torch
from torch import Tensor

#: Steps before the timed ones (the first steps build Lightning's state and warm the allocator).
WARMUP_STEPS = 100


class OneParameter(L.LightningModule):
    """A one-parameter model stepped the way scmint's :class:`IntegrationModule` steps."""

    def __init__(self, sweep: Tensor | None) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(1))
        self.sweep = sweep
        self.automatic_optimization = False

    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        if self.sweep is not None:
            self.sweep.add_(1.0)
        loss = (self.weight * batch).sum()
        optimizer = self.optimizers()
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=1e-3)


class Batches:
    """The pre-made batches as an iterable with a length (what Lightning needs of a loader)."""

    def __init__(self, batches: list[Tensor]) -> None:
        self.batches = batches

    def __iter__(self) -> Iterator[Tensor]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class StepClock(L.Callback):
    """Seconds per step after the warm-up steps, from the first timed step to the end of the fit."""

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.start = 0.0
        self.seconds_per_step = float("nan")

    def on_train_batch_start(
        self, trainer: L.Trainer, module: L.LightningModule, batch: Tensor, batch_idx: int
    ) -> None:
        if batch_idx == WARMUP_STEPS:
            self.start = time.perf_counter()

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.seconds_per_step = (time.perf_counter() - self.start) / (self.steps - WARMUP_STEPS)


def bare_seconds_per_step(sweep: Tensor | None, batches: list[Tensor]) -> float:
    """The same steps without Lightning, timed over the batches after the warm-up."""
    weight = torch.nn.Parameter(torch.ones(1))
    optimizer = torch.optim.SGD([weight], lr=1e-3)
    timed = batches[WARMUP_STEPS:]
    start = time.perf_counter()
    for batch in timed:
        if sweep is not None:
            sweep.add_(1.0)
        loss = (weight * batch).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / len(timed)


def lightning_seconds_per_step(sweep: Tensor | None, batches: list[Tensor]) -> float:
    """The steps in a Lightning fit with no logger, checkpoint, progress bar or summary."""
    clock = StepClock(len(batches))
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[clock],
    )
    trainer.fit(OneParameter(sweep), train_dataloaders=Batches(batches))
    return clock.seconds_per_step


def measure(sweep_mib: int, steps: int, repeats: int) -> list[tuple[float, float]]:
    """(bare, Lightning) seconds per step, ``repeats`` times, with a ``sweep_mib`` MiB sweep."""
    if steps <= WARMUP_STEPS:
        raise ValueError(f"--steps must exceed the {WARMUP_STEPS} warm-up steps, got {steps}")
    sweep = torch.zeros(sweep_mib * 2**20 // 4) if sweep_mib else None
    batches = [torch.randn(4) for _ in range(steps)]
    return [
        (bare_seconds_per_step(sweep, batches), lightning_seconds_per_step(sweep, batches))
        for _ in range(repeats)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sweep-mib", type=int, nargs="+", default=[0, 8, 64])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print("sweep MiB | bare µs/step | Lightning µs/step | Lightning adds µs/step")
    for sweep_mib in args.sweep_mib:
        for bare, lightning in measure(sweep_mib, args.steps, args.repeats):
            print(
                f"{sweep_mib} | {bare * 1e6:.0f} | {lightning * 1e6:.0f} | "
                f"{(lightning - bare) * 1e6:.0f}"
            )


if __name__ == "__main__":
    main()
