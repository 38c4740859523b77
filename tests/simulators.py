"""The reference simulator as a separate process for a test: started on a free port, ready when /health answers."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import httpx

from evals.latency.server import free_port, simulator_command


@contextmanager
def running_simulator(*, ttft_ms: float, itl_ms: Sequence[float], extra: Sequence[str] = ()) -> Iterator[str]:
    """The simulator's base URL while it runs (``extra``: its command-line options, e.g. ``--api-key``).
    /health is open even with a key, so readiness needs none."""
    port = free_port()
    command = simulator_command(port, ttft_ms=[ttft_ms], itl_ms=list(itl_ms), extra=tuple(extra))
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, "simulator not ready"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
