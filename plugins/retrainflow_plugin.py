"""Airflow plugin: retrainflow's pages inside the Airflow UI (registration only).

* nav: a link to the MLflow UI;
* each DAG: a "Model timeline" tab (versions, modes, parents, gates, champion periods);
* each DAG run: a "Retrain report" tab (mode, windows, validation, gate verdict, version).

The pages' FastAPI app requires an Airflow login (see ``retrainflow.airflow.ui``). It is
built on first read of ``fastapi_apps``: only the API server reads it, while every task
process imports this plugin (for macros) and need not pay for the API's security imports.
"""

from functools import cache
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from retrainflow.airflow.ui import create_app, mlflow_ui_url


@cache
def _app() -> Any:
    return create_app()


class _FastAPIApps:
    """The ``fastapi_apps`` attribute, evaluated when read."""

    def __get__(self, obj: object, owner: type | None = None) -> list[dict[str, Any]]:
        return [{"app": _app(), "url_prefix": "/retrainflow", "name": "retrainflow"}]


class RetrainflowPlugin(AirflowPlugin):
    name = "retrainflow"
    # Airflow reads these class attributes (hence mutable lists, as in its docs).
    fastapi_apps = _FastAPIApps()
    external_views = [  # noqa: RUF012
        {"name": "MLflow", "href": mlflow_ui_url(), "destination": "nav", "category": "browse"},
        {
            "name": "Model timeline",
            "href": "/retrainflow/timeline/{DAG_ID}",
            "destination": "dag",
            "url_route": "retrainflow_timeline",
        },
        {
            "name": "Retrain report",
            "href": "/retrainflow/run/{DAG_ID}/{RUN_ID}",
            "destination": "dag_run",
            "url_route": "retrainflow_run",
        },
    ]
