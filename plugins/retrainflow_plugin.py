"""Airflow plugin: retrainflow's pages inside the Airflow UI (registration only).

* nav: a link to the MLflow UI;
* each DAG: a "Model timeline" tab (a chart of the primary metric over data time with the
  champion periods, promotions, rollbacks, rejected challengers and monitoring checks,
  then the versions and checks as tables; its data as JSON at ``…/data``);
* each DAG run: a "Run report" tab (a retrain run: verdict, stages, errors, links to the
  validation report, the MLflow run and the version; a monitor run: drift summary,
  decision, the retrain it started, the Evidently report);
* on a SQLite metadata DB: the API's write gate (``retrainflow.airflow.admission``).

The pages' FastAPI app requires an Airflow login (see ``retrainflow.airflow.ui``). It is
built on first read of ``fastapi_apps``: only the API server reads it, while every task
process imports this plugin (for macros) and need not pay for the API's security imports.
"""

from functools import cache
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from retrainflow.airflow.admission import WriteGate, limits_from_env
from retrainflow.airflow.ui import create_app, mlflow_ui_url


@cache
def _app() -> Any:
    return create_app()


class _FastAPIApps:
    """The ``fastapi_apps`` attribute, evaluated when read."""

    def __get__(self, obj: object, owner: type | None = None) -> list[dict[str, Any]]:
        return [{"app": _app(), "url_prefix": "/retrainflow", "name": "retrainflow"}]


def _middlewares() -> list[dict[str, Any]]:
    """The write gate in front of the API server, when the stack turned it on (SQLite)."""
    limits = limits_from_env()
    if limits is None:
        return []
    return [{"middleware": WriteGate, "kwargs": {"limits": limits}, "name": "retrainflow-writes"}]


class RetrainflowPlugin(AirflowPlugin):
    name = "retrainflow"
    # Airflow reads these class attributes (hence mutable lists, as in its docs).
    fastapi_apps = _FastAPIApps()
    fastapi_root_middlewares = _middlewares()
    external_views = [  # noqa: RUF012
        {"name": "MLflow", "href": mlflow_ui_url(), "destination": "nav", "category": "browse"},
        {
            "name": "Model timeline",
            "href": "/retrainflow/timeline/{DAG_ID}",
            "destination": "dag",
            "url_route": "retrainflow_timeline",
        },
        {
            "name": "Run report",
            "href": "/retrainflow/run/{DAG_ID}/{RUN_ID}",
            "destination": "dag_run",
            "url_route": "retrainflow_run",
        },
    ]
