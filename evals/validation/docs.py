"""GX Data Docs of the latest validations, rendered locally and copied under ``<warehouse>/_reports/validation/``."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from evals.warehouse.keys import VALIDATION_DOCS_PREFIX as DOCS_PREFIX

if TYPE_CHECKING:
    from evals.warehouse import Warehouse

log = logging.getLogger(__name__)

_STATIC_MARKER = "static/styles/data_docs_default_styles.css"

# (warehouse uri, relative path) -> mtime_ns of the copy already uploaded by this process.
_uploaded: dict[tuple[str, str], int] = {}
_lock = threading.Lock()


def publish_data_docs(warehouse: Warehouse, run_id: str) -> str:
    """Render the Data Docs of one run's validations and upload what changed; returns the index path.

    Validation pages accumulate under the prefix; ``index.html`` lists the validations of the latest process
    that validated (GX keeps results in memory). Static assets (~4 MB of fonts) are uploaded once per warehouse.
    """
    from evals.validation.runtime import runtime

    gx = runtime()
    with gx.lock:
        site = gx.build_docs(run_id)
    with _lock:
        static_present = warehouse.storage.exists(f"{DOCS_PREFIX}/{_STATIC_MARKER}")
        for path in sorted(p for p in site.rglob("*") if p.is_file()):
            relative = path.relative_to(site).as_posix()
            key = (warehouse.uri, relative)
            mtime = path.stat().st_mtime_ns
            if _uploaded.get(key) == mtime or (relative.startswith("static/") and static_present):
                continue
            warehouse.storage.write_bytes(f"{DOCS_PREFIX}/{relative}", path.read_bytes())
            _uploaded[key] = mtime
    index = f"{DOCS_PREFIX}/index.html"
    log.info("GX Data Docs at %s/%s", warehouse.uri, index)
    return index
