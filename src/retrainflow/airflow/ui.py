"""Pages the Airflow plugin shows inside the Airflow UI (presentation only).

* ``/retrainflow/timeline/{dag_id}`` — a pipeline's model timeline (a tab on each DAG
  page): a chart over data time (each version's metric on its holdout, champion periods,
  promotions, rollbacks, rejections, monitoring checks), then every registered version
  with its mode, parent, data window, gate result and the period it served as champion,
  linked to MLflow; ``/retrainflow/timeline/{dag_id}/data`` serves the chart's data as
  JSON — see :mod:`retrainflow.airflow.ui_timeline`;
* ``/retrainflow/run/{dag_id}/{run_id}`` — what one run did (the "Run report" tab on
  each DAG run page): a retrain run's verdict, stages and errors, a monitor run's drift
  summary and decision; with ``/validation`` (a retrain run's Great Expectations
  report) and ``/drift`` (a monitor run's Evidently report) — see
  :mod:`retrainflow.airflow.ui_reports`.

The pages are rendered from the registry and the artifact store by plain
functions (:func:`timeline_html`, :func:`run_html`) so they are testable
without a server; :func:`create_app` wraps them in a FastAPI app that
``plugins/retrainflow_plugin.py`` registers.

Access: Airflow mounts plugin apps without authentication, so every route of
:func:`create_app` depends on Airflow's auth manager (the dependencies of
``airflow.api_fastapi.core_api.security``): the caller must present the JWT the
UI keeps in its session cookie or an ``Authorization: Bearer`` token from
``POST /auth/token`` (else 401/403), and must be allowed to read the DAG in the
URL *and* the pipeline's ``retrain__<pipeline>`` DAG (else 403). ``/docs`` and
``/openapi.json`` need a logged-in user too. An unknown pipeline is a 404.
Passwords in URLs and values of secret-looking keys are masked in every page.
"""

# No ``from __future__ import annotations`` here: FastAPI must evaluate the annotations of the
# dependencies defined inside create_app() (``GetUserDep``, ``Request``), which are local names.
import html
import os
import re
from pathlib import Path
from typing import Any

STYLE = """
body{font-family:system-ui,sans-serif;margin:1rem;color:#1a202c}
table{border-collapse:collapse;font-size:.9rem}
th,td{border:1px solid #cbd5e0;padding:.3rem .6rem;text-align:left}
th{background:#edf2f7}.ok{color:#276749;font-weight:600}.bad{color:#c53030;font-weight:600}
code{background:#f7fafc;padding:0 .2rem}
"""


def mlflow_ui_url() -> str:
    """Base URL of the MLflow UI that links point to: ``RETRAINFLOW_MLFLOW_UI_URL``, else the
    MLflow server recorded by ``retrainflow up`` in this home (its ``--mlflow-port``)."""
    url = os.environ.get("RETRAINFLOW_MLFLOW_UI_URL")  # set by `up` in the stack's processes
    if url:
        return url.rstrip("/")
    from retrainflow.airflow import stack  # the record (imports requests: only when needed)

    return stack.mlflow_ui_url()


#: ``scheme://user:password@`` — the password part is masked in every page.
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@'\"<>]*:)[^@/\s'\"<>]+@")
#: Keys whose values are masked in the artifact dumps of the run page.
_SECRET_KEY = re.compile(
    r"pass(word|wd)?|secret|token|api[_-]?key|private[_-]?key|credential|authorization|fernet",
    re.IGNORECASE,
)
MASK = "***"


def redact(value: Any) -> Any:
    """``value`` with the values of secret-looking keys and the passwords in URLs masked."""
    if isinstance(value, dict):
        return {
            k: MASK if isinstance(k, str) and _SECRET_KEY.search(k) and v else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _URL_PASSWORD.sub(rf"\g<head>{MASK}@", value)
    return value


def _page(title: str, body: str) -> str:
    return redact(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h2>{html.escape(title)}</h2>{body}</body></html>"
    )


def _esc(value: Any) -> str:
    return "-" if value in (None, "") else html.escape(str(value))


def pipeline_of(dag_id: str) -> str:
    """``retrain__flights`` → ``flights``."""
    return dag_id.split("__", 1)[1] if "__" in dag_id else dag_id


def timeline_html(dag_id: str) -> str:
    """The model timeline page of the pipeline behind ``dag_id``: a chart over data time,
    the versions and the monitoring checks; see :mod:`retrainflow.airflow.ui_timeline`."""
    from retrainflow.airflow import ui_timeline

    return ui_timeline.timeline_html(dag_id)


def run_html(
    dag_id: str,
    run_id: str,
    artifact_root: Path | str | None = None,
    *,
    base: str = "/retrainflow",
) -> str:
    """What one run did, from its stage artifacts (local or ``s3://``); see
    :func:`retrainflow.airflow.ui_reports.run_html`."""
    from retrainflow.airflow import ui_reports

    return ui_reports.run_html(dag_id, run_id, artifact_root, base=base)


def create_app() -> Any:
    """The FastAPI app mounted by the plugin under ``/retrainflow``.

    Every route depends on Airflow's auth manager (see the module docstring); the
    dependencies resolve the user and the permissions per request, through
    ``airflow.api_fastapi.app.get_auth_manager()``, so the app can be built before
    the API server has initialised its auth manager.
    """
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import (
        GetUserDep,
        requires_access_dag,
        requires_authenticated,
    )
    from fastapi import Depends, FastAPI, HTTPException, Request, status
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse, JSONResponse

    from retrainflow import settings
    from retrainflow.config import find_config
    from retrainflow.exceptions import PipelineNotFoundError

    settings.quiet_third_party()
    # FastAPI's own /docs, /redoc and /openapi.json would answer anyone: replaced below.
    app = FastAPI(title="retrainflow", docs_url=None, redoc_url=None, openapi_url=None)

    def read_pipeline(access_entity: DagAccessEntity | None) -> Any:
        """Read access to the DAG in the path and to its pipeline's retrain DAG."""
        dag_in_path = requires_access_dag("GET", access_entity)

        def check(request: Request, user: GetUserDep) -> None:
            dag_in_path(request, user)
            retrain_dag = f"retrain__{pipeline_of(request.path_params['dag_id'])}"
            if retrain_dag != request.path_params["dag_id"]:
                requires_access_dag("GET", access_entity, param_dag_id=retrain_dag)(request, user)

        return Depends(check)

    def known_pipeline(dag_id: str) -> str:
        name = pipeline_of(dag_id)
        try:
            find_config(name)
        except PipelineNotFoundError:
            # Short on purpose: the exception's message names the server's config directory.
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"Unknown pipeline {name[:100]!r}."
            ) from None
        return name

    @app.get("/timeline/{dag_id}", response_class=HTMLResponse, dependencies=[read_pipeline(None)])
    def timeline(dag_id: str) -> str:
        known_pipeline(dag_id)
        return timeline_html(dag_id)

    @app.get("/timeline/{dag_id}/data", dependencies=[read_pipeline(None)])
    def timeline_data(dag_id: str) -> JSONResponse:
        """The timeline's chart data with exact values (``ui_timeline.timeline_data``)."""
        from retrainflow.airflow import ui_timeline
        from retrainflow.jsonsafe import json_safe

        return JSONResponse(redact(json_safe(ui_timeline.timeline_data(known_pipeline(dag_id)))))

    from retrainflow.airflow import ui_reports

    # /run/{dag_id}/{run_id} and its /validation and /drift reports
    ui_reports.add_routes(
        app, run_access=read_pipeline(DagAccessEntity.RUN), known_pipeline=known_pipeline
    )

    logged_in = [Depends(requires_authenticated())]

    @app.get("/openapi.json", include_in_schema=False, dependencies=logged_in)
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=logged_in)
    def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(openapi_url=f"{root}/openapi.json", title="retrainflow")

    return app
