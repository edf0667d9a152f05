"""Data-path benchmark: cells/s delivered by MultiOmicsDataModule and its peak memory, in dense,
sparse and backed storage, against the cells/s a UMINT-shaped training step consumes.

    python benchmarks/bench_data.py                      # 1,000,000 cells x (2,000 genes + 25 ADTs)
    python benchmarks/bench_data.py --cells 50000        # a quick look
    python benchmarks/bench_data.py --modes backed backed-cold backed-cold-blocks   # backed only

Steps (each storage mode runs in its own process, so peak memory is that mode's alone):

1. simulate the cells once with scmint's simulator and keep them as ``raw.h5mu`` in ``--workdir``
   (reused by later runs with the same sizes);
2. ``prepare``: preprocess once through the data module (RNA: normalise, log1p, z-score deferred to
   batch time; ADT: CLR, z-score) into the processed cache, as a sweep's first run would;
3. one process per storage mode loads the processed cache entry (setup: includes one first batch)
   and draws training batches of ``--batch-size`` for ``--seconds``; reported: cells/s, setup
   time, peak RSS and peak RSS above the process's baseline after imports, page faults per batch
   and the load average; then the training step of 4. runs in the same process, so that each
   mode's ratio compares rates measured under the same machine load.
   Modes: ``dense``, ``sparse``, ``backed`` (the memory-mapped files read once first, so they
   are in the page cache: data that fits in memory), ``backed-cold`` (the mapped files evicted
   from the page cache first, with ``posix_fadvise``, so batches start by reading from disk) and
   ``backed-cold-blocks`` (the same with ``data.shuffle_block_size=--block-size``);
4. the same batch size through a UMINT-shaped network (per-modality Dense(d->h) + ReLU, Dense(->64)
   latent, mirrored decoder, MSE, Adam) on one fixed batch: the cells/s training consumes.

Prints a Markdown table and writes JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

RECIPE = {
    "rna": [
        {"step": "normalize_total", "target_sum": 1e4},
        {"step": "log1p"},
        {"step": "scale", "max_value": 10},
    ],
    "adt": [{"step": "clr"}, {"step": "scale"}],
}
HIDDEN = {"rna": 128, "adt": 10}  # UMINT's CITE-seq widths (DESIGN.md §3)


def peak_rss_gb() -> float:
    """Peak resident memory of this process. VmHWM is per address space (reset by exec), unlike
    ru_maxrss, which a child inherits from the parent that forked it."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e9
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def anonymous_rss_gb() -> float:
    """Private (anonymous) resident memory now: RSS minus file pages such as memory-mapped data,
    which belong to the page cache and are reclaimed under memory pressure."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024 / 1e9
    return float("nan")


def current_rss_gb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 1e9


def simulate(args: argparse.Namespace) -> Path:
    path = Path(args.workdir) / f"raw_{args.cells}x{args.genes}+{args.proteins}.h5mu"
    if path.exists():
        return path
    from scmint.data.cache import atomic_write_h5mu
    from scmint.data.synthetic import simulate_multiome

    mdata = simulate_multiome(
        args.cells,
        8,
        ("rna", "adt"),
        n_genes=args.genes,
        n_proteins=args.proteins,
        seed=0,
        chunk_size=20_000,
    )
    atomic_write_h5mu(mdata, path)
    return path


def module(args: argparse.Namespace, raw: Path, storage: str, blocks: bool = False):
    from scmint.data import MultiOmicsDataModule
    from scmint.data.sources import FilesSource

    return MultiOmicsDataModule(
        FilesSource(path=str(raw), name="bench"),
        RECIPE,
        batch_size=args.batch_size,
        val_fraction=0.0,
        storage=storage,
        cache=True,
        cache_dir=str(Path(args.workdir) / "processed"),
        shuffle_block_size=args.block_size if blocks else None,
        shuffle_window=args.window,
    )


def evict_from_page_cache(paths: list[str]) -> None:
    """Drop these files' pages from the page cache (theirs only; other files are untouched)."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)  # dirty pages cannot be dropped: write them first
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def read_into_page_cache(paths: list[str], block: int = 1 << 24) -> None:
    """Read these files once, so that their pages are in the page cache (if memory allows)."""
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            while f.read(block):
                pass


def faults() -> tuple[int, int]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_minflt, usage.ru_majflt


def child(args: argparse.Namespace) -> dict:
    """One measurement in this process: ``prepare`` or one storage mode."""
    import torch

    torch.set_num_threads(args.threads)
    t = time.perf_counter()
    raw = simulate(args)
    if args.child == "simulate":
        return {
            "mode": "simulate",
            "seconds": time.perf_counter() - t,
            "peak_rss_gb": peak_rss_gb(),
        }
    storage, *flags = args.child.split("-")
    dm = module(args, raw, "sparse" if args.child == "prepare" else storage, "blocks" in flags)
    base = current_rss_gb()  # after importing scmint's data stack
    t = time.perf_counter()
    if args.child == "prepare":
        dm.prepare_data()
        return {"mode": "prepare", "seconds": time.perf_counter() - t, "peak_rss_gb": peak_rss_gb()}
    dm.setup()
    next(iter(dm.train_dataloader()))  # first batch: compiles the densify kernel (cached on disk)
    setup_s = time.perf_counter() - t
    import h5py

    with h5py.File(dm.processed_path) as f:  # size of the processed sparse matrices
        sparse_gb = (
            sum(
                sum(f[f"mod/{m}/X/{k}"].nbytes for k in ("data", "indices", "indptr"))
                if isinstance(f[f"mod/{m}/X"], h5py.Group)
                else f[f"mod/{m}/X"].nbytes
                for m in dm.spec.modalities
            )
            / 1e9
        )
    if storage == "backed":  # the page cache's state is set, not left to earlier runs
        mapped = sorted({f[0] for fs in dm.store.files.values() for f in fs})
        (evict_from_page_cache if "cold" in flags else read_into_page_cache)(mapped)
    loader = dm.train_dataloader()
    cells, batches = 0, 0
    load = os.getloadavg()[0]
    minor, major = faults()
    t = time.perf_counter()
    while time.perf_counter() - t < args.seconds:
        for batch in loader:
            cells += len(batch["index"])
            batches += 1
            if time.perf_counter() - t >= args.seconds:
                break
    elapsed = time.perf_counter() - t
    minor_end, major_end = faults()
    step = training_step_rate(args)  # right after, under the same machine load
    return {
        "mode": args.child,
        "storage": dm.storage_used,
        "shuffle_block_size": dm.shuffle_block_size,
        "cells_per_s": cells / elapsed,
        "batches": batches,
        "minor_faults_per_batch": (minor_end - minor) / max(batches, 1),
        "major_faults_per_batch": (major_end - major) / max(batches, 1),
        "load_average_start": load,
        "load_average_end": os.getloadavg()[0],
        "setup_s": setup_s,
        "baseline_rss_gb": base,
        "peak_rss_gb": peak_rss_gb(),
        "peak_above_baseline_gb": peak_rss_gb() - base,
        "anonymous_rss_end_gb": anonymous_rss_gb(),
        "processed_matrices_gb": sparse_gb,
        "step_cells_per_s": step["cells_per_s"],
    }


def training_step_rate(args: argparse.Namespace) -> dict:
    """Cells/s of a UMINT-shaped training step at ``--batch-size`` (data already in memory)."""
    import torch
    from torch import nn

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dims = {"rna": args.genes, "adt": args.proteins}
    enc = nn.ModuleDict(
        {m: nn.Sequential(nn.Linear(d, HIDDEN[m]), nn.ReLU()) for m, d in dims.items()}
    )
    latent = nn.Sequential(nn.Linear(sum(HIDDEN.values()), 64), nn.ReLU())
    dec = nn.ModuleDict(
        {
            m: nn.Sequential(nn.Linear(64, HIDDEN[m]), nn.ReLU(), nn.Linear(HIDDEN[m], d))
            for m, d in dims.items()
        }
    )
    params = [*enc.parameters(), *latent.parameters(), *dec.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3, eps=1e-7)
    x = {m: torch.randn(args.batch_size, d) for m, d in dims.items()}

    def step() -> None:
        z = latent(torch.cat([enc[m](x[m]) for m in dims], dim=1))
        loss = sum(nn.functional.mse_loss(dec[m](z), x[m]) for m in dims)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(20):
        step()
    n, t = 0, time.perf_counter()
    while time.perf_counter() - t < min(args.seconds, 10):
        step()
        n += 1
    elapsed = time.perf_counter() - t
    return {
        "mode": "umint_step",
        "cells_per_s": n * args.batch_size / elapsed,
        "ms_per_step": 1e3 * elapsed / n,
        "load_average_end": os.getloadavg()[0],
    }


def run_child(args: argparse.Namespace, mode: str) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, *sys.argv[1:]]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        return {"mode": mode, "error": (out.stderr or out.stdout)[-2000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(results: list[dict], step: dict, args: argparse.Namespace) -> str:
    lines = [
        f"{args.cells:,} cells x ({args.genes:,} genes sparse + {args.proteins} ADTs), batch {args.batch_size}, "
        f"{args.threads} threads; UMINT-shaped training step: {step['cells_per_s']:,.0f} cells/s "
        f"({step['ms_per_step']:.2f} ms/step) at the end; 'x training step' divides by the step "
        "rate measured in the same process right after the mode's batches (same machine load)",
        "",
        "| storage | cells/s delivered | x training step | setup (s) | peak RSS (GB) | peak above baseline (GB) | private RSS at end (GB) | processed matrices (GB) | load avg |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(
                f"| {r['mode']} | failed: {r['error'].strip().splitlines()[-1]} | | | | | | | |"
            )
            continue
        lines.append(
            f"| {r['mode']} | {r['cells_per_s']:,.0f} | {r['cells_per_s'] / r['step_cells_per_s']:.1f} | "
            f"{r['setup_s']:.1f} | {r['peak_rss_gb']:.2f} | {r['peak_above_baseline_gb']:.2f} | "
            f"{r['anonymous_rss_end_gb']:.2f} | {r['processed_matrices_gb']:.2f} | "
            f"{r['load_average_start']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cells", type=int, default=1_000_000)
    parser.add_argument("--genes", type=int, default=2000)
    parser.add_argument("--proteins", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=15.0, help="measurement time per mode")
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["sparse", "backed", "backed-cold", "backed-cold-blocks", "dense"],
    )
    parser.add_argument(
        "--block-size",
        type=int,
        default=64,
        help="data.shuffle_block_size of the *-blocks modes (cells per contiguous block)",
    )
    parser.add_argument(
        "--window",
        type=int,
        default=8,
        help="data.shuffle_window of the *-blocks modes (batches shuffled together)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for both the data path and the training step (1: one core each, the "
        "fair comparison on a shared machine)",
    )
    parser.add_argument(
        "--workdir", default=os.environ.get("SCMINT_BENCH_DIR", "/tmp/scmint-bench-data")
    )
    parser.add_argument("--out", default="benchmarks/results/bench_data.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    if args.child:
        print(json.dumps(child(args)))
        return
    print(f"simulate: {run_child(args, 'simulate')}", flush=True)
    prepare = run_child(args, "prepare")
    print(f"prepare (preprocess + write cache): {prepare}", flush=True)
    results = []
    for mode in args.modes:
        results.append(run_child(args, mode))
        print(results[-1], flush=True)
    step = training_step_rate(args)
    report = table(results, step, args)
    print("\n" + report)
    machine = f"{cpu_model()}, {os.cpu_count()} cores, {total_memory_gb():.0f} GB RAM, load average {os.getloadavg()[0]:.1f}"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "machine": machine,
                "args": vars(args),
                "prepare": prepare,
                "modes": results,
                "step": step,
            },
            indent=2,
        )
    )
    print(f"\nmachine: {machine}; results in {args.out}")


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def total_memory_gb() -> float:
    import psutil

    return psutil.virtual_memory().total / 1e9


if __name__ == "__main__":
    main()
