"""Regression policy and notification: log regressions with their CIs, notify (webhook or log), optionally fail;
the night's serving decisions go out the same way."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from evals.errors import ConfigError, TerminalError, TransientError
from evals.registry import LazyRegistry

if TYPE_CHECKING:
    from evals.settings import Settings

log = logging.getLogger(__name__)


class RegressionDetected(TerminalError):
    """The compare step found regressions and ``EVALS_FAIL_ON_REGRESSION`` is on: fail without retrying."""

    def __init__(self, regressions: Sequence[Mapping[str, Any]]) -> None:
        self.regressions = [dict(r) for r in regressions]
        listed = "; ".join(describe(r) for r in self.regressions[:10])
        more = f" (+{len(self.regressions) - 10} more)" if len(self.regressions) > 10 else ""
        super().__init__(f"{len(self.regressions)} regression(s): {listed}{more}")


class NotificationFailed(TransientError):
    """A notifier could not deliver (network, 5xx): the comparisons are stored, only the message is missing."""


def regressions(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [dict(r) for r in rows if r["verdict"] == "regression"]


def describe(row: Mapping[str, Any]) -> str:
    """One line: model@rev metric: value vs baseline (kind baseline@rev), delta and its CI."""

    def num(value: Any) -> str:
        return "n/a" if value is None else f"{value:.4g}"

    ci = ""
    if row.get("ci_low") is not None and row.get("ci_high") is not None:
        level = round((1 - (row.get("alpha") or 0.05)) * 100)
        ci = f", {level}% CI [{num(row['ci_low'])}, {num(row['ci_high'])}]"
    baseline = f"{row.get('baseline_model_id')}@{(row.get('baseline_revision') or '')[:12]}"
    return (
        f"{row['model_id']}@{row['revision'][:12]} {row['metric']}: {num(row.get('value'))} vs "
        f"{num(row.get('baseline_value'))} ({row['kind']} {baseline}): delta {num(row.get('delta'))}{ci}"
    )


@dataclass
class Notice:
    """What a notifier sends: a title, one line per regression, and the rows themselves (JSON-safe)."""

    title: str
    lines: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        """Slack-webhook compatible (``text``), plus the rows for receivers that read JSON."""
        return {"text": "\n".join([self.title, *(f"• {line}" for line in self.lines)]), "rows": _json_safe(self.rows)}

    @classmethod
    def of_regressions(
        cls, rows: Sequence[Mapping[str, Any]], title: str | None = None, night: Sequence[Mapping[str, Any]] = ()
    ) -> Notice:
        """The regressions of a night; with the ``night``'s rows, the title says how many tests the verdicts
        came from and how many false findings error control allows for (see evals.analysis.verdicts)."""
        from evals.analysis.verdicts import summarize

        models = sorted({r["model_id"] for r in rows})
        context = f" ({summarize(night).text()})" if night else ""
        return cls(
            title=title or f"checkpoint-evals: {len(rows)} regression(s) in {', '.join(models)}{context}",
            lines=[describe(r) for r in rows],
            rows=[dict(r) for r in rows],
        )

    @classmethod
    def of_decisions(cls, rows: Sequence[Mapping[str, Any]], report: str | None = None) -> Notice:
        """The night's serving decisions: how many of each outcome, one line per challenger with its reason."""
        counts = {o: sum(1 for r in rows if r["outcome"] == o) for o in ("promote", "hold", "reject")}
        tally = ", ".join(f"{n} {outcome}" for outcome, n in counts.items() if n)
        asked = " (a human approves each promote in Airflow)" if counts["promote"] else ""
        champions = sorted({str(r["champion"]) for r in rows})
        lines = [describe_decision(r) for r in rows]
        if report:
            lines.append(f"report: {report}")
        keep = ("decision_id", "model_id", "revision", "outcome", "reason", "champion", "policy_name", "policy_version")
        return cls(
            title=f"checkpoint-evals: serving decision against {', '.join(champions)}: {tally}{asked}",
            lines=lines,
            rows=[{k: r.get(k) for k in keep} for r in rows],
        )


def describe_decision(row: Mapping[str, Any]) -> str:
    """One line: OUTCOME model@rev (suite/scenario): the reason."""
    where = "/".join(str(row[k]) for k in ("suite", "scenario") if row.get(k))
    return f"{str(row['outcome']).upper()} {row['model_id']}@{str(row['revision'])[:12]} ({where}): {row['reason']}"


class Notifier(Protocol):
    def send(self, notice: Notice) -> None: ...


class LogNotifier:
    """The fallback: the task log (warning level, so it stands out in Airflow's log view)."""

    def __init__(self, settings: Settings | None = None) -> None:
        pass

    def send(self, notice: Notice) -> None:
        log.warning("%s", notice.title)
        for line in notice.lines:
            log.warning("  %s", line)


class WebhookNotifier:
    """POSTs the notice as JSON to a Slack-style incoming webhook (any receiver of JSON works)."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url
        self.timeout_s = timeout_s

    def send(self, notice: Notice) -> None:
        import urllib.error
        import urllib.request

        body = json.dumps(notice.payload()).encode()
        request = urllib.request.Request(
            self.url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                response.read()
        except (urllib.error.URLError, OSError) as exc:
            # Never echo the URL: for Slack it is the secret.
            raise NotificationFailed(f"webhook notification failed: {type(exc).__name__}: {_reason(exc)}") from exc


def _reason(exc: BaseException) -> str:
    import urllib.error

    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    return str(getattr(exc, "reason", exc))


def webhook_url(settings: Settings) -> str | None:
    """The webhook URL: the setting, else the Airflow connection ``notify_conn_id``, else None."""
    if settings.notify_webhook_url is not None:
        return settings.notify_webhook_url.get_secret_value()
    if settings.notify_conn_id:
        return connection_webhook_url(settings.notify_conn_id)
    return None


def connection_webhook_url(conn_id: str) -> str:
    """A webhook URL from a connection (an Airflow connection in deployments).

    Accepted shapes: extra ``{"webhook_url": ...}``; a password that is the full URL (Slack webhook
    connections); or host (with scheme or ``schema``, and port) + password as the path (``T000/B000/XXXX``).
    """
    from evals.connections import get_connection

    conn = get_connection(conn_id)
    extra = conn.extra
    if extra.get("webhook_url"):
        return str(extra["webhook_url"])
    password = conn.password or ""
    if password.startswith(("http://", "https://")):
        return password
    if not conn.host:
        raise ConfigError(f"Airflow connection {conn_id!r} has no host, webhook_url extra or URL password")
    host = conn.host if "://" in conn.host else f"{conn.schema or 'https'}://{conn.host}"
    if conn.port and host.count(":") < 2:
        host = f"{host.rstrip('/')}:{conn.port}"
    return f"{host.rstrip('/')}/{password.lstrip('/')}" if password else host


def _webhook_notifier(settings: Settings) -> Notifier:
    url = webhook_url(settings)
    if not url:
        raise ConfigError("EVALS_NOTIFY_BACKEND=webhook needs EVALS_NOTIFY_WEBHOOK_URL or EVALS_NOTIFY_CONN_ID")
    return WebhookNotifier(url, settings.notify_timeout_s)


def _auto_notifier(settings: Settings) -> Notifier:
    url = webhook_url(settings)
    return WebhookNotifier(url, settings.notify_timeout_s) if url else LogNotifier(settings)


# EVALS_NOTIFY_BACKEND -> a factory taking the settings; any "module:Class" also works (it must have send(notice)).
NOTIFIERS: LazyRegistry[Callable[[Settings], Notifier]] = LazyRegistry(
    "EVALS_NOTIFY_BACKEND", {"auto": _auto_notifier, "log": LogNotifier, "webhook": _webhook_notifier}, any_import=True
)


def make_notifier(settings: Settings) -> Notifier:
    """The configured notifier: auto (webhook when a URL or connection is set, else log), log, webhook, mod:Class.

    A ``module:Class`` is constructed with the settings and must have ``send(notice)``.
    """
    return NOTIFIERS[settings.notify_backend](settings)


def apply_policy(
    rows: Sequence[Mapping[str, Any]], *, settings: Settings | None = None, notifier: Notifier | None = None
) -> list[dict[str, Any]]:
    """Log every regression with its CI, notify once (best effort), and raise if the policy says fail.

    Returns the regressions. A failed notification is logged, never raised: the comparisons are already in the
    warehouse, and a missing Slack message must not hide (or fake) a regression verdict.
    """
    from evals.analysis.verdicts import summarize
    from evals.settings import get_settings

    settings = settings or get_settings()
    found = regressions(rows)
    log.info("verdicts: %s", summarize(rows).text())
    for row in found:
        log.warning("regression: %s", describe(row))
    if found:
        notice = Notice.of_regressions(found, night=rows)
        try:
            (notifier or make_notifier(settings)).send(notice)
        except NotificationFailed as exc:
            log.error("%s; the regressions are in the comparisons table", exc)
    if found and settings.fail_on_regression:
        raise RegressionDetected(found)
    return found


def notify_decisions(
    rows: Sequence[Mapping[str, Any]],
    *,
    report: str | None = None,
    settings: Settings | None = None,
    notifier: Notifier | None = None,
) -> Notice | None:
    """Send the night's decisions (best effort, as regressions are: they are stored whatever happens here)."""
    from evals.settings import get_settings

    if not rows:
        return None
    notice = Notice.of_decisions(rows, report)
    try:
        (notifier or make_notifier(settings or get_settings())).send(notice)
    except NotificationFailed as exc:
        log.error("%s; the decisions are in the decisions table", exc)
    return notice


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)  # dates
