"""Gather the next batch on a background thread while the current one trains (``data.prefetch``).

With ``num_workers=0`` the DataLoader gathers each batch in the training thread, between two
optimiser steps. The gather is a handful of ``index_select`` calls (or the sparse store's
compiled kernel, or reads of the backed file) that release the GIL, so one background thread can
run it beside the step, as a worker process would, without copying the batch through shared
memory.

``data.prefetch=auto`` (the default) uses it where the gather is real work: sparse and backed
storage, whose gather densifies and z-scores CSR rows scattered over gigabytes (and, backed, may
read the disk). On the 2-core development machine, at 1,000,000 cells in sparse storage and batch
256, it cut scmint's time per step over a bare loop's from 1.15-1.18x to 1.10-1.11x, and at batch
16 it changed nothing. Dense storage's gather is a copy too short to hide (0.03 ms at batch 16,
where handing a batch between threads costs more), so ``auto`` leaves it off there
(docs/performance.md, "Prefetching, measured").

Order and content are unchanged: the thread walks the same sampler through the same iterator,
and the sampler draws from its own seeded generator, never from the global RNG the model uses.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

from torch.utils.data import DataLoader

#: Batches gathered ahead of those the training loop holds: one hides the gather behind the step;
#: more would only hold more memory (a multiome batch of 4,096 cells is 114 MB).
DEPTH = 1


class _Done:
    """End-of-epoch marker (the iterator's StopIteration cannot cross a queue)."""


class _Failed:
    """An exception raised while gathering, re-raised in the training thread."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Channel:
    """What the gathering thread and the training thread share. The thread holds this, never the
    :class:`ThreadPrefetcher`, so an iterator dropped mid-epoch is garbage-collected, and its
    ``__del__`` stops the thread."""

    POLL_S = 0.1

    def __init__(self) -> None:
        self.ready: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.slots = threading.Semaphore(DEPTH)
        self.stop = threading.Event()

    def take_slot(self) -> bool:
        """Wait for room to gather one more batch; False once the consumer has gone."""
        while not self.stop.is_set():
            if self.slots.acquire(timeout=self.POLL_S):
                return True
        return False


def _produce(channel: _Channel, batches: Iterator[Any]) -> None:
    """The gathering thread: one batch per free slot, then the end marker (or the failure)."""
    try:
        while channel.take_slot():
            try:
                batch = next(batches)
            except StopIteration:
                channel.ready.put(_Done())
                return
            channel.ready.put(batch)
    except BaseException as error:  # any failure, re-raised as is in the training thread
        channel.ready.put(_Failed(error))


class ThreadPrefetcher(Iterator[Any]):
    """Iterate ``batches`` on a daemon thread, at most :data:`DEPTH` batches ahead.

    The thread takes a slot before it gathers a batch and the training thread frees it when it
    takes the batch, so no more than ``DEPTH`` batches exist beyond those the training loop holds
    (Lightning itself looks one batch ahead).

    Stopping early (``max_steps`` mid-epoch, an exception in the step) is safe: :meth:`close`,
    also run when the iterator is garbage-collected, tells the thread to stop, and the thread
    never waits longer than a short poll, so it exits without the consumer draining it.
    """

    def __init__(self, batches: Iterator[Any]) -> None:
        self._channel = _Channel()
        self._thread = threading.Thread(
            target=_produce, args=(self._channel, batches), name="scmint-prefetch", daemon=True
        )
        self._thread.start()

    def __next__(self) -> Any:
        if self._channel.stop.is_set():
            raise StopIteration
        item = self._channel.ready.get()
        self._channel.slots.release()
        if isinstance(item, _Done):
            self.close()
            raise StopIteration
        if isinstance(item, _Failed):
            self.close()
            raise item.error
        return item

    def close(self) -> None:
        self._channel.stop.set()

    def __del__(self) -> None:
        self.close()


class PrefetchingDataLoader(DataLoader):
    """A single-process DataLoader (``num_workers=0``) that gathers one batch ahead on a thread."""

    def __iter__(self) -> Iterator[Any]:
        if self.num_workers > 0:
            raise ValueError("PrefetchingDataLoader is for num_workers=0: workers gather ahead")
        return ThreadPrefetcher(super().__iter__())
