"""``scmint-report DIR [DIR ...] --out OUT``: from sweep directories to paper-style tables and figures.

:func:`build_report` is the plain function (used by tests and notebooks); :func:`main` only parses
arguments. Failed and incomplete runs are listed in the report and on the console, never fatal.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from scmint.report.collect import (
    IGNORED_OVERRIDES,
    Run,
    find_run_dirs,
    load_run,
    runs_table,
    tidy_metrics,
)
from scmint.report.figures import SCORE_METRICS, grouped_bars, umap_grid
from scmint.report.tables import HEADLINE_METRICS, markdown_tables, problems_table, summarize

log = logging.getLogger("scmint.report")


@dataclass
class Report:
    """What :func:`build_report` wrote, and the runs it read."""

    runs: list[Run]
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def problems(self) -> list[Run]:
        return [r for r in self.runs if r.status != "ok"]


def build_report(
    dirs: Sequence[str | Path],
    out: str | Path,
    metrics: Sequence[str] = HEADLINE_METRICS,
    bar_metrics: Sequence[str] = SCORE_METRICS,
    umap: bool = True,
    umap_max_cells: int = 5_000,
    ignore_overrides: Sequence[str] = (),
) -> Report:
    """Read every run under ``dirs`` and write into ``out``:

    * ``metrics_tidy.csv``: one row per completed run and metric;
    * ``runs.csv``: one row per run with its status and error;
    * ``summary.csv``: mean, sd and n over replicates per dataset x method x metric;
    * ``report.md``: Markdown tables of ``metrics`` per dataset, the failed/incomplete runs and
      links to the figures;
    * ``scores.png`` (grouped bars of ``bar_metrics``), ``train_time.png``, and ``umap_grid.png``
      (unless ``umap`` is False).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ignored = (*IGNORED_OVERRIDES, *ignore_overrides)
    runs = [load_run(d, ignored) for d in find_run_dirs(dirs)]
    report = Report(runs)
    tidy = tidy_metrics(runs)
    summary = summarize(tidy)
    files = report.files
    files["tidy"] = out / "metrics_tidy.csv"
    tidy.to_csv(files["tidy"], index=False)
    files["runs"] = out / "runs.csv"
    runs_table(runs).to_csv(files["runs"], index=False)
    files["summary"] = out / "summary.csv"
    summary.to_csv(files["summary"], index=False)

    figures = {
        "scores": grouped_bars(summary, bar_metrics, out / "scores.png"),
        "train_time": grouped_bars(summary, ["train_time_s"], out / "train_time.png"),
        "umap_grid": umap_grid(runs, out / "umap_grid.png", max_cells=umap_max_cells)
        if umap
        else None,
    }
    files.update({name: path for name, path in figures.items() if path is not None})
    files["markdown"] = out / "report.md"
    files["markdown"].write_text(_markdown(report, summary, metrics, dirs))
    return report


def _markdown(report: Report, summary, metrics: Sequence[str], dirs: Sequence[str | Path]) -> str:
    counts = {s: sum(r.status == s for r in report.runs) for s in ("ok", "failed", "incomplete")}
    lines = [
        "# scmint report",
        "",
        "Sweeps: " + ", ".join(f"`{d}`" for d in dirs),
        "",
        f"{len(report.runs)} runs: {counts['ok']} ok, {counts['failed']} failed, "
        f"{counts['incomplete']} incomplete. Values are mean ± sd over replicates (seeds); "
        "`n` counts completed replicates. Every metric is defined in docs/evaluation.md.",
        "",
        "## Scores",
        "",
        markdown_tables(summary, metrics),
        "",
    ]
    figures = [
        (name, report.files[name])
        for name in ("scores", "train_time", "umap_grid")
        if name in report.files
    ]
    if figures:
        lines += ["## Figures", ""] + [f"![{name}]({path.name})" for name, path in figures] + [""]
    problems = problems_table(report.runs)
    lines += ["## Failed or incomplete runs", "", problems or "None.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scmint-report",
        description="Aggregate scmint sweep directories into a tidy CSV, Markdown tables "
        "(mean ± sd over seeds) and figures.",
    )
    parser.add_argument("dirs", nargs="+", help="multirun (or single run) directories to read")
    parser.add_argument("--out", required=True, help="output directory of the report")
    parser.add_argument(
        "--metrics",
        nargs="+",
        default=list(HEADLINE_METRICS),
        help="columns of the Markdown tables (default: %(default)s)",
    )
    parser.add_argument(
        "--bar-metrics",
        nargs="+",
        default=list(SCORE_METRICS),
        help="panels of scores.png (default: %(default)s)",
    )
    parser.add_argument("--no-umap", action="store_true", help="skip the UMAP grid")
    parser.add_argument(
        "--umap-max-cells",
        type=int,
        default=5_000,
        help="cells per UMAP panel when a run has no stored umap.csv",
    )
    parser.add_argument(
        "--ignore-override",
        action="append",
        default=[],
        metavar="PATTERN",
        help="override keys (glob) that do not define a method, besides the defaults",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        report = build_report(
            args.dirs,
            args.out,
            metrics=args.metrics,
            bar_metrics=args.bar_metrics,
            umap=not args.no_umap,
            umap_max_cells=args.umap_max_cells,
            ignore_overrides=args.ignore_override,
        )
    except FileNotFoundError as error:
        print(f"scmint-report: error: {error}", file=sys.stderr)
        return 1
    if not report.runs:
        print(f"scmint-report: no run directories under {', '.join(args.dirs)}", file=sys.stderr)
        return 1
    print(f"scmint-report: {len(report.runs)} runs read; wrote {args.out}/report.md")
    for path in report.files.values():
        print(f"  {path}")
    for run in report.problems:
        print(f"  {run.status}: {run.path} ({' '.join(str(run.error or '').split())[:300]})")
    return 0
