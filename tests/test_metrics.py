"""evaluate_embedding on cases with known answers: perfect clustering, random labels, fully mixed
and fully separated batches, absent inputs, sub-sampling, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from scmint.metrics import GROUPS, EvaluationConfig, evaluate_embedding
from scmint.metrics.clustering import KEYS as CLUSTERING_KEYS

#: A small protocol: fewer Leiden resolutions keep each test at a fraction of a second.
FAST = {"leiden_resolutions": [0.2, 0.5, 1.0, 2.0], "kmeans_n_init": 3}


def blobs(n_per: int = 60, n_labels: int = 4, dim: int = 8, spread: float = 20.0, seed: int = 0):
    """Well-separated Gaussian blobs: the embedding of a perfect method."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, spread, (n_labels, dim))
    labels = np.repeat(np.arange(n_labels), n_per)
    x = centers[labels] + rng.normal(0, 1, (len(labels), dim))
    return x, np.array([f"type{i}" for i in labels], dtype=object)


def test_perfect_clustering_scores_one():
    x, labels = blobs()
    m = evaluate_embedding(x, labels, seed=0, config=FAST)
    for method in ("ward", "kmeans", "leiden"):
        assert m[f"ari_{method}"] == pytest.approx(1.0)
        assert m[f"fmi_{method}"] == pytest.approx(1.0)
        assert m[f"nmi_{method}"] == pytest.approx(1.0)
    assert m["n_clusters_leiden"] == 4 and m["n_clusters_ward"] == 4
    assert m["nmi_leiden_best"] == pytest.approx(1.0)
    assert m["silhouette_label"] > 0.8
    assert m["clisi"] == pytest.approx(1.0) and m["clisi_scaled"] == pytest.approx(1.0)
    assert m["knn_f1"] == pytest.approx(1.0)
    assert m["labels_absent"] is False and m["n_labels"] == 4


def test_random_labels_score_near_chance():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 8))
    labels = rng.choice(["a", "b", "c", "d"], size=400).astype(object)
    m = evaluate_embedding(x, labels, seed=0, config=FAST)
    for method in ("ward", "kmeans", "leiden"):
        assert abs(m[f"ari_{method}"]) < 0.05
    assert abs(m["silhouette_label"]) < 0.05
    assert m["knn_f1"] < 0.4  # 4 balanced classes: chance is 0.25
    assert m["clisi"] > 3.0  # neighbourhoods hold all 4 labels almost evenly
    assert m["clisi_scaled"] < 0.4


def test_fully_mixed_batches():
    x, labels = blobs(n_per=90, n_labels=3)
    batches = np.tile(["b0", "b1", "b2"], len(x) // 3).astype(object)  # independent of position
    m = evaluate_embedding(x, labels, batches, seed=0, config=FAST)
    assert m["silhouette_batch"] > 0.9
    assert m["ilisi"] > 2.5 and m["ilisi_scaled"] > 0.75
    assert m["graph_connectivity"] == pytest.approx(1.0)
    assert m["knn_f1_batch"] == pytest.approx(1.0)
    assert m["batches_absent"] is False and m["n_batches"] == 3


def test_fully_separated_batches():
    x, labels = blobs(n_per=80, n_labels=3)
    batches = np.tile(["b0", "b1"], len(x) // 2).astype(object)
    x = x + np.where(batches == "b1", 1000.0, 0.0)[:, None]  # each batch its own island
    m = evaluate_embedding(x, labels, batches, seed=0, config=FAST)
    assert m["silhouette_batch"] < 0.05
    assert m["ilisi"] == pytest.approx(1.0, abs=1e-3) and m["ilisi_scaled"] < 1e-3
    # Every label is split into two unconnected halves of equal size.
    assert m["graph_connectivity"] == pytest.approx(0.5)


def test_labels_absent_records_why_not_crash():
    x, _ = blobs()
    m = evaluate_embedding(x, None, seed=0, config=FAST)
    assert m["labels_absent"] is True
    assert all(m[key] is None for key in CLUSTERING_KEYS)
    assert m["silhouette_label"] is None and m["knn_f1"] is None
    assert m["batches_absent"] is True and m["silhouette_batch"] is None


def test_unknown_labels_are_left_out():
    x, labels = blobs()
    labels = labels.copy()
    labels[::10] = None
    m = evaluate_embedding(x, labels, seed=0, config=FAST)
    assert m["n_cells"] == len(x)
    assert m["n_cells_labelled"] == len(x) - len(x[::10])
    assert m["ari_kmeans"] == pytest.approx(1.0)


def test_batch_only_metrics_without_labels():
    x, _ = blobs()
    batches = np.tile(["b0", "b1"], len(x) // 2).astype(object)
    m = evaluate_embedding(x, None, batches, seed=0, config=FAST)
    assert m["ilisi"] is not None  # iLISI needs no labels
    assert m["silhouette_batch"] is None and m["graph_connectivity"] is None


def test_modality_and_reconstruction_groups():
    x, labels = blobs()
    rng = np.random.default_rng(0)
    inputs = {"rna": rng.normal(size=(len(x), 30)), "adt": rng.normal(size=(len(x), 5))}
    recon = {"rna": inputs["rna"], "adt": inputs["adt"] * 2.0}  # distances up to scale: r = 1
    m = evaluate_embedding(
        x,
        labels,
        modality_embeddings={"rna": x, "adt": x + 0.01},
        inputs=inputs,
        reconstructions=recon,
        seed=0,
        config=FAST,
    )
    assert m["foscttm"] == pytest.approx(0.0)
    assert abs(m["silhouette_modality"]) < 0.05
    assert m["recon_pearson_rna"] == pytest.approx(1.0)
    assert m["recon_pearson_adt"] == pytest.approx(1.0)
    assert m["ors"] == pytest.approx(1.0)
    assert m["modality_embeddings_absent"] is False and m["reconstruction_absent"] is False


def test_absent_modality_inputs_are_recorded():
    x, labels = blobs()
    m = evaluate_embedding(x, labels, seed=0, config=FAST)
    assert m["modality_embeddings_absent"] is True and m["silhouette_modality"] is None
    assert m["reconstruction_absent"] is True and m["ors"] is None


def test_subsampling_is_recorded():
    x, labels = blobs(n_per=50)
    rng = np.random.default_rng(0)
    inputs = {"rna": rng.normal(size=(len(x), 10))}
    config = {
        **FAST,
        "ward_max_cells": 60,
        "silhouette_max_cells": 70,
        "modality_max_cells": 80,
        "reconstruction_max_cells": 90,
    }
    m = evaluate_embedding(
        x,
        labels,
        modality_embeddings={"a": x, "b": x},
        inputs=inputs,
        reconstructions=inputs,
        seed=0,
        config=config,
    )
    assert (m["ward_subsampled_n"], m["silhouette_subsampled_n"]) == (60, 70)
    assert (m["modality_subsampled_n"], m["ors_subsampled_n"]) == (80, 90)
    assert m["ari_ward"] == pytest.approx(1.0)
    full = evaluate_embedding(x, labels, seed=0, config=FAST)
    assert full["ward_subsampled_n"] is None and full["silhouette_subsampled_n"] is None


def test_same_seed_same_numbers_and_groups_are_independent():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 6))
    labels = rng.choice(list("abcde"), size=300).astype(object)
    batches = rng.choice(["x", "y"], size=300).astype(object)
    config = {**FAST, "ward_max_cells": 100}
    first = evaluate_embedding(x, labels, batches, seed=7, config=config)
    second = evaluate_embedding(x, labels, batches, seed=7, config=config)
    first.pop("eval_time_s"), second.pop("eval_time_s")
    assert first == second
    only = evaluate_embedding(
        x, labels, batches, seed=7, config={**config, "groups": ["clustering"]}
    )
    assert only["ari_ward"] == first["ari_ward"] and only["ari_leiden"] == first["ari_leiden"]
    assert "silhouette_label" not in only and "knn_f1" not in only


def test_leiden_search_reaches_k_outside_the_grid():
    x, labels = blobs(n_per=30, n_labels=8, spread=3.0)
    # A grid far too coarse for 8 clusters: the search must double its way up to them.
    m = evaluate_embedding(
        x,
        labels,
        seed=0,
        config={"groups": ["clustering"], "leiden_resolutions": [0.01], "leiden_search_steps": 12},
    )
    assert m["n_clusters_leiden_best"] < 8
    assert m["n_clusters_leiden"] == 8
    assert m["leiden_resolution"] > 0.01


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match="evaluation: unknown option"):
        EvaluationConfig.from_any({"leiden_resoluton": [1.0]})
    with pytest.raises(ValueError, match=r"evaluation\.groups"):
        EvaluationConfig.from_any({"groups": ["clustering", "vibes"]})
    with pytest.raises(ValueError, match=r"evaluation\.ward_max_cells"):
        EvaluationConfig.from_any({"ward_max_cells": 0})
    assert EvaluationConfig.from_any(None).groups == GROUPS


def test_bad_inputs_are_named():
    x, labels = blobs()
    with pytest.raises(ValueError, match="labels has 10 entries"):
        evaluate_embedding(x, labels[:10])
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        evaluate_embedding(bad, labels)
    batches = np.array(["a"] * len(x), dtype=object)
    batches[3] = None
    with pytest.raises(ValueError, match="batches has 1 missing"):
        evaluate_embedding(x, labels, batches)
