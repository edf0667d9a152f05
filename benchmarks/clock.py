"""Wall-clock timing that waits for the accelerator, and memory readings, shared by every loop."""

from __future__ import annotations

import resource
import sys
import time

import psutil
import torch


def synchronize(device: torch.device | str) -> None:
    """Wait for queued GPU work, so a timer read after it covers that work."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def now(device: torch.device | str) -> float:
    synchronize(device)
    return time.perf_counter()


class Stopwatch:
    """Wall-clock and CPU seconds (all threads of this process) over start/stop intervals.

    On a machine shared with other jobs the wall clock also counts the time this process waits
    for a core; CPU time does not, so a ratio of CPU times is the steadier figure there. (CPU time
    still includes threads spinning while they wait for each other, so with several threads it
    can exceed the wall time.)
    """

    def __init__(self, device: torch.device | str) -> None:
        self.device = device
        self.wall = 0.0
        self.cpu = 0.0
        self._started: tuple[float, float] | None = None

    @property
    def running(self) -> bool:
        return self._started is not None

    def start(self) -> None:
        self._started = (now(self.device), time.process_time())

    def stop(self) -> None:
        wall, cpu = self._started
        self.wall += now(self.device) - wall
        self.cpu += time.process_time() - cpu
        self._started = None

    def peek(self) -> float:
        """Wall seconds so far, without waiting for the accelerator."""
        return self.wall + (time.perf_counter() - self._started[0] if self._started else 0.0)


def rss_mb() -> float:
    """Current resident memory of this process, MiB."""
    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MiB (ru_maxrss never decreases)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 if sys.platform != "darwin" else kib / 2**20


def peak_gpu_mb(device: torch.device | str) -> float | None:
    if torch.device(device).type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**20
