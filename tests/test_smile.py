"""SMILE, pSMILE, mpSMILE: layout and parameter counts, training steps, embeddings, data checks."""

from __future__ import annotations

import logging
from functools import partial

import pytest
import torch

from conftest import compose_config
from scmint.data.spec import DataSpec
from scmint.models import MPSMILE, PSMILE, SMILE, DataMismatchError
from scmint.nn.encoders import MLPEncoder
from scmint.nn.heads import ClusterHead, ContrastiveHeads, ProjectionHead
from scmint.train import train

SGD = partial(torch.optim.SGD, lr=0.01, momentum=0.9, weight_decay=5e-4)


def one_modality(d: int = 20) -> DataSpec:
    return DataSpec(modalities={"rna": d}, n_cells=600, n_batches=2)


def paired(d_rna: int = 20, d_atac: int = 12) -> DataSpec:
    return DataSpec(
        modalities={"atac": d_atac, "rna": d_rna}, n_cells=600, paired=True, fully_paired=True
    )


def make_batch(spec: DataSpec, n: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "x": {m: torch.randn(n, d, generator=g) for m, d in spec.modalities.items()},
        "mask": {m: torch.ones(n, dtype=torch.bool) for m in spec.modalities},
        "index": torch.arange(n),
        "label": torch.zeros(n, dtype=torch.long),
        "batch": torch.zeros(n, dtype=torch.long),
    }


METHODS = [(SMILE, one_modality), (PSMILE, paired), (MPSMILE, paired)]


# ---- layout ----------------------------------------------------------------------------------
def test_head_shapes():
    z = torch.randn(6, 128)
    assert ProjectionHead(128, 32)(z).shape == (6, 32)
    p = ClusterHead(128, 25)(z)
    assert p.shape == (6, 25)
    torch.testing.assert_close(p.sum(dim=1), torch.ones(6))
    assert (p > 0).all()
    f, p = ContrastiveHeads(128, 32, 25)(z)
    assert f.shape == (6, 32) and p.shape == (6, 25)


def test_encoder_layout_and_init():
    enc = MLPEncoder(219, (1000, 512), 128)
    kinds = [type(layer).__name__ for layer in enc.net]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU"] * 3
    assert [layer.out_features for layer in enc.net if isinstance(layer, torch.nn.Linear)] == [
        1000,
        512,
        128,
    ]
    assert all((layer.bias == 0).all() for layer in enc.net if isinstance(layer, torch.nn.Linear))
    z = enc(torch.randn(9, 219))
    assert z.shape == (9, 128) and (z >= 0).all()  # the embedding comes after the last ReLU


def test_parameter_counts_match_the_authors_networks():
    # the authors' SMILE on pancreas_xin_wang (219 genes, K 25) and mpSMILE on
    # snare_cellline_1047 (500 genes + 19 ATAC features) have 808,809 and 1,691,265 parameters
    assert SMILE(one_modality(219), SGD).n_params == 808_809
    assert MPSMILE(paired(500, 19), SGD).n_params == 1_691_265
    assert PSMILE(paired(500, 19), SGD).n_params == 1_691_265


# ---- training steps ---------------------------------------------------------------------------
@pytest.mark.parametrize(("method", "spec_of"), METHODS)
@pytest.mark.parametrize("batch_size", [2, 7, 512])
def test_training_step_on_cpu(method, spec_of, batch_size):
    torch.manual_seed(0)
    spec = spec_of()
    model = method(spec, SGD)
    model.train()
    optimizer = model.configure_optimizers()
    before = [p.detach().clone() for p in model.parameters()]
    parts = model.loss(make_batch(spec, batch_size))
    total = torch.stack(list(parts.values())).sum()
    assert torch.isfinite(total)
    optimizer.zero_grad()
    total.backward()
    optimizer.step()
    changed = [not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True)]
    assert all(changed), "every parameter (encoders and both heads) should receive a gradient"


def test_loss_parts_of_each_method():
    spec = paired()
    assert set(SMILE(one_modality(), SGD).loss(make_batch(one_modality(), 8))) == {
        "nt_xent_self",
        "cluster_self",
    }
    assert set(PSMILE(spec, SGD).loss(make_batch(spec, 8))) == {"nt_xent_pair", "cluster_pair"}
    assert set(MPSMILE(spec, SGD).loss(make_batch(spec, 8))) == {
        "nt_xent_pair",
        "cluster_pair",
        "nt_xent_self",
        "cluster_self",
    }
    parts = PSMILE(spec, SGD, mse_weight=0.5).loss(make_batch(spec, 8))
    assert parts["mse_pair"] > 0


def test_noise_comes_from_the_global_rng():
    spec = one_modality()
    model = SMILE(spec, SGD)
    batch = make_batch(spec, 16)
    torch.manual_seed(5)
    first = model.loss(batch)["nt_xent_self"]
    torch.manual_seed(5)
    again = model.loss(batch)["nt_xent_self"]
    other = model.loss(batch)["nt_xent_self"]
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_one_cell_batches_are_refused_clearly():
    spec = one_modality()
    model = SMILE(spec, SGD).train()
    with pytest.raises(ValueError, match=r"at least 2 cells per training batch.*data\.batch_size"):
        model.loss(make_batch(spec, 1))


# ---- embeddings -------------------------------------------------------------------------------
@pytest.mark.parametrize(("method", "spec_of"), METHODS)
def test_eval_mode_embedding_is_deterministic(method, spec_of):
    torch.manual_seed(0)
    spec = spec_of()
    model = method(spec, SGD)
    batch = make_batch(spec, 32)
    model.train()
    model.loss(batch)  # moves BatchNorm running statistics away from their initial values
    model.eval()
    with torch.no_grad():
        first, again = model.embed(batch), model.embed(batch)
        head = model.embed({**batch, "x": {m: x[:5] for m, x in batch["x"].items()}})
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    # running statistics, not batch statistics: a cell's embedding does not depend on its batch
    torch.testing.assert_close(head, first[:5])
    assert first.shape == (32, 128)


@pytest.mark.parametrize("method", [PSMILE, MPSMILE])
def test_paired_embeddings_are_normalised_and_averaged(method):
    spec = paired()
    model = method(spec, SGD).eval()
    batch = make_batch(spec, 10)
    with torch.no_grad():
        out = model.predict_step(batch)
    per_modality = out["modality_embeddings"]
    assert set(per_modality) == {"rna", "atac"}
    for emb in per_modality.values():
        torch.testing.assert_close(emb.norm(dim=1), torch.ones(10))
    torch.testing.assert_close(out["embedding"], (per_modality["rna"] + per_modality["atac"]) / 2)


def test_smile_has_no_modality_embeddings():
    model = SMILE(one_modality(), SGD).eval()
    assert "modality_embeddings" not in model.predict_step(make_batch(one_modality(), 4))


# ---- what each method accepts ------------------------------------------------------------------
def test_anchor_defaults_to_the_rna_like_modality():
    assert MPSMILE(paired(), SGD).anchor == "rna"  # rna is listed second in the spec
    assert MPSMILE(paired(), SGD, anchor="atac").anchor == "atac"
    with pytest.raises(ValueError, match=r"model.anchor='adt'.*\['atac', 'rna'\]"):
        MPSMILE(paired(), SGD, anchor="adt")


def test_smile_refuses_more_than_one_modality():
    with pytest.raises(DataMismatchError, match=r"smile takes at most 1 .*data.modalities"):
        SMILE(paired(), SGD)


@pytest.mark.parametrize("method", [PSMILE, MPSMILE])
def test_paired_methods_refuse_a_single_modality(method):
    with pytest.raises(DataMismatchError, match=r"needs at least 2 modalities .* \(rna\)"):
        method(one_modality(), SGD)


@pytest.mark.parametrize("method", [PSMILE, MPSMILE])
def test_paired_methods_refuse_unpaired_data(method):
    unpaired = DataSpec(modalities={"rna": 10, "atac": 8}, n_cells=100, paired=False)
    with pytest.raises(DataMismatchError, match="paired"):
        method(unpaired, SGD)
    partly = DataSpec(
        modalities={"rna": 10, "atac": 8}, n_cells=100, paired=True, fully_paired=False
    )
    with pytest.raises(DataMismatchError, match="every cell measured in every modality"):
        method(partly, SGD)


def test_paired_methods_point_three_modalities_to_the_teacher():
    three = DataSpec(
        modalities={"rna": 10, "adt": 5, "atac": 8}, n_cells=100, paired=True, fully_paired=True
    )
    with pytest.raises(DataMismatchError, match="experiment=smile_teacher"):
        MPSMILE(three, SGD)


def test_bad_hyperparameters_name_their_key():
    with pytest.raises(ValueError, match=r"model\.noise_sigma"):
        SMILE(one_modality(), SGD, noise_sigma=-1)
    with pytest.raises(ValueError, match=r"model\.tau_feature"):
        SMILE(one_modality(), SGD, tau_feature=0)
    with pytest.raises(ValueError, match=r"model\.mse_weight"):
        PSMILE(paired(), SGD, mse_weight=-0.1)


# ---- configs and the training entry point -------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "epochs", "target"),
    [("smile", 5, "SMILE"), ("psmile", 20, "PSMILE"), ("mpsmile", 20, "MPSMILE")],
)
def test_model_configs_set_the_reference_protocol(model, epochs, target, tmp_path):
    cfg = compose_config([f"model={model}"], tmp_path)
    assert cfg.model._target_ == f"scmint.models.{target}"
    assert cfg.data.batch_size == 512 and cfg.data.drop_last and cfg.data.val_fraction == 0
    assert cfg.trainer.max_epochs == epochs
    assert cfg.model.optimizer.lr == 0.01 and cfg.model.optimizer.momentum == 0.9


TINY_RUN = (
    "data.source.n_genes=60",
    "++data.source.n_peaks=80",
    "++data.source.n_proteins=8",
    "trainer.max_epochs=2",
    "~callbacks.progress_bar",
    "trainer.enable_progress_bar=false",
    "logger=none",
    "evaluate=false",
)


def test_fewer_cells_than_the_batch_size_train_in_one_batch(tmp_path, caplog):
    # 40 cells, batch 512 with drop_last: one batch of all 40 per epoch, and a log line says so
    cfg = compose_config(
        [
            "model=smile",
            "data=synthetic_cite",
            "data.modalities=[rna]",
            "data.source.n_cells=40",
            *TINY_RUN,
        ],
        tmp_path,
    )
    with caplog.at_level(logging.WARNING):
        metrics = train(cfg)
    assert metrics["status"] == "ok"
    assert metrics["global_steps"] == 2  # 2 epochs x 1 batch
    assert metrics["modalities"] == {"rna": 60}
    assert any("training on one batch of all of them" in r.getMessage() for r in caplog.records)


def test_mpsmile_trains_end_to_end_and_reports_modality_mixing(tmp_path):
    cfg = compose_config(
        ["model=mpsmile", "data=synthetic_multiome", "data.source.n_cells=120", *TINY_RUN[:-1]],
        tmp_path,
    )
    metrics = train(cfg)
    assert metrics["status"] == "ok" and metrics["model"] == "mpsmile"
    assert metrics["silhouette_modality"] is not None
