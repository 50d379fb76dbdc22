"""Airflow plugin: retrainflow's pages inside the Airflow UI (registration only).

* nav: a link to the MLflow UI;
* each DAG: a "Model timeline" tab (versions, modes, parents, gates, champion periods);
* each DAG run: a "Retrain report" tab (mode, windows, validation, gate verdict, version).
"""

from airflow.plugins_manager import AirflowPlugin

from retrainflow.airflow.ui import create_app, mlflow_ui_url


class RetrainflowPlugin(AirflowPlugin):
    name = "retrainflow"
    # Airflow reads these class attributes (hence mutable lists, as in its docs).
    fastapi_apps = [{"app": create_app(), "url_prefix": "/retrainflow", "name": "retrainflow"}]  # noqa: RUF012
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
