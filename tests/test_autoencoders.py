"""AE, DAE and SAE (the UMINT paper's baselines) built from a DataSpec."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from scmint.data.spec import DataSpec
from scmint.models import AE, DAE, SAE
from scmint.models.base import DataMismatchError

ADAM = functools.partial(torch.optim.Adam, lr=1e-3, eps=1e-7)
DIMS = {"rna": 12, "adt": 4, "atac": 7}
SPEC = DataSpec(modalities=DIMS, n_cells=20, paired=True, fully_paired=True)


def batch_of(n: int = 6, seed: int = 0, index: torch.Tensor | None = None) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "x": {m: torch.randn(n, d, generator=g) for m, d in DIMS.items()},
        "mask": {m: torch.ones(n, dtype=torch.bool) for m in DIMS},
        "index": torch.arange(n) if index is None else index,
    }


@pytest.mark.parametrize("cls", [AE, DAE, SAE])
def test_one_stream_shapes_and_per_modality_split(cls):
    model = cls(SPEC, ADAM, latent_dim=5, hidden_dim=9)
    batch = batch_of()
    assert model.hidden_layers == [model.encoder1, model.encoder2, model.decoder1]  # output free
    assert model.encoder1.kernel.shape == (9, sum(DIMS.values()))
    embedding = model.embed(batch)
    assert embedding.shape == (6, 5) and (embedding >= 0).all()
    recon = model.reconstruct(batch)
    assert list(recon) == list(DIMS)
    assert {m: r.shape for m, r in recon.items()} == {m: (6, d) for m, d in DIMS.items()}
    # the split is the output layer's columns, in modality order
    _, full, activations = model(batch["x"])
    assert len(activations) == 3
    assert torch.equal(
        torch.cat(list(full.values()), dim=1), model.decoder2(model.decoder1(embedding))
    )


def test_ae_loss_parts_and_one_mse_over_all_features():
    model = AE(SPEC, ADAM, latent_dim=5, hidden_dim=9)
    batch = batch_of()
    parts = model.loss(batch)
    assert set(parts) == {"mse", "l1_activity", "l2_kernel"}
    recon = model.reconstruct(batch)
    per_modality = {m: (recon[m] - batch["x"][m]).pow(2).mean() for m in DIMS}
    # one MSE over the concatenation = per-modality MSEs weighted by feature counts
    expected = sum(DIMS[m] * per_modality[m] for m in DIMS) / sum(DIMS.values())
    assert parts["mse"].item() == pytest.approx(expected.item(), rel=1e-6)
    kernels = [model.encoder1.kernel, model.encoder2.kernel, model.decoder1.kernel]
    assert parts["l2_kernel"].item() == pytest.approx(
        1e-3 * sum(w.pow(2).sum().item() for w in kernels), rel=1e-6
    )


def test_ae_needs_every_modality_in_every_cell():
    partial = DataSpec(modalities=DIMS, n_cells=20, paired=True, fully_paired=False)
    with pytest.raises(DataMismatchError, match="model=umint"):
        AE(partial, ADAM)


def test_ae_and_dae_start_from_the_same_weights_for_the_same_seed():
    torch.manual_seed(5)
    ae = AE(SPEC, ADAM, hidden_dim=9)
    torch.manual_seed(5)
    dae = DAE(SPEC, ADAM, hidden_dim=9)
    assert all(torch.equal(a, b) for a, b in zip(ae.parameters(), dae.parameters(), strict=True))


def test_dae_per_batch_noise_is_fresh_small_and_targets_stay_clean():
    model = DAE(SPEC, ADAM, hidden_dim=9, noise_std=0.01, noise="per_batch")
    batch = batch_of(n=200)
    first, second = model.corrupt(batch), model.corrupt(batch)
    noise = torch.cat([first[m] - batch["x"][m] for m in DIMS], dim=1)
    assert noise.std().item() == pytest.approx(0.01, rel=0.05)
    assert not torch.equal(first["rna"], second["rna"])
    model.train()
    model.corrupt = lambda b: {m: torch.zeros_like(v) for m, v in b["x"].items()}  # all-zero input
    recon = model.reconstruct({"x": {m: torch.zeros_like(v) for m, v in batch["x"].items()}})
    target = torch.cat([batch["x"][m] for m in DIMS], dim=1)
    expected = (torch.cat(list(recon.values()), dim=1) - target).pow(2).mean()
    assert model.loss(batch)["mse"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_dae_sees_clean_inputs_outside_training():
    torch.manual_seed(0)
    ae = AE(SPEC, ADAM, hidden_dim=9)
    torch.manual_seed(0)
    dae = DAE(SPEC, ADAM, hidden_dim=9, noise_std=1.0)
    batch = batch_of()
    dae.eval()
    assert dae.loss(batch)["mse"].item() == pytest.approx(ae.loss(batch)["mse"].item())
    dae.train()
    assert dae.loss(batch)["mse"].item() != pytest.approx(ae.loss(batch)["mse"].item())


def test_dae_fixed_noise_is_per_cell_reproducible_and_survives_a_checkpoint():
    torch.manual_seed(1)
    model = DAE(SPEC, ADAM, hidden_dim=9, noise="fixed")
    batch = batch_of(n=4, index=torch.tensor([3, 7, 11, 2]))
    noisy = model.corrupt(batch)
    assert torch.equal(noisy["adt"], model.corrupt(batch)["adt"])  # drawn once, reused every epoch
    # the noise belongs to the cell, not to its place in the batch
    shuffled = {"x": {m: v.flip(0) for m, v in batch["x"].items()}, "index": batch["index"].flip(0)}
    assert torch.equal(model.corrupt(shuffled)["rna"], noisy["rna"].flip(0))
    # same seed -> same noise; another seed -> other noise
    torch.manual_seed(1)
    assert torch.equal(
        DAE(SPEC, ADAM, hidden_dim=9, noise="fixed").corrupt(batch)["rna"], noisy["rna"]
    )
    torch.manual_seed(2)
    other = DAE(SPEC, ADAM, hidden_dim=9, noise="fixed")
    assert not torch.equal(other.corrupt(batch)["rna"], noisy["rna"])
    # resuming = loading the checkpoint's state into a freshly built model: the noise comes back
    other.load_state_dict(model.state_dict())
    assert torch.equal(other.corrupt(batch)["rna"], noisy["rna"])


def test_dae_rejects_an_unknown_noise_mode():
    with pytest.raises(ValueError, match=r"model\.noise"):
        DAE(SPEC, ADAM, noise="per_epoch")


def shrink_activations(model: SAE) -> None:
    """Keep every hidden layer's mean activation inside (0, 0.99), where both KL forms are defined."""
    with torch.no_grad():
        for layer in model.hidden_layers:
            layer.linear.weight.mul_(0.1)
            layer.linear.bias.fill_(0.05)


def test_sae_replaces_l1_by_the_kl_penalty_on_three_layers():
    model = SAE(SPEC, ADAM, latent_dim=5, hidden_dim=9, sparsity_target=0.01, sparsity_weight=3.0)
    batch = batch_of()
    shrink_activations(model)
    parts = model.loss(batch)
    assert set(parts) == {"mse", "kl_sparsity", "l2_kernel"}
    _, _, activations = model(batch["x"])
    rho = 0.01
    expected = 0.0
    for a in activations:  # KL of the whole-matrix mean, divided by the batch size
        q = a.mean().item()
        expected += (rho * math.log(rho / q) + (1 - rho) * math.log((1 - rho) / (1 - q))) / 6
    assert parts["kl_sparsity"].item() == pytest.approx(3.0 * expected, rel=1e-5)


def test_sae_legacy_kl_follows_the_authors_expression():
    model = SAE(SPEC, ADAM, latent_dim=5, hidden_dim=9, legacy_kl=True)
    batch = batch_of()
    shrink_activations(model)
    _, _, activations = model(batch["x"])
    p = 0.01
    expected = sum(
        (p * math.log(p / a.mean().item()) + (1 - p) * math.log(1 - p / 1 - a.mean().item())) / 6
        for a in activations
    )
    assert model.loss(batch)["kl_sparsity"].item() == pytest.approx(3.0 * expected, rel=1e-5)


@pytest.mark.slow
def test_dae_fixed_noise_run_resumes_to_the_uninterrupted_embedding(tmp_path):
    """Through Lightning's checkpoint: train 2 epochs, resume to 4, compare with 4 straight."""
    import anndata as ad

    from conftest import TINY, compose_config
    from scmint.train import train

    base = [
        *TINY,
        "model=dae",
        "model.noise=fixed",
        "data.batch_size=64",
        "evaluate=false",
        "seed=3",
    ]
    train(compose_config([*base, "trainer.max_epochs=4"], tmp_path / "straight"))
    train(compose_config([*base, "trainer.max_epochs=2"], tmp_path / "resumed"))
    train(compose_config([*base, "trainer.max_epochs=4", "ckpt_path=last"], tmp_path / "resumed"))
    embedding = lambda d: ad.read_h5ad(tmp_path / d / "embedding.h5ad").obsm["X_scmint"]  # noqa: E731
    assert (embedding("resumed") == embedding("straight")).all()
