"""The warehouse publishes only rows the validation gate approved: no path can skip the gate by accident."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import all_tables, publish_run, run_record

from evals.warehouse import Warehouse
from evals.warehouse.approval import Approval, UnapprovedPublish
from evals.warehouse.rows import conform_run_table
from evals.warehouse.views import connect


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    return Warehouse(f"file://{tmp_path}/wh")


def test_a_published_write_without_approval_is_refused_and_writes_nothing(wh: Warehouse) -> None:
    record = run_record()
    with pytest.raises(UnapprovedPublish, match="publishing needs the validation gate"):
        wh.write_run(record, all_tables(record))
    assert wh.run_records() == []
    assert connect(wh).execute("select count(*) from accuracy").fetchone() == (0,)


def test_an_approval_covers_only_the_rows_it_was_issued_for(wh: Warehouse) -> None:
    record = run_record()
    tables = all_tables(record)
    conformed = {name: conform_run_table(name, rows, record) for name, rows in tables.items()}
    approval = Approval.issue(record.run_id, conformed)
    tables["accuracy"][0]["value"] = 0.99  # changed after validation
    with pytest.raises(UnapprovedPublish, match="differ from the rows the validation gate passed"):
        wh.write_run(record, tables, approval=approval)
    other = run_record("org/other")
    with pytest.raises(UnapprovedPublish, match=f"approval is for run {record.run_id}"):
        wh.write_run(other, all_tables(other), approval=approval)
    assert wh.run_records() == []


def test_quarantine_needs_no_approval_and_approved_rows_publish(wh: Warehouse) -> None:
    bad, good = run_record("org/bad"), run_record("org/good")
    wh.write_run(bad.replace(error="checked and failed"), all_tables(bad), status="quarantined")
    publish_run(wh, good, all_tables(good))
    assert {(r.model_id, r.status) for r in wh.run_records()} == {("org/bad", "quarantined"), ("org/good", "published")}
