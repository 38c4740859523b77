"""The serving launcher: an OpenAI-compatible server for a checkpoint (vLLM on GPU, transformers on CPU) or a URL."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from evals.environment import detect_gpus
from evals.errors import ConfigError, ServerNotReady

if TYPE_CHECKING:
    from evals.settings import Settings

log = logging.getLogger(__name__)

BACKENDS = ("auto", "vllm", "transformers")
_LOG_TAIL_CHARS = 3000


@dataclass
class ServerHandle:
    """A server ready for requests: base URL, the model name requests must carry, and how it was started."""

    endpoint: str
    model: str
    backend: str  # vllm | transformers | external | simulator
    accepts_ignore_eos: bool
    load_s: float | None = None
    log_path: Path | None = None
    pid: int | None = None
    command: list[str] = field(default_factory=list)
    gpu_count: int = 0
    # Request headers a hosted API needs (its bearer key): sent by the load generator, never shown or stored.
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def log_tail(self, chars: int = _LOG_TAIL_CHARS) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def vllm_command(checkpoint: Path, *, port: int, model_name: str, settings: Settings) -> list[str]:
    """``vllm serve`` for ``checkpoint`` on loopback; safetensors only, no remote code (safety defaults)."""
    command = [
        _executable("vllm"),
        "serve",
        str(checkpoint),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--served-model-name",
        model_name,
        "--dtype",
        settings.vllm_dtype,
        "--gpu-memory-utilization",
        str(settings.vllm_gpu_memory_utilization),
        "--tensor-parallel-size",
        str(settings.vllm_tensor_parallel_size),
        "--load-format",
        "safetensors",
        "--seed",
        "0",
    ]
    if settings.vllm_max_model_len is not None:
        command += ["--max-model-len", str(settings.vllm_max_model_len)]
    return command + list(settings.vllm_extra_args)


def transformers_command(checkpoint: Path, *, port: int, settings: Settings) -> list[str]:
    """``transformers serve`` pinned to ``checkpoint`` on loopback (requests name the directory); CPU by default."""
    return [
        _executable("transformers"),
        "serve",
        str(checkpoint),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--device",
        settings.transformers_serve_device,
        "--dtype",
        settings.transformers_serve_dtype,
        "--no-trust-remote-code",
        "--log-level",
        "info",
    ]


def _executable(name: str) -> str:
    # Prefer the one installed next to this interpreter: the venv's, not whatever PATH finds first.
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def choose_backend(backend: str) -> str:
    """``auto`` is vLLM when a GPU is visible and vLLM is installed, else transformers on the CPU."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown serving backend {backend!r}; known: {', '.join(BACKENDS)}")
    if backend != "auto":
        return backend
    import importlib.util

    if detect_gpus()["gpu_count"] > 0 and importlib.util.find_spec("vllm") is not None:
        return "vllm"
    return "transformers"


def wait_ready(
    endpoint: str,
    *,
    timeout_s: float,
    process: subprocess.Popen[bytes] | None = None,
    log_path: Path | None = None,
    headers: Sequence[tuple[str, str]] = (),
) -> None:
    """Poll ``GET /v1/models`` until it answers 200; raise :class:`ServerNotReady` on timeout or early exit."""
    url = endpoint.rstrip("/").removesuffix("/v1") + "/v1/models"
    deadline = time.perf_counter() + timeout_s
    last_error = "no answer yet"
    while True:
        if process is not None and process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-_LOG_TAIL_CHARS:] if log_path else ""
            raise ServerNotReady(f"server exited with code {process.returncode} before it was ready; log:\n{tail}")
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=dict(headers)), timeout=5) as response:
                if response.status == 200:
                    return
                last_error = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as exc:
            last_error = str(exc)
        if time.perf_counter() > deadline:
            tail = log_path.read_text(errors="replace")[-_LOG_TAIL_CHARS:] if log_path else ""
            raise ServerNotReady(f"{url} not ready after {timeout_s:g}s ({last_error}); log:\n{tail}")
        time.sleep(0.25)


def stop_process_group(process: subprocess.Popen[bytes], *, grace_s: float = 20.0) -> None:
    """SIGTERM the whole process group (servers fork workers), SIGKILL what is left after ``grace_s``."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        log.warning("server pid %d ignored SIGTERM for %.0fs, killing it", process.pid, grace_s)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextlib.contextmanager
def launch(
    command: Sequence[str],
    *,
    port: int,
    model: str,
    backend: str,
    accepts_ignore_eos: bool,
    ready_timeout_s: float,
    log_dir: Path | None = None,
    env: dict[str, str] | None = None,
    gpu_count: int = 0,
    registry: Path | None = None,
) -> Iterator[ServerHandle]:
    """Start ``command`` in its own process group, wait until ready, yield its handle, stop it on exit.

    The server dies with this process (parent-death signal); with a ``registry`` folder, servers left running by
    an earlier, killed evaluation on this worker are stopped first and this one is registered while it runs.
    """
    from evals.latency.supervision import die_with_parent, register, sweep_leftovers, unregister

    if registry is not None:
        sweep_leftovers(registry)
    folder = log_dir or Path(tempfile.mkdtemp(prefix="evals-serve-"))
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / f"{backend}-{port}.log"
    endpoint = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    with log_path.open("wb") as log_file:
        log.info("starting %s server on %s: %s (log: %s)", backend, endpoint, " ".join(command), log_path)
        process = subprocess.Popen(
            list(command),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent(),
            env={**os.environ, **(env or {})},
        )
        if registry is not None:
            register(registry, process.pid, command)
        handle = ServerHandle(
            endpoint=endpoint,
            model=model,
            backend=backend,
            accepts_ignore_eos=accepts_ignore_eos,
            log_path=log_path,
            pid=process.pid,
            command=list(command),
            gpu_count=gpu_count,
        )
        try:
            wait_ready(endpoint, timeout_s=ready_timeout_s, process=process, log_path=log_path)
            handle.load_s = time.perf_counter() - started
            log.info("%s server ready in %.1fs", backend, handle.load_s)
            yield handle
        finally:
            stop_process_group(process)
            if registry is not None:
                unregister(registry, process.pid)
            if log_dir is None:  # a log nobody asked to keep: it served the readiness error message, if any
                shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def serve(
    checkpoint: str | Path | None = None,
    *,
    endpoint: str | None = None,
    model_name: str | None = None,
    backend: str | None = None,
    settings: Settings | None = None,
    headers: Sequence[tuple[str, str]] = (),
) -> Iterator[ServerHandle]:
    """An OpenAI-compatible server for ``checkpoint`` (started here, stopped on exit) or the given ``endpoint``.

    With ``endpoint`` nothing is started: it is checked for readiness and used as is (``model_name`` required;
    ``headers``, e.g. a hosted API's bearer key, go with the readiness probe and every request).
    Otherwise ``backend`` (default: settings, ``auto``) picks ``vllm serve`` or ``transformers serve``.
    """
    from evals.settings import get_settings

    settings = settings or get_settings()
    if endpoint is not None:
        if not model_name:
            raise ConfigError("an existing endpoint needs the model name its requests must carry (--model)")
        wait_ready(endpoint, timeout_s=min(settings.latency_ready_timeout_s, 30.0), headers=headers)
        yield ServerHandle(
            endpoint=endpoint.rstrip("/").removesuffix("/v1"),
            model=model_name,
            backend="external",
            accepts_ignore_eos=settings.latency_endpoint_ignore_eos,
            gpu_count=settings.latency_gpu_count or 0,
            headers=tuple(headers),
        )
        return
    if checkpoint is None:
        raise ConfigError("give a checkpoint directory to serve or an endpoint URL")
    directory = Path(checkpoint)
    if not (directory / "config.json").is_file():
        raise ConfigError(f"{directory} is not a checkpoint directory (no config.json)")
    chosen = choose_backend(backend or settings.latency_backend)
    port = free_port()
    log_dir = settings.cache_dir / "servers"
    if chosen == "vllm":
        name = model_name or directory.name
        command = vllm_command(directory, port=port, model_name=name, settings=settings)
        gpus = settings.vllm_tensor_parallel_size
        with launch(
            command,
            port=port,
            model=name,
            backend="vllm",
            accepts_ignore_eos=True,
            ready_timeout_s=settings.latency_ready_timeout_s,
            log_dir=log_dir,
            gpu_count=gpus,
            registry=log_dir / "running",
        ) as handle:
            yield handle
    else:
        # transformers serve rejects unknown request fields (422), so ignore_eos is never sent to it.
        command = transformers_command(directory, port=port, settings=settings)
        with launch(
            command,
            port=port,
            model=str(directory),
            backend="transformers",
            accepts_ignore_eos=False,
            ready_timeout_s=settings.latency_ready_timeout_s,
            log_dir=log_dir,
            env={"HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"), **cpu_server_threads()},
            gpu_count=0,
            registry=log_dir / "running",
        ) as handle:
            yield handle


def cpu_server_threads() -> dict[str, str]:
    """Leave one core to the load generator: a CPU server using every core makes its own client late, and
    OpenMP's spinning threads then turn contention into seconds per token. An explicit OMP_NUM_THREADS wins."""
    if "OMP_NUM_THREADS" in os.environ:
        return {}
    threads = max(1, (os.cpu_count() or 2) - 1)
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def simulator_command(
    port: int, *, ttft_ms: Sequence[float], itl_ms: Sequence[float], seed: int = 0, extra: Sequence[str] = ()
) -> list[str]:
    """The command line of the reference simulator (``evals.latency.simulator``) for tests and benches."""
    return [*_delay_server_command("evals.latency.simulator", port, ttft_ms, itl_ms, seed), *extra]


def reference_command(port: int, *, ttft_ms: Sequence[float], itl_ms: Sequence[float], seed: int = 0) -> list[str]:
    """The command line of the lean reference server (``evals.latency.reference``) for truth tests and benches."""
    return _delay_server_command("evals.latency.reference", port, ttft_ms, itl_ms, seed)


def _delay_server_command(
    module: str, port: int, ttft_ms: Sequence[float], itl_ms: Sequence[float], seed: int
) -> list[str]:
    # The flags of evals.latency.reference.delay_server_parser, which both servers parse.
    return [
        sys.executable,
        "-m",
        module,
        "--port",
        str(port),
        "--ttft-ms",
        ",".join(map(str, ttft_ms)),
        "--itl-ms",
        ",".join(map(str, itl_ms)),
        "--seed",
        str(seed),
    ]
