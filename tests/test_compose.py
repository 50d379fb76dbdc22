"""docker-compose.yml and the Dockerfile stay consistent (no Docker engine here to run them).

The same topology runs without Docker in the live tests (`retrainflow.airflow.stack`).
"""

from __future__ import annotations

import configparser
import fnmatch
import json
import os
import re
import shlex
import stat
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from retrainflow.airflow.rest import CONNECTION_ENV_VAR, AirflowClient

ROOT = Path(__file__).resolve().parents[1]
TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(TEXT)
SERVICES = COMPOSE["services"]
AIRFLOW = {name: svc for name, svc in SERVICES.items() if name.startswith("airflow-")}

#: Services that run Airflow tasks (CeleryExecutor: the worker; the scheduler as in the brief).
TASK_SERVICES = ("airflow-scheduler", "airflow-worker")
#: Only the two UIs are published.
UI_SERVICES = {"airflow-apiserver", "mlflow", "flower"}
#: A variable or environment key holding one of these words is a secret.
SECRET_WORDS = ("PASSWORD", "SECRET", "KEY", "TOKEN")

# A compose reference ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?err}, ${NAME?err};
# "$$" is a literal "$" (a shell variable of the container), not a reference.
_TOKEN = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
_REQUIRED = re.compile(r"^\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*):\?[^}]+\}$")


def _refs(text: str) -> Iterator[re.Match[str]]:
    """Every compose variable reference in ``text`` (not the ``$$`` escapes)."""
    return (m for m in _TOKEN.finditer(text) if m["name"])


def _is_secret(name: str) -> bool:
    return any(word in name.upper() for word in SECRET_WORDS)


def _interpolate(value: str, env: Mapping[str, str]) -> str:
    """``value`` as compose sees it with variables ``env`` (KeyError for a missing required one)."""

    def sub(m: re.Match[str]) -> str:
        if not m["name"]:
            return "$"
        name, op, arg = m["name"], m["op"] or "", m["arg"] or ""
        val = env.get(name)
        unset = (not val) if op.startswith(":") else val is None
        if op.endswith("-") and unset:
            return arg
        if op.endswith("?") and unset:
            raise KeyError(f"{name}: {arg}")
        return val or ""

    return _TOKEN.sub(sub, value)


def _strings(obj: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """Every string leaf of a loaded YAML tree, with its path."""
    if isinstance(obj, str):
        yield where, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from _strings(value, f"{where}.{key}")
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from _strings(value, f"{where}[{i}]")


def _command(svc: Mapping[str, Any], key: str = "command") -> list[str]:
    cmd = svc[key]
    return list(cmd) if isinstance(cmd, list) else shlex.split(cmd)


def _env_example() -> dict[str, tuple[str, str]]:
    """``.env.example`` as name -> (value, the comment line just above it)."""
    out: dict[str, tuple[str, str]] = {}
    comment = ""
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.startswith("#"):
            comment = line
        elif "=" in line:
            name, value = line.split("=", 1)
            out[name.strip()] = (value, comment)
            comment = ""
    return out


def _sample_env() -> dict[str, str]:
    """A filled-in .env: each secret a URL-safe sample, each optional value as documented."""
    return {
        name: value or f"{name.lower().replace('_', '-')}-sample-0123456789"
        for name, (value, _) in _env_example().items()
    }


def _service_env(name: str, env: Mapping[str, str]) -> dict[str, str]:
    return {k: _interpolate(str(v), env) for k, v in SERVICES[name]["environment"].items()}


def _api_server() -> tuple[str, int]:
    """The API server's service name and the port its command listens on."""
    (name,) = [n for n, s in AIRFLOW.items() if "airflow api-server" in " ".join(_command(s))]
    port = re.search(r"api-server --port (\d+)", " ".join(_command(SERVICES[name])))
    assert port, "the api-server command names its --port"
    return name, int(port[1])


def _one_shots() -> set[str]:
    """Services others wait for to *complete*: they run once and exit."""
    return {
        dep
        for svc in SERVICES.values()
        for dep, cond in (svc.get("depends_on") or {}).items()
        if cond["condition"] == "service_completed_successfully"
    }


def _run_with_stubs(
    cmd: list[str], env: Mapping[str, str], stubs: tuple[str, ...], tmp: Path
) -> dict[str, list[str]]:
    """Run a container command here, with ``stubs`` (e.g. ``mlflow``) recording their arguments."""
    bin_dir = tmp / "stub-bin"
    bin_dir.mkdir()
    for stub in stubs:
        path = bin_dir / stub
        path.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{tmp}/{stub}.args"\n')
        path.chmod(0o755)
    path_var = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), "/usr/bin", "/bin"])
    subprocess.run(cmd, env={**env, "PATH": path_var}, check=True, timeout=60, cwd=tmp)
    return {s: (tmp / f"{s}.args").read_text().splitlines() for s in stubs}


def test_every_component_of_the_topology_is_there() -> None:
    commands = {
        name: " ".join(svc["command"]) if isinstance(svc["command"], list) else svc["command"]
        for name, svc in AIRFLOW.items()
    }
    for needed in (
        "db migrate",
        "api-server",
        "scheduler",
        "dag-processor",
        "triggerer",
        "celery worker",
    ):
        assert any(needed in c for c in commands.values()), needed
    assert {"postgres", "redis", "minio", "mlflow"} <= set(SERVICES)


def test_dependencies_point_at_services_with_matching_conditions() -> None:
    for name, svc in SERVICES.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in SERVICES, f"{name} depends on unknown service {dep}"
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dep], (
                    f"{name} waits for {dep}'s health, which has no check"
                )


@pytest.mark.parametrize("name", sorted(AIRFLOW))
def test_airflow_components_share_executor_database_and_secrets(name: str) -> None:
    env = AIRFLOW[name]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:")
    assert "@postgres:5432/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    # Components on several machines need the same JWT secret (stack notes).
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"].startswith("${AIRFLOW_JWT_SECRET")
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert AIRFLOW[name]["image"] == SERVICES["mlflow"]["image"]


def test_no_secret_is_hard_coded() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for key in (
        "JWT_SECRET",
        "SECRET_KEY",
        "FERNET_KEY",
        "AWS_SECRET_ACCESS_KEY",
        "MINIO_ROOT_PASSWORD",
    ):
        for value in re.findall(rf"^\s*[A-Z_]*{key}:\s*(\S+)", text, flags=re.MULTILINE):
            assert value.startswith("${"), f"{key} is hard-coded: {value}"


def test_mounted_host_paths_exist() -> None:
    for svc in SERVICES.values():
        for vol in svc.get("volumes", []):
            host = vol.split(":")[0]
            if host.startswith("."):
                assert (ROOT / host).exists(), host


def test_dockerfile_installs_from_the_lock_and_copies_existing_paths() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "-r requirements.lock" in text
    for src in re.findall(r"^COPY (\S+(?: \S+)*) \S+$", text, flags=re.MULTILINE):
        for part in src.split():
            assert (ROOT / part).exists(), f"Dockerfile copies missing {part}"
    assert re.search(r"^FROM python:3\.11", text, flags=re.MULTILINE)


# Hardening (issue 9): no default secrets, UIs on localhost only, pinned images, the
# retrainflow_api connection and MLflow's basic auth in the compose topology.


def test_no_secret_has_a_default_or_a_literal_value() -> None:
    """Every environment value whose key names a secret is exactly a required ``${VAR:?...}``."""
    for name, svc in SERVICES.items():
        for key, value in (svc.get("environment") or {}).items():
            if not _is_secret(key) or key.endswith(("_FILE", "_PATH")):  # a path, not a secret
                continue
            m = _REQUIRED.match(str(value))
            assert m, f"{name}: {key}={value!r} must be ${{VAR:?set VAR in .env}}"


def test_secret_variables_are_required_everywhere_without_fallback() -> None:
    """No ``${..PASSWORD..:-x}`` anywhere in the file; a variable required once is required always."""
    assert not re.search(r"(?<!\$)\$[A-Za-z_]", TEXT), (
        "unbraced $VAR: compose interpolates it at `up`; write $$VAR for the container's shell"
    )
    required = {m["name"] for m in _refs(TEXT) if m["op"] == ":?"}
    for m in _refs(TEXT):
        if _is_secret(m["name"]) or m["name"] in required:
            assert m["op"] == ":?", f"{m[0]}: a secret is required (:?), with no fallback"


def test_credentials_in_urls_are_required_variables() -> None:
    """user:password@ in any URI of the file (env, commands) is a required variable, never a literal."""
    url = re.compile(r"[a-z][a-z0-9+.-]*://(?P<userinfo>[^/@\s\"']+)@")
    for where, raw in _strings(COMPOSE):
        marked = _TOKEN.sub(lambda m: f"<{m['name']}{m['op'] or ''}>" if m["name"] else "$", raw)
        for m in url.finditer(marked):
            _user, _, password = m["userinfo"].partition(":")
            assert re.fullmatch(r"<\w+:\?>", password), f"{where}: literal or optional password"


def test_only_the_uis_are_published_on_localhost_by_default() -> None:
    published = {name for name, svc in SERVICES.items() if svc.get("ports")}
    assert published == UI_SERVICES, f"only {sorted(UI_SERVICES)} may publish ports"
    for name, svc in SERVICES.items():
        assert svc.get("network_mode") in (None, "none"), f"{name}: network_mode bypasses it"
        for port in svc.get("ports", []):
            if isinstance(port, dict):
                assert port.get("host_ip") in ("127.0.0.1", "${RETRAINFLOW_BIND:-127.0.0.1}")
                continue
            default = _interpolate(str(port), {}).split(":")
            assert len(default) == 3 and default[0] == "127.0.0.1", (
                f"{name}: {port} not on localhost"
            )
            # One knob moves every UI (e.g. behind a reverse proxy on the host).
            moved = _interpolate(str(port), {"RETRAINFLOW_BIND": "10.1.2.3"}).split(":")
            assert moved[0] == "10.1.2.3", f"{name}: {port} ignores RETRAINFLOW_BIND"
            # The published port is the one the server listens on.
            assert f"--port {default[2]}" in " ".join(_command(svc)), f"{name}: {port}"


def test_every_image_is_pinned() -> None:
    for name, svc in SERVICES.items():
        image = svc.get("image")
        assert image, f"{name} has no image"
        repo, sep, tag = image.rpartition(":")
        assert sep and "/" not in tag and "$" not in image, f"{name}: {image} has no fixed tag"
        assert tag != "latest" and re.search(r"\d+[.-]\d+", tag), f"{name}: {image} not pinned"


def test_the_projects_image_is_built_from_the_dockerfile() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    ours = {name for name, svc in SERVICES.items() if svc["image"].startswith("retrainflow:")}
    assert {"mlflow", *AIRFLOW} <= ours
    for name in ours:
        svc = SERVICES[name]
        assert svc["image"] == f"retrainflow:{version}", f"{name}: tag the image with the version"
        context = svc.get("build")
        context = context.get("context") if isinstance(context, dict) else context
        assert context == ".", f"{name} must build the image from the Dockerfile"
    assert all("build" not in svc for name, svc in SERVICES.items() if name not in ours)
    assert (ROOT / "Dockerfile").exists()


@pytest.mark.parametrize("name", TASK_SERVICES)
def test_task_services_reach_the_api_server_with_the_retrainflow_api_connection(
    name: str,
) -> None:
    env = _sample_env()
    api, port = _api_server()
    raw = SERVICES[name]["environment"].get(CONNECTION_ENV_VAR)
    assert raw, f"{name} runs tasks but has no {CONNECTION_ENV_VAR}"
    client = AirflowClient.from_connection_uri(_interpolate(raw, env))
    assert client.base_url == f"http://{api}:{port}"
    users = SERVICES[api]["environment"]["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"]
    assert client.username in [u.split(":")[0] for u in users.split(",")]
    # The same variable is the password the API server writes into its password file.
    assert client._password == env["AIRFLOW_ADMIN_PASSWORD"]
    api_env = _service_env(api, env)
    assert api_env["AIRFLOW_ADMIN_PASSWORD"] == env["AIRFLOW_ADMIN_PASSWORD"]
    task_env = _service_env(name, env)
    assert urlsplit(task_env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]).netloc == f"{api}:{port}"


def test_the_api_server_writes_the_admin_password_from_env(tmp_path: Path) -> None:
    """Its command, run here with a stub ``airflow``: the password file holds .env's password."""
    env = _sample_env()
    api, port = _api_server()
    svc_env = _service_env(api, env)
    pw_file = tmp_path / "passwords.json"
    svc_env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] = str(pw_file)
    cmd = [_interpolate(part, env) for part in _command(SERVICES[api])]
    args = _run_with_stubs(cmd, svc_env, ("airflow",), tmp_path)
    assert pw_file.exists(), "the api-server command does not write the password file"
    assert json.loads(pw_file.read_text()) == {"admin": env["AIRFLOW_ADMIN_PASSWORD"]}
    assert stat.S_IMODE(pw_file.stat().st_mode) == 0o600
    assert args["airflow"] == ["api-server", "--port", str(port)]


def test_mlflow_runs_the_basic_auth_app_with_required_credentials(tmp_path: Path) -> None:
    """Its command, run here with a stub ``mlflow``: the ini MLflow reads, and the server flags."""
    svc = SERVICES["mlflow"]
    assert "--app-name basic-auth" in " ".join(_command(svc))
    for key in ("MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"):
        assert _REQUIRED.match(svc["environment"][key]), key
    env = _sample_env()
    svc_env = _service_env("mlflow", env)
    ini = tmp_path / "basic_auth.ini"
    svc_env["MLFLOW_AUTH_CONFIG_PATH"] = str(ini)
    cmd = [_interpolate(part, env) for part in _command(svc)]
    args = _run_with_stubs(cmd, svc_env, ("mlflow",), tmp_path)["mlflow"]
    assert args[:3] == ["server", "--app-name", "basic-auth"]
    assert stat.S_IMODE(ini.stat().st_mode) == 0o600  # it holds the database password
    # The keys mlflow.server.auth.config.read_auth_config reads.
    auth = configparser.ConfigParser()
    auth.read(ini)
    section = auth["mlflow"]
    assert section["default_permission"] == "READ"
    assert section["database_uri"] == svc_env["MLFLOW_BACKEND_STORE_URI"]
    assert env["POSTGRES_PASSWORD"] in section["database_uri"]
    assert section["admin_username"] == env["MLFLOW_ADMIN_USERNAME"]
    assert section["authorization_function"] == (
        "mlflow.server.auth:authenticate_request_basic_auth"
    )
    # MLflow answers only the Host headers it allows: the tasks' tracking host among them.
    allowed = svc_env["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    tracking = urlsplit(SERVICES["airflow-worker"]["environment"]["MLFLOW_TRACKING_URI"]).netloc
    assert any(fnmatch.fnmatch(tracking, pattern) for pattern in allowed), tracking
    assert any(fnmatch.fnmatch("localhost:5000", pattern) for pattern in allowed)


@pytest.mark.parametrize("name", TASK_SERVICES)
def test_task_services_have_the_mlflow_credentials(name: str) -> None:
    env = _sample_env()
    task_env = _service_env(name, env)
    mlflow_env = _service_env("mlflow", env)
    assert task_env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert task_env["MLFLOW_TRACKING_USERNAME"] == mlflow_env["MLFLOW_AUTH_ADMIN_USERNAME"]
    assert task_env["MLFLOW_TRACKING_PASSWORD"] == mlflow_env["MLFLOW_AUTH_ADMIN_PASSWORD"]
    assert _REQUIRED.match(SERVICES[name]["environment"]["MLFLOW_TRACKING_PASSWORD"])


def test_every_variable_is_documented_in_env_example() -> None:
    example = _env_example()
    used = {m["name"] for m in _refs(TEXT)}
    assert used - set(example) == set(), "undocumented in .env.example"
    assert set(example) - used == set(), "documented in .env.example but unused"
    required = {m["name"] for m in _refs(TEXT) if m["op"] == ":?"}
    for m in _refs(TEXT):
        if m["name"] not in required:  # optional: the example shows the default
            assert example[m["name"]][0] == m["arg"], f"{m['name']}: example != default"
    for name in required:
        value, comment = example[name]
        # Empty on purpose: a copied example does not start with a shared placeholder secret.
        assert value == "", f"{name}: leave the secret empty in .env.example"
        gen = re.search(r"Generate: (python -c .+)$", comment)
        assert gen, f"{name}: the comment above it gives a command that generates it"
        out = subprocess.run(
            [sys.executable, *shlex.split(gen[1])[1:]],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
        # Secrets go into URLs (postgresql://airflow:<password>@...): URL-safe only.
        assert re.fullmatch(r"[A-Za-z0-9_=-]{12,}", out), f"{name}: {out!r}"
        if "FERNET" in name:
            from cryptography.fernet import Fernet

            Fernet(out.encode())
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in ignored or "/.env" in ignored, ".env must be git-ignored"


def test_containers_run_as_a_non_root_user() -> None:
    for name, svc in SERVICES.items():
        user = str(svc.get("user", ""))
        if user.split(":")[0] in ("0", "root"):
            # Only a one-shot chown, without network or any capability but CHOWN.
            assert name in _one_shots() and _command(svc)[0] == "chown", name
            assert svc.get("network_mode") == "none" and svc.get("cap_add") == ["CHOWN"], name
            assert svc.get("cap_drop") == ["ALL"], name
            continue
        assert user, f"{name}: set `user:` (the image's default may be root)"


def test_long_running_services_have_healthchecks() -> None:
    for name, svc in SERVICES.items():
        if name not in _one_shots():
            assert "healthcheck" in svc, f"{name} runs for good but has no healthcheck"


# -- compose and the topology test configure the same thing ------------------------------------

#: Variables of the topology test with no compose counterpart, and why.
_TEST_ONLY = {
    "RETRAINFLOW_CONFIG_DIR": "the Dockerfile's ENV sets it",
    "RETRAINFLOW_CELERY_WORKERS": "compose runs one service per worker, with its --queues",
}


def _topology_env() -> dict[str, str]:
    from tests.topology.services import Services, topology_env

    return topology_env(Services(Path("/nonexistent")), home=Path("/h"), config_dir=Path("/c"))


def test_compose_and_the_topology_test_set_the_same_variables() -> None:
    """Every variable the topology test gives its processes is set for compose's Airflow
    components or its MLflow server, with the same meaning (executor, S3 buckets)."""
    topo = _topology_env()
    dockerfile = (ROOT / "Dockerfile").read_text()
    airflow_env = SERVICES["airflow-scheduler"]["environment"]
    mlflow_env = SERVICES["mlflow"]["environment"]
    for name in topo:
        if name in _TEST_ONLY:
            assert name not in airflow_env and (f"{name}=" in dockerfile or "WORKERS" in name)
            continue
        assert name in airflow_env or name in mlflow_env, f"{name}: not in docker-compose.yml"
    for name in ("AIRFLOW__CORE__EXECUTOR", "RETRAINFLOW_LAKE_URI", "RETRAINFLOW_ARTIFACT_ROOT"):
        assert airflow_env[name] == topo[name], name
    assert mlflow_env["MLFLOW_ARTIFACTS_DESTINATION"] == topo["MLFLOW_ARTIFACTS_DESTINATION"]
    # both point every S3 client at one endpoint through the same variable
    assert "MLFLOW_S3_ENDPOINT_URL" not in TEXT
    assert {"AWS_ENDPOINT_URL"} <= set(airflow_env) & set(mlflow_env)
    # the buckets the topology test creates are the ones compose's minio-init makes
    from tests.topology.services import BUCKETS

    init = " ".join(_command(SERVICES["minio-init"], "entrypoint"))
    assert all(f"local/{bucket}" in init for bucket in BUCKETS)


def test_compose_and_the_topology_test_run_the_same_components_and_queues() -> None:
    from retrainflow.airflow import stack

    topo = _topology_env()
    with pytest.MonkeyPatch.context() as mp:
        for key, value in topo.items():
            mp.setenv(key, value)
        cfg = stack.StackConfig(home=Path("/tmp/unused-home"), api_port=1, mlflow_port=2)
        components = {name: stack._command(cfg, name) for name in cfg.components()}
    # each component of the test has a compose service running the same Airflow command
    compose_commands = [" ".join(_command(svc)) for svc in SERVICES.values() if "command" in svc]
    for name, cmd in components.items():
        words = " ".join(cmd)
        sub = {
            "api-server": "airflow api-server",
            "scheduler": "scheduler",
            "dag-processor": "airflow dag-processor",
            "triggerer": "airflow triggerer",
            "mlflow": "mlflow server",
        }.get(name, "celery worker")
        assert sub in words, (name, words)
        assert any(sub in c for c in compose_commands), f"compose runs no {sub!r}"
    # the same queue split: one worker for `default`, the fits on `training`
    test_queues = {frozenset(q.split(",")) for q in cfg.workers().values()}
    compose_queues = set()
    for svc in SERVICES.values():
        cmd = _command(svc) if "command" in svc else []
        if "worker" in cmd and "--queues" in cmd:
            compose_queues.add(frozenset(cmd[cmd.index("--queues") + 1].split(",")))
    assert test_queues == compose_queues == {frozenset({"default"}), frozenset({"training"})}
    assert SERVICES["airflow-scheduler"]["environment"]["RETRAINFLOW_TRAINING_QUEUE"] == "training"
