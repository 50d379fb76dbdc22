"""docker-compose.yml and the Dockerfile stay consistent (no Docker engine here to run them).

The same topology runs without Docker in the live tests (`retrainflow.airflow.stack`).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
AIRFLOW = {name: svc for name, svc in SERVICES.items() if name.startswith("airflow-")}


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
