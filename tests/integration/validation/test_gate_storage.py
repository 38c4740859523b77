"""The validation gate against file:// and a real SeaweedFS bucket: quarantine, re-validation, Data Docs."""

from __future__ import annotations

import pytest
from unit.validation.validation_cases import EXPECTED, valid_run

from evals.errors import ValidationFailed
from evals.settings import get_settings
from evals.validation import quarantined_runs, revalidate, validate_and_write
from evals.warehouse import Warehouse
from evals.warehouse.keys import VALIDATION_DOCS_PREFIX as DOCS_PREFIX
from evals.warehouse.keys import validation_key as validation_path
from evals.warehouse.views import connect

pytestmark = pytest.mark.integration


def test_quarantine_then_revalidate_publishes_once(warehouse_uri: str) -> None:
    strict = Warehouse(warehouse_uri, get_settings(validation_data_docs=True))
    record, tables = valid_run()
    tables["latency"][0]["ttft_p95_ms"] = 5000.0  # above p99
    with pytest.raises(ValidationFailed, match="ttft percentiles ordered"):
        validate_and_write(record, tables, expected=EXPECTED, warehouse=strict)

    [kept] = quarantined_runs(strict)
    assert kept.run_id == record.run_id and kept.error and "ttft_p95_ms <= ttft_p99_ms" in kept.error
    result = strict.storage.read_json(validation_path(record.run_id))
    assert result["kind"] == "expectations" and result["expected"]["requests"]
    latency = strict.read_run_table("latency", kept, area="quarantine")
    assert latency is not None and sorted(latency.column("ttft_p95_ms").to_pylist())[-1] == 5000.0
    con = connect(strict)
    assert con.execute("select count(*) from runs").fetchone() == (0,)
    assert con.execute("select count(*) from quarantined_latency").fetchone() == (2,)

    # GX Data Docs of the failed validation were rendered and copied next to the data.
    assert strict.storage.exists(f"{DOCS_PREFIX}/index.html")
    index = strict.storage.read_bytes(f"{DOCS_PREFIX}/index.html").decode()
    assert record.run_id in index

    with pytest.raises(ValidationFailed):
        revalidate(record.run_id, warehouse=strict)  # nothing changed: still fails, stays quarantined

    # A threshold change cannot fix unordered percentiles: fix the data via a rerun instead.
    tables["latency"][0]["ttft_p95_ms"] = tables["latency"][0]["ttft_p90_ms"]
    validate_and_write(record, tables, expected=EXPECTED, warehouse=strict)
    published, now = revalidate(record.run_id, warehouse=strict)
    assert published.status == "published" and not now
    con = connect(strict)
    assert con.execute("select count(*) from runs").fetchone() == (1,)
    assert con.execute("select count(*) from latency_samples").fetchone() == (40,)
    assert con.execute("select count(*) from quarantined_latency").fetchone() == (0,)
    assert not strict.storage.exists(validation_path(record.run_id))


def test_threshold_change_publishes_a_quarantined_run(warehouse_uri: str) -> None:
    record, tables = valid_run()
    tables["latency"][1]["e2e_p99_ms"] = 2000.0
    strict = Warehouse(warehouse_uri, get_settings(validation_data_docs=False, validation_max_latency_ms=1000))
    with pytest.raises(ValidationFailed, match="e2e_p99_ms is finite, > 0 and <= 1000 ms"):
        validate_and_write(record, tables, expected=EXPECTED, warehouse=strict)

    relaxed = Warehouse(warehouse_uri, get_settings(validation_data_docs=False, validation_max_latency_ms=5000))
    assert revalidate(record.run_id, warehouse=relaxed)[1] is True
    assert revalidate(record.run_id, warehouse=relaxed)[1] is False
    con = connect(relaxed)
    assert con.execute("select run_id, status from runs").fetchall() == [(record.run_id, "published")]
    assert con.execute("select count(*) from latency").fetchone() == (2,)
    assert quarantined_runs(relaxed) == []
