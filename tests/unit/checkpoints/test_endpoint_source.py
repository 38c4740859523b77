"""The endpoint source: a hosted model declared with prices and a key's location; never the key itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evals.checkpoints.registry import get_source_class
from evals.checkpoints.sources.endpoint import (
    EndpointSource,
    auth_headers,
    endpoint_options,
    load_descriptor,
    usd_per_1m_output_tokens,
)
from evals.errors import ConfigError, TerminalError
from evals.settings import Settings

DECLARED: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "base_url": "https://api.example.com/v1/",
    "price_input_per_1m": 0.15,
    "price_output_per_1m": 0.60,
    "api_key_env": "EXAMPLE_API_KEY",
}
SECRET = "sk-test-never-stored-0123456789"


def test_registered_and_pinned_to_its_declaration(settings: Settings) -> None:
    assert get_source_class("endpoint") is EndpointSource
    (ref,) = EndpointSource(settings, DECLARED).discover()
    assert (ref.source, ref.model_id, len(ref.revision or "")) == ("endpoint", "gpt-4o-mini", 64)
    assert EndpointSource(settings, DECLARED).discover() == [ref]  # deterministic
    repriced = EndpointSource(settings, {**DECLARED, "price_output_per_1m": 0.5}).discover()[0]
    assert repriced.revision != ref.revision  # a price change is a new revision
    moved_key = EndpointSource(settings, {**DECLARED, "api_key_env": "OTHER"}).discover()[0]
    assert moved_key.revision == ref.revision  # where the key lives does not identify the model
    with pytest.raises(TerminalError, match="not the declared endpoint"):
        EndpointSource(settings, DECLARED).resolve(repriced)


@pytest.mark.parametrize("missing", ["price_input_per_1m", "price_output_per_1m", "base_url", "model"])
def test_a_missing_field_is_a_config_error_naming_it(missing: str) -> None:
    with pytest.raises(ConfigError, match=f"field '{missing}'"):
        endpoint_options({k: v for k, v in DECLARED.items() if k != missing})


def test_bad_declarations_are_refused() -> None:
    with pytest.raises(ConfigError, match="price_output_per_1m"):
        endpoint_options({**DECLARED, "price_output_per_1m": -1})
    with pytest.raises(ConfigError, match="must not carry credentials"):
        endpoint_options({**DECLARED, "base_url": "https://user:sk-x@api.example.com"})
    with pytest.raises(ConfigError, match="api_key"):
        endpoint_options({**DECLARED, "api_key": SECRET})  # a key in the file itself: unknown field


def test_materialized_descriptor_names_the_key_but_never_holds_it(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXAMPLE_API_KEY", SECRET)
    source = EndpointSource(settings, DECLARED)
    (ref,) = source.discover()
    directory = source.prepared_dir(ref)
    stored = "".join(p.read_text() for p in Path(directory).rglob("*") if p.is_file())
    assert SECRET not in stored and "EXAMPLE_API_KEY" in stored
    assert SECRET not in json.dumps(ref.to_dict()) and SECRET not in repr(ref)
    options = load_descriptor(directory)
    assert options is not None and options.base_url == "https://api.example.com"
    assert auth_headers(options) == (("Authorization", f"Bearer {SECRET}"),)  # read when needed


def test_the_key_from_a_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    from evals.connections import BACKENDS, Connection

    class Fake:
        def connection(self, conn_id: str) -> Connection:
            return Connection(conn_id, password=SECRET if conn_id == "hosted" else None)

    monkeypatch.setattr(BACKENDS, "_targets", {**BACKENDS._targets, "airflow": Fake()})
    options = endpoint_options({**DECLARED, "api_key_env": None, "conn_id": "hosted"})
    assert auth_headers(options) == (("Authorization", f"Bearer {SECRET}"),)
    with pytest.raises(ConfigError, match="connection 'empty' has no password"):
        auth_headers(endpoint_options({**DECLARED, "api_key_env": None, "conn_id": "empty"}))
    with pytest.raises(ConfigError, match="EXAMPLE_API_KEY is not set"):
        monkeypatch.delenv("EXAMPLE_API_KEY", raising=False)
        auth_headers(endpoint_options(DECLARED))


def test_cost_comes_from_the_price_list() -> None:
    options = endpoint_options(DECLARED)
    # 3M input tokens and 1M output tokens: 3 x 0.15 + 1 x 0.60 = 1.05 USD per 1M output tokens.
    assert usd_per_1m_output_tokens(options, 3_000_000, 1_000_000) == pytest.approx(1.05)
    assert usd_per_1m_output_tokens(options, 10, 0) is None
