"""Where scmint keeps data on disk, and the cache of preprocessed datasets.

* ``SCMINT_DATA_DIR`` (default ``~/.cache/scmint``) holds downloaded datasets, one folder each;
* ``SCMINT_DATA_DIR/processed`` (or ``data.cache_dir``) holds preprocessed datasets as ``.h5mu``.

A processed entry is named by a hash of everything that decides its content: the source's
fingerprint (its files, or its simulation parameters), the recipes, the chosen modalities and the
label/batch columns. A sweep of 100 runs on one dataset therefore preprocesses once, and changing
any recipe value makes a new entry instead of reusing a stale one. Entries are written to a
temporary file and renamed into place, so a run killed mid-write never leaves a half entry that a
later run would trust.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mudata as md

from scmint.data.readers import read_h5mu

log = logging.getLogger(__name__)

#: Bump when the layout of processed entries changes, so old entries are not reused.
CACHE_FORMAT = 1


def data_dir() -> Path:
    """Root of downloaded and processed data: ``$SCMINT_DATA_DIR`` or ``~/.cache/scmint``."""
    return Path(os.environ.get("SCMINT_DATA_DIR") or Path.home() / ".cache" / "scmint").expanduser()


def processed_dir() -> Path:
    """Default home of processed entries."""
    return data_dir() / "processed"


def digest(parts: Any, length: int = 16) -> str:
    """A short, stable hash of JSON-able parts (dict order does not matter)."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's content, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def atomic_write_h5mu(mdata: md.MuData, path: str | Path) -> Path:
    """Write ``mdata`` to ``path`` through a temporary file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.h5mu")
    try:
        mdata.write_h5mu(tmp)
        os.replace(tmp, path)  # atomic on one filesystem: readers see the old state or the new one
    finally:
        tmp.unlink(missing_ok=True)
    return path


class ProcessedCache:
    """Preprocessed datasets on disk, keyed by what produced them.

    Args:
        directory: folder of the entries (created on first write).
    """

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory).expanduser() if directory else processed_dir()

    @staticmethod
    def key(
        fingerprint: str,
        preprocess: Mapping[str, Any],
        modalities: list[str] | None,
        label_key: str | None,
        batch_key: str | None,
    ) -> str:
        return digest(
            {
                "format": CACHE_FORMAT,
                "source": fingerprint,
                "preprocess": preprocess,
                "modalities": modalities,
                "label_key": label_key,
                "batch_key": batch_key,
            }
        )

    def path(self, name: str, key: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        return self.directory / f"{safe}-{key}.h5mu"

    def load(self, name: str, key: str) -> md.MuData | None:
        """The cached entry, or None when absent (an unreadable entry is removed and logged)."""
        path = self.path(name, key)
        if not path.exists():
            return None
        try:
            mdata = read_h5mu(path)
        except Exception as err:  # an entry damaged outside scmint: recompute rather than fail
            log.warning("processed cache %s is unreadable (%s); recomputing it", path, err)
            path.unlink(missing_ok=True)
            return None
        log.info("processed data from cache %s", path)
        return mdata

    def save(self, mdata: md.MuData, name: str, key: str) -> Path:
        target = self.path(name, key)
        shutil.rmtree(
            f"{target}.arrays", ignore_errors=True
        )  # backed storage's copies of the old entry
        path = atomic_write_h5mu(mdata, target)
        log.info("processed data cached at %s", path)
        return path
