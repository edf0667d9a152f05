"""Bad input: a clear error naming the file/modality/column, and nothing written."""

from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from scmint.data import MultiOmicsDataModule
from scmint.data.sources import FilesSource
from scmint.data.validation import DataError

CELLS = [f"c{i:03d}" for i in range(40)]


def _adata(x: np.ndarray, cells=CELLS, prefix="g", labels=True) -> ad.AnnData:
    obs = pd.DataFrame(index=list(cells))
    if labels:
        obs["celltype"] = [f"t{i % 2}" for i in range(len(cells))]
    return ad.AnnData(
        sp.csr_matrix(x.astype(np.float32)),
        obs=obs,
        var=pd.DataFrame(index=[f"{prefix}{j}" for j in range(x.shape[1])]),
    )


def _counts(n_cells=40, n_features=6, seed=0):
    return (
        np.random.default_rng(seed).poisson(3.0, size=(n_cells, n_features)).astype(np.float32) + 1
    )


def _module(tmp_path, source, **kwargs) -> MultiOmicsDataModule:
    kwargs.setdefault("label_key", "celltype")
    return MultiOmicsDataModule(source, batch_size=8, cache_dir=str(tmp_path / "cache"), **kwargs)


def _paired_files(tmp_path, rna_cells, adt_cells):
    _adata(_counts(len(rna_cells)), rna_cells).write_h5ad(tmp_path / "rna.h5ad")
    _adata(_counts(len(adt_cells), 3, 1), adt_cells, "p").write_h5ad(tmp_path / "adt.h5ad")
    return FilesSource(files={"rna": str(tmp_path / "rna.h5ad"), "adt": str(tmp_path / "adt.h5ad")})


def _assert_nothing_cached(tmp_path):
    cache = tmp_path / "cache"
    assert not cache.exists() or not any(cache.iterdir())


def test_paired_files_with_no_shared_cell_refused(tmp_path):
    source = _paired_files(tmp_path, CELLS, [f"x{i}" for i in range(40)])
    with pytest.raises(
        DataError, match=r"share no cell names: rna 40 \(.*rna.h5ad\), adt 40 \(.*adt.h5ad\)"
    ):
        _module(tmp_path, source).setup()
    _assert_nothing_cached(tmp_path)


def test_paired_files_partly_matching_warn_and_intersect(tmp_path, caplog):
    source = _paired_files(tmp_path, CELLS, CELLS[10:] + [f"x{i}" for i in range(10)])
    dm = _module(tmp_path, source)
    dm.setup()
    assert "30 cell names match" in caplog.text
    assert dm.spec.n_cells == 30 and dm.spec.fully_paired


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_refused(tmp_path, bad):
    x = _counts()
    x[3, 2] = bad
    _adata(x).write_h5ad(tmp_path / "a.h5ad")
    with pytest.raises(DataError, match=r"modality 'rna' \(from a\) has \d+ NaN and \d+ infinite"):
        _module(tmp_path, FilesSource(path=str(tmp_path / "a.h5ad"))).setup()
    _assert_nothing_cached(tmp_path)


@pytest.mark.parametrize(
    "recipe", [[{"step": "log1p"}], [{"step": "clr"}], [{"step": "normalize_total"}]]
)
def test_negative_values_into_log_refused(tmp_path, recipe):
    x = _counts()
    x[0, 0] = -1.5
    _adata(x).write_h5ad(tmp_path / "a.h5ad")
    name = recipe[0]["step"]
    with pytest.raises(
        DataError, match=rf"preprocess.rna: step '{name}' needs non-negative.*1 negative values"
    ):
        _module(
            tmp_path, FilesSource(path=str(tmp_path / "a.h5ad")), preprocess={"rna": recipe}
        ).setup()
    _assert_nothing_cached(tmp_path)


def test_empty_cells_and_features_dropped_with_a_count(tmp_path, caplog):
    x = _counts()
    x[5] = 0
    x[:, 4] = 0
    _adata(x).write_h5ad(tmp_path / "a.h5ad")
    dm = _module(tmp_path, FilesSource(path=str(tmp_path / "a.h5ad")))
    dm.setup()
    assert "dropping 1 empty cells and 1 empty features" in caplog.text
    assert dm.spec.n_cells == 39 and dm.spec.modalities == {"rna": 5}


def test_empty_features_found_across_index_chunks(monkeypatch):
    """The column scan that finds empty features works a chunk of indices at a time (to bound
    memory at 1M cells); chunk edges must not lose a column."""
    from scmint.data import validation

    x = sp.random(50, 30, density=0.05, format="csr", random_state=0, dtype=np.float32)
    x.data += 1  # no explicit zeros
    expected = np.asarray((x != 0).sum(axis=0)).ravel() > 0
    assert not expected.all()  # the case has empty features to find
    for chunk in (1, 7, len(x.indices), 1 << 24):
        monkeypatch.setattr(validation, "_INDEX_CHUNK", chunk)
        kept = validation.drop_empty(ad.AnnData(x.copy()), "rna")
        assert kept.n_vars == expected.sum()


def test_all_empty_refused(tmp_path):
    _adata(np.zeros((40, 6))).write_h5ad(tmp_path / "a.h5ad")
    with pytest.raises(DataError, match=r"modality 'rna' .* is empty"):
        _module(tmp_path, FilesSource(path=str(tmp_path / "a.h5ad"))).setup()
    _assert_nothing_cached(tmp_path)


def test_missing_label_column_trains_without_labels(tmp_path, caplog):
    a = _adata(_counts(), labels=False)
    a.obs["cell_type"] = "stray"  # a same-named column is not used in place of the one asked for
    a.write_h5ad(tmp_path / "a.h5ad")
    dm = _module(tmp_path, FilesSource(path=str(tmp_path / "a.h5ad")), label_key="celltype")
    dm.setup()
    assert "no obs column 'celltype'" in caplog.text and "absent" in caplog.text
    assert dm.labels() is None and dm.spec.n_labels == 0
    batch = next(iter(dm.train_dataloader()))
    assert (batch["label"] == -1).all()


def test_modality_missing_from_data_refused(tmp_path):
    _adata(_counts()).write_h5ad(tmp_path / "a.h5ad")
    with pytest.raises(
        DataError, match=r"data.modalities: \['adt'\] not in dataset 'a' \(it has \['rna'\]\)"
    ):
        _module(
            tmp_path, FilesSource(path=str(tmp_path / "a.h5ad")), modalities=["rna", "adt"]
        ).setup()
    _assert_nothing_cached(tmp_path)


@pytest.mark.parametrize("suffix", ["h5ad", "h5mu"])
def test_truncated_file_refused(tmp_path, suffix):
    path = tmp_path / f"a.{suffix}"
    a = _adata(_counts(400, 50), cells=[f"c{i}" for i in range(400)])
    a.write_h5ad(path) if suffix == "h5ad" else md.MuData({"rna": a}).write_h5mu(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        DataError, match=rf"could not read .*a.{suffix} as {suffix}.*truncated or corrupt"
    ):
        _module(tmp_path, FilesSource(path=str(path))).setup()
    _assert_nothing_cached(tmp_path)


def test_missing_file_named(tmp_path):
    with pytest.raises(DataError, match=r"data.source.files.adt: .*nope.h5ad does not exist"):
        FilesSource(files={"rna": str(tmp_path), "adt": str(tmp_path / "nope.h5ad")}).prepare()


def test_counts_step_on_non_integer_input_warns(tmp_path, caplog):
    _adata(_counts() * 0.37).write_h5ad(tmp_path / "a.h5ad")
    dm = _module(
        tmp_path,
        FilesSource(path=str(tmp_path / "a.h5ad")),
        preprocess={"rna": [{"step": "normalize_total"}]},
    )
    dm.setup()
    assert "expects raw counts" in caplog.text and "data.source.layers.rna" in caplog.text
