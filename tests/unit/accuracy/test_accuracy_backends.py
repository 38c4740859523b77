import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from evals.accuracy import run_suite
from evals.accuracy.backends import ModelTarget, available_backends, get_backend
from evals.accuracy.backends.openai_server import api_root, probe_prompt_logprobs
from evals.errors import ConfigError, ServerNotReady
from evals.settings import get_settings


def test_unknown_backend_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown accuracy backend 'hff'.*hf, local-chat-completions"):
        get_backend("hff")
    assert available_backends() == ["hf", "local-chat-completions", "local-completions", "vllm"]


def test_importing_and_listing_imports_nothing_heavy() -> None:
    code = (
        "import sys, evals.accuracy, evals.cli.accuracy; "
        "from evals.accuracy.backends import get_backend; get_backend('local-completions'); get_backend('hf'); "
        "print(sorted(m for m in ('torch', 'transformers', 'lm_eval', 'vllm', 'pyarrow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    "url", ["http://h:1", "http://h:1/", "http://h:1/v1", "http://h:1/v1/completions", "http://h:1/v1/chat/completions"]
)
def test_api_root(url: str) -> None:
    assert api_root(url) == "http://h:1/v1"


def test_hf_backend_never_trusts_remote_code_unless_allowed(tmp_path: Path) -> None:
    settings = get_settings(accuracy_device="cpu")
    hf = get_backend("hf")
    args = hf.model_args(ModelTarget(tmp_path, None, None, False, settings), batch_size=4, seed=0)
    assert args["trust_remote_code"] is False and args["dtype"] == "float32"
    allowed = hf.model_args(ModelTarget(tmp_path, None, None, True, settings), batch_size=4, seed=0)
    assert allowed["trust_remote_code"] is True


def test_server_backend_needs_a_url() -> None:
    target = ModelTarget(None, None, "m", False, get_settings())
    with pytest.raises(ConfigError, match="needs --base-url"):
        get_backend("local-completions").check_target(target)


class _Stub(BaseHTTPRequestHandler):
    with_logprobs = False

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        logprobs = {"tokens": ["The", " capital"], "token_logprobs": [None, -2.5, -1.0]} if self.with_logprobs else None
        body = json.dumps({"choices": [{"text": " Paris", "index": 0, "logprobs": logprobs}]}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _serve(with_logprobs: bool) -> Iterator[str]:
    handler = type("Handler", (_Stub,), {"with_logprobs": with_logprobs})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def no_logprobs_server() -> Iterator[str]:
    yield from _serve(False)


@pytest.fixture
def logprobs_server() -> Iterator[str]:
    yield from _serve(True)


def test_probe_tells_servers_apart(no_logprobs_server: str, logprobs_server: str) -> None:
    assert probe_prompt_logprobs(no_logprobs_server, "m") is False
    assert probe_prompt_logprobs(logprobs_server + "/v1", "m") is True


def test_probe_of_a_dead_server_is_transient() -> None:
    with pytest.raises(ServerNotReady):
        probe_prompt_logprobs("http://127.0.0.1:9", "m", timeout_s=2)


@pytest.mark.parametrize("backend", ["local-completions", "local-chat-completions"])
def test_mc_suite_on_a_server_without_logprobs_is_refused_up_front(
    backend: str, no_logprobs_server: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as err:
        run_suite(
            None,
            "smoke",
            model_id="m",
            revision="r",
            backend=backend,
            base_url=no_logprobs_server,
            served_model="m",
            settings=get_settings(cache_dir=tmp_path),
        )
    message = str(err.value)
    assert "cannot run suite smoke@1.0.0: bigbench_mc: multiple_choice" in message
    assert "bigbench_arithmetic_1d_add" not in message
