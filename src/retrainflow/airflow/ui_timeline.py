"""The "Model timeline" tab: a chart of the pipeline's versions over data time, then a table.

* :func:`timeline_data` gathers everything from what the platform already records —
  :func:`retrainflow.registry.history` (the versions' lineage tags and champion periods),
  the rejected versions' ``evaluate/verdict.json`` (why the gate failed) and the
  monitoring :class:`~retrainflow.monitoring.ledger.CheckLedger` — into one plain dict
  (exact values; served as JSON by ``GET /retrainflow/timeline/{dag_id}/data``);
* :func:`timeline_svg` draws it as inline SVG (no script, no external file): x is data
  time, y the primary metric, one point per version over the holdout rows its gate
  scored, the champion periods as bands, markers for promotions, rollbacks and rejected
  challengers, and a second panel with the monitoring checks on the same x axis;
* :func:`timeline_html` is the page: the chart, the versions table (numbers rounded for
  people) and the monitoring checks table.

Data time: a version is drawn over its holdout ``[holdout_start, holdout_end)`` (tags of
the version, written by ``promote``). A champion period starts, in data time, at the end
of its version's holdout when a gate crowned it (the day the model could first serve);
a rollback or an approval has no data time of its own, so it is placed at the newest
data any version registered by then was gated on. Periods never go back in data time.
A monitoring check sits at its ``checked_at`` (the check's data time, as the policy uses).

Stable hooks for browser tests: ``svg#timeline-chart``; ``.band[data-version]`` (one per
champion period, ``data-seq``, ``data-serving="true"`` on the open one);
``.version-point[data-version]`` (``data-status``, ``data-current="true"`` on the
champion); ``.event[data-kind=promotion|approval|rollback|rejected][data-version]``
(``data-latest="true"`` on the newest promotion or rollback); ``.check[data-run-id]``
with ``.check-drift``, ``.check-metric`` and ``.check-decision`` inside; table rows
``tr#version-<v>[data-version]`` and ``tr[data-check]``.
"""

from __future__ import annotations

import html
import logging
import math
from datetime import date, datetime, timedelta
from typing import Any

from retrainflow.airflow import ui
from retrainflow.airflow.ui import _esc

log = logging.getLogger(__name__)

#: Most rejected versions whose verdict file is read for the reasons (newest first).
MAX_VERDICT_READS = 50

# -- numbers and dates for people ----------------------------------------------------------


def fmt_metric(value: float | None) -> str:
    """A metric for people: 4 significant digits (``0.7123``, ``12.35``); thousands
    separated from 1,000 on; ``-`` when missing, ``undefined`` when not finite."""
    if value is None:
        return "-"
    if not math.isfinite(value):
        return "undefined"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if value == 0:
        return "0"
    text = f"{value:#.4g}"
    return text.rstrip(".") if "e" not in text else f"{value:.3e}"


def fmt_share(value: float | None) -> str:
    """A share (0..1) as a percentage: ``12%``, ``0.4%``, ``0%``."""
    if value is None or not math.isfinite(value):
        return "-"
    pct = value * 100
    if pct == 0 or pct >= 10:
        return f"{pct:.0f}%"
    return f"{pct:.1f}%"


def fmt_int(value: Any) -> str:
    if value in (None, ""):
        return "-"
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return html.escape(str(value))


def _day(value: Any) -> date | None:
    """The date of an ISO date or datetime string (None if absent or unreadable)."""
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _instant(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def _float(value: Any) -> float | None:
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# -- the data --------------------------------------------------------------------------------


def _period_kind(reason: str) -> str:
    if reason.startswith("rollback"):
        return "rollback"
    if reason.startswith("approved"):
        return "approval"
    return "promotion"


def _verdict(store: Any, pipeline: str, run_id: str | None) -> dict[str, Any] | None:
    """The ``evaluate/verdict.json`` of a retrain run, or None (absent or unreadable)."""
    if not run_id:
        return None
    try:
        run_dir = store.run(pipeline, run_id)
        if not run_dir.exists("evaluate/verdict.json"):
            return None
        data = run_dir.read_json("evaluate/verdict.json")
    except Exception as exc:  # a page must render whatever one artifact holds
        log.warning("timeline of %s: verdict of run %s unreadable: %s", pipeline, run_id, exc)
        return None
    return data if isinstance(data, dict) else None


def pulled_mode(store: Any, pipeline: str, run_id: str) -> str | None:
    """The mode a retrain run resolved to (``stateless``/``warm_start``, where the conf may
    have said ``auto``), from its ``pull/report.json`` in ``store`` (an
    :class:`~retrainflow.artifacts.ArtifactStore`); None when the run wrote none."""
    try:
        run_dir = store.run(pipeline, run_id)
        if not run_dir.exists("pull/report.json"):
            return None
        data = run_dir.read_json("pull/report.json")
    except Exception as exc:  # see _verdict
        log.warning("timeline of %s: pull report of run %s unreadable: %s", pipeline, run_id, exc)
        return None
    mode = data.get("mode") if isinstance(data, dict) else None
    return str(mode) if mode else None


def _version_status(row: dict[str, Any]) -> str:
    if "champion" in row["aliases"]:
        return "champion"
    if not row["gate_passed"]:
        return "rejected"
    if row["champion_periods"]:
        return "former champion"
    return "passed, not champion"


def timeline_data(
    pipeline: str, *, registry: Any = None, artifact_root: str | None = None
) -> dict[str, Any]:
    """Everything the timeline shows, with exact values (see the module docstring).

    Args:
        pipeline: The pipeline's name (``flights``, not the DAG id).
        registry: A :class:`~retrainflow.registry.Registry` (default: the configured one).
        artifact_root: Where the stage artifacts and the check ledger are (default: the
            pipeline's ``artifact_root_uri()``).

    Returns:
        ``{"pipeline", "registered_model", "primary_metric", "lower_is_better",
        "mlflow_ui_url", "data_time", "current_version", "versions", "champion_periods",
        "events", "checks", "drift_share_threshold"}``. Dates are ISO strings;
        ``data_time`` is the extent of all of them. A version's ``gated_on`` is its
        holdout ``[start, end)``, ``metric`` its challenger metric there (exact);
        ``reasons`` the gate's reasons, read for the newest :data:`MAX_VERDICT_READS`
        rejected versions only. A period's ``from``/``to`` place it in data time (``to``
        None: serving); ``kind`` is ``promotion``, ``approval`` or ``rollback``. An event
        is a period's start or a rejection (``kind`` ``rejected``). A check's ``mode`` is
        the mode the retrain it started resolved to (``requested_mode``: the policy's).
    """
    from retrainflow import settings
    from retrainflow.artifacts import ArtifactStore
    from retrainflow.config import find_config
    from retrainflow.core.metrics import lower_is_better
    from retrainflow.exceptions import PipelineNotFoundError
    from retrainflow.monitoring.ledger import CheckLedger
    from retrainflow.registry import Registry, history

    try:
        cfg = find_config(pipeline)
    except PipelineNotFoundError:
        cfg = None
    model = cfg.registered_model_name if cfg else pipeline
    root = artifact_root or (cfg.artifact_root_uri() if cfg else settings.artifact_root())
    store = ArtifactStore(root)
    rows = history(registry or Registry(), model)
    mlflow = ui.mlflow_ui_url()
    holdout_days = cfg.evaluation.holdout_days if cfg else None

    primary = (cfg.evaluation.primary_metric if cfg else None) or next(
        (r["primary_metric"] for r in reversed(rows) if r.get("primary_metric")), None
    )
    versions: list[dict[str, Any]] = []
    verdict_reads = 0
    for row in reversed(rows):  # newest first: the verdict reads go to the newest rejections
        start, end = _day(row.get("holdout_start")), _day(row.get("holdout_end"))
        if start is None and _day(row.get("window_end")) is not None and holdout_days:
            # a version registered before the holdout tags: the holdout follows the training
            # window (windows.holdout: the last holdout_days of the run's window)
            from retrainflow.core import windows

            train_end = _day(row.get("window_end"))
            assert train_end is not None
            held = windows.holdout(train_end + timedelta(days=holdout_days), holdout_days)
            start, end = held.start, held.end
        reasons: list[str] = []
        if not row["gate_passed"] and verdict_reads < MAX_VERDICT_READS:
            verdict_reads += 1
            verdict = _verdict(store, pipeline, row.get("retrain_run_id"))
            reasons = [str(r) for r in (verdict or {}).get("reasons", [])]
        run_id = row.get("mlflow_run_id")
        versions.append(
            {
                "version": row["version"],
                "created": row["created"],
                "status": _version_status(row),
                "aliases": row["aliases"],
                "gate_passed": row["gate_passed"],
                "metric": _float(row.get("challenger_metric")),
                "champion_metric": _float(row.get("champion_metric")),
                "champion_at_evaluation": row.get("champion_at_evaluation") or None,
                "gated_on": {
                    "start": start.isoformat() if start else None,
                    "end": end.isoformat() if end else None,
                },
                "training_window": {"start": row.get("window_start"), "end": row.get("window_end")},
                "mode": row.get("mode") or None,
                "requested_mode": row.get("requested_mode") or None,
                "mode_reason": row.get("mode_reason") or None,
                "warm_method": row.get("warm_method") or None,
                "parent_version": row.get("parent_version") or None,
                "rows": row.get("rows"),
                "trigger_reason": row.get("trigger_reason") or None,
                "dag_run_id": row.get("dag_run_id") or None,
                "retrain_run_id": row.get("retrain_run_id") or None,
                "mlflow_run_id": run_id,
                "reasons": reasons,
                "champion_periods": [p["seq"] for p in row["champion_periods"]],
                "links": {
                    "version": f"{mlflow}/#/models/{model}/versions/{row['version']}",
                    "run": f"{mlflow}/#/runs/{run_id}" if run_id else None,
                },
            }
        )
    versions.reverse()

    # champion periods, placed in data time ----------------------------------------------
    periods = sorted((p for r in rows for p in r["champion_periods"]), key=lambda p: p["seq"])
    gated_end = {v["version"]: _day(v["gated_on"]["end"]) for v in versions}
    created = {v["version"]: _instant(v["created"]) for v in versions}

    def frontier(at: datetime | None) -> date | None:
        """The newest data a version registered by ``at`` was gated on."""
        ends = [
            e
            for version, e in gated_end.items()
            if e is not None and (at is None or (created[version] or at) <= at)
        ]
        return max(ends) if ends else None

    placed: list[dict[str, Any]] = []
    previous: date | None = None
    for p in periods:
        kind = _period_kind(p.get("reason") or "")
        own = gated_end.get(p["version"])
        since = _instant(p["since"])
        start = own if kind == "promotion" and own is not None else frontier(since)
        if start is None or (previous is not None and start < previous):
            start = previous
        placed.append({**p, "kind": kind, "from": start.isoformat() if start else None})
        previous = start or previous
    for n, p in enumerate(placed):
        p["to"] = placed[n + 1]["from"] if n + 1 < len(placed) else None
        if p["to"] is None and p["until"] is not None:
            p["to"] = p["from"]  # closed, with nothing after it (e.g. a deleted alias)

    events: list[dict[str, Any]] = [
        {
            "kind": p["kind"],
            "version": p["version"],
            "seq": p["seq"],
            "date": p["from"],
            "at": p["since"],
            "reason": p["reason"] or "champion",
            "previous": p["previous"],
        }
        for p in placed
    ]
    for v in versions:
        if not v["gate_passed"]:
            events.append(
                {
                    "kind": "rejected",
                    "version": v["version"],
                    "seq": None,
                    "date": v["gated_on"]["end"],
                    "at": v["created"],
                    "reason": "; ".join(v["reasons"]) or "the evaluation gate failed",
                    "previous": v["champion_at_evaluation"],
                }
            )
    # in data time, then wall-clock time (seconds: changes may share one), then the sequence
    events.sort(key=lambda e: (e["date"] or "", e["at"] or "", e["seq"] or 1_000_000))

    # monitoring checks -------------------------------------------------------------------
    by_run = {v["retrain_run_id"]: v for v in versions if v["retrain_run_id"]}
    checks: list[dict[str, Any]] = []
    try:
        entries = CheckLedger(root, pipeline).entries()
    except Exception as exc:  # an unreadable ledger must not take the page down
        log.warning("timeline of %s: check ledger unreadable: %s", pipeline, exc)
        entries = []
    for entry in entries:
        c, d = entry.check, entry.decision
        triggered = entry.triggered_run_id
        version = by_run.get(triggered) if triggered else None
        mode, source = None, None
        if version is not None and version["mode"]:
            mode, source = version["mode"], "version"
        elif triggered:
            mode = pulled_mode(store, pipeline, triggered)
            source = "run" if mode else None
        checks.append(
            {
                "run_id": entry.run_id,
                "date": c.checked_at[:10],
                "checked_at": c.checked_at,
                "current_rows": c.current_rows,
                "labelled_rows": c.labelled_rows,
                "drift_share": c.drift_share,
                "drifted_columns": c.drifted_columns,
                "dataset_drift": c.dataset_drift,
                "metric": c.metric,
                "decision": "retrain"
                if d.get("trigger")
                else ("held" if d.get("reasons") else "none"),
                "reasons": list(d.get("reasons", [])),
                "blocked_by": list(d.get("blocked_by", [])),
                "requested_mode": d.get("mode") if d.get("trigger") else None,
                "mode": mode,
                "mode_source": source,
                "triggered_run_id": triggered,
                "triggered_version": version["version"] if version else None,
            }
        )

    days = [
        d
        for d in (
            *(_day(v["gated_on"][k]) for v in versions for k in ("start", "end")),
            *(_day(p["from"]) for p in placed),
            *(_day(c["date"]) for c in checks),
        )
        if d is not None
    ]
    return {
        "pipeline": pipeline,
        "registered_model": model,
        "primary_metric": primary,
        "lower_is_better": lower_is_better(primary) if primary else False,
        "mlflow_ui_url": mlflow,
        "data_time": {
            "start": min(days).isoformat() if days else None,
            "end": max(days).isoformat() if days else None,
        },
        "versions": versions,
        "champion_periods": placed,
        "events": events,
        "checks": checks,
        "drift_share_threshold": cfg.monitoring.drift.share_threshold if cfg else None,
        "current_version": next(
            (v["version"] for v in versions if v["status"] == "champion"), None
        ),
    }


# -- the chart ---------------------------------------------------------------------------------

#: The SVG's coordinate system (``viewBox``); it scales to the width of the page.
WIDTH = 960
LEFT, RIGHT = 64, 64
MAIN_TOP, MAIN_HEIGHT = 44, 220
CHECKS_GAP, CHECKS_HEIGHT = 30, 92
AXIS_SPACE = 40
#: Band fills, one per version (cycled).
PALETTE = ("#bee3f8", "#c6f6d5", "#fefcbf", "#e9d8fd", "#fed7e2", "#b2f5ea", "#feebc8")
COLORS = {
    "champion": "#276749",
    "former champion": "#2b6cb0",
    "passed, not champion": "#4a5568",
    "rejected": "#c53030",
    "promotion": "#276749",
    "approval": "#276749",
    "rollback": "#c05621",
    "live": "#6b46c1",
    "drift": "#dd6b20",
}


def _nice_step(span: float, target: int) -> float:
    raw = span / max(target, 1)
    if raw <= 0:
        return 1.0
    exp = math.floor(math.log10(raw))
    for mult in (1, 2, 2.5, 5, 10):
        step = mult * 10**exp
        if step >= raw:
            return step
    return 10 ** (exp + 1)


def _decimals(step: float) -> int:
    """Decimals that show every multiple of ``step`` exactly (0.25 -> 2, 5 -> 0)."""
    decimals = max(0, -math.floor(math.log10(step)))
    while decimals < 12 and abs(round(step, decimals) - step) > step * 1e-6:
        decimals += 1
    return decimals


def nice_ticks(lo: float, hi: float, target: int = 5) -> tuple[list[float], int]:
    """Round tick values covering ``[lo, hi]`` and the decimals their labels need."""
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(lo) * 0.05 or 0.05
        lo, hi = lo - pad, hi + pad
    step = _nice_step(hi - lo, target)
    first = math.floor(lo / step) * step
    ticks = []
    n = 0
    while True:
        value = first + n * step
        ticks.append(round(value, 12))
        if value >= hi - step * 1e-9:
            break
        n += 1
    return ticks, _decimals(step)


_MONTH_STEPS = (1, 2, 3, 6, 12)


def date_ticks(start: date, end: date, max_ticks: int = 8) -> list[tuple[date, str, str]]:
    """Ticks ``(day, label, second line)`` between ``start`` and ``end``: whole days,
    weeks (Mondays), months or years, at most about ``max_ticks``; the second line holds
    the year on the first tick and wherever the year changes."""
    span = max((end - start).days, 1)
    ticks: list[date] = []
    monthly = True
    for step in (1, 2, 7, 14):
        if span / step <= max_ticks:
            monthly = False
            first = start if step < 7 else start + timedelta(days=(7 - start.weekday()) % 7)
            day = first
            while day <= end:
                ticks.append(day)
                day += timedelta(days=step)
            break
    if monthly:
        months = next((m for m in _MONTH_STEPS if span / (30.44 * m) <= max_ticks), None)
        if months is None:
            months = 12 * math.ceil(span / (365.25 * max_ticks))
        index = start.year * 12 + start.month - 1
        if start.day != 1:
            index += 1
        index += -index % months
        while True:
            day = date(index // 12, index % 12 + 1, 1)
            if day > end:
                break
            ticks.append(day)
            index += months
    out = []
    year = None
    for day in ticks:
        if monthly:
            label = day.strftime("%b")
        else:
            label = f"{day.strftime('%b')} {day.day}"
        second = str(day.year) if day.year != year else ""
        year = day.year
        out.append((day, label, second))
    return out


def _attrs(**values: Any) -> str:
    """``key="value"`` pairs (``data_version`` → ``data-version``), escaped; None is left out."""
    return " ".join(
        f'{k.rstrip("_").replace("_", "-")}="{html.escape(str(v), quote=True)}"'
        for k, v in values.items()
        if v is not None
    )


def _num(value: float) -> str:
    return f"{value:.1f}"


def timeline_svg(data: dict[str, Any]) -> str:
    """The chart of :func:`timeline_data` as an inline ``<svg>`` (empty string: nothing to draw)."""
    versions = [v for v in data["versions"] if v["gated_on"]["end"] and v["metric"] is not None]
    checks = data["checks"]
    if data["data_time"]["start"] is None or not (versions or data["champion_periods"] or checks):
        return ""
    start = date.fromisoformat(data["data_time"]["start"])
    end = date.fromisoformat(data["data_time"]["end"])
    pad = max(1, round((end - start).days * 0.03))
    start, end = start - timedelta(days=pad), end + timedelta(days=pad)
    span = (end - start).days
    plot_w = WIDTH - LEFT - RIGHT
    main_bottom = MAIN_TOP + MAIN_HEIGHT
    checks_top = main_bottom + CHECKS_GAP
    bottom = checks_top + CHECKS_HEIGHT if checks else main_bottom
    height = bottom + AXIS_SPACE

    def x(day: date | str) -> float:
        d = date.fromisoformat(day) if isinstance(day, str) else day
        return LEFT + (d - start).days / span * plot_w

    metric = data["primary_metric"] or "metric"
    values = [v["metric"] for v in versions]
    y_ticks, y_dec = nice_ticks(min(values), max(values)) if values else ([0.0, 1.0], 1)
    y_lo, y_hi = y_ticks[0], y_ticks[-1]

    def y(value: float) -> float:
        return main_bottom - (value - y_lo) / ((y_hi - y_lo) or 1) * MAIN_HEIGHT

    esc = html.escape
    parts: list[str] = []
    direction = "lower is better" if data["lower_is_better"] else "higher is better"
    title = (
        f"{data['pipeline']}: {metric} of each version on the rows its gate scored, "
        "champion periods and monitoring checks over data time"
    )
    parts.append(
        f'<svg id="timeline-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'role="img" aria-labelledby="timeline-chart-title" preserveAspectRatio="xMinYMin meet" '
        f"{_attrs(data_pipeline=data['pipeline'], data_metric=metric, data_start=start.isoformat(), data_end=end.isoformat())}>"
        f'<title id="timeline-chart-title">{esc(title)}</title>'
    )
    # grid and axes ------------------------------------------------------------------------
    grid = ['<g id="timeline-axes" class="axes">']
    x_ticks = date_ticks(start, end)
    for day, label, second in x_ticks:
        gx = _num(x(day))
        grid.append(
            f'<line class="grid" x1="{gx}" x2="{gx}" y1="{MAIN_TOP}" y2="{bottom}"/>'
            f'<text class="tick x" {_attrs(data_date=day.isoformat())} x="{gx}" y="{bottom + 15}">{esc(label)}</text>'
        )
        if second:
            grid.append(f'<text class="tick x year" x="{gx}" y="{bottom + 29}">{second}</text>')
    for value in y_ticks:
        gy = _num(y(value))
        grid.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{gy}" y2="{gy}"/>'
            f'<text class="tick y" x="{LEFT - 6}" y="{gy}">{value:.{y_dec}f}</text>'
        )
    grid.append(
        f'<text class="axis-label" x="{LEFT - 50}" y="{MAIN_TOP - 14}">{esc(metric)} ({direction})</text>'
        f'<rect class="frame" x="{LEFT}" y="{MAIN_TOP}" width="{plot_w}" height="{MAIN_HEIGHT}"/>'
        "</g>"
    )
    # champion bands ---------------------------------------------------------------------
    bands = ['<g id="timeline-bands">']
    narrow: list[str] = []  # periods without data time of their own: drawn thin, on top
    colors: dict[str, str] = {}
    for p in data["champion_periods"]:
        if p["from"] is None:
            continue
        color = colors.setdefault(p["version"], PALETTE[len(colors) % len(PALETTE)])
        x0 = x(p["from"])
        x1 = x(p["to"]) if p["to"] is not None else WIDTH - RIGHT
        serving = p["until"] is None
        thin = x1 - x0 < 3
        label = f"v{p['version']}" + (" (serving)" if serving else "")
        tip = (
            f"v{p['version']} champion #{p['seq']} from {p['from']} in data time "
            f"({p['since']} → {p['until'] or 'now'}): {p['reason'] or 'champion'}"
            + (" (no new data in between)" if thin else "")
        )
        group = [
            f'<g class="band-group" {_attrs(data_version=p["version"], data_seq=p["seq"])}>'
            f"<title>{esc(tip)}</title>"
            f'<rect class="band{" narrow" if thin else ""}" {_attrs(data_version=p["version"], data_seq=p["seq"], data_kind=p["kind"], data_from=p["from"], data_to=p["to"], data_serving="true" if serving else None)} '
            f'x="{_num(x0 - 1.5 if thin else x0)}" y="{MAIN_TOP}" width="{_num(3 if thin else x1 - x0)}" '
            f'height="{MAIN_HEIGHT}" fill="{color}"/>'
        ]
        if x1 - x0 >= 22:
            group.append(
                f'<text class="band-label" {_attrs(data_version=p["version"])} x="{_num(x0 + 4)}" '
                f'y="{MAIN_TOP + 13}">{esc(label if x1 - x0 >= 80 else "v" + p["version"])}</text>'
            )
        group.append("</g>")
        (narrow if thin else bands).append("".join(group))
    bands += [*narrow, "</g>"]
    # the champion's gate metric, period by period (how the champion moved) ----------------
    step: list[str] = []
    by_version = {v["version"]: v for v in data["versions"]}
    for p in data["champion_periods"]:
        v = by_version.get(p["version"])
        if p["from"] is None or v is None or v["metric"] is None:
            continue
        x0 = x(p["from"])
        x1 = x(p["to"]) if p["to"] is not None else WIDTH - RIGHT
        step.append(f"M{_num(x0)},{_num(y(v['metric']))}H{_num(x1)}")
    champion_line = (
        f'<path id="timeline-champion-line" class="champion-line" d="{"".join(step)}"/>'
        if step
        else ""
    )
    # version points ---------------------------------------------------------------------
    points = ['<g id="timeline-points">']
    current = data.get("current_version")
    for v in versions:
        x0, x1 = x(v["gated_on"]["start"] or v["gated_on"]["end"]), x(v["gated_on"]["end"])
        cx, cy = (x0 + x1) / 2, y(v["metric"])
        color = COLORS.get(v["status"], "#4a5568")
        tip = (
            f"v{v['version']} ({v['status']}): {metric} {fmt_metric(v['metric'])} on "
            f"{v['gated_on']['start']} → {v['gated_on']['end']}"
            + (
                f" vs champion v{v['champion_at_evaluation']} {fmt_metric(v['champion_metric'])}"
                if v["champion_at_evaluation"]
                else ""
            )
            + f"; {v['mode'] or '?'}"
            + (f" ({v['warm_method']})" if v["warm_method"] else "")
        )
        is_current = v["version"] == current
        points.append(
            f'<a href="#version-{esc(v["version"])}" class="version-link">'
            f'<g class="version" {_attrs(data_version=v["version"])}><title>{esc(tip)}</title>'
            f'<line class="holdout" x1="{_num(x0)}" x2="{_num(x1)}" y1="{_num(cy)}" y2="{_num(cy)}" stroke="{color}"/>'
            f'<circle class="version-point" {_attrs(data_version=v["version"], data_status=v["status"], data_metric=v["metric"], data_gate="passed" if v["gate_passed"] else "failed", data_holdout_start=v["gated_on"]["start"], data_holdout_end=v["gated_on"]["end"], data_current="true" if is_current else None)} '
            f'cx="{_num(cx)}" cy="{_num(cy)}" r="{6 if is_current else 4.5}" fill="{"#fff" if not v["gate_passed"] else color}" stroke="{color}"/>'
            f'<text class="point-label" x="{_num(cx)}" y="{_num(cy - 9)}">v{esc(v["version"])}</text>'
            "</g></a>"
        )
    points.append("</g>")
    # events -----------------------------------------------------------------------------
    marks = ['<g id="timeline-events">']
    stacked: dict[int, int] = {}  # markers at (about) the same x go one above the other
    latest = next(
        (e for e in reversed(data["events"]) if e["kind"] != "rejected" and e["date"]), None
    )
    for e in data["events"]:
        if e["date"] is None:
            continue
        ex = x(e["date"])
        kind = e["kind"]
        color = COLORS.get(kind, "#c53030")
        when = f"{e['date']} in data time, {e['at']}" if e["at"] else e["date"]
        tip = f"v{e['version']} {kind}: {e['reason']} ({when})"
        attrs = _attrs(
            data_kind=kind,
            data_version=e["version"],
            data_seq=e["seq"],
            data_date=e["date"],
            data_reason=e["reason"],
            data_latest="true" if e is latest else None,
        )
        if kind == "rejected":
            v = by_version.get(e["version"])
            if v is None or v["metric"] is None or v["gated_on"]["end"] is None:
                continue
            x0 = x(v["gated_on"]["start"] or v["gated_on"]["end"])
            cx, cy = (x0 + x(v["gated_on"]["end"])) / 2, y(v["metric"])
            marks.append(
                f'<g class="event" {attrs}><title>{esc(tip)}</title>'
                f'<path class="marker" d="M{_num(cx - 5)},{_num(cy - 5)}L{_num(cx + 5)},{_num(cy + 5)}'
                f'M{_num(cx - 5)},{_num(cy + 5)}L{_num(cx + 5)},{_num(cy - 5)}" stroke="{color}"/></g>'
            )
            continue
        slot = round(ex / 10)
        level = stacked.get(slot, 0)
        stacked[slot] = stacked[slot - 1] = stacked[slot + 1] = level + 1
        top = MAIN_TOP - 3 - 13 * min(level, 2)
        shape = (
            f'<path class="marker" d="M{_num(ex - 6)},{top - 10}L{_num(ex + 6)},{top - 10}L{_num(ex)},{top}Z" fill="{color}"/>'
            if kind in ("promotion", "approval")
            else f'<path class="marker" d="M{_num(ex)},{top - 12}L{_num(ex + 6)},{top - 6}L{_num(ex)},{top}L{_num(ex - 6)},{top - 6}Z" fill="{color}"/>'
        )
        marks.append(
            f'<g class="event" {attrs}><title>{esc(tip)}</title>'
            f'<line class="event-line" x1="{_num(ex)}" x2="{_num(ex)}" y1="{MAIN_TOP}" y2="{main_bottom}" stroke="{color}"/>'
            f"{shape}</g>"
        )
    marks.append("</g>")
    # monitoring checks ------------------------------------------------------------------
    panel: list[str] = []
    if checks:
        shares = [c["drift_share"] for c in checks if c["drift_share"] is not None]
        threshold = data.get("drift_share_threshold")
        s_ticks, _ = nice_ticks(0.0, max([*shares, threshold or 0, 0.1]), 2)
        s_hi = s_ticks[-1] or 1.0
        live = [c["metric"] for c in checks if c["metric"] is not None]
        m_ticks, m_dec = nice_ticks(min(live), max(live), 2) if live else ([], 0)

        def ys(value: float) -> float:
            return bottom - value / s_hi * CHECKS_HEIGHT

        def ym(value: float) -> float:
            lo, hi = m_ticks[0], m_ticks[-1]
            return bottom - (value - lo) / ((hi - lo) or 1) * CHECKS_HEIGHT

        panel.append(
            f'<g id="timeline-checks"><rect class="frame" x="{LEFT}" y="{checks_top}" width="{plot_w}" height="{CHECKS_HEIGHT}"/>'
            f'<text class="axis-label" x="{LEFT}" y="{checks_top - 8}">monitoring checks: drift share (bars)</text>'
            f'<text class="axis-label right" x="{WIDTH - RIGHT}" y="{checks_top - 8}">live {esc(metric)} (line)</text>'
        )
        for value in s_ticks:
            panel.append(
                f'<text class="tick y" x="{LEFT - 6}" y="{_num(ys(value))}">{fmt_share(value)}</text>'
            )
        for value in m_ticks:
            panel.append(
                f'<text class="tick y right" x="{WIDTH - RIGHT + 6}" y="{_num(ym(value))}">{value:.{m_dec}f}</text>'
            )
        if threshold:
            ty = _num(ys(threshold))
            panel.append(
                f'<line class="threshold" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{ty}" y2="{ty}">'
                f"<title>drift share threshold {fmt_share(threshold)}</title></line>"
            )
        bar = max(3.0, min(plot_w / span * 0.6, 14.0))
        line = []
        for c in checks:
            cx = x(c["date"])
            tip = (
                f"check {c['date']}: drift share {fmt_share(c['drift_share'])}, "
                f"live {metric} {fmt_metric(c['metric'])}, {c['current_rows']:,} rows "
                f"({c['labelled_rows']:,} labelled); "
                + (
                    f"RETRAIN ({', '.join(c['reasons'])}) in mode {c['mode'] or c['requested_mode']}"
                    + (f" → v{c['triggered_version']}" if c["triggered_version"] else "")
                    if c["decision"] == "retrain"
                    else (
                        f"held ({', '.join(c['reasons'])}; blocked by {', '.join(c['blocked_by'])})"
                        if c["decision"] == "held"
                        else "no retrain"
                    )
                )
            )
            item = [
                f'<g class="check" {_attrs(data_run_id=c["run_id"], data_date=c["date"], data_decision=c["decision"])}><title>{esc(tip)}</title>'
            ]
            if c["drift_share"] is not None:
                bar_top = ys(c["drift_share"])
                item.append(
                    f'<rect class="check-drift" {_attrs(data_drift_share=c["drift_share"])} x="{_num(cx - bar / 2)}" '
                    f'y="{_num(bar_top)}" width="{_num(bar)}" height="{_num(max(bottom - bar_top, 0.5))}"/>'
                )
            if c["metric"] is not None:
                my = ym(c["metric"])
                line.append((cx, my))
                item.append(
                    f'<circle class="check-metric" {_attrs(data_metric=c["metric"])} cx="{_num(cx)}" cy="{_num(my)}" r="2.5"/>'
                )
            if c["decision"] != "none":
                dy = checks_top + 2
                item.append(
                    f'<path class="check-decision {c["decision"]}" {_attrs(data_decision=c["decision"], data_mode=c["mode"] or c["requested_mode"], data_triggered_run_id=c["triggered_run_id"], data_triggered_version=c["triggered_version"])} '
                    f'd="M{_num(cx - 5)},{dy}L{_num(cx + 5)},{dy}L{_num(cx)},{dy + 9}Z"/>'
                )
            item.append("</g>")
            panel.append("".join(item))
        if len(line) > 1:
            pts = " ".join(f"{_num(a)},{_num(b)}" for a, b in line)
            panel.insert(1, f'<polyline class="live-line" points="{pts}"/>')
        panel.append("</g>")
    parts += [*bands, *grid, champion_line, *marks, *points, *panel, "</svg>"]
    return "".join(parts)


# -- the page ----------------------------------------------------------------------------------

STYLE = """
.chart{width:100%;max-width:100%;margin:.5rem 0}
#timeline-chart{display:block;width:100%;height:auto;font-size:11px}
#timeline-chart .grid{stroke:#e2e8f0;stroke-width:1}
#timeline-chart .frame{fill:none;stroke:#a0aec0}
#timeline-chart .band{fill-opacity:.75}
#timeline-chart .band.narrow{fill-opacity:1;stroke:#2d3748;stroke-width:.5}
#timeline-chart .band-label{fill:#2d3748;font-weight:600}
#timeline-chart .tick{fill:#4a5568}
#timeline-chart .tick.x{text-anchor:middle}
#timeline-chart .tick.y{text-anchor:end;dominant-baseline:middle}
#timeline-chart .tick.y.right{text-anchor:start}
#timeline-chart .axis-label{fill:#2d3748;font-weight:600}
#timeline-chart .axis-label.right{text-anchor:end}
#timeline-chart .champion-line{fill:none;stroke:#276749;stroke-width:2;stroke-dasharray:6 3}
#timeline-chart .holdout{stroke-width:2;stroke-opacity:.6}
#timeline-chart .version-point{stroke-width:2}
#timeline-chart .point-label{text-anchor:middle;fill:#2d3748;font-size:10px}
#timeline-chart .event-line{stroke-width:1.2;stroke-dasharray:3 3}
#timeline-chart .event .marker{stroke-width:2.5}
#timeline-chart .check-drift{fill:#dd6b20;fill-opacity:.7}
#timeline-chart .live-line{fill:none;stroke:#6b46c1;stroke-width:1.5}
#timeline-chart .check-metric{fill:#6b46c1}
#timeline-chart .check-decision.retrain{fill:#c53030}
#timeline-chart .check-decision.held{fill:#fff;stroke:#c53030;stroke-width:1.5}
#timeline-chart .threshold{stroke:#c53030;stroke-dasharray:4 3}
.legend{font-size:.85rem;color:#4a5568;margin:.2rem 0 1rem}
.legend span{display:inline-block;margin-right:1rem;white-space:nowrap}
.swatch{display:inline-block;width:.8rem;height:.8rem;vertical-align:middle;margin-right:.25rem;border:1px solid #a0aec0}
.wrap{max-width:100%;overflow-x:auto}
.wrap table{width:100%;max-width:100%;table-layout:auto;font-size:.85rem}
.wrap th,.wrap td{padding:.25rem .35rem;overflow-wrap:break-word;word-break:normal;hyphens:auto;vertical-align:top}
.wrap td.long{overflow-wrap:anywhere;word-break:break-all;min-width:4rem}
.wrap .nw{white-space:nowrap}
td.num{text-align:right}
tr.current td{background:#f0fff4}
.muted{color:#718096;font-size:.8rem}
"""

LEGEND = (
    "<p class='legend'>"
    "<span><i class='swatch' style='background:#c6f6d5'></i>champion period (band, by version)</span>"
    "<span>● version: its metric on the rows its gate scored (line: that holdout)</span>"
    "<span style='color:#c53030'>○✕ rejected by the gate</span>"
    "<span style='color:#276749'>▼ promoted</span>"
    "<span style='color:#c05621'>◆ rollback</span>"
    "<span style='color:#276749'>- - champion's gate metric</span>"
    "<span style='color:#dd6b20'>▮ drift share</span>"
    "<span style='color:#6b46c1'>— live metric</span>"
    "<span style='color:#c53030'>▼ retrain triggered (○ held)</span>"
    "</p>"
)


def _mode_cell(v: dict[str, Any]) -> str:
    """The mode the run resolved to; what was asked for (and why) in a note under it."""
    mode = _esc(v["mode"])
    note = []
    if v["requested_mode"] and v["requested_mode"] != v["mode"]:
        note.append(f"asked: {html.escape(v['requested_mode'])}")
    if v["mode_reason"]:
        note.append(html.escape(v["mode_reason"]))
    return mode + (f"<div class='muted'>{'; '.join(note)}</div>" if note else "")


def _link(url: str | None, text: str) -> str:
    if not url:
        return html.escape(text)
    return f"<a href='{html.escape(url, quote=True)}' target='_blank' rel='noopener'>{html.escape(text)}</a>"


def _when(value: str | None) -> str:
    """A wall-clock ISO timestamp for people: ``2026-12-02 20:51`` (UTC, as recorded)."""
    if not value:
        return "-"
    return f"<span class='nw'>{html.escape(value[:10])}</span> {html.escape(value[11:16])}"


def _range(start: str | None, end: str | None) -> str:
    """``[start, end)`` of dates; each date stays on one line, the range may wrap."""
    return f"<span class='nw'>{_esc(start)} →</span> <span class='nw'>{_esc(end)}</span>"


def versions_table(data: dict[str, Any]) -> str:
    """One row per version, newest first; ``tr#version-<v>`` (``data-version``)."""
    periods = {p["seq"]: p for p in data["champion_periods"]}
    metric = html.escape(data["primary_metric"] or "metric")
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "version",
            "status",
            "mode",
            "warm method (parent)",
            "data: training window, rows; gated on",
            f"{metric} <span class='muted'>vs champion</span>",
            "gate",
            "champion periods (#, from → until, UTC)",
            "reason",
            "dag run",
        )
    )
    body = []
    for v in reversed(data["versions"]):
        gate = (
            "<span class='ok'>passed</span>"
            if v["gate_passed"]
            else "<span class='bad'>failed</span>"
            + "".join(f"<div class='muted'>{html.escape(r)}</div>" for r in v["reasons"])
        )
        served = "<br>".join(
            f"#{s} {_when(periods[s]['since'])} → "
            + (_when(periods[s]["until"]) if periods[s]["until"] else "serving")
            + (
                f" <span class='muted'>({html.escape(periods[s]['reason'])})</span>"
                if periods[s]["kind"] == "rollback"
                else ""
            )
            for s in v["champion_periods"]
            if s in periods
        )
        links = v["links"]
        version = _link(links["version"], f"v{v['version']}") + (
            f"<div class='muted'>{_link(links['run'], 'MLflow run')}</div>" if links["run"] else ""
        )
        status = html.escape(v["status"]) + (
            f"<div class='muted'>{html.escape(', '.join(v['aliases']))}</div>"
            if v["aliases"]
            else ""
        )
        warm = _esc(v["warm_method"]) + (
            f"<div class='muted'>parent v{html.escape(v['parent_version'])}</div>"
            if v["parent_version"]
            else ""
        )
        tw, g = v["training_window"], v["gated_on"]
        window = (
            f"{_range(tw['start'], tw['end'])}<div class='muted'>{fmt_int(v['rows'])} rows</div>"
            f"<div>gated on {_range(g['start'], g['end'])}</div>"
        )
        score = f"<b>{fmt_metric(v['metric'])}</b>" + (
            f"<div class='muted'>vs {fmt_metric(v['champion_metric'])}"
            f" (v{html.escape(v['champion_at_evaluation'])})</div>"
            if v["champion_at_evaluation"]
            else ""
        )
        cells = (
            version,
            status,
            _mode_cell(v),
            warm,
            window,
            score,
            gate,
            served or "-",
            _esc(v["trigger_reason"]),
            _esc(v["dag_run_id"]),
        )
        classes = {5: "num", 9: "long"}
        row_class = " class='current'" if v["status"] == "champion" else ""
        body.append(
            f"<tr id='version-{html.escape(v['version'])}' data-version='{html.escape(v['version'])}'{row_class}>"
            + "".join(
                f"<td class='{classes[i]}'>{c}</td>" if i in classes else f"<td>{c}</td>"
                for i, c in enumerate(cells)
            )
            + "</tr>"
        )
    return (
        f"<div class='wrap'><table id='timeline-versions'><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def checks_table(data: dict[str, Any]) -> str:
    checks = data["checks"]
    if not checks:
        return "<p>No monitoring checks recorded yet.</p>"
    metric = html.escape(data["primary_metric"] or "metric")
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "data date",
            "rows (labelled)",
            "drift share",
            "drifted columns",
            f"live {metric}",
            "decision",
            "mode of the retrain",
            "retrain",
        )
    )
    body = []
    for c in reversed(checks):
        if c["decision"] == "retrain":
            decision = "<span class='bad'>RETRAIN</span>: " + html.escape(", ".join(c["reasons"]))
        elif c["decision"] == "held":
            decision = (
                f"held: {html.escape(', '.join(c['reasons']))}"
                f"<div class='muted'>blocked by {html.escape(', '.join(c['blocked_by']))}</div>"
            )
        else:
            decision = "-"
        if c["mode"]:
            mode = html.escape(c["mode"]) + (
                f"<div class='muted'>asked: {html.escape(c['requested_mode'])}</div>"
                if c["requested_mode"] and c["requested_mode"] != c["mode"]
                else ""
            )
        elif c["requested_mode"]:
            mode = f"<span class='muted'>asked: {html.escape(c['requested_mode'])} (run not resolved yet)</span>"
        else:
            mode = "-"
        if c["triggered_version"]:
            retrain = f"<a href='#version-{html.escape(c['triggered_version'])}'>v{html.escape(c['triggered_version'])}</a>"
        else:
            retrain = _esc(c["triggered_run_id"])
        drifted = c["drifted_columns"]
        cells = (
            _esc(c["date"]),
            f"{fmt_int(c['current_rows'])} ({fmt_int(c['labelled_rows'])})",
            fmt_share(c["drift_share"]),
            html.escape(
                ", ".join(drifted[:8]) + (f" +{len(drifted) - 8}" if len(drifted) > 8 else "")
            )
            or "-",
            fmt_metric(c["metric"]),
            decision,
            mode,
            retrain,
        )
        body.append(
            f"<tr data-check='{html.escape(c['run_id'])}'>"
            + "".join(f"<td>{cell}</td>" for cell in cells)
            + "</tr>"
        )
    return (
        f"<div class='wrap'><table id='timeline-checks-table'><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def timeline_html(dag_id: str) -> str:
    """The model timeline page of the pipeline behind ``dag_id``."""
    name = ui.pipeline_of(dag_id)
    title = f"{name}: model timeline"
    data = timeline_data(name)
    if not data["versions"]:
        return ui._page(
            title,
            f"<style>{STYLE}</style><p>No registered versions yet.</p>" + checks_section(data),
        )
    svg = timeline_svg(data)
    chart = f"<div class='chart'>{svg}</div>{LEGEND}" if svg else ""
    json_link = f"<p class='muted'>Exact values: <a href='{html.escape(dag_id)}/data'>JSON</a>.</p>"
    return ui._page(
        title,
        f"<style>{STYLE}</style>{chart}<h3>Versions</h3>{versions_table(data)}"
        f"{checks_section(data)}{json_link}",
    )


def checks_section(data: dict[str, Any]) -> str:
    return "<h3>Monitoring checks</h3>" + checks_table(data)
