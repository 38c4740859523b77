"""Queries over the warehouse: DuckDB views, comparisons, reports."""
