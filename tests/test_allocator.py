"""RetainFreedMemory: glibc keeps what a fit frees, and gets its defaults back after the fit."""

from __future__ import annotations

import gc
import logging
import os

import lightning as L
import pytest
import torch

from scmint.utils import allocator
from scmint.utils.allocator import (
    DEFAULT_MMAP_MAX,
    M_MMAP_MAX,
    M_MMAP_THRESHOLD,
    M_TRIM_THRESHOLD,
    RETAINED_TRIM_THRESHOLD,
    SETTLED_MMAP_THRESHOLD,
    SETTLED_TRIM_THRESHOLD,
    RetainFreedMemory,
)

RETAIN = [("mallopt", M_MMAP_MAX, 0), ("mallopt", M_TRIM_THRESHOLD, RETAINED_TRIM_THRESHOLD)]
RELEASE = [
    ("mallopt", M_MMAP_THRESHOLD, SETTLED_MMAP_THRESHOLD),
    ("mallopt", M_MMAP_MAX, DEFAULT_MMAP_MAX),
    ("mallopt", M_TRIM_THRESHOLD, SETTLED_TRIM_THRESHOLD),
    ("malloc_trim", 0),
]


class FakeLibc:
    """Records the calls a real glibc would get; ``accept=False`` refuses every mallopt."""

    def __init__(self, accept: bool = True) -> None:
        self.calls: list[tuple] = []
        self.accept = accept

    def mallopt(self, parameter, value) -> int:
        self.calls.append(("mallopt", parameter.value, value.value))
        return int(self.accept)

    def malloc_trim(self, pad) -> int:
        self.calls.append(("malloc_trim", pad.value))
        return 1


@pytest.fixture
def fake_libc(monkeypatch) -> FakeLibc:
    libc = FakeLibc()
    monkeypatch.setattr(allocator, "glibc", lambda: libc)
    return libc


class TinyModule(L.LightningModule):
    def __init__(self, fail_at: int | None = None) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.fail_at = fail_at

    def training_step(self, batch, batch_idx):
        if batch_idx == self.fail_at:
            raise RuntimeError("step failed")
        return self.layer(batch).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(module: TinyModule, callback: L.Callback, tmp_path) -> None:
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[callback],
    )
    trainer.fit(module, torch.utils.data.DataLoader(torch.randn(8, 4), batch_size=4))


def test_retained_for_the_fit_and_released_after(fake_libc, tmp_path):
    _fit(TinyModule(), RetainFreedMemory(), tmp_path)
    assert fake_libc.calls == RETAIN + RELEASE


def test_a_failed_fit_releases_too(fake_libc, tmp_path):
    with pytest.raises(RuntimeError, match="step failed"):
        _fit(TinyModule(fail_at=1), RetainFreedMemory(), tmp_path)
    assert fake_libc.calls == RETAIN + RELEASE


def test_without_glibc_nothing_is_called(monkeypatch, tmp_path, caplog):
    monkeypatch.setattr(allocator, "glibc", lambda: None)
    with caplog.at_level(logging.INFO, logger=allocator.__name__):
        _fit(TinyModule(), RetainFreedMemory(), tmp_path)
    assert "not glibc" in caplog.text


def test_a_refused_setting_is_reported(monkeypatch, caplog):
    libc = FakeLibc(accept=False)
    with caplog.at_level(logging.WARNING, logger=allocator.__name__):
        allocator.retain_freed_memory(libc)
    assert f"mallopt({M_MMAP_MAX}, 0) was refused" in caplog.text


def test_default_callbacks_include_it(make_cfg):
    from scmint.train import build_trainer

    trainer = build_trainer(make_cfg())
    assert any(isinstance(c, RetainFreedMemory) for c in trainer.callbacks)


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _allocate_and_free(mib: int) -> None:
    block = torch.empty(mib * 2**20 // 4)
    block.fill_(1.0)  # touch every page
    del block
    gc.collect()


@pytest.mark.skipif(
    allocator.glibc() is None, reason="needs glibc (Linux); other C libraries have no mallopt"
)
def test_glibc_keeps_freed_memory_while_retained():
    """A 256 MiB tensor's pages go back to the system when it is freed, except while retained."""
    libc = allocator.glibc()
    allocator.release_freed_memory(libc)
    before = _rss_mib()
    _allocate_and_free(256)
    assert _rss_mib() - before < 64  # default: unmapped on free

    allocator.retain_freed_memory(libc)
    try:
        _allocate_and_free(256)
        assert _rss_mib() - before > 192  # retained: still resident, ready for reuse
    finally:
        allocator.release_freed_memory(libc)
    assert _rss_mib() - before < 64  # released: handed back
