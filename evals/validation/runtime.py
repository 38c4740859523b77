"""The process-wide GX ephemeral context: quiet, in memory, one pandas datasource, a local Data Docs site."""

from __future__ import annotations

import atexit
import functools
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.core import ExpectationSuiteValidationResult, ValidationDefinition
    from great_expectations.data_context import EphemeralDataContext
    from great_expectations.expectations import Expectation

log = logging.getLogger(__name__)

DATASOURCE = "evals"
DOCS_SITE = "evals"
MAX_KEPT_RESULTS = 200  # validation results (4 per run) listed on the Data Docs index of one process


def quiet_gx() -> None:
    """Call before importing GX: no usage analytics, no INFO chatter from its import-time decorators."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)


class Runtime:
    """One GX context per process: building it costs seconds (imports), validating a run then takes well under one.

    GX contexts are not thread-safe; a lock serializes validations within the process.
    """

    def __init__(self) -> None:
        quiet_gx()
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        self.lock = threading.Lock()
        self.docs_dir = Path(tempfile.mkdtemp(prefix="evals-gx-docs-"))
        # Rendered pages are uploaded to the warehouse; the local copy lives as long as the process.
        atexit.register(shutil.rmtree, self.docs_dir, ignore_errors=True)
        config = DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            analytics_enabled=False,
            # tqdm bars go to stderr, which Airflow logs at error level.
            progress_bars=ProgressBarsConfig(globally=False),
            data_docs_sites={
                DOCS_SITE: {
                    "class_name": "SiteBuilder",
                    "show_how_to_buttons": False,
                    "store_backend": {
                        "class_name": "TupleFilesystemStoreBackend",
                        "base_directory": str(self.docs_dir),
                    },
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                }
            },
        )
        self.context: EphemeralDataContext = gx.get_context(mode="ephemeral", project_config=config)
        self.datasource = self.context.data_sources.add_pandas(DATASOURCE)
        self._rendered: set[Any] = set()
        self._definitions: dict[str, tuple[str, ValidationDefinition]] = {}

    def validate(
        self,
        table: str,
        fingerprint: str,
        build: Callable[[], Sequence[Expectation]],
        frame: pd.DataFrame,
        *,
        parameters: dict[str, Any],
        run_name: str,
        index_columns: Sequence[str],
        sample_rows: int,
    ) -> ExpectationSuiteValidationResult:
        """Validate ``frame`` against the suite named ``table``; the result is kept for Data Docs.

        ``build`` is called only when ``fingerprint`` differs from the current suite's: GX's suite updates
        compare every expectation with every other one and cost more than the validation itself.
        """
        from great_expectations.core.run_identifier import RunIdentifier

        definition = self._definitions.get(table)
        if definition is None or definition[0] != fingerprint:
            self._definitions[table] = (fingerprint, self._replace_suite(table, build()))
        validation = self._definitions[table][1]
        store = self.context.validation_results_store
        known = set(store.list_keys())
        # Yes/no first: several times faster than collecting observed values and offending rows for every
        # expectation, and most runs pass.
        result = validation.run(
            batch_parameters={"dataframe": frame},
            expectation_parameters=parameters,
            run_id=RunIdentifier(run_name=run_name),
            result_format={"result_format": "BOOLEAN_ONLY"},
        )
        if result.success:
            return result
        # Failed: replace the yes/no result with one that says why.
        for key in set(store.list_keys()) - known:
            store.remove_key(key)
        result = validation.run(
            batch_parameters={"dataframe": frame},
            expectation_parameters=parameters,
            run_id=RunIdentifier(run_name=run_name),
            result_format={
                "result_format": "SUMMARY",
                "unexpected_index_column_names": list(index_columns),
                "partial_unexpected_count": sample_rows,
            },
        )
        return result

    def _replace_suite(self, table: str, expectations: Sequence[Expectation]) -> ValidationDefinition:
        import great_expectations as gx

        if table in self._definitions:
            self.context.validation_definitions.delete(table)
            self.context.suites.delete(table)
        suite = self.context.suites.add(gx.ExpectationSuite(name=table, expectations=list(expectations)))
        try:
            asset = self.datasource.get_asset(table)
        except LookupError:
            asset = self.datasource.add_dataframe_asset(table)
        try:
            batch_definition = asset.get_batch_definition("whole")
        except KeyError:
            batch_definition = asset.add_batch_definition_whole_dataframe("whole")
        return self.context.validation_definitions.add(
            gx.ValidationDefinition(name=table, data=batch_definition, suite=suite)
        )

    def build_docs(self, run_name: str) -> Path:
        """Render the pages of one run's validations (once) and the index of this process's validations."""
        store = self.context.validation_results_store
        keys = list(store.list_keys())
        # Results kept in memory are bounded: a long-lived worker validating many runs must not grow forever.
        for key in sorted(keys, key=lambda k: str(_run_id(k).run_time))[:-MAX_KEPT_RESULTS]:
            store.remove_key(key)
            self._rendered.discard(key)
        new: list[Any] = [k for k in store.list_keys() if _run_id(k).run_name == run_name and k not in self._rendered]
        if new:
            self.context.build_data_docs(site_names=[DOCS_SITE], resource_identifiers=new)
            self._rendered.update(new)
        return self.docs_dir


def _run_id(key: Any) -> Any:
    """The RunIdentifier of a validation result key (typed as a generic store key by GX)."""
    return key.run_id


@functools.cache
def runtime() -> Runtime:
    """The process's GX runtime, created on first use."""
    return Runtime()
