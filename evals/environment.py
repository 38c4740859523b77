"""What produced a number: the runs table's ``hardware`` (GPU via nvidia-smi, CPU model) and ``versions`` structs."""

from __future__ import annotations

import logging
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from evals.schemas import VERSION_FIELDS

log = logging.getLogger(__name__)

# Keys of the runs table's ``versions`` struct whose distribution is not named like the key.
_DISTRIBUTIONS = {"checkpoint_evals": "checkpoint-evals"}


def cpu_model() -> str:
    """The CPU model name, e.g. 'AMD EPYC 7B13 (2 cores)'."""
    import os

    name = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    name = name or platform.processor() or platform.machine() or "unknown"
    return f"{name} ({os.cpu_count() or 0} cores)"


def parse_nvidia_smi(output: str) -> dict[str, Any]:
    """GPU name/count/driver from ``nvidia-smi --query-gpu=name,driver_version --format=csv,noheader``."""
    rows = [[part.strip() for part in line.split(",")] for line in output.splitlines() if line.strip()]
    if not rows:
        return {"gpu_name": None, "gpu_count": 0, "gpu_driver": None}
    names = sorted({row[0] for row in rows})
    return {
        "gpu_name": " + ".join(names),
        "gpu_count": len(rows),
        "gpu_driver": rows[0][1] if len(rows[0]) > 1 else None,
    }


def detect_gpus() -> dict[str, Any]:
    """GPUs visible through ``nvidia-smi``; zero GPUs when it is absent or fails."""
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return {"gpu_name": None, "gpu_count": 0, "gpu_driver": None}
    try:
        output = subprocess.run(
            [binary, "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("nvidia-smi failed, recording no GPU: %s", exc)
        return {"gpu_name": None, "gpu_count": 0, "gpu_driver": None}
    return parse_nvidia_smi(output)


def detect_hardware() -> dict[str, Any]:
    """The runs table's ``hardware`` struct for this machine: gpu_name, gpu_count, gpu_driver, cpu."""
    return {**detect_gpus(), "cpu": cpu_model()}


def package_versions() -> dict[str, str | None]:
    """The runs table's ``versions`` struct, read from installed metadata (imports nothing heavy)."""
    versions: dict[str, str | None] = {"python": sys.version.split()[0]}
    for key in VERSION_FIELDS:
        if key == "python":
            continue
        try:
            versions[key] = metadata.version(_DISTRIBUTIONS.get(key, key))
        except metadata.PackageNotFoundError:
            versions[key] = None
    return versions
