"""The benchmark's interleaved scmint/bare timing counts the right steps on the right clock.

Nothing here times anything for its own sake: these tests check the bookkeeping that every ratio
in benchmarks/README.md rests on (which steps each clock covers, in which order the two loops run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import torch
from benchmarks import bare_loop, scmint_run

from conftest import TINY
from scmint.train import build_datamodule
from scmint.utils.config import PROJECT_ROOT

CPU = torch.device("cpu")


@pytest.fixture
def ae_run(make_cfg):
    """(config, datamodule) of a tiny AE in batches of 16 cells (15 training batches per epoch)."""
    cfg = make_cfg("model=ae", *TINY, "data.batch_size=16")
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return cfg, datamodule


def test_bare_blocks_follow_each_scmint_block_and_match_its_step_count(ae_run, monkeypatch):
    cfg, datamodule = ae_run
    steps_per_epoch = len(datamodule.train_dataloader())
    warmup, steps, block = 3, steps_per_epoch + 4, 5  # the timed steps cross an epoch boundary
    blocks: list[tuple[int, bool]] = []
    run = bare_loop.BareLoop.run

    def logged_run(self, n, timed=True):
        blocks.append((n, timed))
        run(self, n, timed)

    monkeypatch.setattr(bare_loop.BareLoop, "run", logged_run)
    batches = bare_loop.gather(datamodule, warmup + steps, CPU)
    scmint, bare = scmint_run.run_interleaved(cfg, datamodule, warmup, steps, "cpu", batches, block)
    full, rest = divmod(steps, block)
    assert blocks == [(warmup, False)] + [(block, True)] * full + [(rest, True)] * (rest > 0)
    assert scmint.wall > 0 and bare.wall > 0


def test_scmint_clock_leaves_out_the_bare_steps(ae_run, monkeypatch):
    """A bare step made to take 0.1 s shows on the bare clock only."""
    cfg, datamodule = ae_run
    warmup, steps, block, pause = 2, 6, 3, 0.1
    step = bare_loop.bare_step

    def slow_step(*args):
        step(*args)
        time.sleep(pause)

    monkeypatch.setattr(bare_loop, "bare_step", slow_step)
    batches = bare_loop.gather(datamodule, warmup + steps, CPU)
    scmint, bare = scmint_run.run_interleaved(cfg, datamodule, warmup, steps, "cpu", batches, block)
    assert bare.wall >= steps * pause
    assert scmint.wall < steps * pause


def test_block_must_hold_a_step():
    with pytest.raises(ValueError, match="at least one step"):
        scmint_run.InterleavedTimer(1, 2, CPU, bare=None, block=0)


def test_the_bare_protocol_gets_the_allocator_setting_of_scmints_fit(make_cfg, monkeypatch):
    """A bare run outside scmint's fit retains freed memory exactly when scmint's config does."""
    from scmint.utils import allocator

    calls: list[str] = []
    monkeypatch.setattr(allocator, "glibc", lambda: "libc")
    monkeypatch.setattr(allocator, "retain_freed_memory", lambda libc: calls.append("retain"))
    monkeypatch.setattr(allocator, "release_freed_memory", lambda libc: calls.append("release"))
    for overrides, expected in (
        ([], ["retain", "release"]),
        (["~callbacks.retain_freed_memory"], []),
    ):
        calls.clear()
        retain = bare_loop.retains_freed_memory(make_cfg(*overrides))
        with bare_loop.freed_memory_retained(retain):
            assert calls == expected[:1]
        assert calls == expected


def test_lightning_floor_sweeps_once_per_step_in_both_loops():
    """Both loops of the Lightning-floor benchmark run every batch and sweep the buffer each step."""
    from benchmarks import lightning_floor

    steps = lightning_floor.WARMUP_STEPS + 20
    batches = [torch.randn(4) for _ in range(steps)]
    sweep = torch.zeros(16)
    bare = lightning_floor.bare_seconds_per_step(sweep, batches)
    assert sweep[0].item() == steps - lightning_floor.WARMUP_STEPS
    fitted = lightning_floor.lightning_seconds_per_step(sweep, batches)
    assert sweep[0].item() == 2 * steps - lightning_floor.WARMUP_STEPS
    assert 0 < bare < 1 and 0 < fitted < 1


def test_lightning_floor_needs_timed_steps():
    from benchmarks import lightning_floor

    with pytest.raises(ValueError, match="--steps"):
        lightning_floor.measure(0, steps=lightning_floor.WARMUP_STEPS, repeats=1)


def test_report_names_the_optimiser_each_row_ran_with():
    from benchmarks import report

    assert report._optimizer({"optimizer": {"_target_": "torch.optim.Adam", "fused": True}}) == (
        "Adam (fused)"
    )
    assert report._optimizer({"optimizer": {"_target_": "torch.optim.SGD", "lr": 0.01}}) == "SGD"
    assert report._optimizer({}) == "not recorded"  # rows from before the field existed


def test_step_limit_counts_each_product_at_its_fastest_timing():
    from benchmarks import flops

    def product(n: int) -> flops.MatmulCall:
        spec = flops.TensorSpec((n, n), (n, 1), torch.float32)
        return flops.MatmulCall(torch.ops.aten.mm.default, (spec, spec), (), 2 * n**3)

    small, large = product(4), product(8)
    before, after = {small: 1.0, large: 5.0}, {small: 2.0, large: 3.0}  # a slow moment each
    limit = flops.step_limit([small, small, large], before, after)
    assert limit.seconds == 2 * 1.0 + 3.0
    assert limit.flops == 2 * small.flops + large.flops
    with pytest.raises(ValueError, match="time_products"):
        flops.step_limit([small])
    assert flops.time_products([small], torch.device("cpu"))[small] > 0


@pytest.mark.slow
def test_bench_train_measures_and_reports_a_small_grid(tmp_path):
    """`make bench`'s script end to end on the smallest grid: one steps point and one protocol
    (one epoch, extrapolated), in worker processes, then the JSON, the summary and the plot."""
    out = tmp_path / "results.json"
    command = [
        sys.executable, "-m", "benchmarks.bench_train", "--threads", "1",
        "--parts", "steps", "protocol", "--methods", "ae", "--datasets", "cite",
        "--cells", "10000", "--batch-sizes", "256", "--repeats", "1", "--seconds", "0.5",
        "--out", str(out),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    subprocess.run(command, cwd=PROJECT_ROOT, env=env, check=True, timeout=900)
    records = json.loads(out.read_text())["records"]
    assert {r["status"] for r in records} == {"ok"}
    steps = next(r for r in records if r["kind"] == "steps")
    protocol = next(r for r in records if r["kind"] == "protocol")
    assert steps["batch_size"] == 256 and protocol["batch_size"] == 16  # AE's reference batch
    assert steps["optimizer"]["_target_"] == "torch.optim.Adam"
    assert steps["limit_timing"].startswith("fastest")
    assert 0 < steps["scmint_fraction_of_limit"] < 1 and 0.3 < steps["wall_ratio"] < 3
    summary = out.with_suffix(".md").read_text()
    assert "## Targets" in summary and "| Adam |" in summary
    assert (tmp_path / "results-throughput.png").stat().st_size > 0
