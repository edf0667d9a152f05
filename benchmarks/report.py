"""The Markdown summary of a results JSON written by :mod:`benchmarks.bench_train`.

Targets are checked against the issue's thresholds here, from the measured records alone; a target
whose measurement is missing from the JSON is reported as "not measured", never as met.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from benchmarks.plot import plot_throughput

#: The issue's targets.
MIN_THROUGHPUT_RATIO = 0.9  # scmint cells/s / bare cells/s at batch >= 256
MAX_STEP_RATIO_16 = 1.5  # scmint us/step / bare us/step at batch 16
MAX_LINEARITY = 1.2  # epoch(1M) / (100 x epoch(10k))
MAX_MEMORY_RATIO = 1.5  # peak memory at 1M cells, sparse / sparse input size
MAX_UMINT_SECONDS = 60.0  # UMINT reference run on 10k CITE-seq cells


def _ok(records: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in records if r.get("kind") == kind and r.get("status") == "ok"]


def _table(header: list[str], rows: Iterable[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _n(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k"


def _optimizer(record: dict[str, Any]) -> str:
    """e.g. "Adam (fused)"; rows measured before the optimiser was recorded read "not recorded"."""
    settings = record.get("optimizer")
    if not settings:
        return "not recorded"
    name = str(settings.get("_target_", "?")).rsplit(".", 1)[-1]
    return f"{name} (fused)" if settings.get("fused") else name


def _verdict(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def targets(results: dict[str, Any]) -> list[str]:
    """One line per target: measured value, threshold, met or missed (wall clock; CPU beside)."""
    records = results["records"]
    steps, lines = _ok(records, "steps"), []

    def worst(rows: list[dict[str, Any]], key: str, pick) -> dict[str, Any]:
        return pick(rows, key=lambda r: r[key])

    big = [r for r in steps if r["batch_size"] >= 256]
    if big:
        w = worst(big, "wall_ratio", max)
        c = worst(big, "cpu_ratio", max)
        wall, cpu = 1 / w["wall_ratio"], 1 / c["cpu_ratio"]
        median = statistics.median(1 / r["wall_ratio"] for r in big)
        lines.append(
            f"- Batch >= 256, scmint cells/s / bare loop cells/s >= {MIN_THROUGHPUT_RATIO}: worst "
            f"{wall:.3f} ({w['method']} {w['dataset']} {_n(w['n_cells'])} b{w['batch_size']}), median "
            f"{median:.3f} over {len(big)} points; CPU-time worst {cpu:.3f} -> "
            f"{_verdict(wall >= MIN_THROUGHPUT_RATIO)}"
        )
    else:
        lines.append("- Batch >= 256 throughput ratio: not measured")
    small = [r for r in steps if r["batch_size"] == 16]
    if small:
        w, c = worst(small, "wall_ratio", max), worst(small, "cpu_ratio", max)
        median = statistics.median(r["wall_ratio"] for r in small)
        lines.append(
            f"- Batch 16, scmint us/step / bare loop us/step <= {MAX_STEP_RATIO_16}: worst "
            f"{w['wall_ratio']:.3f} ({w['method']} {w['dataset']} {_n(w['n_cells'])}), median {median:.3f} over "
            f"{len(small)} points; CPU-time worst {c['cpu_ratio']:.3f} -> "
            f"{_verdict(w['wall_ratio'] <= MAX_STEP_RATIO_16)}"
        )
    else:
        lines.append("- Batch 16 step-time ratio: not measured")
    epochs = [r for r in _ok(records, "epoch") if "epoch_s" in r]
    first = {r["n_cells"]: r for r in epochs if r["data_path"] != "processed cache"}
    if 10_000 in first and 1_000_000 in first:
        e10, e1m = first[10_000], first[1_000_000]
        ratio = e1m["epoch_s"][0] / (100 * e10["epoch_s"][0])
        cpu = e1m["epoch_cpu_s"][0] / (100 * e10["epoch_cpu_s"][0])
        lines.append(
            f"- Epoch time linear in cells, epoch(1M) / (100 x epoch(10k)) <= {MAX_LINEARITY}: "
            f"{e1m['epoch_s'][0]:.1f} s / (100 x {e10['epoch_s'][0]:.2f} s) = {ratio:.3f} (CPU time {cpu:.3f}) "
            f"-> {_verdict(ratio <= MAX_LINEARITY)}"
        )
    else:
        lines.append("- Epoch-time linearity: not measured")
    big = [r for r in epochs if r["n_cells"] == 1_000_000]
    for r in big:
        absolute = r["peak_rss_mb"] / r["data_mb"]
        added = (r["peak_rss_mb"] - r["rss_before_data_mb"]) / r["data_mb"]
        lines.append(
            f"- Peak memory at 1M cells (sparse, data from the {r['data_path']}) / sparse input "
            f"<= {MAX_MEMORY_RATIO}: peak RSS {r['peak_rss_mb']:,.0f} MiB / input {r['data_mb']:,.0f} MiB = "
            f"{absolute:.2f}; memory the run adds (peak minus the {r['rss_before_data_mb']:.0f} MiB of "
            f"interpreter, libraries and template before loading) / input = {added:.2f} -> "
            f"{_verdict(absolute <= MAX_MEMORY_RATIO)}"
        )
    if not big:
        lines.append("- Peak memory at 1M cells: not measured")
    umint = [
        r
        for r in _ok(records, "protocol")
        if r["method"] == "umint" and r["dataset"] == "cite" and r["epochs_measured"] == r["epochs"]
    ]
    if umint:
        r = umint[0]
        lines.append(
            f"- UMINT reference run ({r['epochs']} epochs, batch {r['batch_size']}, {_n(r['n_cells'])} cells "
            f"x 2,000 genes + 25 ADTs) < {MAX_UMINT_SECONDS:.0f} s: {r['scmint_wall_s']:.1f} s (runs "
            f"{', '.join(f'{s:.1f}' for s in r['scmint_wall_runs'])}; bare loop {r['bare_wall_s']:.1f} s) "
            f"-> {_verdict(r['scmint_wall_s'] < MAX_UMINT_SECONDS)}"
        )
    else:
        lines.append("- UMINT reference run: not measured")
    return lines


def steps_table(records: list[dict[str, Any]], dataset: str) -> list[str]:
    rows = []
    for r in _ok(records, "steps"):
        if r["dataset"] != dataset:
            continue
        rows.append(
            [
                r["method"],
                _n(r["n_cells"]),
                r["batch_size"],
                r["storage"],
                _optimizer(r),
                f"{r['scmint_cells_per_s']:,.0f}",
                f"{r['bare_cells_per_s']:,.0f}",
                f"{1 / r['wall_ratio']:.3f}",
                f"{1 / r['cpu_ratio']:.3f}",
                f"{r['scmint_us_per_step']:,.0f}",
                f"{r['bare_us_per_step']:,.0f}",
                f"{r['flops_per_step'] / 1e9:.3g}",
                f"{r['matmul_gflops']:.1f}",
                f"{r['limit_us_per_step']:,.0f}",
                f"{r['scmint_fraction_of_limit']:.2f}",
                f"{r['bare_fraction_of_limit']:.2f}",
                f"{r['peak_rss_mb']:,.0f}",
                r["steps"],
            ]
        )
    header = [
        "method",
        "cells",
        "batch",
        "storage",
        "optimiser",
        "scmint cells/s",
        "bare cells/s",
        "ratio (wall)",
        "ratio (CPU)",
        "scmint µs/step",
        "bare µs/step",
        "GFLOP/step",
        "matmul GFLOP/s",
        "limit µs/step",
        "scmint fraction of limit",
        "bare fraction of limit",
        "peak RSS MiB",
        "steps",
    ]
    return _table(header, rows) if rows else ["(no measurement)"]


def protocol_table(records: list[dict[str, Any]]) -> list[str]:
    rows = []
    for r in _ok(records, "protocol"):
        scale = r["epochs"] / r["epochs_measured"]
        full = r["scmint_wall_s"] * scale
        per_cell = full / r["n_cells"]
        mark = "" if scale == 1 else " (extrapolated)"
        rows.append(
            [
                r["method"],
                r["dataset"],
                _n(r["n_cells"]),
                r["batch_size"],
                _optimizer(r),
                f"{r['epochs_measured']} of {r['epochs']}",
                f"{r['scmint_wall_s']:.1f}",
                f"{r['bare_wall_s']:.1f}",
                f"{r['wall_ratio']:.3f}",
                f"{r['cpu_ratio']:.3f}",
                f"{full:,.0f}{mark}",
                f"{per_cell * 100_000:,.0f}",
                f"{per_cell * 1_000_000:,.0f}",
            ]
        )
    header = [
        "method",
        "data",
        "cells",
        "batch",
        "optimiser",
        "epochs run",
        "scmint s",
        "bare s",
        "ratio (wall)",
        "ratio (CPU)",
        "whole protocol s",
        "100k s (extrapolated)",
        "1M s (extrapolated)",
    ]
    return _table(header, rows) if rows else ["(no measurement)"]


def fill_table(records: list[dict[str, Any]]) -> list[str]:
    rows = [
        [
            r["dataset"],
            _n(r["n_cells"]),
            "+".join(r["modalities"]),
            f"{r['data_setup_s']:.1f}",
            f"{r['data_mb']:,.0f}",
            f"{r['rss_before_data_mb']:,.0f}",
            f"{r['peak_rss_after_data_mb']:,.0f}",
        ]
        for r in _ok(records, "fill")
    ]
    header = [
        "data",
        "cells",
        "modalities",
        "process + cache s",
        "sparse data MiB",
        "RSS before MiB",
        "peak RSS MiB",
    ]
    return _table(header, rows) if rows else ["(no measurement)"]


def data_table(records: list[dict[str, Any]]) -> list[str]:
    rows = []
    for r in _ok(records, "steps"):
        if "naive_data_us_per_batch" not in r:
            continue
        rows.append(
            [
                r["method"],
                r["dataset"],
                _n(r["n_cells"]),
                r["batch_size"],
                r["storage"],
                f"{r['fast_data_us_per_batch']:,.0f}",
                f"{r['naive_data_us_per_batch']:,.0f}",
                f"{r['naive_data_us_per_batch'] / r['fast_data_us_per_batch']:.1f}x",
                f"{r['bare_us_per_step']:,.0f}",
            ]
        )
    header = [
        "method",
        "data",
        "cells",
        "batch",
        "storage",
        "scmint data µs/batch",
        "naive data µs/batch",
        "naive / scmint",
        "bare step µs (for scale)",
    ]
    return _table(header, rows) if rows else ["(no measurement)"]


def epoch_table(records: list[dict[str, Any]]) -> list[str]:
    rows = []
    epochs = [r for r in _ok(records, "epoch") if "epoch_s" in r]
    for r in sorted(epochs, key=lambda r: (r["data_path"], r["n_cells"])):
        rows.append(
            [
                r["method"],
                r["dataset"],
                _n(r["n_cells"]),
                r["batch_size"],
                r["data_path"],
                r["steps_per_epoch"],
                f"{r['epoch_s'][0]:.2f}",
                f"{r['epoch_cpu_s'][0]:.2f}",
                f"{1e6 * r['epoch_s'][0] / r['n_cells']:.1f}",
                f"{r['data_mb']:,.0f}",
                f"{r['rss_before_data_mb']:,.0f}",
                f"{r['rss_after_data_mb']:,.0f}",
                f"{r['peak_rss_after_data_mb']:,.0f}",
                f"{r['peak_rss_mb']:,.0f}",
                f"{r['peak_rss_mb'] / r['data_mb']:.2f}",
                f"{r['data_setup_s']:.1f}",
            ]
        )
    header = [
        "method",
        "data",
        "cells",
        "batch",
        "data from",
        "steps/epoch",
        "epoch s",
        "epoch CPU s",
        "µs per cell",
        "sparse input MiB",
        "RSS before data MiB",
        "RSS after load MiB",
        "peak RSS during load MiB",
        "peak RSS MiB",
        "peak / input",
        "load s",
    ]
    return _table(header, rows) if rows else ["(no measurement)"]


def failures(records: list[dict[str, Any]]) -> list[str]:
    failed = [r for r in records if r.get("status") != "ok"]
    return [
        f"- {r['kind']} {r['method']} {r['dataset']} {_n(r['n_cells'])} b{r['batch_size']}: "
        + (r.get("error", "").strip().splitlines() or ["?"])[-1]
        for r in failed
    ]


def summary(results: dict[str, Any], plot_name: str | None) -> str:
    m, records = results["machine"], results["records"]
    loads = [r["load_before"] for r in records if "load_before" in r]
    machine = (
        f"Machine: {m['cpu']}, {m['cpus']} CPUs, {m['memory_gb']} GiB, torch {m['torch']} "
        f"({m['torch_threads']} threads), device {m['device']}"
        + (f" ({m['gpu']})" if "gpu" in m else "")
        + "."
    )
    threads = sorted({r["threads"] for r in records if "threads" in r})
    if threads:
        machine += f" Threads used by the measurements: {', '.join(map(str, threads))}."
    if loads:
        machine += (
            f" Load average (1 min) before each measurement: median {statistics.median(loads):.1f}, "
            f"range {min(loads):.1f} to {max(loads):.1f}."
        )
    lines = [
        f"# scmint training benchmark: {m['hostname']}, {results['date']}",
        "",
        "Commands (from the repository root; later ones added or replaced measurements):",
        "",
        *[f"    {c}" for c in results.get("commands", [results.get("command")])],
        "",
        machine,
        "",
        "Ratios compare scmint with the bare PyTorch loop measured in the same process, "
        "interleaved: step rows alternate blocks of scmint and bare steps inside one scmint fit "
        "(median over the fits; records with `interleaved_block`), protocol rows alternate whole "
        "fits (median of the pairwise ratios). So they hold on a loaded machine better than the "
        'absolute figures. "ratio" is scmint cells/s over bare cells/s (1 = no overhead). '
        "CPU-time ratios count only the time the process ran.",
        "",
    ]
    if results.get("skipped_methods"):
        lines += [
            f"Skipped (no config in conf/model): {', '.join(results['skipped_methods'])}.",
            "",
        ]
    lines += ["## Targets", "", *targets(results), ""]
    if plot_name:
        lines += [f"![throughput vs cells]({plot_name})", ""]
    for dataset in ("cite", "multiome"):
        if any(r.get("dataset") == dataset for r in _ok(records, "steps")):
            lines += [f"## Training throughput: {dataset}", "", *steps_table(records, dataset), ""]
    lines += [
        "## Reference protocol (whole `Trainer.fit`, validation and checkpoints included)",
        "",
        "Methods run for fewer epochs than their protocol are extrapolated to the whole protocol "
        "(time x epochs / epochs run; the first epoch carries the Trainer's start-up, so this "
        "overestimates slightly). 100k and 1M columns are extrapolated linearly in cells from the "
        "10k figure (the epoch measurement below checks linearity).",
        "",
        *protocol_table(records),
        "",
        "## Data preparation (benchmark datasets processed from the source and cached once)",
        "",
        *fill_table(records),
        "",
        "## Data path: scmint's whole-batch gather vs a per-cell Dataset + default collate",
        "",
        *data_table(records),
        "",
        "## One epoch at 10k / 100k / 1M cells, sparse storage",
        "",
        *epoch_table(records),
        "",
    ]
    failed = failures(records)
    if failed:
        lines += ["## Failed measurements", "", *failed, ""]
    return "\n".join(lines)


def write_report(path: Path) -> Path:
    """Write ``<results>.md`` (and ``<results>-throughput.png`` when there are step records)."""
    path = Path(path)
    results = json.loads(path.read_text())
    plot = path.with_name(path.stem + "-throughput.png")
    plot_name = plot.name if plot_throughput(results, plot) else None
    out = path.with_suffix(".md")
    out.write_text(summary(results, plot_name))
    return out
