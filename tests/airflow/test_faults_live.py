"""Live faults: processes of the embedded stack SIGKILLed, and what survives.

* The **scheduler** is SIGKILLed: the supervisor (``retrainflow.airflow.supervise``) says
  so in its log, restarts it, the API reports it healthy again, ``retrainflow status``
  counts the restart, and ``down`` leaves no process of the stack behind.
* The **train task** of a real retrain is SIGKILLed mid-fit (its process, found through
  the REST API's task-instance ``pid``): Airflow retries it, the run succeeds and exactly
  one model version results, with no MLflow run left ``RUNNING``.

Bounded: every wait has a deadline; the stack is stopped in ``finally``.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psutil
import pytest
import yaml

from tests.airflow.live import explain_run, running_stack, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.faults, pytest.mark.timeout(900)]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pipelines"
RETRAIN = "retrain__synthetic"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    home = tmp_path_factory.mktemp("faults-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RETRAINFLOW_HOME", str(home))
        mp.setenv("RETRAINFLOW_SUPERVISOR_INTERVAL", "1")
        config_dir = home / "config"
        config_dir.mkdir()
        cfg = yaml.safe_load((FIXTURES / "synthetic.yaml").read_text())
        # A fit long enough to be killed in the middle of (~10-20 s on this machine).
        cfg["training"]["params"].update(
            {"n_estimators": 3000, "learning_rate": 0.01, "num_leaves": 63}
        )
        (config_dir / "synthetic.yaml").write_text(yaml.safe_dump(cfg))
        mp.setenv("RETRAINFLOW_CONFIG_DIR", str(config_dir))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("AIRFLOW_CONN_RETRAINFLOW_API", raising=False)
        from retrainflow.config import find_config
        from retrainflow.data.seed import seed

        seed(find_config("synthetic"), date(2023, 3, 1))
        with running_stack([RETRAIN]) as stack_live:
            yield {"live": stack_live, "home": home}


def test_a_killed_train_task_is_retried_and_registers_one_version(live: dict) -> None:
    import mlflow

    from retrainflow.registry import Registry

    client = live["live"].client
    run_id = "fault_train_kill"
    client.trigger_dag_run(
        RETRAIN, conf={"mode": "stateless", "window_end": "2023-02-15"}, run_id=run_id
    )

    def running_train_pid() -> int | None:
        for ti in client.get_task_instances(RETRAIN, run_id):
            if ti["task_id"] == "train" and ti["state"] == "running" and ti.get("pid"):
                return int(ti["pid"])
        return None

    pid = wait_for("the train task to run", running_train_pid, timeout=300, poll=0.3)
    time.sleep(2)  # inside the fit
    os.kill(pid, signal.SIGKILL)
    final = client.wait_for_dag_run(RETRAIN, run_id, timeout=600)
    assert final["state"] == "success", explain_run(client, RETRAIN, run_id)
    train = next(t for t in client.get_task_instances(RETRAIN, run_id) if t["task_id"] == "train")
    assert train["try_number"] >= 2  # the killed attempt, then the retry
    versions = Registry().versions("synthetic")
    assert len(versions) == 1 and versions[0].tags["dag_run_id"] == run_id
    stuck = mlflow.search_runs(search_all_experiments=True, filter_string="status = 'RUNNING'")
    assert len(stuck) == 0, stuck[["run_id", "tags.mlflow.runName"]].to_string()


def test_a_killed_scheduler_is_restarted_and_down_leaves_nothing(live: dict) -> None:
    from retrainflow.airflow import stack, supervise

    scfg = live["live"].stack
    before = stack.health(scfg)
    assert before["supervisor"]["process"] == "running"
    old = before["scheduler"]["pid"]
    assert old is not None
    os.kill(old, signal.SIGKILL)

    def restarted() -> dict | None:
        h = stack.health(scfg)["scheduler"]
        ok = h["pid"] not in (None, old) and h["restarts"] >= 1 and h["api"] == "healthy"
        return h if ok else None

    health = wait_for("the supervisor to restart the scheduler", restarted, timeout=180, poll=1)
    assert health["process"] == "running"
    # The killed scheduler's LocalExecutor workers (its process group; they ignore SIGTERM)
    # were stopped before the new one started: none idles on.
    assert stack._group_members(old) == [], [
        " ".join(p.cmdline()) for p in stack._group_members(old)
    ]
    log = (Path(live["home"]) / "logs" / "supervisor.log").read_text()
    assert "scheduler is not running" in log and "restarting it" in log
    record = supervise.read_health(scfg)
    assert record is not None and record["components"]["scheduler"]["restarts"] == 1

    # Everything the stack started, the restarted scheduler's workers included, ends at down.
    pids = {c: h["pid"] for c, h in stack.health(scfg).items() if h.get("pid")}
    procs = []
    for pid in pids.values():
        try:
            root = psutil.Process(pid)
            procs += [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
    stack.stop(scfg)
    _, alive = psutil.wait_procs(procs, timeout=30)
    alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], [" ".join(p.cmdline())[:120] for p in alive]
    assert all(h["process"] == "down" for h in stack.health(scfg).values())
