"""Readers: every supported layout becomes the same MuData, with labels mapped."""

from __future__ import annotations

import gzip

import anndata as ad
import h5py
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp

from scmint.data.readers import detect_format, map_obs, read_dataset
from scmint.data.validation import DataError

CELLS = [f"AAAC{i:04d}-1" for i in range(30)]


def _counts(n_features: int, seed: int) -> np.ndarray:
    return (
        np.random.default_rng(seed).poisson(2.0, size=(len(CELLS), n_features)).astype(np.float32)
    )


def _adata(n_features: int, seed: int, prefix: str) -> ad.AnnData:
    obs = pd.DataFrame({"celltype": [f"t{i % 3}" for i in range(len(CELLS))]}, index=CELLS)
    var = pd.DataFrame(index=[f"{prefix}{j}" for j in range(n_features)])
    return ad.AnnData(sp.csr_matrix(_counts(n_features, seed)), obs=obs, var=var)


def _write_10x_h5(path, rna: np.ndarray, adt: np.ndarray) -> None:
    """A Cell Ranger v3 filtered_feature_bc_matrix.h5 (features x cells CSC)."""
    x = sp.csc_matrix(np.hstack([rna, adt]).T.astype(np.int32))  # features x cells
    n_rna, n_adt = rna.shape[1], adt.shape[1]
    with h5py.File(path, "w") as f:
        g = f.create_group("matrix")
        g["barcodes"] = np.array(CELLS, dtype="S")
        g["data"], g["indices"], g["indptr"] = x.data, x.indices, x.indptr
        g["shape"] = np.array(x.shape, dtype=np.int32)
        feats = g.create_group("features")
        names = [f"G{j}" for j in range(n_rna)] + [f"P{j}" for j in range(n_adt)]
        feats["id"] = np.array(names, dtype="S")
        feats["name"] = np.array(names, dtype="S")
        feats["feature_type"] = np.array(
            ["Gene Expression"] * n_rna + ["Antibody Capture"] * n_adt, dtype="S"
        )
        feats["genome"] = np.array(["GRCh38"] * (n_rna + n_adt), dtype="S")
        feats["_all_tag_keys"] = np.array([b"genome"])


def test_h5mu(tmp_path):
    path = tmp_path / "d.h5mu"
    md.MuData({"rna": _adata(8, 0, "g"), "adt": _adata(3, 1, "p")}).write_h5mu(path)
    mdata = read_dataset(path, label_key="rna:celltype")
    assert mdata.mod["rna"].shape == (30, 8) and mdata.mod["adt"].shape == (30, 3)
    assert list(mdata.obs["cell_type"][:3]) == ["t0", "t1", "t2"]
    assert sp.isspmatrix_csr(mdata.mod["rna"].X) and mdata.mod["rna"].X.dtype == np.float32


def test_paired_h5ad_files_are_aligned_by_name(tmp_path):
    rna, adt = _adata(8, 0, "g"), _adata(3, 1, "p")
    rna[::-1].copy().write_h5ad(tmp_path / "rna.h5ad")  # other order on disk
    adt.write_h5ad(tmp_path / "adt.h5ad")
    mdata = read_dataset(
        files={"rna": tmp_path / "rna.h5ad", "adt": tmp_path / "adt.h5ad"}, label_key="celltype"
    )
    rows = mdata.mod["rna"].obs_names.get_indexer(mdata.obs_names)
    assert np.allclose(
        mdata.mod["rna"].X.toarray()[rows],
        rna.X.toarray()[rna.obs_names.get_indexer(mdata.obs_names)],
    )
    assert mdata.obs["cell_type"].notna().all()


def test_modality_in_obsm(tmp_path):
    rna = _adata(8, 0, "g")
    rna.obsm["X_atac"] = np.arange(60, dtype=np.float32).reshape(30, 2)
    rna.write_h5ad(tmp_path / "s.h5ad")
    mdata = read_dataset(tmp_path / "s.h5ad", slots={"rna": "X", "atac": "obsm/X_atac"})
    assert mdata.mod["atac"].shape == (30, 2)
    assert np.array_equal(mdata.mod["atac"].X[:, 1], np.arange(1, 60, 2))
    with pytest.raises(DataError, match=r"obsm/X_missing.*available"):
        read_dataset(tmp_path / "s.h5ad", slots={"atac": "obsm/X_missing"})


def test_10x_h5_split_by_feature_type(tmp_path):
    rna, adt = _counts(6, 0), _counts(2, 1)
    _write_10x_h5(tmp_path / "filtered_feature_bc_matrix.h5", rna, adt)
    mdata = read_dataset(tmp_path / "filtered_feature_bc_matrix.h5")
    assert set(mdata.mod) == {"rna", "adt"}
    assert np.array_equal(mdata.mod["adt"].X.toarray(), adt)
    assert list(mdata.mod["rna"].var_names) == [f"G{j}" for j in range(6)]


def test_matrix_market_folder(tmp_path):
    rna, adt = _counts(6, 0), _counts(2, 1)
    folder = tmp_path / "filtered_feature_bc_matrix"
    folder.mkdir()
    with gzip.open(folder / "matrix.mtx.gz", "wb") as f:
        scipy.io.mmwrite(f, sp.coo_matrix(np.hstack([rna, adt]).T.astype(np.int64)))
    rows = [f"G{j}\tG{j}\tGene Expression" for j in range(6)] + [
        f"P{j}\tP{j}\tAntibody Capture" for j in range(2)
    ]
    with gzip.open(folder / "features.tsv.gz", "wt") as f:
        f.write("\n".join(rows) + "\n")
    with gzip.open(folder / "barcodes.tsv.gz", "wt") as f:
        f.write("\n".join(CELLS) + "\n")
    assert detect_format(folder) == "mtx"
    mdata = read_dataset(folder)
    assert np.array_equal(mdata.mod["rna"].X.toarray(), rna)
    assert mdata.mod["adt"].n_vars == 2


def test_geo_csv_features_by_cells(tmp_path):
    rna, adt = _counts(5, 0), _counts(2, 1)
    for name, x, prefix in (("rna.csv.gz", rna, "G"), ("adt.tsv.gz", adt, "P")):
        table = pd.DataFrame(x.T, index=[f"{prefix}{j}" for j in range(x.shape[1])], columns=CELLS)
        table.to_csv(tmp_path / name, sep="," if "csv" in name else "\t", compression="gzip")
    mdata = read_dataset(files={"rna": tmp_path / "rna.csv.gz", "adt": tmp_path / "adt.tsv.gz"})
    assert mdata.mod["rna"].shape == (30, 5)
    assert np.array_equal(mdata.mod["rna"].X.toarray(), rna)
    assert list(mdata.obs_names) == CELLS


def test_layer_replaces_x(tmp_path):
    a = _adata(4, 0, "g")
    a.layers["counts"] = a.X.copy()
    a.X = a.X * 0.5
    a.write_h5ad(tmp_path / "a.h5ad")
    mdata = read_dataset(tmp_path / "a.h5ad", layers={"rna": "counts"})
    assert np.array_equal(mdata.mod["rna"].X.toarray(), a.layers["counts"].toarray())
    with pytest.raises(DataError, match=r"layer 'raw' not in modality 'rna'.*layers: \['counts'\]"):
        read_dataset(tmp_path / "a.h5ad", layers={"rna": "raw"})


def test_map_obs_missing_label_is_not_an_error(tmp_path, caplog):
    mdata = md.MuData({"rna": _adata(4, 0, "g")})
    found = map_obs(mdata, "no_such_column", None)
    assert found == (False, False)
    assert "cell_type" not in mdata.obs
    assert "no_such_column" in caplog.text


def test_unknown_extension(tmp_path):
    (tmp_path / "x.bin").write_bytes(b"0")
    with pytest.raises(DataError, match="cannot tell the format"):
        read_dataset(tmp_path / "x.bin")
