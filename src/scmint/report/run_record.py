"""What every run leaves in its directory, and how it is read back.

* ``metrics.json``: flat JSON of every metric plus the run's identity (model, data, seeds),
  timings, sizes, versions and ``status`` ("ok" or "failed" with ``error``); written atomically.
* ``embedding.h5ad``: ``obsm["X_scmint"]`` (the joint embedding), ``obsm["X_scmint_<modality>"]``
  (per-modality embeddings of paired methods), ``obs`` with ``cell_type`` / ``batch``.
* ``umap.png`` (coloured by label and by batch) and ``umap.csv`` (its coordinates, which
  ``scmint-report`` reuses for its UMAP grid instead of recomputing them).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from scmint.report.umap import COLOR_KEYS, draw_panels, umap_coordinates

METRICS_FILE = "metrics.json"
EMBEDDING_FILE = "embedding.h5ad"
EMBEDDING_KEY = "X_scmint"
UMAP_FILE = "umap.csv"
UMAP_FIGURE = "umap.png"


def write_json_atomic(path: str | Path, payload: Mapping[str, Any]) -> None:
    """Write JSON via a temporary file and rename, so a killed run never leaves half a file.

    NaN and infinity (not JSON) become null; numpy scalars and arrays become plain values.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(_plain(payload), handle, indent=2, sort_keys=True, allow_nan=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _plain(value: Any) -> Any:
    """A JSON-safe copy of ``value``."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    """The run's ``metrics.json`` as a dict (raises FileNotFoundError / ValueError)."""
    path = Path(run_dir) / METRICS_FILE
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error})") from error


def write_run_record(
    run_dir: str | Path,
    metrics: Mapping[str, Any],
    embedding: np.ndarray,
    obs: pd.DataFrame,
    modality_embeddings: Mapping[str, np.ndarray] | None = None,
) -> None:
    """Write ``embedding.h5ad`` then ``metrics.json`` (last, so its presence means a complete
    record).

    Args:
        run_dir: the run directory (created if needed).
        metrics: flat metrics and run identity (see the module docstring).
        embedding: [n, d] joint embedding.
        obs: per-cell annotations, one row per embedding row (``cell_type``, ``batch``).
        modality_embeddings: per-modality [n, d] embeddings of paired methods.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    embedding = np.asarray(embedding, dtype=np.float32)
    if len(obs) != len(embedding):
        raise ValueError(f"obs has {len(obs)} rows but the embedding has {len(embedding)} cells")
    obs = obs.copy()
    obs.index = obs.index.astype(str)
    adata = ad.AnnData(obs=obs)
    adata.obsm[EMBEDDING_KEY] = embedding
    for modality, values in (modality_embeddings or {}).items():
        adata.obsm[f"{EMBEDDING_KEY}_{modality}"] = np.asarray(values, dtype=np.float32)
    tmp = run_dir / f".tmp.{EMBEDDING_FILE}"
    adata.write_h5ad(tmp)
    os.replace(tmp, run_dir / EMBEDDING_FILE)
    write_json_atomic(run_dir / METRICS_FILE, metrics)


def plot_umap(
    run_dir: str | Path,
    embedding: np.ndarray,
    obs: pd.DataFrame,
    max_cells: int = 10_000,
    seed: int = 0,
    title: str | None = None,
) -> Path:
    """UMAP of the embedding coloured by ``cell_type`` and by ``batch`` (those present):
    ``umap.png``, plus the coordinates in ``umap.csv`` (cell, umap1, umap2, colour columns).

    Above ``max_cells`` cells a uniform sample of that many is drawn (seeded): UMAP of 10,000
    cells costs about 11 s of CPU, plus about 7 s of numba compilation once per process.
    ``title`` prefixes the panel titles (default: the run directory's name). Returns the PNG's
    path.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    cells, coords = umap_coordinates(np.asarray(embedding), max_cells=max_cells, seed=seed)
    table = obs.iloc[cells][[k for k in COLOR_KEYS if k in obs.columns]].copy()
    table.index = obs.index[cells].astype(str)
    table.index.name = "cell"
    table.insert(0, "umap2", coords[:, 1])
    table.insert(0, "umap1", coords[:, 0])
    table.to_csv(run_dir / UMAP_FILE)
    path = run_dir / UMAP_FIGURE
    draw_panels(table, path, title=run_dir.name if title is None else title)
    return path
