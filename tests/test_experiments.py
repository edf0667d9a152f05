"""Every experiment config composes, every point of its sweep composes, and its smoke form runs.

An experiment (conf/experiment/*.yaml) is a Hydra multirun whose grid lives in
``hydra.sweeper.params``. These tests expand that grid exactly as Hydra's basic sweeper does
(:func:`sweep_points`), so a typo in a sweep value, a data or model option that does not exist,
or a smoke form that would not swap in synthetic data fails here, not an hour into a sweep.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache

import pytest
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from conftest import compose_config
from scmint.train import train
from scmint.utils.config import CONFIG_DIR, PROJECT_ROOT
from test_baselines import BASELINES, needs

EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))
SYNTHETIC_SOURCE = "scmint.data.synthetic.SyntheticSource"


@cache
def _composed(overrides: tuple[str, ...]) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


def _compose(overrides: list[str]) -> DictConfig:
    """Composed config with its ``hydra`` node (cached: tests only read it)."""
    return _composed(tuple(overrides))


def sweep_points(cfg: DictConfig, cli: list[str] = ()) -> list[list[str]]:
    """The override lists of every job of ``cfg``'s sweep, as Hydra's BasicSweeper makes them."""
    params = cfg.hydra.sweeper.params
    params = OmegaConf.to_container(params, resolve=True) if params else {}
    parsed = OverridesParser.create().parse_overrides(
        [f"{k}={v}" for k, v in params.items()] + list(cli)
    )
    return BasicSweeper.split_arguments(parsed, max_batch_size=None)[0]


def _job(experiment: str, point: list[str], *extra: str) -> DictConfig:
    return _compose([f"experiment={experiment}", *extra, *point])


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_and_says_what_it_reproduces(experiment):
    text = (CONFIG_DIR / "experiment" / f"{experiment}.yaml").read_text()
    header = [line for line in text.splitlines()[:12] if line.startswith("#")]
    assert any(
        "doi" in line or "Xu et al." in line or "Maitra et al." in line for line in header
    ), f"conf/experiment/{experiment}.yaml: the header comment must name the paper it reproduces"
    cfg = _compose([f"experiment={experiment}"])
    points = sweep_points(cfg)
    assert points, experiment
    # every option of a config-group axis (data=..., model=...) exists
    for override in {o for point in points for o in point}:
        key, value = override.split("=", 1)
        group = key.lstrip("+").split("@", 1)[0]  # e.g. preprocess@data.preprocess.rna
        if (CONFIG_DIR / group).is_dir():
            assert (CONFIG_DIR / group / f"{value}.yaml").exists(), (
                f"{experiment}: no conf/{group}/{value}.yaml"
            )
    # the first point (every axis key, first value of each) composes into a runnable config
    job = _job(experiment, points[0])
    assert "_target_" in job.model and "_target_" in job.data


def _axes_besides_data_and_seed(points: list[list[str]]) -> set[tuple[str, ...]]:
    return {tuple(o for o in p if not o.startswith(("data=", "seed="))) for p in points}


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_smoke_form_runs_the_grid_on_tiny_synthetic_data(experiment):
    cfg = _compose([f"experiment={experiment}", "debug=smoke"])
    points = sweep_points(cfg)
    real = sweep_points(_compose([f"experiment={experiment}"]))
    # every model / hyper-parameter point of the real grid, one seed, one (synthetic) dataset
    assert _axes_besides_data_and_seed(points) == _axes_besides_data_and_seed(real)
    assert len(points) == len(_axes_besides_data_and_seed(real))
    for point in points[:1]:
        job = _job(experiment, point, "debug=smoke")
        assert job.data.source._target_ == SYNTHETIC_SOURCE, (
            f"{experiment} {point}: debug=smoke must run on synthetic data; set `smoke_data:` in "
            f"conf/experiment/{experiment}.yaml to a synthetic_* data config"
        )
        assert job.data.source.n_cells <= 300 and job.trainer.max_epochs == 1
        assert job.seed == 0


def test_sweep_grid_matches_the_experiment(tmp_path):
    cfg = _compose(["experiment=umint_vs_autoencoders"])
    points = sweep_points(cfg)
    assert len(points) == 4 * 10  # four networks x the paper's ten runs
    assert points[0] == ["data=bmmc_cite_600", "model=umint", "seed=0"]
    # the command line overrides an axis (here: the paper's full datasets, two seeds)
    cli = sweep_points(cfg, ["data=cbmc8k,bmcite30k", "seed=0,1"])
    assert len(cli) == 2 * 4 * 2 and cli[-1] == ["data=bmcite30k", "model=sae", "seed=1"]


def test_one_smoke_point_trains_and_writes_its_record(tmp_path):
    """One point of a smoke sweep, in-process (the slow test below runs every point of every one)."""
    point = sweep_points(_compose(["experiment=ablation_umint_widths", "debug=smoke"]))[0]
    overrides = [
        "experiment=ablation_umint_widths",
        "debug=smoke",
        *point,
        "data.source.n_cells=200",
    ]
    metrics = train(compose_config(overrides, tmp_path))
    assert metrics["status"] == "ok" and metrics["model"] == "umint"
    assert metrics["data"] == "synthetic_cite" and metrics["epochs"] == 1
    assert json.loads((tmp_path / "metrics.json").read_text())["n_params"] == metrics["n_params"]


@pytest.mark.slow
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_smoke_sweep_runs_every_point(experiment, tmp_path):
    points = sweep_points(_compose([f"experiment={experiment}", "debug=smoke"]))
    # comparison methods need the optional extra scmint[baselines]: skip, naming the package
    for model in sorted({o.split("=", 1)[1] for p in points for o in p if o.startswith("model=")}):
        if model in BASELINES:
            needs(model)
    sweep = tmp_path / "sweep"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "scmint.train",
            "-m",
            f"experiment={experiment}",
            "debug=smoke",
            f"hydra.sweep.dir={sweep}",
        ],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},  # one torch thread (docs/scaling.md)
        timeout=1800,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    n_points = len(points)
    records = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/metrics.json"))]
    assert len(records) == n_points
    failed = {r.get("model"): r.get("error") for r in records if r["status"] != "ok"}
    assert not failed, failed
