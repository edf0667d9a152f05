"""Run records and scmint-report on a small fake multirun (two models x two seeds, one failed run,
one incomplete run) written with the same functions train.py uses."""

from __future__ import annotations

import json
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from scmint.metrics import evaluate_embedding
from scmint.report import plot_umap, read_metrics, write_run_record
from scmint.report.cli import build_report, main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MODELS = {"umint": 0.5, "ae": 3.0}  # model -> noise around the label centres (ae is worse)


def fake_run(run_dir: Path, model: str, seed: int, overrides: list[str]) -> dict:
    rng = np.random.default_rng(seed)
    labels = np.repeat(["B", "T", "NK"], 40)
    centres = {"B": 0.0, "T": 6.0, "NK": 12.0}
    x = np.array([[centres[c]] * 4 for c in labels]) + rng.normal(
        0, MODELS[model], (len(labels), 4)
    )
    batches = np.tile(["s1", "s2"], len(labels) // 2)
    metrics = evaluate_embedding(
        x,
        labels.astype(object),
        batches.astype(object),
        seed=seed,
        config={"groups": ["clustering", "batch"], "leiden_resolutions": [0.5, 1.0]},
    )
    metrics.update(
        model=model,
        data="toy",
        seed=seed,
        split_seed=0,
        status="ok",
        train_time_s=10.0 + seed,
        peak_memory_mb=100.0,
        n_params=1234,
        versions={"torch": "x"},
        git_commit="abc",
        modalities={"rna": 4},
        not_a_number=float("nan"),
    )
    obs = pd.DataFrame(
        {"cell_type": labels, "batch": batches},
        index=pd.Index([f"cell{i}" for i in range(len(labels))], name="cell"),
    )
    write_run_record(run_dir, metrics, x, obs, modality_embeddings={"rna": x, "adt": x + 1})
    _overrides(run_dir, overrides)
    return metrics


def _overrides(run_dir: Path, overrides: list[str]) -> None:
    (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    (run_dir / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))


@pytest.fixture(scope="module")
def multirun(tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    """sweep/0..3: ok runs; sweep/4: failed (train.py's failure record); sweep/5: incomplete."""
    sweep = tmp_path_factory.mktemp("multirun") / "2024-01-01" / "12-00-00"
    written = {}
    job = 0
    for model in MODELS:
        for seed in (0, 1):
            run_dir = sweep / str(job)
            written[str(run_dir)] = fake_run(
                run_dir, model, seed, [f"model={model}", f"seed={seed}"]
            )
            job += 1
    plot_umap(
        sweep / "0", read_embedding(sweep / "0"), ad.read_h5ad(sweep / "0" / "embedding.h5ad").obs
    )
    failed = sweep / "4"
    _overrides(failed, ["model=umint", "seed=2"])
    (failed / "metrics.json").write_text(
        json.dumps(
            {
                "model": "umint",
                "data": "toy",
                "seed": 2,
                "status": "failed",
                "error": "RuntimeError: loss is NaN at epoch 3",
            }
        )
    )
    _overrides(sweep / "5", ["model=ae", "seed=2"])
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    return sweep.parent.parent, written


def read_embedding(run_dir: Path) -> np.ndarray:
    return ad.read_h5ad(run_dir / "embedding.h5ad").obsm["X_scmint"]


def test_run_record_contents(multirun):
    _, written = multirun
    run_dir = Path(next(iter(written)))
    metrics = read_metrics(run_dir)
    assert metrics["not_a_number"] is None  # NaN is not JSON: stored as null
    assert metrics["versions"] == {"torch": "x"} and metrics["status"] == "ok"
    assert metrics["ari_ward"] == pytest.approx(written[str(run_dir)]["ari_ward"])
    adata = ad.read_h5ad(run_dir / "embedding.h5ad")
    assert {"X_scmint", "X_scmint_rna", "X_scmint_adt"} <= set(adata.obsm)
    assert list(adata.obs.columns) == ["cell_type", "batch"] and adata.n_obs == 120
    assert not list(run_dir.glob(".*tmp*")), "temporary files left behind"


def test_plot_umap_writes_figure_and_coordinates(multirun):
    root, _ = multirun
    run_dir = next(root.rglob("0"))
    assert (run_dir / "umap.png").read_bytes()[:8] == PNG_MAGIC
    coords = pd.read_csv(run_dir / "umap.csv", index_col=0)
    assert list(coords.columns) == ["umap1", "umap2", "cell_type", "batch"]
    assert len(coords) == 120 and np.isfinite(coords[["umap1", "umap2"]].to_numpy()).all()


def test_plot_umap_subsamples(tmp_path):
    x = np.random.default_rng(0).normal(size=(300, 5))
    obs = pd.DataFrame(
        {"cell_type": np.repeat(["a", "b", "c"], 100)}, index=[f"c{i}" for i in range(300)]
    )
    plot_umap(tmp_path, x, obs, max_cells=100)
    coords = pd.read_csv(tmp_path / "umap.csv", index_col=0)
    assert len(coords) == 100 and set(coords.index) <= set(obs.index)


def test_report_tables_figures_and_failures(multirun, tmp_path):
    root, written = multirun
    report = build_report([root], tmp_path / "report")
    files = report.files
    for name in ("scores", "train_time", "umap_grid"):
        assert files[name].read_bytes()[:8] == PNG_MAGIC, name

    runs = pd.read_csv(files["runs"])
    assert runs["status"].value_counts().to_dict() == {"ok": 4, "failed": 1, "incomplete": 1}
    assert runs["run_dir"].str.endswith(tuple("012345")).all()

    tidy = pd.read_csv(files["tidy"])
    assert tidy["run_dir"].nunique() == 4
    assert set(
        tidy.groupby("run_dir")["metric"].apply(frozenset).map(lambda m: "ari_ward" in m)
    ) == {True}
    for run_dir, metrics in written.items():
        row = tidy[(tidy["run_dir"] == run_dir) & (tidy["metric"] == "ari_ward")]
        assert row["value"].item() == pytest.approx(metrics["ari_ward"])
    assert "not_a_number" not in set(tidy["metric"])  # null metrics have no row
    assert "seed" not in set(tidy["metric"])

    summary = pd.read_csv(files["summary"]).set_index(["dataset", "method", "metric"])
    umint = [m["ari_ward"] for m in written.values() if m["model"] == "umint"]
    entry = summary.loc[("toy", "umint", "ari_ward")]
    assert entry["n"] == 2
    assert entry["mean"] == pytest.approx(np.mean(umint))
    assert entry["sd"] == pytest.approx(np.std(umint, ddof=1))
    assert summary.loc[("toy", "umint", "train_time_s"), "mean"] == pytest.approx(10.5)

    markdown = files["markdown"].read_text()
    assert "### toy" in markdown
    assert "| method | n | ari_ward | ari_kmeans | ari_leiden | fmi_ward |" in markdown
    assert f"| umint | 2 | {np.mean(umint):.3f} ± {np.std(umint, ddof=1):.3f}" in markdown
    assert "loss is NaN at epoch 3" in markdown and "incomplete" in markdown
    assert "![scores](scores.png)" in markdown


def test_report_cli_lists_failures_and_exits_zero(multirun, tmp_path, capsys):
    root, _ = multirun
    assert main([str(root), "--out", str(tmp_path / "out"), "--no-umap"]) == 0
    printed = capsys.readouterr().out
    assert "failed:" in printed and "incomplete:" in printed
    assert not (tmp_path / "out" / "umap_grid.png").exists()


def test_report_of_nothing_is_an_error_not_a_crash(tmp_path, capsys):
    assert main([str(tmp_path), "--out", str(tmp_path / "out")]) == 1
    assert main([str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 1
    assert "not a directory" in capsys.readouterr().err


def test_swept_hyperparameters_become_methods(tmp_path):
    for job, (latent, seed) in enumerate([(32, 0), (32, 1), (64, 0)]):
        run_dir = tmp_path / "sweep" / str(job)
        run_dir.mkdir(parents=True)
        (run_dir / "metrics.json").write_text(
            json.dumps(
                {"model": "umint", "data": "toy", "seed": seed, "status": "ok", "ari_ward": 0.5}
            )
        )
        _overrides(
            run_dir,
            [
                "model=umint",
                f"model.latent_dim={latent}",
                f"seed={seed}",
                "trainer.accelerator=cpu",
            ],
        )
    report = build_report([tmp_path / "sweep"], tmp_path / "out", umap=False)
    assert sorted({r.method for r in report.runs}) == [
        "umint [model.latent_dim=32]",
        "umint [model.latent_dim=64]",
    ]
