"""``retrainflow down`` stops what a crashed component left behind (issue 9, finding 5).

A real process group, no Airflow: a session leader (standing in for the scheduler) forks a
worker that ignores SIGTERM, as LocalExecutor's workers do, and then dies. Before, ``stop``
skipped the dead component and the worker survived ``down``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from retrainflow.airflow import stack

LEADER = """
import os, signal, sys, time
pid = os.fork()
if pid == 0:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # like a LocalExecutor worker
    time.sleep(120)
    os._exit(0)
print(pid, flush=True)
os._exit(1)  # the "scheduler" crashes; its worker lives on in its process group
"""


def test_down_kills_the_workers_of_a_component_that_died(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("RETRAINFLOW_HOME", str(tmp_path / "home"))
    cfg = stack.StackConfig(home=tmp_path / "home", api_port=18080, mlflow_port=15000)
    leader = subprocess.Popen(
        [sys.executable, "-c", LEADER], stdout=subprocess.PIPE, start_new_session=True, text=True
    )
    worker_pid = int(leader.stdout.readline())  # type: ignore[union-attr]
    leader.wait(timeout=10)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    (cfg.run_dir / "scheduler.pid").write_text(str(leader.pid))
    worker = psutil.Process(worker_pid)
    # the leader was reaped (wait): its group lives on in the worker alone
    assert worker.is_running() and not psutil.pid_exists(leader.pid)
    try:
        stopped = stack.stop(cfg, grace=1)
        assert stopped["scheduler"] is True
        deadline = time.monotonic() + 10
        while worker.is_running() and worker.status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the orphaned worker survived `down`"
            time.sleep(0.1)
        assert not (cfg.run_dir / "scheduler.pid").exists()
    finally:
        if worker.is_running():
            worker.kill()


def test_a_live_pid_is_not_taken_for_an_orphaned_group(tmp_path: Path) -> None:
    cfg = stack.StackConfig(home=tmp_path / "home", api_port=18080, mlflow_port=15000)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    other = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        (cfg.run_dir / "scheduler.pid").write_text(str(other.pid))
        assert stack._orphaned_group(cfg, "scheduler") is None  # alive: not an orphan group
    finally:
        other.kill()
        other.wait()


def test_a_corrupt_pid_file_never_signals_init_or_ourselves() -> None:
    import os
    import signal

    from retrainflow.exceptions import StackError

    for pgid in (0, 1, os.getpgrp()):
        with pytest.raises(StackError, match="refusing to signal"):
            stack._signal_all([], pgid, signal.SIGTERM)


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RETRAINFLOW_MLFLOW_UI_URL", raising=False)
