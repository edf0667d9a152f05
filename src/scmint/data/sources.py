"""Data sources for :class:`~scmint.data.datamodule.MultiOmicsDataModule` (Hydra targets).

A source says where cells come from; it does not preprocess. ``load()`` returns raw MuData and
``fingerprint()`` a string that changes whenever ``load()`` would return something else, which is
what the processed-data cache is keyed by.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import mudata as md

from scmint.data import readers, registry
from scmint.data.cache import digest
from scmint.data.validation import DataError, require_file

log = logging.getLogger(__name__)


class FilesSource:
    """Cells read from local files: an .h5mu, .h5ad(s), 10x .h5 / mtx folder or text matrices.

    Args:
        path: one file or folder holding all modalities (see :func:`scmint.data.readers.read_dataset`).
        files: modality -> file, one per modality, paired by cell name.
        format: "auto" (by extension), "h5mu", "h5ad", "10x_h5", "mtx" or "csv".
        slots: single .h5ad: modality -> "X" / "layers/<key>" / "obsm/<key>".
        feature_types: 10x input: modality -> 10x feature type.
        layers: modality -> layer that holds the values to use (e.g. {rna: counts}).
        modality: name of the modality of a single-matrix file.
        name: dataset name for logs and cache entries (default: the file's stem).

    The fingerprint hashes each input file's resolved path, size and modification time (not its
    content): cheap for multi-GB files, and any rewrite of a file changes its mtime. Copying a
    file elsewhere makes a new cache entry; touching it without changing it does too (a harmless
    recomputation).
    """

    cacheable = True

    def __init__(
        self,
        path: str | None = None,
        files: Mapping[str, str] | None = None,
        format: str = "auto",
        slots: Mapping[str, str] | None = None,
        feature_types: Mapping[str, str] | None = None,
        layers: Mapping[str, str] | None = None,
        modality: str = "rna",
        name: str | None = None,
    ) -> None:
        if (path is None) == (files is None):
            raise DataError("data.source: give exactly one of `path` or `files`")
        self.path = path
        self.files = dict(files) if files else None
        self.format = format
        self.slots = dict(slots) if slots else None
        self.feature_types = dict(feature_types) if feature_types else None
        self.layers = dict(layers) if layers else None
        self.modality = modality
        first = path if path is not None else next(iter(self.files.values()))
        self.name = name or Path(str(first)).name.split(".")[0]

    def _inputs(self) -> list[Path]:
        if self.path is not None:
            return [require_file(self.path, "data.source.path")]
        return [require_file(f, f"data.source.files.{m}") for m, f in self.files.items()]

    def prepare(self) -> None:
        """Local files need no download; check they exist so a typo fails before training."""
        self._inputs()

    def fingerprint(self) -> str:
        stats = []
        for p in self._inputs():
            members = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
            stats += [(str(q.resolve()), q.stat().st_size, q.stat().st_mtime_ns) for q in members]
        options = (
            self.format,
            self.slots,
            self.feature_types,
            self.layers,
            self.modality,
            self.files and list(self.files),
        )
        return f"files:{digest([stats, options])}"

    def load(self) -> md.MuData:
        return readers.read_dataset(
            self.path,
            self.files,
            format=self.format,
            slots=self.slots,
            feature_types=self.feature_types,
            layers=self.layers,
            modality=self.modality,
        )


class RegistrySource:
    """One of the papers' datasets, downloaded and built on first use (see :mod:`scmint.data.registry`).

    Args:
        name: registry name (cbmc8k, bmcite30k, malt10k, kotliarov50k, pbmc10k_multiome,
            snare_cellline, pancreas).
        data_dir: where datasets live (default ``$SCMINT_DATA_DIR`` or ``~/.cache/scmint``).
        layers: modality -> layer to use instead of ``X``.
        progress: show download progress bars.
    """

    cacheable = True

    def __init__(
        self,
        name: str,
        data_dir: str | None = None,
        layers: Mapping[str, str] | None = None,
        progress: bool = True,
    ) -> None:
        self.entry = registry.get(name)
        self.name = name
        self.data_dir = data_dir
        self.layers = dict(layers) if layers else None
        self.progress = progress

    def _built(self) -> Path:
        return registry.fetch(self.name, self.data_dir, progress=self.progress)

    def prepare(self) -> None:
        """Download and build (rank 0 only under DDP; other ranks wait for it)."""
        self._built()

    def fingerprint(self) -> str:
        built = self._built()
        stat = built.stat()
        return f"registry:{self.name}:v{registry.BUILD_VERSION}:{stat.st_size}:{stat.st_mtime_ns}:{self.layers}"

    def load(self) -> md.MuData:
        return readers.read_dataset(self._built(), layers=self.layers)
