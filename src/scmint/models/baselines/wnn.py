"""Weighted nearest neighbours (Hao et al. 2021, Seurat v4) through muon's implementation.

WNN's output is a graph, not coordinates: each cell's neighbours under a per-cell weighting of
the modalities. The shared protocol clusters an embedding (Ward, k-means, Leiden on its kNN
graph), so the graph becomes coordinates by its spectral embedding (Laplacian eigenmaps,
``sklearn.manifold.spectral_embedding``) with k dimensions, k = the number of labels: k-means on
that embedding *is* spectral clustering of the WNN graph (Ng, Jordan & Weiss 2001), and Leiden on
its kNN graph follows the WNN graph's communities. This is the "spectral embedding" reading of
"the same clustering protocol on the graph", documented in docs/baselines.md.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
from sklearn.manifold import spectral_embedding

from scmint.data.datamodule import MultiOmicsDataModule
from scmint.models.base import Requirements
from scmint.models.baselines.base import Baseline
from scmint.models.baselines.inputs import DEFAULT_N_PCS, principal_components, require_fully_paired
from scmint.models.baselines.packages import captured_stdout, require
from scmint.models.inference import Embeddings

log = logging.getLogger(__name__)

#: Spectral dimensions when the data has no labels to count (scanpy's ``diffmap`` default, 15).
UNLABELLED_COMPONENTS = 15


class WNN(Baseline):
    """muon's multimodal neighbours on per-modality PCA, then the graph's spectral embedding.

    Per modality (muon's CITE-seq tutorial): PCA of the preprocessed features (scanpy defaults,
    ``n_pcs`` components), optional unit-L2 rows (``l2norm``), ``scanpy.pp.neighbors`` with its
    defaults (which reads ``X`` directly for modalities of at most 50 features, as the ADT panel
    of the tutorial); then ``muon.pp.neighbors`` (the WNN graph) with muon's defaults.

    Args:
        n_pcs: PCs per modality (scanpy's default 50, capped by the modality's size).
        l2norm: L2-normalise each cell's representation before the neighbour searches; muon's docs
            say this brings the result closest to Seurat's WNN, whose default does the same.
        n_components: spectral dimensions (None: the number of labels, see the module docstring).
        neighbors_options: keyword arguments of ``muon.pp.neighbors`` (empty: muon's defaults).
    """

    method_name: ClassVar[str] = "wnn"
    requirements: ClassVar[Requirements] = Requirements(min_modalities=2, paired=True)
    packages: ClassVar[tuple[str, ...]] = ("muon",)

    def __init__(
        self,
        data_spec,
        seed: int = 0,
        n_pcs: int = DEFAULT_N_PCS,
        l2norm: bool = True,
        n_components: int | None = None,
        neighbors_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(data_spec, seed)
        require_fully_paired(self.method_name, self.spec)
        if n_pcs < 1:
            raise ValueError(f"model.n_pcs must be >= 1, got {n_pcs}")
        if n_components is not None and n_components < 1:
            raise ValueError(f"model.n_components must be >= 1 or null, got {n_components}")
        self.mu = require("muon", self.method_name)
        self.n_pcs = n_pcs
        self.l2norm = l2norm
        self.n_components = n_components or self.spec.n_labels or UNLABELLED_COMPONENTS
        self.neighbors_options = dict(neighbors_options or {})

    def fit_embed(self, datamodule: MultiOmicsDataModule) -> Embeddings:
        cells = pd.DataFrame(index=datamodule.obs_names.astype(str))
        modalities = {}
        for m in self.spec.names:
            x = datamodule.features(m).numpy()
            adata = ad.AnnData(x, obs=cells.copy())
            adata.obsm["X_pca"] = principal_components(x, self.n_pcs, self.seed)
            modalities[m] = adata
        mdata = self.mu.MuData(modalities)
        with captured_stdout(log, "muon"):
            if self.l2norm:
                self.mu.pp.l2norm(mdata)
            for adata in mdata.mod.values():
                sc.pp.neighbors(adata, random_state=self.seed)
            self.mu.pp.neighbors(
                mdata, key_added="wnn", random_state=self.seed, **self.neighbors_options
            )
        graph = mdata.obsp["wnn_connectivities"]
        k = min(self.n_components, graph.shape[0] - 2)
        embedding = spectral_embedding(
            graph, n_components=k, random_state=self.seed, drop_first=True
        )
        weights = {m: float(np.mean(mdata.obs[f"{m}:mod_weight"])) for m in self.spec.names}
        self.fit_facts = {"spectral_components": k, "wnn_mean_modality_weight": weights}
        return Embeddings(embedding=embedding.astype(np.float32))
