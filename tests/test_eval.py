"""scmint-eval: embeddings saved by scmint or any other tool, and checkpoints, scored with the
same protocol as training runs; the evaluation configs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from conftest import TINY, compose_config
from scmint.eval import evaluate_checkpoint, evaluate_file, evaluation_options, main
from scmint.metrics import EvaluationConfig, evaluate_embedding
from scmint.report import write_run_record
from scmint.utils.config import CONFIG_DIR

OPTIONS = {"leiden_resolutions": [0.5, 1.0], "kmeans_n_init": 2}


@pytest.fixture
def cells():
    """120 cells in 3 labelled groups, 2 batches, two modality embeddings."""
    rng = np.random.default_rng(0)
    labels = np.repeat(["B", "T", "NK"], 40).astype(object)
    x = np.repeat(rng.normal(0, 5, (3, 6)), 40, axis=0) + rng.normal(size=(120, 6))
    batches = np.tile(["s1", "s2"], 60).astype(object)
    names = [f"cell{i}" for i in range(120)]
    return x, labels, batches, names


def test_h5ad_run_record_scores_like_evaluate_embedding(cells, tmp_path):
    x, labels, batches, names = cells
    obs = pd.DataFrame({"cell_type": labels, "batch": batches}, index=names)
    write_run_record(tmp_path, {"status": "ok"}, x, obs, modality_embeddings={"rna": x, "adt": -x})
    record = evaluate_file(
        tmp_path / "embedding.h5ad",
        tmp_path / "eval.json",
        options=OPTIONS,
        identity={"model": "umint", "data": "toy"},
    )
    direct = evaluate_embedding(
        x.astype(np.float32),
        labels,
        batches,
        modality_embeddings={"rna": x, "adt": -x},
        config=OPTIONS,
    )
    written = json.loads((tmp_path / "eval.json").read_text())
    for key in (
        "ari_ward",
        "ari_leiden",
        "nmi_leiden_best",
        "silhouette_batch",
        "foscttm",
        "knn_f1",
    ):
        assert written[key] == pytest.approx(direct[key]), key
    assert written["model"] == "umint" and written["data"] == "toy" and written["status"] == "ok"
    assert record["modality_embeddings_absent"] is False  # obsm X_scmint_<m> found


def test_npy_with_labels_file_from_the_command_line(cells, tmp_path, capsys):
    x, labels, batches, _ = cells
    np.save(tmp_path / "emb.npy", x)
    pd.DataFrame({"celltype": labels, "donor": batches}).to_csv(tmp_path / "meta.csv", index=False)
    code = main(
        [
            str(tmp_path / "emb.npy"),
            "--labels",
            str(tmp_path / "meta.csv"),
            "--label-key",
            "celltype",
            "--batch-key",
            "donor",
            "--model",
            "wnn",
            "--evaluation",
            "fast",
            "--set",
            "ward_max_cells=50",
        ]
    )
    assert code == 0
    assert "ari_ward=" in capsys.readouterr().out
    record = json.loads((tmp_path / "emb.metrics.json").read_text())
    assert record["labels_absent"] is False and record["batches_absent"] is False
    assert record["n_labels"] == 3 and record["ward_subsampled_n"] == 50
    assert record["model"] == "wnn"


def test_csv_rows_are_matched_to_labels_by_cell_name(cells, tmp_path):
    x, labels, _, names = cells
    pd.DataFrame(x, index=pd.Index(names, name="cell")).to_csv(tmp_path / "emb.csv")
    order = np.random.default_rng(1).permutation(120)  # labels file in another order
    meta = pd.DataFrame({"cell": np.asarray(names)[order], "cell_type": labels[order]})
    meta.to_csv(tmp_path / "meta.csv", index=False)
    shuffled = evaluate_file(
        tmp_path / "emb.csv", labels_file=tmp_path / "meta.csv", options=OPTIONS
    )
    direct = evaluate_embedding(x, labels, config=OPTIONS)
    assert shuffled["ari_kmeans"] == pytest.approx(direct["ari_kmeans"])
    assert shuffled["knn_f1"] == pytest.approx(direct["knn_f1"])


def test_errors_name_the_problem(cells, tmp_path, capsys):
    x, labels, _, names = cells
    write_run_record(tmp_path, {}, x, pd.DataFrame({"cell_type": labels}, index=names))
    assert main([str(tmp_path / "embedding.h5ad"), "--obsm-key", "X_pca"]) == 1
    assert "no obsm['X_pca']" in capsys.readouterr().err
    assert main([str(tmp_path / "embedding.h5ad"), "--label-key", "celltype"]) == 1
    assert "no column 'celltype'" in capsys.readouterr().err
    np.save(tmp_path / "emb.npy", x)
    pd.DataFrame({"cell_type": labels[:10]}).to_csv(tmp_path / "short.csv", index=False)
    assert main([str(tmp_path / "emb.npy"), "--labels", str(tmp_path / "short.csv")]) == 1
    assert "has 10 rows but the embedding has 120" in capsys.readouterr().err
    assert main([str(tmp_path / "emb.npy"), "--evaluation", "nonesuch"]) == 1
    assert "fast" in capsys.readouterr().err  # lists the available protocols


def test_default_yaml_is_evaluation_config_defaults():
    """conf/evaluation/default.yaml and EvaluationConfig's defaults must not drift apart."""
    assert EvaluationConfig.from_any(evaluation_options("default")) == EvaluationConfig()
    for name in ("fast", "full"):
        EvaluationConfig.from_any(evaluation_options(name))  # only known keys, valid values
    assert evaluation_options("full")["ward_max_cells"] is None
    assert sorted(p.stem for p in (CONFIG_DIR / "evaluation").glob("*.yaml")) == [
        "default",
        "fast",
        "full",
    ]


def test_train_config_composes_with_each_protocol(tmp_path):
    for name in ("default", "fast", "full"):
        cfg = compose_config([f"evaluation={name}"], tmp_path)
        EvaluationConfig.from_any(OmegaConf.to_container(cfg.evaluation))


@pytest.mark.slow
def test_checkpoint_reproduces_the_runs_own_evaluation(tmp_path):
    """Slow: trains a tiny UMINT first (about 15 s of CPU)."""
    from scmint.train import train

    run_dir = tmp_path / "run"
    cfg = compose_config([*TINY, "seed=0", "evaluation=fast"], run_dir)
    metrics = train(cfg)
    (run_dir / ".hydra").mkdir()
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")  # what Hydra saves for a real run
    record = evaluate_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    for key in ("ari_ward", "ari_kmeans", "ari_leiden", "ors"):
        assert record[key] == pytest.approx(metrics[key]), key
    assert record["model"] == "umint" and record["seed"] == 0
    assert (
        json.loads((run_dir / "eval" / "metrics.json").read_text())["ari_ward"]
        == record["ari_ward"]
    )
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "ok"  # untouched


def test_missing_checkpoint_config_is_explained(tmp_path, capsys):
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"")
    assert main(["--checkpoint", str(ckpt)]) == 1
    assert "no run config" in capsys.readouterr().err
