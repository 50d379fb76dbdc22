"""A real Airflow stack (API server, scheduler, DAG processor) for live tests, on free ports."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, predicate: Callable[[], Any], timeout: float, poll: float = 0.5) -> Any:
    """``predicate()``'s first truthy value; AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass(frozen=True)
class Live:
    client: Any  # AirflowClient
    info: Any  # StackInfo
    stack: Any  # StackConfig


@contextmanager
def running_stack(dag_ids: list[str], *, triggerer: bool = False) -> Iterator[Live]:
    """Start the stack under the current RETRAINFLOW_HOME, wait for and unpause ``dag_ids``; stop
    it after. The MLflow server is left out; the triggerer too unless asked for."""
    from retrainflow.airflow import stack
    from retrainflow.airflow.rest import AirflowClient

    scfg = stack.StackConfig(
        api_port=free_port(),
        mlflow_port=free_port(),
        with_mlflow_server=False,
        with_triggerer=triggerer,
    )
    info = stack.start(scfg, timeout=240)
    try:
        client = AirflowClient(info.airflow_url, info.username, info.password)
        for dag_id in dag_ids:
            client.wait_for_dag(dag_id, timeout=180)
            client.set_paused(dag_id, False)
        yield Live(client, info, scfg)
    finally:
        stack.stop(scfg)


def explain_run(client: Any, dag_id: str, run_id: str) -> str:
    """What a failed live run left behind: task states, error lines of each failed task's log,
    and the scheduler's warnings about it — so a CI failure can be read without re-running."""
    import json
    import os
    from pathlib import Path

    home = Path(os.environ["RETRAINFLOW_HOME"])
    lines = []
    try:
        tis = client.get_task_instances(dag_id, run_id)
    except Exception as exc:  # noqa: BLE001 — diagnostics must not mask the real failure
        return f"(could not list task instances: {exc})"
    lines.append("task states: " + ", ".join(f"{ti['task_id']}={ti['state']}" for ti in tis))
    run_logs = home / "airflow" / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
    for ti in tis:
        if ti["state"] not in ("failed", "upstream_failed", "up_for_retry"):
            continue
        for log in sorted(run_logs.glob(f"task_id={ti['task_id']}/attempt=*.log")):
            for raw in log.read_text(errors="replace").splitlines():
                try:
                    event = json.loads(raw)
                except ValueError:
                    event = {"event": raw, "level": "?"}
                if event.get("level") in ("error", "critical", "warning", "?"):
                    lines.append(
                        f"{log.parent.name}/{log.name}: {str(event.get('event'))[:400]} "
                        f"{str(event.get('error_detail', ''))[:1500]}"
                    )
    scheduler_log = home / "logs" / "scheduler.log"
    if scheduler_log.is_file():
        lines += [
            f"scheduler: {line[:400]}"
            for line in scheduler_log.read_text(errors="replace").splitlines()
            if run_id in line and ("ERROR" in line or "WARNING" in line or "mismatch" in line)
        ][-20:]
    return "\n".join(lines)
