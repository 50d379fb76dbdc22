"""The plugin's run pages: what one DAG run did, and the reports it links to.

* ``/retrainflow/run/{dag_id}/{run_id}`` — the "Run report" tab of a DAG run
  (:func:`run_html`). A ``retrain__<pipeline>`` run: the gate's verdict on top, links
  to the validation report, the MLflow run and the registered version, then each
  stage (done / failed with its error / not reached). A ``monitor__<pipeline>`` run:
  the decision and its reason codes, the retrain it started (a link to that run's
  page), the drifted columns with their scores and thresholds, prediction and target
  drift, the champion's live metric, and a link to the full Evidently report.
* ``/retrainflow/run/{dag_id}/{run_id}/validation`` — a retrain run's Great
  Expectations results as HTML (:func:`validation_html`): every expectation with its
  outcome; each failure with the partitions (``date=YYYY-MM-DD``) of the offending rows
  and example values. 404 when the run has no validation report.
* ``/retrainflow/run/{dag_id}/{run_id}/drift`` — a monitor run's full Evidently HTML
  report, streamed from the artifact store (:func:`drift_report`); 404 when none was
  rendered (nothing drifted) or ``dag_id`` is not a monitor DAG.

Every page reads the run's artifacts through the
:class:`~retrainflow.artifacts.ArtifactStore` (local or ``s3://``): ``<stage>/`` files
the stages write, and ``<stage>/error.json``, which the DAG's tasks leave when a stage
fails (``retrainflow.airflow.dag_factory.error_record``: the error's code and message,
also for a conf refused before any stage wrote anything). The files read are fixed
names; the run id is the only part of a path taken from the URL, made path-safe by the
store (``safe_name``), and ``.``/``..`` are refused. Routes are added to the app of
:func:`retrainflow.airflow.ui.create_app` by :func:`add_routes`, with its access
dependencies (Airflow login, read access to the DAG and to the pipeline's retrain
DAG). Secrets are masked (:func:`~retrainflow.airflow.ui.redact`) in every page and
in the streamed report; every value shown is HTML-escaped.

Element ids and link texts (for browser tests): ``#verdict``, ``#run-error``,
``#reports`` with links ``#validation-report-link`` ("validation report"),
``#mlflow-run-link`` ("MLflow run"), ``#model-version-link`` ("model version N");
on a monitor run ``#decision``, ``#triggered-run-link`` (the retrain's run id),
``#drift-summary``, ``#drifted-columns``, ``#prediction-drift``, ``#live-metric``,
``#drift-report-link`` ("drift report"); on the validation page
``#expectations-<dataset>`` tables and ``#failures-<dataset>``.
"""

# No ``from __future__ import annotations``: FastAPI evaluates the annotations of the routes
# defined inside add_routes() (``Request``, a local import).
import codecs
import html
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from retrainflow.airflow.ui import _esc, _page, mlflow_ui_url, pipeline_of, redact

#: Stages of a retrain run, in order, with the file each writes when it succeeds.
RETRAIN_STAGES = (
    ("pull", "manifest.json"),
    ("validate", "manifest.json"),
    ("features", "manifest.json"),
    ("train", "manifest.json"),
    ("evaluate", "verdict.json"),
    ("promote", "manifest.json"),
)
#: The one file the drift route serves, in a monitor run's ``monitor/`` folder.
DRIFT_REPORT = "monitor/drift_report.html"
VALIDATION_REPORT = "validate/report.json"
ERROR_FILE = "error.json"
#: Default URL prefix of the plugin's app (the routes pass the one they are mounted under).
DEFAULT_BASE = "/retrainflow"
_CHUNK = 1 << 20
#: A URL password cannot span these characters (see ``ui._URL_PASSWORD``): the streamed
#: report is redacted chunk by chunk, each cut after one of them.
_CUT = " \t\r\n'\"<>"
_MAX_CARRY = 8 << 20

EXTRA_STYLE = """
.box{border:1px solid #cbd5e0;border-radius:.3rem;padding:.5rem .8rem;margin:.6rem 0}
.box.bad{border-color:#c53030;background:#fff5f5}.box.ok{border-color:#276749;background:#f0fff4}
.big{font-size:1.15rem}.muted{color:#718096}#reports a{margin-right:1rem}
"""


def is_monitor(dag_id: str) -> bool:
    return dag_id.startswith("monitor__")


def is_retrain(dag_id: str) -> bool:
    return dag_id.startswith("retrain__")


def valid_run_id(run_id: str) -> bool:
    """Whether ``run_id`` names a run folder (not ``.``/``..`` once made path-safe)."""
    from retrainflow.artifacts import safe_name

    return safe_name(run_id) not in ("", ".", "..")


def run_url(base: str, dag_id: str, run_id: str, page: str = "") -> str:
    """The URL of a run's page (``page``: ``""``, ``"validation"`` or ``"drift"``)."""
    url = f"{base}/run/{quote(dag_id, safe='')}/{quote(run_id, safe='')}"
    return f"{url}/{page}" if page else url


def _run_dir(name: str, run_id: str, artifact_root: Path | str | None) -> Any:
    from retrainflow.artifacts import ArtifactStore
    from retrainflow.config import find_config

    root = artifact_root or find_config(name).artifact_root_uri()
    return ArtifactStore(root).run(name, run_id)


def _read(run_dir: Any, rel: str) -> dict[str, Any] | None:
    """A JSON file of the run (secret-looking keys masked), or None when absent."""
    if not run_dir.exists(rel):
        return None
    data = run_dir.read_json(rel)
    return redact(data) if isinstance(data, dict) else {"value": redact(data)}


def _dump(run_dir: Any, rel: str, data: Any) -> str:
    return (
        f"<details><summary>{html.escape(run_dir.uri(rel))}</summary><pre>"
        f"{html.escape(json.dumps(data, indent=2)[:20000])}</pre></details>"
    )


def _link(href: str, text: str, element_id: str, *, new_tab: bool = False) -> str:
    target = " target='_blank' rel='noopener'" if new_tab else ""
    return f"<a id='{element_id}' href='{html.escape(href)}'{target}>{html.escape(text)}</a>"


def _num(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _esc(value)
    return html.escape(f"{value:.{digits}g}") if isinstance(value, float) else str(value)


def _error_line(err: dict[str, Any]) -> str:
    """``[code] message`` of a saved error."""
    code = err.get("code")
    return f"[{_esc(code)}] {_esc(err.get('message'))}" if code else _esc(err.get("message"))


def _stage_error(run_dir: Any, stage: str) -> dict[str, Any] | None:
    """The error a stage left: its ``error.json``, else a failed ``report.json``'s error."""
    err = _read(run_dir, f"{stage}/{ERROR_FILE}")
    if err is not None:
        return err
    report = _read(run_dir, f"{stage}/report.json")
    if report is not None and not report.get("success", True):
        found = report.get("error") or {}
        if not found.get("message"):  # a report without its error: word its failures
            found = {
                **found,
                "message": "; ".join(
                    f["message"] for d in report.get("datasets", []) for f in d.get("failures", [])
                )
                or "failed",
            }
        return found
    return None


def _error_box(stage: str, err: dict[str, Any]) -> str:
    retry = ""
    if err.get("will_retry"):
        retry = f" <span class='muted'>(attempt {_esc(err.get('attempt'))}; Airflow retries the task)</span>"
    return (
        f"<div id='run-error' class='box bad'><p class='bad big'>{html.escape(stage)} failed: "
        f"<code class='error-code'>{_esc(err.get('code'))}</code></p>"
        f"<pre class='error-message'>{_esc(err.get('message'))}</pre>{retry}</div>"
    )


# -- the run page -----------------------------------------------------------------------------


def run_html(
    dag_id: str,
    run_id: str,
    artifact_root: Path | str | None = None,
    *,
    base: str = DEFAULT_BASE,
) -> str:
    """What one run did, from its artifacts: a monitor run's check, or a retrain run's stages.

    Args:
        dag_id: ``retrain__<pipeline>`` or ``monitor__<pipeline>``.
        run_id: The DAG run's id.
        artifact_root: The store's root (default: the pipeline's ``artifact_root``).
        base: The URL prefix the plugin's app is mounted under, for links between pages.
    """
    name = pipeline_of(dag_id)
    title = f"{name}: run {run_id}"
    if not valid_run_id(run_id):
        return _page(title, "<p>This run has written no artifacts (yet).</p>")
    run_dir = _run_dir(name, run_id, artifact_root)
    if not run_dir.is_dir():
        return _page(
            title,
            "<p>This run has written no artifacts (yet).</p><p class='muted'>If it failed "
            "before any stage started (a task killed or that could not start), the error is "
            "in the log of its failed task in Airflow.</p>",
        )
    body = (
        _monitor_body(name, run_id, run_dir, base)
        if is_monitor(dag_id)
        else _retrain_body(name, dag_id, run_id, run_dir, base)
    )
    return _page(title, f"<style>{EXTRA_STYLE}</style>{body}")


def _retrain_body(name: str, dag_id: str, run_id: str, run_dir: Any, base: str) -> str:
    errors: list[tuple[str, dict[str, Any]]] = []
    sections: list[str] = []
    for stage, done_file in RETRAIN_STAGES:
        done = run_dir.exists(f"{stage}/{done_file}")
        err = _stage_error(run_dir, stage)
        if err is not None and not done:
            errors.append((stage, err))
        sections.append(_stage_section(run_dir, stage, done, err))
    if run_dir.exists(f"crown/{ERROR_FILE}"):  # the manual approval's last task
        err = _stage_error(run_dir, "crown") or {}
        errors.append(("crown", err))
        sections.append(f"<h3>crown</h3><p class='bad'>failed: {_error_line(err)}</p>")

    top = [_error_box(*errors[0])] if errors else []
    verdict = _read(run_dir, "evaluate/verdict.json")
    if verdict is not None:
        top.append(_verdict_box(verdict))
    top.append(_reports_links(name, dag_id, run_id, run_dir, base))
    return "".join(top) + "".join(sections)


def _stage_section(run_dir: Any, stage: str, done: bool, err: dict[str, Any] | None) -> str:
    head = f"<h3 id='stage-{stage}'>{stage}</h3>"
    main = {"pull": "report.json", "validate": "report.json", "evaluate": "verdict.json"}.get(
        stage, "manifest.json"
    )
    data = _read(run_dir, f"{stage}/{main}")
    if not done and err is None and data is None:
        return f"{head}<p class='muted stage-status'>not reached</p>"
    parts = [head]
    if err is not None and not done:
        parts.append(f"<p class='bad stage-status'>failed: {_error_line(err)}</p>")
    elif err is not None:
        parts.append(
            f"<p class='muted'>an earlier attempt failed ({_error_line(err)}); "
            "a retry succeeded</p>"
        )
    if data is not None:
        parts.append(_summary(stage, data) if done or stage in ("pull", "validate") else "")
        parts.append(_dump(run_dir, f"{stage}/{main}", data))
    return "".join(parts)


def _summary(stage: str, data: dict[str, Any]) -> str:
    if stage in ("pull", "validate") and not data.get("success", True):
        return ""  # the error line above says it
    if stage == "pull":
        train, holdout = data.get("train") or {}, data.get("holdout") or {}
        return (
            f"<p>mode <code>{_esc(data.get('mode'))}</code> ({_esc(data.get('mode_reason'))}); "
            f"train {_esc(train.get('rows'))} rows "
            f"[{_esc(train.get('start'))}, {_esc(train.get('end'))}), "
            f"holdout {_esc(holdout.get('rows'))} rows</p>"
        )
    if stage == "validate":
        warnings = "".join(f"<li>{_esc(w)}</li>" for w in data.get("warnings") or [])
        return "<p class='ok'>all expectations met</p>" + (
            f"<ul>{warnings}</ul>" if warnings else ""
        )
    if stage == "features":
        return (
            f"<p>{len(data.get('feature_names') or [])} features, {_esc(data.get('rows'))} rows"
            f"{'; transformer reused from the parent' if data.get('frozen') else ''}</p>"
        )
    if stage == "train":
        return (
            f"<p>{_esc(data.get('estimator'))} ({_esc(data.get('mode'))}) on "
            f"{_esc(data.get('rows'))} rows, {_num(data.get('train_wall_seconds'), 3)} s "
            f"({_esc(data.get('engine'))})</p>"
        )
    if stage == "evaluate":
        cls, word = ("ok", "passed") if data.get("passed") else ("bad", "failed")
        reasons = "".join(f"<li>{_esc(r)}</li>" for r in data.get("reasons", []))
        return f"<p class='{cls}'>gate {word}</p><ul>{reasons}</ul>"
    return (
        f"<p>registered <code>{_esc(data.get('model_uri'))}</code>; champion is version "
        f"{_esc(data.get('champion_version'))}"
        f"{' (awaiting approval)' if data.get('awaiting_approval') else ''}</p>"
    )


def _verdict_box(verdict: dict[str, Any]) -> str:
    """The evaluation gate's verdict, on top of a retrain run's page."""
    passed = bool(verdict.get("passed"))
    metric = verdict.get("primary_metric")
    challenger = (verdict.get("challenger") or {}).get(metric)
    champion = (verdict.get("champion") or {}).get(metric) if verdict.get("champion") else None
    against = (
        f" vs champion v{_esc(verdict.get('champion_version'))} {_num(champion)}"
        if champion is not None
        else " (no champion)"
    )
    reasons = "".join(f"<li>{_esc(r)}</li>" for r in verdict.get("reasons") or [])
    return (
        f"<div id='verdict' class='box {'ok' if passed else 'bad'}'>"
        f"<p class='big {'ok' if passed else 'bad'}'>evaluation gate "
        f"{'passed' if passed else 'failed'}</p>"
        f"<p>{_esc(metric)}: challenger {_num(challenger)}{against} "
        f"on {_esc(verdict.get('rows'))} future rows</p><ul>{reasons}</ul></div>"
    )


def _reports_links(name: str, dag_id: str, run_id: str, run_dir: Any, base: str) -> str:
    links = []
    if run_dir.exists(VALIDATION_REPORT):
        links.append(
            _link(
                run_url(base, dag_id, run_id, "validation"),
                "validation report",
                "validation-report-link",
            )
        )
    promoted = _read(run_dir, "promote/manifest.json")
    if promoted is not None:
        mlflow = mlflow_ui_url()
        if promoted.get("run_id"):
            links.append(
                _link(
                    f"{mlflow}/#/runs/{quote(str(promoted['run_id']), safe='')}",
                    "MLflow run",
                    "mlflow-run-link",
                    new_tab=True,
                )
            )
        version = promoted.get("version")
        if version:
            model = _model_name(promoted.get("model_uri"), name)
            links.append(
                _link(
                    f"{mlflow}/#/models/{quote(model, safe='')}/versions/{quote(str(version), safe='')}",
                    f"model version {version}",
                    "model-version-link",
                    new_tab=True,
                )
            )
    if not links:
        return ""
    return f"<p id='reports'>{''.join(links)}</p>"


def _model_name(model_uri: Any, default: str) -> str:
    """``models:/<name>/<version>`` → ``<name>``."""
    if isinstance(model_uri, str) and model_uri.startswith("models:/"):
        return model_uri.removeprefix("models:/").rsplit("/", 1)[0] or default
    return default


# -- a monitor run ----------------------------------------------------------------------------


def _monitor_body(name: str, run_id: str, run_dir: Any, base: str) -> str:
    manifest = _read(run_dir, "monitor/manifest.json")
    err = _stage_error(run_dir, "monitor")
    parts = []
    if err is not None and manifest is None:
        parts.append(_error_box("monitor", err))
    if manifest is None:
        if err is None:
            parts.append("<p>The check has not finished (no monitor/manifest.json yet).</p>")
        return "".join(parts)
    if err is not None:
        parts.append(
            f"<p class='muted'>an earlier attempt failed ({_error_line(err)}); "
            "a retry succeeded</p>"
        )
    ctx = manifest.get("context") or {}
    check = manifest.get("check") or {}
    drift = manifest.get("drift") or {}
    parts.append(_decision_box(name, manifest, base))
    parts.append(
        f"<p>checked window ends {_esc(ctx.get('check_date'))} (exclusive); champion "
        f"v{_esc(manifest.get('champion_version'))}; {_esc(check.get('current_rows'))} current "
        f"rows ({_esc(check.get('labelled_rows'))} labelled), "
        f"{_esc(drift.get('reference_rows'))} reference rows</p>"
    )
    parts.append(_drift_summary(drift, check))
    links = []
    if run_dir.exists(DRIFT_REPORT):
        links.append(
            _link(
                # In the frame itself: Airflow's plugin tab is a sandboxed iframe without
                # allow-popups, where a new-tab link does nothing (seen in the browser test).
                run_url(base, f"monitor__{name}", run_id, "drift"),
                "drift report",
                "drift-report-link",
            )
            + " <span class='muted'>(Evidently's full report)</span>"
        )
    else:
        links.append(
            "<span id='drift-report-link' class='muted'>no full drift report: "
            "Evidently's report is rendered only when drift is detected</span>"
        )
    if manifest.get("mlflow_run_id"):
        links.append(
            _link(
                f"{mlflow_ui_url()}/#/runs/{quote(str(manifest['mlflow_run_id']), safe='')}",
                "MLflow run",
                "mlflow-run-link",
                new_tab=True,
            )
        )
    parts.append(f"<p id='reports'>{''.join(links)}</p>")
    parts.append(_dump(run_dir, "monitor/manifest.json", manifest))
    return "".join(parts)


def _decision_box(name: str, manifest: dict[str, Any], base: str) -> str:
    decision = manifest.get("decision") or {}
    trigger = bool(decision.get("trigger"))
    explain = manifest.get("explain") or []
    head = explain[0] if explain else ("TRIGGER retrain" if trigger else "NO TRIGGER")
    codes = "".join(
        f"<code class='reason-code'>{_esc(c)}</code> " for c in decision.get("reasons") or []
    )
    blocked = "".join(
        f"<code class='blocked-by'>{_esc(c)}</code> " for c in decision.get("blocked_by") or []
    )
    lines = "".join(f"<li>{_esc(line.strip())}</li>" for line in explain[1:])
    triggered = manifest.get("triggered_run_id")
    if triggered:
        run = (
            "<p>started retrain "
            + _link(
                run_url(base, f"retrain__{name}", str(triggered)),
                str(triggered),
                "triggered-run-link",
            )
            + f" ({_esc(manifest.get('trigger_status'))})</p>"
        )
    else:
        run = f"<p>no retrain started ({_esc(manifest.get('trigger_status'))})</p>"
    return (
        f"<div id='decision' class='box {'bad' if trigger else 'ok'}'>"
        f"<p class='big'>Decision: {_esc(head)}</p>"
        f"<p>reason codes: {codes or '-'}{f'; blocked by: {blocked}' if blocked else ''}; "
        f"mode {_esc(decision.get('mode'))} ({_esc(decision.get('mode_reason'))})</p>"
        f"{run}<ul>{lines}</ul></div>"
    )


def _column_row(name: str, col: dict[str, Any]) -> str:
    side = "<" if col.get("drift_when") == "below" else "≥"
    cls = "bad" if col.get("drifted") else "ok"
    return (
        f"<tr><td>{_esc(name)}</td><td>{_esc(col.get('method'))}</td>"
        f"<td>{_num(col.get('score'))}</td><td>{html.escape(side)} {_num(col.get('threshold'))}</td>"
        f"<td class='{cls}'>{'drifted' if col.get('drifted') else 'no drift'}</td></tr>"
    )


_COLUMN_HEAD = (
    "<tr><th>column</th><th>test</th><th>score</th><th>drift when</th><th>verdict</th></tr>"
)


def _drift_summary(drift: dict[str, Any], check: dict[str, Any]) -> str:
    """Drift share, the drifted columns, prediction/target drift, the live metric."""
    if not drift:
        return (
            "<div id='drift-summary'><p>No drift was measured (no champion, or no rows in "
            "the checked window).</p></div>"
        )
    columns: dict[str, Any] = drift.get("columns") or {}
    drifted = [c for c in drift.get("drifted_columns") or [] if c in columns]
    others = [c for c in columns if c not in drifted]
    parts = [
        f"<p>drift share <b>{_num(drift.get('drift_share'), 3)}</b> "
        f"(threshold {_num(drift.get('share_threshold'), 3)}): "
        f"{len(drifted)} of {len(columns)} columns drifted; dataset drift "
        f"<b>{'yes' if drift.get('dataset_drift') else 'no'}</b>"
    ]
    if drift.get("key_features_drifted"):
        parts.append(f"; key features drifted: {_esc(', '.join(drift['key_features_drifted']))}")
    parts.append("</p>")
    if drifted:
        rows = "".join(_column_row(c, columns[c]) for c in drifted)
        parts.append(f"<table id='drifted-columns'>{_COLUMN_HEAD}{rows}</table>")
    else:
        parts.append("<p id='drifted-columns'>no column drifted</p>")
    if others:
        rows = "".join(_column_row(c, columns[c]) for c in others)
        parts.append(
            f"<details><summary>the {len(others)} other columns</summary>"
            f"<table>{_COLUMN_HEAD}{rows}</table></details>"
        )
    for key, label in (("prediction_drift", "prediction"), ("target_drift", "target")):
        col = drift.get(key)
        element = key.replace("_", "-")
        if col:
            parts.append(
                f"<p id='{element}'>{label} drift: "
                f"<span class='{'bad' if col.get('drifted') else 'ok'}'>"
                f"{'drifted' if col.get('drifted') else 'no drift'}</span> "
                f"({_esc(col.get('method'))} {_num(col.get('score'))}, threshold "
                f"{_num(col.get('threshold'))})</p>"
            )
        else:
            parts.append(f"<p id='{element}' class='muted'>{label} drift: not measured</p>")
    perf = drift.get("performance") or {}
    metric = check.get("metric")
    metrics = ", ".join(f"{_esc(k)} {_num(v)}" for k, v in perf.items())
    if metrics:
        metrics = f" ({metrics}; on {_esc(drift.get('labelled_rows'))} labelled rows)"
    parts.append(f"<p id='live-metric'>champion's live metric: <b>{_num(metric)}</b>{metrics}</p>")
    return f"<div id='drift-summary'><h3>Drift summary</h3>{''.join(parts)}</div>"


# -- the validation report ------------------------------------------------------------------


def validation_html(
    dag_id: str,
    run_id: str,
    artifact_root: Path | str | None = None,
    *,
    base: str = DEFAULT_BASE,
) -> str | None:
    """A retrain run's Great Expectations results (``validate/report.json``) as a page;
    None when the run has no validation report."""
    name = pipeline_of(dag_id)
    if not valid_run_id(run_id):
        return None
    run_dir = _run_dir(name, run_id, artifact_root)
    report = _read(run_dir, VALIDATION_REPORT)
    if report is None:
        return None
    ok = bool(report.get("success"))
    parts = [
        f"<p>{_link(run_url(base, dag_id, run_id), 'back to the run report', 'run-report-link')}</p>",
        f"<div id='validation-result' class='box {'ok' if ok else 'bad'}'>"
        f"<p class='big {'ok' if ok else 'bad'}'>"
        f"{'all expectations met' if ok else 'validation failed'}</p>",
    ]
    if not ok and report.get("error"):
        parts.append(f"<pre class='error-message'>{_error_line(report['error'])}</pre>")
    parts.append("</div>")
    if report.get("schema_change"):
        parts.append(f"<p class='bad'>schema change: {_esc(report['schema_change'])}</p>")
    warnings = "".join(f"<li>{_esc(w)}</li>" for w in report.get("warnings") or [])
    if warnings:
        parts.append(f"<p>warnings:</p><ul>{warnings}</ul>")
    for dataset in report.get("datasets") or []:
        parts.append(_dataset_section(dataset))
    parts.append(_dump(run_dir, VALIDATION_REPORT, report))
    return _page(
        f"{name}: run {run_id}: validation", f"<style>{EXTRA_STYLE}</style>{''.join(parts)}"
    )


def _anchor(text: Any) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(text))


def _dataset_section(dataset: dict[str, Any]) -> str:
    name = dataset.get("dataset")
    ok = bool(dataset.get("success"))
    failures: list[dict[str, Any]] = dataset.get("failures") or []
    stats = dataset.get("statistics") or {}
    parts = [
        f"<h3>{_esc(name)}: {_esc(dataset.get('rows'))} rows, "
        f"<span class='{'ok' if ok else 'bad'}'>{'passed' if ok else 'failed'}</span> "
        f"<span class='muted'>({_esc(stats.get('successful_expectations'))} of "
        f"{_esc(stats.get('evaluated_expectations'))} expectations met)</span></h3>"
    ]
    expectations: list[dict[str, Any]] = dataset.get("expectations") or []
    if expectations:
        rows = []
        for e in expectations:
            mine = [
                f
                for f in failures
                if f.get("expectation") == e.get("expectation")
                and f.get("column") == e.get("column")
            ]
            if e.get("success"):
                result = "<td class='ok'>pass</td>"
            else:
                why = "<br>".join(_esc(f.get("message")) for f in mine) or (
                    "column missing" if e.get("column") else "failed"
                )
                result = f"<td class='bad'>fail: {why}</td>"
            rows.append(
                f"<tr class='{'pass' if e.get('success') else 'fail'}'>"
                f"<td>{_esc(e.get('expectation'))}</td><td>{_esc(e.get('column'))}</td>"
                f"<td>{_esc(e.get('expected'))}</td>{result}</tr>"
            )
        parts.append(
            f"<table id='expectations-{_anchor(name)}'><tr><th>expectation</th><th>column</th>"
            f"<th>requires</th><th>result</th></tr>{''.join(rows)}</table>"
        )
    if failures:
        items = "".join(_failure_item(f) for f in failures)
        parts.append(f"<h4>failures</h4><ol id='failures-{_anchor(name)}'>{items}</ol>")
    return "".join(parts)


def _failure_item(failure: dict[str, Any]) -> str:
    observed = failure.get("observed")
    obs = observed if isinstance(observed, dict) else {}
    head = (
        f"<li><p><b>{_esc(failure.get('message'))}</b> "
        f"<span class='muted'>({_esc(failure.get('expectation'))})</span></p>"
    )
    examples = obs.get("examples")
    extra = (
        f"<p>example values: <code class='examples'>{_esc(json.dumps(examples))}</code></p>"
        if examples
        else ""
    )
    partitions = obs.get("partitions")
    if partitions:
        rows = "".join(
            f"<tr><td><code class='partition'>{_esc(p.get('partition') or 'no time')}</code></td>"
            f"<td>{_esc(p.get('rows'))}</td>"
            f"<td><code>{_esc(json.dumps(p.get('examples')) if p.get('examples') else '')}</code></td></tr>"
            for p in partitions
        )
        total = obs.get("partitions_total")
        more = (
            f"<p class='muted'>{len(partitions)} of {_esc(total)} partitions shown</p>"
            if total
            else ""
        )
        extra += (
            "<table class='partitions'><tr><th>partition</th><th>offending rows</th>"
            f"<th>example values</th></tr>{rows}</table>{more}"
        )
    return head + extra + "</li>"


# -- the Evidently report ---------------------------------------------------------------------


def drift_report(
    dag_id: str, run_id: str, artifact_root: Path | str | None = None
) -> Iterator[str] | None:
    """The chunks of a monitor run's Evidently HTML report (``monitor/drift_report.html``),
    secrets masked; None when ``dag_id`` is no monitor DAG or the run rendered no report."""
    if not is_monitor(dag_id) or not valid_run_id(run_id):
        return None
    run_dir = _run_dir(pipeline_of(dag_id), run_id, artifact_root)
    if not run_dir.exists(DRIFT_REPORT):
        return None
    return _redacted_chunks(run_dir.file(DRIFT_REPORT))


def _redacted_chunks(location: Any) -> Iterator[str]:
    """The text of ``location`` in ~1 MiB chunks, each cut after a character no URL password
    spans, with :func:`redact` applied to each."""
    from retrainflow.artifacts import filesystem

    fs, path = filesystem(location)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    carry = ""
    with fs.open_input_stream(path) as stream:
        while True:
            data = stream.read(_CHUNK)
            text = carry + decoder.decode(data, final=not data)
            if not data:
                if text:
                    yield redact(text)
                return
            cut = max(text.rfind(c) for c in _CUT) + 1
            if cut <= 0 and len(text) < _MAX_CARRY:
                carry = text
                continue
            cut = cut if cut > 0 else len(text)
            carry = text[cut:]
            yield redact(text[:cut])


# -- routes ---------------------------------------------------------------------------------


def add_routes(app: Any, *, run_access: Any, known_pipeline: Callable[[str], str]) -> None:
    """Add the run pages to the plugin's app.

    Args:
        app: The FastAPI app of :func:`retrainflow.airflow.ui.create_app`.
        run_access: Its dependency for reading a DAG's runs (login, DAG read access).
        known_pipeline: Its check of the pipeline in a DAG id (404 when unknown).
    """
    from fastapi import HTTPException, Request, status
    from fastapi.responses import HTMLResponse, StreamingResponse

    def base_of(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    def not_found(detail: str) -> HTTPException:
        return HTTPException(status.HTTP_404_NOT_FOUND, detail)

    def checked(dag_id: str, run_id: str) -> None:
        known_pipeline(dag_id)
        if not valid_run_id(run_id):
            raise not_found("No such run.")

    @app.get("/run/{dag_id}/{run_id}", response_class=HTMLResponse, dependencies=[run_access])
    def run(dag_id: str, run_id: str, request: Request) -> str:
        checked(dag_id, run_id)
        return run_html(dag_id, run_id, base=base_of(request))

    @app.get(
        "/run/{dag_id}/{run_id}/validation",
        response_class=HTMLResponse,
        dependencies=[run_access],
    )
    def validation(dag_id: str, run_id: str, request: Request) -> str:
        checked(dag_id, run_id)
        page = (
            validation_html(dag_id, run_id, base=base_of(request)) if is_retrain(dag_id) else None
        )
        if page is None:
            raise not_found("This run has no validation report.")
        return page

    @app.get(
        "/run/{dag_id}/{run_id}/drift",
        response_class=StreamingResponse,
        dependencies=[run_access],
    )
    def drift(dag_id: str, run_id: str) -> StreamingResponse:
        checked(dag_id, run_id)
        chunks = drift_report(dag_id, run_id)
        if chunks is None:
            raise not_found("This run has no drift report.")
        return StreamingResponse(
            chunks,
            media_type="text/html; charset=utf-8",
            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"},
        )
