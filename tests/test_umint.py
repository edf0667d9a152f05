"""UMINT built from a DataSpec: shapes, loss parts, hand-computed loss, init, parameter counts."""

from __future__ import annotations

import functools

import hydra
import pytest
import torch

from conftest import compose_config
from scmint.data.spec import DataSpec
from scmint.models import AE, UMINT
from scmint.models.base import DataMismatchError

ADAM = functools.partial(torch.optim.Adam, lr=1e-3, eps=1e-7)


def spec_of(n_cells: int = 12, fully_paired: bool = True, **dims: int) -> DataSpec:
    return DataSpec(modalities=dims, n_cells=n_cells, paired=True, fully_paired=fully_paired)


def batch_of(spec: DataSpec, n: int = 5, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "x": {m: torch.randn(n, d, generator=g) for m, d in spec.modalities.items()},
        "mask": {m: torch.ones(n, dtype=torch.bool) for m in spec.modalities},
        "index": torch.arange(n),
    }


@pytest.mark.parametrize(
    "dims, widths",
    [
        ({"rna": 30, "adt": 6}, {"rna": 8, "adt": 3}),
        ({"rna": 30, "adt": 6, "atac": 20}, {"rna": 8, "adt": 3, "atac": 5}),
    ],
    ids=["2 modalities", "3 modalities"],
)
def test_shapes_parts_and_activations(dims, widths):
    spec = spec_of(**dims)
    model = UMINT(spec, ADAM, latent_dim=4, hidden=widths)
    batch = batch_of(spec)

    embedding = model.embed(batch)
    assert embedding.shape == (5, 4) and (embedding >= 0).all()  # ReLU latent
    recon = model.reconstruct(batch)
    assert {m: r.shape for m, r in recon.items()} == {m: (5, d) for m, d in dims.items()}

    latent, _, activations = model(batch["x"])
    assert len(activations) == 2 * len(dims) + 1  # n encoders, bottleneck, n decoder hiddens
    assert len(model.hidden_layers) == 2 * len(dims) + 1
    assert torch.equal(latent, embedding)

    parts = model.loss(batch)
    assert set(parts) == {*(f"mse_{m}" for m in dims), "l1_activity", "l2_kernel"}
    assert all(p.ndim == 0 and torch.isfinite(p) for p in parts.values())


def test_loss_matches_a_hand_computed_network():
    """Every weight set by hand; the expected numbers are worked out in the comments."""
    spec = spec_of(a=2, b=1)
    model = UMINT(
        spec,
        ADAM,
        latent_dim=1,
        hidden={"a": 1, "b": 1},
        loss_weights={"b": 2.0},
        alpha=1e-4,
        beta=1e-3,
    )
    weights = {
        "encoders.a": [[1.0, -1.0]],
        "encoders.b": [[2.0]],
        "bottleneck": [[1.0, 1.0]],
        "decoder_hidden.a": [[1.0]],
        "decoder_hidden.b": [[0.5]],
        "decoder_out.a": [[1.0], [2.0]],
        "decoder_out.b": [[1.0]],
    }
    with torch.no_grad():
        for name, w in weights.items():
            model.get_submodule(name).linear.weight.copy_(torch.tensor(w))
    # biases keep their init: 0.1 in hidden layers, 0 in outputs
    batch = {
        "x": {"a": torch.tensor([[1.0, 0.0], [0.0, 1.0]]), "b": torch.tensor([[1.0], [-1.0]])},
        "mask": {"a": torch.ones(2, dtype=torch.bool), "b": torch.ones(2, dtype=torch.bool)},
    }
    # cell 1: h_a 1.1, h_b 2.1, z 3.3, d_a 3.4, d_b 1.75 -> out_a (3.4, 6.8), out_b 1.75
    # cell 2: h_a 0, h_b 0, z 0.1, d_a 0.2, d_b 0.15 -> out_a (0.2, 0.4), out_b 0.15
    parts = {k: v.item() for k, v in model.loss(batch).items()}
    assert parts["mse_a"] == pytest.approx((26.0 + 0.2) / 2)  # per-cell means 26 and 0.2
    assert parts["mse_b"] == pytest.approx(2.0 * (0.5625 + 1.3225) / 2)  # lambda_b = 2
    # sum|a| / batch per layer: 0.55 + 1.05 + 1.7 + 1.8 + 0.95
    assert parts["l1_activity"] == pytest.approx(1e-4 * 6.05)
    # hidden kernels only: 2 + 4 + 2 + 1 + 0.25 (output kernels, 6, and all biases are free)
    assert parts["l2_kernel"] == pytest.approx(1e-3 * 9.25)


def test_missing_cells_drop_out_of_their_modality_mse():
    spec = spec_of(fully_paired=False, rna=4, adt=3)
    model = UMINT(spec, ADAM, latent_dim=2, hidden={"rna": 3, "adt": 2})
    batch = batch_of(spec, n=4)
    batch["mask"]["adt"] = torch.tensor([True, True, False, False])
    batch["x"]["adt"][2:] = 100.0  # what the store holds for absent cells does not matter
    _, recon, _ = model(batch["x"])
    expected = (recon["adt"][:2] - batch["x"]["adt"][:2]).pow(2).mean()
    assert model.loss(batch)["mse_adt"].item() == pytest.approx(expected.item())


def test_initialisation_statistics():
    torch.manual_seed(0)
    model = UMINT(spec_of(rna=1000, adt=134), ADAM)  # the paper's CITE-seq shapes
    for layer in model.hidden_layers:  # He-uniform: U(-sqrt(6/fan_in), +), bias 0.1
        w = layer.kernel.detach()
        limit = (6 / w.shape[1]) ** 0.5
        assert w.abs().max() <= limit
        assert torch.all(layer.linear.bias == 0.1)
    encoder = model.encoders["rna"].kernel.detach()  # 128 x 1000 draws
    assert encoder.std().item() == pytest.approx((6 / 1000) ** 0.5 / 3**0.5, rel=0.03)
    assert abs(encoder.mean().item()) < 0.002
    for layer in model.decoder_out.values():  # Glorot-uniform: U(-sqrt(6/(in+out)), +), bias 0
        w = layer.kernel.detach()
        assert w.abs().max() <= (6 / sum(w.shape)) ** 0.5
        assert torch.all(layer.linear.bias == 0)
    out = model.decoder_out["rna"].kernel.detach()
    assert out.std().item() == pytest.approx((6 / 1128) ** 0.5 / 3**0.5, rel=0.03)


def uniforms(layer, limit: float) -> torch.Tensor:
    """The uniforms u behind a kernel w = -limit + 2 limit u, in Keras' (fan_in, fan_out) order."""
    return ((layer.kernel.detach().T + limit) / (2 * limit)).flatten()


def test_per_layer_seed_reproduces_the_seeded_keras_initializers():
    """Every kernel from a fresh generator with the same seed, drawn in Keras' (fan_in, fan_out)
    shape: same-shape layers identical, other shapes the same leading uniforms, each layer
    scaled by its own limit; biases as in independent mode."""
    spec = spec_of(rna=7, atac=5)
    model = UMINT(
        spec,
        ADAM,
        latent_dim=4,
        hidden={"rna": 6, "atac": 6},
        init_seeding="per_layer_seed",
        init_seed=98,
    )
    # the two decoder hidden layers Dense(4 -> 6) start identical (as the authors' in Keras)
    assert torch.equal(model.decoder_hidden["rna"].kernel, model.decoder_hidden["atac"].kernel)
    stream = torch.rand(12 * 4, generator=torch.Generator().manual_seed(98))  # the largest
    he = {  # hidden layer -> its He limit sqrt(6 / fan_in)
        model.encoders["rna"]: (6 / 7) ** 0.5,
        model.encoders["atac"]: (6 / 5) ** 0.5,
        model.bottleneck: (6 / 12) ** 0.5,
        model.decoder_hidden["rna"]: (6 / 4) ** 0.5,
    }
    glorot = {  # output layer -> its Glorot limit sqrt(6 / (fan_in + fan_out))
        model.decoder_out["rna"]: (6 / (6 + 7)) ** 0.5,
        model.decoder_out["atac"]: (6 / (6 + 5)) ** 0.5,
    }
    for layer, limit in {**he, **glorot}.items():
        u = uniforms(layer, limit)
        assert torch.allclose(u, stream[: u.numel()], atol=1e-6)
        assert layer.kernel.abs().max() <= limit
    # the first kernel element of every layer is the same uniform, scaled by the layer's limit
    firsts = {layer.kernel[0, 0].item() / limit for layer, limit in {**he, **glorot}.items()}
    assert max(firsts) - min(firsts) < 1e-6
    assert all(torch.all(layer.linear.bias == 0.1) for layer in model.hidden_layers)
    assert all(torch.all(layer.linear.bias == 0) for layer in model.decoder_out.values())


def test_seeded_kernel_is_keras_shape_transposed():
    from scmint.nn.dense import seeded_uniform_kernel

    kernel = seeded_uniform_kernel(3, 2, limit=0.5, seed=4)
    keras = torch.rand(3, 2, generator=torch.Generator().manual_seed(4)) - 0.5  # (fan_in, fan_out)
    assert kernel.shape == (2, 3) and torch.allclose(kernel, keras.T)


def test_per_layer_seed_is_deterministic_and_independent_of_the_global_generator():
    spec = spec_of(rna=9, adt=4)

    def build(global_seed: int, **kwargs):
        torch.manual_seed(global_seed)
        return UMINT(spec, ADAM, latent_dim=3, hidden={"rna": 5, "adt": 2}, **kwargs).state_dict()

    def same(a, b):
        return all(torch.equal(a[k], b[k]) for k in a)

    seeded = {"init_seeding": "per_layer_seed", "init_seed": 11}
    assert same(build(0, **seeded), build(1, **seeded))  # the init seed alone decides
    assert not same(build(0, **seeded), build(0, init_seeding="per_layer_seed", init_seed=12))
    # init_seed null: drawn from the global generator, so it follows the run seed
    drawn = {"init_seeding": "per_layer_seed"}
    assert same(build(5, **drawn), build(5, **drawn))
    assert not same(build(5, **drawn), build(6, **drawn))
    # the AE family takes the option too
    torch.manual_seed(0)
    ae = AE(spec_of(rna=9, adt=4), ADAM, latent_dim=3, hidden_dim=3, init_seeding="per_layer_seed")
    assert torch.equal(ae.encoder2.kernel, ae.decoder1.kernel)  # both Dense(3 -> 3)
    with pytest.raises(ValueError, match="init_seeding"):
        UMINT(spec, ADAM, init_seeding="keras")


def test_independent_init_is_unchanged():
    """Default: every kernel drawn in turn from torch's global generator, no two layers equal."""
    from torch import nn

    spec = spec_of(rna=7, atac=5)
    widths = {"rna": 6, "atac": 6}
    torch.manual_seed(3)
    default = UMINT(spec, ADAM, latent_dim=4, hidden=widths)
    torch.manual_seed(3)
    explicit = UMINT(spec, ADAM, latent_dim=4, hidden=widths, init_seeding="independent")
    torch.manual_seed(3)  # the layers built by hand, in creation order, as before the option
    expected = []
    for d_in, d_out, hidden in [(7, 6, 1), (5, 6, 1), (12, 4, 1), (4, 6, 1), (4, 6, 1),
                                (6, 7, 0), (6, 5, 0)]:  # fmt: skip
        linear = nn.Linear(d_in, d_out)
        if hidden:
            nn.init.kaiming_uniform_(linear.weight, mode="fan_in", nonlinearity="relu")
        else:
            nn.init.xavier_uniform_(linear.weight)
        expected.append(linear.weight.detach())
    layers = [*default.hidden_layers, *default.decoder_out.values()]
    assert all(torch.equal(layer.kernel, w) for layer, w in zip(layers, expected, strict=True))
    assert all(torch.equal(v, explicit.state_dict()[k]) for k, v in default.state_dict().items())
    assert default.kernel_seed is None
    assert not torch.equal(
        default.decoder_hidden["rna"].kernel, default.decoder_hidden["atac"].kernel
    )


@pytest.mark.parametrize(
    "dims, widths",
    [
        ({"rna": 1000, "adt": 134}, {"rna": 128, "adt": 10}),
        ({"rna": 50, "adt": 7, "atac": 30}, {"rna": 8, "adt": 3, "atac": 5}),
    ],
    ids=["2 modalities", "3 modalities"],
)
def test_parameter_reduction_versus_an_ae_of_matching_widths(dims, widths):
    spec = spec_of(**dims)
    umint = UMINT(spec, ADAM, hidden=widths)
    ae = AE(spec, ADAM, hidden_dim=sum(widths.values()))
    reduction = sum(dims[i] * sum(widths[j] for j in dims if j != i) for i in dims)
    count = lambda modules: sum(p.numel() for m in modules for p in m.parameters())  # noqa: E731
    assert count([ae.encoder1]) - count(umint.encoders.values()) == reduction
    # the output layer drops the mirror-image blocks; every other layer is the same size
    assert ae.n_params - umint.n_params == 2 * reduction


def test_parameter_counts_of_the_reference_runs():
    assert UMINT(spec_of(rna=1000, adt=134), ADAM).n_params == 277_818  # CITE-seq, (128, 10)
    assert UMINT(spec_of(rna=597, atac=465), ADAM).n_params == 306_278  # multiome, (128, 128)


def test_same_seed_same_embedding_after_training():
    spec = spec_of(rna=20, adt=5)
    batch = batch_of(spec, n=8)

    def trained_embedding(seed: int) -> torch.Tensor:
        torch.manual_seed(seed)
        model = UMINT(spec, ADAM, latent_dim=4, hidden={"rna": 6, "adt": 3})
        optimizer = model.configure_optimizers()
        for _ in range(5):
            optimizer.zero_grad()
            torch.stack(list(model.loss(batch).values())).sum().backward()
            optimizer.step()
        return model.embed(batch).detach()

    assert torch.equal(trained_embedding(3), trained_embedding(3))
    assert not torch.equal(trained_embedding(3), trained_embedding(4))


def test_width_for_a_modality_the_data_lacks_is_a_clear_error():
    with pytest.raises(ValueError, match=r"model\.hidden.*\['atac'\].*rna"):
        UMINT(spec_of(rna=10, adt=3), ADAM, hidden={"rna": 4, "atac": 5})
    with pytest.raises(ValueError, match=r"model\.loss_weights.*\['atac'\]"):
        UMINT(spec_of(rna=10, adt=3), ADAM, loss_weights={"atac": 1.0})
    with pytest.raises(ValueError, match=r"model\.hidden\.adt must be >= 1"):
        UMINT(spec_of(rna=10, adt=3), ADAM, hidden={"adt": 0})


def test_unpaired_modalities_are_refused():
    spec = DataSpec(modalities={"rna": 10, "adt": 3}, n_cells=10, paired=False)
    with pytest.raises(DataMismatchError, match="paired"):
        UMINT(spec, ADAM)


def test_checkpoint_round_trip_rebuilds_the_same_model(tmp_path):
    spec = spec_of(rna=10, adt=3)
    model = UMINT(spec, ADAM, latent_dim=3, hidden={"rna": 4, "adt": 2})
    path = tmp_path / "umint.ckpt"
    torch.save(
        {
            "state_dict": model.state_dict(),
            "hyper_parameters": dict(model.hparams),
            "pytorch-lightning_version": "2.6.0",
        },
        path,
    )
    loaded = UMINT.load_from_checkpoint(path, weights_only=False)
    batch = batch_of(spec)
    assert loaded.widths == model.widths
    assert torch.equal(loaded.embed(batch), model.embed(batch))


@pytest.mark.parametrize("name", ["umint", "ae", "dae", "sae"])
def test_model_configs_instantiate_with_the_reference_settings(name):
    cfg = compose_config([f"model={name}"])
    assert cfg.data.batch_size == 16 and cfg.trainer.max_epochs == 25
    model = hydra.utils.instantiate(
        cfg.model, data_spec=spec_of(rna=1000, adt=134), _convert_="partial"
    )
    assert model.method_name == name
    optimizer = model.configure_optimizers()
    assert optimizer.defaults["lr"] == 1e-3 and optimizer.defaults["eps"] == 1e-7
    assert model.n_params == (277_818 if name == "umint" else 308_142)
