"""UMAP coordinates of an embedding and scatter panels coloured by label or batch.

Shared by the per-run figure (``plot_umap``) and the report's method x dataset grid, so both draw
cells the same way and a label keeps its colour across the grid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure

#: obs columns the figures colour by, in panel order.
COLOR_KEYS = ("cell_type", "batch")

#: Legends list at most this many categories (more would hide the plot).
MAX_LEGEND = 40


def umap_coordinates(
    embedding: np.ndarray, max_cells: int | None, seed: int = 0, n_neighbors: int = 15
) -> tuple[np.ndarray, np.ndarray]:
    """(rows used, [m, 2] UMAP coordinates): scanpy's kNN graph + ``tl.umap``, seeded.

    Above ``max_cells`` rows a uniform sample of that many is embedded.
    """
    import anndata as ad  # scanpy is imported here only: run records and reports need it rarely
    import scanpy as sc

    n = len(embedding)
    rows = np.arange(n)
    if max_cells is not None and n > max_cells:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=max_cells, replace=False))
    adata = ad.AnnData(
        obsm={"X_emb": np.asarray(embedding, dtype=np.float32)[rows]},
        obs=pd.DataFrame(index=[str(r) for r in rows]),
    )
    sc.pp.neighbors(
        adata,
        n_neighbors=min(n_neighbors, len(rows) - 1),
        use_rep="X_emb",
        transformer="sklearn",
        random_state=seed,
    )
    sc.tl.umap(adata, random_state=seed)
    return rows, np.asarray(adata.obsm["X_umap"])


def palette(categories: Sequence[str]) -> dict[str, tuple]:
    """A colour per category, in sorted order: tab10 up to 10 categories (most distinct), else
    tab20, tab20b and tab20c (60 colours, then they repeat)."""
    names = sorted(set(map(str, categories)))
    maps = ("tab10",) if len(names) <= 10 else ("tab20", "tab20b", "tab20c")
    colours = [c for name in maps for c in colormaps[name].colors]
    return {c: colours[i % len(colours)] for i, c in enumerate(names)}


def scatter(
    ax: Axes,
    coords: np.ndarray,
    values: pd.Series | None,
    colours: Mapping[str, tuple] | None = None,
    legend: str | None = "right",
    title: str = "",
) -> None:
    """One UMAP panel; ``values`` colours the points by category (grey when None).

    ``legend`` places the category legend "right" of the panel, "below" it, or nowhere (None).
    """
    size = max(0.5, min(8.0, 20_000 / max(len(coords), 1) ** 1.1))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    if values is None:
        ax.scatter(coords[:, 0], coords[:, 1], s=size, c="0.5", linewidths=0, rasterized=True)
        return
    values = values.astype(str).to_numpy()
    colours = colours or palette(np.unique(values))
    for category in sorted(np.unique(values)):
        mask = values == category
        ax.scatter(
            coords[mask, 0],
            coords[mask, 1],
            s=size,
            color=colours.get(category, "0.5"),
            label=category,
            linewidths=0,
            rasterized=True,
        )
    n_categories = len(np.unique(values))
    if legend is None or n_categories > MAX_LEGEND:
        return
    if legend == "right":
        ax.legend(
            loc="center left",
            bbox_to_anchor=(1.0, 0.5),
            fontsize=6,
            markerscale=3,
            frameon=False,
            ncol=1 + n_categories // 20,
        )
    else:
        ax.legend(
            loc="upper center",
            bbox_to_anchor=(0.5, -0.02),
            fontsize=6,
            markerscale=3,
            frameon=False,
            ncol=min(3, n_categories),
        )


def draw_panels(table: pd.DataFrame, path: str | Path, title: str = "") -> None:
    """A figure of ``table`` (columns umap1, umap2 and colour columns): one panel per colour key
    present in it, or one grey panel when there is none."""
    keys = [k for k in COLOR_KEYS if k in table.columns] or [None]
    fig = Figure(figsize=(5.2 * len(keys), 4.0))
    axes = fig.subplots(1, len(keys), squeeze=False)
    coords = table[["umap1", "umap2"]].to_numpy()
    for ax, key in zip(axes[0], keys, strict=True):
        scatter(
            ax, coords, None if key is None else table[key], title=f"{title}  {key or ''}".strip()
        )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
