"""The lean reference server: configured TTFT and inter-token gaps, streamed from event-loop timers, its own
lateness recorded — the yardstick the latency truth tests and ``bench/loadgen_fidelity.py`` hold clients to.

Unlike the feature-rich simulator (``evals.latency.simulator``: faults, chat, /metrics, on aiohttp) this is one
raw asyncio ``Protocol`` per connection: a request is stamped ``received`` in ``data_received`` (the read that
brought its first bytes), tokens are written by ``loop.call_at`` callbacks straight to the transport. So its own
receive delay and write lateness stay small, and the lateness it does have is recorded: per request the nominal
delays it drew (seeded; lists make them non-uniform), when each token was due (``scheduled`` = received +
nominal delays) and when it was written (``token_times``), all ``time.perf_counter()`` (CLOCK_MONOTONIC on Linux,
comparable across processes). ``GET /truth`` returns them keyed by ``X-Request-Id``; ``POST /truth/reset``.

HTTP/1.1 keep-alive, chunked SSE in OpenAI's completions/chat shape, usage on ``stream_options.include_usage``.

    python -m evals.latency.reference --port 8123 --ttft-ms 6,12,24 --itl-ms 2,4,8

``--itl-ms 0`` sends every token in one write at TTFT, built once per response shape: the server then costs next
to nothing per token, which is how ``bench/loadgen_fidelity.py`` measures the load generator's own ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from typing import Any

_HEAD_END = b"\r\n\r\n"
_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


def _chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _event(data: dict[str, Any] | str) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return _chunk(b"data: " + text.encode() + b"\n\n")


class Reference:
    """Configuration, the seeded delay draws and the recorded truth, shared by every connection."""

    def __init__(self, ttft_ms: list[float], itl_ms: list[float], *, seed: int = 0, default_tokens: int = 16) -> None:
        self.ttft_ms, self.itl_ms = ttft_ms, itl_ms
        self.rng = random.Random(seed)
        self.default_tokens = default_tokens
        self.truth: dict[str, dict[str, Any]] = {}
        self.counter = 0
        self.bursts: dict[tuple[bool, int, bool], bytes] = {}

    def burst(self, chat: bool, n_tokens: int, usage: bool) -> bytes:
        """Every token event of a response in one write, built once per shape: with all gaps 0 the server's cost
        per token is next to nothing, so a load generator's ceiling is measured, not the server's."""
        key = (chat, n_tokens, usage)
        if key not in self.bursts:
            self.bursts[key] = b"".join(_token_events(chat, position, n_tokens, usage) for position in range(n_tokens))
        return self.bursts[key]


def _token_events(chat: bool, position: int, n_tokens: int, usage: bool) -> bytes:
    """The SSE chunk(s) for token ``position``; after the last token the finish, usage and [DONE] events."""
    choice: dict[str, Any] = {"index": 0, "finish_reason": None}
    if chat:
        choice["delta"] = {"content": f" t{position}"}
    else:
        choice["text"] = f" t{position}"
    out = _event({"id": "ref", "choices": [choice]})
    if position == n_tokens - 1:
        final: dict[str, Any] = {"index": 0, "finish_reason": "length"}
        final["delta" if chat else "text"] = {} if chat else ""
        out += _event({"id": "ref", "choices": [final]})
        if usage:
            counts = {"prompt_tokens": 1, "completion_tokens": n_tokens, "total_tokens": n_tokens + 1}
            out += _event({"id": "ref", "choices": [], "usage": counts})
        out += _event("[DONE]") + b"0\r\n\r\n"
    return out


class _Connection(asyncio.Protocol):
    def __init__(self, reference: Reference) -> None:
        self.ref = reference
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.received: float | None = None
        self.busy = False  # one request at a time per connection (no pipelining)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports do not subclass asyncio's

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if self.received is None:
            self.received = now
        self.buffer += data
        if self.busy:
            return
        end = self.buffer.find(_HEAD_END)
        if end < 0:
            return
        head = self.buffer[:end].decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}
        length = int(headers.get("content-length", "0"))
        if len(self.buffer) < end + 4 + length:
            return
        body, self.buffer = self.buffer[end + 4 : end + 4 + length], self.buffer[end + 4 + length :]
        received, self.received = self.received, (now if self.buffer else None)
        method, path, *_ = [*head[0].split(" "), "", ""]
        self._route(method, path, headers, body, received)

    def _send_json(self, value: Any, status: str = "200 OK") -> None:
        payload = json.dumps(value).encode()
        head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        if self.transport is not None:
            self.transport.write(head.encode() + payload)

    def _route(self, method: str, path: str, headers: dict[str, str], body: bytes, received: float) -> None:
        if method == "POST" and path in ("/v1/completions", "/v1/chat/completions"):
            self._stream(path.endswith("/chat/completions"), headers, json.loads(body), received)
        elif method == "GET" and path == "/truth":
            self._send_json(self.ref.truth)
        elif method == "POST" and path == "/truth/reset":
            self.ref.truth.clear()
            self._send_json({"ok": True})
        elif method == "GET" and path in ("/v1/models", "/health"):
            self._send_json({"object": "list", "data": [{"id": "reference", "object": "model"}]})
        else:
            self._send_json({"error": f"no route {method} {path}"}, "404 Not Found")

    def _stream(self, chat: bool, headers: dict[str, str], body: dict[str, Any], received: float) -> None:
        ref = self.ref
        ref.counter += 1
        n_tokens = int(body.get("max_tokens") or ref.default_tokens)
        ttft = ref.rng.choice(ref.ttft_ms)
        gaps = [ref.rng.choice(ref.itl_ms) for _ in range(n_tokens - 1)]
        scheduled = [received + ttft / 1e3]
        for gap in gaps:
            scheduled.append(scheduled[-1] + gap / 1e3)
        record: dict[str, Any] = {
            "received": received,
            "nominal_ttft_ms": ttft,
            "nominal_itl_ms": gaps,
            "scheduled": scheduled,
            "token_times": [],
        }
        ref.truth[headers.get("x-request-id") or f"ref-{ref.counter}"] = record
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        assert self.transport is not None
        self.busy = True
        self.transport.write(_STREAM_HEAD)
        # perf_counter and loop.time() are both CLOCK_MONOTONIC here; convert once per request.
        offset = self.loop.time() - time.perf_counter()
        if not any(gaps):
            self.loop.call_at(scheduled[0] + offset, self._burst, chat, record, n_tokens, usage)
            return
        for position, due in enumerate(scheduled):
            self.loop.call_at(due + offset, self._token, chat, record, position, n_tokens, usage)

    def _token(self, chat: bool, record: dict[str, Any], position: int, n_tokens: int, usage: bool) -> None:
        # loop.call_at may fire a hair before ``due`` (clock rounding): never write a token early.
        while time.perf_counter() < record["scheduled"][position]:
            pass
        if self.transport is None:
            return
        record["token_times"].append(time.perf_counter())
        out = _token_events(chat, position, n_tokens, usage)
        if position == n_tokens - 1:
            self._finished(out)
        else:
            self.transport.write(out)

    def _burst(self, chat: bool, record: dict[str, Any], n_tokens: int, usage: bool) -> None:
        while time.perf_counter() < record["scheduled"][0]:
            pass
        if self.transport is None:
            return
        record["token_times"] = [time.perf_counter()] * n_tokens
        self._finished(self.ref.burst(chat, n_tokens, usage))

    def _finished(self, out: bytes) -> None:
        """Write the response's last bytes, then serve a request that arrived on this connection meanwhile."""
        assert self.transport is not None
        self.busy = False
        self.transport.write(out)
        if self.buffer:
            self.data_received(b"")


async def serve(host: str, port: int, reference: Reference) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(reference), host, port, backlog=4096)
    async with server:
        await server.serve_forever()


def _floats(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def delay_server_parser(description: str | None) -> argparse.ArgumentParser:
    """The flags every delay-injecting test server takes (what ``server.reference_command`` passes)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ttft-ms", type=_floats, default=[20.0])
    parser.add_argument("--itl-ms", type=_floats, default=[10.0])
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: list[str] | None = None) -> None:
    import uvloop

    args = delay_server_parser(__doc__.splitlines()[0] if __doc__ else None).parse_args(argv)
    uvloop.run(serve(args.host, args.port, Reference(args.ttft_ms, args.itl_ms, seed=args.seed)))


if __name__ == "__main__":
    main()
