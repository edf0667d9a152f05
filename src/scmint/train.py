"""``scmint-train`` / ``python -m scmint.train``: one training run, or a Hydra multirun sweep.

``main`` is a thin ``@hydra.main`` wrapper; all the work is in :func:`train`, a plain function of a
config, so tests and notebooks call it directly. A run:

1. checks the config, seeds everything (``seed`` 0 is a valid seed; ``null`` draws one and
   records it);
2. builds the datamodule, loads and preprocesses the data, and builds the method from the data's
   :class:`~scmint.data.spec.DataSpec` (so a method given the wrong data fails before training);
3. fits with Lightning, embeds all cells, evaluates the embedding with the shared protocol;
4. writes the run record (``metrics.json``, ``embedding.h5ad``, checkpoints, resolved config)
   into the Hydra run directory and prints a short score table.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import pandas as pd
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf, open_dict

from scmint.data.datamodule import MultiOmicsDataModule
from scmint.metrics import evaluate_embedding
from scmint.models.base import DataMismatchError, IntegrationModule
from scmint.models.baselines.base import Baseline
from scmint.models.baselines.packages import MissingPackageError
from scmint.models.inference import Embeddings, embed_all
from scmint.report.run_record import plot_umap, write_json_atomic, write_run_record
from scmint.utils.config import CONFIG_DIR, ConfigError, register_resolvers, validate_config
from scmint.utils.environment import (
    git_commit,
    package_versions,
    peak_gpu_memory_mb,
    peak_memory_mb,
    skip_uninitialized_fill,
)

log = logging.getLogger("scmint.train")
register_resolvers()

#: Errors caused by the user's config or data: reported in one line, without a traceback.
USER_ERRORS = (ConfigError, DataMismatchError, ValueError, FileNotFoundError, MissingPackageError)

#: Scores printed at the end of a run (when present), in this order.
SUMMARY_KEYS = ("ari_ward", "ari_kmeans", "fmi_ward", "fmi_kmeans", "nmi_ward", "nmi_kmeans", "ors")


def output_dir(cfg: DictConfig) -> Path:
    return Path(cfg.paths.output_dir)


def instantiate(node: DictConfig, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` that re-raises a constructor's own config/data error unwrapped,
    so callers (and the one-line CLI message) see e.g. "model.latent_dim must be >= 1"."""
    try:
        return hydra.utils.instantiate(node, _convert_="partial", **kwargs)
    except InstantiationException as error:
        cause = _user_error(error)
        if cause is not None and cause is not error:
            raise cause from error
        raise


def build_datamodule(cfg: DictConfig) -> MultiOmicsDataModule:
    """Instantiate ``cfg.data`` and load + preprocess it (rank-0 download, then setup)."""
    datamodule: MultiOmicsDataModule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def build_model(cfg: DictConfig, datamodule: MultiOmicsDataModule) -> IntegrationModule | Baseline:
    """Instantiate ``cfg.model`` for the data's spec."""
    return instantiate(cfg.model, data_spec=datamodule.spec)


class FitProgress(L.Callback):
    """Puts the final epoch and step counts into ``trainer.callback_metrics``.

    Under ``trainer=ddp_spawn`` training runs in worker processes and the main process's trainer
    keeps its initial counters (0); Lightning sends ``callback_metrics`` back to it, so the counts
    that the run record reports travel with them.
    """

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.callback_metrics["fit/epochs"] = torch.tensor(trainer.current_epoch)
        trainer.callback_metrics["fit/global_steps"] = torch.tensor(trainer.global_step)


def build_trainer(cfg: DictConfig) -> L.Trainer:
    callbacks = [hydra.utils.instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    callbacks.append(FitProgress())
    loggers = [hydra.utils.instantiate(c) for c in (cfg.get("logger") or {}).values() if c]
    for lg in loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    skip_uninitialized_fill()  # no NaN fill of new tensors under deterministic mode
    return trainer


def finish_wandb_run() -> None:
    """End this run's W&B run, if logger=wandb started one.

    Lightning leaves it open, and a later WandbLogger in the same process (the next point of a
    multirun, the next call of :func:`train` in a notebook) would log into it instead of its own.
    """
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()


def resolve_ckpt_path(cfg: DictConfig) -> str | None:
    """``ckpt_path=last`` resumes from this run directory's last checkpoint if there is one."""
    path = cfg.get("ckpt_path")
    if path in (None, ""):
        return None
    if path == "last":
        last = output_dir(cfg) / "checkpoints" / "last.ckpt"
        if last.exists():
            log.info("resuming from %s", last)
            return str(last)
        log.info("ckpt_path=last: no checkpoint in %s yet, starting fresh", last.parent)
        return None
    if not Path(path).exists():
        raise FileNotFoundError(f"ckpt_path: checkpoint {path} does not exist")
    return str(path)


def cell_obs(datamodule: MultiOmicsDataModule) -> pd.DataFrame:
    """Per-cell annotations written next to the embedding (standard keys cell_type / batch)."""
    obs = pd.DataFrame(index=pd.Index(datamodule.obs_names.astype(str), name="cell"))
    labels, batches = datamodule.labels(), datamodule.batches()
    if labels is not None:
        obs["cell_type"] = pd.Categorical(labels)
    if batches is not None:
        obs["batch"] = pd.Categorical(batches)
    return obs


def evaluate(
    cfg: DictConfig, datamodule: MultiOmicsDataModule, outputs: Embeddings
) -> dict[str, Any]:
    """The shared evaluation protocol on a run's embeddings."""
    inputs = None
    if outputs.reconstructions:
        inputs = {m: datamodule.features(m).numpy() for m in outputs.reconstructions}
    options = (
        OmegaConf.to_container(cfg.evaluation, resolve=True) if cfg.get("evaluation") else None
    )
    return evaluate_embedding(
        outputs.embedding,
        datamodule.labels(),
        batches=datamodule.batches(),
        modality_embeddings=outputs.modality_embeddings or None,
        inputs=inputs,
        reconstructions=outputs.reconstructions or None,
        seed=int(cfg.seed),
        config=options,
    )


def run_identity(cfg: DictConfig) -> dict[str, Any]:
    """Who this run is: model, data, seeds (the keys every report groups by)."""
    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    return {
        "model": choices.get("model")
        or str(cfg.model.get("_target_", "?")).rsplit(".", 1)[-1].lower(),
        "data": cfg.data.get("name") or choices.get("data"),
        "experiment": choices.get("experiment"),
        "seed": cfg.seed,
        "split_seed": cfg.get("split_seed"),
        "task_name": cfg.get("task_name"),
    }


def configure_threads(cfg: DictConfig) -> None:
    """Apply ``threads`` (torch's CPU threads); null leaves torch's default of one per core."""
    threads = cfg.get("threads")
    if threads is None:
        return
    if int(threads) < 1:
        raise ConfigError(f"threads must be >= 1 (CPU threads for torch) or null, got {threads}")
    torch.set_num_threads(int(threads))


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train, embed, evaluate and record one run; returns the metrics written to metrics.json."""
    validate_config(cfg)
    if cfg.get("seed") is None:
        with open_dict(cfg):
            cfg.seed = random.SystemRandom().randrange(2**31)
        log.info("seed was null; drew seed=%d (recorded in metrics.json)", cfg.seed)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    configure_threads(cfg)
    run_dir = output_dir(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)

    datamodule = build_datamodule(cfg)
    model = build_model(cfg, datamodule)
    start = time.perf_counter()
    if isinstance(model, Baseline):  # no gradient training: one call embeds every cell
        outputs = model.fit_embed(datamodule)
        train_time_s, fit_info = time.perf_counter() - start, {"device": "cpu", **model.run_info()}
    else:
        trainer = build_trainer(cfg)
        # weights_only=False: scmint checkpoints carry the RNG state (numpy arrays, tuples) and
        # OmegaConf hyper-parameters, which torch's weights-only unpickler refuses. Resume only
        # from checkpoints you wrote (this run directory's, or a path you trust).
        # trainer=ddp_spawn pickles the datamodule to its worker processes, which need only its
        # cell store; the preprocessed MuData it was built from is kept here (anndata cannot
        # unpickle it after preprocessing) and put back for the run record.
        mdata, datamodule.mdata = datamodule.mdata, None
        try:
            trainer.fit(
                model, datamodule=datamodule, ckpt_path=resolve_ckpt_path(cfg), weights_only=False
            )
        finally:
            datamodule.mdata = mdata
            finish_wandb_run()
        train_time_s = time.perf_counter() - start
        if trainer.global_rank != 0:  # DDP: rank 0 alone embeds, evaluates and writes the record
            return {}
        outputs = embed_all(model, datamodule.predict_dataloader())
        fit_info = {
            "epochs": int(trainer.callback_metrics["fit/epochs"]),
            "global_steps": int(trainer.callback_metrics["fit/global_steps"]),
            "device": str(model.device),
        }
    threads = torch.get_num_threads()
    start = time.perf_counter()
    scores = evaluate(cfg, datamodule, outputs) if cfg.get("evaluate", True) else {}
    eval_time_s = time.perf_counter() - start
    # numba-compiled code in the evaluation resets torch's intra-op thread count; restore it so
    # the next run in this process (multirun, notebook, parity runner) trains as configured.
    torch.set_num_threads(threads)

    metrics = {
        **run_identity(cfg),
        "status": "ok",
        **scores,
        "train_time_s": train_time_s,
        "eval_time_s": eval_time_s,
        "threads": torch.get_num_threads(),
        **fit_info,
        "n_params": model.n_params,
        "n_cells": datamodule.spec.n_cells,
        "modalities": datamodule.spec.modalities,
        "peak_memory_mb": peak_memory_mb(),
        "peak_gpu_memory_mb": peak_gpu_memory_mb(),
        "versions": package_versions(),
        "git_commit": git_commit(),
    }
    obs = cell_obs(datamodule)
    write_run_record(run_dir, metrics, outputs.embedding, obs, outputs.modality_embeddings)
    if cfg.extras.get("umap", True):
        plot_umap(
            run_dir,
            outputs.embedding,
            obs,
            seed=int(cfg.seed),
            title=f"{metrics['model']} on {metrics['data']}",
        )
    print_summary(metrics, run_dir)
    return metrics


def print_summary(metrics: dict[str, Any], run_dir: Path) -> None:
    """A short score table on stdout (the last thing `make run` prints)."""
    lines = [
        f"scmint | model={metrics['model']} data={metrics['data']} seed={metrics['seed']} "
        f"| {metrics['n_params']:,} params | trained in {metrics['train_time_s']:.1f} s",
    ]
    scores = [(k, metrics[k]) for k in SUMMARY_KEYS if metrics.get(k) is not None]
    if scores:
        lines.append("  " + "  ".join(f"{k:>10}" for k, _ in scores))
        lines.append("  " + "  ".join(f"{v:>10.3f}" for _, v in scores))
    elif metrics.get("labels_absent"):
        lines.append("  (no cell-type labels in this dataset: clustering scores not computed)")
    lines.append(f"  run record: {run_dir}")
    print("\n".join(lines), flush=True)


def record_failure(cfg: DictConfig, error: BaseException) -> None:
    """Leave the error in the run directory so sweeps and reports can list the failed point."""
    try:
        run_dir = output_dir(cfg)
    except Exception:  # the paths config itself is broken: nowhere to write
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "error.txt").write_text("".join(traceback.format_exception(error)))
    identity = {}
    with contextlib.suppress(Exception):  # identity is best-effort when the config is what failed
        identity = run_identity(cfg)
    write_json_atomic(
        run_dir / "metrics.json",
        {**identity, "status": "failed", "error": f"{type(error).__name__}: {error}"},
    )


def _user_error(error: BaseException) -> BaseException | None:
    """The user-facing cause of an error (unwrapping Hydra's instantiation wrapper), if any."""
    while isinstance(error, InstantiationException) and error.__cause__ is not None:
        error = error.__cause__
    return error if isinstance(error, USER_ERRORS) else None


def _is_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode.name == "MULTIRUN"


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns ``cfg.optimized_metric`` for hyper-parameter sweepers."""
    if cfg.extras.get("ignore_warnings"):
        warnings.filterwarnings("ignore")
    if cfg.extras.get("print_config"):
        print(OmegaConf.to_yaml(cfg, resolve=True))
    try:
        metrics = train(cfg)
    except Exception as error:  # record every failure; multirun goes on with the next point
        record_failure(cfg, error)
        cause = _user_error(error)
        if _is_multirun():
            log.error("run failed (%s: %s); the sweep continues", type(error).__name__, error)
            return None
        if cause is not None and not os.environ.get("SCMINT_DEBUG"):
            print(f"scmint-train: error: {cause}", file=sys.stderr)
            print("(set SCMINT_DEBUG=1 for the full traceback)", file=sys.stderr)
            sys.exit(1)
        raise
    metric = cfg.get("optimized_metric")
    return metrics.get(metric) if metric else None


if __name__ == "__main__":
    main()
