"""Reliability of a run: resuming from last.ckpt, and repeatability of metrics.json.

A resumed run must end exactly where an uninterrupted run with the same seed ends: same weights,
so the same embedding, so the same scores. That holds only if everything that draws random
numbers after the checkpoint (shuffle order, DAE/SMILE noise) sees the same state, which is what
the base class's RNG state in checkpoints and the sampler's ``seed + epoch`` shuffle provide.

Two designs exercise it:

* in-process (fast): train to epoch 2, then rerun the *same run directory* with a higher
  ``trainer.max_epochs`` and ``ckpt_path=last``; Lightning restores epoch, optimiser and RNG from
  ``checkpoints/last.ckpt`` and trains the remaining epochs;
* a real kill (slow): a ``scmint-train`` process is SIGKILLed from inside its training loop at
  the end of an epoch (:class:`KillAfterEpoch`), then ``scmint-train ... ckpt_path=last`` is
  started again on the same ``hydra.run.dir``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import anndata as ad
import lightning as L
import numpy as np
import pytest
import torch

from conftest import TINY, compose_config
from scmint.train import train
from scmint.utils.config import PROJECT_ROOT

#: metrics.json keys that measure the machine, not the result: excluded from equality checks.
VOLATILE_KEYS = {"train_time_s", "eval_time_s", "peak_memory_mb", "peak_gpu_memory_mb"}

#: A tiny run whose evaluation is quick (two Leiden resolutions instead of scIB's twenty).
QUICK = (*TINY, "++evaluation.leiden_resolutions=[0.5,1.0]", "++evaluation.leiden_search_steps=2")


class KillAfterEpoch(L.Callback):
    """Test helper: SIGKILL this process at the end of training epoch ``epoch`` (1-based).

    The process dies as in an out-of-memory kill or a pre-empted job: no exception handler, no
    ``finally``, no teardown. Whatever checkpoint was on disk at that moment is what resumes.
    """

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch + 1 >= self.epoch:
            os.kill(os.getpid(), signal.SIGKILL)


def _embedding(run_dir: Path) -> np.ndarray:
    return ad.read_h5ad(run_dir / "embedding.h5ad").obsm["X_scmint"]


def _record(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def _stable(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in VOLATILE_KEYS}


@pytest.mark.parametrize("model", ["dae", pytest.param("smile", marks=pytest.mark.slow)])
def test_resume_from_last_checkpoint_matches_an_uninterrupted_run(model, tmp_path):
    """DAE draws input noise every batch (and validates); SMILE draws two noisy views, uses
    BatchNorm and has no validation loop, so its checkpoint is written at train-epoch end."""
    data = ["data=synthetic_batches"] if model == "smile" else []
    base = [*TINY, f"model={model}", *data, "data.batch_size=64", "evaluate=false", "seed=3"]
    straight = train(compose_config([*base, "trainer.max_epochs=4"], tmp_path / "straight"))

    resumed_dir = tmp_path / "resumed"
    first = train(compose_config([*base, "trainer.max_epochs=2"], resumed_dir))
    checkpoint = torch.load(resumed_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert (
        first["epochs"] == 2 and checkpoint["global_step"] == first["global_steps"]
    )  # two epochs on disk
    resumed = train(compose_config([*base, "trainer.max_epochs=4", "ckpt_path=last"], resumed_dir))

    assert resumed["epochs"] == straight["epochs"] == 4
    assert resumed["global_steps"] == straight["global_steps"]
    np.testing.assert_array_equal(_embedding(resumed_dir), _embedding(tmp_path / "straight"))

    # a finished run given ckpt_path=last (a whole sweep rerun after a crash) trains no further
    again = train(compose_config([*base, "trainer.max_epochs=4", "ckpt_path=last"], resumed_dir))
    assert again["global_steps"] == straight["global_steps"]
    np.testing.assert_array_equal(_embedding(resumed_dir), _embedding(tmp_path / "straight"))


def test_same_config_and_seed_give_identical_metrics(tmp_path):
    a = train(compose_config([*QUICK, "model=dae", "seed=11"], tmp_path / "a"))
    b = train(compose_config([*QUICK, "model=dae", "seed=11"], tmp_path / "b"))
    assert a["status"] == b["status"] == "ok" and a["ari_ward"] is not None
    assert _stable(_record(tmp_path / "a")) == _stable(_record(tmp_path / "b"))
    c = train(compose_config([*QUICK, "model=dae", "seed=12", "evaluate=false"], tmp_path / "c"))
    assert not np.array_equal(
        _embedding(tmp_path / "a"), _embedding(tmp_path / "c")
    )  # the seed matters
    assert c["seed"] == 12


def _scmint_train(run_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",  # one torch thread: two oversubscribe a shared 2-core machine
        "PYTHONPATH": os.pathsep.join(
            [str(PROJECT_ROOT / "tests"), os.environ.get("PYTHONPATH", "")]
        ),
    }
    return subprocess.run(
        [sys.executable, "-m", "scmint.train", *QUICK, *overrides, f"hydra.run.dir={run_dir}"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
        timeout=600,
    )


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_metrics(tmp_path):
    common = ("model=dae", "seed=7", "trainer.max_epochs=4")
    straight = _scmint_train(tmp_path / "straight", *common)
    assert straight.returncode == 0, straight.stderr[-3000:]

    run_dir = tmp_path / "killed"
    killed = _scmint_train(
        run_dir,
        *common,
        "+callbacks.kill._target_=test_resume.KillAfterEpoch",
        "+callbacks.kill.epoch=2",
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert not (run_dir / "metrics.json").exists()  # died mid-training: no record yet
    saved_epoch = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["epoch"]
    assert saved_epoch < 3  # the checkpoint on disk is from before the end of training

    resumed = _scmint_train(run_dir, *common, "ckpt_path=last")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stderr + resumed.stdout

    a, b = _record(tmp_path / "straight"), _record(run_dir)
    assert b["status"] == "ok"
    for key in (
        "ari_ward",
        "ari_kmeans",
        "fmi_ward",
        "fmi_kmeans",
        "nmi_ward",
        "ors",
        "epochs",
        "global_steps",
    ):
        assert a[key] == b[key], key
    assert _stable(a) == _stable(b)
    np.testing.assert_array_equal(_embedding(tmp_path / "straight"), _embedding(run_dir))
