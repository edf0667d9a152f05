"""What every run leaves in its directory: metrics.json and the embedding as AnnData."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd


def write_json_atomic(path: Path, payload: Mapping[str, Any]) -> None:
    """Write JSON via a temporary file and rename, so a killed run never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True, default=_jsonable)
    os.replace(tmp, path)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def write_run_record(
    run_dir: str | Path,
    metrics: Mapping[str, Any],
    embedding: np.ndarray,
    obs: pd.DataFrame,
    modality_embeddings: Mapping[str, np.ndarray] | None = None,
) -> None:
    """Write ``metrics.json`` and ``embedding.h5ad`` (``obsm["X_scmint"]``, per-modality ``X_scmint_<m>``)."""
    run_dir = Path(run_dir)
    adata = ad.AnnData(obs=obs.copy())
    adata.obsm["X_scmint"] = np.asarray(embedding, dtype=np.float32)
    for modality, emb in (modality_embeddings or {}).items():
        adata.obsm[f"X_scmint_{modality}"] = np.asarray(emb, dtype=np.float32)
    adata.write_h5ad(run_dir / "embedding.h5ad")
    write_json_atomic(run_dir / "metrics.json", metrics)
