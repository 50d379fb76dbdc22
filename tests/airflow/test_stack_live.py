"""The embedded stack: configuration (fast) and the real servers (``slow``).

The live test starts api-server, scheduler, dag-processor and MLflow server in a
temporary RETRAINFLOW_HOME on free ports, runs a trivial Task SDK DAG through the
REST API and checks that stopping leaves no process behind (~1.5-2 min on 2 cores).
"""

from __future__ import annotations

import os
import socket
import textwrap
import time
from pathlib import Path

import psutil
import pytest
import requests

from retrainflow.airflow import stack
from retrainflow.airflow.rest import AirflowClient
from retrainflow.exceptions import AirflowApiError

pytestmark = pytest.mark.timeout(420)

DAG_ID = "rf_live_smoke"

DAG_FILE = textwrap.dedent(
    f'''
    """Trivial DAG for the live stack test."""
    import pendulum
    from airflow.sdk import dag, task


    @dag(dag_id="{DAG_ID}", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
         catchup=False, tags=["test"])
    def rf_live_smoke():
        @task
        def produce(dag_run=None):
            return int(dag_run.conf.get("x", 0)) + 1

        @task
        def consume(value):
            assert value == 42, value
            return value

        consume(produce())


    rf_live_smoke()
    '''
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _survivors(pgids: set[int], procs: list[psutil.Process]) -> list[str]:
    """Live processes that are in one of ``pgids`` or were seen in the stack's trees."""
    out = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if _pgid(proc.pid) in pgids:
            out.append(f"{proc.pid} {' '.join(proc.info['cmdline'] or [])[:120]}")
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(f"{proc.pid} {' '.join(proc.cmdline())[:120]}")
        except psutil.Error:
            continue
    return sorted(set(out))


@pytest.fixture
def stack_cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> stack.StackConfig:
    for key in list(os.environ):
        if key.startswith(("AIRFLOW", "MLFLOW_")) or key == "RETRAINFLOW_MLFLOW_ARTIFACTS":
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    monkeypatch.setenv("RETRAINFLOW_HOME", str(home))
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / f"{DAG_ID}.py").write_text(DAG_FILE)
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    return stack.StackConfig(
        home=home,
        dags_folder=dags,
        plugins_folder=plugins,
        api_port=_free_port(),
        mlflow_port=_free_port(),
        with_triggerer=False,
    )


def test_airflow_env_is_complete_and_stable(stack_cfg: stack.StackConfig) -> None:
    import json
    import stat

    cfg = stack_cfg
    env = stack.airflow_env(cfg)
    assert env["AIRFLOW_HOME"] == str(cfg.airflow_home)
    assert env["RETRAINFLOW_HOME"] == str(cfg.home)
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(cfg.dags_folder)
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "4"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{cfg.airflow_home}/airflow.db"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
        f"http://127.0.0.1:{cfg.api_port}/execution/"
    )
    assert env["MLFLOW_TRACKING_URI"] == f"sqlite:///{cfg.home}/mlflow/mlflow.db"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"

    # the password file has the simple auth manager's format and is private
    pw_file = Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    user, password = stack.admin_credentials(cfg)
    assert json.loads(pw_file.read_text()) == {user: password}
    assert stat.S_IMODE(pw_file.stat().st_mode) == 0o600

    # secrets and password are generated once: a new config object agrees
    again = stack.airflow_env(stack.StackConfig(home=cfg.home, api_port=cfg.api_port))
    for key in (
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY",
        "AIRFLOW__CORE__FERNET_KEY",
    ):
        assert env[key] and again[key] == env[key]
    assert stack.admin_credentials(stack.StackConfig(home=cfg.home)) == (user, password)
    assert stack.connection_uri(cfg).startswith("http://admin:")


def test_start_refuses_a_busy_port(stack_cfg: stack.StackConfig) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        stack_cfg.api_port = busy.getsockname()[1]
        with pytest.raises(stack.StackError, match="already in use"):
            stack.start(stack_cfg, timeout=30)
    assert stack.status(stack_cfg) == {c: False for c in stack_cfg.components()}


@pytest.mark.slow
def test_an_unreachable_database_is_refused_before_anything_starts(
    stack_cfg: stack.StackConfig,
) -> None:
    cfg = stack_cfg
    cfg.sql_alchemy_conn = f"postgresql+psycopg2://nobody:x@127.0.0.1:{_free_port()}/nodb"
    # the preflight check names the variable (before: a failed migration, after MLflow started)
    with pytest.raises(stack.StackError, match="AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=") as err:
        stack.start(cfg, timeout=120)
    assert ":x@" not in str(err.value) and "nobody:***@" in str(err.value)  # redacted
    assert stack.status(cfg) == {c: False for c in cfg.components()}
    assert not list(cfg.run_dir.glob("*.pid"))
    with pytest.raises(requests.RequestException):
        requests.get(f"{cfg.mlflow_url}/health", timeout=2)


@pytest.mark.slow
def test_live_stack_runs_a_dag_and_stops_cleanly(stack_cfg: stack.StackConfig) -> None:
    cfg = stack_cfg
    seen: list[psutil.Process] = []
    pgids: set[int] = set()
    try:
        info = stack.start(cfg, timeout=240)
        assert set(info.started) == {"mlflow", "api-server", "scheduler", "dag-processor"}
        assert stack.status(cfg) == {c: True for c in cfg.components()}
        pgids = set(info.pids.values())
        for pid in info.pids.values():
            seen.extend(stack._tree(pid))
        print(
            f"\nstartup {info.startup_seconds} s, memory {stack.memory_mb(cfg)} MB, "
            f"{stack.process_count(cfg)} processes"
        )

        # idempotent: a second start finds everything up and starts nothing
        again = stack.start(cfg, timeout=30)
        assert again.started == ()
        assert again.pids == info.pids

        # the address is recorded in the home: a config without ports (the CLI's) reads it
        recorded = stack.StackConfig(home=cfg.home)
        assert (recorded.api_port, recorded.mlflow_port) == (cfg.api_port, cfg.mlflow_port)
        assert recorded.airflow_url == info.airflow_url
        assert stack.connection_uri(recorded).endswith(f":{cfg.api_port}")
        assert recorded.mlflow_url == info.mlflow_url

        assert requests.get(f"{info.mlflow_url}/health", timeout=5).status_code == 200

        user, password = stack.admin_credentials(cfg)
        assert (user, password) == (info.username, info.password)
        client = AirflowClient(info.airflow_url, user, password, timeout=30)
        health = client.health()
        assert health["scheduler"]["status"] == "healthy"

        dag = client.wait_for_dag(DAG_ID, timeout=90, poll=1)
        assert dag["is_paused"] is True  # new DAGs start paused
        assert client.set_paused(DAG_ID, False)["is_paused"] is False

        run_id = f"rf:live+{int(time.time())}"
        run = client.trigger_dag_run(DAG_ID, {"x": 41}, run_id=run_id)
        assert run["dag_run_id"] == run_id
        final = client.wait_for_dag_run(DAG_ID, run_id, timeout=120, poll=1)
        tis = {ti["task_id"]: ti["state"] for ti in client.get_task_instances(DAG_ID, run_id)}
        assert final["state"] == "success", tis
        assert tis == {"produce": "success", "consume": "success"}
        assert final["conf"] == {"x": 41}

        # the same run id again is a conflict
        with pytest.raises(AirflowApiError) as dup:
            client.trigger_dag_run(DAG_ID, {"x": 41}, run_id=run_id)
        assert dup.value.status == 409

        # wrong credentials: 401, and no run is created
        before = len(client.list_dag_runs(DAG_ID))
        intruder = AirflowClient(info.airflow_url, user, password + "x", timeout=30)
        with pytest.raises(AirflowApiError) as denied:
            intruder.trigger_dag_run(DAG_ID, {"x": 1}, run_id="rf:intruder")
        assert denied.value.status == 401
        assert len(client.list_dag_runs(DAG_ID)) == before
        with pytest.raises(AirflowApiError) as missing:
            client.get_dag_run(DAG_ID, "rf:intruder")
        assert missing.value.status == 404

        # task processes ran under the stack's process trees too
        for pid in info.pids.values():
            seen.extend(stack._tree(pid))
    finally:
        t0 = time.monotonic()
        stopped = stack.stop(cfg)
        print(f"stop took {time.monotonic() - t0:.1f} s: {stopped}")

    assert stack.status(cfg) == {c: False for c in cfg.components()}
    assert not list((cfg.run_dir).glob("*.pid"))
    assert _survivors(pgids, seen) == []
    with pytest.raises(requests.RequestException):
        requests.get(f"{cfg.airflow_url}/api/v2/monitor/health", timeout=2)
