"""Pages the Airflow plugin shows inside the Airflow UI (presentation only).

* ``/retrainflow/timeline/{dag_id}`` — a pipeline's model timeline: every
  registered version with its mode, parent, data window, gate result and the
  period it served as champion, linked to MLflow (a tab on each DAG page);
* ``/retrainflow/run/{dag_id}/{run_id}`` — what one retrain run did: the
  resolved mode, the windows, the validation result, the gate verdict and the
  registered version (a tab on each DAG run page).

The pages are rendered from the registry and the artifact store by plain
functions (:func:`timeline_html`, :func:`run_html`) so they are testable
without a server; :func:`create_app` wraps them in a FastAPI app that
``plugins/retrainflow_plugin.py`` registers.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

from retrainflow.artifacts import safe_name

STYLE = """
body{font-family:system-ui,sans-serif;margin:1rem;color:#1a202c}
table{border-collapse:collapse;font-size:.9rem}
th,td{border:1px solid #cbd5e0;padding:.3rem .6rem;text-align:left}
th{background:#edf2f7}.ok{color:#276749;font-weight:600}.bad{color:#c53030;font-weight:600}
code{background:#f7fafc;padding:0 .2rem}
"""


def mlflow_ui_url() -> str:
    """Base URL of the MLflow UI that links point to (``RETRAINFLOW_MLFLOW_UI_URL``)."""
    return os.environ.get("RETRAINFLOW_MLFLOW_UI_URL", "http://127.0.0.1:5000").rstrip("/")


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h2>{html.escape(title)}</h2>{body}</body></html>"
    )


def _esc(value: Any) -> str:
    return "-" if value in (None, "") else html.escape(str(value))


def pipeline_of(dag_id: str) -> str:
    """``retrain__flights`` → ``flights``."""
    return dag_id.split("__", 1)[1] if "__" in dag_id else dag_id


def _periods_cell(periods: list[dict[str, Any]]) -> str:
    """A version's champion periods, one line each: ``#seq since → until`` (``seq`` orders the
    periods of all versions: a version rolled back to has several)."""
    return (
        "<br>".join(
            f"#{p['seq']} {_esc(p['since'])} → {_esc(p['until']) if p['until'] else 'serving'}"
            for p in periods
        )
        or "-"
    )


def timeline_html(dag_id: str) -> str:
    """The model timeline page of the pipeline behind ``dag_id``."""
    from retrainflow.registry import Registry, history

    name = pipeline_of(dag_id)
    rows = history(Registry(), name)
    if not rows:
        return _page(f"{name}: model timeline", "<p>No registered versions yet.</p>")
    mlflow = mlflow_ui_url()
    cells = []
    for r in reversed(rows):
        gate = (
            "<span class='ok'>passed</span>"
            if r["gate_passed"]
            else "<span class='bad'>failed</span>"
        )
        link = f"<a href='{mlflow}/#/models/{html.escape(name)}/versions/{r['version']}' target='_blank'>v{r['version']}</a>"
        cells.append(
            "<tr>"
            + "".join(
                f"<td>{c}</td>"
                for c in (
                    link,
                    _esc(", ".join(r["aliases"])),
                    _esc(r["mode"]),
                    _esc(r["parent_version"]),
                    f"{_esc(r['window_start'])} → {_esc(r['window_end'])}",
                    _esc(r["rows"]),
                    _esc(r["challenger_metric"]),
                    _esc(r["champion_metric"]),
                    gate,
                    _periods_cell(r["champion_periods"]),
                    _esc(r["trigger_reason"]),
                    _esc(r["dag_run_id"]),
                )
            )
            + "</tr>"
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "version",
            "aliases",
            "mode",
            "parent",
            "training window",
            "rows",
            "metric",
            "champion's metric",
            "gate",
            "champion periods (#, from → until)",
            "reason",
            "dag run",
        )
    )
    return _page(f"{name}: model timeline", f"<table><tr>{head}</tr>{''.join(cells)}</table>")


def run_html(dag_id: str, run_id: str, artifact_root: Path | None = None) -> str:
    """What one retrain run did, from its stage artifacts."""
    from retrainflow.config import find_config

    name = pipeline_of(dag_id)
    root = artifact_root or Path(find_config(name).artifact_root_uri())
    run_dir = root / name / safe_name(run_id)
    if not run_dir.is_dir():
        return _page(f"{name}: run {run_id}", "<p>This run has written no artifacts (yet).</p>")
    parts = []
    for stage, file in (
        ("pull", "report.json"),
        ("validate", "report.json"),
        ("evaluate", "verdict.json"),
        ("promote", "manifest.json"),
    ):
        path = run_dir / stage / file
        if not path.is_file():
            parts.append(f"<h3>{stage}</h3><p>not reached</p>")
            continue
        data = json.loads(path.read_text())
        parts.append(
            f"<h3>{stage}</h3>{_summary(stage, data)}"
            f"<details><summary>{html.escape(str(path))}</summary><pre>"
            f"{html.escape(json.dumps(data, indent=2)[:20000])}</pre></details>"
        )
    return _page(f"{name}: run {run_id}", "".join(parts))


def _summary(stage: str, data: dict[str, Any]) -> str:
    if stage in ("pull", "validate") and not data.get("success", True):
        err = data.get("error") or {}
        lines = err.get("message") or "; ".join(
            f["message"] for d in data.get("datasets", []) for f in d.get("failures", [])
        )
        return f"<p class='bad'>failed: {html.escape(str(lines))}</p>"
    if stage == "pull":
        return (
            f"<p>mode <code>{_esc(data.get('mode'))}</code> ({_esc(data.get('mode_reason'))}); "
            f"train {_esc(data.get('train', {}).get('rows'))} rows "
            f"[{_esc(data.get('train', {}).get('start'))}, {_esc(data.get('train', {}).get('end'))}), "
            f"holdout {_esc(data.get('holdout', {}).get('rows'))} rows</p>"
        )
    if stage == "validate":
        return "<p class='ok'>all expectations met</p>"
    if stage == "evaluate":
        cls, word = ("ok", "passed") if data.get("passed") else ("bad", "failed")
        reasons = "".join(f"<li>{html.escape(r)}</li>" for r in data.get("reasons", []))
        return f"<p class='{cls}'>gate {word}</p><ul>{reasons}</ul>"
    return (
        f"<p>registered <code>{_esc(data.get('model_uri'))}</code>; champion is version "
        f"{_esc(data.get('champion_version'))}{' (awaiting approval)' if data.get('awaiting_approval') else ''}</p>"
    )


def create_app() -> Any:
    """The FastAPI app mounted by the plugin under ``/retrainflow``."""
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse

    from retrainflow import settings

    settings.quiet_third_party()
    app = FastAPI(title="retrainflow")

    @app.get("/timeline/{dag_id}", response_class=HTMLResponse)
    def timeline(dag_id: str) -> str:
        return timeline_html(dag_id)

    @app.get("/run/{dag_id}/{run_id}", response_class=HTMLResponse)
    def run(dag_id: str, run_id: str) -> str:
        return run_html(dag_id, run_id)

    return app
