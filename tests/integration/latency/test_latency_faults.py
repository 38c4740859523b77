"""Faults: HTTP 500s, dropped connections, malformed SSE, error events, hangs and early ends fail requests with
reasons; the run completes, goodput counts them as misses, and every request is kept."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest

from evals.conformance import conform
from evals.latency.client import Target
from evals.latency.loadgen import run, run_level
from evals.latency.metrics import sample_rows, summarize_level
from evals.latency.prompts import Prompt
from evals.latency.scenario import ConcurrencyLevel
from evals.latency.server import ServerHandle

pytestmark = [pytest.mark.integration, pytest.mark.timing]

FAULTS = {
    "<<fault:http500>>": "HTTP 500: injected failure",
    "<<fault:drop:3>>": "after 3 chunks",
    "<<fault:malformed:2>>": "malformed SSE event",
    "<<fault:error:1>>": "server error event",
    "<<fault:hang:2>>": "timeout after 1.5s (2 chunks received)",
    "<<fault:nodone>>": "stream ended without [DONE] or finish_reason after 6 chunks",
}


def _level(handle: ServerHandle, prompts: list[Prompt], *, requests: int, concurrency: int = 4):  # type: ignore[no-untyped-def]
    target = Target(handle.endpoint, handle.model, "chat", max_tokens=6)
    return run(
        run_level(
            target,
            prompts,
            ConcurrencyLevel(concurrency=concurrency),
            requests=requests,
            duration_s=None,
            warmup_requests=0,
            timeout_s=1.5,
            tag="f",
        )
    )


def test_faulty_requests_fail_with_reasons_and_count_against_goodput(
    simulator_factory: Callable[..., AbstractContextManager[ServerHandle]],
) -> None:
    prompts = [Prompt(text=f"fine {i}") for i in range(2)] + [Prompt(text=f"ask {marker}") for marker in FAULTS]
    with simulator_factory(ttft_ms=[5.0], itl_ms=[2.0]) as handle:
        run = _level(handle, prompts, requests=2 * len(prompts))
    summary = summarize_level(
        run, scenario="faults", slo={"ttft_p95_ms": 1000}, gpu_hour_usd=1.0, gpu_count=1, model_id="m", revision="r"
    )
    row = summary.row
    assert row["n_requests"] == 16
    assert row["n_failed"] == 12
    assert row["goodput"] == pytest.approx(4 / 16)
    by_prompt: dict[str, list[str | None]] = {}
    for result in run.results:
        text = prompts[result.index % len(prompts)].text or ""
        by_prompt.setdefault(text, []).append(result.error)
    for text, errors in by_prompt.items():
        marker = next((m for m in FAULTS if m in text), None)
        if marker is None:
            assert errors == [None, None]
        else:
            assert all(error is not None and FAULTS[marker] in error for error in errors), (marker, errors)
    # Successful requests are still measured; failed ones are kept as samples with their reason.
    assert row["ttft_p50_ms"] is not None and row["ttft_p50_ms"] >= 5.0
    samples = sample_rows(run, scenario="faults", model_id="m", revision="r")
    assert len(samples) == 16 and sum(not s["ok"] for s in samples) == 12
    conform("latency_samples", [{**s, "run_id": "r", "eval_date": dt.date(2026, 1, 1)} for s in samples])
    conform("latency", [{**row, "run_id": "r", "eval_date": dt.date(2026, 1, 1)}])


def test_unreachable_server_fails_every_request_without_crashing() -> None:
    from evals.latency.server import free_port

    handle = ServerHandle(
        endpoint=f"http://127.0.0.1:{free_port()}", model="x", backend="external", accepts_ignore_eos=False
    )
    run = _level(handle, [Prompt(text="hi")], requests=3, concurrency=2)
    assert [r.ok for r in run.results] == [False, False, False]
    assert all((r.error or "").startswith("connection error: ") for r in run.results)
    row = summarize_level(run, scenario="faults", slo={}, gpu_hour_usd=1.0, gpu_count=1, model_id="m", revision="r").row
    assert row["n_failed"] == 3 and row["goodput"] == 0.0 and row["ttft_p50_ms"] is None
    assert row["usd_per_1m_output_tokens"] is None


@pytest.mark.parametrize(
    ("extra", "expected_tokens"), [(("--no-usage",), 6), (("--no-done",), 6)], ids=["no-usage", "no-done"]
)
def test_servers_without_usage_or_done_still_measure(
    simulator_factory: Callable[..., AbstractContextManager[ServerHandle]],
    extra: tuple[str, ...],
    expected_tokens: int,
) -> None:
    with simulator_factory(ttft_ms=[5.0], itl_ms=[2.0], extra=extra) as handle:
        run = _level(handle, [Prompt(text="hello")], requests=4, concurrency=2)
    assert all(r.ok for r in run.results), [r.error for r in run.results]
    assert [r.output_tokens for r in run.results] == [expected_tokens] * 4
    assert all(r.usage_reported is ("--no-usage" not in extra) for r in run.results)
