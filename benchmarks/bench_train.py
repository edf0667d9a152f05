"""Training speed and memory of every scmint method, against a bare PyTorch loop and the hardware.

Run from the repository root (``make bench`` runs the full grid)::

    .venv/bin/python -m benchmarks.bench_train            # full grid: hours on a 2-core CPU
    .venv/bin/python -m benchmarks.bench_train --quick    # a few minutes: CITE-seq, 10k cells
    .venv/bin/python -m benchmarks.bench_train --report benchmarks/results/<file>.json

Four measurements, each in its own process (so peak memory is that measurement's own):

* ``steps``: per method x dataset x cells x batch size, microseconds per optimiser step and
  cells/s of scmint (the user's Trainer, callbacks and logger) and of the bare loop
  (:mod:`benchmarks.bare_loop`), interleaved inside each scmint fit: a block of scmint steps, the
  same number of bare steps, and so on (``scmint_run.InterleavedTimer``); the ratio is the median
  over ``--repeats`` such fits, so load from other processes and the host's drift cancel out.
  Plus FLOPs per step and the hardware limit (:mod:`benchmarks.flops`), peak memory, and at
  10,000 cells the naive per-cell data path (:mod:`benchmarks.naive_data`).
* ``protocol``: the method's reference protocol (its config's epochs and batch size, e.g. UMINT
  25 epochs at 16, SMILE 5 at 512) on 10,000 cells: the whole ``Trainer.fit`` against the same
  protocol in the bare loop, interleaved.
* ``epoch``: one full epoch (validation and checkpoint included) at 10k, 100k and 1M cells in
  sparse storage, for the scaling targets: time linear in cells, peak memory vs the sparse input.

Results go to ``benchmarks/results/<machine>-<date>.json`` (rewritten after every measurement, so
an interrupted run keeps what it measured), then a Markdown summary and a log-log plot beside it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_ROOT = Path(__file__).resolve().parents[1]

#: The issue's grid, and the quick subset.
FULL = {
    "datasets": ["cite", "multiome"],
    "cells": [10_000, 100_000, 1_000_000],
    "batches": [16, 256, 4096],
}
QUICK = {"datasets": ["cite"], "cells": [10_000], "batches": [16, 256]}
#: Cell counts of the scaling (one full epoch each) measurement.
EPOCH_CELLS = [10_000, 100_000, 1_000_000]
#: Environment variables that change how many threads run, or how they wait (recorded).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS", "GOMP_SPINCOUNT")
#: Data whose dense tensors exceed this many bytes is held sparse (recorded per row as "storage").
DENSE_LIMIT_BYTES = 4 * 2**30


@dataclass
class Job:
    """One measurement, run in its own process."""

    kind: str  # "steps" | "protocol" | "epoch"
    method: str
    dataset: str
    n_cells: int
    batch_size: int | None = None  # epoch jobs
    batch_sizes: list[int] = field(default_factory=list)  # steps jobs, ascending
    storage: str = "auto"
    device: str = "cpu"
    threads: int | None = None
    seconds: float = 3.0
    repeats: int = 2
    naive: bool = False
    overrides: list[str] = field(default_factory=list)  # Hydra overrides of the user's config
    extra: dict[str, Any] = field(default_factory=dict)


# ---- inside a worker process --------------------------------------------------------------------
def _quiet() -> None:
    warnings.filterwarnings("ignore")
    for name in (
        "lightning",
        "lightning.pytorch",
        "lightning.fabric",
        "scmint",
        "anndata",
        "mudata",
    ):
        logging.getLogger(name).setLevel(logging.ERROR)


def _step_counts(batch_size: int) -> tuple[int, int, int]:
    """(untimed warm-up steps, fewest timed steps, steps per interleaved block): allocator and
    thread pools settle within a few steps; large batches take long enough per step that a few
    steps average well, and that one step is block enough (tens of ms at batch 16 and 256, a
    tenth of a second or more at 4,096: well under the minutes over which this VM's speed drifts)."""
    return (10, 10, 10) if batch_size <= 512 else (1, 2, 1)


def _storage(job: Job, base, modalities: list[str]) -> str:
    from benchmarks.workload import dense_bytes

    if job.storage != "auto":
        return job.storage
    return "dense" if dense_bytes(base, job.n_cells, modalities) <= DENSE_LIMIT_BYTES else "sparse"


def _optimizer_settings(cfg) -> dict[str, Any]:
    """The method's resolved optimiser config (class and keyword arguments): what a row ran with,
    even when a config default changed between the rows of one results file."""
    from omegaconf import OmegaConf

    settings = OmegaConf.to_container(cfg.model.optimizer, resolve=True)
    return {key: value for key, value in settings.items() if key != "_partial_"}


def _setup(job: Job, batch_size: int):
    """(config, datamodule, record) for a job: the user's config at ``batch_size`` over the data."""
    import torch
    from benchmarks.clock import peak_rss_mb, rss_mb
    from benchmarks.workload import build_datamodule, compose_config, method_modalities, template

    if job.threads:
        torch.set_num_threads(job.threads)
    base = template(job.dataset)
    modalities = method_modalities(job.method, list(base.mod))
    storage = _storage(job, base, modalities)
    cfg = compose_config(job.method, job.dataset, [f"data.batch_size={batch_size}", *job.overrides])
    rss_before = rss_mb()
    start = time.perf_counter()
    cache_dir = job.extra.get("cache_dir")
    datamodule = build_datamodule(cfg, base, job.n_cells, modalities, storage, cache_dir)
    record = {
        "modalities": dict(datamodule.spec.modalities),
        "n_train": len(datamodule.train_index),
        "storage": datamodule.storage_used,
        "prefetch": datamodule.prefetches(),
        "optimizer": _optimizer_settings(cfg),
        "data_mb": datamodule.store.nbytes() / 2**20,
        "data_setup_s": time.perf_counter() - start,
        "rss_before_data_mb": rss_before,
        "rss_after_data_mb": rss_mb(),
        "peak_rss_after_data_mb": peak_rss_mb(),
        "threads": torch.get_num_threads(),
        "data_path": "processed cache" if cache_dir else "source, in memory",
    }
    return cfg, datamodule, record


def _accelerator(job: Job) -> str:
    return "cpu" if job.device == "cpu" else "gpu"


def measure_steps(job: Job, emit) -> None:
    """Throughput at each of ``job.batch_sizes`` (ascending, one process, data loaded once)."""
    import torch
    from benchmarks import naive_data
    from benchmarks.workload import with_overrides

    device = torch.device(job.device)
    cfg, datamodule, setup = _setup(job, job.batch_sizes[0])
    for batch_size in job.batch_sizes:
        datamodule.batch_size = batch_size
        cfg = with_overrides(cfg, {"data.batch_size": batch_size})
        record = {**setup, "batch_size": batch_size, **_steps(job, cfg, datamodule, device)}
        if job.naive:
            fast, naive = datamodule.train_dataloader(), naive_data.naive_loader(datamodule)
            n = max(1, min(50, len(fast) - 1))
            rounds = [
                (naive_data.seconds_per_batch(fast, n), naive_data.seconds_per_batch(naive, n))
                for _ in range(3)
            ]
            record["fast_data_us_per_batch"] = 1e6 * statistics.median(f for f, _ in rounds)
            record["naive_data_us_per_batch"] = 1e6 * statistics.median(slow for _, slow in rounds)
        emit(record)


def _steps(job: Job, cfg, datamodule, device) -> dict[str, Any]:
    """scmint vs bare loop (interleaved) and the hardware limit at the datamodule's batch size."""
    import torch
    from benchmarks import bare_loop, flops, scmint_run
    from benchmarks.clock import peak_gpu_mb, peak_rss_mb

    batch_size = datamodule.batch_size
    warmup, min_steps, block = _step_counts(batch_size)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    # A first scmint run decides the number of timed steps (about `seconds` long). It is not
    # one of the compared runs: the first fit of a process pays one-off costs that later fits
    # (and the bare loop, which runs after it) do not, and they are no per-step cost.
    _, steps = scmint_run.run_steps(
        cfg, datamodule, warmup, 100_000, _accelerator(job), budget=job.seconds, min_steps=min_steps
    )
    record = {
        "peak_rss_mb": peak_rss_mb(),
        "peak_gpu_mb": peak_gpu_mb(device),
        "warmup": warmup,
        "steps": steps,
        "interleaved_block": block,
    }
    batches = bare_loop.gather(datamodule, warmup + steps, device)
    record["bare_distinct_batches"] = len(batches)
    calls = flops.record_step(scmint_run.fresh_model(cfg, datamodule).to(device), batches[0])
    products_before = flops.time_products(calls, device)
    scmint, bare = [], []
    for _ in range(job.repeats):
        pair = scmint_run.run_interleaved(
            cfg, datamodule, warmup, steps, _accelerator(job), batches, block
        )
        scmint.append(pair[0])
        bare.append(pair[1])
    record.update(_paired(scmint, bare))
    scmint_step, bare_step = record["scmint_wall_s"] / steps, record["bare_wall_s"] / steps
    limit = flops.step_limit(calls, products_before, flops.time_products(calls, device))
    record.update(
        scmint_us_per_step=1e6 * scmint_step,
        bare_us_per_step=1e6 * bare_step,
        scmint_cpu_us_per_step=1e6 * record["scmint_cpu_s"] / steps,
        bare_cpu_us_per_step=1e6 * record["bare_cpu_s"] / steps,
        scmint_cells_per_s=batch_size / scmint_step,
        bare_cells_per_s=batch_size / bare_step,
        flops_per_step=limit.flops,
        matmul_gflops=limit.flops_per_second / 1e9,
        limit_us_per_step=1e6 * limit.seconds,
        scmint_fraction_of_limit=limit.seconds / scmint_step,
        bare_fraction_of_limit=limit.seconds / bare_step,
        limit_timing="fastest of 3 rounds, before and after the fits",
    )
    return record


def measure_protocol(job: Job, emit) -> None:
    import torch
    from benchmarks import bare_loop, scmint_run
    from benchmarks.workload import compose_config, reference_protocol, with_overrides

    epochs, batch_size = reference_protocol(compose_config(job.method, job.dataset, job.overrides))
    measured = min(epochs, int(job.extra.get("epochs", epochs)))
    cfg, datamodule, record = _setup(job, batch_size)
    cfg = with_overrides(cfg, {"trainer.max_epochs": measured})
    device = torch.device(job.device)
    # One step of each loop first, so one-off costs of the process (library initialisation,
    # kernel selection) fall on neither side of the comparison.
    scmint_run.run_steps(cfg, datamodule, 1, 1, _accelerator(job))
    bare_loop.BareLoop(
        scmint_run.fresh_model(cfg, datamodule), bare_loop.gather(datamodule, 1, device), device
    ).run(1, timed=False)
    retain = bare_loop.retains_freed_memory(cfg)  # the allocator setting of scmint's fit
    scmint, bare = [], []
    for _ in range(job.repeats):
        scmint.append(scmint_run.run_protocol(cfg, datamodule, _accelerator(job)))
        model = scmint_run.fresh_model(cfg, datamodule)
        bare.append(bare_loop.run_bare_protocol(model, datamodule, measured, device, retain))
        if scmint[-1].wall > job.seconds:  # long protocols: one pair is all the time allows
            break
    record.update(
        epochs=epochs,
        epochs_measured=measured,
        batch_size=batch_size,
        steps_per_epoch=len(datamodule.train_dataloader()),
        **_paired(scmint, bare),
    )
    emit(record)


def _paired(scmint: list, bare: list) -> dict[str, Any]:
    """Medians of interleaved scmint/bare timings and of their pairwise ratios (wall and CPU)."""
    out: dict[str, Any] = {}
    for kind in ("wall", "cpu"):
        a = [getattr(c, kind) for c in scmint]
        b = [getattr(c, kind) for c in bare]
        out[f"scmint_{kind}_runs"], out[f"bare_{kind}_runs"] = a, b
        out[f"scmint_{kind}_s"], out[f"bare_{kind}_s"] = statistics.median(a), statistics.median(b)
        ratios = [x / y for x, y in zip(a, b, strict=True)]
        out[f"{kind}_ratios"] = ratios
        out[f"{kind}_ratio"] = statistics.median(ratios)
    return out


def measure_epoch(job: Job, emit) -> None:
    from benchmarks import scmint_run
    from benchmarks.clock import peak_rss_mb

    cfg, datamodule, record = _setup(job, job.batch_size)
    clocks = scmint_run.run_epochs(
        cfg, datamodule, int(job.extra.get("epochs", 1)), _accelerator(job)
    )
    record.update(
        epoch_s=[c.wall for c in clocks],
        epoch_cpu_s=[c.cpu for c in clocks],
        steps_per_epoch=len(datamodule.train_dataloader()),
        peak_rss_mb=peak_rss_mb(),
    )
    emit(record)


def measure_fill(job: Job, emit) -> None:
    """Process the data and write it to the processed cache (a sweep's first run); time and
    peak memory of that, and nothing else, so later jobs read the cache."""
    emit(_setup(job, 16)[2])


def worker(spec: str, out: str) -> None:
    """Entry point of a worker process: run one job, writing its records as a JSON list to
    ``out`` after each one (so a later failure keeps the earlier records)."""
    _quiet()
    job = Job(**json.loads(spec))
    records: list[dict[str, Any]] = []

    def emit(record: dict[str, Any]) -> None:
        records.append({"status": "ok", **record})
        Path(out).write_text(json.dumps(records))

    measure = {
        "fill": measure_fill,
        "steps": measure_steps,
        "protocol": measure_protocol,
        "epoch": measure_epoch,
    }[job.kind]
    measure(job, emit)


# ---- the orchestrating process ------------------------------------------------------------------
def machine_info(device: str) -> dict[str, Any]:
    import torch

    from scmint.utils.environment import git_commit

    info = {
        "hostname": platform.node(),
        "cpu": _cpu_model(),
        "cpus": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_gb": _memory_gb(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": device,
        "environment": {k: os.environ[k] for k in THREAD_VARIABLES if k in os.environ},
        "git_commit": git_commit(),
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float:
    import psutil

    return round(psutil.virtual_memory().total / 2**30, 1)


def machine_name(info: dict[str, Any]) -> str:
    name = f"{info['hostname']}-{info['cpus']}cpu"
    if "gpu" in info:
        name += "-" + info["gpu"].replace("NVIDIA", "").strip().replace(" ", "")
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name.lower())


def run_job(job: Job, log_dir: Path) -> list[dict[str, Any]]:
    """Run ``job`` in a fresh interpreter; its records, plus one "failed" record if it failed."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        out = tmp.name
    label = f"{job.kind}-{job.method}-{job.dataset}-{job.n_cells}"
    log_path = log_dir / f"{label}.log"
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    with open(log_path, "w") as log:
        command = [
            sys.executable,
            "-m",
            "benchmarks.bench_train",
            "--worker",
            json.dumps(asdict(job)),
        ]
        proc = subprocess.run(
            [*command, "--worker-out", out],
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    common = {**asdict(job), "load_before": load_before, "load_after": os.getloadavg()[0]}
    common["wall_s"] = time.perf_counter() - start
    text = Path(out).read_text()
    Path(out).unlink(missing_ok=True)
    records = [{**common, **r} for r in (json.loads(text) if text else [])]
    if proc.returncode != 0:
        tail = log_path.read_text()[-2000:]
        records.append({**common, "status": "failed", "error": tail})
        print(f"  FAILED ({label}); log: {log_path}\n{tail[-600:]}", file=sys.stderr)
    return records


def plan(args: argparse.Namespace, methods: list[str]) -> list[Job]:
    """The measurements to run, in order; each dataset size is processed and cached once first."""
    from benchmarks.workload import dataset_modalities, method_modalities

    grid = QUICK if args.quick else FULL
    datasets = args.datasets or grid["datasets"]
    cells = args.cells or grid["cells"]
    batches = args.batch_sizes or grid["batches"]
    common = {
        "device": args.device,
        "threads": args.threads,
        "repeats": args.repeats,
        "overrides": args.override,
    }
    cached = {"cache_dir": str(args.cache_dir)}
    jobs, filled = [], set()

    def fill(method: str, dataset: str, n: int) -> None:
        key = (dataset, n, tuple(method_modalities(method, dataset_modalities(dataset))))
        if key not in filled:
            filled.add(key)
            jobs.append(Job("fill", method, dataset, n, storage="sparse", extra=cached, **common))

    if "protocol" in args.parts:
        n = min(cells)
        for dataset in datasets:
            for method in methods if not args.quick else methods[:1]:
                full = method in args.protocol_full and dataset == datasets[0]
                extra = {**cached, **({} if full else {"epochs": args.protocol_epochs})}
                fill(method, dataset, n)
                jobs.append(
                    Job(
                        "protocol",
                        method,
                        dataset,
                        n,
                        seconds=args.protocol_seconds,
                        extra=extra,
                        **common,
                    )
                )
    if "epoch" in args.parts:
        sizes = args.epoch_cells or EPOCH_CELLS
        epoch = {"storage": "sparse", **common}
        for n in sizes:  # a first run: processed from the source in memory
            jobs.append(Job("epoch", args.epoch_method, "cite", n, args.epoch_batch, **epoch))
        # The largest size again as every later run of a sweep sees it: read from the cache.
        fill(args.epoch_method, "cite", max(sizes))
        jobs.append(
            Job(
                "epoch",
                args.epoch_method,
                "cite",
                max(sizes),
                args.epoch_batch,
                extra=cached,
                **epoch,
            )
        )
    if "steps" in args.parts:
        for dataset in datasets:
            for n in cells:
                for method in methods:
                    fill(method, dataset, n)
                    steps = {
                        "batch_sizes": sorted(batches),
                        "naive": n == min(cells),
                        "extra": cached,
                    }
                    jobs.append(
                        Job("steps", method, dataset, n, seconds=args.seconds, **steps, **common)
                    )
    return jobs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="small grid: CITE-seq, 10k cells, batch 16 and 256"
    )
    parser.add_argument(
        "--methods", nargs="+", help="methods (conf/model names); default: all seven"
    )
    parser.add_argument("--datasets", nargs="+", choices=["cite", "multiome"])
    parser.add_argument("--cells", nargs="+", type=int)
    parser.add_argument("--batch-sizes", nargs="+", type=int)
    parser.add_argument(
        "--parts",
        nargs="+",
        default=None,
        choices=["steps", "protocol", "epoch"],
        help="which measurements (default: all three; --quick: steps and protocol)",
    )
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's choice)"
    )
    parser.add_argument(
        "--override",
        nargs="+",
        default=[],
        help="Hydra overrides applied to every method's config, e.g. +model.optimizer.fused=true",
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per scmint run")
    parser.add_argument("--repeats", type=int, default=2, help="scmint/bare pairs per measurement")
    parser.add_argument(
        "--protocol-full",
        nargs="+",
        default=["umint"],
        help="methods whose whole reference protocol is run (on the first dataset)",
    )
    parser.add_argument(
        "--protocol-epochs",
        type=int,
        default=1,
        help="epochs run for the other methods' protocols (the total is extrapolated)",
    )
    parser.add_argument(
        "--protocol-seconds",
        type=float,
        default=120.0,
        help="a reference-protocol run longer than this is measured once (one scmint/bare pair)",
    )
    parser.add_argument("--epoch-method", default="umint")
    parser.add_argument("--epoch-batch", type=int, default=256)
    parser.add_argument("--epoch-cells", nargs="+", type=int)
    parser.add_argument(
        "--out", type=Path, help="results JSON (default: results/<machine>-<date>.json)"
    )
    parser.add_argument(
        "--append",
        action="store_true",
        help="keep the records already in --out that this run does not measure again",
    )
    parser.add_argument(
        "--report", type=Path, help="only rewrite the summary and plot of a results JSON"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        worker(args.worker, args.worker_out)
        return
    from benchmarks.report import write_report

    if args.report:
        write_report(args.report)
        return

    import torch
    from benchmarks.workload import available_methods

    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    args.parts = args.parts or (
        ["steps", "protocol"] if args.quick else ["steps", "protocol", "epoch"]
    )
    methods, missing = available_methods(args.methods)
    if missing:
        print(f"no trainable config in conf/model for {missing}: skipped", file=sys.stderr)
    info = machine_info(args.device)
    out = args.out or RESULTS_DIR / f"{machine_name(info)}-{date.today().isoformat()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    log_dir = Path(tempfile.mkdtemp(prefix="scmint-bench-logs-"))
    args.cache_dir = Path(tempfile.mkdtemp(prefix="scmint-bench-cache-"))
    jobs = plan(args, methods)
    command = " ".join([Path(sys.executable).name, "-m", "benchmarks.bench_train", *sys.argv[1:]])
    results = {
        "machine": info,
        "date": date.today().isoformat(),
        "commands": [command],
        "skipped_methods": missing,
        "load_start": os.getloadavg(),
        "records": [],
    }
    if args.append and out.exists():  # measurements of this run replace the same earlier ones
        earlier = json.loads(out.read_text())
        results["commands"] = [*earlier.get("commands", [earlier.get("command")]), command]
        results["earlier_records"] = earlier["records"]
    print(f"{len(jobs)} measurements -> {out} (worker logs in {log_dir})", file=sys.stderr)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the cache below is removed
    try:
        for i, job in enumerate(jobs, 1):
            batch = job.batch_sizes or job.batch_size or ""
            print(
                f"[{i}/{len(jobs)}] {job.kind} {job.method} {job.dataset} n={job.n_cells} {batch}",
                file=sys.stderr,
                flush=True,
            )
            for record in run_job(job, log_dir):
                results["records"].append(record)
                _summarise(record)
            results["load_end"] = os.getloadavg()
            out.write_text(json.dumps(_merged(results), indent=1))
    finally:
        shutil.rmtree(args.cache_dir, ignore_errors=True)
    print(f"summary: {write_report(out)}", file=sys.stderr)


def _key(record: dict[str, Any]) -> tuple:
    """What a record measured: a later record with the same key replaces it (--append)."""
    return (
        record["kind"],
        record["method"] if record["kind"] != "fill" else None,
        record["dataset"],
        record["n_cells"],
        record.get("batch_size"),
        tuple(record.get("modalities") or ()),
        record.get("data_path"),
        record.get("epochs_measured"),
        record.get("status"),
    )


def _merged(results: dict[str, Any]) -> dict[str, Any]:
    """``results`` with the earlier records (--append) that this run did not measure again."""
    earlier = results.get("earlier_records", [])
    new = {_key(r) for r in results["records"]}
    merged = {k: v for k, v in results.items() if k != "earlier_records"}
    merged["records"] = [r for r in earlier if _key(r) not in new] + results["records"]
    return merged


def _summarise(record: dict[str, Any]) -> None:
    if record.get("status") != "ok":
        return
    if record["kind"] == "steps":
        print(
            f"    b{record['batch_size']}: scmint {record['scmint_us_per_step']:.0f} us/step, bare {record['bare_us_per_step']:.0f}, "
            f"ratio {record['wall_ratio']:.3f} (cpu {record['cpu_ratio']:.3f}), "
            f"limit {record['scmint_fraction_of_limit']:.2f}",
            file=sys.stderr,
        )
    elif record["kind"] == "protocol":
        print(
            f"    scmint {record['scmint_wall_s']:.1f} s, bare {record['bare_wall_s']:.1f} s, "
            f"ratio {record['wall_ratio']:.3f} (cpu {record['cpu_ratio']:.3f})",
            file=sys.stderr,
        )
    elif "epoch_s" in record:
        print(
            f"    epoch {[round(s, 1) for s in record['epoch_s']]} s, peak {record['peak_rss_mb']:.0f} MiB, "
            f"data {record['data_mb']:.0f} MiB",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
