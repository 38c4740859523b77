"""The HTTP/1.1 streaming connection: chunked responses parsed by httptools, reads kept with their own clock."""

from __future__ import annotations

import asyncio

import pytest

from evals.latency.transport import Connection, Pool, TransportError


class _Wire:
    """Stands in for a socket transport: records writes."""

    def __init__(self) -> None:
        self.written = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def test_request_bytes() -> None:
    pool = Pool("http://h:81/v1", limit=0, connect_timeout_s=1)
    request = pool.request("/v1/completions", b"{}", {"X-Request-Id": "a-1"})
    assert request == (
        b"POST /v1/completions HTTP/1.1\r\nHost: h:81\r\nContent-Length: 2\r\nX-Request-Id: a-1\r\n\r\n{}"
    )
    with pytest.raises(ValueError, match="http"):
        Pool("ftp://h", limit=0, connect_timeout_s=1)


def test_reads_keep_their_arrival_and_the_message_end_frees_the_connection() -> None:
    async def scenario() -> None:
        connection = Connection()
        wire = _Wire()
        connection.connection_made(wire)  # type: ignore[arg-type]
        sent, response = connection.send(b"POST / HTTP/1.1\r\n\r\n")
        assert wire.written.startswith(b"POST") and sent > 0
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n"
        connection.data_received(head + _chunk(b'data: {"a": 1}\n\n'))
        first = connection.now
        connection.data_received(_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        assert response.done.done() and response.complete and response.status == 200
        assert [data for _, data in response.reads] == [b'data: {"a": 1}\n\n', b"data: [DONE]\n\n"]
        assert response.reads[0][0] == first < response.reads[1][0]
        assert connection.usable

    asyncio.run(scenario())


def test_a_drop_mid_stream_fails_the_response() -> None:
    async def scenario() -> None:
        connection = Connection()
        connection.connection_made(_Wire())  # type: ignore[arg-type]
        _, response = connection.send(b"x")
        connection.data_received(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + _chunk(b"data: {}\n\n"))
        connection.connection_lost(None)
        with pytest.raises(TransportError, match="dropped mid-stream"):
            await response.done
        assert not connection.usable

    asyncio.run(scenario())
