"""The run pages (issue 12): every report one click from the run that made it.

A retrain run links its validation report (HTML: each expectation, the offending
partitions and values), its verdict, MLflow run and version; a monitor run shows its
drift summary and decision and serves Evidently's report to readers of the DAG only;
a failed run shows its error. Artifacts come from real stage runs (validate on a
broken copy of the trained base's window, a monitoring check after the drift point).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.airflow.conftest import Authed
from tests.conftest import FIXTURE_CONFIGS, Trained
from tests.stages.test_monitor import POST_DRIFT, RecordingTrigger

MLFLOW = "http://mlflow.example:5000"
BAD_RUN = "bad-data"
MONITOR_RUN = "scheduled__2023-04-01T00:00:00+00:00"
TRIGGERED = "monitor__synthetic__v1__flight0"


@dataclass(frozen=True)
class Reports:
    """An artifact root holding a failed validation and a drifted monitoring check."""

    root: Path
    #: The rows broken in the validated training window: partition -> values.
    broken: dict[str, list[float]]
    monitor: Any  # MonitorManifest


@pytest.fixture(scope="module")
def reports(
    trained_base: Trained, fork_factory: Any, tmp_path_factory: pytest.TempPathFactory
) -> Reports:
    import pandas as pd

    from retrainflow.artifacts import ArtifactStore
    from retrainflow.config import find_config
    from retrainflow.exceptions import ValidationFailedError
    from retrainflow.manifest import PullManifest
    from retrainflow.registry import Registry
    from retrainflow.stages import monitor, validate

    root = tmp_path_factory.mktemp("reports_root")
    store = ArtifactStore(root)
    # validate: the trained base's warm-start window with x1 (range [-10, 10]) broken on two days
    pull_dir = trained_base.run_dir("base-warm") / "pull"
    pulled = PullManifest.from_dict(json.loads((pull_dir / "manifest.json").read_text()))
    frame = pd.read_parquet(pulled.train.uri)
    days = frame["ts"].dt.strftime("date=%Y-%m-%d")
    first, last = days.iloc[0], days.iloc[-1]
    rows = [*frame.index[days == first][:2], frame.index[days == last][0]]
    frame.loc[rows, "x1"] = [99.5, -42.25, 77.75]
    broken_uri = root / "broken-train.parquet"
    frame.to_parquet(broken_uri)
    bad = replace(
        pulled,
        context=replace(pulled.context, run_id=BAD_RUN),
        train=replace(pulled.train, uri=str(broken_uri)),
    )
    (root / "synthetic" / BAD_RUN).mkdir(parents=True)
    shutil.copytree(pull_dir, root / "synthetic" / BAD_RUN / "pull")
    with pytest.raises(ValidationFailedError):
        validate.run(trained_base.config, bad, store=store)
    # monitor: a check after the drift point, which starts a retrain
    with fork_factory(trained_base):
        manifest = monitor.run(
            find_config("synthetic"),
            monitor.MonitorContext(pipeline="synthetic", run_id=MONITOR_RUN, check_date=POST_DRIFT),
            registry=Registry(),
            store=store,
            trigger=RecordingTrigger(),
        )
    return Reports(root, {first: [99.5, -42.25], last: [77.75]}, manifest)


@pytest.fixture(autouse=True)
def _mlflow_links(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRAINFLOW_MLFLOW_UI_URL", MLFLOW)


# -- a retrain run ----------------------------------------------------------------------------


def test_retrain_page_puts_verdict_and_report_links_first(trained: Trained) -> None:
    from retrainflow.airflow.ui import run_html

    page = run_html("retrain__synthetic", "base-warm")
    promoted = json.loads((trained.run_dir("base-warm") / "promote" / "manifest.json").read_text())
    assert page.index("id='verdict'") < page.index("<h3 id='stage-pull'>")
    assert "evaluation gate passed" in page or "evaluation gate failed" in page
    assert "roc_auc: challenger" in page
    assert (
        "id='validation-report-link' href='/retrainflow/run/retrain__synthetic/base-warm/validation'"
        in page
    )
    assert f"href='{MLFLOW}/#/runs/{promoted['run_id']}'" in page and ">MLflow run<" in page
    assert f"href='{MLFLOW}/#/models/synthetic/versions/2'" in page
    assert ">model version 2<" in page
    assert "not reached" not in page and "run-error" not in page
    # the six stages, each done
    for stage in ("pull", "validate", "features", "train", "evaluate", "promote"):
        assert f"<h3 id='stage-{stage}'>{stage}</h3>" in page


def test_links_follow_the_prefix_the_app_is_mounted_under(trained: Trained) -> None:
    from retrainflow.airflow.ui import run_html

    page = run_html("retrain__synthetic", "base-warm", base="/airflow/retrainflow")
    assert "href='/airflow/retrainflow/run/retrain__synthetic/base-warm/validation'" in page


def test_validation_page_shows_every_expectation_and_the_offending_partitions(
    reports: Reports,
) -> None:
    from retrainflow.airflow.ui_reports import validation_html

    page = validation_html("retrain__synthetic", BAD_RUN, artifact_root=reports.root)
    assert page is not None
    assert "validation failed" in page and "validation_failed" in page
    table = page[page.index("id='expectations-train'") :]
    table = table[: table.index("</table>")]
    assert "<tr class='fail'><td>expect_column_values_to_be_between</td><td>x1</td>" in table
    assert "<td>within [-10, 10]</td>" in table and "3 values" in table
    assert table.count("<td class='ok'>pass</td>") >= 10
    failures = page[page.index("id='failures-train'") :]
    for partition, values in reports.broken.items():
        row = failures[failures.index(f"<code class='partition'>{partition}</code>") :]
        row = row[: row.index("</tr>")]
        assert f"<td>{len(values)}</td>" in row
        for value in values:
            assert str(value) in row
    assert "id='failures-holdout'" not in page  # the holdout passed
    assert "href='/retrainflow/run/retrain__synthetic/bad-data'" in page


def test_the_saved_validation_report_carries_partitions_and_outcomes(reports: Reports) -> None:
    report = json.loads(
        (reports.root / "synthetic" / BAD_RUN / "validate" / "report.json").read_text()
    )
    train = report["datasets"][0]
    (failure,) = train["failures"]
    assert failure["column"] == "x1" and failure["observed"]["unexpected_count"] == 3
    assert {p["partition"]: p["rows"] for p in failure["observed"]["partitions"]} == {
        k: len(v) for k, v in reports.broken.items()
    }
    assert [e["success"] for e in train["expectations"]].count(False) == 1


def test_a_failed_validation_shows_its_error_and_the_stages_not_reached(
    reports: Reports,
) -> None:
    from retrainflow.airflow.ui import run_html

    page = run_html("retrain__synthetic", BAD_RUN, artifact_root=reports.root)
    error = page[page.index("id='run-error'") :]
    assert "validate failed" in error and "validation_failed" in error and "x1" in error
    assert page.index("id='run-error'") < page.index("<h3 id='stage-pull'>")
    assert ">validation report<" in page
    for stage in ("features", "train", "evaluate", "promote"):
        section = page[page.index(f"<h3 id='stage-{stage}'>") :]
        assert section.split("<h3", 2)[1].count("not reached") == 1, stage


def test_unknown_run_and_unsafe_run_ids(trained: Trained) -> None:
    from retrainflow.airflow.ui_reports import drift_report, run_html, validation_html

    assert "no artifacts" in run_html("retrain__synthetic", "never-ran")
    assert "log of its failed task" in run_html("retrain__synthetic", "never-ran")
    for run_id in ("..", ".", ""):
        assert "no artifacts" in run_html("retrain__synthetic", run_id)
        assert validation_html("retrain__synthetic", run_id) is None
        assert drift_report("monitor__synthetic", run_id) is None


# -- a failed stage leaves its error ----------------------------------------------------------


def _task_context(monkeypatch: pytest.MonkeyPatch, dag_id: str, run_id: str, **ti: Any) -> None:
    from retrainflow.airflow import dag_factory

    ctx = {
        "dag_run": SimpleNamespace(dag_id=dag_id, run_id=run_id),
        "ti": SimpleNamespace(**{"try_number": 1, "max_tries": 0, **ti}),
    }
    monkeypatch.setattr(dag_factory, "get_current_context", lambda: ctx)


def test_a_refused_conf_leaves_its_error_for_the_run_page(
    home: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the issue: 'no artifacts (yet)', without the error."""
    from airflow.sdk.exceptions import AirflowFailException

    from retrainflow.airflow.dag_factory import _user_errors_fail_fast
    from retrainflow.airflow.ui import run_html
    from retrainflow.runs import parse_request

    run_id = "manual__2024-05-01T10:00:00+00:00"
    _task_context(monkeypatch, "retrain__synthetic", run_id, max_tries=2)

    @_user_errors_fail_fast
    def pull() -> None:  # what the pull task does first with the run's conf
        parse_request({"mode": "sideways"}, pipeline="synthetic")

    with pytest.raises(AirflowFailException, match=r"\[invalid_request\]"):
        pull()
    saved = json.loads(
        (
            home.artifacts
            / "synthetic"
            / "manual__2024-05-01T10_00_00+00_00"
            / "pull"
            / "error.json"
        ).read_text()
    )
    assert saved["code"] == "invalid_request" and saved["task"] == "pull"
    assert saved["will_retry"] is False and "field 'mode'" in saved["message"]

    page = run_html("retrain__synthetic", run_id)
    error = page[page.index("id='run-error'") :]
    assert (
        "pull failed" in error and "invalid_request" in error and "field &#x27;mode&#x27;" in error
    )
    assert "no artifacts" not in page
    assert page.count("not reached") == 5  # validate … promote


def test_an_internal_error_is_saved_and_marked_as_retried(
    home: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retrainflow.airflow.dag_factory import _user_errors_fail_fast
    from retrainflow.airflow.ui import run_html

    _task_context(monkeypatch, "retrain__synthetic", "r1", max_tries=2)

    @_user_errors_fail_fast
    def train() -> None:
        raise RuntimeError("registry at postgresql://mlflow:hunter2@db/mlflow is locked")

    with pytest.raises(RuntimeError):
        train()
    page = run_html("retrain__synthetic", "r1")
    assert "train failed" in page and "internal_error" in page
    assert "RuntimeError: registry at postgresql://mlflow:***@db/mlflow" in page
    assert "hunter2" not in page and "Airflow retries the task" in page


def test_a_failed_check_shows_its_error_without_stages(
    home: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from retrainflow.airflow.dag_factory import _user_errors_fail_fast
    from retrainflow.airflow.ui import run_html
    from retrainflow.exceptions import AirflowApiError

    _task_context(monkeypatch, "monitor__synthetic", "m1")

    @_user_errors_fail_fast
    def check() -> None:  # the check task turns a 4xx of the REST API into a failure
        try:
            raise AirflowApiError("the DAG retrain__synthetic is paused", status=409)
        except AirflowApiError as exc:
            raise AirflowFailException(f"[{exc.code}] {exc.message}") from exc

    with pytest.raises(AirflowFailException):
        check()
    assert (home.artifacts / "synthetic" / "m1" / "monitor" / "error.json").is_file()
    page = run_html("monitor__synthetic", "m1")
    assert "monitor failed" in page and "airflow_api_error" in page and "is paused" in page
    assert "not reached" not in page


# -- a monitor run ----------------------------------------------------------------------------


def test_monitor_page_summarises_the_check(reports: Reports) -> None:
    from retrainflow.airflow.ui import run_html

    m = reports.monitor
    assert m.decision["trigger"] and m.triggered_run_id == TRIGGERED and m.report_uri
    page = run_html("monitor__synthetic", MONITOR_RUN, artifact_root=reports.root)
    assert "not reached" not in page and "run-error" not in page
    decision = page[page.index("id='decision'") :]
    assert "Decision: TRIGGER retrain" in decision
    assert "<code class='reason-code'>drift</code>" in decision
    assert (
        f"<a id='triggered-run-link' href='/retrainflow/run/retrain__synthetic/{TRIGGERED}'>"
        f"{TRIGGERED}</a>" in decision
    )
    drifted = page[page.index("id='drifted-columns'") :]
    drifted = drifted[: drifted.index("</table>")]
    x1 = m.drift["columns"]["x1"]
    assert f"<td>x1</td><td>{x1['method']}</td><td>{x1['score']:.4g}</td>" in drifted
    assert f"{x1['threshold']:.4g}</td><td class='bad'>drifted</td>" in drifted
    for column in m.drift["columns"]:
        assert (f"<td>{column}</td>" in drifted) == (column in m.drift["drifted_columns"])
    assert f"drift share <b>{m.drift['drift_share']:.3g}</b>" in page
    assert "id='prediction-drift'" in page and m.drift["prediction_drift"]["method"] in page
    assert f"champion's live metric: <b>{m.check['metric']:.4g}</b>" in page
    drift_url = f"/retrainflow/run/monitor__synthetic/{MONITOR_RUN.replace(':', '%3A').replace('+', '%2B')}/drift"
    assert f"<a id='drift-report-link' href='{drift_url}'" in page and ">drift report<" in page
    assert f"href='{MLFLOW}/#/runs/{m.mlflow_run_id}'" in page


# -- the routes -------------------------------------------------------------------------------


@pytest.fixture
def app(authed: Authed, reports: Reports, monkeypatch: pytest.MonkeyPatch) -> Iterator[Authed]:
    """The plugin app (``authed``: tests/airflow/conftest.py) reading the artifacts of
    ``reports``."""
    monkeypatch.setenv("RETRAINFLOW_ARTIFACT_ROOT", str(reports.root))
    yield authed


DRIFT = f"/retrainflow/run/monitor__synthetic/{MONITOR_RUN}/drift"
VALIDATION = f"/retrainflow/run/retrain__synthetic/{BAD_RUN}/validation"


def _bearer(app: Authed, user: str = "admin", role: str = "admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {app.token(user, role)}"}


def test_the_drift_report_is_served_from_the_store(app: Authed, reports: Reports) -> None:
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

    saved = Path(reports.monitor.report_uri).read_text()
    resp = app.client.get(DRIFT, headers=_bearer(app))
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/html")
    # Evidently's page (its HTML never names Evidently): the dashboard and its drift widgets
    assert "window.drawDashboard" in saved and "Drift in column" in saved
    assert resp.text == saved and len(saved) > 100_000
    # a viewer's session cookie, as the browser sends it from the tab
    app.client.cookies.set(COOKIE_NAME_JWT_TOKEN, app.token("viewer", "viewer"))
    try:
        assert app.client.get(DRIFT).text == saved
    finally:
        app.client.cookies.clear()


def test_the_validation_route(app: Authed) -> None:
    resp = app.client.get(VALIDATION, headers=_bearer(app))
    assert resp.status_code == 200 and "expect_column_values_to_be_between" in resp.text
    run = app.client.get(f"/retrainflow/run/monitor__synthetic/{MONITOR_RUN}", headers=_bearer(app))
    assert run.status_code == 200 and "id='drift-summary'" in run.text
    # links carry the prefix the app is mounted under
    assert "<a id='drift-report-link' href='/retrainflow/run/monitor__synthetic/" in run.text


@pytest.mark.parametrize("route", [DRIFT, VALIDATION])
def test_reports_need_a_login(app: Authed, route: str) -> None:
    import jwt

    assert app.client.get(route).status_code in (401, 403)
    forged = jwt.encode(
        {"sub": "admin", "role": "admin"}, "not-the-secret-" + "x" * 64, algorithm="HS512"
    )
    resp = app.client.get(route, headers={"Authorization": f"Bearer {forged}"})
    assert resp.status_code in (401, 403) and "<html" not in resp.text.lower()


def test_reports_need_read_access_to_the_dag_and_the_pipeline(app: Authed) -> None:
    headers = _bearer(app, "viewer", "viewer")
    app.denied["viewer"] = {"monitor__synthetic"}
    assert app.client.get(DRIFT, headers=headers).status_code == 403
    assert app.client.get(VALIDATION, headers=headers).status_code == 200
    app.denied["viewer"] = {"retrain__synthetic"}
    for route in (DRIFT, VALIDATION):
        resp = app.client.get(route, headers=headers)
        assert resp.status_code == 403 and "drawDashboard" not in resp.text
    assert app.client.get(DRIFT, headers=_bearer(app)).status_code == 200  # others unaffected


@pytest.mark.parametrize(
    "route",
    [
        "/retrainflow/run/monitor__synthetic/%2E%2E/drift",
        "/retrainflow/run/monitor__synthetic/%2E/drift",
        "/retrainflow/run/monitor__synthetic/..%2F..%2Fsynthetic/drift",
        f"/retrainflow/run/monitor__synthetic/{MONITOR_RUN}/drift/..%2F..%2Fmanifest.json",
        f"/retrainflow/run/monitor__synthetic/{MONITOR_RUN}/monitor_summary.json",
        f"/retrainflow/run/monitor__synthetic/{MONITOR_RUN}/drift_report.html",
        # a monitor run's report through the retrain DAG (other permissions): no such report
        f"/retrainflow/run/retrain__synthetic/{MONITOR_RUN}/drift",
        "/retrainflow/run/retrain__synthetic/%2E%2E/validation",
        f"/retrainflow/run/monitor__synthetic/{BAD_RUN}/validation",
        "/retrainflow/run/retrain__synthetic/never-ran/validation",
        "/retrainflow/run/monitor__synthetic/never-ran/drift",
        "/retrainflow/run/retrain__synthetic/%2E%2E",
    ],
)
def test_only_the_runs_own_reports_are_served(app: Authed, route: str) -> None:
    resp = app.client.get(route, headers=_bearer(app))
    assert resp.status_code == 404, (route, resp.status_code, resp.text[:200])
    assert "Traceback" not in resp.text and "drawDashboard" not in resp.text


def test_the_openapi_spec_lists_the_report_routes(app: Authed) -> None:
    spec = app.client.get("/retrainflow/openapi.json", headers=_bearer(app)).json()
    assert {"/run/{dag_id}/{run_id}/validation", "/run/{dag_id}/{run_id}/drift"} <= set(
        spec["paths"]
    )


# -- the plugin's tab -------------------------------------------------------------------------


def test_the_dag_run_tab_is_named_run_report() -> None:
    path = FIXTURE_CONFIGS.parents[2] / "plugins" / "retrainflow_plugin.py"
    spec = importlib.util.spec_from_file_location("retrainflow_plugin_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    views = {v.get("url_route"): v for v in module.RetrainflowPlugin.external_views}
    assert views["retrainflow_run"]["name"] == "Run report"
    assert views["retrainflow_run"]["destination"] == "dag_run"
    assert "Retrain report" not in path.read_text()
