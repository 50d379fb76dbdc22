"""The operator's path through the Airflow UI, in a real browser (headless Chromium).

Against a live embedded stack on 127.0.0.1 with the flights data: log in, open
``retrain__flights``, fill the trigger form, see the run succeed, open the Model
timeline tab and find the version just promoted in the chart and in the table, open
the run's report and follow its link to the validation report, then run a monitoring
check and follow its report's link to the Evidently drift report.

Debian's Chromium (installed by the test with apt when missing), driven by Playwright
through ``executable_path``. Screenshots go to ``test-artifacts/browser/`` (git-ignored;
``RETRAINFLOW_TEST_ARTIFACTS`` moves it): the trigger form, the run, the timeline, the
retrain report, the validation report, the monitor report and the drift report.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import yaml

from tests.airflow.live import explain_run, running_stack, wait_for
from tests.browser import chromium

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[2]
RETRAIN, MONITOR = "retrain__flights", "monitor__flights"
ARTIFACTS = (
    Path(os.environ.get("RETRAINFLOW_TEST_ARTIFACTS") or REPO / "test-artifacts") / "browser"
)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    executable = chromium.executable()  # first: a missing browser fails before the stack starts
    home = tmp_path_factory.mktemp("browser-home")
    config_dir = home / "config"
    config_dir.mkdir()
    cfg = yaml.safe_load((REPO / "config" / "pipelines" / "flights.yaml").read_text())
    # a week after the first champion holds ~6k new rows: let volume alone trigger a retrain;
    # and a drift threshold that March's weather crosses, so the check renders its drift report
    cfg["monitoring"]["policy"].update({"min_new_rows": 1000, "cooldown_hours": 0})
    cfg["monitoring"]["drift"].update({"threshold": 0.02, "share_threshold": 0.1})
    (config_dir / "flights.yaml").write_text(yaml.safe_dump(cfg))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RETRAINFLOW_HOME", str(home))
        mp.setenv("RETRAINFLOW_CONFIG_DIR", str(config_dir))
        for key in ("MLFLOW_TRACKING_URI", "AIRFLOW_CONN_RETRAINFLOW_API"):
            mp.delenv(key, raising=False)
        from retrainflow.config import find_config
        from retrainflow.data.seed import seed

        seed(find_config("flights"), date(2013, 3, 10))
        with running_stack([RETRAIN, MONITOR]) as stack_:
            from playwright.sync_api import sync_playwright

            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=executable, args=chromium.ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(60_000)
                try:
                    yield {
                        "page": page,
                        "client": stack_.client,
                        "url": stack_.info.airflow_url,
                        "password": stack_.info.password,
                    }
                finally:
                    browser.close()


def _shot(page, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _new_run_id(client, dag_id: str, known: set[str]) -> str:
    def new() -> str | None:
        runs = [r["dag_run_id"] for r in client.list_dag_runs(dag_id)]
        fresh = [r for r in runs if r not in known]
        return fresh[0] if fresh else None

    return wait_for(f"a new run of {dag_id}", new, timeout=60)


def test_an_operator_retrains_and_reads_every_report(live: dict) -> None:
    page, client, url = live["page"], live["client"], live["url"]

    # -- log in ------------------------------------------------------------------------------
    page.goto(f"{url}/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", live["password"])
    page.click("button:has-text('Sign in')")
    page.wait_for_url(lambda address: "/auth/login" not in address)

    # -- trigger the retrain through the form ------------------------------------------------------
    page.goto(f"{url}/dags/{RETRAIN}")
    page.wait_for_load_state("networkidle")
    page.locator("button:has-text('Trigger')").first.click()
    dialog = page.get_by_role("dialog")
    dialog.locator("#element_reason").fill("browser test: first champion")
    dialog.locator("#element_window_end").fill("2013-03-01")
    # only what a person sets is in front: no internal params on the form
    form_text = dialog.inner_text()
    assert "reason_codes" not in form_text and "details" not in form_text.split("Advanced")[0]
    _shot(page, "trigger-form")
    known = {r["dag_run_id"] for r in client.list_dag_runs(RETRAIN)}
    dialog.locator("button:has-text('Trigger')").last.click()
    run_id = _new_run_id(client, RETRAIN, known)
    final = client.wait_for_dag_run(RETRAIN, run_id, timeout=900)
    assert final["state"] == "success", explain_run(client, RETRAIN, run_id)
    assert final["conf"]["window_end"] == "2013-03-01"

    # -- the run succeeded, as the UI shows it -----------------------------------------------------
    page.goto(f"{url}/dags/{RETRAIN}/runs/{run_id}")
    page.wait_for_load_state("networkidle")
    assert page.get_by_text("success", exact=False).first.is_visible()
    _shot(page, "retrain-run")

    # -- the Model timeline tab: the version just promoted, in the chart and the table -----------
    from retrainflow.registry import Registry

    champion = Registry().champion("flights")
    assert champion is not None and champion.tags["dag_run_id"] == run_id
    page.goto(f"{url}/dags/{RETRAIN}/plugin/retrainflow_timeline")
    frame = page.frame_locator("iframe").first
    point = frame.locator(f"#timeline-chart [data-version='{champion.version}']").first
    point.wait_for(state="attached")
    row = frame.locator("table tr", has_text=run_id).first
    assert champion.version in row.inner_text()
    _shot(page, "timeline")
    data = page.request.get(f"{url}/retrainflow/timeline/{RETRAIN}/data")
    assert data.ok, data.text()
    versions = {str(v["version"]) for v in data.json()["versions"]}
    assert champion.version in versions

    # -- the run's report, and its validation report one click away -------------------------------
    page.goto(f"{url}/dags/{RETRAIN}/runs/{run_id}/plugin/retrainflow_run")
    report = page.frame_locator("iframe").first
    assert "gate passed" in report.locator("#verdict").inner_text()
    assert f"model version {champion.version}" in report.locator("#model-version-link").inner_text()
    _shot(page, "retrain-report")
    report.locator("#validation-report-link").click()
    expectations = report.locator("[id^='expectations-'] tr.pass")
    expectations.first.wait_for()
    assert expectations.count() > 5 and report.locator("tr.fail").count() == 0
    _shot(page, "validation-report")

    # -- a monitoring check, and its drift report one click away ---------------------------------
    client.trigger_dag_run(MONITOR, conf={"check_date": "2013-03-08"}, run_id="browser_check")
    check = client.wait_for_dag_run(MONITOR, "browser_check", timeout=600)
    assert check["state"] == "success", explain_run(client, MONITOR, "browser_check")
    page.goto(f"{url}/dags/{MONITOR}/runs/browser_check/plugin/retrainflow_run")
    monitor = page.frame_locator("iframe").first
    decision = monitor.locator("#decision").inner_text()
    assert "retrain" in decision.lower(), decision
    assert monitor.locator("#drifted-columns tr").count() >= 2  # a header and a column
    _shot(page, "monitor-report")
    # the tab is a sandboxed iframe (no popups): the report opens inside it
    href = monitor.locator("#drift-report-link").get_attribute("href")
    assert href and href.endswith(f"/run/{MONITOR}/browser_check/drift"), href
    # (Playwright's sync API sees navigations only while one of its calls runs: wait on the event)
    with page.expect_event(
        "framenavigated",
        predicate=lambda f: f.url.endswith("/browser_check/drift"),
        timeout=120_000,
    ) as navigated:
        monitor.locator("#drift-report-link").click()
    frame = navigated.value
    frame.wait_for_load_state()
    assert "Drift" in frame.content()
    _shot(page, "drift-report")

    # the screenshots are there for people to look at
    for name in (
        "trigger-form",
        "retrain-run",
        "timeline",
        "retrain-report",
        "validation-report",
        "monitor-report",
        "drift-report",
    ):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 10_000, name
    (ARTIFACTS / "run.json").write_text(json.dumps({"retrain": run_id, "monitor": "browser_check"}))
