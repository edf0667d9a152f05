"""Method-agnostic evaluation of cell embeddings (DESIGN.md §4; every metric in docs/evaluation.md).

``evaluate_embedding`` is the one entry point ``train.py`` and ``scmint-eval`` call; the group
modules (clustering, label_structure, batch, modality, transfer, reconstruction) hold one metric
family each and can be used on their own.
"""

from scmint.metrics.config import GROUPS, EvaluationConfig
from scmint.metrics.evaluate import evaluate_embedding

__all__ = ["GROUPS", "EvaluationConfig", "evaluate_embedding"]
