"""The supervisor's rules, on stand-in processes (``sleep``) instead of Airflow's.

The live fault test (``test_faults_live.py``) SIGKILLs the real scheduler; here the
restart budget, the health record and the loud log lines are pinned down quickly.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from retrainflow.airflow import stack, supervise


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> stack.StackConfig:
    monkeypatch.setenv("RETRAINFLOW_HOME", str(tmp_path))
    monkeypatch.setattr(stack, "_command", lambda cfg, component: ["sleep", "120"])
    c = stack.StackConfig(home=tmp_path, with_mlflow_server=False, with_triggerer=False)
    yield c
    stack.stop(c, grace=2)


def _kill(pid: int) -> None:
    """SIGKILL and wait until it is a zombie (not reaped: the supervisor reaps its children)."""
    proc = psutil.Process(pid)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while proc.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_dead_component_is_restarted_until_the_budget_is_spent(
    cfg: stack.StackConfig, caplog: pytest.LogCaptureFixture
) -> None:
    sup = supervise.Supervisor(cfg, interval=0.1, max_restarts=2, window=600)
    caplog.set_level(logging.ERROR, logger="retrainflow.supervisor")
    sup.check_once()  # nothing runs yet: everything is started
    assert set(stack.status(cfg).values()) == {True}
    first = stack._read_pid(cfg, "scheduler")
    assert first is not None

    _kill(first)
    sup.check_once()
    second = stack._read_pid(cfg, "scheduler")
    assert second not in (None, first)
    record = supervise.read_health(cfg)
    assert record is not None
    sched = record["components"]["scheduler"]
    assert sched["restarts"] == 2 and sched["alive"] and not sched["gave_up"]
    assert sched["last_exit"] == -signal.SIGKILL  # the supervisor reaped its own child
    assert "scheduler is not running (exit code -9); restarting it" in caplog.text

    _kill(second)
    sup.check_once()  # two restarts within the window: give up, loudly
    record = supervise.read_health(cfg)
    assert record is not None
    assert record["components"]["scheduler"]["gave_up"] is True
    assert stack._read_pid(cfg, "scheduler") is None
    assert "not restarting it again" in caplog.text
    assert record["components"]["api-server"]["alive"] is True  # the others are untouched
    health = stack.health(cfg)
    assert health["scheduler"]["gave_up"] and health["scheduler"]["process"] == "down"


def test_the_supervisor_process_stops_at_down_and_leaves_the_components_to_it(
    cfg: stack.StackConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETRAINFLOW_SUPERVISOR_INTERVAL", "0.2")
    for component in cfg.components():
        stack._launch(cfg, component, stack._process_env(cfg))
    pid = stack._start_supervisor(cfg)
    deadline = time.monotonic() + 60
    while supervise.read_health(cfg) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert supervise.read_health(cfg) is not None
    assert stack.health(cfg)["supervisor"]["process"] == "running"
    # The supervisor's config file may hold a database password: owner only.
    assert supervise.config_file(cfg).stat().st_mode & 0o077 == 0
    stopped = stack.stop(cfg, grace=2)
    assert stopped["scheduler"] and stopped["api-server"]
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert all(h["process"] == "down" for h in stack.health(cfg).values())


def test_status_names_what_is_down_and_exits_1(
    cfg: stack.StackConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from retrainflow.cli.main import main

    assert main(["status"]) == 1
    assert "is not running. Start it with `retrainflow up`" in capsys.readouterr().out
    for component in cfg.components():
        stack._launch(cfg, component, stack._process_env(cfg))
    _kill(stack._read_pid(cfg, "dag-processor") or 0)
    assert main(["status"]) == 1
    out = capsys.readouterr().out
    assert "dag-processor" in out and "Not healthy: " in out and "dag-processor" in out
    assert main(["status", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["healthy"] is False
    assert data["components"]["dag-processor"]["process"] == "down"
    assert data["components"]["scheduler"]["process"] == "running"
