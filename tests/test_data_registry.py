"""Registry downloads against a local HTTP server: right and wrong checksums, no network when the
files are there, manual steps, and the build of a dataset from its files."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from scmint.data import registry
from scmint.data.registry import Dataset, ManualStepRequired, RemoteFile, fetch, fetch_file
from scmint.data.sources import RegistrySource
from scmint.data.validation import DataError

PAYLOAD = b"cell,label\nAAAC-1,B\n" * 50


@pytest.fixture
def server(tmp_path):
    """A file server on 127.0.0.1 for the test's own files; stopped after the test."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_download_with_right_checksum(server, tmp_path):
    root, url = server
    (root / "f.csv").write_bytes(PAYLOAD)
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    folder = tmp_path / "data" / "ds"
    path = fetch_file(RemoteFile("f.csv", f"{url}/f.csv", f"sha256:{sha}"), folder, progress=False)
    assert path.read_bytes() == PAYLOAD


def test_download_with_wrong_checksum_is_deleted(server, tmp_path):
    root, url = server
    (root / "f.csv").write_bytes(PAYLOAD)
    folder = tmp_path / "data" / "ds"
    with pytest.raises(DataError, match=r"does not match its checksum.*deleted and not used"):
        fetch_file(
            RemoteFile("f.csv", f"{url}/f.csv", "sha256:" + "0" * 64), folder, progress=False
        )
    assert not (folder / "f.csv").exists()
    assert not [p for p in folder.iterdir() if p.is_file()], "no partial download left behind"


def test_unpublished_checksum_is_recorded_then_enforced(server, tmp_path):
    root, url = server
    (root / "f.csv").write_bytes(PAYLOAD)
    folder = tmp_path / "data" / "ds"
    file = RemoteFile("f.csv", f"{url}/f.csv")
    fetch_file(file, folder, progress=False)
    record = folder / "f.csv.sha256"
    assert record.read_text().strip() == hashlib.sha256(PAYLOAD).hexdigest()
    (folder / "f.csv").write_bytes(PAYLOAD[:-5])  # damaged after the download
    with pytest.raises(DataError, match=r"does not match its checksum.*delete it and run again"):
        fetch_file(file, folder, progress=False)


def test_present_file_needs_no_network(tmp_path):
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "f.csv").write_bytes(PAYLOAD)
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    unreachable = RemoteFile(
        "f.csv", "http://127.0.0.1:9/f.csv", f"sha256:{sha}"
    )  # port 9: nothing listens
    assert fetch_file(unreachable, folder, progress=False) == folder / "f.csv"


def test_unreachable_download_says_where_to_put_the_file(tmp_path):
    with pytest.raises(DataError, match=r"could not download .*save it as .*ds/f.csv"):
        fetch_file(RemoteFile("f.csv", "http://127.0.0.1:9/f.csv"), tmp_path / "ds", progress=False)


def test_manual_step_error_says_what_to_do(tmp_path):
    file = RemoteFile("labels.csv", manual="export the labels in R with ...")
    with pytest.raises(
        ManualStepRequired, match=r"ds: .*ds/labels.csv is missing; export the labels in R"
    ):
        fetch_file(file, tmp_path / "ds", progress=False)
    optional = RemoteFile("labels.csv", manual="export ...", optional=True)
    assert fetch_file(optional, tmp_path / "ds", progress=False) is None


def test_kotliarov_export_step_is_explicit(tmp_path):
    with pytest.raises(
        ManualStepRequired, match=r"readRDS\('.*kotliarov50k/H1_day0_demultilexed_singlets.RDS'\)"
    ):
        registry._build_kotliarov50k(tmp_path / "kotliarov50k")


def test_fetch_builds_once_and_source_loads(server, tmp_path, monkeypatch):
    root, url = server
    cells = [f"AAAC{i}-1" for i in range(20)]
    x = np.random.default_rng(0).poisson(2.0, size=(20, 5)).astype(np.float32)
    a = ad.AnnData(
        sp.csr_matrix(x),
        obs=pd.DataFrame({"tech": ["a", "b"] * 10, "celltype": ["t"] * 20}, index=cells),
    )
    a.layers["counts"] = a.X.copy()
    a.write_h5ad(root / "toy.h5ad")
    sha = hashlib.sha256((root / "toy.h5ad").read_bytes()).hexdigest()
    calls = []

    def build(folder):
        calls.append(folder)
        return registry.readers.read_dataset(folder / "toy.h5ad", layers={"rna": "counts"})

    toy = Dataset(
        "toy", "toy", "none", (RemoteFile("toy.h5ad", f"{url}/toy.h5ad", f"sha256:{sha}"),), build
    )
    monkeypatch.setitem(registry.DATASETS, "toy", toy)
    built = fetch("toy", tmp_path / "data", progress=False)
    assert built.exists() and fetch("toy", tmp_path / "data", progress=False) == built
    assert len(calls) == 1, "the build step runs once"
    source = RegistrySource("toy", data_dir=str(tmp_path / "data"), progress=False)
    mdata = source.load()
    assert mdata.mod["rna"].shape == (20, 5) and "tech" in mdata.obs
    assert source.fingerprint() == source.fingerprint()


def test_unknown_dataset_lists_the_registry():
    with pytest.raises(DataError, match=r"unknown registry dataset 'nope'; available: .*cbmc8k"):
        RegistrySource("nope")


def test_every_entry_is_complete():
    for entry in registry.DATASETS.values():
        for f in entry.files:
            assert f.url or f.manual, f"{entry.name}/{f.name} has neither a URL nor a manual step"
            if f.url:
                assert f.url.startswith("https://"), f.url
        assert entry.label_key


def _geo_matrix(path, features, cells, seed, sep):
    x = np.random.default_rng(seed).poisson(3.0, size=(len(features), len(cells)))
    pd.DataFrame(x, index=features, columns=cells).to_csv(path, sep=sep, compression="gzip")


def test_cbmc8k_build_keeps_human_genes_and_drops_three_adts(tmp_path):
    cells = [f"CELL{i}" for i in range(12)]
    _geo_matrix(
        tmp_path / "GSE100866_CBMC_8K_13AB_10X-RNA_umi.csv.gz",
        ["HUMAN_CD3E", "HUMAN_MS4A1", "MOUSE_Cd3e", "ERCC_ERCC-00104"],
        cells,
        0,
        ",",
    )
    _geo_matrix(
        tmp_path / "GSE100866_CBMC_8K_13AB_10X-ADT_umi.csv.gz",
        ["CD3", "CD19", "CCR5", "CCR7", "CD10"],
        cells,
        1,
        ",",
    )
    pd.DataFrame({"label": ["T"] * 10}, index=cells[:10]).to_csv(tmp_path / "cbmc8k_labels.csv")
    mdata = registry._build_cbmc8k(tmp_path)
    assert list(mdata.mod["rna"].var_names) == ["CD3E", "MS4A1"]
    assert list(mdata.mod["adt"].var_names) == ["CD3", "CD19"]
    assert mdata.n_obs == 10 and (mdata.obs["rna_annotations"] == "T").all()


def test_snare_cellline_build_pairs_and_labels(tmp_path):
    cells = [f"BC{i}" for i in range(8)]
    _geo_matrix(
        tmp_path / "GSE126074_CellLineMixture_SNAREseq_cDNA_counts.tsv.gz",
        ["G1", "G2"],
        cells,
        0,
        "\t",
    )
    _geo_matrix(
        tmp_path / "GSE126074_CellLineMixture_SNAREseq_chromatin_counts.tsv.gz",
        ["chr1:1-100"],
        cells[::-1],
        1,
        "\t",
    )
    pd.DataFrame({"cell_line": ["BJ", "H1"] * 3}, index=pd.Index(cells[:6], name="cell")).to_csv(
        tmp_path / "snare_cell_metadata.txt", sep="\t"
    )
    mdata = registry._build_snare_cellline(tmp_path)
    assert set(mdata.mod) == {"rna", "atac"} and mdata.n_obs == 6
    assert list(mdata.obs["cell_line"]) == ["BJ", "H1"] * 3
