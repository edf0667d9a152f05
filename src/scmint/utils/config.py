"""Hydra/OmegaConf glue: where the configs live, custom resolvers, config checks before training."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

#: The project root (holds conf/); scmint is installed editable from it (`make install`).
PROJECT_ROOT = Path(__file__).resolve().parents[3]
CONFIG_DIR = PROJECT_ROOT / "conf"


class ConfigError(ValueError):
    """A config value outside its allowed range; the message names the key and the range."""


def register_resolvers() -> None:
    """``${scmint_root:}`` resolves to the project root (used by conf/paths)."""
    if not OmegaConf.has_resolver("scmint_root"):
        OmegaConf.register_new_resolver("scmint_root", lambda: str(PROJECT_ROOT))


def _require(cfg: DictConfig, key: str, low: float, what: str) -> None:
    value = OmegaConf.select(cfg, key, default=None)
    if value is not None and value < low:
        raise ConfigError(f"{key} must be {what}, got {value}")


def validate_config(cfg: DictConfig) -> None:
    """Reject impossible values before any data is loaded or trained on.

    Constructors check their own arguments too; this catches the keys whose violation would
    otherwise surface late or obscurely (Lightning reads ``max_epochs=-1`` as "train forever").
    """
    _require(cfg, "trainer.max_epochs", 1, ">= 1 (number of training epochs)")
    _require(cfg, "trainer.devices", 1, ">= 1")
    _require(cfg, "data.batch_size", 1, ">= 1")
    _require(cfg, "data.source.n_cells", 1, ">= 1 (cells to simulate)")
    _require(cfg, "model.latent_dim", 1, ">= 1")
    val_fraction = OmegaConf.select(cfg, "data.val_fraction", default=None)
    if val_fraction is not None and not 0 <= val_fraction < 1:
        raise ConfigError(f"data.val_fraction must be in [0, 1), got {val_fraction}")
