"""``scmint-eval``: score any embedding with the protocol every scmint run uses.

Two sources:

* an embedding file made by any tool: ``.h5ad`` (``obsm[KEY]``, labels and batches from ``obs``;
  per-modality embeddings from ``obsm["KEY_<modality>"]`` when present), or ``.npy`` / ``.csv`` /
  ``.tsv`` (a cells x dims matrix) with labels and batches from a CSV/TSV ``--labels`` file;
* a scmint checkpoint: the run's saved config (``RUN/.hydra/config.yaml``) rebuilds the data and
  the method, the checkpoint's weights embed every cell, and the run's own evaluation is redone.

Either way the result is a ``metrics.json`` in the run-record format, so ``scmint-report`` can put
external methods in the same tables (give them ``--model`` and ``--data`` names).

The plain functions :func:`evaluate_file` and :func:`evaluate_checkpoint` do the work; :func:`main`
parses arguments (argparse, not Hydra: an embedding file needs no config tree).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf, open_dict

from scmint.metrics import evaluate_embedding
from scmint.report.run_record import EMBEDDING_KEY, write_json_atomic
from scmint.utils.config import CONFIG_DIR

log = logging.getLogger("scmint.eval")

MATRIX_SUFFIXES = (".npy", ".csv", ".tsv", ".txt")


@dataclass
class EmbeddingInput:
    """An embedding and its cell annotations, as read from files."""

    embedding: np.ndarray
    labels: np.ndarray | None
    batches: np.ndarray | None
    modality_embeddings: dict[str, np.ndarray]


def evaluation_options(
    evaluation: str | Path = "default", overrides: Sequence[str] = ()
) -> dict[str, Any]:
    """Protocol options from ``conf/evaluation/<name>.yaml`` (or a YAML path) plus ``key=value``
    overrides (e.g. ``ward_max_cells=null``)."""
    path = Path(evaluation)
    if path.suffix not in (".yaml", ".yml"):
        path = CONFIG_DIR / "evaluation" / f"{evaluation}.yaml"
    if not path.exists():
        choices = sorted(p.stem for p in (CONFIG_DIR / "evaluation").glob("*.yaml"))
        raise FileNotFoundError(f"--evaluation: no {path}; give a YAML file or one of {choices}")
    options = OmegaConf.merge(OmegaConf.load(path), OmegaConf.from_dotlist(list(overrides)))
    return OmegaConf.to_container(options, resolve=True)


# ---- embedding files ------------------------------------------------------------------------
def read_embedding_file(
    path: str | Path,
    obsm_key: str = EMBEDDING_KEY,
    labels_file: str | Path | None = None,
    label_key: str | None = None,
    batch_key: str | None = None,
) -> EmbeddingInput:
    """Read an embedding with its labels and batches.

    ``label_key`` / ``batch_key`` default to ``cell_type`` / ``batch``; a default column that is
    absent means "no labels" / "no batches", a column named explicitly must exist.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"embedding file {path} does not exist")
    modality_embeddings: dict[str, np.ndarray] = {}
    if path.suffix == ".h5ad":
        import anndata as ad

        adata = ad.read_h5ad(path)
        if obsm_key not in adata.obsm:
            raise ValueError(
                f"{path}: no obsm[{obsm_key!r}]; it has {list(adata.obsm)} (choose with --obsm-key)"
            )
        embedding = np.asarray(adata.obsm[obsm_key])
        modality_embeddings = {
            k[len(obsm_key) + 1 :]: np.asarray(v)
            for k, v in adata.obsm.items()
            if k.startswith(f"{obsm_key}_")
        }
        cells, annotations, source = adata.obs_names.astype(str), adata.obs, str(path)
    elif path.suffix in MATRIX_SUFFIXES:
        cells, embedding = _read_matrix(path)
        annotations, source = None, None
    else:
        raise ValueError(
            f"{path}: unknown embedding format {path.suffix!r}; use .h5ad, or {MATRIX_SUFFIXES} "
            "with --labels"
        )
    if labels_file is not None:
        annotations, source = (
            _read_annotations(Path(labels_file), cells, len(embedding)),
            str(labels_file),
        )
    labels = _column(annotations, label_key, "cell_type", source, "--label-key")
    batches = _column(annotations, batch_key, "batch", source, "--batch-key")
    return EmbeddingInput(embedding, labels, batches, modality_embeddings)


def _read_matrix(path: Path) -> tuple[pd.Index | None, np.ndarray]:
    """(cell names or None, cells x dims matrix) of a .npy or delimited text file."""
    if path.suffix == ".npy":
        return None, np.load(path)
    table = pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else None, engine="python")
    first = table.columns[0]
    if not pd.api.types.is_numeric_dtype(table[first]):  # a column of cell names
        table = table.set_index(first)
        cells = table.index.astype(str)
    else:
        cells = None
    try:
        return cells, table.to_numpy(dtype=np.float64)
    except ValueError as error:
        raise ValueError(
            f"{path}: the embedding must be numeric apart from a first column of cell names ({error})"
        ) from error


def _read_annotations(path: Path, cells: pd.Index | None, n: int) -> pd.DataFrame:
    """The labels file, aligned with the embedding's rows.

    When the embedding has cell names and the file's first column holds all of them, rows are
    matched by name; otherwise they must be in the same order and number.
    """
    if not path.exists():
        raise FileNotFoundError(f"labels file {path} does not exist")
    table = pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else None, engine="python")
    if cells is not None:
        names = table.iloc[:, 0].astype(str)
        if set(cells) <= set(names):
            return table.set_index(names).loc[list(cells)]
    if len(table) != n:
        raise ValueError(
            f"labels file {path} has {len(table)} rows but the embedding has {n} cells; give one "
            "row per cell in the same order, or a first column of the embedding's cell names"
        )
    return table


def _column(
    table: pd.DataFrame | None, key: str | None, default: str, source: str | None, flag: str
) -> np.ndarray | None:
    if table is None:
        if key is not None:
            raise ValueError(
                f"{flag} {key!r} given but there is no annotation table; pass --labels FILE"
            )
        return None
    name = key or default
    if name not in table.columns:
        if key is not None:
            raise ValueError(
                f"{source}: no column {name!r} ({flag}); columns are {list(table.columns)}"
            )
        log.info("%s: no column %r; evaluating without it", source, name)
        return None
    values = table[name].to_numpy(dtype=object)
    return np.where(pd.isna(values), None, values).astype(object)


def evaluate_file(
    path: str | Path,
    out: str | Path | None = None,
    obsm_key: str = EMBEDDING_KEY,
    labels_file: str | Path | None = None,
    label_key: str | None = None,
    batch_key: str | None = None,
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
    identity: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate an embedding file and write ``metrics.json`` (default: ``<file>.metrics.json``).

    ``identity`` (e.g. ``{"model": "wnn", "data": "cbmc8k"}``) is recorded with the metrics so
    that ``scmint-report`` can group the result.
    """
    data = read_embedding_file(path, obsm_key, labels_file, label_key, batch_key)
    metrics = evaluate_embedding(
        data.embedding,
        data.labels,
        data.batches,
        modality_embeddings=data.modality_embeddings or None,
        seed=seed,
        config=options,
    )
    record = {
        "model": Path(path).stem,
        "data": None,
        **(identity or {}),
        "seed": seed,
        "status": "ok",
        "source": str(path),
        "obsm_key": obsm_key,
        **metrics,
    }
    write_json_atomic(Path(out) if out else Path(path).with_suffix(".metrics.json"), record)
    return record


# ---- checkpoints ----------------------------------------------------------------------------
def evaluate_checkpoint(
    checkpoint: str | Path,
    out: str | Path | None = None,
    config: str | Path | None = None,
    seed: int | None = None,
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Re-evaluate a trained scmint run from its checkpoint.

    The run's config (default ``<run>/.hydra/config.yaml``, the checkpoint being
    ``<run>/checkpoints/*.ckpt``) rebuilds the datamodule and the method; the checkpoint's weights
    are loaded and every cell embedded. ``options`` replaces the run's ``evaluation`` options and
    ``seed`` its seed. Writes ``metrics.json`` (default ``<run>/eval/metrics.json``; the run's
    own record is never overwritten). Only load checkpoints you trust: they are pickles.
    """
    checkpoint = Path(checkpoint)
    if not checkpoint.exists():
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist")
    run_dir = checkpoint.resolve().parent.parent
    config_path = Path(config) if config else run_dir / ".hydra" / "config.yaml"
    if not config_path.exists():
        raise FileNotFoundError(
            f"no run config at {config_path}; pass the run's .hydra/config.yaml with --config"
        )
    import torch  # training stack imported only for checkpoints, after the cheap checks

    from scmint.models.inference import embed_all
    from scmint.train import build_datamodule, build_model, evaluate, run_identity

    cfg: DictConfig = OmegaConf.load(config_path)
    with open_dict(cfg):
        cfg.paths.output_dir = str(run_dir)  # replaces ${hydra:runtime.output_dir}
        if seed is not None:
            cfg.seed = seed
        if options is not None:
            cfg.evaluation = OmegaConf.create(dict(options))
    datamodule = build_datamodule(cfg)
    model = build_model(cfg, datamodule)
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    model.load_state_dict(state["state_dict"])
    outputs = embed_all(model, datamodule.predict_dataloader())
    identity = {k: v for k, v in run_identity(cfg).items() if v is not None}
    record = {
        **identity,
        "status": "ok",
        "source": str(checkpoint),
        **evaluate(cfg, datamodule, outputs),
    }
    write_json_atomic(Path(out) if out else run_dir / "eval" / "metrics.json", record)
    return record


# ---- command line ---------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scmint-eval",
        description="Evaluate an embedding file (.h5ad, .npy, .csv) or a scmint checkpoint with "
        "scmint's evaluation protocol; writes metrics.json. See docs/evaluation.md.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("embedding", nargs="?", help="embedding file: .h5ad, .npy, .csv or .tsv")
    source.add_argument("--checkpoint", help="a scmint checkpoint (RUN/checkpoints/*.ckpt)")
    parser.add_argument("--out", help="metrics.json to write (default: beside the input)")
    parser.add_argument(
        "--obsm-key", default=EMBEDDING_KEY, help="obsm key of an .h5ad (default: %(default)s)"
    )
    parser.add_argument(
        "--labels", help="CSV/TSV with the label (and batch) columns, one row per cell"
    )
    parser.add_argument("--label-key", help="label column (default: cell_type, if present)")
    parser.add_argument("--batch-key", help="batch column (default: batch, if present)")
    parser.add_argument("--model", help="method name recorded in metrics.json (default: file name)")
    parser.add_argument("--data", help="dataset name recorded in metrics.json")
    parser.add_argument(
        "--config", help="run config of --checkpoint (default: RUN/.hydra/config.yaml)"
    )
    parser.add_argument(
        "--evaluation",
        default=None,
        help="conf/evaluation/<NAME>.yaml or a YAML path (default: 'default'; for "
        "--checkpoint: the run's own options)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override an evaluation option (repeatable), e.g. --set ward_max_cells=null",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="evaluation seed (default: 0, or the run's)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        options = (
            evaluation_options(args.evaluation or "default", args.set)
            if args.evaluation or args.set or not args.checkpoint
            else None
        )
        if args.checkpoint:
            record = evaluate_checkpoint(args.checkpoint, args.out, args.config, args.seed, options)
        else:
            identity = {k: v for k, v in (("model", args.model), ("data", args.data)) if v}
            record = evaluate_file(
                args.embedding,
                args.out,
                args.obsm_key,
                args.labels,
                args.label_key,
                args.batch_key,
                seed=args.seed or 0,
                options=options,
                identity=identity,
            )
    except (FileNotFoundError, ValueError) as error:
        print(f"scmint-eval: error: {error}", file=sys.stderr)
        return 1
    shown = [
        k
        for k in (
            "ari_ward",
            "ari_kmeans",
            "ari_leiden",
            "nmi_leiden_best",
            "knn_f1",
            "ilisi_scaled",
            "foscttm",
            "ors",
        )
        if record.get(k) is not None
    ]
    print("scmint-eval: " + "  ".join(f"{k}={record[k]:.3f}" for k in shown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
