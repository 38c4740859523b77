"""The warehouse: Apache Iceberg tables on file:// or s3:// (commits, quarantine, snapshots, compaction)."""

from evals.warehouse.keys import eval_date_of, make_run_id
from evals.warehouse.record import RunRecord
from evals.warehouse.store import DATA_TABLES, Warehouse

__all__ = ["DATA_TABLES", "RunRecord", "Warehouse", "eval_date_of", "make_run_id"]
