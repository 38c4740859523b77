"""Airflow's connections as the library's connection backend (:mod:`evals.connections`, name ``airflow``)."""

from __future__ import annotations

from evals.connections import AwsCredentials, Connection
from evals.errors import ConfigError


class AirflowConnections:
    """Reads connections with Airflow's own hooks (secrets backends included)."""

    def connection(self, conn_id: str) -> Connection:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(conn_id)
        return Connection(
            conn_id=conn_id,
            host=conn.host or None,
            login=conn.login or None,
            password=str(conn.password) if conn.password else None,
            port=conn.port,
            schema=conn.schema or None,
            extra=dict(conn.extra_dejson or {}),
        )

    def aws_credentials(self, conn_id: str) -> AwsCredentials:
        try:
            from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
        except ImportError as exc:  # pragma: no cover - the Amazon provider is a core dependency
            raise ConfigError(f"connection {conn_id!r} needs the Amazon provider: {exc}") from exc
        hook = AwsBaseHook(aws_conn_id=conn_id, client_type="s3")
        conn = hook.get_connection(conn_id)
        frozen = hook.get_credentials()
        if not frozen.access_key or not frozen.secret_key:
            raise ConfigError(f"Airflow connection {conn_id!r} has no access key / secret key")
        endpoint = conn.extra_dejson.get("endpoint_url")
        return AwsCredentials(
            access_key=frozen.access_key,
            secret_key=frozen.secret_key,
            session_token=frozen.token or None,
            endpoint_url=str(endpoint) if endpoint else None,
        )


AIRFLOW = AirflowConnections()
