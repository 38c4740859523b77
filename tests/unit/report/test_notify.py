"""Notifiers without network: a local HTTP receiver on 127.0.0.1, Airflow connections from the environment."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from evals.errors import ConfigError
from evals.report.notify import (
    LogNotifier,
    Notice,
    NotificationFailed,
    RegressionDetected,
    WebhookNotifier,
    apply_policy,
    make_notifier,
)
from evals.settings import get_settings

REGRESSION = {
    "run_id": "r1",
    "model_id": "org/a",
    "revision": "b" * 40,
    "eval_date": "2026-11-02",
    "baseline_run_id": "r0",
    "baseline_model_id": "org/a",
    "baseline_revision": "a" * 40,
    "kind": "previous_revision",
    "metric": "latency:ttft_p95_ms@concurrency=4",
    "value": 230.0,
    "baseline_value": 175.0,
    "delta": 55.0,
    "ci_low": 43.0,
    "ci_high": 73.0,
    "alpha": 0.05,
    "verdict": "regression",
}


class Receiver:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.status = 200


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            state.bodies.append(json.loads(self.rfile.read(length)))
            state.paths.append(self.path)
            self.send_response(state.status)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_webhook_posts_slack_style_json(receiver: tuple[Receiver, str]) -> None:
    state, url = receiver
    WebhookNotifier(f"{url}/services/T0/B0/x").send(Notice.of_regressions([REGRESSION]))
    (body,) = state.bodies
    assert state.paths == ["/services/T0/B0/x"]
    assert body["text"].startswith("checkpoint-evals: 1 regression(s) in org/a")
    assert "95% CI [43, 73]" in body["text"]
    assert body["rows"][0]["metric"] == REGRESSION["metric"]


def test_webhook_failure_is_transient_and_does_not_leak_the_url(receiver: tuple[Receiver, str]) -> None:
    state, url = receiver
    state.status = 500
    with pytest.raises(NotificationFailed) as raised:
        WebhookNotifier(f"{url}/secret-token").send(Notice("x"))
    assert raised.value.retryable and "secret-token" not in str(raised.value) and "HTTP 500" in str(raised.value)


def test_policy_sends_through_the_configured_webhook_and_survives_a_failed_send(
    receiver: tuple[Receiver, str], caplog: pytest.LogCaptureFixture
) -> None:
    state, url = receiver
    settings = get_settings(notify_webhook_url=f"{url}/hook", fail_on_regression=True)
    with pytest.raises(RegressionDetected):
        apply_policy([REGRESSION, {**REGRESSION, "verdict": "no_change"}], settings=settings)
    assert len(state.bodies) == 1 and len(state.bodies[0]["rows"]) == 1
    state.status = 503
    assert len(apply_policy([REGRESSION], settings=get_settings(notify_webhook_url=f"{url}/hook"))) == 1
    assert "webhook notification failed" in caplog.text
    assert apply_policy([{**REGRESSION, "verdict": "improvement"}], settings=settings) == []


def test_webhook_url_from_an_airflow_connection(
    receiver: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    state, url = receiver
    host, port = url.removeprefix("http://").split(":")
    conn = {"conn_type": "http", "host": host, "port": int(port), "schema": "http", "password": "T0/B0/secret"}
    monkeypatch.setenv("AIRFLOW_CONN_EVALS_SLACK", json.dumps(conn))
    notifier = make_notifier(get_settings(notify_conn_id="evals_slack"))
    assert isinstance(notifier, WebhookNotifier)
    notifier.send(Notice("hello"))
    assert state.paths == ["/T0/B0/secret"]
    monkeypatch.setenv(
        "AIRFLOW_CONN_EVALS_HOOK", json.dumps({"conn_type": "http", "extra": {"webhook_url": f"{url}/from-extra"}})
    )
    make_notifier(get_settings(notify_conn_id="evals_hook")).send(Notice("again"))
    assert state.paths[-1] == "/from-extra"


def test_airflow_notifier_sends_the_regressions_of_a_failed_task(
    receiver: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from evals.orchestration.notifier import RegressionNotifier

    state, url = receiver
    monkeypatch.setenv("EVALS_NOTIFY_WEBHOOK_URL", f"{url}/airflow")
    notifier = RegressionNotifier(message="compare failed in {{ dag_id_for_test }}")
    notifier({"exception": RegressionDetected([REGRESSION]), "dag_id_for_test": "evals_nightly"})
    (body,) = state.bodies
    assert body["text"].startswith("compare failed in evals_nightly")
    assert body["rows"][0]["delta"] == 55.0


def test_make_notifier_choices(caplog: pytest.LogCaptureFixture) -> None:
    assert isinstance(make_notifier(get_settings()), LogNotifier)  # nothing configured: the task log
    with pytest.raises(ConfigError, match="needs EVALS_NOTIFY_WEBHOOK_URL"):
        make_notifier(get_settings(notify_backend="webhook"))
    with pytest.raises(ConfigError, match="known: auto, log, webhook, or any module:attr"):
        make_notifier(get_settings(notify_backend="carrier-pigeon"))
    with pytest.raises(ConfigError, match=r"evals\.report\.notify:Pigeon\) cannot be imported"):
        make_notifier(get_settings(notify_backend="evals.report.notify:Pigeon"))
    custom = make_notifier(get_settings(notify_backend="evals.report.notify:LogNotifier"))
    custom.send(Notice.of_regressions([REGRESSION]))
    assert "latency:ttft_p95_ms@concurrency=4: 230 vs 175" in caplog.text


DECISIONS = [
    {"decision_id": "d1", "model_id": "org/fast", "revision": "c" * 40, "suite": "smoke", "scenario": "chat",
     "outcome": "promote", "reason": "every criterion passed", "champion": "package:smollm2",
     "policy_name": "default", "policy_version": "1"},
    {"decision_id": "d2", "model_id": "org/tiny", "revision": "d" * 40, "suite": "smoke", "scenario": "chat",
     "outcome": "reject", "reason": "accuracy:smoke -21.3 pts, below -2 (CI high -17.9)", "champion": "package:smollm2",
     "policy_name": "default", "policy_version": "1"},
]  # fmt: skip


def test_decisions_are_sent_with_the_tally_and_one_line_per_challenger(receiver: tuple[Receiver, str]) -> None:
    from evals.report.notify import notify_decisions

    state, url = receiver
    notify_decisions(DECISIONS, report="s3://wh/_reports/report.html", notifier=WebhookNotifier(url))
    (payload,) = state.bodies
    title, *lines = payload["text"].splitlines()
    assert title == (
        "checkpoint-evals: serving decision against package:smollm2: 1 promote, 1 reject "
        "(a human approves each promote in Airflow)"
    )
    assert lines == [
        f"• PROMOTE org/fast@{'c' * 12} (smoke/chat): every criterion passed",
        f"• REJECT org/tiny@{'d' * 12} (smoke/chat): accuracy:smoke -21.3 pts, below -2 (CI high -17.9)",
        "• report: s3://wh/_reports/report.html",
    ]
    assert [r["outcome"] for r in payload["rows"]] == ["promote", "reject"]


def test_no_decisions_send_nothing_and_a_failed_send_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    from evals.report.notify import notify_decisions

    class Broken:
        def send(self, notice: Notice) -> None:
            raise NotificationFailed("webhook notification failed: HTTP 500")

    assert notify_decisions([], notifier=Broken()) is None
    notice = notify_decisions(DECISIONS[1:], notifier=Broken())
    assert notice is not None and notice.title.endswith(": 1 reject")
    assert "the decisions are in the decisions table" in caplog.text
