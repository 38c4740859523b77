"""Credentials are masked before anything is stored."""

from evals.redact import redact_command, redact_url


def test_credentials_never_reach_the_run_config() -> None:
    assert redact_url("http://user:secret@10.0.0.1:8000/v1") == "http://10.0.0.1:8000/v1"
    assert redact_url("http://user:secret@host:8000/v1") == "http://host:8000/v1"  # accuracy's base_url
    assert redact_url("http://127.0.0.1:8000") == "http://127.0.0.1:8000"
    command = ["vllm", "serve", "m", "--api-key", "sk-123", "--hf-token=hf_abc", "--port", "1"]
    masked = ["vllm", "serve", "m", "--api-key", "********", "--hf-token=********", "--port", "1"]
    assert redact_command(command) == masked


def test_missing_url_stays_missing() -> None:
    assert redact_url(None) is None
