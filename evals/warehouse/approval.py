"""Publish approvals: the validation gate's proof that exactly these tables of this run passed, the key to publish."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from evals.errors import TerminalError

if TYPE_CHECKING:
    import pyarrow as pa

    from evals.warehouse.record import RunRecord


class UnapprovedPublish(TerminalError):
    """A published write without the gate's approval for exactly that run and those rows."""


@dataclass(frozen=True)
class Approval:
    """Issued by :mod:`evals.validation.gate` after great-expectations passed a run's conformed tables.

    The warehouse publishes nothing without one, and only the rows it was issued for (by content digest): a code
    path that skips the gate, or changes a row after validation, is refused instead of publishing unchecked data.
    """

    run_id: str
    digest: str

    @classmethod
    def issue(cls, run_id: str, tables: Mapping[str, pa.Table]) -> Approval:
        """For the validation gate only (and test fixtures that build already-valid data)."""
        return cls(run_id, tables_digest(tables))

    def verify(self, record: RunRecord, tables: Mapping[str, pa.Table]) -> None:
        if self.run_id != record.run_id:
            raise UnapprovedPublish(f"approval is for run {self.run_id}, not {record.run_id}")
        if self.digest != tables_digest(tables):
            raise UnapprovedPublish(f"run {record.run_id}: the rows differ from the rows the validation gate passed")


def require_approval(approval: Approval | None, record: RunRecord, tables: Mapping[str, pa.Table]) -> None:
    """Refuse a published write that did not come through the validation gate."""
    if not isinstance(approval, Approval):
        raise UnapprovedPublish(
            f"run {record.run_id} ({record.model_id}): publishing needs the validation gate "
            "(evals.validation.validate_and_write); the warehouse refuses unvalidated rows"
        )
    approval.verify(record, tables)


def tables_digest(tables: Mapping[str, pa.Table]) -> str:
    """SHA-256 over each table's name, schema and rows (Arrow IPC bytes), in table-name order."""
    import pyarrow as pa

    digest = hashlib.sha256()
    for name in sorted(tables):
        table = tables[name].combine_chunks()
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema.remove_metadata()) as writer:
            writer.write_table(table.replace_schema_metadata(None))
        digest.update(name.encode() + b"\0")
        digest.update(sink.getvalue().to_pybytes())
    return digest.hexdigest()
