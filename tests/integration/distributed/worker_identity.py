"""``[core] hostname_callable`` for workers sharing one machine: the name in EVALS_TEST_WORKER_NAME, else the FQDN."""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    # What Airflow records as task_instance.hostname; on separate machines the FQDN already differs.
    return os.environ.get("EVALS_TEST_WORKER_NAME") or socket.getfqdn()
