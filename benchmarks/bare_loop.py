"""The floor for framework overhead: the method's own computation in a plain PyTorch loop.

Same ``nn.Module``s, same ``loss(batch)``, same optimiser (from the method's own
``configure_optimizers``), same batches in the same order as scmint's sampler yields them, but
no Lightning: the batches are gathered before the clock starts and already sit on the device,
and each step is ``zero_grad; loss; backward; step``. Anything scmint's training takes beyond this
loop is overhead that scmint adds (data gathering, host-to-device copies, Lightning's hooks,
logging, the progress bar). Both loops run under the same glibc handling of freed memory (see
:func:`freed_memory_retained`): the allocator is the process's, not a part of either loop.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from benchmarks.clock import Stopwatch
from lightning.fabric.utilities.apply_func import move_data_to_device
from omegaconf import DictConfig

from scmint.data.datamodule import MultiOmicsDataModule
from scmint.models.base import IntegrationModule
from scmint.utils import allocator

#: Most memory the pre-gathered batches may take; beyond it the loop cycles over the first ones
#: (the step time depends on the batch's shape, not its cells).
MAX_GATHERED_BYTES = 1 << 30


def optimizer_of(model: IntegrationModule) -> torch.optim.Optimizer:
    """The optimiser the method's ``configure_optimizers`` returns (one optimiser, no scheduler)."""
    configured = model.configure_optimizers()
    if isinstance(configured, torch.optim.Optimizer):
        return configured
    if isinstance(configured, Mapping) and isinstance(
        configured.get("optimizer"), torch.optim.Optimizer
    ):
        return configured["optimizer"]
    raise TypeError(
        f"{type(model).__name__}.configure_optimizers returned {type(configured).__name__}; the bare "
        "loop reproduces methods with a single optimiser only"
    )


def training_batches(datamodule: MultiOmicsDataModule, n_steps: int) -> Iterator[dict[str, Any]]:
    """The first ``n_steps`` training batches in the order scmint trains on them (epoch after epoch)."""
    loader = datamodule.train_dataloader()
    epoch, produced = 0, 0
    while produced < n_steps:
        loader.sampler.set_epoch(epoch)
        for batch in loader:
            yield batch
            produced += 1
            if produced == n_steps:
                return
        epoch += 1


def batch_bytes(batch: Mapping[str, Any]) -> int:
    return sum(x.element_size() * x.nelement() for x in batch["x"].values())


def gather(
    datamodule: MultiOmicsDataModule, n_steps: int, device: torch.device
) -> list[dict[str, Any]]:
    """Up to ``n_steps`` batches on ``device``, capped at :data:`MAX_GATHERED_BYTES`."""
    batches, total = [], 0
    for batch in training_batches(datamodule, n_steps):
        total += batch_bytes(batch)
        if batches and total > MAX_GATHERED_BYTES:
            break
        batches.append(move_data_to_device(batch, device))
    return batches


def bare_step(
    model: IntegrationModule, optimizer: torch.optim.Optimizer, batch: Mapping[str, Any]
) -> None:
    """One optimiser step, written as a user of plain PyTorch would write it."""
    optimizer.zero_grad(set_to_none=True)
    loss = sum(model.loss(batch).values())
    loss.backward()
    optimizer.step()


@contextmanager
def deterministic_algorithms_off() -> Iterator[None]:
    """torch's deterministic algorithms off, as a bare script would have them; Lightning's
    ``deterministic=True`` switches them on for the whole process, so the setting found is
    restored on exit."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(False)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(deterministic)


def retains_freed_memory(cfg: DictConfig) -> bool:
    """Whether scmint's fit under ``cfg`` keeps freed memory for reuse (its callbacks include
    :class:`~scmint.utils.allocator.RetainFreedMemory`)."""
    target = f"{allocator.RetainFreedMemory.__module__}.{allocator.RetainFreedMemory.__name__}"
    callbacks = cfg.get("callbacks") or {}
    return any(c is not None and c.get("_target_") == target for c in callbacks.values())


@contextmanager
def freed_memory_retained(retain: bool) -> Iterator[None]:
    """glibc's handling of freed memory as in scmint's fit: the bare loop is compared with scmint
    under the same allocator. (Steps interleaved inside a scmint fit get it from scmint's
    callback; a bare run on its own, like the reference protocol's, gets it here.)"""
    libc = allocator.glibc() if retain else None
    if libc is not None:
        allocator.retain_freed_memory(libc)
    try:
        yield
    finally:
        if libc is not None:
            allocator.release_freed_memory(libc)


class BareLoop:
    """The bare loop as a resumable run of steps, so its steps can alternate with scmint's.

    It owns its model and optimiser and walks ``batches`` in order (cycling when the run is
    longer than the list), with :func:`deterministic_algorithms_off`.
    """

    def __init__(
        self, model: IntegrationModule, batches: list[dict[str, Any]], device: torch.device
    ) -> None:
        self.model = model.to(device).train()
        self.optimizer = optimizer_of(model)
        self.batches = batches
        self.clock = Stopwatch(device)
        self.steps_done = 0
        self.timed_steps = 0

    def run(self, steps: int, timed: bool = True) -> None:
        """``steps`` more steps, on the clock when ``timed``."""
        with deterministic_algorithms_off():
            if timed:
                self.clock.start()
            for _ in range(steps):
                batch = self.batches[self.steps_done % len(self.batches)]
                bare_step(self.model, self.optimizer, batch)
                self.steps_done += 1
            if timed:
                self.clock.stop()
                self.timed_steps += steps


def run_bare_protocol(
    model: IntegrationModule,
    datamodule: MultiOmicsDataModule,
    epochs: int,
    device: torch.device,
    retain_memory: bool,
) -> Stopwatch:
    """Time of the reference protocol in the bare loop: ``epochs`` epochs of training steps,
    each followed by the validation loss (no gradients, eval mode), as scmint's fit does, with
    freed memory retained as scmint's fit retains it (``retain_memory``)."""
    steps_per_epoch = len(datamodule.train_dataloader())
    loop = BareLoop(model, gather(datamodule, epochs * steps_per_epoch, device), device)
    val_loader = datamodule.val_dataloader()
    val_batches = [move_data_to_device(b, device) for b in val_loader] if val_loader else []
    clock = Stopwatch(device)
    with deterministic_algorithms_off(), freed_memory_retained(retain_memory):
        clock.start()
        for _ in range(epochs):
            loop.run(steps_per_epoch, timed=False)
            model.eval()
            with torch.no_grad():
                for batch in val_batches:
                    model.loss(batch)
            model.train()
        clock.stop()
    return clock
