"""An Airflow notifier (``on_failure_callback=RegressionNotifier()``) that sends through the configured notifier."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseNotifier

from evals.report.notify import Notice, RegressionDetected, make_notifier


class RegressionNotifier(BaseNotifier):
    """Sends a templated message, plus the regressions when the task failed with :class:`RegressionDetected`.

    The channel is the one :func:`evals.report.notify.make_notifier` picks (webhook from a setting or an
    Airflow connection, else the log); ``conn_id`` overrides ``EVALS_NOTIFY_CONN_ID`` for this notifier.
    """

    template_fields = ("message",)

    def __init__(
        self, message: str = "checkpoint-evals: {{ ti.task_id }} in {{ dag.dag_id }}", *, conn_id: str | None = None
    ) -> None:
        super().__init__()
        self.message = message
        self.conn_id = conn_id

    def notify(self, context: Any) -> None:
        from evals.settings import get_settings

        overrides = {"notify_conn_id": self.conn_id} if self.conn_id else {}
        notifier = make_notifier(get_settings(**overrides))
        error = context.get("exception")
        if isinstance(error, RegressionDetected):
            notifier.send(Notice.of_regressions(error.regressions, title=self.message))
        else:
            notifier.send(Notice(title=self.message, lines=[str(error)] if error else []))
