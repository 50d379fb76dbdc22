"""Start-up checks of the production topology's services, and its configuration by environment.

A wrong database URL, an unreachable broker or S3 endpoint, a missing bucket: each is a
clear error naming the variable to fix, within a bounded time, before any process starts —
never a component that hangs or a task stuck in ``queued``. Against real servers: the
machine's PostgreSQL, moto's S3 server, and closed ports.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrainflow.airflow import preflight, stack
from retrainflow.exceptions import StackError
from tests.airflow.live import free_port
from tests.data.test_sources import aws_env, postgres_available, s3_endpoint  # noqa: F401

pytestmark = pytest.mark.timeout(120)

#: Every check must give up well within this (each service gets preflight.TIMEOUT).
BOUND = preflight.TIMEOUT * 3


def _raises(fn, *args) -> str:
    t0 = time.monotonic()
    with pytest.raises(StackError) as err:
        fn(*args)
    assert time.monotonic() - t0 < BOUND
    return str(err.value)


def test_an_unreachable_database_is_named_without_its_password() -> None:
    url = f"postgresql+psycopg2://airflow:s3cret-pw@127.0.0.1:{free_port()}/airflow"
    msg = _raises(preflight.check_database, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", url)
    assert msg.startswith("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=")
    assert "airflow:***@127.0.0.1" in msg and "s3cret-pw" not in msg
    assert "cannot connect" in msg


def test_a_missing_database_is_named(postgres_available: None) -> None:  # noqa: F811
    url = "postgresql+psycopg2://postgres@127.0.0.1:5432/rf_no_such_database"
    msg = _raises(preflight.check_database, "MLFLOW_BACKEND_STORE_URI", url)
    assert "MLFLOW_BACKEND_STORE_URI=" in msg and "rf_no_such_database" in msg


def test_a_reachable_database_and_sqlite_pass(postgres_available: None) -> None:  # noqa: F811
    preflight.check_database("X", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
    preflight.check_database("X", "db+postgresql://postgres@127.0.0.1:5432/test")
    preflight.check_database("X", "sqlite:////nonexistent/dir/airflow.db")  # the stack makes it


def test_an_unreachable_or_missing_broker_is_named() -> None:
    msg = _raises(preflight.check_broker, f"redis://:pw@127.0.0.1:{free_port()}/0")
    assert msg.startswith("AIRFLOW__CELERY__BROKER_URL=redis://:***@127.0.0.1")
    assert "does not answer" in msg and ":pw@" not in msg
    assert "is not set" in _raises(preflight.check_broker, "")


def test_buckets_missing_or_endpoint_unreachable(
    s3_endpoint: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    boto3.client("s3").create_bucket(Bucket="preflight-ok")
    preflight.check_bucket("RETRAINFLOW_LAKE_URI", "s3://preflight-ok/lake")
    msg = _raises(preflight.check_bucket, "RETRAINFLOW_ARTIFACT_ROOT", "s3://no-such-bucket/a")
    assert msg.startswith("RETRAINFLOW_ARTIFACT_ROOT=s3://no-such-bucket/a:")
    assert "'no-such-bucket' does not exist" in msg
    closed = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", closed)
    msg = _raises(preflight.check_bucket, "MLFLOW_ARTIFACTS_DESTINATION", "s3://mlflow-artifacts")
    assert "cannot reach S3 endpoint" in msg and closed in msg and "AWS_ENDPOINT_URL" in msg


@pytest.fixture
def topology_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("RETRAINFLOW_HOME", str(tmp_path))
    for key in ("AIRFLOW__CORE__EXECUTOR", "RETRAINFLOW_CELERY_WORKERS"):
        monkeypatch.delenv(key, raising=False)
    yield tmp_path


def test_the_executor_database_and_workers_come_from_the_environment(
    topology_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = stack.StackConfig(api_port=1, mlflow_port=2)
    assert local.executor == "LocalExecutor" and local.workers() == {}
    assert not any(c.startswith("worker-") for c in local.components())

    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql://pg/airflow")
    one = stack.StackConfig(api_port=1, mlflow_port=2)
    assert one.sql_alchemy_conn == "postgresql://pg/airflow"
    assert one.workers() == {"worker-1": "default,training"}
    assert one.components()[-1] == "worker-1"

    monkeypatch.setenv("RETRAINFLOW_CELERY_WORKERS", "default; training ;training")
    three = stack.StackConfig(api_port=1, mlflow_port=2)
    assert three.workers() == {
        "worker-1": "default",
        "worker-2": "training",
        "worker-3": "training",
    }
    cmd = stack._command(three, "worker-2")
    assert cmd[cmd.index("--queues") + 1] == "training"
    assert cmd[cmd.index("--celery-hostname") + 1] == "worker-2@%h"
    # workers stop right after the scheduler, before the API server they report to
    order = stack._stop_order(three)
    assert order[:4] == ("scheduler", "worker-1", "worker-2", "worker-3")

    monkeypatch.setenv("RETRAINFLOW_CELERY_WORKERS", "default training")
    with pytest.raises(StackError, match="RETRAINFLOW_CELERY_WORKERS"):
        stack.StackConfig(api_port=1, mlflow_port=2)


def test_the_mlflow_server_follows_its_database_and_artifact_variables(
    topology_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retrainflow import settings

    cfg = stack.StackConfig(api_port=1, mlflow_port=2)
    cmd = stack._command(cfg, "mlflow")
    assert cmd[cmd.index("--default-artifact-root") + 1].startswith("file://")
    monkeypatch.setenv("MLFLOW_BACKEND_STORE_URI", "postgresql://pg/mlflow")
    monkeypatch.setenv("MLFLOW_ARTIFACTS_DESTINATION", "s3://mlflow-artifacts")
    cmd = stack._command(stack.StackConfig(api_port=1, mlflow_port=2), "mlflow")
    assert cmd[cmd.index("--backend-store-uri") + 1] == "postgresql://pg/mlflow"
    assert cmd[cmd.index("--artifacts-destination") + 1] == "s3://mlflow-artifacts"
    assert "--default-artifact-root" not in cmd  # clients go through the server's proxy
    # tasks tracking through a server leave new experiments' artifacts to it
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    monkeypatch.delenv("RETRAINFLOW_MLFLOW_ARTIFACTS", raising=False)
    assert settings.mlflow_artifact_location() is None


def test_start_refuses_an_unreachable_broker_before_starting_anything(
    topology_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    monkeypatch.setenv("AIRFLOW__CELERY__BROKER_URL", f"redis://127.0.0.1:{free_port()}/0")
    cfg = stack.StackConfig(api_port=free_port(), mlflow_port=free_port(), supervise=False)
    t0 = time.monotonic()
    with pytest.raises(StackError, match="AIRFLOW__CELERY__BROKER_URL"):
        stack.start(cfg, timeout=60)
    assert time.monotonic() - t0 < BOUND
    assert not list(cfg.run_dir.glob("*.pid")) if cfg.run_dir.exists() else True


def test_a_worker_records_its_own_name_as_the_task_hostname(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    from retrainflow.airflow.hostname import hostname

    monkeypatch.delenv("RETRAINFLOW_WORKER_NAME", raising=False)
    assert hostname() == socket.getfqdn()
    monkeypatch.setenv("RETRAINFLOW_WORKER_NAME", "worker-2")
    assert hostname() == f"worker-2@{socket.getfqdn()}"


def test_a_broker_refusing_the_credentials_is_named(tmp_path: Path) -> None:
    """A real redis-server that requires a password, asked without one and with a wrong one."""
    import shutil
    import subprocess

    from tests.topology.services import _wait_port

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
            "--requirepass",
            "right-password",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(port, "redis-server")
        for url in (f"redis://127.0.0.1:{port}/0", f"redis://:wrong-password@127.0.0.1:{port}/0"):
            msg = _raises(preflight.check_broker, url)
            assert "AIRFLOW__CELERY__BROKER_URL" in msg and "wrong-password" not in msg
            assert "auth" in msg.lower() or "password" in msg.lower(), msg
        preflight.check_broker(f"redis://:right-password@127.0.0.1:{port}/0")
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_missing_s3_credentials_are_named_as_such(
    s3_endpoint: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key, raising=False)
    msg = _raises(preflight.check_bucket, "RETRAINFLOW_LAKE_URI", "s3://lake/")
    assert "no S3 credentials found" in msg and "AWS_ACCESS_KEY_ID" in msg


def test_an_in_process_runs_sqlite_settings_do_not_follow_a_server_database(
    topology_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`local_run` exports its own home's SQLite URL and connect arguments into os.environ
    (Airflow reads its configuration at import). A stack started later in that process
    must neither take that SQLite file nor pass SQLite's arguments to PostgreSQL (seen in
    CI: `airflow db migrate` failed on PostgreSQL after an in-process run)."""
    other = stack.StackConfig(home=topology_env / "other", api_port=1, mlflow_port=2)
    for key, value in stack._sqlite_settings(other).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", str(other.sql_alchemy_conn))
    own = stack.StackConfig(api_port=1, mlflow_port=2)
    assert own.sql_alchemy_conn == f"sqlite:///{own.airflow_home / 'airflow.db'}"
    assert own.sql_alchemy_conn != other.sql_alchemy_conn
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql://pg:5432/airflow")
    server = stack.StackConfig(api_port=1, mlflow_port=2)
    env = stack._process_env(server)
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "postgresql://pg:5432/airflow"
    assert not set(stack._SQLITE_ONLY) & set(env)
