"""The backing services of the production topology, started on 127.0.0.1 without Docker.

``docker-compose.yml`` runs PostgreSQL, Redis and MinIO in containers. Here the machine's
PostgreSQL serves two fresh databases (Airflow's metadata and Celery results, and MLflow's
tracking and registry), a ``redis-server`` of the machine's Redis installation runs on a
free port as the Celery broker (its own process, so a test may restart it), and moto's
S3 server stands in for MinIO as the S3-compatible endpoint. moto accepts any credentials:
what this topology proves about S3 is the protocol, the buckets and the endpoint
configuration, not S3's authentication.

:func:`topology_env` returns the environment of every retrainflow process — the same
variable names ``docker-compose.yml`` sets (``tests/test_compose.py`` holds the two lists
against each other).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.airflow.live import free_port

#: Buckets of the topology, as compose's ``minio-init`` creates them.
BUCKETS = ("mlflow-artifacts", "lake", "retrainflow-artifacts")


def _wait_port(port: int, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


def ensure_postgres() -> None:
    """Start the machine's PostgreSQL cluster if it is installed and not running."""
    if subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1"], check=False).returncode == 0:
        return
    version = sorted(os.listdir("/etc/postgresql"))[0]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=False
    )
    for _ in range(60):
        if subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1"], check=False).returncode == 0:
            return
        time.sleep(0.5)
    raise RuntimeError("PostgreSQL on 127.0.0.1:5432 did not start")


def pg_url(database: str, driver: str = "postgresql+psycopg2") -> str:
    return f"{driver}://postgres@127.0.0.1:5432/{database}"


def drop_database(name: str, *, create: bool = False) -> None:
    """Drop database ``name`` (closing its connections); create it again if ``create``."""
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
            if create:
                cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()


@dataclass
class Services:
    """The running backing services and how to reach them."""

    workdir: Path
    redis_port: int = field(default_factory=free_port)
    s3_port: int = field(default_factory=free_port)
    airflow_db: str = f"rf_topology_airflow_{os.getpid()}"
    mlflow_db: str = f"rf_topology_mlflow_{os.getpid()}"
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def broker_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def start(self) -> Services:
        ensure_postgres()
        for db in (self.airflow_db, self.mlflow_db):
            drop_database(db, create=True)
        self.start_redis()
        log = open(self.workdir / "moto.log", "ab")  # noqa: SIM115 — lives as long as the server
        self.procs["s3"] = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.s3_port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait_port(self.s3_port, "moto's S3 server")
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            aws_access_key_id="topology",
            aws_secret_access_key="topology-secret",
            region_name="us-east-1",
        )
        for bucket in BUCKETS:
            s3.create_bucket(Bucket=bucket)
        return self

    def start_redis(self) -> None:
        redis = shutil.which("redis-server") or "/usr/bin/redis-server"
        log = open(self.workdir / "redis.log", "ab")  # noqa: SIM115
        self.procs["redis"] = subprocess.Popen(
            [
                redis,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.redis_port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait_port(self.redis_port, "redis-server")

    def stop_redis(self) -> None:
        proc = self.procs.pop("redis", None)
        if proc is not None:
            proc.kill()
            proc.wait(timeout=10)

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()
        for db in (self.airflow_db, self.mlflow_db):
            try:
                drop_database(db)
            except Exception:  # noqa: BLE001, S110 — best effort at teardown
                pass


def topology_env(services: Services, *, home: Path, config_dir: Path) -> dict[str, str]:
    """The environment of every process of the topology (compose's variables, on one host)."""
    return {
        "RETRAINFLOW_HOME": str(home),
        "RETRAINFLOW_CONFIG_DIR": str(config_dir),
        # Airflow: PostgreSQL metadata, Celery on Redis with results in PostgreSQL
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": pg_url(services.airflow_db),
        "AIRFLOW__CELERY__BROKER_URL": services.broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + pg_url(services.airflow_db, "postgresql"),
        # one worker per queue list: default tasks, and two for fits (a killed one has a peer)
        "RETRAINFLOW_CELERY_WORKERS": "default;training;training",
        # a worker that dies is noticed within 30 s (Airflow's default: 5 min)
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
        # MLflow server on PostgreSQL, artifacts on S3 (proxied by the server)
        "MLFLOW_BACKEND_STORE_URI": pg_url(services.mlflow_db),
        "MLFLOW_ARTIFACTS_DESTINATION": "s3://mlflow-artifacts",
        # S3: stage artifacts, the check ledger and the lake
        "AWS_ENDPOINT_URL": services.s3_endpoint,
        "AWS_ACCESS_KEY_ID": "topology",
        "AWS_SECRET_ACCESS_KEY": "topology-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "RETRAINFLOW_ARTIFACT_ROOT": "s3://retrainflow-artifacts/artifacts",
        "RETRAINFLOW_LAKE_URI": "s3://lake/",
    }
