"""The Iceberg catalog settings and the table definitions derived from ``evals.schemas``."""

from pathlib import Path

import pytest
from pydantic import SecretStr
from pyiceberg.schema import index_by_id

from evals.errors import ConfigError
from evals.schemas import COLUMNS, PARTITION_COLUMN, TABLES
from evals.settings import get_settings
from evals.warehouse.catalog import (
    catalog_unreachable,
    catalog_uri,
    iceberg_schema,
    io_properties,
    table_properties,
)
from evals.warehouse.storage import parse_uri


@pytest.mark.parametrize("table", TABLES)
def test_every_schema_table_maps_to_an_iceberg_schema_with_ids_in_column_order(table: str) -> None:
    schema = iceberg_schema(table)
    columns = COLUMNS[table]
    assert [f.name for f in schema.fields] == [c.name for c in columns]
    assert [f.field_id for f in schema.fields] == list(range(1, len(columns) + 1))
    assert [not f.required for f in schema.fields] == [c.nullable for c in columns]
    assert str(schema.find_field(PARTITION_COLUMN).field_type) == "date"
    assert schema.highest_field_id == len(index_by_id(schema))  # nested fields too: ids 1..n, none reused


def test_nested_fields_are_numbered_after_the_top_level() -> None:
    schema = iceberg_schema("runs")
    hardware = schema.find_field("hardware").field_type
    top = len(COLUMNS["runs"])
    assert all(f.field_id > top for f in hardware.fields)  # type: ignore[attr-defined]
    assert [f.name for f in hardware.fields] == ["gpu_name", "gpu_count", "gpu_driver", "cpu"]  # type: ignore[attr-defined]


def test_embedded_catalog_is_sqlite_inside_a_file_warehouse(tmp_path: Path) -> None:
    settings = get_settings(warehouse=f"file://{tmp_path}/wh")
    assert catalog_uri(parse_uri(settings.warehouse), settings) == f"sqlite:///{tmp_path}/wh/_catalog.db"
    assert (tmp_path / "wh").is_dir()


def test_an_s3_warehouse_needs_a_shared_catalog() -> None:
    settings = get_settings(warehouse="s3://bucket/prefix")
    with pytest.raises(ConfigError, match="EVALS_CATALOG_URI"):
        catalog_uri(parse_uri(settings.warehouse), settings)
    pg = "postgresql+psycopg2://iceberg:pw@postgres:5432/iceberg_catalog"
    settings = get_settings(warehouse="s3://bucket/prefix", catalog_uri=pg)
    assert catalog_uri(parse_uri(settings.warehouse), settings) == pg


def test_s3_file_io_properties_come_from_the_settings() -> None:
    settings = get_settings(
        warehouse="s3://bucket/prefix",
        s3_endpoint="127.0.0.1:8333",
        s3_access_key_id=SecretStr("key"),
        s3_secret_access_key=SecretStr("secret"),
    )
    props = io_properties(parse_uri(settings.warehouse), settings)
    assert props["s3.endpoint"] == "http://127.0.0.1:8333"
    assert (props["s3.access-key-id"], props["s3.secret-access-key"]) == ("key", "secret")
    assert props["s3.force-virtual-addressing"] == "false"
    local = io_properties(parse_uri("file:///tmp/wh"), settings)
    assert not any(key.startswith("s3.") for key in local)


def test_table_properties_keep_metadata_small_and_commits_patient() -> None:
    props = table_properties(get_settings(commit_retries=7, snapshot_retention_hours=2), "runs")
    assert props["commit.retry.num-retries"] == "7"
    assert props["commit.manifest-merge.enabled"] == "true"
    assert props["write.metadata.delete-after-commit.enabled"] == "true"
    assert int(props["write.metadata.previous-versions-max"]) <= 10
    assert props["history.expire.max-snapshot-age-ms"] == str(2 * 3600 * 1000)


def test_an_unreachable_catalog_database_is_told_from_a_refused_statement() -> None:
    from sqlalchemy import exc as sa

    class Dbapi(Exception):
        pass

    assert catalog_unreachable(sa.OperationalError("select 1", {}, Dbapi("connection refused")))
    assert catalog_unreachable(sa.InterfaceError("select 1", {}, Dbapi("connection already closed")))
    lost = sa.DBAPIError("select 1", {}, Dbapi("server closed the connection"), connection_invalidated=True)
    assert catalog_unreachable(lost)
    assert not catalog_unreachable(sa.IntegrityError("insert", {}, Dbapi("duplicate key")))
    assert not catalog_unreachable(sa.ProgrammingError("selct", {}, Dbapi("syntax error")))
    assert not catalog_unreachable(ValueError("connection refused"))
