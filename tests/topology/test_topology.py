"""The production topology of ``docker-compose.yml``, run end to end without Docker.

One stack for the whole module, configured by environment only (the variables compose
sets, see :func:`tests.topology.services.topology_env`) and started through the CLI, as
an operator would: ``retrainflow up``. It runs

* Airflow's api-server, scheduler, dag-processor and triggerer on a PostgreSQL metadata
  database, with the **CeleryExecutor**: Redis as the broker, PostgreSQL as the result
  backend, and three **Celery workers** — ``worker-1`` on the ``default`` queue,
  ``worker-2`` and ``worker-3`` on the ``training`` queue;
* the **MLflow server on PostgreSQL**, its artifacts on S3 (moto's S3 server on
  127.0.0.1 stands in for MinIO), proxied by the server;
* the data lake, the stage artifacts and the check ledger on that S3 too.

The cases share the stack and run in order: a retrain on the workers; the monitor
deciding to retrain and triggering it over REST; a training worker SIGKILLed mid-fit; the
Redis broker restarted mid-run. Every wait is bounded; the stack and the services are
stopped in ``finally``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psutil
import pytest
import yaml

from tests.airflow.live import explain_run, wait_for
from tests.topology.services import Services, free_port, topology_env

pytestmark = [pytest.mark.slow, pytest.mark.topology, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[2]
RETRAIN, MONITOR, SLOW = "retrain__flights", "monitor__flights", "retrain__flightsslow"
FIRST_END = "2013-03-01"


def _configs(config_dir: Path) -> None:
    """``flights`` as shipped (monitor made eager), and ``flightsslow``: the same data with a
    fit long enough to kill a worker in the middle of it."""
    base = yaml.safe_load((REPO / "config" / "pipelines" / "flights.yaml").read_text())
    policy = base["monitoring"]["policy"]
    # A week after the first champion there are ~6k new rows: let volume alone trigger.
    policy.update({"min_new_rows": 1000, "cooldown_hours": 0})
    (config_dir / "flights.yaml").write_text(yaml.safe_dump(base))
    slow = yaml.safe_load(yaml.safe_dump(base))
    slow["name"] = "flightsslow"
    slow["monitoring"]["enabled"] = False
    slow["training"]["params"].update({"n_estimators": 1500, "learning_rate": 0.01})
    (config_dir / "flightsslow.yaml").write_text(yaml.safe_dump(slow))


@pytest.fixture(scope="module")
def topo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    work = tmp_path_factory.mktemp("topology")
    home, config_dir = work / "home", work / "config"
    home.mkdir()
    config_dir.mkdir()
    _configs(config_dir)
    services = Services(work).start()
    api_port, mlflow_port = free_port(), free_port()
    env = topology_env(services, home=home, config_dir=config_dir)
    env["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{mlflow_port}"
    env["RETRAINFLOW_SUPERVISOR_INTERVAL"] = "1"
    with pytest.MonkeyPatch.context() as mp:
        for key in ("AIRFLOW_CONN_RETRAINFLOW_API", "RETRAINFLOW_MLFLOW_ARTIFACTS"):
            mp.delenv(key, raising=False)
        for key, value in env.items():
            mp.setenv(key, value)
        cli = [sys.executable, "-m", "retrainflow.cli.main"]
        try:
            from retrainflow.config import find_config
            from retrainflow.data.seed import seed

            seed(find_config("flights"), date(2013, 3, 10))  # into s3://lake/flights/
            up = subprocess.run(
                [*cli, "up", "--airflow-port", str(api_port), "--mlflow-port", str(mlflow_port)],
                capture_output=True,
                text=True,
                timeout=420,
                check=False,
            )
            assert up.returncode == 0, up.stdout + up.stderr
            from retrainflow.airflow import mlflow_auth, stack
            from retrainflow.airflow.rest import AirflowClient

            scfg = stack.StackConfig()
            # this process reads the registry as the tasks do: through the MLflow server
            for key, value in mlflow_auth.client_env(
                home, tracking_uri=env["MLFLOW_TRACKING_URI"], server_url=scfg.mlflow_url
            ).items():
                mp.setenv(key, value)
            user, password = stack.admin_credentials(scfg)
            client = AirflowClient(scfg.airflow_url, user, password)
            for dag_id in (RETRAIN, MONITOR, SLOW):
                client.wait_for_dag(dag_id, timeout=240)
                client.set_paused(dag_id, False)
            yield {
                "client": client,
                "stack": scfg,
                "services": services,
                "home": home,
                "up": up.stdout,
                "cli": cli,
            }
        finally:
            subprocess.run([*cli, "down"], capture_output=True, timeout=300, check=False)
            services.stop()


def _tis(client, dag_id: str, run_id: str) -> dict[str, dict]:
    return {ti["task_id"]: ti for ti in client.get_task_instances(dag_id, run_id)}


def _run(client, dag_id: str, run_id: str, conf: dict, timeout: float = 900) -> dict:
    client.trigger_dag_run(dag_id, conf=conf, run_id=run_id)
    final = client.wait_for_dag_run(dag_id, run_id, timeout=timeout)
    assert final["state"] == "success", explain_run(client, dag_id, run_id)
    return final


def _s3_keys(bucket: str, prefix: str = "") -> list[str]:
    import boto3

    pages = (
        boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    )
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


def _worker_of(ti: dict) -> str:
    return str(ti["hostname"]).split("@", 1)[0]


def test_up_starts_every_component_of_the_topology(topo: dict) -> None:
    from retrainflow.airflow import stack

    table = topo["up"]
    for component in (
        "mlflow",
        "api-server",
        "scheduler",
        "dag-processor",
        "triggerer",
        "worker-1",
        "worker-2",
        "worker-3",
    ):
        assert component in table
    health = stack.health(topo["stack"])
    assert {c: h["api"] for c, h in health.items() if c.startswith("worker-")} == {
        "worker-1": "healthy",
        "worker-2": "healthy",
        "worker-3": "healthy",
    }
    # Airflow's metadata is in PostgreSQL, not in a SQLite file under the home
    assert not list((topo["home"] / "airflow").glob("*.db"))
    assert not (topo["home"] / "mlflow" / "mlflow.db").exists()


def test_retrain_runs_on_the_celery_workers_and_registers_a_champion_on_s3(topo: dict) -> None:
    import mlflow.pyfunc
    import pandas as pd

    from retrainflow.config import find_config
    from retrainflow.data.sources import make_source
    from retrainflow.registry import Registry

    client = topo["client"]
    _run(client, RETRAIN, "topo_first", {"window_end": FIRST_END, "mode": "stateless"})
    tis = _tis(client, RETRAIN, "topo_first")
    # the fit ran on a training worker; everything else on the default worker
    assert tis["train"]["queue"] == "training"
    assert _worker_of(tis["train"]) in {"worker-2", "worker-3"}
    for task in ("pull", "validate", "features", "evaluate", "promote"):
        assert tis[task]["queue"] == "default", task
        assert _worker_of(tis[task]) == "worker-1", task

    registry = Registry()
    champion = registry.champion("flights")
    assert champion is not None and champion.tags["dag_run_id"] == "topo_first"
    # the model's files are in the MLflow bucket (through the server's artifact proxy) ...
    assert any(k.endswith("MLmodel") for k in _s3_keys("mlflow-artifacts")), "no MLmodel on S3"
    # ... the stage artifacts in the artifact bucket, none on the local disk
    stage_keys = _s3_keys("retrainflow-artifacts", "artifacts/flights/topo_first/")
    assert {k.split("/")[3] for k in stage_keys} >= {"pull", "validate", "train", "promote"}
    assert not (topo["home"] / "artifacts").exists()
    assert not list(Path.cwd().glob("s3:*"))

    # served like any other model: raw rows in, probabilities out
    cfg = find_config("flights")
    raw = make_source(cfg).read_window(date(2013, 3, 1), date(2013, 3, 2))
    assert len(raw) > 500
    model = mlflow.pyfunc.load_model("models:/flights@champion")
    scores = pd.Series(model.predict(raw.drop(columns=[cfg.target])).squeeze())
    assert len(scores) == len(raw) and scores.between(0, 1).all()


def test_monitor_triggers_a_retrain_over_rest_that_runs_on_the_workers(topo: dict) -> None:
    from retrainflow.artifacts import ArtifactStore
    from retrainflow.config import find_config

    client = topo["client"]
    _run(client, MONITOR, "topo_check", {"check_date": "2013-03-08"})
    check = _tis(client, MONITOR, "topo_check")["check"]
    assert _worker_of(check) == "worker-1"
    cfg = find_config("flights")
    run = ArtifactStore(cfg.artifact_root_uri()).run("flights", "topo_check")
    report = run.read_json("monitor/manifest.json")
    assert report["decision"]["trigger"] is True, report["decision"]
    retrain_id = report["triggered_run_id"]
    assert retrain_id and report["trigger_status"] == "created"
    final = client.wait_for_dag_run(RETRAIN, retrain_id, timeout=900)
    assert final["state"] == "success", explain_run(client, RETRAIN, retrain_id)
    assert _worker_of(_tis(client, RETRAIN, retrain_id)["train"]) in {"worker-2", "worker-3"}
    # the check ledger lives on S3 as well
    assert _s3_keys("retrainflow-artifacts", "artifacts/flights/monitoring/checks.jsonl")


@pytest.mark.faults
def test_a_worker_killed_mid_training_is_retried_and_registers_once(topo: dict) -> None:
    from retrainflow.airflow import stack
    from retrainflow.registry import Registry

    client, scfg = topo["client"], topo["stack"]
    client.trigger_dag_run(SLOW, conf={"window_end": FIRST_END, "mode": "stateless"}, run_id="kill")

    def training() -> dict | None:
        ti = _tis(client, SLOW, "kill").get("train", {})
        return ti if ti.get("state") == "running" and ti.get("hostname") else None

    ti = wait_for("the fit to start on a worker", training, timeout=600)
    time.sleep(3)  # inside the fit
    victim = _worker_of(ti)
    pid = stack._read_pid(scfg, victim)
    assert pid is not None, victim
    killed = [p.pid for p in psutil.Process(pid).children(recursive=True)] + [pid]
    os.killpg(pid, signal.SIGKILL)  # the worker, its pool and the task: a machine lost
    final = client.wait_for_dag_run(SLOW, "kill", timeout=1200)
    assert final["state"] == "success", explain_run(client, SLOW, "kill")
    train = _tis(client, SLOW, "kill")["train"]
    assert train["try_number"] >= 2
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in killed)
    versions = Registry().versions("flightsslow")
    assert [v.version for v in versions] == ["1"]
    assert versions[0].tags["dag_run_id"] == "kill"
    # the supervisor brought the dead worker back
    wait_for(f"{victim} to be back", lambda: stack.health(scfg)[victim]["api"] == "healthy", 180)


@pytest.mark.faults
def test_a_broker_restart_mid_run_neither_loses_the_run_nor_registers_twice(topo: dict) -> None:
    from retrainflow.registry import Registry

    client, services = topo["client"], topo["services"]
    before = [v.version for v in Registry().versions("flightsslow")]
    conf = {"window_end": "2013-03-08", "mode": "stateless"}
    client.trigger_dag_run(SLOW, conf=conf, run_id="broker")
    wait_for(
        "the fit to start",
        lambda: _tis(client, SLOW, "broker").get("train", {}).get("state") == "running",
        timeout=600,
    )
    services.stop_redis()  # Redis keeps nothing on disk: queued messages are gone
    time.sleep(5)
    services.start_redis()
    final = client.wait_for_dag_run(SLOW, "broker", timeout=1200)
    after = [v.version for v in Registry().versions("flightsslow")]
    if final["state"] == "success":
        assert len(after) == len(before) + 1
    else:  # failed cleanly: nothing half-registered
        assert final["state"] == "failed" and after == before
