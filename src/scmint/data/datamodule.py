"""MultiOmicsDataModule: the one LightningDataModule every scmint method trains through.

From a :class:`DataSource` to batches: load raw MuData, map the dataset's label/batch columns onto
``cell_type``/``batch``, check it (:mod:`scmint.data.validation`), preprocess each modality with
its recipe (:mod:`scmint.data.recipes`), cache the result (:mod:`scmint.data.cache`) and hold it
in a cell store (:mod:`scmint.data.store`): dense tensors, sparse matrices or the file on disk.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import anndata as ad
import lightning as L
import mudata as md
import numpy as np
import pandas as pd
import psutil
import scipy.sparse as sp
import torch
from torch.utils.data import DataLoader

from scmint.data.cache import ProcessedCache
from scmint.data.loading import (
    BatchIndexSampler,
    IndexedBatches,
    check_block_shuffle,
    identity_collate,
)
from scmint.data.prefetch import PrefetchingDataLoader
from scmint.data.readers import BATCH_COLUMN, LABEL_COLUMN, map_obs, mudata, read_h5mu
from scmint.data.recipes import apply_recipe, pending_scale
from scmint.data.spec import DataSpec, guess_kind
from scmint.data.store import Affine, BackedCellStore, DenseCellStore, SparseCellStore
from scmint.data.validation import DataError, check_finite, drop_empty

log = logging.getLogger(__name__)

#: Storage modes of the preprocessed cells (see :mod:`scmint.data.store`).
STORAGE_MODES = ("auto", "dense", "sparse", "backed")
#: ``storage=auto`` goes dense while dense tensors take at most this share of available memory.
DENSE_MEMORY_SHARE = 0.5


class DataSource(Protocol):
    """Where cells come from: the simulator, local files or a registry dataset."""

    name: str

    def prepare(self) -> None:
        """Download or build files (called once, on rank 0)."""

    def load(self) -> md.MuData:
        """Return the raw data as a new MuData (label/batch columns as the dataset names them).

        The data module preprocesses it in place, so each call must return a fresh object.
        """

    def fingerprint(self) -> str:
        """A string that changes whenever the loaded data would change (for caching)."""


class MultiOmicsDataModule(L.LightningDataModule):
    """Serves paired, unpaired or partially paired modalities to any scmint method.

    Args:
        source: a :class:`DataSource` (Hydra-instantiated from ``data.source``).
        preprocess: modality -> recipe (list of step dicts); modalities without one pass unchanged.
        modalities: which modalities to use, in order (default: all in the source).
        label_key: obs column holding cell-type labels (evaluation only; may be absent). It is
            copied to ``cell_type``; ``"<modality>:<column>"`` reads one modality's obs.
        batch_key: obs column holding batches (may be absent: one batch); copied to ``batch``.
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
        storage: "dense" (tensors in memory), "sparse" (CSR in memory, densified per batch),
            "backed" (read from the processed file per batch) or "auto" (dense when the dense
            tensors fit in half the available memory, else sparse).
        cache: keep the preprocessed data in the processed cache (None: when the source is
            file-based, i.e. not for the simulator; "backed" storage always caches).
        cache_dir: folder of the processed cache (default ``$SCMINT_DATA_DIR/processed``).
        shuffle_block_size: None (default): shuffle the training cells exactly, cell by cell.
            An integer > 1: shuffle blocks of this many consecutive cells, then the cells within
            each window of ``shuffle_window`` batches (see :mod:`scmint.data.loading`); meant for
            ``storage=backed`` when the file is read from disk rather than the page cache.
        shuffle_window: batches whose cells are shuffled together under ``shuffle_block_size``.
        prefetch: gather the next batch on a background thread while the current one trains
            (:mod:`scmint.data.prefetch`; ``num_workers=0`` only, workers already gather ahead):
            True, False, or "auto" (the default): on for sparse and backed storage, whose
            gather densifies and z-scores CSR rows (and may read the disk), off for dense
            storage, whose gather is a copy too short to hide (docs/performance.md,
            "Prefetching, measured").
    """

    def __init__(
        self,
        source: DataSource,
        preprocess: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
        modalities: Sequence[str] | None = None,
        label_key: str | None = "cell_type",
        batch_key: str | None = "batch",
        batch_size: int = 16,
        eval_batch_size: int = 4096,
        val_fraction: float = 0.2,
        split_seed: int = 0,
        drop_last: bool = False,
        shuffle_seed: int = 0,
        num_workers: int = 0,
        name: str | None = None,
        storage: str = "auto",
        cache: bool | None = None,
        cache_dir: str | None = None,
        shuffle_block_size: int | None = None,
        shuffle_window: int = 8,
        prefetch: bool | Literal["auto"] = "auto",
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be >= 1, got {batch_size}")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must be in [0, 1), got {val_fraction}")
        if storage not in STORAGE_MODES:
            raise ValueError(f"data.storage must be one of {STORAGE_MODES}, got {storage!r}")
        check_block_shuffle(shuffle_block_size, shuffle_window)  # before any data is read
        if not (isinstance(prefetch, bool) or prefetch == "auto"):
            raise ValueError(f"data.prefetch must be true, false or auto, got {prefetch!r}")
        self.source = source
        self.preprocess = {m: _steps(recipe) for m, recipe in (preprocess or {}).items()}
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
        self.storage = storage
        self.cache = cache
        self.cache_dir = cache_dir
        self.shuffle_block_size = shuffle_block_size
        self.shuffle_window = shuffle_window
        self.prefetch = prefetch
        self.mdata: md.MuData | None = None
        self.store: DenseCellStore | SparseCellStore | BackedCellStore | None = None
        self.storage_used: str | None = None  # what storage="auto" resolved to, after setup
        self.spec: DataSpec | None = None
        self.processed_path: Path | None = None

    # ---- loading --------------------------------------------------------------------------
    def _use_cache(self) -> bool:
        if self.storage == "backed":
            if self.cache is False:
                raise ValueError(
                    "data.storage=backed reads the processed cache file: set data.cache=true"
                )
            return True
        return bool(getattr(self.source, "cacheable", False)) if self.cache is None else self.cache

    def _cache_entry(self) -> tuple[ProcessedCache, str]:
        cache = ProcessedCache(self.cache_dir)
        key = cache.key(
            self.source.fingerprint(),
            self.preprocess,
            self.requested_modalities,
            self.label_key,
            self.batch_key,
        )
        return cache, key

    def prepare_data(self) -> None:
        """Download/build the source and fill the processed cache (rank 0 only under DDP)."""
        self.source.prepare()
        if self._use_cache():
            cache, key = self._cache_entry()
            if not cache.path(self.name, key).exists():
                cache.save(self._process(), self.name, key)

    def setup(self, stage: str | None = None) -> None:
        if self.store is not None:
            return
        if not self._use_cache():
            self.mdata = self._process()
        else:
            cache, key = self._cache_entry()
            path = cache.path(self.name, key)
            processed = None if self.storage == "backed" else cache.load(self.name, key)
            if processed is None and not path.exists():
                processed = self._process()
                cache.save(processed, self.name, key)
            if self.storage == "backed":
                processed = read_h5mu(path, backed=True)
            self.mdata, self.processed_path = processed, path
        self._build_store()

    def _process(self) -> md.MuData:
        """Raw source -> checked, preprocessed MuData with ``cell_type``/``batch`` in obs."""
        raw = self.source.load()
        found = dict(
            zip(
                (LABEL_COLUMN, BATCH_COLUMN),
                map_obs(raw, self.label_key, self.batch_key),
                strict=True,
            )
        )
        names = self.requested_modalities or list(raw.mod)
        missing = [m for m in names if m not in raw.mod]
        if missing:
            raise DataError(
                f"data.modalities: {missing} not in dataset {self.name!r} (it has {list(raw.mod)}); "
                f"choose data.modalities from those, or a dataset that measures {missing}"
            )
        unknown = [m for m in self.preprocess if m not in names]
        if unknown:
            log.info(
                "preprocess: no modality %s in %s; those recipes are unused", unknown, self.name
            )
        mods = {}
        for m in names:
            adata = raw.mod[m]
            if not adata.obs_names.is_unique:
                raise DataError(
                    f"modality {m!r} of dataset {self.name!r} has duplicated cell names"
                )
            check_finite(adata, m, self.name)
            # Only X and the feature table travel on: layers, obsm and per-modality obs would be
            # written to the cache for nothing (labels/batches live in the MuData's obs).
            adata = ad.AnnData(X=adata.X, obs=pd.DataFrame(index=adata.obs_names), var=adata.var)
            if found[BATCH_COLUMN]:  # for recipe steps that use batches (combat); dropped after
                adata.obs[BATCH_COLUMN] = raw.obs[BATCH_COLUMN].reindex(adata.obs_names).to_numpy()
            adata = drop_empty(adata, m, self.name)
            adata = apply_recipe(adata, self.preprocess.get(m, []), m, copy=False)  # raw is ours
            adata.obs = pd.DataFrame(index=adata.obs_names)
            mods[m] = adata
        processed = mudata(mods)
        obs = pd.DataFrame(index=processed.obs_names)
        for column in (LABEL_COLUMN, BATCH_COLUMN):
            if found[
                column
            ]:  # only what label_key/batch_key named, never a stray same-named column
                obs[column] = raw.obs[column].reindex(processed.obs_names).to_numpy()
        processed.obs = obs
        return processed

    def _build_store(self) -> None:
        mdata = self.mdata
        n = mdata.n_obs
        if n == 0:
            raise DataError(f"dataset {self.name!r} has no cells after preprocessing")
        rows, masks, affine = {}, {}, {}
        for m, adata in mdata.mod.items():
            local = (
                np.asarray(mdata.obsmap[m]).ravel().astype(np.int64) - 1
            )  # obsmap: 1-based, 0 = absent
            masks[m] = local >= 0
            rows[m] = None if np.array_equal(local, np.arange(n)) else local
            scale = pending_scale(adata)
            if scale is not None:
                affine[m] = Affine(*scale)
        obs = mdata.obs
        self.label_names, labels = _codes(obs, LABEL_COLUMN if LABEL_COLUMN in obs else None)
        self.batch_names, batches = _codes(obs, BATCH_COLUMN if BATCH_COLUMN in obs else None)
        batches = np.where(batches < 0, 0, batches)
        storage = self._resolve_storage()
        if storage == "backed":
            self.store = BackedCellStore(self.processed_path, rows, masks, labels, batches, affine)
        elif storage == "sparse":
            features = {m: a.X for m, a in mdata.mod.items()}
            self.store = SparseCellStore(features, rows, masks, labels, batches, affine)
        else:
            features = {
                m: _dense_rows(a.X, rows[m], masks[m], affine.get(m)) for m, a in mdata.mod.items()
            }
            self.store = DenseCellStore(features, masks, labels, batches)
        self.storage_used = storage
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
        n_val = round(self.val_fraction * n)
        self.val_index, self.train_index = order[:n_val].sort().values, order[n_val:].sort().values
        log.info(
            "data %s: %d cells (%d train / %d val), modalities %s, %s storage",
            self.name,
            n,
            len(self.train_index),
            len(self.val_index),
            self.spec.modalities,
            storage,
        )

    def _resolve_storage(self) -> str:
        if self.storage != "auto":
            return self.storage
        dense_bytes = 4 * self.mdata.n_obs * sum(a.n_vars for a in self.mdata.mod.values())
        budget = DENSE_MEMORY_SHARE * psutil.virtual_memory().available
        if dense_bytes <= budget:
            return "dense"
        log.info(
            "data.storage=auto: dense tensors would take %.1f GB (> %.1f GB budget); using sparse",
            dense_bytes / 1e9,
            budget / 1e9,
        )
        return "sparse"

    # ---- loaders --------------------------------------------------------------------------
    def _rank_world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def _loader(
        self, index: torch.Tensor, batch_size: int, shuffle: bool, drop_last: bool
    ) -> DataLoader:
        rank, world = self._rank_world()
        sampler = BatchIndexSampler(
            index,
            batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            seed=self.shuffle_seed,
            rank=rank,
            world_size=world,
            block_size=self.shuffle_block_size,
            window=self.shuffle_window,
        )
        loader = PrefetchingDataLoader if self.prefetches() else DataLoader
        return loader(
            IndexedBatches(self.store, self.store.n_cells),
            sampler=sampler,
            batch_size=None,
            collate_fn=identity_collate,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def prefetches(self) -> bool:
        """Whether the training and validation loaders gather ahead on a thread (``prefetch``)."""
        if self.num_workers > 0:  # worker processes already gather ahead
            return False
        if self.prefetch == "auto":
            return self.storage_used in ("sparse", "backed")
        return self.prefetch

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
                self.batch_size,
                size,
            )
        return self._loader(self.train_index, size, shuffle=True, drop_last=self.drop_last)

    def val_dataloader(self) -> DataLoader | list:
        if len(self.val_index) == 0:
            return []
        return self._loader(self.val_index, self.eval_batch_size, shuffle=False, drop_last=False)

    def predict_dataloader(self) -> DataLoader:
        """All cells, in dataset order (not sharded: prediction runs on one process)."""
        sampler = BatchIndexSampler(
            torch.arange(self.store.n_cells), self.eval_batch_size, shuffle=False
        )
        return DataLoader(
            IndexedBatches(self.store, self.store.n_cells),
            sampler=sampler,
            batch_size=None,
            collate_fn=identity_collate,
        )

    def transfer_batch_to_device(
        self, batch: Any, device: torch.device, dataloader_idx: int
    ) -> Any:
        """This module's batches are CPU tensors: on CPU they stay as they are, which spares
        Lightning's generic walk over the nested batch dict at every step."""
        if device.type == "cpu":
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

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
        """All cells' preprocessed features of one modality (rows without it are zeros).

        Dense storage returns its tensor; sparse and backed storage densify every cell, which is
        meant for evaluation of data that fits in memory once.
        """
        return self.store.dense(modality)

    @property
    def obs_names(self) -> pd.Index:
        return self.mdata.obs_names


def _steps(recipe: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """A recipe (``conf/preprocess/*.yaml``: a list of step dicts) as plain dicts."""
    if recipe is None:
        return []
    if isinstance(recipe, Mapping | str):
        raise ValueError(
            f"a preprocess recipe is a list of steps like [{{step: log1p}}, {{step: scale}}], got {recipe!r}"
        )
    return [dict(s) for s in recipe]


def _codes(obs: pd.DataFrame, key: str | None) -> tuple[list[str], np.ndarray]:
    """Integer codes of an obs column (-1 for missing); empty names when there is no column."""
    if key is None:
        return [], np.full(len(obs), -1, dtype=np.int64)
    column = obs[key].astype("category")
    return [str(c) for c in column.cat.categories], column.cat.codes.to_numpy().astype(np.int64)


def _dense_rows(
    x: Any, rows: np.ndarray | None, mask: np.ndarray, affine: Affine | None
) -> torch.Tensor:
    """One modality as a dense tensor on the store's cell axis (absent cells: zero rows)."""
    dense = torch.from_numpy(
        np.ascontiguousarray(x.toarray() if sp.issparse(x) else x, dtype=np.float32)
    )
    if affine is not None:
        dense = affine(
            dense if sp.issparse(x) else dense.clone()
        )  # never z-score mdata's X in place
    if rows is None:
        return dense
    out = torch.zeros((len(rows), dense.shape[1]), dtype=torch.float32)
    out[torch.from_numpy(mask)] = dense[torch.from_numpy(rows[mask])]
    return out
