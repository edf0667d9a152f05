"""Shared fixtures: composing scmint's Hydra configs in tests, and the shared real data folder."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

from scmint.utils.config import CONFIG_DIR, PROJECT_ROOT, register_resolvers

register_resolvers()
# Tests share 2 cores with nothing else in CI; one intra-op thread avoids oversubscription when
# pytest-xdist or helper processes run beside them, and keeps timings stable.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

SHARED_DATA = Path(os.environ.get("SCMINT_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))


def compose_config(
    overrides: Sequence[str] = (), output_dir: Path | None = None, config_name: str = "train"
) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with ``overrides`` as ``scmint-train`` would.

    ``paths.output_dir`` (normally set by Hydra at run time) points at ``output_dir``. The UMAP
    figure is off unless an override sets ``extras.umap`` (numba compiles it for ~7 s per process).
    """
    overrides = list(overrides)
    if config_name == "train" and not any(o.startswith("extras.umap") for o in overrides):
        overrides.append("extras.umap=false")
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name, overrides=overrides)
    if output_dir is not None:
        with open_dict(cfg):
            cfg.paths.output_dir = str(output_dir)
            cfg.paths.log_dir = str(output_dir / "logs")
            cfg.paths.cache_dir = str(output_dir / "cache")
    return cfg


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """``make_cfg("model=ae", "trainer.max_epochs=1")`` -> a composed config writing into tmp_path."""

    def make(*overrides: str, output_dir: Path | None = None) -> DictConfig:
        return compose_config(overrides, output_dir or tmp_path / "run")

    return make


#: Overrides that make any training run tiny (a few seconds on 2 cores).
TINY = (
    "data.source.n_cells=300",
    "data.source.n_genes=200",
    "trainer.max_epochs=2",
    "~callbacks.progress_bar",
    "trainer.enable_progress_bar=false",
    "logger=none",
)


@pytest.fixture
def shared_data() -> Path:
    """The shared real subsets (../shared/data); tests using them skip when the folder is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared real data not found at {SHARED_DATA} (set SCMINT_SHARED_DATA)")
    return SHARED_DATA
