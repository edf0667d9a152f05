"""Mean ± sd over replicates per method x dataset x metric, as CSV and Markdown tables."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from scmint.report.collect import Run, runs_table

#: Columns of the Markdown tables by default (those with no value in a dataset are dropped).
HEADLINE_METRICS = (
    "ari_ward",
    "ari_kmeans",
    "ari_leiden",
    "fmi_ward",
    "fmi_kmeans",
    "nmi_leiden_best",
    "silhouette_label",
    "ilisi_scaled",
    "silhouette_modality",
    "knn_f1",
    "ors",
    "train_time_s",
)


#: Whole-number metrics (counts), shown without decimals in the Markdown tables.
COUNT_METRICS = ("n_params", "n_cells", "epochs", "global_steps")


def metric_digits(metric: str, digits: int) -> int:
    """Decimals for a metric's cells: 1 for seconds (``*_s``), 0 for counts, else ``digits``."""
    if metric.endswith("_s"):
        return 1
    return 0 if metric in COUNT_METRICS else digits


def summarize(tidy: pd.DataFrame) -> pd.DataFrame:
    """mean, sd (sample sd, ddof 1; NaN for one replicate) and n per method x dataset x metric."""
    keys = ["dataset", "method", "metric"]
    if tidy.empty:
        return pd.DataFrame(columns=[*keys, "mean", "sd", "n"])
    grouped = tidy.groupby(keys, sort=True)["value"]
    return grouped.agg(mean="mean", sd="std", n="count").reset_index()


def format_cell(mean: float, sd: float, digits: int) -> str:
    """Mean ± sd as text ("0.823 ± 0.012"), or the mean alone for a single replicate."""
    if np.isnan(sd):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def markdown_tables(
    summary: pd.DataFrame, metrics: Sequence[str] = HEADLINE_METRICS, digits: int = 3
) -> str:
    """One Markdown table per dataset: rows methods, columns the chosen metrics (mean ± sd over
    replicates) plus ``n``, the number of completed replicates."""
    sections = []
    for dataset, block in summary.groupby("dataset", sort=True):
        present = [m for m in metrics if m in set(block["metric"])]
        if not present:
            continue
        n_runs = block.groupby("method")["n"].max()
        header = ["method", "n", *present]
        lines = [f"### {dataset}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        cells = block.set_index(["method", "metric"])
        for method in sorted(block["method"].unique()):
            row = [method, str(int(n_runs[method]))]
            for metric in present:
                if (method, metric) in cells.index:
                    entry = cells.loc[(method, metric)]
                    row.append(
                        format_cell(entry["mean"], entry["sd"], metric_digits(metric, digits))
                    )
                else:
                    row.append("–")
            lines.append("| " + " | ".join(row) + " |")
        sections.append("\n".join(lines))
    return "\n\n".join(sections) if sections else "_No completed run has any of these metrics._"


def problems_table(runs: Sequence[Run]) -> str:
    """Markdown list of failed and incomplete runs (empty string when there are none)."""
    table = runs_table([r for r in runs if r.status != "ok"])
    if table.empty:
        return ""
    lines = ["| run | method | dataset | seed | status | error |", "|---|---|---|---|---|---|"]
    for row in table.itertuples():
        error = " ".join(str(row.error or "").split())[:300].replace("|", "\\|")
        lines.append(
            f"| {row.run_dir} | {row.method} | {row.dataset} | {row.seed} | {row.status} | {error} |"
        )
    return "\n".join(lines)
