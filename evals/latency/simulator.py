"""A reference OpenAI-compatible streaming server with injected delays and faults, which reports what it did.

Tests and ``bench/loadgen_fidelity.py`` measure the load generator against it: each request sleeps a known TTFT
and known inter-token gaps (chosen with a seed from the given lists, so they can be non-uniform), and records
the ``time.perf_counter()`` at which it received the request, when each token was due (received + nominal
delays) and when it was actually written: the server's own lateness is ``token_times - scheduled``. On Linux
that clock is system-wide (CLOCK_MONOTONIC), so the records are comparable with a client's timestamps even from
another process. ``GET /truth`` returns the records keyed by ``X-Request-Id``.

``GET /metrics`` speaks Prometheus with vLLM's names (``simulator_metrics.VllmMetrics``), so the scrape of the
server's own view can be tested without a GPU.

Prefill: with ``--prefill-ms-per-token K`` a request's TTFT grows by K x its prompt tokens (the usage count it
reports: whitespace-separated words), on top of the drawn TTFT, as a server's prefill grows with input length.

Faults are asked for in the prompt text: ``<<fault:http500>>``, ``<<fault:drop:N>>`` (close the connection after
N tokens), ``<<fault:malformed:N>>``, ``<<fault:error:N>>`` (an OpenAI error event), ``<<fault:hang:N>>``
(stop sending after N tokens, keep the connection open), ``<<fault:nodone>>`` (end without [DONE] or finish),
``<<fault:ratelimit:N>>`` (HTTP 429 with ``Retry-After`` for the first N attempts of a request id).

A hosted API's manners: ``--api-key KEY`` answers 401 to any request without ``Authorization: Bearer KEY``;
``--rate-limited`` answers 429 to every completion (``--retry-after S``, fractional seconds allowed here).

Answers with known accuracy: with ``--accuracy P`` the server answers the BIG-bench arithmetic questions of the
``smoke`` suite ("What is 3 plus 4?", the last one in the prompt) correctly for a fixed fraction P of the distinct
questions, chosen by ``--answer-seed`` (a question is answered correctly when the SHA-256 of seed and question, as a
fraction of 2^256, is below P; otherwise its answer is off by one). Two servers with the same seed and P answer
alike question by question; another seed at the same P gives the same accuracy with other questions right. The
truth records what was asked, answered and whether it was right, so a test holds lm-eval's score against the
server's own record. A request without ``"stream": true`` gets one JSON body, as OpenAI's API answers.

Run: ``python -m evals.latency.simulator --port 8123 --ttft-ms 20,50 --itl-ms 5,10,30 --prefill-ms-per-token 0.05``.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evals.latency.simulator_metrics import VllmMetrics
from evals.latency.simulator_wire import answer_question, chunk, prompt_text, prompt_tokens, usage

if TYPE_CHECKING:
    from aiohttp import web

_FAULT = re.compile(r"<<fault:(?P<kind>[a-z0-9]+)(?::(?P<arg>\d+))?>>")


@dataclass
class SimulatorConfig:
    ttft_ms: list[float] = field(default_factory=lambda: [20.0])
    itl_ms: list[float] = field(default_factory=lambda: [10.0])
    seed: int = 0
    default_tokens: int = 16
    usage: bool = True  # honour stream_options.include_usage
    done: bool = True  # send data: [DONE] at the end
    record: bool = True  # keep per-request truth (off for long throughput runs)
    prefill_ms_per_token: float = 0.0  # added to the TTFT per prompt token
    api_key: str | None = field(default=None, repr=False)  # required as a bearer token when set
    rate_limited: bool = False  # every completion answered 429
    retry_after_s: float = 1.0  # the Retry-After of a 429
    accuracy: float | None = None  # answer arithmetic questions, this fraction correctly (None: never answer)
    answer_seed: int = 0  # which questions are the right ones


@dataclass
class Truth:
    """What the simulator did for one request (perf_counter seconds, and the nominal delays it slept)."""

    request_id: str
    received: float
    token_times: list[float] = field(default_factory=list)
    scheduled: list[float] = field(default_factory=list)  # when each token was due: received + nominal delays
    nominal_ttft_ms: float = 0.0  # drawn TTFT + prefill
    nominal_itl_ms: list[float] = field(default_factory=list)
    prompt_tokens: int = 0
    prefill_ms: float = 0.0  # the prefill part of nominal_ttft_ms
    question: str | None = None  # the arithmetic question answered (accuracy mode)
    answer: str | None = None
    correct: bool | None = None


class Simulator:
    """The aiohttp application and its recorded truth."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.truth: dict[str, Truth] = {}
        self.counter = 0
        self.attempts: dict[str, int] = {}  # per request id, for the ratelimit fault
        self.vllm = VllmMetrics()

    def app(self) -> web.Application:
        from aiohttp import web

        app = web.Application(middlewares=[self._auth] if self.config.api_key else [])
        app.router.add_get("/health", self.health)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/truth", self.get_truth)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_post("/truth/reset", self.reset_truth)
        app.router.add_post("/v1/completions", self.complete)
        app.router.add_post("/v1/chat/completions", self.complete)
        return app

    @property
    def _auth(self) -> Any:
        from aiohttp import web

        @web.middleware
        async def require_key(request: web.Request, handler: Any) -> web.StreamResponse:
            if (
                request.path.startswith("/v1/")
                and request.headers.get("Authorization") != f"Bearer {self.config.api_key}"
            ):
                error = {
                    "message": "Incorrect API key provided.",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
                return web.json_response({"error": error}, status=401)
            return await handler(request)

        return require_key

    def _rate_limit(self, request_id: str, kind: str | None, arg: int) -> web.Response | None:
        from aiohttp import web

        attempt = self.attempts[request_id] = self.attempts.get(request_id, 0) + 1
        if self.config.rate_limited or (kind == "ratelimit" and attempt <= arg):
            error = {"message": "Rate limit reached.", "type": "requests", "code": "rate_limit_exceeded"}
            return web.json_response(
                {"error": error}, status=429, headers={"Retry-After": f"{self.config.retry_after_s:g}"}
            )
        return None

    async def health(self, request: web.Request) -> web.Response:
        from aiohttp import web

        return web.json_response({"status": "ok"})

    async def models(self, request: web.Request) -> web.Response:
        from aiohttp import web

        return web.json_response({"object": "list", "data": [{"id": "simulator", "object": "model"}]})

    async def metrics(self, request: web.Request) -> web.Response:
        return self.vllm.response()

    async def get_truth(self, request: web.Request) -> web.Response:
        from aiohttp import web

        return web.json_response({key: vars(value) for key, value in self.truth.items()})

    async def reset_truth(self, request: web.Request) -> web.Response:
        from aiohttp import web

        self.truth.clear()
        return web.json_response({"ok": True})

    async def complete(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import web

        received = time.perf_counter()
        body = await request.json()
        self.counter += 1
        request_id = request.headers.get("X-Request-Id") or f"sim-{self.counter}"
        chat = request.path.endswith("/chat/completions")
        n_tokens = int(body.get("max_tokens") or self.config.default_tokens)
        n_prompt = prompt_tokens(body)
        prefill_ms = self.config.prefill_ms_per_token * n_prompt
        ttft_ms = self.rng.choice(self.config.ttft_ms) + prefill_ms
        gaps_ms = [self.rng.choice(self.config.itl_ms) for _ in range(n_tokens - 1)]
        truth = Truth(
            request_id,
            received,
            nominal_ttft_ms=ttft_ms,
            nominal_itl_ms=gaps_ms,
            prompt_tokens=n_prompt,
            prefill_ms=prefill_ms,
        )
        if self.config.record:
            self.truth[request_id] = truth

        fault = _FAULT.search(prompt_text(body))
        kind, arg = (fault["kind"], int(fault["arg"] or 0)) if fault else (None, 0)
        if kind == "http500":
            return web.Response(status=500, text="injected failure")
        if (limited := self._rate_limit(request_id, kind, arg)) is not None:
            return limited

        answered = None
        if self.config.accuracy is not None:
            answered = answer_question(prompt_text(body), self.config.accuracy, self.config.answer_seed)
        if answered is not None:
            truth.question, truth.answer, truth.correct = answered
            n_tokens, gaps_ms = 1, []  # the answer is one token
        self.vllm.started(prompt_text(body))
        try:
            if not body.get("stream"):
                return await self._whole(body, truth, chat, n_tokens, gaps_ms, received, ttft_ms)
            return await self._stream(request, body, truth, chat, n_tokens, gaps_ms, kind, arg, received, ttft_ms)
        finally:
            self.vllm.finished()

    async def _whole(
        self,
        body: dict[str, Any],
        truth: Truth,
        chat: bool,
        n_tokens: int,
        gaps_ms: list[float],
        received: float,
        ttft_ms: float,
    ) -> web.Response:
        """A non-streaming answer: one JSON body once the last token would have been written."""
        from aiohttp import web

        if truth.answer is not None:
            text = f" {truth.answer}"
        else:
            text = "".join(f" t{position}" for position in range(n_tokens))
        finished = received + (ttft_ms + sum(gaps_ms)) / 1e3
        while (delay := finished - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        truth.token_times.append(time.perf_counter())
        finish = "stop" if truth.answer is not None else "length"
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
        if chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        return web.json_response(
            {
                "id": "sim",
                "object": "chat.completion" if chat else "text_completion",
                "model": str(body.get("model", "simulator")),
                "choices": [choice],
                "usage": usage(body, n_tokens),
            }
        )

    async def _stream(
        self,
        request: web.Request,
        body: dict[str, Any],
        truth: Truth,
        chat: bool,
        n_tokens: int,
        gaps_ms: list[float],
        kind: str | None,
        arg: int,
        received: float,
        ttft_ms: float,
    ) -> web.StreamResponse:
        from aiohttp import web

        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        model = str(body.get("model", "simulator"))
        # Sleep until an absolute deadline, so scheduling jitter on one token does not shift the rest.
        deadline = received + ttft_ms / 1e3
        for position in range(n_tokens):
            if kind in ("drop", "malformed", "error", "hang") and position == arg:
                await self._fault(kind, request, response)
                return response
            # Never early: a token written before its due time would make lateness (and the truth) negative.
            while (delay := deadline - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            truth.scheduled.append(deadline)
            truth.token_times.append(time.perf_counter())
            if position == 0:
                self.vllm.ttft.observe(truth.token_times[0] - received)
            text = f" {truth.answer}" if truth.answer is not None else f" t{position}"
            await response.write(chunk(chat, model, text, None))
            if position < n_tokens - 1:
                deadline += gaps_ms[position] / 1e3
        if kind == "nodone":
            await response.write_eof()
            return response
        await response.write(chunk(chat, model, None, "length"))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        if include_usage and self.config.usage:
            event = {"id": "sim", "choices": [], "usage": usage(body, n_tokens)}
            await response.write(b"data: " + json.dumps(event).encode() + b"\n\n")
        if self.config.done:
            await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _fault(self, kind: str, request: web.Request, response: web.StreamResponse) -> None:
        if kind == "drop":
            if request.transport is not None:
                request.transport.abort()
        elif kind == "malformed":
            await response.write(b"data: {this is not json\n\n")
            await response.write_eof()
        elif kind == "error":
            await response.write(b'data: {"error": {"message": "injected error", "code": 500}}\n\n')
            await response.write_eof()
        elif kind == "hang":
            await asyncio.sleep(3600)


def fetch_truth(endpoint: str) -> dict[str, Any]:
    """The truth records of a running simulator, keyed by X-Request-Id (client side, for tests and benches)."""
    import urllib.request

    with urllib.request.urlopen(f"{endpoint}/truth", timeout=30) as response:
        return dict(json.loads(response.read()))


def reset_truth(endpoint: str) -> None:
    import urllib.request

    request = urllib.request.Request(f"{endpoint}/truth/reset", method="POST")
    urllib.request.urlopen(request, timeout=30).close()


def main(argv: list[str] | None = None) -> None:
    from aiohttp import web

    from evals.latency.reference import delay_server_parser

    parser = delay_server_parser(__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--no-usage", action="store_true", help="Ignore stream_options.include_usage.")
    parser.add_argument("--no-done", action="store_true", help="Never send data: [DONE].")
    parser.add_argument("--no-record", action="store_true", help="Keep no truth (long throughput runs).")
    parser.add_argument(
        "--prefill-ms-per-token", type=float, default=0.0, help="TTFT added per prompt token (prefill cost)."
    )
    parser.add_argument("--api-key", default=None, help="Require this bearer token (else HTTP 401).")
    parser.add_argument("--rate-limited", action="store_true", help="Answer HTTP 429 to every completion.")
    parser.add_argument("--retry-after", type=float, default=1.0, help="Retry-After seconds of a 429.")
    parser.add_argument(
        "--accuracy", type=float, default=None, help="Answer arithmetic questions, this fraction correctly (0-1)."
    )
    parser.add_argument("--answer-seed", type=int, default=0, help="Which questions are answered correctly.")
    args = parser.parse_args(argv)
    config = SimulatorConfig(
        ttft_ms=args.ttft_ms,
        itl_ms=args.itl_ms,
        seed=args.seed,
        usage=not args.no_usage,
        done=not args.no_done,
        record=not args.no_record,
        prefill_ms_per_token=args.prefill_ms_per_token,
        api_key=args.api_key,
        rate_limited=args.rate_limited,
        retry_after_s=args.retry_after,
        accuracy=args.accuracy,
        answer_seed=args.answer_seed,
    )
    # A short shutdown: hanging handlers (the hang fault) must not hold SIGTERM up for aiohttp's default 60 s.
    # uvloop: the reference server's own lateness is part of every truth test's allowance; keep it small.
    import uvloop

    web.run_app(
        Simulator(config).app(),
        host=args.host,
        port=args.port,
        print=None,
        access_log=None,
        backlog=4096,
        shutdown_timeout=1.0,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
