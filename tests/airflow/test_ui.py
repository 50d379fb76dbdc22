"""The plugin's pages render from the registry and the artifact store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.airflow.conftest import UNIT_JWT_SECRET, Authed
from tests.conftest import FIXTURE_CONFIGS, Trained


def test_timeline_lists_every_version_with_lineage_and_gate(trained: Trained) -> None:
    from retrainflow.airflow.ui import timeline_html

    page = timeline_html("retrain__synthetic")
    assert page.count("<tr id='version-") == 2  # two versions
    assert ">v1<" in page and ">v2<" in page
    assert "stateless" in page and "warm_start" in page
    assert "/#/models/synthetic/versions/2" in page
    assert ("passed" in page) and "champion" in page


def test_timeline_of_a_pipeline_without_versions(trained: Trained) -> None:
    from retrainflow.airflow.ui import timeline_html

    assert "No registered versions yet" in timeline_html("retrain__nothing_here")


def test_run_report_summarises_each_stage(trained: Trained) -> None:
    from retrainflow.airflow.ui import run_html

    page = run_html("retrain__synthetic", "base-warm")
    assert "mode <code>warm_start</code>" in page
    assert "all expectations met" in page
    assert "gate passed" in page or "gate failed" in page
    assert "models:/synthetic/2" in page


def test_run_report_of_an_unknown_run(trained: Trained) -> None:
    from retrainflow.airflow.ui import run_html

    assert "no artifacts" in run_html("retrain__synthetic", "never-ran")


def test_fastapi_app_serves_both_pages(authed: Authed) -> None:
    headers = {"Authorization": f"Bearer {authed.token()}"}
    assert (
        authed.client.get("/retrainflow/timeline/retrain__synthetic", headers=headers).status_code
        == 200
    )
    resp = authed.client.get("/retrainflow/run/retrain__synthetic/base-stateless", headers=headers)
    assert resp.status_code == 200 and "text/html" in resp.headers["content-type"]


# -- access: every route depends on Airflow's auth manager -----------------------------------

PIPELINE_ROUTES = [
    "/timeline/retrain__synthetic",
    "/timeline/retrain__synthetic/data",
    "/run/retrain__synthetic/base-warm",
]
ROUTES = [*PIPELINE_ROUTES, "/docs", "/openapi.json"]


@pytest.mark.parametrize("route", ROUTES)
def test_anonymous_requests_are_refused(authed: Authed, route: str) -> None:
    resp = authed.client.get("/retrainflow" + route)
    assert resp.status_code in (401, 403), resp.text
    assert "<table" not in resp.text and "models:/" not in resp.text and "paths" not in resp.text


@pytest.mark.parametrize("route", ROUTES)
def test_a_forged_or_foreign_token_is_refused(authed: Authed, route: str) -> None:
    import jwt

    forged = jwt.encode(
        {"sub": "admin", "role": "admin"}, "not-the-secret-" + "x" * 64, algorithm="HS512"
    )
    for headers in ({"Authorization": f"Bearer {forged}"}, {"Authorization": "Bearer junk"}):
        assert authed.client.get("/retrainflow" + route, headers=headers).status_code in (401, 403)


@pytest.mark.parametrize("route", ROUTES)
def test_logged_in_users_see_every_page(authed: Authed, route: str) -> None:
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

    bearer = authed.client.get(
        "/retrainflow" + route, headers={"Authorization": f"Bearer {authed.token()}"}
    )
    assert bearer.status_code == 200, bearer.text
    # the UI's session: the JWT in Airflow's cookie (what the browser sends to the tab's iframe)
    authed.client.cookies.set(COOKIE_NAME_JWT_TOKEN, authed.token("viewer", "viewer"))
    try:
        cookie = authed.client.get("/retrainflow" + route)
    finally:
        authed.client.cookies.clear()
    assert cookie.status_code == 200, cookie.text
    assert cookie.text == bearer.text


def test_pages_show_what_they_showed_before(authed: Authed) -> None:
    headers = {"Authorization": f"Bearer {authed.token()}"}
    timeline = authed.client.get("/retrainflow/timeline/retrain__synthetic", headers=headers)
    assert ">v1<" in timeline.text and ">v2<" in timeline.text and "warm_start" in timeline.text
    run = authed.client.get("/retrainflow/run/retrain__synthetic/base-warm", headers=headers)
    assert "mode <code>warm_start</code>" in run.text
    spec = authed.client.get("/retrainflow/openapi.json", headers=headers).json()
    assert set(spec["paths"]) == {
        "/timeline/{dag_id}",
        "/timeline/{dag_id}/data",
        "/run/{dag_id}/{run_id}",
        "/run/{dag_id}/{run_id}/validation",
        "/run/{dag_id}/{run_id}/drift",
    }
    docs = authed.client.get("/retrainflow/docs", headers=headers)
    assert "/retrainflow/openapi.json" in docs.text
    assert authed.client.get("/retrainflow/redoc", headers=headers).status_code == 404


def test_dag_level_permissions_are_respected(authed: Authed) -> None:
    """Reading pipeline P needs read access to the DAG in the URL and to ``retrain__P``."""
    authed.denied["viewer"] = {"retrain__synthetic"}
    headers = {"Authorization": f"Bearer {authed.token('viewer', 'viewer')}"}
    for route in [*PIPELINE_ROUTES, "/timeline/monitor__synthetic"]:
        resp = authed.client.get("/retrainflow" + route, headers=headers)
        assert resp.status_code == 403, (route, resp.text)
        assert "v1" not in resp.text
    authed.denied["viewer"] = {"monitor__synthetic"}
    assert (
        authed.client.get("/retrainflow/timeline/monitor__synthetic", headers=headers).status_code
        == 403
    )
    assert (
        authed.client.get("/retrainflow/timeline/retrain__synthetic", headers=headers).status_code
        == 200
    )
    # another user is not affected
    other = {"Authorization": f"Bearer {authed.token('admin', 'admin')}"}
    assert (
        authed.client.get("/retrainflow/timeline/monitor__synthetic", headers=other).status_code
        == 200
    )


@pytest.mark.parametrize(
    "route",
    [
        "/timeline/retrain__no_such_pipeline",
        "/run/retrain__no_such_pipeline/some-run",
        "/timeline/retrain__Not..A..Name",
    ],
)
def test_unknown_pipeline_is_a_short_404(authed: Authed, route: str) -> None:
    resp = authed.client.get(
        "/retrainflow" + route, headers={"Authorization": f"Bearer {authed.token()}"}
    )
    assert resp.status_code == 404, resp.text
    assert resp.json()["detail"].startswith("Unknown pipeline")
    assert "Traceback" not in resp.text and "/" not in resp.json()["detail"]
    assert str(FIXTURE_CONFIGS) not in resp.text


def test_a_path_as_pipeline_is_no_route(authed: Authed) -> None:
    resp = authed.client.get(
        "/retrainflow/run/retrain__..%2F..%2Fetc/x",
        headers={"Authorization": f"Bearer {authed.token()}"},
    )
    assert resp.status_code == 404 and "Traceback" not in resp.text


def test_no_secret_in_any_page(trained: Trained, tmp_path: Path) -> None:
    """Artifact dumps mask secret-looking keys and passwords in URLs; the JWT secret of the
    environment never appears."""
    from retrainflow.airflow.ui import run_html

    stage = tmp_path / "synthetic" / "leaky" / "promote"
    stage.mkdir(parents=True)
    (stage / "manifest.json").write_text(
        json.dumps(
            {
                "model_uri": "models:/synthetic/3",
                "tracking_uri": "postgresql://mlflow:hunter2-pw@db:5432/mlflow",
                "api_password": "s3cret-value",
                "nested": [{"jwt_secret": UNIT_JWT_SECRET, "rows": 3}],
            }
        )
    )
    page = run_html("retrain__synthetic", "leaky", artifact_root=tmp_path)
    assert "models:/synthetic/3" in page and "postgresql://mlflow:***@db:5432/mlflow" in page
    for secret in ("hunter2-pw", "s3cret-value", UNIT_JWT_SECRET):
        assert secret not in page
