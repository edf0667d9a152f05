"""Parity of scmint's SMILE and mpSMILE with the authors' code on the shared subsets (issue 5).

``make parity-smile`` (``python -m scmint.experiments.parity_smile``) trains each case below for
the reference's 10 seeds through :func:`scmint.train.train` with the experiment configs
``conf/experiment/parity_smile*.yaml``, then prints mean ± sd beside the reference. The bar
(issue 5): every seed ran, mean k-means ARI no lower than the reference mean minus one reference
sd, and mean training time at most a fifth of the reference's.

Scores come from each run's ``metrics.json``, except the raw batch silhouette (sklearn's
silhouette with the batch as the label, the reference's number): the metrics suite reports the
scIB form (1 - |s|, per label), so this runner computes the raw one from the run's
``embedding.h5ad``. Beside each case it scores the no-integration baseline: the preprocessed
input itself (all modalities concatenated), k-means with the same k and seeds, and silhouettes.

Time per training is ``train_time_s`` of ``metrics.json`` (wall clock of ``Trainer.fit``), the
figure the bar reads. On a shared machine wall clock measures the other users too, so
:class:`FitClock` also records the process CPU time of the training loop: with one torch thread
it is the work the training needed, whatever the load.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anndata as ad
import lightning as L
import numpy as np
import pandas as pd
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score

from scmint.metrics.clustering import kmeans
from scmint.report.run_record import EMBEDDING_FILE, EMBEDDING_KEY
from scmint.train import build_datamodule, record_failure, train
from scmint.utils.config import CONFIG_DIR, PROJECT_ROOT, register_resolvers

log = logging.getLogger("scmint.parity")

#: The reference's 10 run seeds (issue 5).
SEEDS = (71, 1, 60, 83, 66, 38, 98, 69, 53, 90)

#: Scores of the table: metrics.json key (or this runner's) -> column title.
SCORES = {
    "ari_kmeans": "ARI k-means",
    "nmi_kmeans": "NMI k-means",
    "silhouette_label": "label sil.",
    "silhouette_batch_raw": "batch sil. (raw)",
    "silhouette_modality": "modality sil.",
}


#: Written by :class:`FitClock` into each run directory.
CLOCK_FILE = "fit_clock.json"


@dataclass(frozen=True)
class Case:
    """One parity case: an experiment config and the authors' code's numbers on it (mean, sd)."""

    name: str
    experiment: str
    reference: dict[str, tuple[float, float]]
    train_time_s: tuple[float, float | None]
    n_params: int | None
    note: str = ""


CASES: tuple[Case, ...] = (
    Case(
        "pancreas_xin_wang/smile",
        "parity_smile",
        {
            "ari_kmeans": (0.782, 0.087),
            "nmi_kmeans": (0.853, 0.031),
            "silhouette_label": (0.351, 0.015),
            "silhouette_batch_raw": (0.034, 0.003),
        },
        train_time_s=(11.4, 1.7),
        n_params=808_809,
    ),
    Case(
        "snare_cellline_1047/mpsmile",
        "parity_smile_snare",
        {
            "ari_kmeans": (0.850, 0.035),
            "nmi_kmeans": (0.805, 0.027),
            "silhouette_modality": (0.087, 0.007),
        },
        train_time_s=(85.0, 2.0),
        n_params=1_691_265,
    ),
    Case(
        "bmmc_multiome_500/mpsmile",
        "parity_smile_multiome",
        {"ari_kmeans": (0.123, 0.016), "nmi_kmeans": (0.364, 0.022)},
        train_time_s=(13.8, None),
        n_params=None,  # not given by the issue
        note="UMINT on the same subset: ARI 0.24 (Ward), issue 4",
    ),
)


class FitClock(L.Callback):
    """Writes the wall and process CPU seconds of the training loop to ``path`` (JSON), with the
    torch thread count and the machine's 1-minute load average at its end (how busy it was)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._start = (0.0, 0.0)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = (time.perf_counter(), time.process_time())

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        wall, cpu = time.perf_counter() - self._start[0], time.process_time() - self._start[1]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        clock = {
            "loop_wall_s": wall,
            "loop_cpu_s": cpu,
            "torch_threads": torch.get_num_threads(),
            "load_1min": os.getloadavg()[0],
        }
        self.path.write_text(json.dumps(clock))


def compose_run(case: Case, seed: int, run_dir: Path, threads: int = 1) -> DictConfig:
    """The config ``scmint-train experiment=<case> seed=<seed> threads=<threads>`` would run,
    writing into ``run_dir``."""
    register_resolvers()
    GlobalHydra.instance().clear()
    overrides = [
        f"experiment={case.experiment}",
        f"seed={seed}",
        f"threads={threads}",
        f"paths.output_dir={run_dir}",
        "logger=none",
        f"+callbacks.fit_clock._target_={FitClock.__module__}.FitClock",
        f"+callbacks.fit_clock.path={run_dir / CLOCK_FILE}",
    ]
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=overrides)


def run_dir_of(out: Path, case: Case, seed: int) -> Path:
    return out / case.name.replace("/", "__") / f"seed_{seed}"


def run_point(case: Case, seed: int, out: Path, threads: int = 1) -> dict[str, Any]:
    """Train + evaluate one (case, seed); a failure is recorded in the run directory, not raised."""
    cfg = compose_run(case, seed, run_dir_of(out, case, seed), threads)
    try:
        return train(cfg)
    except Exception as error:  # one broken point must not lose the other runs
        log.exception("parity run %s seed %d failed", case.name, seed)
        record_failure(cfg, error)
        return {"status": "failed", "error": f"{type(error).__name__}: {error}"}


def raw_batch_silhouette(run_dir: Path) -> float | None:
    """sklearn's silhouette of the embedding with the batch as the label (None without batches)."""
    adata = ad.read_h5ad(run_dir / EMBEDDING_FILE)
    if "batch" not in adata.obs or adata.obs["batch"].nunique() < 2:
        return None
    return float(
        silhouette_score(adata.obsm[EMBEDDING_KEY], adata.obs["batch"].astype(str).to_numpy())
    )


def read_runs(out: Path, cases: Sequence[Case], seeds: Sequence[int]) -> pd.DataFrame:
    """One row per (case, seed) that has a metrics.json, with the raw batch silhouette added."""
    rows = []
    for case in cases:
        for seed in seeds:
            run_dir = run_dir_of(out, case, seed)
            path = run_dir / "metrics.json"
            if not path.exists():
                continue
            record = json.loads(path.read_text())
            if record.get("status") == "ok":
                record["silhouette_batch_raw"] = raw_batch_silhouette(run_dir)
                clock = run_dir / CLOCK_FILE
                if clock.exists():
                    record.update(json.loads(clock.read_text()))
            rows.append({"case": case.name, "seed": seed, **record})
    return pd.DataFrame(rows)


def input_baseline(case: Case, seeds: Sequence[int], out: Path) -> dict[str, tuple[float, float]]:
    """No integration: the preprocessed input itself (all modalities concatenated), scored alike.

    k-means (k = number of labels, the suite's n_init) per seed, and the label and raw batch
    silhouettes of the input (no randomness: sd 0).
    """
    cfg = compose_run(case, seeds[0], out / "baseline")
    dm = build_datamodule(cfg)
    x = np.concatenate([dm.features(m).numpy() for m in dm.spec.names], axis=1)
    labels, batches = dm.labels(), dm.batches()
    known = np.array([label is not None for label in labels])
    x, labels = x[known], labels[known].astype(str)
    k = len(np.unique(labels))
    n_init = int(cfg.evaluation.get("kmeans_n_init", 10))
    ari, nmi = [], []
    for seed in seeds:
        clusters = kmeans(x, k, n_init, seed)
        ari.append(adjusted_rand_score(labels, clusters))
        nmi.append(normalized_mutual_info_score(labels, clusters))
    scores = {
        "ari_kmeans": mean_sd(ari),
        "nmi_kmeans": mean_sd(nmi),
        "silhouette_label": (float(silhouette_score(x, labels)), 0.0),
    }
    if batches is not None:
        scores["silhouette_batch_raw"] = (
            float(silhouette_score(x, batches[known].astype(str))),
            0.0,
        )
    return scores


def mean_sd(values: Sequence[float] | pd.Series) -> tuple[float, float]:
    values = pd.Series(values, dtype=float).dropna()
    if values.empty:
        return math.nan, math.nan
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def summarize(runs: pd.DataFrame, cases: Sequence[Case], n_seeds: int) -> list[dict[str, Any]]:
    """One dict per case: scores mean/sd, time, parameter count, and the bar's verdict."""
    rows = []
    for case in cases:
        sub = runs[runs["case"] == case.name] if len(runs) else runs
        ok = sub[sub["status"] == "ok"] if len(sub) else sub
        row: dict[str, Any] = {"case": case.name, "n_ok": len(ok)}
        for score in SCORES:
            row[score] = mean_sd(ok[score]) if score in ok else (math.nan, math.nan)
        for clock in ("train_time_s", "loop_cpu_s", "load_1min"):
            row[clock] = mean_sd(ok[clock]) if clock in ok else (math.nan, math.nan)
        params = sorted(set(ok["n_params"].astype(int))) if len(ok) else []
        row["n_params"] = params[0] if len(params) == 1 else params
        ari_bar = case.reference["ari_kmeans"][0] - case.reference["ari_kmeans"][1]
        time_bar = case.train_time_s[0] / 5
        row["checks"] = {
            "all seeds ran": row["n_ok"] == n_seeds,
            f"ARI >= {ari_bar:.3f}": row["ari_kmeans"][0] >= ari_bar,
            f"time <= {time_bar:.2f} s": row["train_time_s"][0] <= time_bar,
        }
        if case.n_params is not None:
            row["checks"][f"params == {case.n_params:,}"] = row["n_params"] == case.n_params
        row["passes"] = all(row["checks"].values())
        # information beside the bar: the training loop's CPU time, which machine load leaves alone
        row["cpu_time_within_bar"] = row["loop_cpu_s"][0] <= time_bar
        rows.append(row)
    return rows


def _pm(value: tuple[float, float]) -> str:
    mean, sd = value
    return "—" if math.isnan(mean) else f"{mean:.3f} ± {sd:.3f}"


def format_table(
    summary: Sequence[dict[str, Any]],
    cases: Sequence[Case],
    baselines: dict[str, dict[str, tuple[float, float]]],
) -> str:
    """Markdown: per case, a scmint row, a reference row and the input k-means baseline row."""
    header = (
        "| case | source | runs | "
        + " | ".join(SCORES.values())
        + " | s / training | CPU s / loop | params | bar |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for case, row in zip(cases, summary, strict=True):
        t_mean, t_sd = row["train_time_s"]
        params = (
            f"{row['n_params']:,}" if isinstance(row["n_params"], int) else str(row["n_params"])
        )
        verdict = (
            "pass"
            if row["passes"]
            else "FAIL: " + ", ".join(k for k, v in row["checks"].items() if not v)
        )
        if not row["checks"].get(f"time <= {case.train_time_s[0] / 5:.2f} s", True):
            verdict += f" (CPU s {'within' if row['cpu_time_within_bar'] else 'also over'} it)"
        lines.append(
            f"| {case.name} | scmint | {row['n_ok']} | "
            + " | ".join(_pm(row[s]) for s in SCORES)
            + f" | {t_mean:.2f} ± {t_sd:.2f} | {_pm(row['loop_cpu_s'])} | {params} | {verdict} |"
        )
        ref_time = f"{case.train_time_s[0]:.1f}" + (
            f" ± {case.train_time_s[1]:.1f}" if case.train_time_s[1] else ""
        )
        ref_params = f"{case.n_params:,}" if case.n_params else "—"
        lines.append(
            "| | authors' code | 10 | "
            + " | ".join(_pm(case.reference.get(s, (math.nan, math.nan))) for s in SCORES)
            + f" | {ref_time} | | {ref_params} | |"
        )
        if case.name in baselines:
            base = baselines[case.name]
            lines.append(
                "| | the input itself (no integration) | 10 | "
                + " | ".join(_pm(base.get(s, (math.nan, math.nan))) for s in SCORES)
                + " | | | | |"
            )
    notes = [f"- {c.name}: {c.note}" for c in cases if c.note]
    return "\n".join(lines + (["", *notes] if notes else []))


def machine_note(runs: pd.DataFrame) -> str:
    """How busy the machine was while the runs trained (timings depend on it)."""
    if "load_1min" not in runs or runs["load_1min"].isna().all():
        return "machine load: not recorded"
    threads = sorted(set(runs["torch_threads"].dropna().astype(int)))
    load = runs["load_1min"].dropna()
    return (
        f"timed on {os.cpu_count()} CPUs with {threads} torch thread(s) per run; 1-minute load "
        f"average at the end of the trainings {load.min():.1f} to {load.max():.1f} "
        f"(mean {load.mean():.1f}): wall clock includes waiting for the CPU, CPU s does not"
    )


def select(names: Sequence[str] | None) -> tuple[Case, ...]:
    if not names:
        return CASES
    known = {c.name: c for c in CASES}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"parity_smile: unknown case(s) {unknown}; choose from {list(known)}")
    return tuple(known[n] for n in names)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scmint.experiments.parity_smile",
        description="SMILE / mpSMILE parity with the authors' code on the shared subsets (issue 5).",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=PROJECT_ROOT / "logs" / "parity_smile",
        help="where run directories and the table go (default: logs/parity_smile)",
    )
    parser.add_argument("--cases", nargs="*", help=f"subset of {[c.name for c in CASES]}")
    parser.add_argument(
        "--seeds",
        nargs="*",
        type=int,
        default=list(SEEDS),
        help="run seeds (default: the 10 of the reference)",
    )
    parser.add_argument(
        "--table-only", action="store_true", help="print the table from existing run directories"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads per run (default 1: on a shared 2-core machine, two threads "
        "oversubscribe the cores and run several times slower)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    cases = select(args.cases)

    if not args.table_only:
        for case in cases:
            for seed in args.seeds:
                record = run_point(case, seed, args.out, args.threads)
                print(
                    f"parity {case.name} seed {seed}: {record.get('status')} "
                    f"ARI k-means {record.get('ari_kmeans', math.nan):.3f} "
                    f"trained in {record.get('train_time_s', math.nan):.2f} s",
                    flush=True,
                )

    runs = read_runs(args.out, cases, args.seeds)
    baselines = {case.name: input_baseline(case, args.seeds, args.out) for case in cases}
    summary = summarize(runs, cases, len(args.seeds))
    table = format_table(summary, cases, baselines)
    load = machine_note(runs)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "parity_smile.md").write_text(table + f"\n\n{load}\n")
    if len(runs):
        runs.drop(
            columns=[c for c in runs.columns if isinstance(runs[c].iloc[0], dict | list)]
        ).to_csv(args.out / "parity_smile_runs.csv", index=False)
    print(table)
    print(f"\n{load}")
    failed = [row["case"] for row in summary if not row["passes"]]
    print(
        "\nbar (mean k-means ARI >= reference - 1 sd, time per training <= reference / 5): "
        f"{'all pass' if not failed else 'FAIL: ' + ', '.join(failed)}  [{args.out}]"
    )
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
