"""The Iceberg catalog and tables: which catalog (SQLite, PostgreSQL, REST), table schemas, properties, evolution."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.errors import ConfigError, StorageUnavailable
from evals.schemas import PARTITION_COLUMN, TABLES, arrow_schema, schema_version

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.schema import Schema
    from pyiceberg.table import Table

    from evals.settings import Settings
    from evals.warehouse.storage import Location

log = logging.getLogger(__name__)
# pyiceberg logs "Loaded FileIO" at INFO on every table load: dozens of lines per query, saying nothing new.
logging.getLogger("pyiceberg.io").setLevel(logging.WARNING)

AREAS = ("published", "quarantine")
SCHEMA_VERSION_PROPERTY = "evals.schema-version"
# Set once a table's schema has grown: its older data files lack the new columns, so readers that open the files
# themselves (DuckDB's read_parquet) must match columns by name and fill the missing ones with nulls.
EVOLVED_PROPERTY = "evals.schema-evolved"
PARTITION_FIELD_ID = 1000  # Iceberg's first partition field id


class LostRaces(logging.Filter):
    """Counts pyiceberg's "Commit failed due to a concurrent update, retrying" warnings: commits of this process
    that lost a race to another writer of the same table and were retried (see :func:`table_properties`)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith("Commit failed due to a concurrent update"):
            self.count += 1
        return True  # counted, never hidden


LOST_RACES = LostRaces()
logging.getLogger("pyiceberg.table").addFilter(LOST_RACES)

_CATALOGS: dict[tuple[Any, ...], Catalog] = {}
_CATALOGS_LOCK = threading.Lock()


def table_properties(settings: Settings, table: str) -> dict[str, str]:
    """Properties every table is created with (and brought to): small metadata, patient commits.

    Metadata: merged manifests and at most 10 old metadata.json files keep a commit O(1) as nights accumulate
    (measured: 200 appends 25 s with defaults, 6.7 s with these). Commits: a writer that loses a race refreshes
    and retries ``EVALS_COMMIT_RETRIES`` times, waiting 100 ms, 200 ms, ... up to 5 s, for at most 10 minutes;
    pyiceberg re-validates the retry (a conflicting overwrite fails instead of clobbering).
    """
    retention_ms = int(settings.snapshot_retention_hours * 3600 * 1000)
    return {
        "format-version": "2",
        "write.parquet.compression-codec": "zstd",
        "commit.manifest-merge.enabled": "true",
        "commit.manifest.min-count-to-merge": "20",
        "write.metadata.delete-after-commit.enabled": "true",
        "write.metadata.previous-versions-max": "10",
        "history.expire.max-snapshot-age-ms": str(retention_ms),
        "history.expire.min-snapshots-to-keep": "1",
        "commit.retry.num-retries": str(settings.commit_retries),
        "commit.retry.min-wait-ms": "100",
        "commit.retry.max-wait-ms": "5000",
        "commit.retry.total-timeout-ms": "600000",
        SCHEMA_VERSION_PROPERTY: str(schema_version(table)),
    }


def iceberg_schema(table: str) -> Schema:
    """``table``'s Iceberg schema: the Arrow schema of ``evals.schemas`` with field ids 1..n in column order
    (nested fields numbered after the top level), docs and required flags carried over."""
    from pyiceberg.io.pyarrow import _ConvertToIcebergWithoutIDs, visit_pyarrow
    from pyiceberg.schema import assign_fresh_schema_ids

    without_ids = visit_pyarrow(arrow_schema(table), _ConvertToIcebergWithoutIDs())
    return assign_fresh_schema_ids(without_ids)


def io_properties(location: Location, settings: Settings) -> dict[str, str]:
    """FileIO properties for the warehouse: S3 endpoint and credentials (settings, Airflow connection, AWS chain)."""
    from urllib.parse import urlparse

    props = {"py-io-impl": "pyiceberg.io.pyarrow.PyArrowFileIO"}
    if location.scheme != "s3":
        return props
    props["s3.region"] = settings.s3_region
    props["s3.force-virtual-addressing"] = "false"  # loopback and on-prem stores have no per-bucket DNS names
    from evals.warehouse.storage import s3_access

    endpoint, creds = s3_access(settings)
    if creds is not None:
        props["s3.access-key-id"] = creds.access_key
        props["s3.secret-access-key"] = creds.secret_key
        if creds.session_token:
            props["s3.session-token"] = creds.session_token
    if endpoint:
        parsed = urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")
        props["s3.endpoint"] = f"{parsed.scheme or 'http'}://{parsed.netloc}"
    return props


def catalog_uri(location: Location, settings: Settings) -> str:
    """The catalog's URI: the setting, else SQLite inside a file:// warehouse."""
    if settings.catalog_uri:
        return settings.catalog_uri
    if location.scheme != "file":
        raise ConfigError(
            "an s3:// warehouse needs a shared catalog: set EVALS_CATALOG_URI (postgresql+psycopg2://..., a REST "
            "catalog http(s)://..., or sqlite:////abs/path.db for a single machine)"
        )
    Path(location.root).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{location.root}/_catalog.db"


def open_catalog(location: Location, settings: Settings) -> Catalog:
    """The warehouse's catalog, one per process and configuration (threads share its connection pool)."""
    uri = catalog_uri(location, settings)
    props = {**io_properties(location, settings), **settings.catalog_properties}
    props.setdefault("warehouse", location.uri)
    if settings.catalog_credential is not None:
        props["credential"] = settings.catalog_credential.get_secret_value()
    key = (settings.catalog_name, uri, tuple(sorted(props.items())))
    with _CATALOGS_LOCK:
        if key not in _CATALOGS:
            _CATALOGS[key] = _new_catalog(settings.catalog_name, uri, props)
        return _CATALOGS[key]


def _new_catalog(name: str, uri: str, props: dict[str, str]) -> Catalog:
    try:
        if uri.startswith(("http://", "https://")):
            from pyiceberg.catalog.rest import RestCatalog  # imports requests: ~0.3 s a SQL catalog need not pay

            return RestCatalog(name, uri=uri, **props)
        from evals.warehouse.sql_catalog import CachingSqlCatalog

        if uri.startswith("sqlite:") and "timeout=" not in uri:
            # Writers of different runs commit at once; SQLite serializes them, so wait for the lock a while.
            uri += ("&" if "?" in uri else "?") + "timeout=60"
        elif not uri.startswith("sqlite:"):
            # A process keeps its catalog for its lifetime (the CLI over a watch-list, a service): after the
            # database restarts every pooled connection is dead, and without a ping its next commit failed on one.
            props = {"pool_pre_ping": "true", **props}
        return CachingSqlCatalog(name, uri=uri, **props)
    except Exception as exc:
        shown = uri.split("@")[-1] if "@" in uri else uri  # never log a password from the URL
        raise StorageUnavailable(f"cannot open the Iceberg catalog at {shown}: {exc}") from exc


def catalog_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the SQL catalog's database could not be reached (down, restarting, connection lost):
    worth a retry, unlike a refused statement."""
    sa_exc = sys.modules.get("sqlalchemy.exc")  # not imported: the error cannot be SQLAlchemy's
    if sa_exc is None:
        return False
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError))


@contextmanager
def reaching_the_catalog(what: str) -> Iterator[None]:
    """Run a catalog call for ``what``: an unreachable catalog (:func:`catalog_unreachable`) becomes the retryable
    StorageUnavailable, on reads as on commits; any other error goes through unchanged."""
    try:
        yield
    except Exception as exc:
        if not catalog_unreachable(exc):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise StorageUnavailable(f"{what}: the Iceberg catalog is unreachable: {first}") from exc


class Tables:
    """The warehouse's Iceberg tables: ``<namespace>.<table>`` for published, failed and derived rows, and
    ``<quarantine namespace>.<table>`` with the same schemas for quarantined runs."""

    def __init__(self, catalog: Catalog, settings: Settings) -> None:
        self.catalog = catalog
        self.settings = settings
        self.namespaces = {"published": settings.catalog_namespace, "quarantine": settings.catalog_quarantine_namespace}
        self._ready: set[tuple[str, str]] = set()

    def identifier(self, table: str, area: str = "published") -> tuple[str, str]:
        if table not in TABLES:
            raise ConfigError(f"unknown table {table!r}; tables: {', '.join(TABLES)}")
        return (self.namespaces[area], table)

    def existing(self, table: str, area: str = "published") -> Table | None:
        """The table as it is now, or None when nothing was ever written to it."""
        from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

        from evals.warehouse.transaction import writable

        with reaching_the_catalog(f"load {area} table {table}"):
            try:
                return writable(self.catalog.load_table(self.identifier(table, area)))
            except (NoSuchTableError, NoSuchNamespaceError):
                return None

    def present(self, area: str = "published") -> set[str]:
        """The tables of ``area`` that exist now: one catalog query, where asking for each table is one apiece."""
        from pyiceberg.exceptions import NoSuchNamespaceError

        with reaching_the_catalog(f"list the {area} tables"):
            try:
                listed = self.catalog.list_tables(self.namespaces[area])
            except NoSuchNamespaceError:
                return set()
        return {identifier[-1] for identifier in listed} & set(TABLES)

    def load(self, table: str, area: str = "published") -> Table:
        """The table, created on first use; a table of an older schema version is evolved first."""
        found = self.existing(table, area)
        if found is None:
            namespace = self.namespaces[area]
            try:
                self.catalog.create_namespace(namespace)
            except Exception:  # a concurrent creator won (SQLite reports it as an IntegrityError)
                if not self.catalog.namespace_exists(namespace):
                    raise
            try:
                found = self._create(table, area)
            except Exception:  # another writer created it first, else a real error
                found = self.existing(table, area)
                if found is None:
                    raise
        if (area, table) not in self._ready:
            found = self._evolve(found, table)
            self._ready.add((area, table))
        return found

    def _create(self, table: str, area: str) -> Table:
        from pyiceberg.partitioning import PartitionField, PartitionSpec
        from pyiceberg.transforms import IdentityTransform

        schema = iceberg_schema(table)
        spec = PartitionSpec(
            PartitionField(
                source_id=schema.find_field(PARTITION_COLUMN).field_id,
                field_id=PARTITION_FIELD_ID,
                transform=IdentityTransform(),
                name=PARTITION_COLUMN,
            )
        )
        log.info("creating Iceberg table %s.%s", self.namespaces[area], table)
        from evals.warehouse.transaction import writable

        return writable(
            self.catalog.create_table(
                self.identifier(table, area),
                schema=schema,
                partition_spec=spec,
                properties=table_properties(self.settings, table),
            )
        )

    def _evolve(self, found: Table, table: str) -> Table:
        """Bring a table written by an older schema version (or with older properties) to the current one."""
        current = {field.name for field in found.schema().fields}
        wanted = iceberg_schema(table)
        missing = [field.name for field in wanted.fields if field.name not in current]
        props = table_properties(self.settings, table)
        stale = {k: v for k, v in props.items() if k != "format-version" and found.properties.get(k) != v}
        if not missing and not stale:
            return found
        with found.transaction() as tx:
            if missing:
                log.info("evolving %s: adding column(s) %s", found.name(), ", ".join(missing))
                with tx.update_schema() as update:
                    update.union_by_name(wanted)
                stale[EVOLVED_PROPERTY] = "true"
            if stale:
                tx.set_properties(stale)
        return found.refresh()
