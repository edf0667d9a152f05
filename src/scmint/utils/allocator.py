"""Keep the memory a fit frees inside the process, so the next step reuses it (glibc malloc).

Why: torch's CPU tensors come from ``malloc``. glibc serves every request above its mmap
threshold (128 KiB, rising with use to at most 32 MiB) with a fresh ``mmap`` and returns it with
``munmap`` when freed, and it trims the top of its heap whenever more than twice that threshold
lies free there. A training step allocates and frees the same large batches and activations step
after step, so by default the kernel unmaps them, then faults in and zeroes fresh pages for the
next step. At batch 4,096 on multiome data that was 40 % of a pSMILE step on the development VM,
and the kernel time it took was most of the gap between scmint and a bare PyTorch loop
(docs/performance.md, "Freed memory"). :class:`RetainFreedMemory` switches ``mmap`` allocation off
and raises the trim threshold for the length of the fit, then puts back the limits glibc would
have settled at and returns what the fit freed to the system.

Other C libraries (macOS, musl) have no ``mallopt``; there the callback does nothing.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import sys

import lightning as L

log = logging.getLogger(__name__)

# mallopt parameter numbers (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4
#: What glibc's own limits settle at in a process that has freed a block of 32 MiB or more
#: (malloc/malloc.c: the mmap threshold follows freed mapped blocks up to 32 MiB on 64-bit
#: systems, the trim threshold is twice it), restored after the fit. Setting any limit with
#: mallopt stops glibc adjusting them, so its start values (128 KiB) would stay for good: with
#: them every block above 128 KiB is mapped afresh and the heap trimmed after each free, which
#: halved the matrix-product rate of SMILE-sized layers measured after a fit (docs/performance.md).
SETTLED_MMAP_THRESHOLD = 32 * 2**20
SETTLED_TRIM_THRESHOLD = 2 * SETTLED_MMAP_THRESHOLD
DEFAULT_MMAP_MAX = 65_536
#: During the fit, free memory at the heap's top goes back to the system only beyond this many
#: bytes: the largest value mallopt's C ``int`` holds, i.e. in practice never.
RETAINED_TRIM_THRESHOLD = 2**31 - 1


@functools.cache
def glibc() -> ctypes.CDLL | None:
    """The process's C library if it is glibc (which has ``mallopt`` and ``malloc_trim``)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)  # the symbols already loaded into this process
        for symbol in ("gnu_get_libc_version", "mallopt", "malloc_trim"):
            getattr(libc, symbol)
    except (OSError, AttributeError):
        return None
    return libc


def _mallopt(libc: ctypes.CDLL, parameter: int, value: int) -> None:
    if libc.mallopt(ctypes.c_int(parameter), ctypes.c_int(value)) != 1:
        log.warning("mallopt(%d, %d) was refused; glibc keeps its setting", parameter, value)


def retain_freed_memory(libc: ctypes.CDLL) -> None:
    """Serve every allocation from the heap and keep freed memory there for reuse."""
    _mallopt(libc, M_MMAP_MAX, 0)
    _mallopt(libc, M_TRIM_THRESHOLD, RETAINED_TRIM_THRESHOLD)


def release_freed_memory(libc: ctypes.CDLL) -> None:
    """glibc's settled limits again (:data:`SETTLED_MMAP_THRESHOLD`), and the free memory handed
    back to the system now."""
    _mallopt(libc, M_MMAP_THRESHOLD, SETTLED_MMAP_THRESHOLD)
    _mallopt(libc, M_MMAP_MAX, DEFAULT_MMAP_MAX)
    _mallopt(libc, M_TRIM_THRESHOLD, SETTLED_TRIM_THRESHOLD)
    libc.malloc_trim(ctypes.c_size_t(0))


class RetainFreedMemory(L.Callback):
    """Retains freed memory from the first training step to the end of the fit (see the module
    docstring); a fit that fails hands the memory back too. A no-op without glibc."""

    def __init__(self) -> None:
        self._libc: ctypes.CDLL | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        libc = glibc()
        if libc is None:
            log.info("C library is not glibc: memory freed during training is left to it")
            return
        retain_freed_memory(libc)
        self._libc = libc

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._release()

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self._release()

    def _release(self) -> None:
        if self._libc is not None:
            release_freed_memory(self._libc)
            self._libc = None
