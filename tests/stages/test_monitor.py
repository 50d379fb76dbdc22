"""The monitoring check in-process: Evidently drift, the policy, the ledger, MLflow history.

The trigger here is a recording stand-in for the REST trigger (it implements
the same two-method protocol); the real REST path is exercised against a live
Airflow in tests/airflow/test_monitor_live.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Trained

PRE_DRIFT = "2023-02-27"  # the synthetic data drifts from day 60 = 2023-03-02
POST_DRIFT = "2023-04-01"


class RecordingTrigger:
    """Implements the monitor's Trigger protocol; remembers the runs it was asked to start."""

    def __init__(self, active: bool = False) -> None:
        self.is_active = active
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.started: set[str] = set()

    def active_runs(self) -> list[str]:
        return ["some-other-retrain"] if self.is_active else sorted(self.started)

    def trigger(self, run_id: str, conf: dict[str, Any]) -> str:
        self.calls.append((run_id, conf))
        if run_id in self.started:
            return "exists"
        self.started.add(run_id)
        return "created"


def _check(run_id: str, day: str, trigger: RecordingTrigger | None = None, **ctx: Any):
    from retrainflow.config import find_config
    from retrainflow.registry import Registry
    from retrainflow.stages import monitor

    cfg = find_config("synthetic")
    context = monitor.MonitorContext(pipeline="synthetic", run_id=run_id, check_date=day, **ctx)
    return monitor.run(cfg, context, registry=Registry(), trigger=trigger)


def test_no_drift_before_the_drift_point(trained_fork: Trained) -> None:
    trig = RecordingTrigger()
    m = _check("pre", PRE_DRIFT, trig)
    assert m.check["current_rows"] == 5 * 400
    assert m.check["dataset_drift"] is False
    assert m.decision["trigger"] is False and trig.calls == []
    # Nothing drifted: the JSON summary, not the multi-megabyte HTML report (issue 10).
    summary = json.loads(Path(m.summary_uri).read_text())["drift"]
    assert summary["html_rendered"] is False and m.report_uri is None
    assert not list(Path(m.summary_uri).parent.glob("*.html"))
    assert (
        json.loads(Path(m.summary_uri).read_text())["drift"]["drift_share"]
        == m.check["drift_share"]
    )


def test_drift_after_the_drift_point_triggers_a_retrain(trained_fork: Trained) -> None:
    from retrainflow.monitoring.ledger import CheckLedger
    from retrainflow.stages.monitor import flight_run_id

    trig = RecordingTrigger()
    m = _check("post", POST_DRIFT, trig)
    assert m.check["dataset_drift"] is True
    assert "x1" in m.check["drifted_columns"]
    assert m.decision["trigger"] is True
    assert "drift" in m.decision["reasons"]
    assert (
        m.triggered_run_id
        == flight_run_id("synthetic", "1", 0)
        == "monitor__synthetic__v1__flight0"
    )
    assert m.trigger_status == "created"
    ((run_id, conf),) = trig.calls
    assert conf["window_end"] == POST_DRIFT and conf["reason_codes"] == m.decision["reasons"]
    assert conf["mode"] == m.decision["mode"] and conf["details"]["report_uri"] == m.report_uri
    # the retrain DAG's typed conf accepts what the monitor sends
    from retrainflow.runs import parse_request

    assert parse_request(conf, pipeline="synthetic").reason_codes == m.decision["reasons"]
    entries = CheckLedger(trained_fork.config.artifact_root_uri(), "synthetic").entries()
    assert [e.run_id for e in entries] == ["post"] and entries[0].triggered_run_id == run_id


def test_a_retried_check_triggers_the_same_run_once(trained_fork: Trained) -> None:
    from retrainflow.monitoring.ledger import CheckLedger

    trig = RecordingTrigger()
    first = _check("again", POST_DRIFT, trig)
    second = _check("again", POST_DRIFT, trig)
    assert first.triggered_run_id == second.triggered_run_id
    assert [status for status in (first.trigger_status, second.trigger_status)] == [
        "created",
        "exists",
    ]
    assert len(trig.started) == 1
    assert len(CheckLedger(trained_fork.config.artifact_root_uri(), "synthetic").entries()) == 1


def test_single_flight_and_cooldown_block_a_second_retrain(trained_fork: Trained) -> None:
    busy = RecordingTrigger(active=True)
    m = _check("busy", POST_DRIFT, busy)
    assert m.decision["trigger"] is False and "single_flight" in m.decision["blocked_by"]
    assert busy.calls == []
    trig = RecordingTrigger()
    assert _check("first", POST_DRIFT, trig).decision["trigger"] is True
    m = _check("soon-after", POST_DRIFT, trig)  # same data day: within the 24 h cooldown
    assert m.decision["trigger"] is False and "cooldown" in m.decision["blocked_by"]
    assert len(trig.calls) == 1


def test_no_trigger_flag_decides_but_starts_nothing(trained_fork: Trained) -> None:
    trig = RecordingTrigger()
    m = _check("dry", POST_DRIFT, trig, trigger_enabled=False)
    assert m.decision["trigger"] is True
    assert (
        m.trigger_status == "trigger disabled" and m.triggered_run_id is None and trig.calls == []
    )


def test_each_check_is_logged_to_the_monitoring_experiment(trained_fork: Trained) -> None:
    import mlflow

    from retrainflow.registry import Registry

    m = _check("logged", POST_DRIFT)
    client = mlflow.MlflowClient(Registry().tracking_uri)
    exp = client.get_experiment_by_name("synthetic-monitoring")
    run = client.get_run(m.mlflow_run_id)
    assert run.info.experiment_id == exp.experiment_id
    assert run.data.metrics["drift_share"] == pytest.approx(m.check["drift_share"])
    assert run.data.tags["check_date"] == POST_DRIFT
    names = {a.path for a in client.list_artifacts(m.mlflow_run_id, "report")}
    assert any(n.endswith(".html") for n in names) and any(n.endswith(".json") for n in names)


def test_without_a_champion_the_policy_asks_for_a_first_model(seeded: Any) -> None:
    trig = RecordingTrigger()
    m = _check("empty", PRE_DRIFT, trig)
    assert m.champion_version is None
    assert m.decision["trigger"] is True and m.decision["reasons"] == ["no_champion"]
    assert m.decision["mode"] == "stateless" and len(trig.calls) == 1


def test_an_mlflow_outage_fails_the_check_instead_of_asking_for_a_first_model(
    trained_fork: Trained, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 7, finding 8: an unreachable registry used to read as "no champion", and the
    policy then fired a ``no_champion`` stateless retrain."""
    import socket

    from retrainflow.config import find_config
    from retrainflow.exceptions import RegistryUnavailableError, UserError
    from retrainflow.monitoring.ledger import CheckLedger
    from retrainflow.registry import Registry
    from retrainflow.stages import monitor

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    cfg = find_config("synthetic")
    trigger = RecordingTrigger()
    context = monitor.MonitorContext(pipeline="synthetic", run_id="outage", check_date=POST_DRIFT)
    with pytest.raises(RegistryUnavailableError) as info:
        monitor.run(cfg, context, registry=Registry(f"http://127.0.0.1:{port}"), trigger=trigger)
    assert not isinstance(info.value, UserError)  # the DAG's check task retries it
    assert trigger.calls == []  # nothing started
    ledger = CheckLedger(cfg.artifact_root_uri(), cfg.name)
    assert "outage" not in [e.run_id for e in ledger.entries()]  # no decision was recorded


class FileTrigger:
    """A trigger shared by processes, with Airflow's guarantee: run ids are unique (an
    ``O_EXCL`` create is the atomic claim). ``trigger`` first waits until every check
    has got that far, so all of them decide before any creates: the worst case of the race."""

    def __init__(self, folder: Path, barrier: Any) -> None:
        self.folder, self.barrier = folder, barrier

    def active_runs(self) -> list[str]:
        return sorted(p.name for p in self.folder.iterdir())

    def trigger(self, run_id: str, conf: dict[str, Any]) -> str:
        import os

        self.barrier.wait(timeout=300)
        try:
            os.close(os.open(self.folder / run_id, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return "exists"
        return "created"


def _check_in_process(home: str, run_id: str, folder: str, barrier: Any) -> tuple[str, Any]:
    import pytest

    from tests.conftest import point_env

    with pytest.MonkeyPatch.context() as mp:
        point_env(mp, Path(home))
        m = _check(run_id, POST_DRIFT, FileTrigger(Path(folder), barrier))  # type: ignore[arg-type]
    return m.trigger_status, m.triggered_run_id


@pytest.mark.slow
def test_concurrent_checks_start_exactly_one_retrain(trained_fork: Trained, tmp_path: Path) -> None:
    """Issue 9, finding 1: distinct checks deciding at once used to start several retrains
    (check-then-act on ``active_runs``). Now they all claim the same flight id, and the
    unique run id lets one through. Separate processes, as the scheduler runs them."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    folder = tmp_path / "dag_runs"
    folder.mkdir()
    n = 3
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(n)
        with ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
            results = list(
                pool.map(
                    _check_in_process,
                    [str(trained_fork.root)] * n,
                    [f"burst-{i}" for i in range(n)],
                    [str(folder)] * n,
                    [barrier] * n,
                )
            )
    created = [p.name for p in folder.iterdir()]
    assert created == ["monitor__synthetic__v1__flight0"]  # exactly one retrain run
    assert sorted(status for status, _ in results) == ["created", "exists", "exists"]
    assert {run_id for _, run_id in results} == {created[0]}


def test_a_new_flight_after_the_previous_one_ended(trained_fork: Trained) -> None:
    trig = RecordingTrigger()
    first = _check("f1", POST_DRIFT, trig)
    trig.started.clear()  # the first retrain ended (its gate failed: same champion)
    second = _check("f2", "2023-04-03", trig)
    assert first.triggered_run_id == "monitor__synthetic__v1__flight0"
    assert second.triggered_run_id == "monitor__synthetic__v1__flight1"
