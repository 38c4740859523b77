"""Fixtures for latency tests: the reference streaming simulator, started as a real server process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest

from evals.latency.server import ServerHandle, free_port, launch, reference_command, simulator_command

# Non-uniform on purpose: percentiles over a mix are where an off-by-one or a wrong interpolation shows.
TTFT_MS = [20.0, 35.0, 60.0]
ITL_MS = [2.0, 8.0, 25.0]


def start_simulator(
    ttft_ms: list[float] | None = None, itl_ms: list[float] | None = None, extra: tuple[str, ...] = ()
) -> AbstractContextManager[ServerHandle]:
    port = free_port()
    command = simulator_command(port, ttft_ms=ttft_ms or TTFT_MS, itl_ms=itl_ms or ITL_MS, seed=7, extra=extra)
    return launch(
        command, port=port, model="simulator", backend="simulator", accepts_ignore_eos=True, ready_timeout_s=30
    )


def start_reference(ttft_ms: list[float], itl_ms: list[float]) -> AbstractContextManager[ServerHandle]:
    """The lean reference server (``evals.latency.reference``) with these configured delays."""
    port = free_port()
    command = reference_command(port, ttft_ms=ttft_ms, itl_ms=itl_ms, seed=7)
    return launch(
        command, port=port, model="reference", backend="reference", accepts_ignore_eos=True, ready_timeout_s=30
    )


@pytest.fixture(scope="session")
def simulator() -> Iterator[ServerHandle]:
    """The reference simulator with non-uniform TTFT and inter-token delays, shared by the session."""
    with start_simulator() as handle:
        yield handle


@pytest.fixture
def simulator_factory() -> Callable[..., AbstractContextManager[ServerHandle]]:
    """Start a simulator with other settings (no usage, no [DONE], other delays)."""
    return start_simulator
