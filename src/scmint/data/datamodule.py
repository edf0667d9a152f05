"""MultiOmicsDataModule: the one LightningDataModule every scmint method trains through."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import lightning as L
import mudata as md
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from scmint.data.loading import BatchIndexSampler, IndexedBatches, identity_collate
from scmint.data.recipes import apply_recipe
from scmint.data.spec import DataSpec, guess_kind
from scmint.data.store import DenseCellStore

log = logging.getLogger(__name__)


class DataSource(Protocol):
    """Where cells come from: the simulator, local files or a registry dataset."""

    name: str

    def prepare(self) -> None:
        """Download or build files (called once, on rank 0)."""

    def load(self) -> md.MuData:
        """Return the raw data as MuData with ``cell_type`` / ``batch`` mapped in ``obs``."""

    def fingerprint(self) -> str:
        """A string that changes whenever the loaded data would change (for caching)."""


class MultiOmicsDataModule(L.LightningDataModule):
    """Serves paired, unpaired or partially paired modalities to any scmint method.

    Args:
        source: a :class:`DataSource` (Hydra-instantiated from ``data.source``).
        preprocess: modality -> recipe (list of step dicts); modalities without one pass unchanged.
        modalities: which modalities to use, in order (default: all in the source).
        label_key: obs column holding cell-type labels (evaluation only; may be absent).
        batch_key: obs column holding batches (may be absent: one batch).
        batch_size: training batch size per device.
        eval_batch_size: batch size of the validation and predict loaders (no gradients, so larger).
        val_fraction: share of cells held out for validation (0 disables validation).
        split_seed: seed of the train/validation split, separate from the model seed so that
            methods compared across seeds see the same split.
        drop_last: drop the last partial training batch. When the training split has fewer cells
            than ``batch_size``, one batch of all training cells is used instead (logged).
        shuffle_seed: base seed of the per-epoch shuffle (set from the run seed by ``train.py``).
        num_workers: DataLoader workers; 0 is fastest for in-memory tensors.
        name: dataset name for run records.
    """

    def __init__(
        self,
        source: DataSource,
        preprocess: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
        modalities: Sequence[str] | None = None,
        label_key: str = "cell_type",
        batch_key: str = "batch",
        batch_size: int = 16,
        eval_batch_size: int = 4096,
        val_fraction: float = 0.2,
        split_seed: int = 0,
        drop_last: bool = False,
        shuffle_seed: int = 0,
        num_workers: int = 0,
        name: str | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be >= 1, got {batch_size}")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must be in [0, 1), got {val_fraction}")
        self.source = source
        self.preprocess = {m: list(steps) for m, steps in (preprocess or {}).items()}
        self.requested_modalities = list(modalities) if modalities else None
        self.label_key = label_key
        self.batch_key = batch_key
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.drop_last = drop_last
        self.shuffle_seed = shuffle_seed
        self.num_workers = num_workers
        self.name = name or getattr(source, "name", "data")
        self.mdata: md.MuData | None = None
        self.store: DenseCellStore | None = None
        self.spec: DataSpec | None = None

    # ---- loading --------------------------------------------------------------------------
    def prepare_data(self) -> None:
        self.source.prepare()

    def setup(self, stage: str | None = None) -> None:
        if self.store is not None:
            return
        raw = self.source.load()
        names = self.requested_modalities or list(raw.mod)
        missing = [m for m in names if m not in raw.mod]
        if missing:
            raise ValueError(
                f"data.modalities: {missing} not in dataset {self.name!r} "
                f"(it has {list(raw.mod)})"
            )
        unknown = [m for m in self.preprocess if m not in raw.mod]
        if unknown:
            log.info("preprocess: no modality %s in %s; those recipes are unused", unknown, self.name)
        mods = {m: apply_recipe(raw[m], self.preprocess.get(m, []), m) for m in names}
        self.mdata = md.MuData(mods)
        self.mdata.obs = self.mdata.obs.join(raw.obs.drop(columns=self.mdata.obs.columns, errors="ignore"))
        self._build_store()

    def _build_store(self) -> None:
        mdata = self.mdata
        obs_names = mdata.obs_names
        features, masks = {}, {}
        for m, adata in mdata.mod.items():
            rows = obs_names.get_indexer(adata.obs_names)
            x = np.zeros((mdata.n_obs, adata.n_vars), dtype=np.float32)
            x[rows] = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
            mask = np.zeros(mdata.n_obs, dtype=bool)
            mask[rows] = True
            features[m], masks[m] = x, mask
        self.label_names, labels = _codes(mdata.obs, self.label_key, "label", self.name)
        self.batch_names, batches = _codes(mdata.obs, self.batch_key, "batch", self.name)
        batches = np.where(batches < 0, 0, batches)
        self.store = DenseCellStore(features, masks, labels, batches)
        n = mdata.n_obs
        if n == 0:
            raise ValueError(f"dataset {self.name!r} has no cells after preprocessing")
        paired_cells = np.logical_and.reduce([masks[m] for m in masks]) if len(masks) > 1 else None
        self.spec = DataSpec(
            modalities={m: a.n_vars for m, a in mdata.mod.items()},
            n_cells=n,
            paired=bool(paired_cells is not None and paired_cells.any()),
            fully_paired=bool(paired_cells is not None and paired_cells.all()),
            n_batches=max(1, len(self.batch_names)),
            n_labels=len(self.label_names),
            kinds={m: guess_kind(m) for m in mdata.mod},
        )
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.split_seed))
        n_val = int(round(self.val_fraction * n))
        self.val_index, self.train_index = order[:n_val].sort().values, order[n_val:].sort().values
        log.info(
            "data %s: %d cells (%d train / %d val), modalities %s",
            self.name, n, len(self.train_index), len(self.val_index), self.spec.modalities,
        )

    # ---- loaders --------------------------------------------------------------------------
    def _rank_world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def _loader(self, index: torch.Tensor, batch_size: int, shuffle: bool, drop_last: bool) -> DataLoader:
        rank, world = self._rank_world()
        sampler = BatchIndexSampler(
            index, batch_size, shuffle=shuffle, drop_last=drop_last,
            seed=self.shuffle_seed, rank=rank, world_size=world,
        )
        return DataLoader(
            IndexedBatches(self.store, self.store.n_cells),
            sampler=sampler,
            batch_size=None,
            collate_fn=identity_collate,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_batch_size(self) -> int:
        """The batch size training really uses (see ``drop_last``)."""
        _, world = self._rank_world()
        per_rank = len(self.train_index) // world
        if self.drop_last and per_rank < self.batch_size:
            return max(1, per_rank)
        return self.batch_size

    def train_dataloader(self) -> DataLoader:
        size = self.train_batch_size()
        if size != self.batch_size:
            log.warning(
                "data.batch_size=%d exceeds the %d training cells per device; "
                "training on one batch of all of them",
                self.batch_size, size,
            )
        return self._loader(self.train_index, size, shuffle=True, drop_last=self.drop_last)

    def val_dataloader(self) -> DataLoader | list:
        if len(self.val_index) == 0:
            return []
        return self._loader(self.val_index, self.eval_batch_size, shuffle=False, drop_last=False)

    def predict_dataloader(self) -> DataLoader:
        """All cells, in dataset order (not sharded: prediction runs on one process)."""
        sampler = BatchIndexSampler(torch.arange(self.store.n_cells), self.eval_batch_size, shuffle=False)
        return DataLoader(
            IndexedBatches(self.store, self.store.n_cells),
            sampler=sampler, batch_size=None, collate_fn=identity_collate,
        )

    # ---- what evaluation reads ------------------------------------------------------------
    def labels(self) -> np.ndarray | None:
        """Cell-type labels as strings (None when the dataset has none)."""
        if not len(self.label_names):
            return None
        codes = self.store.labels.numpy()
        return np.where(codes >= 0, np.asarray(self.label_names, dtype=object)[codes.clip(0)], None)

    def batches(self) -> np.ndarray | None:
        if len(self.batch_names) < 2:
            return None
        return np.asarray(self.batch_names, dtype=object)[self.store.batches.numpy()]

    def features(self, modality: str) -> torch.Tensor:
        """All cells' preprocessed features of one modality (rows without it are zeros)."""
        return self.store.features[modality]

    @property
    def obs_names(self) -> pd.Index:
        return self.mdata.obs_names


def _codes(obs: pd.DataFrame, key: str | None, what: str, dataset: str) -> tuple[list[str], np.ndarray]:
    """Integer codes of an obs column (-1 for missing); empty names when the column is absent."""
    if not key or key not in obs.columns:
        if key:
            log.warning(
                "dataset %s has no obs column %r for %ss (columns: %s); "
                "training runs, evaluation will report %ss as absent",
                dataset, key, what, list(obs.columns), what,
            )
        return [], np.full(len(obs), -1, dtype=np.int64)
    column = obs[key].astype("category")
    return [str(c) for c in column.cat.categories], column.cat.codes.to_numpy().astype(np.int64)
