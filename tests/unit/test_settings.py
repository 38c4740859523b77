import pytest

from evals.errors import ConfigError
from evals.settings import get_settings


def test_defaults_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVALS_WAREHOUSE", raising=False)
    assert get_settings().warehouse == "file://./warehouse"
    monkeypatch.setenv("EVALS_WAREHOUSE", "s3://bucket/prefix")
    monkeypatch.setenv("EVALS_GPU_QUEUE", "h100")
    settings = get_settings()
    assert (settings.warehouse, settings.gpu_queue) == ("s3://bucket/prefix", "h100")


def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALS_WAREHOUSE", "ftp://somewhere")
    with pytest.raises(ConfigError, match=r"EVALS_WAREHOUSE.*file:// or s3://"):
        get_settings()
    monkeypatch.delenv("EVALS_WAREHOUSE")
    monkeypatch.setenv("EVALS_TASK_RETRIES", "-1")
    with pytest.raises(ConfigError, match="EVALS_TASK_RETRIES"):
        get_settings()


def test_secrets_do_not_leak_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALS_S3_SECRET_ACCESS_KEY", "very-secret")
    assert "very-secret" not in repr(get_settings())
