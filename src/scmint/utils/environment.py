"""Facts about the run's environment that belong in every run record."""

from __future__ import annotations

import platform
import resource
import subprocess
import sys
from importlib import metadata

import torch

from scmint.utils.config import PROJECT_ROOT

_PACKAGES = (
    "scmint",
    "torch",
    "lightning",
    "hydra-core",
    "numpy",
    "scanpy",
    "anndata",
    "mudata",
    "scikit-learn",
)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def git_commit() -> str | None:
    """The checkout's commit (with "-dirty" when it has uncommitted changes), None outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        )
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def peak_memory_mb() -> float:
    """Peak resident memory of this process (host), in MiB."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 if sys.platform != "darwin" else kib / 2**20


def peak_gpu_memory_mb() -> float | None:
    if not torch.cuda.is_available():
        return None
    return torch.cuda.max_memory_allocated() / 2**20


def machine() -> str:
    return f"{platform.node()} ({platform.machine()}, {torch.get_num_threads()} threads)"


def skip_uninitialized_fill() -> None:
    """Stop torch filling every new tensor with NaN under deterministic algorithms.

    ``trainer.deterministic: true`` switches on torch's deterministic algorithms, and with them
    ``torch.utils.deterministic.fill_uninitialized_memory``: a guard against reading memory that
    was never written. No scmint op reads such memory, so the fill only costs bandwidth (3-7 % of
    a UMINT/AE step on CPU, benchmarks/README.md); runs stay bit-for-bit repeatable without it.
    Kept here rather than inline in ``train.py``: submitit pickles ``python -m scmint.train``'s
    functions by value, and the ``torch.utils.deterministic`` module object cannot be pickled.
    """
    torch.utils.deterministic.fill_uninitialized_memory = False
