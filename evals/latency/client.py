"""One streaming request to an OpenAI-compatible server: payload, SSE parsing of the stamped reads, the outcome."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msgspec

from evals.latency.transport import Pool, TransportError

if TYPE_CHECKING:
    from evals.latency.prompts import Prompt

_ERROR_BODY_CHARS = 300
# How a request the client's per-request limit ended starts its error (predictability counts these apart).
TIMEOUT_PREFIX = "timeout after"
# How a request the server kept refusing with HTTP 429 starts its error: rate limiting, not a server failure.
RATE_LIMITED_PREFIX = "rate limited"
# msgspec decodes an event's JSON several times faster than json.loads (profiled: decoding was the client's
# largest CPU cost per token, and CPU spent here delays the next read's stamp on a busy loop).
_decode = msgspec.json.Decoder().decode


@dataclass(frozen=True)
class Target:
    """Where and how requests go: base URL (``http://host:port``), served model name, API, extra fields."""

    base_url: str
    model: str
    api: str  # completions | chat
    max_tokens: int
    temperature: float = 0.0
    ignore_eos: bool = False  # only when the server accepts the field (vLLM); others reject unknown fields
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # may carry a credential: never shown
    rate_limit_retries: int = 3  # resends of a request answered HTTP 429, each after its Retry-After
    rate_limit_max_wait_s: float = 30.0  # cap of one Retry-After wait

    @property
    def url(self) -> str:
        path = "/v1/chat/completions" if self.api == "chat" else "/v1/completions"
        return self.base_url.rstrip("/").removesuffix("/v1") + path

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    def payload(self, prompt: Prompt) -> bytes:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self.api == "chat":
            body["messages"] = prompt.as_messages()
        else:
            body["prompt"] = prompt.text or ""
        if self.ignore_eos:
            body["ignore_eos"] = True
        return json.dumps(body).encode()


@dataclass
class RequestResult:
    """What happened to one request. Times are absolute ``time.perf_counter()`` seconds."""

    index: int
    scheduled: float
    sent: float | None = None
    token_times: list[float] = field(default_factory=list)
    finished: float | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None  # server usage when it sent one, else the number of text chunks
    usage_reported: bool = False
    ok: bool = False
    error: str | None = None
    status: int | None = None
    rate_limited: int = 0  # attempts answered HTTP 429 (each waited out before the next)
    # The raw response of a request whose parsing was deferred (``send_request(defer=True)``) until ``complete``.
    pending: Any = field(default=None, repr=False, compare=False)

    @property
    def first_token(self) -> float | None:
        return self.token_times[0] if self.token_times else None


class _StreamFailure(Exception):
    """A stream that cannot count as a success (server error event, malformed SSE, early end)."""


def _text_of(event: dict[str, Any]) -> str:
    """The generated text a chunk carries: ``text`` (completions) or ``delta.content``/reasoning (chat)."""
    choices = event.get("choices")
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        return ""
    choice = choices[0]
    if isinstance(choice.get("text"), str):
        return str(choice["text"])
    delta = choice.get("delta")
    if isinstance(delta, dict):
        return str(delta.get("content") or delta.get("reasoning_content") or delta.get("reasoning") or "")
    return ""


class _StreamState:
    """SSE parser: one ``feed`` per network read, stamped with the read's clock time (an event gets the time of
    the read that completed it)."""

    def __init__(self, result: RequestResult) -> None:
        self.result = result
        self.buffer = b""
        self.done = False
        self.finish_reason: str | None = None
        self.chunks = 0

    def feed(self, data: bytes, now: float) -> None:
        if self.done:
            return
        *lines, self.buffer = (self.buffer + data).split(b"\n")
        for line in lines:
            self._line(line.rstrip(b"\r"), now)
            if self.done:
                return

    def _line(self, line: bytes, now: float) -> None:
        # Blank lines end events; ':' lines are comments (keep-alives); event:/id:/retry: carry no tokens.
        if not line.startswith(b"data:"):
            return
        payload = line[5:].strip()
        if payload == b"[DONE]":
            self.done = True
            return
        try:
            event = _decode(payload)
        except msgspec.DecodeError as exc:
            raise _StreamFailure(f"malformed SSE event: {payload[:80]!r}") from exc
        if not isinstance(event, dict):
            raise _StreamFailure(f"malformed SSE event (not an object): {payload[:80]!r}")
        if event.get("error"):
            raise _StreamFailure(f"server error event: {str(event['error'])[:_ERROR_BODY_CHARS]}")
        if _text_of(event):
            self.result.token_times.append(now)
            self.chunks += 1
        choices = event.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            self.finish_reason = choices[0].get("finish_reason") or self.finish_reason
        usage = event.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
            self.result.output_tokens = usage["completion_tokens"]
            self.result.usage_reported = True
            if isinstance(usage.get("prompt_tokens"), int):
                self.result.prompt_tokens = usage["prompt_tokens"]


async def send_request(
    pool: Pool,
    target: Target,
    body: bytes,
    result: RequestResult,
    *,
    timeout_s: float,
    request_id: str | None = None,
    defer: bool = False,
) -> RequestResult:
    """Send one streaming request and fill ``result``. Never raises for request failures: they become
    ``ok=False`` with a reason (HTTP status, timeout, disconnect, malformed SSE, server error event).

    ``sent`` is the clock right before the request's bytes are written; each token's time is the clock at the
    top of the read that completed its event (see :mod:`evals.latency.transport`). With ``defer`` a response that
    arrived whole is kept raw in ``result.pending`` and parsed by :func:`complete` later (the load generator does
    that after the level, so no parsing competes with other streams' reads for the event loop).
    """
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream", **dict(target.headers)}
    if request_id is not None:
        headers["X-Request-Id"] = request_id
    request = pool.request(target.path, body, headers)
    for attempt in range(target.rate_limit_retries + 1):
        response = await _attempt(pool, request, result, timeout_s)
        if response is None:
            return result
        if response.status != 429 or attempt == target.rate_limit_retries:
            break
        result.rate_limited += 1
        await asyncio.sleep(retry_after_s(response.retry_after, target.rate_limit_max_wait_s))
    result.status = response.status
    result.finished = time.perf_counter()  # the response's end; a success replaces it with its last token
    result.pending = response
    return result if defer else complete(result)


def retry_after_s(header: str | None, cap_s: float) -> float:
    """Seconds a Retry-After header asks for (delay-seconds, or an HTTP date), within [0, cap_s]; 1 s if absent."""
    if header is None:
        return min(1.0, cap_s)
    try:
        wait = float(header)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            wait = parsedate_to_datetime(header).timestamp() - time.time()
        except (TypeError, ValueError):
            wait = 1.0
    return max(0.0, min(wait, cap_s))


async def _attempt(pool: Pool, request: bytes, result: RequestResult, timeout_s: float) -> Any:
    """Send ``request`` once; the response, or None with ``result`` failed (timeout, transport, connection)."""
    connection = None
    response = None
    try:
        try:
            async with asyncio.timeout(timeout_s):
                connection = await pool.acquire()
                result.sent, response = connection.send(request)
                await response.done
        finally:
            if connection is not None:
                pool.release(connection)
    except TimeoutError:
        _fail(result, f"{TIMEOUT_PREFIX} {timeout_s:g}s ({_partial(result, response)} chunks received)")
        return None
    except TransportError as exc:
        sent = result.sent is not None
        _fail(result, f"{exc} after {_partial(result, response)} chunks" if sent else str(exc))
        return None
    except OSError as exc:
        _fail(result, f"connection error: {type(exc).__name__}: {_reason(exc)}")
        return None
    except Exception as exc:  # a bug in one request must not end the whole run
        _fail(result, f"unexpected error: {type(exc).__name__}: {_reason(exc)}")
        return None
    return response


def complete(result: RequestResult) -> RequestResult:
    """Parse a response kept by ``send_request(defer=True)``: status, SSE events, tokens, usage, outcome."""
    response, result.pending = result.pending, None
    if response is None:
        return result
    state = _StreamState(result)
    try:
        if response.status != 200:
            text = b"".join(data for _, data in response.reads)[:_ERROR_BODY_CHARS].decode(errors="replace")
            if response.status == 429:
                raise _StreamFailure(
                    f"{RATE_LIMITED_PREFIX}: HTTP 429 on {result.rate_limited + 1} attempts "
                    f"(last Retry-After {response.retry_after or 'none'}): {' '.join(text.split())}"
                )
            raise _StreamFailure(f"HTTP {response.status}: {' '.join(text.split())}")
        for now, data in response.reads:
            state.feed(data, now)
            if state.done:
                break
        if not state.done and state.finish_reason is None:
            raise _StreamFailure(f"stream ended without [DONE] or finish_reason after {state.chunks} chunks")
        if not result.token_times:
            raise _StreamFailure("stream finished without any generated text")
        result.finished = result.token_times[-1]
        if not result.usage_reported:
            result.output_tokens = state.chunks
        result.ok = True
    except _StreamFailure as exc:
        _fail(result, str(exc))
    except Exception as exc:  # a bug in one response must not end the whole run
        _fail(result, f"unexpected error: {type(exc).__name__}: {_reason(exc)}")
    return result


def _partial(result: RequestResult, response: Any) -> int:
    """The tokens of a stream cut short (for the failure's reason); its own faults no longer matter."""
    if response is not None:
        state = _StreamState(result)
        try:
            for now, data in response.reads:
                state.feed(data, now)
        except _StreamFailure:
            pass
    return len(result.token_times)


def _fail(result: RequestResult, reason: str) -> None:
    result.ok = False
    result.error = reason
    result.finished = result.finished or time.perf_counter()
    if result.output_tokens is None and result.token_times:
        result.output_tokens = len(result.token_times)


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:_ERROR_BODY_CHARS] if text else type(exc).__name__
