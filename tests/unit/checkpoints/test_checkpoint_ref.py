"""CheckpointRef: string round trip and strict validation."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evals.checkpoints.ref import CheckpointMeta, CheckpointRef, InvalidRef
from evals.errors import ConfigError, TerminalError

SHA1 = "0123456789abcdef0123456789abcdef01234567"
SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


@pytest.mark.parametrize(
    "text",
    [
        f"hf:HuggingFaceTB/SmolLM2-135M-Instruct@{SHA1}",
        f"package:HuggingFaceTB/SmolLM2-135M-Instruct@{SHA256}",
        "hf:Qwen/Qwen2.5-0.5B-Instruct",
        f"local:team/exp_3/v1.2@{SHA256}",
        f"s3:gpt2@{SHA1}",
    ],
)
def test_parse_and_print_round_trip(text: str) -> None:
    ref = CheckpointRef.parse(text)
    assert str(ref) == text
    assert CheckpointRef.parse(str(ref)) == ref


def test_fields_of_a_parsed_ref() -> None:
    ref = CheckpointRef.parse(f"hf:org/name@{SHA1}")
    assert (ref.source, ref.model_id, ref.revision, ref.pinned) == ("hf", "org/name", SHA1, True)
    assert not CheckpointRef.parse("hf:org/name").pinned


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "empty"),
        ("org/name", "no source"),
        (f"hf:@{SHA1}", "empty model id"),
        ("hf:", "empty model id"),
        (f"hf:../etc/passwd@{SHA1}", "'..'"),
        (f"hf:org/../x@{SHA1}", "'..'"),
        (f"local:/abs/path@{SHA1}", "absolute path"),
        (f"hf:org//name@{SHA1}", "invalid part"),
        (f"hf:org/.hidden@{SHA1}", "invalid part"),
        (f"hf:org/na me@{SHA1}", "whitespace"),
        (f" hf:org/name@{SHA1}", "whitespace"),
        (f"hf:org/name@{SHA1}\n", "whitespace"),
        (f"hf:{'a' * 201}@{SHA1}", "more than 200"),
        ("hf:org/name@main", "invalid revision"),
        ("hf:org/name@0123abc", "invalid revision"),
        (f"hf:org/name@{SHA1.upper()}", "invalid revision"),
        (f"hf:org/name@{SHA1}0", "invalid revision"),
        ("hf:org/name@", "empty revision"),
        (f"HF:org/name@{SHA1}", "invalid source"),
        (f"h f:org/name@{SHA1}", "whitespace"),
        (f"hf:org/name;rm -rf@{SHA1}", "whitespace"),
        (f"hf:org/name$x@{SHA1}", "invalid part"),
    ],
)
def test_invalid_refs_are_rejected_with_a_clear_error(text: str, complaint: str) -> None:
    with pytest.raises(InvalidRef, match=complaint.replace("(", r"\(").replace(".", r"\.")) as info:
        CheckpointRef.parse(text)
    assert isinstance(info.value, ConfigError) and isinstance(info.value, TerminalError)


def test_constructor_validates_too() -> None:
    with pytest.raises(InvalidRef):
        CheckpointRef("hf", "org/name", "deadbeef")
    with pytest.raises(InvalidRef):
        CheckpointRef("hf", "/root")


def test_identity_ignores_uri_and_meta() -> None:
    a = CheckpointRef("hf", "org/name", SHA1, uri="https://x", meta=CheckpointMeta(params=1))
    b = CheckpointRef("hf", "org/name", SHA1)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != CheckpointRef("s3", "org/name", SHA1)


def test_dict_round_trip_is_strict_json() -> None:
    meta = CheckpointMeta(
        params=135, dtype="bfloat16", size_bytes=10, license="mit", created_at=dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    )
    ref = CheckpointRef("hf", "org/name", SHA1, uri="https://hub/org/name", meta=meta)
    data = json.loads(json.dumps(ref.to_dict(), allow_nan=False))
    back = CheckpointRef.from_dict(data)
    assert back == ref and back.meta == meta and back.uri == ref.uri


def test_cache_key_is_safe_and_unambiguous() -> None:
    a = CheckpointRef("hf", "org/name", SHA1).cache_key()
    assert a == f"hf/org~name/{SHA1}"
    others = {CheckpointRef("hf", m, SHA1).cache_key() for m in ("org--name", "org-name", "org_name", "or/g/name")}
    assert a not in others and len(others) == 4
    with pytest.raises(InvalidRef):
        CheckpointRef("hf", "org/name").cache_key()


_segment = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True).filter(lambda s: s != "..")


@given(
    source=st.sampled_from(["hf", "s3", "local", "package"]),
    parts=st.lists(_segment, min_size=1, max_size=3),
    revision=st.one_of(st.none(), st.from_regex(r"[0-9a-f]{40}|[0-9a-f]{64}", fullmatch=True)),
)
def test_round_trip_property(source: str, parts: list[str], revision: str | None) -> None:
    ref = CheckpointRef(source, "/".join(parts), revision)
    assert CheckpointRef.parse(str(ref)) == ref
