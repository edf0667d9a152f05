"""What a model may know about its data before training: the contract between data and methods.

Methods are built from a :class:`DataSpec` (feature counts per modality, pairing, batches) so the
same LightningModule class works on any dataset; the datamodule produces the spec after loading
and preprocessing, and ``train.py`` hands it to the model's constructor.

Batch format (what every dataloader of :class:`~scmint.data.datamodule.MultiOmicsDataModule`
yields, and what every method's ``training_step`` / ``embed`` receives)::

    {
        "x":     {modality: FloatTensor[B, d_m]},   # preprocessed features
        "mask":  {modality: BoolTensor[B]},         # True where the cell has that modality
        "index": LongTensor[B],                      # row of the cell in the full dataset
        "label": LongTensor[B],                      # cell-type code, -1 if unknown (evaluation only)
        "batch": LongTensor[B],                      # batch code, 0 when there are no batches
    }
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Keys of one training batch (see the module docstring).
BATCH_KEYS = ("x", "mask", "index", "label", "batch")


@dataclass(frozen=True)
class DataSpec:
    """Shape of a dataset as a method sees it.

    Attributes:
        modalities: modality name -> number of features, in the data's modality order.
        n_cells: number of cells (rows) over all modalities.
        paired: True when at least two modalities share cells (vertical integration).
        fully_paired: True when every cell has every modality.
        n_batches: number of distinct batches (1 when the data has no batch column).
        n_labels: number of distinct cell-type labels (0 when labels are absent).
        kinds: modality name -> feature kind ("rna", "adt", "atac" or "other"); methods use it
            for defaults such as UMINT's per-modality hidden widths.
    """

    modalities: dict[str, int]
    n_cells: int
    paired: bool = False
    fully_paired: bool = False
    n_batches: int = 1
    n_labels: int = 0
    kinds: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.modalities)

    @property
    def total_features(self) -> int:
        return sum(self.modalities.values())

    def kind(self, modality: str) -> str:
        return self.kinds.get(modality, guess_kind(modality))

    def to_dict(self) -> dict:
        """Plain-dict form, stored in checkpoints via ``save_hyperparameters``."""
        return {
            "modalities": dict(self.modalities),
            "n_cells": self.n_cells,
            "paired": self.paired,
            "fully_paired": self.fully_paired,
            "n_batches": self.n_batches,
            "n_labels": self.n_labels,
            "kinds": dict(self.kinds),
        }

    @classmethod
    def from_dict(cls, d: dict | DataSpec) -> DataSpec:
        if isinstance(d, DataSpec):
            return d
        return cls(**{k: (dict(v) if isinstance(v, dict) else v) for k, v in dict(d).items()})


def guess_kind(modality: str) -> str:
    """Map a modality name to its feature kind by the usual names (rna/gex, adt/prot, atac/peaks)."""
    name = modality.lower()
    if name in {"rna", "gex", "gene", "genes", "expression"} or name.startswith("rna"):
        return "rna"
    if name in {"adt", "prot", "protein", "proteins", "antibody"} or name.startswith("adt"):
        return "adt"
    if name in {"atac", "peaks", "chromatin", "acc"} or name.startswith("atac"):
        return "atac"
    return "other"
