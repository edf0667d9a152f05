"""Log-log plot of training throughput against the number of cells, one line per method."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt


def plot_throughput(results: dict[str, Any], path: Path) -> bool:
    """One panel per dataset x batch size: cells/s vs cells, scmint solid, bare loop dashed; and,
    where the results hold epoch measurements, one more panel per dataset: cells/s of whole
    training epochs (validation and checkpoint included) vs cells, the scaling curve.

    Returns False (and writes nothing) when there is no throughput record.
    """
    ok = [r for r in results["records"] if r.get("status") == "ok"]
    rows = [r for r in ok if r.get("kind") == "steps"]
    epochs = [r for r in ok if r.get("kind") == "epoch" and r.get("epoch_s")]
    if not rows:
        return False
    datasets = sorted({r["dataset"] for r in rows})
    batches = sorted({r["batch_size"] for r in rows})
    methods = list(dict.fromkeys(r["method"] for r in rows))
    colours = {m: plt.get_cmap("tab10")(i) for i, m in enumerate(methods)}
    columns = len(batches) + (1 if epochs else 0)
    fig, axes = plt.subplots(
        len(datasets), columns, figsize=(4 * columns, 3.4 * len(datasets)), squeeze=False
    )
    for i, dataset in enumerate(datasets):
        for j, batch in enumerate(batches):
            ax = axes[i][j]
            for method in methods:
                points = sorted(
                    (r["n_cells"], r["scmint_cells_per_s"], r["bare_cells_per_s"])
                    for r in rows
                    if r["dataset"] == dataset
                    and r["batch_size"] == batch
                    and r["method"] == method
                )
                if not points:
                    continue
                n, scmint, bare = zip(*points, strict=True)
                ax.plot(n, scmint, "o-", color=colours[method], label=method)
                ax.plot(n, bare, "x--", color=colours[method], alpha=0.6)
            _log_log(ax, f"{dataset}, batch {batch}", "training cells/s")
        if epochs:
            _plot_epochs(axes[i][-1], [r for r in epochs if r["dataset"] == dataset], dataset)
    axes[0][len(batches) - 1].legend(
        fontsize=8, title="solid: scmint\ndashed: bare loop", title_fontsize=7
    )
    machine = results["machine"]
    fig.suptitle(
        f"scmint training throughput, {machine['hostname']} ({machine['device']}), {results['date']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def _plot_epochs(ax, records: list[dict[str, Any]], dataset: str) -> None:
    """Training cells/s of one whole epoch vs cells, a line per method and data path."""
    if not records:
        ax.set_axis_off()
        ax.set_title(f"{dataset}, one epoch: not measured", fontsize=10)
        return
    lines: dict[tuple[str, int, str], list[tuple[int, float]]] = {}
    for r in records:
        key = (r["method"], r["batch_size"], r["data_path"])
        lines.setdefault(key, []).append((r["n_cells"], r["n_train"] / r["epoch_s"][0]))
    for (method, batch, data_path), points in sorted(lines.items()):
        n, rate = zip(*sorted(points), strict=True)
        style = "s-" if data_path == "processed cache" else "o-"
        ax.plot(n, rate, style, label=f"{method}, batch {batch}, {data_path}")
    _log_log(ax, f"{dataset}, one epoch (sparse)", "training cells/s, whole epoch")
    ax.legend(fontsize=7)


def _log_log(ax, title: str, ylabel: str) -> None:
    """Log-log axes over the number of cells, as every panel draws them."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("cells")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
