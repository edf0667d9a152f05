"""Preprocessed cells, ready to be gathered a batch at a time: in memory dense, in memory sparse,
or on disk.

All three stores share one cell axis (the MuData's ``obs``) and return the same batch dict (see
:mod:`scmint.data.spec`); a cell lacking a modality gets a zero row and a False mask. Every
``gather`` works on the whole batch at once (tensor or array indexing), never cell by cell:

* :class:`DenseCellStore`: float32 tensors, one ``index_select`` per modality (fastest; needs
  ``cells x features x 4`` bytes);
* :class:`SparseCellStore`: CSR matrices, rows picked and densified per batch (memory ~ non-zeros);
  a deferred z-score (see :mod:`scmint.data.recipes`) is applied to the dense batch;
* :class:`BackedCellStore`: rows read from the processed ``.h5mu`` file per batch (memory ~ one
  row-pointer array), for data larger than memory.

Sparse rows are densified and z-scored by one compiled kernel per batch (:func:`_csr_rows_kernel`,
numba); without numba, numpy/scipy calls give the same numbers.
"""

from __future__ import annotations

import functools
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

try:  # scanpy depends on numba, so it is normally there; without it, a numpy path does the same
    import numba
except ImportError:  # pragma: no cover
    numba = None


@dataclass(frozen=True)
class Affine:
    """A per-feature z-score applied at gather time: ``clip((x - mean) / std, +/- max_value)``.

    Applied in place (callers pass a tensor they own), so z-scoring 8 GB of dense data at build
    time needs no second 8 GB.
    """

    mean: np.ndarray
    std: np.ndarray
    max_value: float | None = None

    def __call__(self, x: Tensor) -> Tensor:
        x.sub_(torch.from_numpy(self.mean)).div_(torch.from_numpy(self.std))
        if self.max_value is not None:
            x.clamp_(-self.max_value, self.max_value)
        return x

    @functools.cached_property
    def kernel_args(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.float32, np.float32]:
        """(z-scored zero, mean, std, low, high) in float32, for :func:`_csr_rows_kernel`."""
        zero = self(torch.zeros(len(self.mean))).numpy()
        limit = np.float32(np.inf if self.max_value is None else self.max_value)
        return zero, self.mean.astype(np.float32), self.std.astype(np.float32), -limit, limit


class _CellStore(ABC):
    """Masks, labels and batches of every cell; subclasses supply one modality's rows."""

    def __init__(self, masks: dict[str, Any], labels: Any, batches: Any) -> None:
        self.masks = {m: torch.as_tensor(np.asarray(k), dtype=torch.bool) for m, k in masks.items()}
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        self.batches = torch.as_tensor(np.asarray(batches), dtype=torch.long)

    @property
    def n_cells(self) -> int:
        return len(self.labels)

    @property
    def modalities(self) -> list[str]:
        return list(self.masks)

    @abstractmethod
    def take(self, modality: str, index: Tensor) -> Tensor:
        """Rows ``index`` of one modality as a dense float32 tensor (zeros where absent)."""

    def gather(self, index: Tensor) -> dict[str, Any]:
        return {
            "x": {m: self.take(m, index) for m in self.masks},
            "mask": {m: k.index_select(0, index) for m, k in self.masks.items()},
            "index": index,
            "label": self.labels.index_select(0, index),
            "batch": self.batches.index_select(0, index),
        }

    def dense(self, modality: str, chunk: int = 65_536) -> Tensor:
        """All cells of one modality as one dense tensor (for evaluation of modest data sizes)."""
        parts = [
            self.take(modality, torch.arange(s, min(s + chunk, self.n_cells)))
            for s in range(0, self.n_cells, chunk)
        ]
        return torch.cat(parts) if parts else torch.zeros(0)


class DenseCellStore(_CellStore):
    """All modalities as dense float32 tensors aligned on one cell axis.

    Rows of a modality a cell lacks hold zeros and are flagged False in its mask, so partially
    paired data keeps one index space.
    """

    def __init__(
        self,
        features: dict[str, np.ndarray | sp.spmatrix | Tensor],
        masks: dict[str, np.ndarray | Tensor],
        labels: np.ndarray | Tensor,
        batches: np.ndarray | Tensor,
    ) -> None:
        super().__init__(masks, labels, batches)
        self.features = {m: _as_float_tensor(x) for m, x in features.items()}

    def take(self, modality: str, index: Tensor) -> Tensor:
        return self.features[modality].index_select(0, index)

    def dense(self, modality: str, chunk: int = 65_536) -> Tensor:
        return self.features[modality]

    def nbytes(self) -> int:
        return sum(x.element_size() * x.nelement() for x in self.features.values())


class SparseCellStore(_CellStore):
    """Modalities as CSR matrices (dense ones as tensors), densified a batch at a time.

    Args:
        features: modality -> the modality's own rows (CSR or dense), in its own cell order.
        rows: modality -> for every cell of the store, its row in ``features`` (-1: absent);
            None when the modality has every cell in store order.
        affine: modality -> deferred z-score applied after densifying.
    """

    def __init__(
        self,
        features: dict[str, sp.spmatrix | np.ndarray],
        rows: dict[str, np.ndarray | None],
        masks: dict[str, np.ndarray],
        labels: np.ndarray,
        batches: np.ndarray,
        affine: dict[str, Affine] | None = None,
    ) -> None:
        super().__init__(masks, labels, batches)
        self.affine = dict(affine or {})
        self.rows: dict[str, np.ndarray | None] = {}
        self.matrices: dict[str, sp.csr_matrix | Tensor] = {}
        for m, x in features.items():
            r = rows.get(m)
            if r is not None:  # absent cells point at one extra all-zero row at the end
                r = np.where(r < 0, x.shape[0], r).astype(np.int64)
                x = _with_zero_row(x)
            self.rows[m] = r
            self.matrices[m] = sp.csr_matrix(x) if sp.issparse(x) else _as_float_tensor(x)

    def take(self, modality: str, index: Tensor) -> Tensor:
        x = self.matrices[modality]
        rows = self.rows[modality]
        if isinstance(x, Tensor):
            picked = index if rows is None else torch.from_numpy(rows[index.numpy()])
            out = x.index_select(0, picked)
        elif _fill_csr_rows is not None:  # densify and z-score in one compiled pass
            wanted = index.numpy()
            if rows is not None:  # absent cells: -1 (a zero row)
                present = self.masks[modality].numpy()[wanted]
                wanted = np.where(present, rows[wanted], -1)
            return torch.from_numpy(
                _csr_rows_compiled(
                    (x.data, x.indices), x.indptr, wanted, x.shape[1], self.affine.get(modality)
                )
            )
        else:
            picked = index.numpy() if rows is None else rows[index.numpy()]
            out = torch.from_numpy(x[picked].toarray())
        affine = self.affine.get(modality)
        if affine is not None:
            out = affine(out)
            if rows is not None:  # absent cells stay zero after the z-score
                out.mul_(self.masks[modality].index_select(0, index).unsqueeze(1))
        return out

    def nbytes(self) -> int:
        total = 0
        for x in self.matrices.values():
            if isinstance(x, Tensor):
                total += x.element_size() * x.nelement()
            else:
                total += x.data.nbytes + x.indices.nbytes + x.indptr.nbytes
        return total


class BackedCellStore(_CellStore):
    """Rows read from disk a batch at a time, for data larger than memory.

    The matrices of the processed ``.h5mu`` file stay on disk, memory-mapped: a batch is one
    vectorised gather that the operating system pages in. A dataset that HDF5 stores contiguous
    and uncompressed is mapped in place; a chunked or compressed one (anndata chunks sparse
    matrices) is first copied once, chunk by chunk, to a ``.npy`` file in ``<file>.arrays/``
    beside it. Only each sparse modality's row pointers (8 bytes per cell) are loaded. Mapped
    pages count in the process's resident memory but belong to the page cache, which the system
    reclaims under memory pressure. Maps are opened lazily per process (DataLoader workers each
    open their own).

    Args:
        path: the processed ``.h5mu`` file.
        rows: modality -> for every cell of the store, its row in the file's modality (-1: absent).
        affine: modality -> deferred z-score.
    """

    def __init__(
        self,
        path: str | Path,
        rows: dict[str, np.ndarray | None],
        masks: dict[str, np.ndarray],
        labels: np.ndarray,
        batches: np.ndarray,
        affine: dict[str, Affine] | None = None,
    ) -> None:
        super().__init__(masks, labels, batches)
        self.path = str(path)
        self.rows = rows
        self.affine = dict(affine or {})
        self.indptr: dict[str, np.ndarray] = {}
        self.shape: dict[str, tuple[int, int]] = {}
        self.files: dict[str, tuple[tuple[str, int | None, np.dtype, tuple], ...]] = {}
        self._maps: dict[str, tuple[np.ndarray, ...]] = {}
        self._pid: int | None = None
        with h5py.File(self.path, "r") as f:
            for m in masks:
                node = f[f"mod/{m}/X"]
                if isinstance(node, h5py.Group):
                    self.indptr[m] = node["indptr"][:].astype(np.int64)
                    self.shape[m] = tuple(int(s) for s in node.attrs["shape"])
                    datasets = {"data": node["data"], "indices": node["indices"]}
                else:
                    self.shape[m] = tuple(node.shape)
                    datasets = {"X": node}
                self.files[m] = tuple(self._mappable(m, key, d) for key, d in datasets.items())

    def _mappable(self, modality: str, key: str, dataset: h5py.Dataset) -> tuple:
        """(file, byte offset or None for .npy, dtype, shape) of a memory-mappable copy."""
        offset = dataset.id.get_offset()
        if dataset.chunks is None and dataset.compression is None and offset is not None:
            return (self.path, offset, dataset.dtype, dataset.shape)
        target = Path(f"{self.path}.arrays") / f"{modality}.{key}.npy"
        if not target.exists() or target.stat().st_mtime_ns < Path(self.path).stat().st_mtime_ns:
            _copy_to_npy(dataset, target)  # absent, or older than a rewritten .h5mu
        return (str(target), None, dataset.dtype, dataset.shape)

    def nbytes(self) -> int:
        """Memory this store holds itself: the row pointers (the matrices stay on disk)."""
        return sum(p.nbytes for p in self.indptr.values())

    def __getstate__(self) -> dict[str, Any]:  # maps are reopened in each worker process
        state = dict(self.__dict__)
        state["_maps"], state["_pid"] = {}, None
        return state

    def _open(self, modality: str) -> tuple[np.ndarray, ...]:
        if self._pid != os.getpid():
            self._maps, self._pid = {}, os.getpid()
        if modality not in self._maps:
            self._maps[modality] = tuple(
                np.load(file, mmap_mode="r")
                if offset is None
                else np.memmap(file, dtype=dtype, mode="r", offset=offset, shape=shape)
                for file, offset, dtype, shape in self.files[modality]
            )
        return self._maps[modality]

    def take(self, modality: str, index: Tensor) -> Tensor:
        rows = self.rows[modality]
        wanted = index.numpy() if rows is None else rows[index.numpy()]
        present = None if rows is None else wanted >= 0  # None: every cell has the modality
        arrays = self._open(modality)
        affine = self.affine.get(modality)
        if modality in self.indptr and _fill_csr_rows is not None:
            # densify and z-score in one compiled pass (absent cells: wanted = -1, zero rows)
            arrays = tuple(np.asarray(a) for a in arrays)
            out = _csr_rows_compiled(
                arrays, self.indptr[modality], wanted, self.shape[modality][1], affine
            )
            return torch.from_numpy(out)
        if modality in self.indptr:
            out = _csr_rows(arrays, self.indptr[modality], wanted, present, self.shape[modality][1])
        elif present is None:
            out = np.asarray(arrays[0][wanted], dtype=np.float32)
        else:
            out = np.zeros((len(wanted), self.shape[modality][1]), dtype=np.float32)
            out[present] = arrays[0][wanted[present]]
        x = torch.from_numpy(out)
        if affine is not None:
            x = affine(x)
            if present is not None and not present.all():  # absent cells stay zero
                x.mul_(torch.from_numpy(present).unsqueeze(1))
        return x


def _csr_rows_kernel(out, data, indices, indptr, wanted, zero, mean, std, low, high):
    """``out[r] = clip((row wanted[r] of the CSR matrix - mean) / std, low, high)``, densified,
    for every r; a zero row where ``wanted[r] < 0``. Rows are visited in file order (a sorted
    walk through the mapped file) and written in batch order. ``zero`` is the z-scored zero.

    One pass writes each output row once: what numpy does in ~10 vectorised calls with
    temporaries (positions, gathers, densify, then sub, div, clamp over the dense batch).
    Column indices within a row are taken as unique (a canonical CSR, as scanpy/anndata write).
    """
    order = np.argsort(wanted)
    # First touch one value per 1,024 (4 KB of float32/int32) of every row: independent loads,
    # so the CPU overlaps their cache and TLB misses, instead of meeting them one row at a time
    # below (~30 % faster on a 2.7 GB matrix; on a file not in the page cache, this is where the
    # pages are read).
    touched = np.float32(0)
    for k in range(wanted.shape[0]):
        w = wanted[order[k]]
        if w >= 0 and indptr[w + 1] > indptr[w]:
            for j in range(indptr[w], indptr[w + 1], 1024):
                touched += data[j] + np.float32(indices[j])
            touched += data[indptr[w + 1] - 1] + np.float32(indices[indptr[w + 1] - 1])
    for k in range(wanted.shape[0]):
        r = order[k]
        w = wanted[r]
        row = out[r]
        if w < 0:
            row[:] = 0
            continue
        row[:] = zero
        for j in range(indptr[w], indptr[w + 1]):
            c = indices[j]
            v = (np.float32(data[j]) - mean[c]) / std[c]
            # compare-and-select (like torch's clamp; NaN passes), faster than min/max here
            v = low if v < low else v
            row[c] = high if v > high else v
    return touched


_fill_csr_rows = numba.njit(nogil=True, cache=True)(_csr_rows_kernel) if numba is not None else None


def _csr_rows_compiled(
    arrays: tuple[np.ndarray, ...],
    indptr: np.ndarray,
    wanted: np.ndarray,
    n_features: int,
    affine: Affine | None,
) -> np.ndarray:
    """Rows ``wanted`` (-1: absent, a zero row) of a CSR matrix (``arrays`` = data, indices) as a
    dense float32 array, z-scored by ``affine``: one call of the compiled kernel."""
    data, indices = arrays
    if affine is None:
        one = np.ones(n_features, dtype=np.float32)
        args = (0 * one, 0 * one, one, np.float32(-np.inf), np.float32(np.inf))
    else:
        args = affine.kernel_args
    out = np.empty((len(wanted), n_features), dtype=np.float32)
    _fill_csr_rows(out, data, indices, indptr, np.asarray(wanted, dtype=np.int64), *args)
    return out


def _csr_rows(
    arrays: tuple[np.ndarray, ...],
    indptr: np.ndarray,
    wanted: np.ndarray,
    present: np.ndarray | None,
    n_features: int,
) -> np.ndarray:
    """Rows ``wanted`` of a memory-mapped CSR matrix (``arrays`` = data, indices) as a dense
    float32 array; rows where ``present`` is False stay zero.

    The whole batch is a handful of vectorised calls: the positions of every wanted non-zero in
    one array (no loop over rows), one gather from each map, one scipy densify. Few and small
    temporaries matter as much as the arithmetic: allocating and freeing several megabytes per
    batch makes the allocator hand memory back to the system and fault it in again next batch,
    which cost more than the reading itself (see benchmarks/README.md, "Data path").
    """
    data, indices = arrays
    if present is not None:
        wanted = np.where(present, wanted, 0)
    starts = indptr[wanted]
    lengths = indptr[wanted + 1] - starts
    if present is not None:
        lengths[~present] = 0
    # int32 row pointers keep scipy from converting the batch's column indices to int64
    small = indices.dtype == np.int32 and int(lengths.sum()) < np.iinfo(np.int32).max
    block_indptr = np.zeros(len(wanted) + 1, dtype=np.int32 if small else np.int64)
    np.cumsum(lengths, out=block_indptr[1:])
    where = _positions(starts, lengths, int(block_indptr[-1]))
    block = sp.csr_matrix(
        (
            np.asarray(data).take(where).astype(np.float32, copy=False),
            np.asarray(indices).take(where),
            block_indptr,
        ),
        shape=(len(wanted), n_features),
    )
    return block.toarray()  # scipy's C loop densifies faster than numpy fancy indexing


def _positions(starts: np.ndarray, lengths: np.ndarray, total: int) -> np.ndarray:
    """All positions of the ranges ``[starts[i], starts[i] + lengths[i])``, concatenated.

    One allocation and a cumulative sum: ones, with the jump to the next range's start written at
    each range's first position.
    """
    keep = lengths > 0
    if not keep.all():
        starts, lengths = starts[keep], lengths[keep]
    where = np.ones(total, dtype=np.int64)
    if total == 0:
        return where
    firsts = np.cumsum(lengths[:-1])
    where[0] = starts[0]
    where[firsts] = starts[1:] - (starts[:-1] + lengths[:-1]) + 1
    return np.cumsum(where, out=where)


def _copy_to_npy(dataset: h5py.Dataset, target: Path, block: int = 1 << 26) -> None:
    """Stream an HDF5 dataset into a .npy file (temporary name, then rename: never half-written)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp.npy")
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dataset.dtype, shape=dataset.shape)
        for start in range(0, dataset.shape[0], block):
            out[start : start + block] = dataset[start : start + block]
        out.flush()
        del out
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _with_zero_row(x: sp.spmatrix | np.ndarray) -> sp.csr_matrix | np.ndarray:
    if sp.issparse(x):
        return sp.vstack([x, sp.csr_matrix((1, x.shape[1]), dtype=np.float32)], format="csr")
    return np.vstack([np.asarray(x, dtype=np.float32), np.zeros((1, x.shape[1]), np.float32)])


def _as_float_tensor(x: np.ndarray | sp.spmatrix | Tensor) -> Tensor:
    if isinstance(x, Tensor):
        return x.float().contiguous()
    if sp.issparse(x):
        x = x.toarray()
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
