"""Find the runs of one or more sweep directories and read their records into tables.

A run directory is any directory holding ``metrics.json`` or a Hydra ``.hydra/`` folder (Hydra's
multirun layout is ``DIR/<job_num>/{metrics.json,.hydra/overrides.yaml}``; nested date/time
folders are searched too). A run is

* ``ok``: ``metrics.json`` with status "ok";
* ``failed``: ``metrics.json`` with status "failed" (train.py records the error), or unreadable;
* ``incomplete``: no ``metrics.json`` (killed, or still running).

A run's *method* is its model plus any swept overrides that are not replicates (keys ending in
``seed``) or bookkeeping, so an ablation such as ``model.latent_dim=32,64`` gives two methods
while ``seed=0,1,2`` gives three replicates of one.
"""

from __future__ import annotations

import fnmatch
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import OmegaConf

from scmint.report.run_record import METRICS_FILE, read_metrics

#: Override keys that never distinguish methods (glob patterns on the key).
IGNORED_OVERRIDES = (
    "*seed",
    "model",
    "data",
    "experiment",
    "hydra.*",
    "paths.*",
    "logger*",
    "callbacks*",
    "extras*",
    "evaluation*",
    "evaluate",
    "threads",  # CPU threads: a compute setting (threads=1 on a shared machine), not a method
    "task_name",
    "tags",
    "trainer.accelerator",
    "trainer.devices",
    "trainer.strategy",
    "trainer.enable_*",
    "trainer.log_every_n_steps",
    "ckpt_path",
)


#: Leading columns of the runs and tidy-metrics tables: which run a row belongs to.
IDENTITY_COLUMNS = ("run_dir", "method", "model", "variant", "dataset", "seed", "split_seed")


@dataclass
class Run:
    """One run directory and what its record says."""

    path: Path
    status: str
    model: str
    dataset: str
    seed: Any
    split_seed: Any
    variant: str
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def method(self) -> str:
        return f"{self.model} [{self.variant}]" if self.variant else self.model

    def identity(self) -> dict[str, Any]:
        """The columns that say which run a table row belongs to (:data:`IDENTITY_COLUMNS`)."""
        return {
            "run_dir": str(self.path),
            "method": self.method,
            "model": self.model,
            "variant": self.variant,
            "dataset": self.dataset,
            "seed": self.seed,
            "split_seed": self.split_seed,
        }

    def numeric_metrics(self) -> dict[str, float]:
        """Metric name -> value for every number in the record (booleans and seeds excluded)."""
        return {
            k: float(v)
            for k, v in self.metrics.items()
            if isinstance(v, numbers.Real)
            and not isinstance(v, bool)
            and k not in ("seed", "split_seed")
        }


def find_run_dirs(roots: Iterable[str | Path]) -> list[Path]:
    """Every run directory under the given roots (a root may itself be a run), sorted."""
    found: set[Path] = set()
    for root in map(Path, roots):
        if not root.is_dir():
            raise FileNotFoundError(f"{root} is not a directory; pass sweep (multirun) directories")
        stack = [root]
        while stack:
            directory = stack.pop()
            if (directory / METRICS_FILE).exists() or (directory / ".hydra").is_dir():
                found.add(directory)
                continue
            stack.extend(
                p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")
            )
    return sorted(found, key=_natural_key)


def _natural_key(path: Path) -> tuple:
    """Sort job folders 0, 1, 2, ..., 10 rather than 0, 1, 10, 2."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in path.parts)


def read_overrides(run_dir: Path) -> dict[str, str]:
    """Hydra's ``.hydra/overrides.yaml`` as key -> value (empty when absent or unreadable)."""
    path = run_dir / ".hydra" / "overrides.yaml"
    try:
        items = OmegaConf.to_container(OmegaConf.load(path)) if path.exists() else []
    except Exception:  # a damaged file must not stop the report; the run is still listed
        return {}
    if not isinstance(items, list):
        return {}
    pairs = (str(item).split("=", 1) for item in items if "=" in str(item))
    return {key.lstrip("+~"): value for key, value in pairs}


def load_run(run_dir: Path, ignored: Sequence[str] = IGNORED_OVERRIDES) -> Run:
    """Read one run directory; never raises for a broken or missing record."""
    overrides = read_overrides(run_dir)
    metrics: dict[str, Any] = {}
    error = None
    if not (run_dir / METRICS_FILE).exists():
        status = "incomplete"
        error = f"no {METRICS_FILE} (the run was killed or is still running)"
    else:
        try:
            metrics = read_metrics(run_dir)
            status = str(metrics.get("status", "ok"))
            error = metrics.get("error")
        except (OSError, ValueError) as problem:
            status, error = "failed", f"unreadable {METRICS_FILE}: {problem}"
    variant = ",".join(
        f"{k}={v}"
        for k, v in sorted(overrides.items())
        if not any(fnmatch.fnmatch(k, pattern) for pattern in ignored)
    )
    return Run(
        path=run_dir,
        status=status,
        model=str(metrics.get("model") or overrides.get("model") or "?"),
        dataset=str(metrics.get("data") or overrides.get("data") or "?"),
        seed=metrics.get("seed", overrides.get("seed")),
        split_seed=metrics.get("split_seed", overrides.get("split_seed")),
        variant=variant,
        metrics=metrics,
        error=error,
    )


def runs_table(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per run: where it is, who it is, its status and error."""
    return pd.DataFrame(
        [{**r.identity(), "status": r.status, "error": r.error} for r in runs],
        columns=[*IDENTITY_COLUMNS, "status", "error"],
        dtype=object,  # seeds stay integers beside missing ones
    )


def tidy_metrics(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per completed run and numeric metric (absent metrics, i.e. null, have no row)."""
    rows = [
        {**r.identity(), "metric": name, "value": value}
        for r in runs
        if r.status == "ok"
        for name, value in r.numeric_metrics().items()
    ]
    return pd.DataFrame(rows, columns=[*IDENTITY_COLUMNS, "metric", "value"])
