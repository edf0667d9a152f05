"""scmint's own training, as ``scmint-train`` runs it: the user's Trainer, callbacks and logger.

A :class:`StepTimer` callback clocks optimiser steps inside epochs. Work between epochs
(validation, checkpoint, logging of the epoch's losses) is left out of the per-step figure, which
is what the bare loop is compared with; it is counted in the reference-protocol time, which times
the whole ``Trainer.fit``.
"""

from __future__ import annotations

import tempfile

import lightning as L
import torch
from benchmarks.bare_loop import BareLoop
from benchmarks.clock import Stopwatch
from benchmarks.workload import with_overrides
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig

from scmint.data.datamodule import MultiOmicsDataModule
from scmint.models.base import IntegrationModule
from scmint.train import build_model, build_trainer


class StepTimer(Callback):
    """Seconds spent in optimiser steps ``warmup + 1 .. warmup + steps`` (within epochs only).

    The clock runs from the end of step ``warmup`` (or the start of an epoch) to the end of the
    epoch's last step (or of step ``warmup + steps``), so each timed step's interval holds its data
    fetch, forward, backward, optimiser step and every per-step hook, and nothing between epochs.
    The accelerator is synchronised only at those boundaries, never per step.

    With ``budget`` (seconds), training stops at the first step after at least ``min_steps`` timed
    steps that brings the timed total past the budget: the run calibrates its own length.
    """

    def __init__(
        self,
        warmup: int,
        steps: int,
        device: torch.device,
        budget: float | None = None,
        min_steps: int = 1,
    ) -> None:
        if warmup < 1:
            raise ValueError("StepTimer needs at least one warm-up step")
        self.warmup, self.steps = warmup, steps
        self.budget, self.min_steps = budget, min_steps
        self.clock = Stopwatch(device)
        self.timed_steps = 0
        self._started = False

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if (
            self._started
            and not trainer.should_stop
            and trainer.global_step < self.warmup + self.steps
        ):
            self.clock.start()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if step == self.warmup:
            self._started = True
            self.clock.start()
        elif self.clock.running and step == self.warmup + self.steps:
            self._stop(step)
        elif self._over_budget(step):
            self._stop(step)
            trainer.should_stop = True

    def _over_budget(self, step: int) -> bool:
        """Budget spent, after at least ``min_steps`` (no GPU sync here; ``_stop`` synchronises)."""
        if not self.clock.running or self.budget is None or step - self.warmup < self.min_steps:
            return False
        return self.clock.peek() >= self.budget

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.clock.running:
            self._stop(trainer.global_step)

    def _stop(self, step: int) -> None:
        self.clock.stop()
        self.timed_steps = step - self.warmup


class InterleavedTimer(StepTimer):
    """:class:`StepTimer` that runs the bare loop in blocks between scmint's steps.

    After every ``block`` timed scmint steps (and after the last), scmint's clock pauses and the
    bare loop runs as many timed steps as scmint has run since its last block, then scmint's clock
    resumes. Both loops thus see the same state of a shared machine, within a fraction of a second,
    and their ratio does not move with the load of other processes or with the host's speed, which
    on a small VM drifts by tens of percent over minutes. The bare loop's untimed warm-up runs when
    scmint's does. Each scmint interval still spans whole step cycles (data fetch, forward,
    backward, optimiser step, every per-step hook); only this callback's own block is cut out.
    """

    def __init__(
        self, warmup: int, steps: int, device: torch.device, bare: BareLoop, block: int
    ) -> None:
        if block < 1:
            raise ValueError("the bare loop's block needs at least one step")
        super().__init__(warmup, steps, device)
        self.bare, self.block = bare, block

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if step == self.warmup:
            self.bare.run(self.warmup, timed=False)
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        timed = min(step, self.warmup + self.steps) - self.warmup
        behind = timed - self.bare.timed_steps
        if behind > 0 and (behind == self.block or timed == self.steps):
            resume = self.clock.running
            if resume:
                self.clock.stop()
            self.bare.run(behind)
            if resume:
                self.clock.start()


def trainer_config(
    cfg: DictConfig, output_dir: str, accelerator: str, **trainer: object
) -> DictConfig:
    """The user's config with the run directory, the accelerator and ``trainer`` values set."""
    values = {"paths.output_dir": output_dir, "trainer.accelerator": accelerator}
    values.update({f"trainer.{k}": v for k, v in trainer.items()})
    return with_overrides(cfg, values)


def fresh_model(cfg: DictConfig, datamodule: MultiOmicsDataModule) -> IntegrationModule:
    """The method built from the data's spec with the run's seed (same weights every call)."""
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    return build_model(cfg, datamodule)


def _device(accelerator: str) -> torch.device:
    return torch.device("cpu" if accelerator == "cpu" else "cuda")


def _fit_timed(
    cfg: DictConfig,
    datamodule: MultiOmicsDataModule,
    model: IntegrationModule,
    timer: StepTimer,
    accelerator: str,
) -> None:
    """Fit ``model`` for the timer's warm-up + timed steps, ``timer`` first among the callbacks
    (so its epoch-end reading precedes checkpointing, and every later per-step hook counts as
    scmint's). Validation is off (``limit_val_batches=0``): it happens between epochs, outside
    the clock, and would only lengthen the benchmark."""
    with tempfile.TemporaryDirectory(prefix="scmint-bench-") as out:
        run_cfg = trainer_config(
            cfg,
            out,
            accelerator,
            max_steps=timer.warmup + timer.steps,
            max_epochs=-1,
            limit_val_batches=0,
        )
        trainer = build_trainer(run_cfg)
        trainer.callbacks.insert(0, timer)
        trainer.fit(model, datamodule=datamodule)


def run_steps(
    cfg: DictConfig,
    datamodule: MultiOmicsDataModule,
    warmup: int,
    steps: int,
    accelerator: str,
    budget: float | None = None,
    min_steps: int = 1,
) -> tuple[Stopwatch, int]:
    """(clock, steps timed) of scmint optimiser steps after ``warmup`` untimed ones: ``steps``
    of them, or fewer when a time ``budget`` is given (see :class:`StepTimer`)."""
    timer = StepTimer(warmup, steps, _device(accelerator), budget=budget, min_steps=min_steps)
    _fit_timed(cfg, datamodule, fresh_model(cfg, datamodule), timer, accelerator)
    if budget is None and timer.timed_steps != steps:
        raise RuntimeError(f"timed {timer.timed_steps} steps instead of {steps}")
    return timer.clock, timer.timed_steps


def run_interleaved(
    cfg: DictConfig,
    datamodule: MultiOmicsDataModule,
    warmup: int,
    steps: int,
    accelerator: str,
    bare_batches: list[dict[str, object]],
    block: int,
) -> tuple[Stopwatch, Stopwatch]:
    """(scmint clock, bare clock) over ``steps`` steps of each, alternating in blocks of ``block``
    steps inside one scmint fit (:class:`InterleavedTimer`). Both models start from the same
    weights."""
    device = _device(accelerator)
    bare = BareLoop(fresh_model(cfg, datamodule), bare_batches, device)
    timer = InterleavedTimer(warmup, steps, device, bare, block)
    _fit_timed(cfg, datamodule, fresh_model(cfg, datamodule), timer, accelerator)
    if (timer.timed_steps, bare.timed_steps) != (steps, steps):
        raise RuntimeError(
            f"timed {timer.timed_steps} scmint and {bare.timed_steps} bare steps instead of {steps}"
        )
    return timer.clock, bare.clock


def run_protocol(cfg: DictConfig, datamodule: MultiOmicsDataModule, accelerator: str) -> Stopwatch:
    """Time of the whole ``Trainer.fit`` of the method's reference protocol (what ``scmint-train``
    records as ``train_time_s``), validation and checkpoints included."""
    model = fresh_model(cfg, datamodule)
    with tempfile.TemporaryDirectory(prefix="scmint-bench-") as out:
        trainer = build_trainer(trainer_config(cfg, out, accelerator))
        clock = Stopwatch(_device(accelerator))
        clock.start()
        trainer.fit(model, datamodule=datamodule)
        clock.stop()
        return clock


class EpochTimer(Callback):
    """Time of each training epoch, validation and checkpoint included, Trainer start-up not."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.epochs: list[Stopwatch] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epochs.append(Stopwatch(self.device))
        self.epochs[-1].start()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epochs[-1].stop()


def run_epochs(
    cfg: DictConfig, datamodule: MultiOmicsDataModule, epochs: int, accelerator: str
) -> list[Stopwatch]:
    """Time of each of ``epochs`` epochs of the user's configuration (see :class:`EpochTimer`)."""
    model = fresh_model(cfg, datamodule)
    with tempfile.TemporaryDirectory(prefix="scmint-bench-") as out:
        trainer = build_trainer(trainer_config(cfg, out, accelerator, max_epochs=epochs))
        timer = EpochTimer(_device(accelerator))
        trainer.callbacks.append(timer)  # last: its epoch-end reading follows the checkpoint
        trainer.fit(model, datamodule=datamodule)
    return timer.epochs
