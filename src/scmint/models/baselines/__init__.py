"""Comparison methods that are not trained by scmint's Trainer (PCA floor, WNN, MOFA+, Harmony...).

They share the datamodule, the evaluation and the run record with the LightningModules; only the
fitting differs: ``fit_embed(datamodule)`` instead of ``Trainer.fit``. Each is a thin adapter over
the field's own package (optional: ``pip install 'scmint[baselines]'``), imported when a model is
built, so importing this package needs none of them. See docs/baselines.md.
"""

from scmint.models.baselines.base import Baseline
from scmint.models.baselines.harmony import Harmony
from scmint.models.baselines.liger import LIGER
from scmint.models.baselines.mofa import MOFA
from scmint.models.baselines.packages import MissingPackageError
from scmint.models.baselines.pca import PCA
from scmint.models.baselines.scanorama import Scanorama
from scmint.models.baselines.totalvi import TotalVI
from scmint.models.baselines.wnn import WNN

__all__ = [
    "LIGER",
    "MOFA",
    "PCA",
    "WNN",
    "Baseline",
    "Harmony",
    "MissingPackageError",
    "Scanorama",
    "TotalVI",
]
