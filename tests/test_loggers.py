"""Loggers: csv (default), tensorboard, wandb offline; several at once. No account, no network."""

from __future__ import annotations

import csv

import pytest

from conftest import TINY, compose_config
from scmint.train import train

#: TINY without its `logger=none`: these tests choose the logger.
RUN = (*(o for o in TINY if not o.startswith("logger=")), "evaluate=false")


@pytest.fixture
def wandb_env(tmp_path, monkeypatch):
    """W&B settings for one test; W&B's process-wide state is torn down afterwards, because it
    keeps the first run's mode (offline/disabled) for every later run in the process."""
    import wandb

    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    yield monkeypatch
    wandb.teardown()


def _csv_rows(path) -> list[dict[str, str]]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_csv_and_tensorboard_together(tmp_path):
    train(compose_config([*RUN, "logger=[csv,tensorboard]"], tmp_path))
    rows = _csv_rows(tmp_path / "csv" / "metrics.csv")
    assert {"train/loss", "val/loss", "epoch"} <= set(rows[0])
    assert sum(bool(r["train/loss"]) for r in rows) == 2  # one value per epoch (TINY: 2 epochs)
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].stat().st_size > 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars = EventAccumulator(str(tmp_path / "tensorboard")).Reload().Tags()["scalars"]
    assert "train/loss" in scalars and "val/loss" in scalars


@pytest.mark.slow
def test_wandb_offline_writes_a_local_run(tmp_path, wandb_env):
    """W&B is opt-in and offline-capable: WANDB_MODE=offline writes a run to sync later."""
    wandb_env.setenv("WANDB_MODE", "offline")
    train(compose_config([*RUN, "logger=wandb", "tags=[test]"], tmp_path))
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert list(runs[0].glob("*.wandb")), "the offline run holds its logged data for `wandb sync`"


@pytest.mark.slow
def test_wandb_disabled_trains_without_writing_anything(tmp_path, wandb_env):
    wandb_env.setenv("WANDB_MODE", "disabled")
    metrics = train(compose_config([*RUN, "logger=wandb"], tmp_path))
    assert metrics["status"] == "ok"
    assert not (tmp_path / "wandb").exists()


@pytest.mark.slow
def test_each_run_gets_its_own_wandb_run(tmp_path, wandb_env):
    """Two runs in one process (as in a multirun): two offline W&B runs, not one shared."""
    wandb_env.setenv("WANDB_MODE", "offline")
    for seed in (0, 1):
        train(compose_config([*RUN, "logger=wandb", f"seed={seed}"], tmp_path / f"run{seed}"))
    runs = [list((tmp_path / f"run{seed}" / "wandb").glob("offline-run-*")) for seed in (0, 1)]
    assert [len(r) for r in runs] == [1, 1]
