"""A real Airflow stack (API server, scheduler, DAG processor) for live tests, on free ports."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Live:
    client: Any  # AirflowClient
    info: Any  # StackInfo
    stack: Any  # StackConfig


@contextmanager
def running_stack(dag_ids: list[str]) -> Iterator[Live]:
    """Start the stack under the current RETRAINFLOW_HOME, wait for and unpause ``dag_ids``; stop it after."""
    from retrainflow.airflow import stack
    from retrainflow.airflow.rest import AirflowClient

    scfg = stack.StackConfig(api_port=free_port(), mlflow_port=free_port(),
                             with_mlflow_server=False, with_triggerer=False)
    info = stack.start(scfg, timeout=240)
    try:
        client = AirflowClient(info.airflow_url, info.username, info.password)
        for dag_id in dag_ids:
            client.wait_for_dag(dag_id, timeout=180)
            client.set_paused(dag_id, False)
        yield Live(client, info, scfg)
    finally:
        stack.stop(scfg)
