"""Method-agnostic evaluation of cell embeddings (DESIGN.md §4)."""

from scmint.metrics.clustering import evaluate_embedding

__all__ = ["evaluate_embedding"]
