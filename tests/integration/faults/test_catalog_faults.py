"""Publishing while the Iceberg catalog's PostgreSQL restarts: a process that keeps its catalog across the restart
publishes its next run without a failed attempt, a publish the outage cuts in half fails as retryable, leaves
nothing visible, and its retry publishes exactly once, and a read during the outage fails as retryable too."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from integration.distributed.services import LocalPostgres, Postgres, Unavailable, postgres_server
from integration.faults.outage import outage_after_the_first_table
from unit.validation.validation_cases import EXPECTED, valid_run

from evals.errors import EvalsError
from evals.settings import get_settings
from evals.validation import validate_and_write
from evals.warehouse import Warehouse
from evals.warehouse.views import connect

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def catalog_db() -> Iterator[tuple[Postgres, LocalPostgres]]:
    pytest.importorskip("psycopg2", reason="needs the celery extra: pip install -e '.[celery]'")
    try:
        with postgres_server("catalog") as (database, local):
            if local is None:
                pytest.skip("EVALS_TEST_POSTGRES_URL names a server these tests may not restart")
            yield database, local
    except Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def warehouse_uri(catalog_db: tuple[Postgres, LocalPostgres], monkeypatch: pytest.MonkeyPatch) -> str:
    database, _ = catalog_db
    monkeypatch.setenv("EVALS_CATALOG_URI", database.url())
    monkeypatch.setenv("EVALS_MANIFEST_CACHE_DIR", tempfile.mkdtemp(prefix="catalog-faults-cache-"))
    root = Path(tempfile.mkdtemp(prefix="catalog-faults-"))
    # One catalog per test: the catalog database outlives each test.
    monkeypatch.setenv("EVALS_CATALOG_NAME", f"evals_{root.name.rsplit('-', 1)[-1].lower()}")
    return f"file://{root}/warehouse"


def _published(uri: str) -> dict[str, int]:
    with connect(Warehouse(uri, get_settings())) as con:
        return {
            table: con.execute(f"select count(*) from {table}").fetchone()[0]
            for table in ("runs", "accuracy", "latency", "latency_samples")
        }


def _once(tables: dict[str, Any]) -> dict[str, int]:
    return {"runs": 1, **{name: len(tables[name]) for name in ("accuracy", "latency", "latency_samples")}}


def test_a_worker_publishes_its_next_run_after_the_catalog_restarted(
    catalog_db: tuple[Postgres, LocalPostgres], warehouse_uri: str
) -> None:
    _, local = catalog_db
    warehouse = Warehouse(warehouse_uri, get_settings())  # kept, as a long-lived publishing process keeps it
    first, first_tables = valid_run()
    validate_and_write(first, first_tables, expected=EXPECTED, warehouse=warehouse)

    local.stop()
    local.start()  # every connection the worker's pool holds is now dead

    second, second_tables = valid_run(model_id="org/second-model")
    validate_and_write(second, second_tables, expected=EXPECTED, warehouse=warehouse)
    counts = _published(warehouse_uri)
    assert counts["runs"] == 2
    assert counts["accuracy"] == len(first_tables["accuracy"]) + len(second_tables["accuracy"])


def test_the_catalog_stops_mid_publish_and_the_retry_publishes_exactly_once(
    catalog_db: tuple[Postgres, LocalPostgres], warehouse_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, local = catalog_db
    warehouse = Warehouse(warehouse_uri, get_settings())
    record, tables = valid_run()
    try:
        with (
            outage_after_the_first_table(monkeypatch, local.stop) as stopped,
            pytest.raises(EvalsError) as failed,
        ):
            validate_and_write(record, tables, expected=EXPECTED, warehouse=warehouse)
    finally:
        if local.process is None:
            local.start()
    assert stopped, "the outage never happened"
    assert failed.value.retryable, f"an unreachable catalog must be retried, got {failed.value!r}"
    assert "catalog is unreachable" in str(failed.value)

    assert _published(warehouse_uri) == {"runs": 0, "accuracy": 0, "latency": 0, "latency_samples": 0}
    validate_and_write(record, tables, expected=EXPECTED, warehouse=warehouse)  # the retry, same process
    assert _published(warehouse_uri) == _once(tables)


def test_a_read_while_the_catalog_is_down_fails_retryable_and_reads_once_it_is_back(
    catalog_db: tuple[Postgres, LocalPostgres], warehouse_uri: str
) -> None:
    _, local = catalog_db
    warehouse = Warehouse(warehouse_uri, get_settings())  # kept across the outage, as a service keeps it
    record, tables = valid_run()
    validate_and_write(record, tables, expected=EXPECTED, warehouse=warehouse)
    local.stop()
    try:
        with pytest.raises(EvalsError) as failed:
            connect(warehouse)
    finally:
        local.start()
    assert failed.value.retryable, f"an unreachable catalog must be retried, got {failed.value!r}"
    assert "catalog is unreachable" in str(failed.value)
    assert _published(warehouse_uri) == _once(tables)
