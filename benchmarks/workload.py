"""What the benchmarks train on: the user's Hydra configs, and synthetic data of any size.

Every figure is taken on the configuration a user gets from ``scmint-train model=<method>``
(the method's reference optimiser, callbacks, logger and trainer flags), composed with Hydra's
compose API from ``conf/``; only the data size, batch size, storage mode and step counts change.

Data: simulating and preprocessing 1,000,000 cells with the real recipes takes far longer on a
small machine than the training it would be used to time, and the step time does not depend on
which cells are in a batch, only on their shapes and sparsity. So each dataset is a *template* of
:data:`TEMPLATE_CELLS` cells simulated by :mod:`scmint.data.synthetic` and preprocessed by the
method recipes of ``conf/data/<dataset>.yaml`` (cached on disk like any processed dataset), and a
benchmark dataset of ``n`` cells repeats the template's rows (cell ``i`` is template row
``i mod 10,000``). It keeps the template's sparsity, value distribution and deferred z-score,
so the sparse store does exactly the work it would do on real data of that size.
"""

from __future__ import annotations

import anndata as ad
import hydra
import mudata as md
import numpy as np
import pandas as pd
import scipy.sparse as sp
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf, open_dict

from scmint.data.datamodule import MultiOmicsDataModule
from scmint.models.base import IntegrationModule
from scmint.utils.config import CONFIG_DIR, register_resolvers

#: Benchmark dataset name -> data config (conf/data/<name>.yaml) it is built from.
DATASETS = {"cite": "synthetic_cite", "multiome": "synthetic_multiome"}
#: Size of the simulated + preprocessed template every benchmark dataset repeats.
TEMPLATE_CELLS = 10_000
#: Methods of the issue, in the order tables list them (a missing config is skipped and reported).
METHODS = ("umint", "ae", "dae", "sae", "smile", "psmile", "mpsmile")
#: Modality kept for methods that take one modality only (SMILE's horizontal integration).
SINGLE_MODALITY = "rna"


def compose_config(method: str, dataset: str, overrides: list[str] | None = None) -> DictConfig:
    """The user's config for ``model=<method> data=<dataset config>`` plus ``overrides``."""
    register_resolvers()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            "train", overrides=[f"model={method}", f"data={DATASETS[dataset]}", *(overrides or [])]
        )
    return cfg


def available_methods(requested: list[str] | None = None) -> tuple[list[str], list[str]]:
    """(methods with a trainable config in conf/model, requested methods without one)."""
    present, missing = [], []
    for method in requested or METHODS:
        path = CONFIG_DIR / "model" / f"{method}.yaml"
        if path.exists() and issubclass(model_class(method), IntegrationModule):
            present.append(method)
        else:
            missing.append(method)
    return present, missing


def model_class(method: str) -> type:
    cfg = OmegaConf.load(CONFIG_DIR / "model" / f"{method}.yaml")
    return hydra.utils.get_class(cfg.model._target_)


def reference_protocol(cfg: DictConfig) -> tuple[int, int]:
    """(epochs, batch size) the method's config sets: its paper's reference protocol."""
    return int(cfg.trainer.max_epochs), int(cfg.data.batch_size)


def template(dataset: str) -> md.MuData:
    """The simulated, preprocessed template of ``dataset`` (built once, then read from the cache)."""
    cfg = compose_config("umint", dataset, [f"data.source.n_cells={TEMPLATE_CELLS}"])
    data_cfg = OmegaConf.to_container(cfg.data, resolve=True)
    datamodule = hydra.utils.instantiate(
        data_cfg, cache=True, storage="sparse", _convert_="partial"
    )
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule.mdata


class RepeatedSource:
    """A :class:`~scmint.data.datamodule.DataSource` of ``n_cells`` cells repeating a template.

    Its modalities are already preprocessed (a deferred z-score stays deferred), so the datamodule
    that reads it is given no recipe.
    """

    cacheable = False

    def __init__(
        self, base: md.MuData, n_cells: int, modalities: list[str] | None = None, label: str = ""
    ) -> None:
        self.base = base
        self.label = label
        self.n_cells = n_cells
        self.modalities = modalities or list(base.mod)

    @property
    def name(self) -> str:
        return f"repeated{self.n_cells}"

    def prepare(self) -> None:
        """Nothing to download."""

    def fingerprint(self) -> str:
        return f"repeated:{self.label}:{self.base.shape}:{self.n_cells}:{self.modalities}"

    def load(self) -> md.MuData:
        rows = np.arange(self.n_cells) % self.base.n_obs
        names = pd.Index([f"cell_{i:07d}" for i in range(self.n_cells)], name="cell")
        obs = pd.DataFrame(
            {
                c: self.base.obs[c].to_numpy()[rows]
                for c in ("cell_type", "batch")
                if c in self.base.obs
            },
            index=names,
        )
        mods = {}
        for m in self.modalities:
            src = self.base.mod[m]
            x = src.X[rows] if sp.issparse(src.X) else np.asarray(src.X)[rows]
            mods[m] = ad.AnnData(
                X=x, obs=pd.DataFrame(index=names), var=src.var.copy(), uns=dict(src.uns)
            )
        mdata = md.MuData(mods)
        mdata.obs = obs.reindex(mdata.obs_names)
        return mdata


def dense_bytes(base: md.MuData, n_cells: int, modalities: list[str]) -> int:
    """Bytes of ``n_cells`` cells as dense float32 tensors."""
    return 4 * n_cells * sum(base.mod[m].n_vars for m in modalities)


def dataset_modalities(dataset: str) -> list[str]:
    """The modalities a benchmark dataset simulates (its data config's ``source.modalities``)."""
    cfg = OmegaConf.load(CONFIG_DIR / "data" / f"{DATASETS[dataset]}.yaml")
    return list(cfg.source.modalities)


def method_modalities(method: str, names: list[str]) -> list[str]:
    """The modalities among ``names`` the method takes (single-modality methods get RNA)."""
    requirements = model_class(method).requirements
    if requirements.max_modalities is not None and len(names) > requirements.max_modalities:
        return [SINGLE_MODALITY]
    return names


def build_datamodule(
    cfg: DictConfig,
    base: md.MuData,
    n_cells: int,
    modalities: list[str],
    storage: str,
    cache_dir: str | None = None,
) -> MultiOmicsDataModule:
    """The user's datamodule config over a :class:`RepeatedSource`, loaded and set up.

    With ``cache_dir`` the processed data goes through scmint's processed cache there (written by
    the first call, read by later ones, as in every run of a sweep after the first); without it,
    it is processed from the source in memory (a first run).
    """
    data_cfg = OmegaConf.to_container(cfg.data, resolve=True)
    data_cfg.pop("source")
    data_cfg.pop("preprocess", None)
    datamodule = hydra.utils.instantiate(
        data_cfg,
        source=RepeatedSource(base, n_cells, modalities, label=str(cfg.data.get("name"))),
        preprocess=None,
        storage=storage,
        cache=cache_dir is not None,
        cache_dir=cache_dir,
        _convert_="partial",
    )
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def with_overrides(cfg: DictConfig, values: dict[str, object]) -> DictConfig:
    """A copy of ``cfg`` with dotted ``values`` set (keys may be new)."""
    cfg = cfg.copy()
    with open_dict(cfg):
        for key, value in values.items():
            OmegaConf.update(cfg, key, value, force_add=True)
    return cfg
