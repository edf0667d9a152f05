"""The frozen-teacher composition on three synthetic paired modalities (RNA + ADT + ATAC)."""

from __future__ import annotations

from functools import partial

import lightning as L
import pytest
import torch

from conftest import compose_config
from scmint.data import MultiOmicsDataModule
from scmint.data.spec import DataSpec
from scmint.data.synthetic import SyntheticSource
from scmint.models import DataMismatchError, TeacherComposition
from scmint.train import train

SGD = partial(torch.optim.SGD, lr=0.01, momentum=0.9, weight_decay=5e-4)
SMALL = {"hidden": (32, 16), "latent_dim": 8, "projection_dim": 4, "n_clusters": 4}
ZSCORE = [{"step": "scale"}]


def three_modalities() -> MultiOmicsDataModule:
    source = SyntheticSource(
        n_cells=96,
        n_types=3,
        modalities=["rna", "adt", "atac"],
        n_genes=40,
        n_proteins=6,
        n_peaks=60,
        seed=0,
    )
    dm = MultiOmicsDataModule(
        source,
        preprocess={m: ZSCORE for m in ("rna", "adt", "atac")},
        batch_size=32,
        drop_last=True,
        val_fraction=0,
    )
    dm.setup("fit")
    return dm


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Parameters *and* buffers (BatchNorm running statistics)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def differs(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())


class StageSnapshot(L.Callback):
    """Records the networks' state when stage 2 begins (after stage 1's last step)."""

    def __init__(self, at_epoch: int) -> None:
        self.at_epoch = at_epoch
        self.states: dict[str, dict[str, torch.Tensor]] = {}

    def on_train_epoch_start(self, trainer, model) -> None:
        if trainer.current_epoch == self.at_epoch:
            self.states = {name: snapshot(enc) for name, enc in model.encoders.items()}
            self.states["teacher_heads"] = snapshot(model.teacher_heads)


def fit(
    model: TeacherComposition, dm: MultiOmicsDataModule, epochs: int, callback: L.Callback
) -> L.Trainer:
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        callbacks=[callback],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        deterministic=True,
    )
    trainer.fit(model, datamodule=dm)
    return trainer


@pytest.mark.parametrize(
    ("method", "frozen", "students"),
    [("smile", ["rna"], ["adt", "atac"]), ("mpsmile", ["rna", "adt"], ["atac"])],
)
def test_stage_two_leaves_the_frozen_teacher_unchanged(method, frozen, students):
    torch.manual_seed(0)
    dm = three_modalities()
    model = TeacherComposition(dm.spec, SGD, teacher_epochs=2, teacher_method=method, **SMALL)
    assert model.anchor == "rna" and model.students == students
    initial = {name: snapshot(enc) for name, enc in model.encoders.items()}
    callback = StageSnapshot(at_epoch=2)
    trainer = fit(model, dm, epochs=4, callback=callback)
    assert trainer.global_step == 4 * 3  # 96 cells / 32 per batch, one optimiser step per batch

    for (
        name
    ) in frozen:  # trained in stage 1, then not a bit changed: weights and BatchNorm statistics
        assert differs(initial[name], callback.states[name]), (
            f"{name} should have trained in stage 1"
        )
        assert_same(callback.states[name], snapshot(model.encoders[name]))
        assert all(not p.requires_grad for p in model.encoders[name].parameters())
    assert_same(callback.states["teacher_heads"], snapshot(model.teacher_heads))
    for name in students:  # untouched in stage 1, trained in stage 2
        assert_same(initial[name], callback.states[name])
        assert differs(callback.states[name], snapshot(model.encoders[name]))


def test_a_frozen_teacher_stays_in_eval_mode():
    dm = three_modalities()
    model = TeacherComposition(dm.spec, SGD, teacher_epochs=1, **SMALL)
    model.freeze_teacher()
    model.train()  # what Lightning calls at every epoch start
    assert not model.encoders["rna"].training and not model.teacher_heads.training
    assert model.encoders["adt"].training


def test_every_modality_is_embedded_in_one_space():
    dm = three_modalities()
    model = TeacherComposition(dm.spec, SGD, teacher_epochs=1, **SMALL).eval()
    batch = next(iter(dm.predict_dataloader()))
    with torch.no_grad():
        out = model.predict_step(batch)
    assert set(out["modality_embeddings"]) == {"rna", "adt", "atac"}
    stacked = torch.stack(list(out["modality_embeddings"].values()))
    torch.testing.assert_close(stacked.norm(dim=2), torch.ones(3, 96))
    torch.testing.assert_close(out["embedding"], stacked.mean(dim=0))


def test_stage_two_needs_epochs():
    dm = three_modalities()
    model = TeacherComposition(dm.spec, SGD, teacher_epochs=2, **SMALL)
    with pytest.raises(ValueError, match=r"trainer.max_epochs=2 .*model.teacher_epochs=2"):
        fit(model, dm, epochs=2, callback=L.Callback())


def test_bad_compositions_are_refused():
    two = DataSpec(modalities={"rna": 10, "atac": 8}, n_cells=50, paired=True, fully_paired=True)
    with pytest.raises(ValueError, match="no modality is left for stage 2"):
        TeacherComposition(two, SGD, teacher_method="mpsmile", **SMALL)
    with pytest.raises(ValueError, match=r"model\.teacher_method"):
        TeacherComposition(two, SGD, teacher_method="umint", **SMALL)
    one = DataSpec(modalities={"rna": 10}, n_cells=50)
    with pytest.raises(DataMismatchError, match="at least 2 modalities"):
        TeacherComposition(one, SGD, **SMALL)
    unpaired = DataSpec(modalities={"rna": 10, "atac": 8}, n_cells=50, paired=False)
    with pytest.raises(DataMismatchError, match="paired"):
        TeacherComposition(unpaired, SGD, **SMALL)


def test_experiment_config_runs_through_scmint_train(tmp_path):
    cfg = compose_config(
        [
            "experiment=smile_teacher",
            "data.source.n_cells=120",
            "data.source.n_genes=50",
            "data.source.n_peaks=80",
            "++data.source.n_proteins=8",
            "model.hidden=[32,16]",
            "model.latent_dim=8",
            "model.teacher_epochs=1",
            "trainer.max_epochs=2",
            "~callbacks.progress_bar",
            "trainer.enable_progress_bar=false",
            "logger=none",
        ],
        tmp_path,
    )
    metrics = train(cfg)
    assert metrics["status"] == "ok"
    assert set(metrics["modalities"]) == {"rna", "adt", "atac"}
    assert metrics["silhouette_modality"] is not None
    assert (tmp_path / "metrics.json").exists()


def test_resuming_in_stage_two_matches_an_uninterrupted_run(tmp_path):
    def run(epochs: int, ckpt_path=None, save_dir=None) -> TeacherComposition:
        torch.manual_seed(0)
        dm = three_modalities()
        model = TeacherComposition(dm.spec, SGD, teacher_epochs=1, **SMALL)
        callbacks = []
        if save_dir is not None:
            callbacks.append(
                L.pytorch.callbacks.ModelCheckpoint(
                    dirpath=save_dir, save_top_k=-1, every_n_epochs=1
                )
            )
        trainer = L.Trainer(
            max_epochs=epochs,
            accelerator="cpu",
            callbacks=callbacks,
            logger=False,
            enable_checkpointing=save_dir is not None,
            enable_progress_bar=False,
            enable_model_summary=False,
            deterministic=True,
        )
        trainer.fit(
            model, datamodule=dm, ckpt_path=ckpt_path, weights_only=False
        )  # RNG state is pickled
        return model

    uninterrupted = run(3, save_dir=tmp_path)
    in_stage_two = sorted(tmp_path.glob("epoch=1-*.ckpt"))  # saved after epoch 2 of 3, in stage 2
    assert len(in_stage_two) == 1
    resumed = run(3, ckpt_path=in_stage_two[0])
    assert not resumed.encoders["rna"].training  # frozen again after resuming
    assert_same(snapshot(uninterrupted), snapshot(resumed))
