"""Credentials from a named connection (an Airflow Connection in deployments), looked up when needed, never kept.

The library names connections by id (``EVALS_S3_CONN_ID``, ``EVALS_HF_CONN_ID``, ``EVALS_NOTIFY_CONN_ID``); how an
id becomes credentials is a backend loaded by name on first use. The default, ``airflow``
(:mod:`evals.orchestration.connections`), reads Airflow's connections: the library itself never imports Airflow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from evals.registry import LazyRegistry


@dataclass(frozen=True)
class Connection:
    """A connection's fields (any may be empty). ``repr`` hides the password."""

    conn_id: str
    host: str | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    port: int | None = None
    schema: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class AwsCredentials:
    """S3 credentials of an AWS-type connection, and its endpoint URL when it names one."""

    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    endpoint_url: str | None = None


class ConnectionBackend(Protocol):
    def connection(self, conn_id: str) -> Connection: ...

    def aws_credentials(self, conn_id: str) -> AwsCredentials: ...


BACKENDS: LazyRegistry[ConnectionBackend] = LazyRegistry(
    "connection backend", {"airflow": "evals.orchestration.connections:AIRFLOW"}
)
DEFAULT_BACKEND = "airflow"


def get_connection(conn_id: str, backend: str = DEFAULT_BACKEND) -> Connection:
    return BACKENDS[backend].connection(conn_id)


def aws_credentials(conn_id: str, backend: str = DEFAULT_BACKEND) -> AwsCredentials:
    return BACKENDS[backend].aws_credentials(conn_id)
