"""Start ``retrain__<pipeline>`` through Airflow's REST API (what the monitoring DAG does).

Credentials come from the Airflow connection ``retrainflow_api`` (resolved by the
Task SDK: the ``AIRFLOW_CONN_RETRAINFLOW_API`` environment variable first, then
the connections stored in Airflow), never from code. The run id names the flight
(:func:`retrainflow.stages.monitor.flight_run_id`), so neither a retried monitoring
task nor several concurrent ones start a second retrain: Airflow answers 409 for an
existing run id, which counts as success here.
"""

from __future__ import annotations

import logging
from typing import Any

from retrainflow.airflow.rest import AirflowClient
from retrainflow.exceptions import AirflowApiError

log = logging.getLogger(__name__)

CONNECTION_ID = "retrainflow_api"
ACTIVE_STATES = ("queued", "running")


class RetrainTrigger:
    """Triggers one pipeline's retraining DAG over REST.

    Args:
        client: an authenticated REST client.
        dag_id: ``retrain__<pipeline>``.
    """

    def __init__(self, client: AirflowClient, dag_id: str) -> None:
        self.client = client
        self.dag_id = dag_id

    @classmethod
    def from_connection(cls, dag_id: str, conn_id: str = CONNECTION_ID) -> RetrainTrigger:
        """A trigger whose client is built from Airflow connection ``conn_id``."""
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(conn_id)
        scheme = conn.schema if conn.schema in ("http", "https") else "http"
        port = f":{conn.port}" if conn.port else ""
        client = AirflowClient(
            f"{scheme}://{conn.host}{port}", conn.login or "", conn.password or ""
        )
        return cls(client, dag_id)

    def active_runs(self) -> list[str]:
        """Ids of the retrain runs that are queued or running (for single flight)."""
        return [
            r["dag_run_id"]
            for r in self.client.list_dag_runs(self.dag_id, states=list(ACTIVE_STATES))
        ]

    def trigger(self, run_id: str, conf: dict[str, Any]) -> str:
        """Start the run; returns ``created`` or ``exists`` (a retry of the same check).

        Raises:
            AirflowApiError: 401/403 (credentials), 404 (DAG missing), 422 (bad conf)...
        """
        dag = self.client.get_dag(self.dag_id)
        if dag.get("is_paused"):
            raise AirflowApiError(
                f"{self.dag_id} is paused: a triggered run would wait forever. Unpause it in the "
                'Airflow UI (or PATCH /api/v2/dags/{dag_id} {"is_paused": false}).',
                status=None,
                dag_id=self.dag_id,
                paused=True,
            )
        try:
            self.client.trigger_dag_run(self.dag_id, conf=conf, run_id=run_id)
        except AirflowApiError as exc:
            if exc.status == 409:
                log.info(
                    "retrain run %s already exists: an earlier attempt of this check, or a "
                    "concurrent check, started this flight",
                    run_id,
                )
                return "exists"
            raise
        log.info("triggered %s run %s over REST", self.dag_id, run_id)
        return "created"
