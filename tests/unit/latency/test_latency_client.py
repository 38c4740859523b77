"""The request payloads and the incremental SSE parser (events split across reads, usage, faults)."""

from __future__ import annotations

import json

import pytest

from evals.latency.client import RequestResult, Target, _StreamFailure, _StreamState
from evals.latency.prompts import Prompt


def _event(text: str | None = None, *, chat: bool = False, finish: str | None = None, **extra: object) -> bytes:
    choice: dict[str, object] = {"index": 0, "finish_reason": finish}
    if chat:
        choice["delta"] = {"content": text} if text is not None else {"role": "assistant"}
    else:
        choice["text"] = text or ""
    return b"data: " + json.dumps({"choices": [choice], **extra}).encode() + b"\n\n"


def test_completions_payload() -> None:
    target = Target("http://h:1/v1/", "m", "completions", max_tokens=5, ignore_eos=True)
    assert target.url == "http://h:1/v1/completions"
    body = json.loads(target.payload(Prompt(text="hi")))
    assert body == {
        "model": "m",
        "prompt": "hi",
        "max_tokens": 5,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
        "ignore_eos": True,
    }


def test_chat_payload_without_ignore_eos() -> None:
    target = Target("http://h:1", "m", "chat", max_tokens=5)
    assert target.url == "http://h:1/v1/chat/completions"
    body = json.loads(target.payload(Prompt(text="hi")))
    assert body["messages"] == [{"role": "user", "content": "hi"}] and "ignore_eos" not in body
    messages = ({"role": "system", "content": "s"}, {"role": "user", "content": "u"})
    assert json.loads(target.payload(Prompt(messages=messages)))["messages"] == list(messages)


def test_events_split_across_reads_get_the_time_of_the_read_that_completed_them() -> None:
    result = RequestResult(index=0, scheduled=0.0)
    state = _StreamState(result)
    stream = _event("a") + _event("b") + b": keep-alive\n\n" + _event(None, finish="length")
    stream += b'data: {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 9}}\r\n\r\ndata: [DONE]\n\n'
    cut = len(_event("a")) + 10  # the second event arrives in two pieces
    state.feed(stream[:cut], 1.0)
    state.feed(stream[cut:], 2.0)
    assert result.token_times == [1.0, 2.0]
    assert state.done and state.finish_reason == "length"
    assert (result.output_tokens, result.prompt_tokens, result.usage_reported) == (9, 4, True)


def test_chat_role_chunk_is_not_a_token() -> None:
    result = RequestResult(index=0, scheduled=0.0)
    state = _StreamState(result)
    state.feed(_event(None, chat=True) + _event("", chat=True) + _event("x", chat=True), 1.0)
    assert result.token_times == [1.0]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"data: {not json\n\n", "malformed SSE event"),
        (b"data: [1, 2]\n\n", "not an object"),
        (b'data: {"error": {"message": "overloaded"}}\n\n', "server error event: {'message': 'overloaded'}"),
    ],
)
def test_bad_events_fail_the_stream(data: bytes, message: str) -> None:
    state = _StreamState(RequestResult(index=0, scheduled=0.0))
    with pytest.raises(_StreamFailure, match=message):
        state.feed(_event("a") + data, 1.0)
