"""scmint: single-cell multi-omics integration with PyTorch Lightning and Hydra."""

__version__ = "0.1.0"
