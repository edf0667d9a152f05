"""The no-learning floor: PCA of the concatenated preprocessed modalities.

Every table shows it so a method's score reads against what plain linear compression of the same
input gives (issue 6: on bmmc_cite_600 clustering the concatenated input already matches UMINT).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.decomposition import PCA as SkPCA

from scmint.data.datamodule import MultiOmicsDataModule
from scmint.models.baselines.base import Baseline
from scmint.models.inference import Embeddings


class PCA(Baseline):
    """PCA (``n_components``, capped by the number of features and cells) of all modalities side by side.

    Args:
        n_components: embedding size (64 by default, matching UMINT's latent size).
    """

    method_name: ClassVar[str] = "pca"

    def __init__(self, data_spec, seed: int = 0, n_components: int = 64) -> None:
        super().__init__(data_spec, seed)
        if n_components < 1:
            raise ValueError(f"model.n_components must be >= 1, got {n_components}")
        self.n_components = n_components

    def fit_embed(self, datamodule: MultiOmicsDataModule) -> Embeddings:
        x = np.concatenate([datamodule.features(m).numpy() for m in self.spec.modalities], axis=1)
        k = min(self.n_components, x.shape[1], x.shape[0])
        pca = SkPCA(n_components=k, random_state=self.seed, svd_solver="auto")
        return Embeddings(embedding=pca.fit_transform(x).astype(np.float32))
