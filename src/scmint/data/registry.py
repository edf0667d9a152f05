"""The papers' datasets: where each lives publicly, how to check it, and how to build it.

Each :class:`Dataset` lists its files (URL + checksum, or the manual step a file needs) and a
``build`` function that turns the downloaded files into one MuData of raw counts with the
dataset's own label/batch columns in ``obs``. :func:`fetch` downloads with pooch into
``$SCMINT_DATA_DIR/<name>/`` (progress bar, checksum check, no network when the files are there);
the built MuData is kept beside them as ``<name>.h5mu`` so the build runs once.

Checksums: where the publisher states one (10x Genomics' md5 for the Multiome file) it is given
here. Most GEO, figshare and GitHub files have no published checksum and none can be computed
offline; for those ``known_hash`` is None, pooch prints the SHA-256 of the first download and
scmint records it in ``<file>.sha256`` beside the file. Every later use verifies the file against
the recorded hash (trust on first use), so a file that changes or is damaged afterwards is caught.
A download whose checksum does not match is deleted by pooch and never used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import mudata as md
import pandas as pd
import pooch

from scmint.data import readers
from scmint.data.cache import atomic_write_h5mu, data_dir, file_sha256
from scmint.data.readers import mudata
from scmint.data.validation import DataError, pair_by_obs_names

log = logging.getLogger(__name__)

#: Bump a dataset's build version when its build function changes, so built files are remade.
BUILD_VERSION = 1


class ManualStepRequired(DataError):
    """A dataset file that scmint cannot download for you (the message says what to do)."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset.

    Attributes:
        name: file name inside the dataset folder.
        url: public download address (None: the file comes from a manual step).
        known_hash: ``"md5:..."`` / ``"sha256:..."`` when published; None when it is not (the
            first download's SHA-256 is then recorded and enforced afterwards).
        manual: what the user must do to produce the file when it cannot be downloaded.
        optional: the dataset builds without it (e.g. labels that need R to export).
    """

    name: str
    url: str | None = None
    known_hash: str | None = None
    manual: str | None = None
    optional: bool = False


@dataclass(frozen=True)
class Dataset:
    """A registry entry: files, build step and the obs columns its configs map."""

    name: str
    description: str
    citation: str
    files: tuple[RemoteFile, ...]
    build: Callable[[Path], md.MuData]
    label_key: str | None = None
    batch_key: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


# ---- build steps ----------------------------------------------------------------------------
def _labels(folder: Path, file: str, column: str) -> pd.Series | None:
    """Optional labels CSV (cell barcode, label); None with a logged hint when it is absent."""
    path = folder / file
    if not path.exists():
        return None
    table = pd.read_csv(path, index_col=0)
    if table.shape[1] < 1:
        raise DataError(f"{path}: expected two columns (cell, label)")
    return table.iloc[:, 0].rename(column)


def _attach(mdata: md.MuData, labels: pd.Series | None, keep_labelled: bool) -> md.MuData:
    """Put labels into obs; optionally keep only the labelled cells (the published cell set)."""
    if labels is None:
        return mdata
    labels.index = labels.index.astype(str)
    if keep_labelled:
        shared = mdata.obs_names.intersection(labels.index)
        if len(shared) == 0:
            raise DataError(f"labels {labels.name!r} share no cell names with the counts")
        mdata = mdata[shared].copy()
    mdata.obs[labels.name] = labels.reindex(mdata.obs_names).to_numpy()
    return mdata


def _build_cbmc8k(folder: Path) -> md.MuData:
    rna = readers.read_text_matrix(folder / "GSE100866_CBMC_8K_13AB_10X-RNA_umi.csv.gz")
    human = rna.var_names.str.startswith("HUMAN_")  # the cord blood was spiked with mouse cells
    rna = rna[:, human].copy()
    rna.var_names = rna.var_names.str.removeprefix("HUMAN_")
    adt = readers.read_text_matrix(folder / "GSE100866_CBMC_8K_13AB_10X-ADT_umi.csv.gz")
    # Seurat's CITE-seq vignette (and the SeuratData `cbmc` object) drop three poor antibodies.
    adt = adt[:, ~adt.var_names.isin(["CCR5", "CCR7", "CD10"])].copy()
    mods = pair_by_obs_names({"rna": rna, "adt": adt}, {"rna": "RNA csv", "adt": "ADT csv"})
    mdata = mudata(mods)
    return _attach(
        mdata, _labels(folder, "cbmc8k_labels.csv", "rna_annotations"), keep_labelled=True
    )


def _build_bmcite30k(folder: Path) -> md.MuData:
    rna = readers.read_text_matrix(folder / "GSE128639_citeseq_rna_counts.tsv.gz")
    adt = readers.read_text_matrix(folder / "GSE128639_citeseq_adt_counts.tsv.gz")
    mods = pair_by_obs_names({"rna": rna, "adt": adt}, {"rna": "RNA tsv", "adt": "ADT tsv"})
    mdata = mudata(mods)
    return _attach(
        mdata, _labels(folder, "bmcite30k_labels.csv", "celltype.l2"), keep_labelled=True
    )


def _build_10x(file: str, labels: str, column: str) -> Callable[[Path], md.MuData]:
    def build(folder: Path) -> md.MuData:
        mdata = readers.read_dataset(folder / file, format="10x_h5")
        return _attach(mdata, _labels(folder, labels, column), keep_labelled=False)

    return build


def _build_kotliarov50k(folder: Path) -> md.MuData:
    export = folder / "export"
    needed = [export / "rna", export / "adt", export / "metadata.csv"]
    if not all(p.exists() for p in needed):
        raise ManualStepRequired(_KOTLIAROV_EXPORT.format(folder=folder))
    mdata = readers.read_dataset(files={"rna": export / "rna", "adt": export / "adt"}, format="mtx")
    meta = pd.read_csv(export / "metadata.csv", index_col=0)
    meta.index = meta.index.astype(str)
    for col in meta.columns:
        mdata.obs[col] = meta[col].reindex(mdata.obs_names).to_numpy()
    return mdata


def _build_snare_cellline(folder: Path) -> md.MuData:
    rna = readers.read_text_matrix(folder / "GSE126074_CellLineMixture_SNAREseq_cDNA_counts.tsv.gz")
    atac = readers.read_text_matrix(
        folder / "GSE126074_CellLineMixture_SNAREseq_chromatin_counts.tsv.gz"
    )
    mods = pair_by_obs_names(
        {"rna": rna, "atac": atac}, {"rna": "cDNA tsv", "atac": "chromatin tsv"}
    )
    meta = pd.read_csv(folder / "snare_cell_metadata.txt", sep="\t", index_col=0)
    labels = meta["cell_line"].rename("cell_line")
    return _attach(mudata(mods), labels, keep_labelled=True)


def _build_pancreas(folder: Path) -> md.MuData:
    return readers.read_dataset(
        folder / "human_pancreas_norm_complexBatch.h5ad", layers={"rna": "counts"}
    )


def _r_labels(dataset: str, column: str, out: str) -> str:
    return (
        "export the labels from the SeuratData package in R:\n"
        f"  SeuratData::InstallData('{dataset}'); obj <- SeuratData::LoadData('{dataset}')\n"
        f"  write.csv(data.frame(label = obj${column}, row.names = colnames(obj)), '{out}')\n"
        "(cell barcodes must match the counts' column names)"
    )


_KOTLIAROV_EXPORT = """kotliarov50k is published as a Seurat v2 R object, which Python cannot read.
Export it once in R (Seurat 2.x or 3.x with UpdateSeuratObject) to Matrix Market folders:
  library(Seurat); library(DropletUtils)
  obj <- readRDS('{folder}/H1_day0_demultilexed_singlets.RDS')
  write10xCounts('{folder}/export/rna', obj@raw.data[, colnames(obj@data)], version = '3')
  write10xCounts('{folder}/export/adt', obj@assay$CITE@raw.data[, colnames(obj@data)], version = '3')
  write.csv(obj@meta.data, '{folder}/export/metadata.csv')
then run again: scmint builds the dataset from {folder}/export/."""

_TENX_LABELS = (
    "optional: 10x publishes no cell-type labels; to score clustering, put a CSV (cell barcode, "
    "label) from your own annotation (e.g. Seurat WNN as in the UMINT paper) at this path"
)

DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            name="cbmc8k",
            description="CITE-seq cord blood mononuclear cells, 8,617 cells, RNA + 10 ADTs, 15 labels",
            citation="Stoeckius et al. 2017, Nat Methods 14:865 (GEO GSE100866)",
            files=(
                RemoteFile(
                    "GSE100866_CBMC_8K_13AB_10X-RNA_umi.csv.gz",
                    "https://ftp.ncbi.nlm.nih.gov/geo/series/GSE100nnn/GSE100866/suppl/"
                    "GSE100866_CBMC_8K_13AB_10X-RNA_umi.csv.gz",
                ),
                RemoteFile(
                    "GSE100866_CBMC_8K_13AB_10X-ADT_umi.csv.gz",
                    "https://ftp.ncbi.nlm.nih.gov/geo/series/GSE100nnn/GSE100866/suppl/"
                    "GSE100866_CBMC_8K_13AB_10X-ADT_umi.csv.gz",
                ),
                RemoteFile(
                    "cbmc8k_labels.csv",
                    manual=_r_labels("cbmc", "rna_annotations", "cbmc8k_labels.csv"),
                    optional=True,
                ),
            ),
            build=_build_cbmc8k,
            label_key="rna_annotations",
            notes=(
                "human genes only (HUMAN_ prefix); ADTs CCR5, CCR7, CD10 dropped as in SeuratData",
            ),
        ),
        Dataset(
            name="bmcite30k",
            description="CITE-seq bone marrow, 30,672 labelled cells, RNA + 25 ADTs, 27 labels",
            citation="Stuart et al. 2019, Cell 177:1888 (GEO GSE128639)",
            files=(
                RemoteFile(
                    "GSE128639_citeseq_rna_counts.tsv.gz",
                    "https://ftp.ncbi.nlm.nih.gov/geo/series/GSE128nnn/GSE128639/suppl/"
                    "GSE128639_citeseq_rna_counts.tsv.gz",
                ),
                RemoteFile(
                    "GSE128639_citeseq_adt_counts.tsv.gz",
                    "https://ftp.ncbi.nlm.nih.gov/geo/series/GSE128nnn/GSE128639/suppl/"
                    "GSE128639_citeseq_adt_counts.tsv.gz",
                ),
                RemoteFile(
                    "bmcite30k_labels.csv",
                    manual=_r_labels("bmcite", "celltype.l2", "bmcite30k_labels.csv"),
                    optional=True,
                ),
            ),
            build=_build_bmcite30k,
            label_key="celltype.l2",
            notes=(
                "with the labels file, only its 30,672 cells are kept (the SeuratData cell set)",
            ),
        ),
        Dataset(
            name="malt10k",
            description="CITE-seq MALT tumour, 8,412 cells, RNA + 17 ADTs (10x Genomics)",
            citation="10x Genomics dataset malt_10k_protein_v3 (Cell Ranger 3.0.0)",
            files=(
                RemoteFile(
                    "malt_10k_protein_v3_filtered_feature_bc_matrix.h5",
                    "https://cf.10xgenomics.com/samples/cell-exp/3.0.0/malt_10k_protein_v3/"
                    "malt_10k_protein_v3_filtered_feature_bc_matrix.h5",
                ),
                RemoteFile("malt10k_labels.csv", manual=_TENX_LABELS, optional=True),
            ),
            build=_build_10x(
                "malt_10k_protein_v3_filtered_feature_bc_matrix.h5", "malt10k_labels.csv", "label"
            ),
            label_key="label",
        ),
        Dataset(
            name="kotliarov50k",
            description="CITE-seq PBMC of 20 donors, 52,117 cells, RNA + 87 ADTs, 2 batches",
            citation="Kotliarov et al. 2020, Nat Med 26:618 (NIH figshare collection 4753772)",
            files=(
                RemoteFile(
                    "H1_day0_demultilexed_singlets.RDS",
                    "https://nih.figshare.com/ndownloader/files/20706642",
                ),
            ),
            build=_build_kotliarov50k,
            label_key="celltype_joint",
            batch_key="batch",
            notes=(
                "needs one R export step (the message says exactly which); the label column name "
                "in the object's metadata could not be checked offline: set data.label_key if it differs",
            ),
        ),
        Dataset(
            name="pbmc10k_multiome",
            description="10x Multiome PBMC (granulocytes sorted out), ~11,900 cells, RNA + ATAC peaks",
            citation="10x Genomics dataset pbmc_granulocyte_sorted_10k (Cell Ranger ARC 1.0.0)",
            files=(
                RemoteFile(
                    "pbmc_granulocyte_sorted_10k_filtered_feature_bc_matrix.h5",
                    "https://cf.10xgenomics.com/samples/cell-arc/1.0.0/pbmc_granulocyte_sorted_10k/"
                    "pbmc_granulocyte_sorted_10k_filtered_feature_bc_matrix.h5",
                    known_hash="md5:920b16bf1e63b6610bf74bf9040ed386",  # as listed by scverse/mudatasets
                ),
                RemoteFile("pbmc10k_multiome_labels.csv", manual=_TENX_LABELS, optional=True),
            ),
            build=_build_10x(
                "pbmc_granulocyte_sorted_10k_filtered_feature_bc_matrix.h5",
                "pbmc10k_multiome_labels.csv",
                "label",
            ),
            label_key="label",
        ),
        Dataset(
            name="snare_cellline",
            description="SNARE-seq cell-line mixture (BJ, GM12878, H1, K562), RNA + chromatin",
            citation="Chen, Lake & Zhang 2019, Nat Biotechnol 37:1452 (GEO GSE126074); labels from cmzuo11/DCCA",
            files=(
                RemoteFile(
                    "GSE126074_CellLineMixture_SNAREseq_cDNA_counts.tsv.gz",
                    "https://ftp.ncbi.nlm.nih.gov/geo/series/GSE126nnn/GSE126074/suppl/"
                    "GSE126074_CellLineMixture_SNAREseq_cDNA_counts.tsv.gz",
                ),
                RemoteFile(
                    "GSE126074_CellLineMixture_SNAREseq_chromatin_counts.tsv.gz",
                    "https://ftp.ncbi.nlm.nih.gov/geo/series/GSE126nnn/GSE126074/suppl/"
                    "GSE126074_CellLineMixture_SNAREseq_chromatin_counts.tsv.gz",
                ),
                RemoteFile(
                    "snare_cell_metadata.txt",
                    "https://raw.githubusercontent.com/cmzuo11/DCCA/"
                    "61c8a217df5b557982fe905a4b27aed11c0e750e/Example_test/cell_metadata.txt",
                ),
            ),
            build=_build_snare_cellline,
            label_key="cell_line",
        ),
        Dataset(
            name="pancreas",
            description="Human pancreas from several technologies (scIB benchmark), ~16,000 cells, RNA",
            citation="Luecken et al. 2022, Nat Methods 19:41 (figshare 10.6084/m9.figshare.12420968)",
            files=(
                RemoteFile(
                    "human_pancreas_norm_complexBatch.h5ad",
                    "https://ndownloader.figshare.com/files/24539828",
                ),
            ),
            build=_build_pancreas,
            label_key="celltype",
            batch_key="tech",
            notes=("counts from layers['counts'] (X holds the scIB normalisation)",),
        ),
    )
}


def get(name: str) -> Dataset:
    if name not in DATASETS:
        raise DataError(
            f"data.source.name: unknown registry dataset {name!r}; available: {sorted(DATASETS)}"
        )
    return DATASETS[name]


def dataset_dir(name: str, root: str | Path | None = None) -> Path:
    return (Path(root).expanduser() if root else data_dir()) / name


def fetch_file(file: RemoteFile, folder: Path, *, progress: bool = True) -> Path | None:
    """Make one file present and verified in ``folder``; None for an absent optional file.

    A file already present is verified against its known or recorded hash and never
    re-downloaded; a missing manual file raises :class:`ManualStepRequired` (or logs the step
    when the file is optional).
    """
    target = folder / file.name
    if file.url is None:
        if target.exists():
            return target
        if file.optional:
            log.warning("%s: optional file %s is absent; %s", folder.name, target, file.manual)
            return None
        raise ManualStepRequired(f"{folder.name}: {target} is missing; {file.manual}")
    expected = file.known_hash or _recorded_hash(target)
    if target.exists():
        _verify(target, expected, file)
        return target
    folder.mkdir(parents=True, exist_ok=True)
    try:
        path = Path(
            pooch.retrieve(
                file.url, known_hash=expected, fname=file.name, path=folder, progressbar=progress
            )
        )
    except ValueError as err:  # pooch: hash mismatch; the download was discarded
        raise DataError(
            f"{folder.name}: download of {file.url} does not match its checksum "
            f"({expected}); the file was deleted and not used. {err}"
        ) from err
    except Exception as err:
        raise DataError(
            f"{folder.name}: could not download {file.url} ({type(err).__name__}: {err}). Download "
            f"it by hand and save it as {target} to continue without network."
        ) from err
    if file.known_hash is None:
        sha = file_sha256(path)
        _hash_record(target).write_text(sha + "\n")
        log.warning(
            "%s: %s has no published checksum; recorded its SHA-256 %s in %s (verified on later use)",
            folder.name,
            file.name,
            sha,
            _hash_record(target),
        )
    return path


def fetch(name: str, root: str | Path | None = None, *, progress: bool = True) -> Path:
    """Download (if needed) and build a registry dataset; returns the built ``<name>.h5mu``."""
    entry = get(name)
    folder = dataset_dir(name, root)
    built = folder / f"{name}.v{BUILD_VERSION}.h5mu"
    if built.exists():
        return built
    for file in entry.files:
        fetch_file(file, folder, progress=progress)
    log.info("building %s from %s", name, folder)
    mdata = entry.build(folder)
    return atomic_write_h5mu(mdata, built)


def _hash_record(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _recorded_hash(target: Path) -> str | None:
    record = _hash_record(target)
    return f"sha256:{record.read_text().strip()}" if record.exists() else None


def _verify(target: Path, expected: str | None, file: RemoteFile) -> None:
    if expected is None:
        sha = file_sha256(target)
        _hash_record(target).write_text(sha + "\n")
        log.warning(
            "%s: recorded SHA-256 %s of the existing file (no published checksum)", target, sha
        )
        return
    algorithm, _, value = expected.partition(":")
    actual = pooch.file_hash(str(target), alg=algorithm)
    if actual != value:
        raise DataError(
            f"{target} does not match its checksum ({algorithm} {actual}, expected {value}); "
            f"it is damaged or a different version: delete it and run again to re-download "
            f"from {file.url}"
        )


def main(argv: list[str] | None = None) -> None:
    """``python -m scmint.data.registry list | info NAME | fetch NAME``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m scmint.data.registry", description=main.__doc__
    )
    parser.add_argument("command", choices=["list", "info", "fetch"])
    parser.add_argument("name", nargs="?")
    args = parser.parse_args(argv)
    if args.command == "list":
        for d in DATASETS.values():
            print(f"{d.name:18s} {d.description}")
        return
    entry = get(args.name or "")
    if args.command == "fetch":
        logging.basicConfig(level=logging.INFO)
        print(fetch(entry.name))
        return
    print(
        f"{entry.name}: {entry.description}\n  {entry.citation}\n  folder: {dataset_dir(entry.name)}"
    )
    for f in entry.files:
        origin = f.url or f"manual step: {f.manual}"
        print(
            f"  - {f.name}{' (optional)' if f.optional else ''}\n      {origin}\n      checksum: "
            f"{f.known_hash or 'none published; SHA-256 recorded on first download'}"
        )
    for note in entry.notes:
        print(f"  note: {note}")


if __name__ == "__main__":
    main()
