"""The comparison methods (WNN, MOFA+, totalVI, Harmony, LIGER, Scanorama) on small synthetic data.

Each adapter runs through ``scmint.train.train`` and must leave a normal run record. Adapters whose
package is not installed skip with the reason; the fast ones (Harmony, Scanorama, and the checks
that import no package) run in the default suite, the rest are marked slow: muon's WNN spends
minutes compiling numba code on every call, and scvi-tools, pyliger and mofapy2 take tens of
seconds to import and fit even on 300 cells.
"""

from __future__ import annotations

import json
import sys

import anndata as ad
import numpy as np
import pytest
from hydra.utils import get_class

from conftest import compose_config
from scmint.data.spec import DataSpec
from scmint.models.base import DataMismatchError
from scmint.models.baselines import (
    LIGER,
    MOFA,
    WNN,
    Baseline,
    Harmony,
    MissingPackageError,
    Scanorama,
    TotalVI,
)
from scmint.models.baselines.inputs import correction_rows
from scmint.train import build_datamodule, train

BASELINES = {
    "wnn": "muon",
    "mofa": "mofapy2",
    "totalvi": "scvi",
    "harmony": "harmonypy",
    "liger": "pyliger",
    "scanorama": "scanorama",
}

#: Tiny synthetic data and a coarse Leiden grid: seconds per run (the data of conftest.TINY).
SMALL = (
    "data.source.n_cells=300",
    "data.source.n_genes=200",
    "logger=none",
    "evaluation.leiden_resolutions=[0.5,1.0]",
    "evaluation.leiden_search_steps=2",
)
#: Synthetic CITE-seq in two batches (paired methods and batch correction on paired data).
CITE_2_BATCHES = (*SMALL, "data=synthetic_cite", "data.source.n_batches=2")
#: Synthetic single-modality scRNA in three batches (horizontal integration).
BATCHES = (*SMALL, "data=synthetic_batches")


def needs(model: str) -> None:
    pytest.importorskip(
        BASELINES[model],
        reason=f"model={model} needs {BASELINES[model]}: pip install 'scmint[baselines]'",
    )


def run(tmp_path, model: str, *overrides: str) -> dict:
    """Train ``model`` and return its metrics.json (checking the record is complete)."""
    cfg = compose_config([f"model={model}", *overrides], tmp_path)
    metrics = train(cfg)
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["status"] == "ok"
    assert record["model"] == model
    assert record["ari_kmeans"] == metrics["ari_kmeans"]
    embedding = ad.read_h5ad(tmp_path / "embedding.h5ad")
    assert embedding.n_obs == record["n_cells"] == metrics["n_cells"]
    assert np.isfinite(embedding.obsm["X_scmint"]).all()
    assert set(record["baseline_versions"]) == set(get_class(cfg.model._target_).packages)
    assert "absent" not in record["baseline_versions"].values()
    return record


# ---- no package needed --------------------------------------------------------------------------
@pytest.mark.parametrize("model", sorted(BASELINES))
def test_config_composes_to_a_baseline_with_its_package(model, tmp_path):
    cfg = compose_config([f"model={model}"], tmp_path)
    cls = get_class(cfg.model._target_)
    assert issubclass(cls, Baseline)
    assert cls.method_name == model
    assert cls.packages  # its version goes into the run record
    assert cfg.model.seed == cfg.seed  # seeded by the run's seed


def test_missing_package_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "harmonypy", None)  # makes `import harmonypy` fail
    cfg = compose_config(["model=harmony", *BATCHES], tmp_path)
    with pytest.raises(MissingPackageError, match=r"pip install 'scmint\[baselines\]'"):
        train(cfg)


RNA = {"rna": 100}
CITE = {"rna": 100, "adt": 10}
MULTIOME = {"rna": 100, "atac": 50}


@pytest.mark.parametrize(
    ("cls", "spec", "message"),
    [
        (WNN, DataSpec(RNA, 50), "at least 2 modalities"),
        (MOFA, DataSpec(RNA, 50), "at least 2 modalities"),
        (TotalVI, DataSpec(MULTIOME, 50, paired=True, fully_paired=True), "one ADT modality"),
        (TotalVI, DataSpec(CITE, 50, paired=True, fully_paired=False), "every cell"),
        (Harmony, DataSpec(RNA, 50, n_batches=1), "one batch"),
        (Scanorama, DataSpec(RNA, 50, n_batches=1), "one batch"),
        (LIGER, DataSpec(RNA, 50, n_batches=1), "one batch"),
        (
            LIGER,
            DataSpec({"adt": 10, "atac": 50}, 50, paired=True, n_batches=2),
            "one RNA modality",
        ),
    ],
)
def test_data_the_method_cannot_use_fails_before_fitting(cls, spec, message):
    with pytest.raises(DataMismatchError, match=message):
        cls(spec)


def test_paired_data_with_one_batch_needs_the_modalities_mode():
    spec = DataSpec(CITE, 50, paired=True, fully_paired=True, n_batches=1)
    with pytest.raises(DataMismatchError, match="paired_mode=modalities"):
        Harmony(spec, paired_mode="concat")
    with pytest.raises(ValueError, match="paired_mode must be one of"):
        Scanorama(spec, paired_mode="stack")


def test_correction_rows_stack_modalities_or_put_them_side_by_side(tmp_path):
    datamodule = build_datamodule(compose_config(CITE_2_BATCHES, tmp_path))
    n = datamodule.spec.n_cells
    stacked = correction_rows(datamodule, "modalities", n_pcs=50, seed=0)
    k = min(50, datamodule.spec.modalities["adt"] - 1)  # the smaller modality bounds the PCs
    assert stacked.x.shape == (2 * n, k)
    assert stacked.modalities == ("rna", "adt")
    assert set(stacked.groups[:n]) == {"rna/batch_0", "rna/batch_1"}
    assert set(stacked.groups[n:]) == {"adt/batch_0", "adt/batch_1"}
    out = stacked.embeddings(stacked.x)
    np.testing.assert_allclose(out.modality_embeddings["adt"], stacked.x[n:], rtol=1e-6)
    np.testing.assert_allclose(out.embedding, (stacked.x[:n] + stacked.x[n:]) / 2, rtol=1e-5)

    side_by_side = correction_rows(datamodule, "concat", n_pcs=50, seed=0)
    assert side_by_side.x.shape == (n, 50)
    np.testing.assert_array_equal(side_by_side.groups, datamodule.batches().astype(str))
    assert not side_by_side.embeddings(side_by_side.x).modality_embeddings


# ---- fast adapters ------------------------------------------------------------------------------
def test_harmony_corrects_batches_and_writes_a_run_record(tmp_path):
    needs("harmony")
    record = run(tmp_path, "harmony", *BATCHES)
    assert record["correction_groups"] == 3
    assert record["ilisi"] is not None and record["silhouette_batch"] is not None
    assert record["ari_kmeans"] > 0.5  # the simulated types survive the correction


def test_harmony_aligns_paired_modalities_as_groups(tmp_path):
    needs("harmony")
    record = run(tmp_path, "harmony", *SMALL, "data=synthetic_cite", "model.paired_mode=modalities")
    assert record["correction_groups"] == 2  # rna, adt (one batch)
    assert record["silhouette_modality"] is not None  # scored like mpSMILE's two embeddings
    stored = ad.read_h5ad(tmp_path / "embedding.h5ad").obsm
    mean = (stored["X_scmint_rna"] + stored["X_scmint_adt"]) / 2
    np.testing.assert_allclose(stored["X_scmint"], mean, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("model", ["harmony", pytest.param("scanorama", marks=pytest.mark.slow)])
def test_same_seed_same_embedding(model, tmp_path):
    needs(model)
    datamodule = build_datamodule(compose_config(BATCHES, tmp_path))
    cfg = compose_config([f"model={model}"], tmp_path)
    make = lambda: get_class(cfg.model._target_)(datamodule.spec, seed=3)  # noqa: E731
    first, second = make().fit_embed(datamodule), make().fit_embed(datamodule)
    np.testing.assert_array_equal(first.embedding, second.embedding)


def test_scanorama_writes_a_run_record(tmp_path):
    needs("scanorama")
    record = run(tmp_path, "scanorama", *BATCHES)
    assert record["correction_groups"] == 3
    assert record["embedding_dim"] == 50


# ---- slow adapters ------------------------------------------------------------------------------
@pytest.mark.slow
def test_wnn_embeds_the_graph_in_k_spectral_dimensions(tmp_path):
    needs("wnn")
    record = run(tmp_path, "wnn", *CITE_2_BATCHES)
    assert record["spectral_components"] == record["n_labels"] == record["embedding_dim"]
    assert set(record["wnn_mean_modality_weight"]) == {"rna", "adt"}
    assert record["ari_kmeans"] > 0.5


@pytest.mark.slow
def test_mofa_embeds_the_factors(tmp_path):
    needs("mofa")
    record = run(tmp_path, "mofa", *CITE_2_BATCHES)
    assert record["embedding_dim"] == record["mofa_factors"] == 10  # mofapy2's default factors
    assert record["ari_kmeans"] > 0.5


@pytest.mark.slow
def test_totalvi_trains_on_counts(tmp_path):
    needs("totalvi")
    record = run(tmp_path, "totalvi", *CITE_2_BATCHES, "+model.train_options.max_epochs=3")
    assert record["totalvi_epochs"] == 3
    assert record["n_params"] > 0
    assert record["embedding_dim"] == 20  # scvi-tools' default latent size


@pytest.mark.slow
def test_totalvi_refuses_values_that_are_not_counts(tmp_path, monkeypatch):
    needs("totalvi")
    datamodule = build_datamodule(compose_config(CITE_2_BATCHES, tmp_path))
    raw = datamodule.source.load()
    raw.mod["adt"].X = -raw.mod["adt"].X.toarray()
    monkeypatch.setattr(datamodule.source, "load", lambda: raw)
    with pytest.raises(DataMismatchError, match="non-negative"):
        TotalVI(datamodule.spec).fit_embed(datamodule)


@pytest.mark.slow
def test_liger_integrates_the_batches(tmp_path):
    needs("liger")
    record = run(tmp_path, "liger", *BATCHES)
    assert record["embedding_dim"] == 20  # k
    assert 0 < record["liger_genes"] <= 200
    assert record["ilisi"] is not None
