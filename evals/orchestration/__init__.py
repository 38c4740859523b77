"""Airflow glue: retry policy, GPU routing, params and the per-checkpoint task group (airflow.sdk only)."""
