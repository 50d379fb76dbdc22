"""The Model timeline: its data over data time, the SVG chart, the tables and the JSON route.

The history is the trained base (v1 stateless, champion; v2 its warm start, rejected by
the gate) plus a stateless v3 that a monitoring check started with mode ``auto`` and that
became champion, then a rollback from v3 to v1; three monitoring checks in the ledger
(quiet; the retrain of v3; a retrain that stopped after its pull). No server, no network.
"""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.airflow.conftest import Authed
from tests.conftest import Trained

NAME = "synthetic"
DAG = f"retrain__{NAME}"
V3_METRIC = 0.872345678912
VERDICT_REASON = "roc_auc 0.8542 is not better than the champion's 0.8571 by min_delta 0.001"
SVG = "{http://www.w3.org/2000/svg}"


@dataclass(frozen=True)
class History:
    root: Path
    tags: dict[str, dict[str, str]]  # version -> its tags


def _check(day: str, drift: float, metric: float) -> Any:
    from retrainflow.policy import CheckResult

    return CheckResult(
        checked_at=f"{day}T00:00:00+00:00",
        current_rows=1200,
        labelled_rows=1100,
        drift_share=drift,
        drifted_columns=["x1"] if drift else [],
        dataset_drift=drift >= 0.5,
        prediction_drift=False,
        metric=metric,
    )


@pytest.fixture(scope="module")
def history_base(
    trained_base: Trained, fork_factory: Callable[[Trained], AbstractContextManager[Trained]]
) -> Iterator[History]:
    from retrainflow.artifacts import ArtifactStore
    from retrainflow.config import find_config
    from retrainflow.monitoring.ledger import CheckLedger, LedgerEntry
    from retrainflow.registry import Registry

    with fork_factory(trained_base) as fork:
        registry = Registry()
        v1, v2 = registry.get_version(NAME, "1"), registry.get_version(NAME, "2")
        assert not v2.gate_passed and registry.champion(NAME).version == "1"  # type: ignore[union-attr]
        tags = {
            "pipeline": NAME,
            "retrain_run_id": "mon-retrain-1",
            "dag_run_id": "mon-retrain-1",
            "trigger_reason": "monitor: drift",
            "requested_mode": "auto",
            "mode": "stateless",
            "mode_reason": "drift share 0.6 >= severe share 0.5",
            "warm_method": "",
            "parent_version": "",
            "window_start": "2023-01-23",
            "window_end": "2023-02-24",
            "holdout_start": "2023-02-24",
            "holdout_end": "2023-03-01",
            "rows": "4321",
            "gate_passed": "true",
            "primary_metric": "roc_auc",
            "challenger_metric": repr(V3_METRIC),
            "champion_metric": v1.tags["challenger_metric"],
            "champion_at_evaluation": "1",
        }
        v3 = registry.register(NAME, v1.source, None, tags)
        assert v3.version == "3"
        registry.set_champion(NAME, "3", reason="gate passed (monitor: drift)")
        assert registry.rollback(NAME) == ("3", "1")
        cfg = find_config(NAME)
        store = ArtifactStore(cfg.artifact_root_uri())
        store.stage(NAME, "base-warm", "evaluate").write_json(
            "verdict.json", {"passed": False, "reasons": [VERDICT_REASON]}
        )
        store.stage(NAME, "mon-retrain-2", "pull").write_json(
            "report.json", {"success": True, "mode": "warm_start", "mode_reason": "new rows"}
        )
        ledger = CheckLedger(cfg.artifact_root_uri(), NAME)
        quiet = {"trigger": False, "reasons": [], "blocked_by": [], "mode": "auto"}
        fired = {"trigger": True, "reasons": ["drift"], "blocked_by": [], "mode": "auto"}
        for run_id, day, drift, metric, decision, triggered in (
            ("mon-1", "2023-02-27", 0.125, 0.70312, quiet, None),
            ("mon-2", "2023-03-01", 0.6, 0.65, fired, "mon-retrain-1"),
            ("mon-3", "2023-03-03", 0.55, 0.66, fired, "mon-retrain-2"),
        ):
            ledger.record(
                LedgerEntry(
                    run_id=run_id,
                    check=_check(day, drift, metric),
                    decision=decision,
                    triggered_run_id=triggered,
                    triggered_at=f"{day}T00:00:00+00:00" if triggered else None,
                )
            )
        all_tags = {v.version: v.tags for v in registry.versions(NAME)}
        yield History(fork.root, all_tags)


@pytest.fixture
def history(history_base: History, monkeypatch: pytest.MonkeyPatch, helpers: Any) -> History:
    helpers.point_env(monkeypatch, history_base.root)
    monkeypatch.setenv("RETRAINFLOW_MLFLOW_UI_URL", "http://mlflow.test:15000")
    return history_base


def _data() -> dict[str, Any]:
    from retrainflow.airflow.ui_timeline import timeline_data

    return timeline_data(NAME)


# -- the data -----------------------------------------------------------------------------------


def test_versions_over_data_time(history: History) -> None:
    data = _data()
    assert data["primary_metric"] == "roc_auc" and data["lower_is_better"] is False
    versions = {v["version"]: v for v in data["versions"]}
    assert list(versions) == ["1", "2", "3"]
    assert [v["status"] for v in versions.values()] == ["champion", "rejected", "former champion"]
    assert data["current_version"] == "1"
    for version, v in versions.items():
        tags = history.tags[version]
        assert v["metric"] == float(tags["challenger_metric"])  # exact, not rounded
        assert v["gated_on"] == {"start": tags["holdout_start"], "end": tags["holdout_end"]}
    assert versions["3"]["metric"] == V3_METRIC
    assert versions["3"]["gated_on"] == {"start": "2023-02-24", "end": "2023-03-01"}
    assert versions["3"]["champion_metric"] == float(history.tags["1"]["challenger_metric"])
    assert versions["2"]["reasons"] == [VERDICT_REASON] and versions["3"]["reasons"] == []
    # the mode each run resolved to, and what it was asked for
    assert [(v["mode"], v["requested_mode"]) for v in versions.values()] == [
        ("stateless", "stateless"),
        ("warm_start", "auto"),
        ("stateless", "auto"),
    ]
    assert [v["warm_method"] for v in versions.values()] == [None, "append", None]
    assert versions["2"]["parent_version"] == "1"
    assert all(v["mlflow_run_id"] for v in versions.values())


def test_champion_periods_and_events(history: History) -> None:
    data = _data()
    v1_end, v2_end = history.tags["1"]["holdout_end"], history.tags["2"]["holdout_end"]
    assert (v1_end, v2_end) == ("2023-02-15", "2023-02-22")
    periods = data["champion_periods"]
    assert [(p["seq"], p["version"], p["kind"]) for p in periods] == [
        (1, "1", "promotion"),
        (2, "3", "promotion"),
        (3, "1", "rollback"),
    ]
    # crowned at the end of its holdout; the rollback at the newest data any version was
    # gated on by then (v3's own: no newer version, so v3's period has no data time)
    assert [(p["from"], p["to"]) for p in periods] == [
        (v1_end, "2023-03-01"),
        ("2023-03-01", "2023-03-01"),
        ("2023-03-01", None),
    ]
    assert periods[2]["reason"] == "rollback from 3" and periods[2]["until"] is None
    assert periods[1]["reason"] == "gate passed (monitor: drift)"
    events = [(e["kind"], e["version"], e["date"]) for e in data["events"]]
    assert events == [
        ("promotion", "1", v1_end),
        ("rejected", "2", v2_end),
        ("promotion", "3", "2023-03-01"),
        ("rollback", "1", "2023-03-01"),
    ]
    rejected = next(e for e in data["events"] if e["kind"] == "rejected")
    assert rejected["reason"] == VERDICT_REASON and rejected["previous"] == "1"
    assert data["data_time"] == {"start": history.tags["1"]["holdout_start"], "end": "2023-03-03"}


def test_monitoring_checks_show_the_mode_the_retrain_resolved_to(history: History) -> None:
    checks = _data()["checks"]
    assert [(c["run_id"], c["date"], c["drift_share"], c["metric"]) for c in checks] == [
        ("mon-1", "2023-02-27", 0.125, 0.70312),
        ("mon-2", "2023-03-01", 0.6, 0.65),
        ("mon-3", "2023-03-03", 0.55, 0.66),
    ]
    assert [c["decision"] for c in checks] == ["none", "retrain", "retrain"]
    assert [c["requested_mode"] for c in checks] == [None, "auto", "auto"]
    # v3's tag; then the pull report of a run that registered nothing
    assert [(c["mode"], c["mode_source"]) for c in checks] == [
        (None, None),
        ("stateless", "version"),
        ("warm_start", "run"),
    ]
    assert [c["triggered_version"] for c in checks] == [None, "3", None]


def test_without_a_ledger_or_versions(trained: Trained, tmp_path: Path) -> None:
    from retrainflow.airflow.ui_timeline import timeline_data, timeline_svg

    data = timeline_data(NAME, artifact_root=str(tmp_path))  # no checks.jsonl there
    assert data["checks"] == [] and len(data["versions"]) == 2
    assert 'id="timeline-checks"' not in timeline_svg(data)
    empty = timeline_data("nothing_here")
    assert empty["versions"] == [] and empty["data_time"] == {"start": None, "end": None}
    assert timeline_svg(empty) == ""


# -- the chart ----------------------------------------------------------------------------------


def _svg(data: dict[str, Any]) -> ET.Element:
    from retrainflow.airflow.ui_timeline import timeline_svg

    return ET.fromstring(timeline_svg(data))  # well-formed XML


def _all(root: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [e for e in root.iter(SVG + tag) if cls in (e.get("class") or "").split()]


def test_svg_has_each_version_band_event_and_check(history: History) -> None:
    data = _data()
    root = _svg(data)
    assert root.get("id") == "timeline-chart" and root.get("viewBox", "").startswith("0 0 960 ")
    points = {p.get("data-version"): p for p in _all(root, "circle", "version-point")}
    assert set(points) == {"1", "2", "3"}
    assert points["1"].get("data-current") == "true" and points["2"].get("data-gate") == "failed"
    assert points["2"].get("data-status") == "rejected"
    assert points["3"].get("data-status") == "former champion"
    assert float(points["3"].get("data-metric") or 0) == V3_METRIC
    assert points["3"].get("data-holdout-end") == "2023-03-01"
    # a higher metric is drawn higher
    y = {v: float(p.get("cy") or 0) for v, p in points.items()}
    metrics = {v["version"]: v["metric"] for v in data["versions"]}
    assert sorted(y, key=y.__getitem__) == sorted(metrics, key=metrics.__getitem__, reverse=True)
    bands = [
        (b.get("data-seq"), b.get("data-version"), b.get("data-serving"))
        for b in sorted(_all(root, "rect", "band"), key=lambda b: int(b.get("data-seq") or 0))
    ]
    assert bands == [("1", "1", None), ("2", "3", None), ("3", "1", "true")]
    events = {(g.get("data-kind"), g.get("data-version")): g for g in _all(root, "g", "event")}
    assert set(events) == {
        ("promotion", "1"),
        ("promotion", "3"),
        ("rollback", "1"),
        ("rejected", "2"),
    }
    assert events[("rollback", "1")].get("data-latest") == "true"
    tip = events[("rejected", "2")].find(SVG + "title")
    assert tip is not None and VERDICT_REASON in (tip.text or "")
    checks = _all(root, "g", "check")
    assert [c.get("data-run-id") for c in checks] == ["mon-1", "mon-2", "mon-3"]
    decisions = _all(root, "path", "check-decision")
    assert [(d.get("data-mode"), d.get("data-triggered-version")) for d in decisions] == [
        ("stateless", "3"),
        ("warm_start", None),
    ]
    assert (
        len(_all(root, "rect", "check-drift")) == 3
        and len(_all(root, "circle", "check-metric")) == 3
    )
    # everything inside the drawing area
    width = float(root.get("viewBox", "").split()[2])
    for e in root.iter():
        for attr in ("x", "cx", "x1", "x2"):
            if e.get(attr) is not None:
                assert 0 <= float(e.get(attr) or 0) <= width, (e.tag, attr, e.get(attr))


def test_axis_ticks_are_round(history: History) -> None:
    from datetime import date

    from retrainflow.airflow.ui_timeline import date_ticks, nice_ticks

    root = _svg(_data())
    labels = [t.text or "" for t in _all(root, "text", "tick")]
    for label in labels:
        assert re.fullmatch(r"(\d+(\.\d{1,3})?%?|[A-Z][a-z]{2}( \d{1,2})?|\d{4})", label), label
    assert nice_ticks(0.6123, 0.7031) == ([0.6, 0.62, 0.64, 0.66, 0.68, 0.7, 0.72], 2)
    assert nice_ticks(0.0, 0.6, 2) == ([0.0, 0.5, 1.0], 1)
    weeks = date_ticks(date(2023, 1, 28), date(2023, 3, 10))
    assert [d.weekday() for d, _, _ in weeks] == [0] * len(weeks) and len(weeks) <= 8
    assert weeks[0][1:] == ("Jan 30", "2023") and weeks[1][2] == ""
    months = date_ticks(date(2022, 11, 15), date(2023, 6, 1))
    assert [(label, year) for _, label, year in months] == [
        ("Dec", "2022"),
        ("Jan", "2023"),
        ("Feb", ""),
        ("Mar", ""),
        ("Apr", ""),
        ("May", ""),
        ("Jun", ""),
    ]


# -- the page -----------------------------------------------------------------------------------


def test_numbers_are_rounded_for_people() -> None:
    from retrainflow.airflow.ui_timeline import fmt_metric, fmt_share

    assert fmt_metric(0.712345678) == "0.7123"
    assert fmt_metric(0.70001) == "0.7000"
    assert fmt_metric(12.3456) == "12.35"
    assert fmt_metric(1234.6) == "1,235"
    assert fmt_metric(0.000123456) == "0.0001235"
    assert fmt_metric(None) == "-" and fmt_metric(float("nan")) == "undefined"
    assert fmt_share(0.125) == "12%" and fmt_share(0.004) == "0.4%" and fmt_share(0) == "0%"


def _row(page: str, attr: str) -> str:
    match = re.search(rf"<tr [^>]*{attr}[^>]*>(.*?)</tr>", page)
    assert match, attr
    return match.group(1)


def test_page_table_rounds_and_shows_mode_and_warm_method(history: History) -> None:
    from retrainflow.airflow.ui import timeline_html  # still importable from ui

    page = timeline_html(DAG)
    assert page.index('id="timeline-chart"') < page.index("id='timeline-versions'")
    assert "0.8723" in _row(page, "id='version-3'")
    for version, tags in history.tags.items():
        assert tags["challenger_metric"] not in _row(page, f"id='version-{version}'")
    v2 = _row(page, "id='version-2'")
    assert (
        "warm_start" in v2
        and "append" in v2
        and "asked: auto" in v2
        and html.escape(VERDICT_REASON) in v2
    )
    v3 = _row(page, "id='version-3'")
    assert ">stateless<" in v3 and "asked: auto" in v3
    # the monitoring table: the mode the retrain resolved to, not the requested "auto"
    assert re.search(
        r"<td>stateless<div class='muted'>asked: auto</div></td>", _row(page, "data-check='mon-2'")
    )
    assert "<td>warm_start<" in _row(page, "data-check='mon-3'")
    assert "12%" in _row(page, "data-check='mon-1'") and "0.7031" in _row(
        page, "data-check='mon-1'"
    )
    # cells wrap instead of cutting columns off; the chart scales to the frame
    assert "overflow-wrap:anywhere" in page and "width:100%" in page


# -- MLflow links -------------------------------------------------------------------------------


def _mlflow_links(text: str) -> list[str]:
    return re.findall(r"https?://[^\s'\"<>]+#/(?:models|runs)/[^\s'\"<>]+", text)


def test_mlflow_links_use_the_configured_address(
    history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Version and run links go to ``RETRAINFLOW_MLFLOW_UI_URL``, else to the MLflow port
    ``retrainflow up --mlflow-port`` recorded for this home — never to the default 5000."""
    from retrainflow.airflow import stack
    from retrainflow.airflow.ui import timeline_html

    page = timeline_html(DAG)
    links = _mlflow_links(page)
    assert len(links) == 6  # three versions and their MLflow runs
    assert all(link.startswith("http://mlflow.test:15000/#/") for link in links), links

    monkeypatch.delenv("RETRAINFLOW_MLFLOW_UI_URL")
    record = history.root / "stack.json"
    stack._record_address(stack.StackConfig(home=history.root, api_port=18080, mlflow_port=15001))
    try:
        page = timeline_html(DAG)
        data = _data()
    finally:
        record.unlink()
    links = _mlflow_links(page) + _mlflow_links(json.dumps(data))
    assert len(links) == 12
    assert all(link.startswith("http://127.0.0.1:15001/#/") for link in links), links
    assert ":5000" not in page
    assert data["versions"][0]["links"]["run"].endswith(
        f"/#/runs/{data['versions'][0]['mlflow_run_id']}"
    )


# -- the JSON route -----------------------------------------------------------------------------


def test_json_route_serves_exact_values_behind_the_login(
    authed: Authed, history_base: History, monkeypatch: pytest.MonkeyPatch, helpers: Any
) -> None:
    helpers.point_env(monkeypatch, history_base.root)  # the app reads the env per request
    url = f"/retrainflow/timeline/{DAG}/data"
    assert authed.client.get(url).status_code in (401, 403)
    headers = {"Authorization": f"Bearer {authed.token()}"}
    resp = authed.client.get(url, headers=headers)
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert [v["version"] for v in body["versions"]] == ["1", "2", "3"]
    assert body["versions"][2]["metric"] == V3_METRIC
    assert [c["mode"] for c in body["checks"]] == [None, "stateless", "warm_start"]
    assert body["champion_periods"][-1]["kind"] == "rollback"
    # the monitor DAG's tab reads the same pipeline
    same = authed.client.get(f"/retrainflow/timeline/monitor__{NAME}/data", headers=headers)
    assert same.json()["versions"] == body["versions"]
    authed.denied["viewer"] = {DAG}
    viewer = {"Authorization": f"Bearer {authed.token('viewer', 'viewer')}"}
    assert authed.client.get(url, headers=viewer).status_code == 403
    unknown = authed.client.get("/retrainflow/timeline/retrain__nope/data", headers=headers)
    assert unknown.status_code == 404
    page = authed.client.get(f"/retrainflow/timeline/{DAG}", headers=headers)
    assert page.status_code == 200 and 'id="timeline-chart"' in page.text


def test_demo_monitoring_table_shows_the_resolved_mode(history: History) -> None:
    """``retrainflow demo``'s monitoring table: the mode the started retrain resolved to."""
    from retrainflow.config import find_config
    from retrainflow.demo import DemoRow, _resolved_mode

    cfg = find_config(NAME)
    fired = {"trigger": True, "mode": "auto"}
    row = DemoRow("2023-03-01", "mon-retrain-1", "success", "3", "stateless", "1", None, None,
                  True, "3", 1.0)  # fmt: skip
    assert _resolved_mode(cfg, fired, "mon-retrain-1", row) == "stateless"
    assert _resolved_mode(cfg, fired, "mon-retrain-2", None) == "warm_start"  # its pull report
    assert _resolved_mode(cfg, fired, "never-ran", None) == "auto (asked)"
    assert _resolved_mode(cfg, {"trigger": False, "mode": "auto"}, None, None) is None
