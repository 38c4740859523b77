"""Model servers that never outlive their evaluation: a parent-death signal, and a sweep of leftovers by registry.

A task timeout, an OOM kill or a lost worker SIGKILLs the evaluating process; its ``vllm serve`` or
``transformers serve`` child (in a session of its own, so that it can be stopped as a group) would be re-parented
to init and keep the GPU's memory, and the next checkpoint's server could not start. Two guards:

- the child asks the kernel (``prctl(PR_SET_PDEATHSIG)``, Linux) for SIGTERM when its parent dies;
- every started server is registered (pid, process group, owner and their start times) in a folder of the worker;
  before a new server starts, entries whose owner is gone are swept: a server still running is stopped, group
  and all. That catches what the signal cannot (workers forked by the server, a non-Linux kernel, a server that
  ignored SIGTERM).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child receive SIGTERM when this process dies (None where unsupported)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def arm() -> None:
        # Runs in the child between fork and exec: async-signal-safe calls only.
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return arm


def process_start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), which tells a live process from a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its closing parenthesis.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


def _alive(pid: int, start_time: int | None) -> bool:
    if start_time is None:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return process_start_time(pid) == start_time


def register(registry: Path, pid: int, command: Sequence[str]) -> Path:
    """Record a started server (it leads its own process group) as owned by this process."""
    registry.mkdir(parents=True, exist_ok=True)
    entry = {
        "pid": pid,
        "pid_start": process_start_time(pid),
        "owner_pid": os.getpid(),
        "owner_start": process_start_time(os.getpid()),
        "command": list(command),
        "registered_at": time.time(),
    }
    path = registry / f"{pid}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entry))
    tmp.replace(path)
    return path


def unregister(registry: Path, pid: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        (registry / f"{pid}.json").unlink()


def sweep_leftovers(registry: Path, *, grace_s: float = 20.0) -> list[int]:
    """Stop every registered server whose owner is gone; returns the pids that were still running."""
    if not registry.is_dir():
        return []
    stopped: list[int] = []
    for path in sorted(registry.glob("*.json")):
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
            continue
        if _alive(int(entry["owner_pid"]), entry.get("owner_start")):
            continue  # a live evaluation's own server (e.g. another GPU's task on this worker)
        pid = int(entry["pid"])
        if _alive(pid, entry.get("pid_start")):
            log.warning(
                "stopping a model server left by a killed evaluation (pid %d, owner %d gone): %s",
                pid,
                entry["owner_pid"],
                " ".join(entry.get("command", []))[:300],
            )
            _stop_group(pid, grace_s=grace_s)
            stopped.append(pid)
        path.unlink(missing_ok=True)
    return stopped


def _stop_group(pid: int, *, grace_s: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
