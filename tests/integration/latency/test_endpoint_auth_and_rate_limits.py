"""A hosted API's manners against the simulator: a bearer key, 401 as a terminal error, 429 + Retry-After honoured
and reported as rate limiting; the key in no log."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from simulators import running_simulator

from evals.checkpoints.sources.endpoint import auth_headers, check_access, endpoint_options
from evals.errors import TerminalError
from evals.latency.client import RATE_LIMITED_PREFIX, RequestResult, Target, send_request
from evals.latency.metrics import _error_kind
from evals.latency.prompts import Prompt
from evals.latency.transport import Pool

pytestmark = [pytest.mark.integration, pytest.mark.timing]
KEY = "sk-sim-0123456789abcdef"


@contextmanager
def hosted(*extra: str) -> Iterator[str]:
    """The simulator as a hosted API: it wants KEY as a bearer token."""
    with running_simulator(ttft_ms=5.0, itl_ms=[1.0], extra=("--api-key", KEY, *extra)) as url:
        yield url


def declared(url: str, env: str = "SIM_API_KEY") -> dict[str, object]:
    return {
        "model": "simulator",
        "base_url": url,
        "price_input_per_1m": 1.0,
        "price_output_per_1m": 2.0,
        "api_key_env": env,
    }


def send(url: str, prompt: str, headers: tuple[tuple[str, str], ...], **target: object) -> RequestResult:
    async def go() -> RequestResult:
        pool = Pool(url, limit=1, connect_timeout_s=5)
        try:
            aim = Target(url, "simulator", "chat", max_tokens=4, headers=headers, **target)  # type: ignore[arg-type]
            body = aim.payload(Prompt(text=prompt))
            return await send_request(
                pool, aim, body, RequestResult(0, time.perf_counter()), timeout_s=10, request_id=prompt
            )
        finally:
            pool.close()

    return asyncio.run(go())


def test_a_wrong_key_is_a_terminal_error_that_names_where_the_key_came_from(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with hosted() as url:
        monkeypatch.setenv("SIM_API_KEY", "sk-wrong-key-000")
        options = endpoint_options(declared(url))
        with pytest.raises(TerminalError, match=r"refused the credentials .*HTTP 401.*SIM_API_KEY") as refused:
            check_access(options)
        assert "sk-wrong-key-000" not in str(refused.value)
        monkeypatch.setenv("SIM_API_KEY", KEY)
        check_access(options)  # the right key passes
        result = send(url, "hello", auth_headers(options))
        assert result.ok and result.output_tokens == 4
        assert KEY not in repr(Target(url, "simulator", "chat", 4, headers=auth_headers(options)))
    assert KEY not in caplog.text and "sk-wrong-key-000" not in caplog.text


def test_429_with_retry_after_is_honoured_and_reported_as_rate_limiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIM_API_KEY", KEY)
    with hosted("--retry-after", "0.3") as url:
        headers = auth_headers(endpoint_options(declared(url)))
        started = time.perf_counter()
        result = send(url, "twice <<fault:ratelimit:2>>", headers)
        assert result.ok and result.rate_limited == 2
        assert time.perf_counter() - started >= 0.6  # both Retry-After waits were honoured

        # Still limited after the bounded retries: a rate-limiting error, not a server failure.
        result = send(url, "always <<fault:ratelimit:99>>", headers, rate_limit_retries=1)
        assert not result.ok and result.rate_limited == 1 and result.status == 429
        assert result.error is not None and result.error.startswith(RATE_LIMITED_PREFIX)
        assert _error_kind(result.error) == "rate limited"

        # A huge Retry-After is capped.
        started = time.perf_counter()
        send(url, "capped <<fault:ratelimit:1>>", headers, rate_limit_max_wait_s=0.05)
        assert time.perf_counter() - started < 5
