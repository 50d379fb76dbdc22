"""The plugin's pages render from the registry and the artifact store."""

from __future__ import annotations

from tests.conftest import Trained


def test_timeline_lists_every_version_with_lineage_and_gate(trained: Trained) -> None:
    from retrainflow.airflow.ui import timeline_html

    page = timeline_html("retrain__synthetic")
    assert page.count("<tr>") == 3  # header + two versions
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


def test_fastapi_app_serves_both_pages(trained: Trained) -> None:
    from fastapi.testclient import TestClient

    from retrainflow.airflow.ui import create_app

    client = TestClient(create_app())
    assert client.get("/timeline/retrain__synthetic").status_code == 200
    resp = client.get("/run/retrain__synthetic/base-stateless")
    assert resp.status_code == 200 and "text/html" in resp.headers["content-type"]
