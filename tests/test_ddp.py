"""Two-process DDP training on CPU (gloo): the run record is the one a single process writes.

``trainer=ddp`` starts rank 1 by re-executing the command line, so it is tested through
``scmint-train`` in a subprocess (under pytest it would re-execute pytest). ``trainer=ddp_spawn``
is tested inside a local multirun, the case where ``ddp`` would relaunch the whole sweep.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anndata as ad
import pytest

from scmint.utils.config import PROJECT_ROOT

pytestmark = pytest.mark.slow

TINY_CLI = (
    "data.source.n_cells=300",
    "data.source.n_genes=200",
    "data.batch_size=32",
    "trainer.max_epochs=2",
    "~callbacks.progress_bar",
    "trainer.enable_progress_bar=false",
    "++evaluation.leiden_resolutions=[0.5,1.0]",
    "++evaluation.leiden_search_steps=2",
)


#: Subprocesses run torch on one thread: on a shared 2-core machine two threads per process
#: oversubscribe the cores and a tiny run slows down ten-fold (docs/scaling.md).
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _scmint_train(*args: str, multirun: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scmint.train", *(["-m"] if multirun else []), *TINY_CLI, *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=ENV,
        timeout=600,
    )


def _record(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def test_two_process_ddp_on_cpu_writes_the_single_process_record(tmp_path):
    single = _scmint_train(f"hydra.run.dir={tmp_path / 'single'}")
    assert single.returncode == 0, single.stderr[-3000:]
    ddp = _scmint_train(
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        f"hydra.run.dir={tmp_path / 'ddp'}",
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]

    one, two = _record(tmp_path / "single"), _record(tmp_path / "ddp")
    assert two["status"] == "ok"
    assert set(two) == set(one)  # same metrics file format
    assert two["n_cells"] == one["n_cells"] and two["n_params"] == one["n_params"]
    assert 0.0 <= two["ari_ward"] <= 1.0
    # each rank trains on half of the 240 training cells: half the optimiser steps per epoch
    assert two["global_steps"] * 2 == one["global_steps"]
    emb_one = ad.read_h5ad(tmp_path / "single" / "embedding.h5ad")
    emb_two = ad.read_h5ad(tmp_path / "ddp" / "embedding.h5ad")
    assert (
        emb_two.shape == emb_one.shape
        and emb_two.obsm["X_scmint"].shape == emb_one.obsm["X_scmint"].shape
    )
    assert "gloo" in ddp.stdout + ddp.stderr  # the CPU process-group backend


def test_ddp_spawn_inside_a_local_multirun_runs_each_point_once(tmp_path):
    sweep = tmp_path / "sweep"
    result = _scmint_train(
        "trainer=ddp_spawn",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "seed=0,1",
        "logger=none",
        f"hydra.sweep.dir={sweep}",
        multirun=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    points = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert points == ["0", "1"]  # no relaunched sweep, no extra points
    records = [_record(sweep / p) for p in points]
    assert [r["seed"] for r in records] == [0, 1]
    assert all(r["status"] == "ok" and r["epochs"] == 2 for r in records)
