"""The training entry point: config composition, bad input, fast_dev_run, end-to-end run record."""

from __future__ import annotations

import json
import subprocess
import sys

import anndata as ad
import numpy as np
import pytest
import torch

from conftest import TINY, compose_config
from scmint.train import build_datamodule, build_model, train
from scmint.utils.config import CONFIG_DIR, PROJECT_ROOT, ConfigError, validate_config


@pytest.mark.parametrize("data", ["synthetic_cite", "synthetic_multiome", "synthetic_batches"])
def test_data_configs_compose(data, tmp_path):
    cfg = compose_config([f"data={data}"], tmp_path)
    assert cfg.data.name == data
    assert cfg.data._target_ == "scmint.data.MultiOmicsDataModule"


def test_default_config_is_umint_on_synthetic_cite(tmp_path):
    cfg = compose_config([], tmp_path)
    assert cfg.model._target_ == "scmint.models.UMINT"
    assert cfg.data.name == "synthetic_cite"
    # the model config sets its reference protocol globally
    assert cfg.data.batch_size == 16
    assert cfg.trainer.max_epochs == 25
    assert cfg.seed == 0


def test_every_model_config_composes(tmp_path):
    for path in sorted((CONFIG_DIR / "model").glob("*.yaml")):
        cfg = compose_config([f"model={path.stem}"], tmp_path)
        assert "_target_" in cfg.model, path.name


@pytest.mark.parametrize("model", ["umint", "ae", "dae", "sae"])
def test_adam_methods_keep_the_for_loop_adam_and_take_the_fused_kernel_on_request(model, tmp_path):
    """The configs keep torch's for-loop Adam, with which the parity table was measured (the
    fused kernel re-draws single runs: docs/performance.md, "The optimiser");
    +model.optimizer.fused=true, the documented speed-up, must reach the optimiser."""
    cfg = compose_config([*TINY, f"model={model}"], tmp_path)
    datamodule = build_datamodule(cfg)  # the override changes the model only
    optimizer = build_model(cfg, datamodule).configure_optimizers()
    assert isinstance(optimizer, torch.optim.Adam)
    assert (optimizer.defaults["lr"], optimizer.defaults["eps"]) == (1e-3, 1e-7)
    assert not optimizer.defaults["fused"]
    cfg = compose_config([*TINY, f"model={model}", "+model.optimizer.fused=true"], tmp_path)
    assert build_model(cfg, datamodule).configure_optimizers().defaults["fused"] is True


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("trainer.max_epochs=-1", "trainer.max_epochs"),
        ("data.batch_size=0", "data.batch_size"),
        ("data.source.n_cells=0", "data.source.n_cells"),
        ("model.latent_dim=0", "model.latent_dim"),
        ("data.val_fraction=1.5", "data.val_fraction"),
    ],
)
def test_impossible_values_are_refused_before_training(override, key, tmp_path):
    cfg = compose_config([override], tmp_path)
    with pytest.raises(ConfigError, match=key):
        validate_config(cfg)


def test_width_for_a_missing_modality_is_refused(tmp_path):
    cfg = compose_config([*TINY, "+model.hidden.atac=128"], tmp_path)
    with pytest.raises(ValueError, match=r"model.hidden.*atac"):
        train(cfg)


def _cli(*args: str, cwd=PROJECT_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scmint.train", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_cli_unknown_model_lists_the_options(tmp_path):
    result = _cli("model=not_a_model", f"hydra.run.dir={tmp_path}")
    assert result.returncode != 0
    assert "not_a_model" in result.stderr
    assert "umint" in result.stderr  # Hydra lists the available options


def test_cli_impossible_value_is_one_clear_line(tmp_path):
    result = _cli("trainer.max_epochs=-1", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 1
    assert "scmint-train: error: trainer.max_epochs must be >= 1" in result.stderr
    assert "Traceback" not in result.stderr
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["status"] == "failed"


def test_fast_dev_run(tmp_path):
    cfg = compose_config([*TINY, "+trainer.fast_dev_run=true", "evaluate=false"], tmp_path)
    metrics = train(cfg)
    assert metrics["global_steps"] == 1
    assert (tmp_path / "metrics.json").exists()


def test_end_to_end_run_writes_the_record(tmp_path):
    cfg = compose_config([*TINY, "seed=0", "extras.umap=true"], tmp_path)
    metrics = train(cfg)
    record = json.loads((tmp_path / "metrics.json").read_text())
    for key in (
        "ari_ward",
        "ari_kmeans",
        "fmi_ward",
        "fmi_kmeans",
        "seed",
        "model",
        "data",
        "train_time_s",
        "n_params",
    ):
        assert key in record, key
    assert record["seed"] == 0  # seed 0 is a real seed, not "no seed"
    assert record["model"] == "umint"
    assert record["data"] == "synthetic_cite"
    assert record["n_params"] == metrics["n_params"] > 0
    assert 0.0 <= record["ari_ward"] <= 1.0
    emb = ad.read_h5ad(tmp_path / "embedding.h5ad")
    assert emb.obsm["X_scmint"].shape == (300, 64)
    assert "cell_type" in emb.obs
    assert (emb.obsm["X_scmint"] >= 0).all()  # UMINT's latent is ReLU
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
    assert (tmp_path / "umap.png").stat().st_size > 0


def test_same_seed_same_embedding(tmp_path):
    a = train(compose_config([*TINY, "seed=5"], tmp_path / "a"))
    b = train(compose_config([*TINY, "seed=5"], tmp_path / "b"))
    ea = ad.read_h5ad(tmp_path / "a" / "embedding.h5ad").obsm["X_scmint"]
    eb = ad.read_h5ad(tmp_path / "b" / "embedding.h5ad").obsm["X_scmint"]
    np.testing.assert_array_equal(ea, eb)
    assert a["ari_ward"] == b["ari_ward"]


def test_default_run_separates_the_synthetic_types(tmp_path):
    """`make run`'s default (UMINT, 25 epochs, 3,000 cells) must recover the simulated types."""
    cfg = compose_config(
        ["~callbacks.progress_bar", "trainer.enable_progress_bar=false", "logger=none"], tmp_path
    )
    metrics = train(cfg)
    assert metrics["ari_ward"] > 0.5
    assert metrics["epochs"] == 25


def test_pca_floor_runs_through_the_same_record(tmp_path):
    cfg = compose_config([*TINY, "model=pca"], tmp_path)
    metrics = train(cfg)
    assert metrics["model"] == "pca"
    assert ad.read_h5ad(tmp_path / "embedding.h5ad").obsm["X_scmint"].shape[1] == 64


def test_optimiser_step_matches_lightnings_automatic_loop(tmp_path):
    """scmint steps the optimiser itself; a Trainer that asks for gradient clipping gets
    Lightning's automatic loop instead. With a clip bound no gradient reaches, both loops must
    make the same updates, so the embeddings agree bit for bit."""
    own = train(compose_config([*TINY, "seed=3", "evaluate=false"], tmp_path / "own"))
    automatic = train(
        compose_config(
            [*TINY, "seed=3", "evaluate=false", "+trainer.gradient_clip_val=1e9"],
            tmp_path / "automatic",
        )
    )
    assert own["global_steps"] == automatic["global_steps"] > 0
    a = ad.read_h5ad(tmp_path / "own" / "embedding.h5ad").obsm["X_scmint"]
    b = ad.read_h5ad(tmp_path / "automatic" / "embedding.h5ad").obsm["X_scmint"]
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("clip", "accumulate", "automatic"),
    [(None, 1, False), (0.0, 1, False), (1.0, 1, True), (None, 4, True)],
)
def test_automatic_loop_only_when_the_trainer_needs_it(clip, accumulate, automatic):
    from types import SimpleNamespace

    from scmint.data.spec import DataSpec
    from scmint.models.autoencoders import AE

    spec = DataSpec(modalities={"rna": 20, "adt": 5}, n_cells=10, paired=True, fully_paired=True)
    model = AE(spec, optimizer=torch.optim.Adam)
    assert model.automatic_optimization is False  # no trainer attached yet
    model._trainer = SimpleNamespace(gradient_clip_val=clip, accumulate_grad_batches=accumulate)
    assert model.automatic_optimization is automatic
    model.automatic_optimization = False  # a method stepping its own optimisers
    assert model.automatic_optimization is False
