"""Kept-alive HTTP/1.1 connections for the load generator: each read is stamped where it arrives.

Why not aiohttp's client (what we used before, profiled under load): its body write runs in a task scheduled after
the ``sent`` stamp (on Python < 3.12), and each read reaches the caller through a stream reader and a task
wake-up, so at 32 streams the stamps lagged the wire by milliseconds — the same order as the errors we measure.
Here an asyncio ``Protocol`` stamps ``time.perf_counter()`` at the top of ``data_received``, httptools (the
parser uvloop/uvicorn use) decodes the response and chunked framing in C, and the body bytes are only kept with
their stamp: SSE and JSON decoding happen after the stream ends, off the path between the socket and the clock.
The request is written with one ``transport.write`` right after the ``sent`` stamp.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

import httptools

_DONE = b"data: [DONE]"


class TransportError(Exception):
    """The connection failed before or during a response (refused, dropped, not HTTP)."""


class _Response:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.status: int | None = None
        self.reads: list[tuple[float, bytes]] = []  # body bytes as they arrived, with their read's clock
        self.done: asyncio.Future[None] = loop.create_future()
        self.complete = False  # the whole HTTP message arrived (the connection can be reused)
        self.saw_done = False
        self.tail = b""
        self.retry_after: str | None = None  # the Retry-After header of a 429/503

    def finish(self, error: BaseException | None = None) -> None:
        if not self.done.done():
            if error is None:
                self.done.set_result(None)
            else:
                self.done.set_exception(error)


class Connection(asyncio.Protocol):
    """One kept-alive connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.response: _Response | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.now = 0.0
        self.keep_alive = True
        self.pool: Pool | None = None
        self.draining = False  # released after [DONE], before the end of the HTTP message

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        self.now = time.perf_counter()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.keep_alive = False
            if self.response is not None:
                self.response.finish(TransportError(f"malformed HTTP response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.response is not None and not self.response.complete:
            reason = f"{type(exc).__name__}: {exc}" if exc else "closed by the server"
            self.response.finish(TransportError(f"connection dropped mid-stream: {reason}"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        if self.response is not None and name.lower() == b"retry-after":
            self.response.retry_after = value.decode("latin-1").strip()

    def on_headers_complete(self) -> None:
        if self.response is not None:
            self.response.status = self.parser.get_status_code()
            self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        response = self.response
        if response is None:
            return
        response.reads.append((self.now, body))
        # A server may hold the response open after [DONE]; the stream is over for us then.
        if response.status == 200 and _DONE in response.tail + body:
            response.saw_done = True
            response.finish()
        response.tail = body[-len(_DONE) :]

    def on_message_complete(self) -> None:
        if self.response is not None:
            self.response.complete = True
            self.response.finish()
        if self.draining and self.pool is not None:
            self.draining = False
            self.response = None
            self.pool.idle.append(self)

    @property
    def usable(self) -> bool:
        return self.transport is not None and not self.transport.is_closing() and self.keep_alive

    def send(self, request: bytes) -> tuple[float, _Response]:
        """Write ``request``; returns the clock just before the write and the response being read."""
        assert self.transport is not None
        self.response = _Response(asyncio.get_running_loop())
        sent = time.perf_counter()
        self.transport.write(request)
        return sent, self.response

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Pool:
    """Connections to one origin, reused LIFO; at most ``limit`` open at once (0: unbounded)."""

    def __init__(self, base_url: str, *, limit: int, connect_timeout_s: float) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http(s) URL, got {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self.host_header = parts.netloc.rsplit("@", 1)[-1]
        self.connect_timeout_s = connect_timeout_s
        self.slots = asyncio.Semaphore(limit) if limit > 0 else None
        self.idle: list[Connection] = []
        self.open: set[Connection] = set()

    async def acquire(self) -> Connection:
        if self.slots is not None:
            await self.slots.acquire()
        while self.idle:
            connection = self.idle.pop()
            if connection.usable:
                return connection
            self.open.discard(connection)
        try:
            loop = asyncio.get_running_loop()
            async with asyncio.timeout(self.connect_timeout_s):
                _, connection = await loop.create_connection(
                    Connection, self.host, self.port, ssl=self.ssl, server_hostname=self.host if self.ssl else None
                )
        except BaseException:
            if self.slots is not None:
                self.slots.release()
            raise
        connection.pool = self
        self.open.add(connection)
        return connection

    def release(self, connection: Connection) -> None:
        response = connection.response
        if response is not None and response.complete and connection.usable:
            connection.response = None
            self.idle.append(connection)
        elif response is not None and response.saw_done and connection.usable:
            connection.draining = True  # back to the idle list when the message's last bytes arrive
        else:
            connection.response = None
            connection.close()
            self.open.discard(connection)
        if self.slots is not None:
            self.slots.release()

    def request(self, path: str, body: bytes, headers: Mapping[str, str]) -> bytes:
        lines = [f"POST {path} HTTP/1.1", f"Host: {self.host_header}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    def close(self) -> None:
        for connection in self.open:
            connection.close()
        self.open.clear()
        self.idle.clear()
