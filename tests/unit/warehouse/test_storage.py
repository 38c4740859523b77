from pathlib import Path

import pytest

from evals.errors import ConfigError, StorageUnavailable, TerminalError
from evals.warehouse.storage import classify, parse_uri


def test_parse_file_uris(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_uri(f"file://{tmp_path}").root == str(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert parse_uri("file://./warehouse").root == str(tmp_path / "warehouse")


def test_parse_s3_uri() -> None:
    location = parse_uri("s3://bucket/some/prefix/")
    assert (location.scheme, location.root, location.bucket) == ("s3", "bucket/some/prefix", "bucket")
    assert parse_uri("s3://bucket").root == "bucket"


@pytest.mark.parametrize("uri", ["http://x", "s3://", "file://", "warehouse"])
def test_bad_uris(uri: str) -> None:
    with pytest.raises(ConfigError):
        parse_uri(uri)


def test_classify_errors() -> None:
    assert isinstance(classify(OSError("AWS Error NETWORK_CONNECTION during GetObject"), "x"), StorageUnavailable)
    assert isinstance(classify(OSError("HTTP response code: 503 SlowDown"), "x"), StorageUnavailable)
    assert isinstance(classify(OSError("AWS Error NO_SUCH_BUCKET"), "x"), ConfigError)
    assert isinstance(classify(OSError("AWS Error ACCESS_DENIED"), "x"), ConfigError)
    other = classify(OSError("Parquet magic bytes not found"), "read f")
    assert isinstance(other, TerminalError) and "read f" in str(other)
    classified = StorageUnavailable("load published table runs: the Iceberg catalog is unreachable: refused")
    assert classify(classified, "plan runs") is classified  # an error classified where it arose stays retryable
