"""Figures in the papers' style: grouped bars with error bars, and a UMAP grid method x dataset."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from scmint.report.collect import Run
from scmint.report.run_record import EMBEDDING_FILE, EMBEDDING_KEY, UMAP_FILE
from scmint.report.umap import palette, scatter, umap_coordinates

log = logging.getLogger(__name__)

#: Bar panels of the score figure by default: the UMINT paper's ARI and FMI, Ward and k-means.
SCORE_METRICS = ("ari_ward", "ari_kmeans", "fmi_ward", "fmi_kmeans")

#: Readable panel titles.
TITLES = {
    "ari_ward": "ARI (Ward)",
    "ari_kmeans": "ARI (k-means)",
    "ari_leiden": "ARI (Leiden, k)",
    "fmi_ward": "FMI (Ward)",
    "fmi_kmeans": "FMI (k-means)",
    "fmi_leiden": "FMI (Leiden, k)",
    "train_time_s": "training time (s)",
}


def grouped_bars(summary: pd.DataFrame, metrics: Sequence[str], path: str | Path) -> Path | None:
    """One panel per metric; datasets along x, one bar per method, error bars = sd over seeds.

    Returns the path, or None (no file) when no metric has values.
    """
    metrics = [m for m in metrics if m in set(summary["metric"])]
    if not metrics:
        return None
    datasets = sorted(summary["dataset"].unique())
    methods = sorted(summary["method"].unique())
    colours = dict(
        zip(methods, colormaps["tab10" if len(methods) <= 10 else "tab20"].colors, strict=False)
    )
    width = 0.8 / len(methods)
    panel_width = 1.2 + 0.35 * len(datasets) * len(methods)
    fig = Figure(figsize=(panel_width * len(metrics) + 1.5, 3.6))
    axes = fig.subplots(1, len(metrics), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        block = summary[summary["metric"] == metric].set_index(["dataset", "method"])
        for i, method in enumerate(methods):
            means = [block["mean"].get((d, method), np.nan) for d in datasets]
            sds = [block["sd"].get((d, method), np.nan) for d in datasets]
            x = np.arange(len(datasets)) - 0.4 + width * (i + 0.5)
            ax.bar(
                x,
                means,
                width,
                yerr=np.nan_to_num(sds),
                capsize=2,
                label=method,
                color=colours.get(method, "0.5"),
                error_kw={"elinewidth": 0.8},
            )
        ax.set_xticks(
            np.arange(len(datasets)),
            datasets,
            rotation=30 if len(datasets) > 3 else 0,
            ha="right" if len(datasets) > 3 else "center",
            fontsize=8,
        )
        ax.set_title(TITLES.get(metric, metric), fontsize=10)
        if metric.startswith(("ari", "fmi", "nmi")):
            ax.set_ylim(min(0.0, ax.get_ylim()[0]), 1.0)
        ax.spines[["top", "right"]].set_visible(False)
    axes[0][-1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    return Path(path)


def umap_grid(
    runs: Sequence[Run], path: str | Path, max_cells: int = 5_000, color: str = "cell_type"
) -> Path | None:
    """Rows methods, columns datasets: each panel the UMAP of that pair's first completed run
    (lowest seed), coloured by ``color`` with one palette per dataset.

    Coordinates come from the run's ``umap.csv`` when train.py wrote one, otherwise UMAP is
    computed on at most ``max_cells`` cells of its ``embedding.h5ad``. A run without a readable
    embedding gets an empty panel that says so. Returns None when no run completed.
    """
    chosen: dict[tuple[str, str], Run] = {}
    for run in sorted(
        (r for r in runs if r.status == "ok"), key=lambda r: (_seed_order(r.seed), str(r.path))
    ):
        chosen.setdefault((run.method, run.dataset), run)
    if not chosen:
        return None
    methods = sorted({m for m, _ in chosen})
    datasets = sorted({d for _, d in chosen})
    panels = {key: _panel_data(run, max_cells) for key, run in chosen.items()}
    palettes = {}
    for dataset in datasets:  # one palette per dataset: a label has one colour across methods
        values = [
            t[color]
            for (_, d), t in panels.items()
            if d == dataset and t is not None and color in t
        ]
        palettes[dataset] = palette(pd.concat(values).astype(str).unique()) if values else {}
    fig = Figure(figsize=(3.4 * len(datasets), 3.0 * len(methods) + 1.2))
    axes = fig.subplots(len(methods), len(datasets), squeeze=False)
    for i, method in enumerate(methods):
        for j, dataset in enumerate(datasets):
            ax = axes[i][j]
            table = panels.get((method, dataset))
            title = f"{method} | {dataset}"
            if table is None:
                ax.set_axis_off()
                reason = "no run" if (method, dataset) not in chosen else "no readable embedding"
                ax.text(0.5, 0.5, f"{title}\n({reason})", ha="center", va="center", fontsize=8)
                continue
            scatter(
                ax,
                table[["umap1", "umap2"]].to_numpy(),
                table.get(color),
                palettes[dataset],
                legend="below" if i == len(methods) - 1 else None,
                title=title,
            )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return Path(path)


def _seed_order(seed: object) -> tuple[int, str]:
    return (0, f"{int(seed):012d}") if isinstance(seed, int) else (1, str(seed))


def _panel_data(run: Run, max_cells: int) -> pd.DataFrame | None:
    """UMAP coordinates (+ colour columns) of a run, or None when it cannot be read."""
    stored = run.path / UMAP_FILE
    try:
        if stored.exists():
            return pd.read_csv(stored, index_col=0)
        adata = ad.read_h5ad(run.path / EMBEDDING_FILE)
        rows, coords = umap_coordinates(adata.obsm[EMBEDDING_KEY], max_cells=max_cells)
        table = adata.obs.iloc[rows].copy()
        table["umap1"], table["umap2"] = coords[:, 0], coords[:, 1]
        return table
    except Exception as error:  # a damaged record costs one panel, never the report
        log.warning("UMAP grid: skipping %s (%s: %s)", run.path, type(error).__name__, error)
        return None
