"""The serving launcher: command lines it builds, readiness, process-group shutdown, backend choice, hardware."""

from __future__ import annotations

import os
import stat
import sys
import textwrap
import time
from pathlib import Path

import pytest

from evals import environment as hardware
from evals.errors import ConfigError, ServerNotReady
from evals.latency import server
from evals.latency.server import (
    choose_backend,
    free_port,
    launch,
    serve,
    transformers_command,
    vllm_command,
    wait_ready,
)
from evals.settings import get_settings


def test_vllm_command_carries_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALS_VLLM_DTYPE", "bfloat16")
    monkeypatch.setenv("EVALS_VLLM_MAX_MODEL_LEN", "4096")
    monkeypatch.setenv("EVALS_VLLM_GPU_MEMORY_UTILIZATION", "0.8")
    monkeypatch.setenv("EVALS_VLLM_TENSOR_PARALLEL_SIZE", "2")
    monkeypatch.setenv("EVALS_VLLM_EXTRA_ARGS", '["--enforce-eager"]')
    command = vllm_command(Path("/ckpt"), port=8123, model_name="org/model", settings=get_settings())
    assert command[0].endswith("vllm") and command[1:3] == ["serve", "/ckpt"]
    flags = dict(zip(command[3::2], command[4::2], strict=False))
    assert flags["--host"] == "127.0.0.1" and flags["--port"] == "8123"
    assert flags["--served-model-name"] == "org/model"
    assert flags["--dtype"] == "bfloat16" and flags["--max-model-len"] == "4096"
    assert flags["--gpu-memory-utilization"] == "0.8" and flags["--tensor-parallel-size"] == "2"
    assert flags["--load-format"] == "safetensors"  # never pickle weights
    assert "--trust-remote-code" not in command
    assert command[-1] == "--enforce-eager"


def test_vllm_command_defaults_leave_max_model_len_to_vllm() -> None:
    command = vllm_command(Path("/ckpt"), port=1, model_name="m", settings=get_settings())
    assert "--max-model-len" not in command and "--tensor-parallel-size" in command


def test_transformers_command_runs_on_cpu_without_remote_code() -> None:
    command = transformers_command(Path("/ckpt"), port=9, settings=get_settings())
    assert command[1:3] == ["serve", "/ckpt"]
    assert command[command.index("--device") + 1] == "cpu"
    assert "--no-trust-remote-code" in command and command[command.index("--port") + 1] == "9"


def test_backend_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "detect_gpus", lambda: {"gpu_count": 0})
    assert choose_backend("auto") == "transformers"
    assert choose_backend("vllm") == "vllm"
    with pytest.raises(ConfigError, match="unknown serving backend 'tgi'"):
        choose_backend("tgi")


def test_serve_refuses_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no config\.json"), serve(tmp_path):
        pass
    with pytest.raises(ConfigError, match="needs the model name"), serve(endpoint="http://127.0.0.1:1"):
        pass


def test_wait_ready_reports_an_early_exit_with_the_log(tmp_path: Path) -> None:
    import subprocess

    log_path = tmp_path / "server.log"
    log_path.write_text("CUDA out of memory\n")
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait()
    with pytest.raises(ServerNotReady, match=r"exited with code 3(.|\n)*CUDA out of memory"):
        wait_ready(f"http://127.0.0.1:{free_port()}", timeout_s=30, process=process, log_path=log_path)


def test_wait_ready_times_out() -> None:
    with pytest.raises(ServerNotReady, match=r"not ready after 0\.5s"):
        wait_ready(f"http://127.0.0.1:{free_port()}", timeout_s=0.5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours counts as gone
        with open(f"/proc/{pid}/stat") as stat_file:
            return stat_file.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_launch_serves_then_stops_the_whole_process_group(tmp_path: Path) -> None:
    """A server that forks a worker (like vLLM): both are gone after the context exits, log kept."""
    port = free_port()
    script = tmp_path / "fake_server.py"
    script.write_text(
        textwrap.dedent(f"""
        import http.server, os, subprocess, sys
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        open({str(tmp_path / "child.pid")!r}, "w").write(str(child.pid))
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200); self.end_headers(); self.wfile.write(b"{{}}")
        print("serving", flush=True)
        http.server.HTTPServer(("127.0.0.1", {port}), Handler).serve_forever()
    """)
    )
    with launch(
        [sys.executable, str(script)],
        port=port,
        model="m",
        backend="fake",
        accepts_ignore_eos=False,
        ready_timeout_s=30,
        log_dir=tmp_path / "logs",
    ) as handle:
        assert handle.load_s is not None and handle.load_s > 0
        assert handle.pid is not None and _alive(handle.pid)
        child = int((tmp_path / "child.pid").read_text())
        assert _alive(child)
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(handle.pid) and not _alive(child)
    assert "serving" in handle.log_tail()


def test_parse_nvidia_smi() -> None:
    out = "NVIDIA H100 80GB HBM3, 550.54.15\nNVIDIA H100 80GB HBM3, 550.54.15\n"
    assert hardware.parse_nvidia_smi(out) == {
        "gpu_name": "NVIDIA H100 80GB HBM3",
        "gpu_count": 2,
        "gpu_driver": "550.54.15",
    }
    assert hardware.parse_nvidia_smi("")["gpu_count"] == 0


def test_detect_hardware_uses_nvidia_smi_from_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'NVIDIA L4, 535.1'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    detected = hardware.detect_hardware()
    assert detected["gpu_name"] == "NVIDIA L4" and detected["gpu_count"] == 1 and detected["gpu_driver"] == "535.1"
    assert detected["cpu"] and "cores" in detected["cpu"]


def test_no_gpu_without_nvidia_smi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert hardware.detect_gpus() == {"gpu_name": None, "gpu_count": 0, "gpu_driver": None}


def test_package_versions_fit_the_runs_struct() -> None:
    versions = hardware.package_versions()
    assert versions["python"] == sys.version.split()[0]
    assert versions["transformers"] and versions["torch"]
    from evals.warehouse.record import _complete

    _complete(
        versions, ("checkpoint_evals", "python", "lm_eval", "transformers", "torch", "vllm", "great_expectations")
    )
