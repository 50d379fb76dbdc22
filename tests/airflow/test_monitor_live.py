"""Live: monitor__synthetic triggers retrain__synthetic through Airflow's REST API.

Real API server, scheduler and DAG processor on 127.0.0.1; the monitoring task
authenticates with the connection ``retrainflow_api`` (a JWT from the API's
token endpoint). The test watches the triggered retrain through the REST API
until it succeeds, then checks the MLflow registry. Wrong credentials end the
check with a clear error and start nothing; a check while a retrain is active
starts no second one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import yaml

from tests.airflow.live import explain_run, running_stack

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pipelines"
RETRAIN, MONITOR = "retrain__synthetic", "monitor__synthetic"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    home = tmp_path_factory.mktemp("monitor-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RETRAINFLOW_HOME", str(home))
        config_dir = home / "config"
        config_dir.mkdir()
        cfg_dict = yaml.safe_load((FIXTURES / "synthetic.yaml").read_text())
        cfg_dict["monitoring"]["policy"]["cooldown_hours"] = (
            0  # isolate single flight from cooldown
        )
        (config_dir / "synthetic.yaml").write_text(yaml.safe_dump(cfg_dict))
        mp.setenv("RETRAINFLOW_CONFIG_DIR", str(config_dir))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("AIRFLOW_CONN_RETRAINFLOW_API", raising=False)
        from retrainflow.config import find_config
        from retrainflow.data.seed import seed
        from retrainflow.manifest import RunContext
        from retrainflow.pipeline import run_all

        cfg = find_config("synthetic")
        seed(cfg, date(2023, 4, 30))
        # A pre-drift champion, trained in-process (the retrain DAG itself is tested elsewhere).
        run_all(
            cfg,
            RunContext(
                pipeline="synthetic",
                run_id="seed-champion",
                window_end="2023-02-15",
                requested_mode="stateless",
            ),
        )
        with running_stack([RETRAIN, MONITOR]) as live:
            yield {"client": live.client, "cfg": cfg, "info": live.info, "home": home}


def _monitor(client, run_id: str, conf: dict) -> dict:
    client.trigger_dag_run(MONITOR, conf=conf, run_id=run_id)
    return client.wait_for_dag_run(MONITOR, run_id, timeout=420)


def _manifest(live: dict, run_id: str) -> dict:
    path = (
        Path(live["cfg"].artifact_root_uri()) / "synthetic" / run_id / "monitor" / "manifest.json"
    )
    return json.loads(path.read_text())


def _retrain_runs(client) -> list[str]:
    return [r["dag_run_id"] for r in client.list_dag_runs(RETRAIN)]


def test_wrong_credentials_fail_clearly_and_start_nothing(live: dict) -> None:
    client = live["client"]
    # A connection with the right URL and a wrong password, stored in Airflow itself.
    base = live["info"].airflow_url
    host, port = base.split("://", 1)[1].split(":")
    client.request(
        "POST",
        "/api/v2/connections",
        json={
            "connection_id": "retrainflow_api_bad",
            "conn_type": "http",
            "host": host,
            "port": int(port),
            "login": "admin",
            "password": "not-the-password",
        },
    )
    final = _monitor(
        client, "mon_badcreds", {"check_date": "2023-04-01", "api_conn_id": "retrainflow_api_bad"}
    )
    assert final["state"] == "failed"
    assert _retrain_runs(client) == []
    log = client.request(
        "GET",
        f"/api/v2/dags/{MONITOR}/dagRuns/mon_badcreds/taskInstances/check/logs/1",
        params={"full_content": "true"},
    )
    assert "401" in json.dumps(log) and "credentials" in json.dumps(log).lower()


def test_drift_triggers_a_retrain_over_rest_and_a_second_check_waits(live: dict) -> None:
    from retrainflow.registry import Registry

    client = live["client"]
    first = _monitor(client, "mon_drift", {"check_date": "2023-04-01"})
    assert first["state"] == "success", explain_run(client, MONITOR, "mon_drift")
    manifest = _manifest(live, "mon_drift")
    assert manifest["decision"]["trigger"] is True and "drift" in manifest["decision"]["reasons"]
    retrain_id = manifest["triggered_run_id"]
    assert retrain_id and manifest["trigger_status"] == "created"
    assert _retrain_runs(client) == [retrain_id]
    # Hold the retrain (pause its DAG: the run stays active) and check again.
    client.set_paused(RETRAIN, True)
    try:
        second = _monitor(client, "mon_drift_again", {"check_date": "2023-04-02"})
        assert second["state"] == "success", explain_run(client, MONITOR, "mon_drift_again")
        again = _manifest(live, "mon_drift_again")
        assert again["decision"]["trigger"] is False
        assert "single_flight" in again["decision"]["blocked_by"]
        assert _retrain_runs(client) == [retrain_id]
    finally:
        client.set_paused(RETRAIN, False)
    final = client.wait_for_dag_run(RETRAIN, retrain_id, timeout=600)
    assert final["state"] == "success", explain_run(client, RETRAIN, retrain_id)
    assert final["conf"]["reason_codes"] == manifest["decision"]["reasons"]
    versions = Registry().versions("synthetic")
    assert [v.version for v in versions] == ["1", "2"]
    new = versions[-1]
    assert new.tags["dag_run_id"] == retrain_id
    assert new.tags["trigger_reason"].startswith("monitor: ")
    assert new.tags["parent_version"] == "1"
