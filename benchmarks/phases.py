"""Where a training step's time goes, in scmint and in the bare loop, side by side.

Runs the two loops interleaved exactly as ``bench_train``'s steps part does
(:func:`benchmarks.scmint_run.run_interleaved`), with four calls wrapped in timers that book their
time to whichever loop is running: the method's ``loss`` (the forward pass), ``torch.autograd.
backward``, the optimiser's ``step`` and the store's batch gather. "rest" is the step time minus
those three compute phases: for the bare loop ``zero_grad`` and summing the loss parts; for scmint
also the data fetch and everything Lightning does per step. Run from the repository root::

    python -m benchmarks.phases --method ae --dataset cite --batch-size 256
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from benchmarks import bare_loop, scmint_run
from benchmarks.workload import build_datamodule, compose_config, method_modalities, template

from scmint.data.loading import IndexedBatches

PHASES = ("forward", "backward", "optimiser", "fetch")


class PhaseClock:
    """Seconds per (loop, phase); ``loop`` names the loop whose code is running."""

    def __init__(self) -> None:
        self.seconds: dict[tuple[str, str], float] = defaultdict(float)
        self.loop = "scmint"

    def timed(self, phase: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[(self.loop, phase)] += time.perf_counter() - start

        return wrapper


@contextmanager
def patched(owner: Any, name: str, replacement: Any) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, original)


def measure(
    method: str, dataset: str, batch_size: int, steps: int, block: int, overrides: list[str]
) -> dict[str, Any]:
    """µs per timed step of each phase, for scmint and the bare loop, from one interleaved fit
    (the phases of the warm-up steps are not counted)."""
    base = template(dataset)
    cfg = compose_config(method, dataset, [f"data.batch_size={batch_size}", *overrides])
    modalities = method_modalities(method, list(base.mod))
    datamodule = build_datamodule(cfg, base, 10_000, modalities, "dense", None)
    device, warmup = torch.device("cpu"), 10
    batches = bare_loop.gather(datamodule, warmup + steps, device)
    clock = PhaseClock()
    optimiser_class = type(bare_loop.optimizer_of(scmint_run.fresh_model(cfg, datamodule)))
    original_run, original_fresh = bare_loop.BareLoop.run, scmint_run.fresh_model

    def bare_run(loop: bare_loop.BareLoop, n: int, timed: bool = True) -> None:
        clock.loop = "bare"
        try:
            original_run(loop, n, timed)
        finally:
            clock.loop = "scmint"
        if not timed:  # the bare warm-up runs as scmint's clock starts: count from here on
            clock.seconds.clear()

    def fresh_model(cfg_, datamodule_):  # the method's loss, timed, in both loops' models
        model = original_fresh(cfg_, datamodule_)
        model.loss = clock.timed("forward", model.loss)
        return model

    with (
        patched(torch.autograd, "backward", clock.timed("backward", torch.autograd.backward)),
        patched(optimiser_class, "step", clock.timed("optimiser", optimiser_class.step)),
        patched(IndexedBatches, "__getitem__", clock.timed("fetch", IndexedBatches.__getitem__)),
        patched(bare_loop.BareLoop, "run", bare_run),
        patched(scmint_run, "fresh_model", fresh_model),
    ):
        scmint, bare = scmint_run.run_interleaved(
            cfg, datamodule, warmup, steps, "cpu", batches, block
        )
    result: dict[str, Any] = {}
    for loop, total in (("scmint", scmint.wall), ("bare", bare.wall)):
        per_step = {p: 1e6 * clock.seconds[(loop, p)] / steps for p in PHASES}
        compute = per_step["forward"] + per_step["backward"] + per_step["optimiser"]
        result[loop] = {"total": 1e6 * total / steps, **per_step}
        result[loop]["rest"] = result[loop]["total"] - compute
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="ae")
    parser.add_argument("--dataset", default="cite", choices=["cite", "multiome"])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=300, help="timed steps of each loop per fit")
    parser.add_argument("--block", type=int, default=10, help="steps per interleaved block")
    parser.add_argument("--fits", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--override", nargs="+", default=[], help="Hydra overrides of the config")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    header = "fit  loop      total  forward  backward  optimiser   rest  (fetch)   µs per step"
    print(header)
    for fit in range(args.fits):
        result = measure(
            args.method, args.dataset, args.batch_size, args.steps, args.block, args.override
        )
        for loop in ("bare", "scmint"):
            r = result[loop]
            print(
                f"{fit:>3}  {loop:<6} {r['total']:>8.0f} {r['forward']:>8.0f} {r['backward']:>9.0f}"
                f" {r['optimiser']:>10.0f} {r['rest']:>6.0f} {r['fetch']:>8.0f}"
            )
        ratio = result["scmint"]["total"] / result["bare"]["total"]
        print(f"     scmint / bare: {ratio:.3f}")


if __name__ == "__main__":
    main()
