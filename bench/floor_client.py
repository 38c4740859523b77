"""The floor: the leanest streaming client we know how to write, to measure what any client's error must be at least.

One raw asyncio ``Protocol`` per stream over a kept-alive HTTP/1.1 connection; the read is stamped with
``time.perf_counter()`` inside ``data_received`` (no task wake-up between the socket and the clock); a token is an
SSE ``data:`` event whose ``finish_reason`` is null (what vLLM and the reference simulator send per token). No JSON
decoding, no timeouts, no TLS, no retries: a bench yardstick, not a client to publish numbers with.

    from bench.floor_client import run_closed_loop
    results = asyncio.run(run_closed_loop("127.0.0.1", 8000, bodies, concurrency=32, count=640))
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

_TOKEN = b'"finish_reason": null'
_TOKEN_COMPACT = b'"finish_reason":null'
_END = b"0\r\n\r\n"


@dataclass
class FloorResult:
    index: int
    sent: float = 0.0
    token_times: list[float] = field(default_factory=list)
    ok: bool = False


class _Stream(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.result: FloorResult | None = None
        self.done: asyncio.Future[None] | None = None
        self.tail = b""
        self.header_done = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports do not subclass asyncio's

    def send(self, request: bytes, result: FloorResult) -> asyncio.Future[None]:
        assert self.transport is not None
        self.result, self.tail, self.header_done = result, b"", False
        self.done = asyncio.get_running_loop().create_future()
        result.sent = time.perf_counter()
        self.transport.write(request)
        return self.done

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        result = self.result
        if result is None or self.done is None:
            return
        data = self.tail + data
        if not self.header_done:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.tail = data
                return
            self.header_done = True
            data = data[end + 4 :]
        # Count complete events only; a partial one waits for the next read (and gets its time).
        last = data.rfind(b"\n\n")
        complete, self.tail = (data[: last + 2], data[last + 2 :]) if last >= 0 else (b"", data)
        tokens = complete.count(_TOKEN) + complete.count(_TOKEN_COMPACT)
        result.token_times.extend([now] * tokens)
        if self.tail.endswith(_END) or complete.endswith(_END):
            result.ok = True
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result(None)


def http_request(host: str, port: int, path: str, body: bytes, request_id: str) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: text/event-stream\r\nX-Request-Id: {request_id}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def run_closed_loop(
    host: str,
    port: int,
    bodies: list[bytes],
    *,
    concurrency: int,
    count: int,
    path: str = "/v1/completions",
    tag: str = "t",
    timeout_s: float = 120.0,
) -> list[FloorResult]:
    """``count`` requests, ``concurrency`` in flight, each stream on its own kept-alive connection; a request not
    done within ``timeout_s`` stays ``ok=False`` and its stream reconnects."""
    loop = asyncio.get_running_loop()
    results: list[FloorResult] = []
    claimed = 0

    async def worker() -> None:
        nonlocal claimed
        _, stream = await loop.create_connection(_Stream, host, port)
        try:
            while claimed < count:
                result = FloorResult(index=claimed)
                claimed += 1
                body = bodies[result.index % len(bodies)]
                request = http_request(host, port, path, body, f"{tag}-{result.index}")
                try:
                    await asyncio.wait_for(stream.send(request, result), timeout_s)
                except TimeoutError:
                    result.ok = False
                    if stream.transport is not None:
                        stream.transport.close()
                    _, stream = await loop.create_connection(_Stream, host, port)
                results.append(result)
        finally:
            if stream.transport is not None:
                stream.transport.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    results.sort(key=lambda r: r.index)
    return results
