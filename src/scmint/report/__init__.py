"""Run records, multirun aggregation, tables and figures."""
