"""Sweeps: the launchers (submitit SLURM / local), and a sweep that survives a failing point.

The SLURM launcher cannot submit here (no cluster), so its test stops one step short: the real
launcher builds its submitit executor from our config and renders the sbatch script, and the test
reads the script. That is where ``tasks_per_node == trainer.devices`` has to hold for DDP jobs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import hydra
import pytest
import submitit
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from conftest import compose_config
from scmint.utils.config import CONFIG_DIR, PROJECT_ROOT

#: A sweep point that trains in a few seconds (tiny data, one epoch, quick evaluation).
TINY_CLI = (
    "data.source.n_cells=200",
    "data.source.n_genes=100",
    "trainer.max_epochs=1",
    "~callbacks.progress_bar",
    "trainer.enable_progress_bar=false",
    "++evaluation.leiden_resolutions=[0.5,1.0]",
    "++evaluation.leiden_search_steps=2",
)


def _hydra_cfg(overrides: list[str]) -> DictConfig:
    """The composed config *with* its ``hydra`` node (what a launcher is built from)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=True)


class _SubmittedJob:
    """Stands in for a submitit job whose result is already there."""

    def results(self) -> list[str]:
        return ["done"]


def _render_sbatch(cfg: DictConfig, monkeypatch, tmp_path: Path) -> str:
    """Run the real SlurmLauncher.launch() up to submission and return the sbatch script."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "srun").write_text("#!/bin/sh\n")  # submitit only checks that srun exists
    (fake_bin / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    rendered: dict[str, str] = {}

    def submit(executor, fn, *job_args):
        rendered["sbatch"] = executor._executor._make_submission_file_text(
            "python -m scmint.train", "0"
        )
        return [_SubmittedJob() for _ in job_args[0]]

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", submit)
    launcher = hydra.utils.instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=None, config=cfg)
    assert launcher.launch([["seed=0"]], initial_job_idx=0) == ["done"]
    return rendered["sbatch"]


@pytest.mark.parametrize("devices", [1, 4])
def test_slurm_job_has_one_task_and_one_gpu_per_ddp_rank(devices, monkeypatch, tmp_path):
    cfg = _hydra_cfg(
        [
            "hydra/launcher=submitit_slurm",
            "trainer=ddp",
            f"trainer.devices={devices}",
            "hydra.launcher.partition=gpu",
            "hydra.launcher.timeout_min=90",
            f"hydra.sweep.dir={tmp_path}/sweep",
        ]
    )
    assert cfg.hydra.launcher.tasks_per_node == cfg.hydra.launcher.gpus_per_node == devices
    sbatch = _render_sbatch(cfg, monkeypatch, tmp_path)
    assert f"#SBATCH --ntasks-per-node={devices}" in sbatch
    assert f"#SBATCH --gpus-per-node={devices}" in sbatch
    assert "#SBATCH --partition=gpu" in sbatch
    assert "#SBATCH --time=90" in sbatch
    assert "#SBATCH --nodes=1" in sbatch
    assert "srun" in sbatch  # one srun task per rank; Lightning reads SLURM's rank variables


def test_ddp_and_ddp_spawn_build_two_process_cpu_trainers(tmp_path):
    for strategy in ("ddp", "ddp_spawn"):
        cfg = compose_config(
            [f"trainer={strategy}", "trainer.accelerator=cpu", "logger=none"], tmp_path
        )
        trainer = hydra.utils.instantiate(cfg.trainer, callbacks=[], logger=False)
        assert type(trainer.strategy).__name__ == "DDPStrategy"
        assert trainer.strategy._start_method == ("popen" if strategy == "ddp" else "spawn")
        assert trainer.world_size == 2
        assert trainer.strategy.cluster_environment.creates_processes_externally is False


#: Subprocesses run torch on one thread: on a shared 2-core machine two threads per process
#: oversubscribe the cores and a tiny run slows down ten-fold (docs/scaling.md).
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _multirun(sweep_dir: Path, *overrides: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "scmint.train",
            "-m",
            *TINY_CLI,
            *overrides,
            f"hydra.sweep.dir={sweep_dir}",
        ],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=ENV,
        timeout=timeout,
    )


def _records(sweep_dir: Path) -> dict[str, dict]:
    return {
        p.parent.name: json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/metrics.json"))
    }


@pytest.mark.slow
def test_a_failing_sweep_point_does_not_stop_the_others(tmp_path):
    sweep = tmp_path / "sweep"
    result = _multirun(sweep, "model.latent_dim=0,8", "logger=none")
    assert result.returncode == 0, result.stderr[-3000:]
    records = _records(sweep)
    assert set(records) == {"0", "1"}
    assert records["0"]["status"] == "failed"
    assert "model.latent_dim" in records["0"]["error"]
    assert "latent_dim" in (sweep / "0" / "error.txt").read_text()
    assert records["1"]["status"] == "ok"
    assert records["1"]["ari_ward"] is not None


@pytest.mark.slow
def test_submitit_local_multirun_of_two_points(tmp_path):
    sweep = tmp_path / "sweep"
    result = _multirun(sweep, "hydra/launcher=submitit_local", "model=umint,pca", "logger=none")
    assert result.returncode == 0, result.stderr[-3000:]
    records = _records(sweep)
    assert set(records) == {"0", "1"}
    assert [records[k]["model"] for k in ("0", "1")] == ["umint", "pca"]
    assert all(r["status"] == "ok" for r in records.values())
    # each point ran in its own submitit job: its logs are in the sweep's .submitit folder
    assert len(list((sweep / ".submitit").glob("*/*_result.pkl"))) == 2
