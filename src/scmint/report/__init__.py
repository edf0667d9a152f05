"""Run records, multirun aggregation, tables and figures (docs/evaluation.md).

* :mod:`~scmint.report.run_record`: what ``train.py`` writes into a run directory
  (``write_run_record``, ``plot_umap``) and how it is read back;
* :mod:`~scmint.report.collect`: find the runs of sweep directories, tidy their metrics;
* :mod:`~scmint.report.tables` and :mod:`~scmint.report.figures`: mean ± sd tables, bar charts and
  the UMAP grid;
* :mod:`~scmint.report.cli`: ``scmint-report``.
"""

from scmint.report.run_record import plot_umap, read_metrics, write_json_atomic, write_run_record

__all__ = ["plot_umap", "read_metrics", "write_json_atomic", "write_run_record"]
