"""The main job: ``retrainflow demo`` on the embedded stack with the real flights data.

1. seed the lake with NYC flights up to the first window end;
2. start the embedded stack (Airflow API server, scheduler, DAG processor,
   triggerer; MLflow server);
3. trigger ``retrain__flights`` through Airflow's REST API for an initial
   stateless model, then once per simulated week after that week's days
   "arrive" in the lake (``auto`` mode: warm starts on the new days only);
4. release the following days one by one and run ``monitor__flights`` for
   each through the scheduler: Evidently drift and performance on the last
   week, the trigger policy, and — when it says so — a retrain started by the
   monitoring task itself over REST;
5. read each run's outcome from the MLflow registry and print two tables
   (retrains; monitoring days with their drift reports) plus the UI URLs. The
   stack stays up so the runs can be inspected.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from retrainflow.config import PipelineConfig, find_config
from retrainflow.core.modes import Mode
from retrainflow.exceptions import RetrainflowError

log = logging.getLogger(__name__)

DEMO_PIPELINE = "flights"
#: The first model is trained on January and February 2013 (the February blizzard included).
FIRST_WINDOW_END = date(2013, 3, 1)


@dataclass(frozen=True)
class DemoRow:
    window_end: str
    run_id: str
    state: str
    version: str | None
    mode: str | None
    rows: str | None
    metric: str | None
    champion_metric: str | None
    gate_passed: bool | None
    champion_after: str | None
    seconds: float


def _row(
    cfg: PipelineConfig, registry: Any, end: date, run_id: str, state: str, seconds: float
) -> DemoRow:
    info = registry.find_by_run(cfg.registered_model_name, run_id)
    champion = registry.champion(cfg.registered_model_name)
    tags = info.tags if info else {}
    return DemoRow(
        window_end=end.isoformat(),
        run_id=run_id,
        state=state,
        version=info.version if info else None,
        mode=tags.get("mode"),
        rows=tags.get("rows"),
        metric=tags.get("challenger_metric"),
        champion_metric=tags.get("champion_metric") or None,
        gate_passed=info.gate_passed if info else None,
        champion_after=champion.version if champion else None,
        seconds=round(seconds, 1),
    )


@dataclass(frozen=True)
class DayRow:
    """One simulated day of monitoring."""

    day: str
    state: str
    current_rows: int | None
    drift_share: float | None
    drifted: int | None
    metric: float | None
    decision: str
    mode: str | None
    retrain: DemoRow | None
    report_uri: str | None


@dataclass(frozen=True)
class DemoResult:
    retrains: list[DemoRow]
    days: list[DayRow]


def run_demo(
    *, weeks: int = 2, days: int = 14, first_end: date = FIRST_WINDOW_END, timeout: float = 1200
) -> DemoResult:
    """Run the demo.

    Args:
        weeks: how many weekly warm-start updates follow the initial model.
        days: how many days are then released one by one, each checked by the monitoring DAG.
        first_end: exclusive end of the initial model's data window.
        timeout: seconds to wait for each DAG run.

    Raises:
        RetrainflowError: when the stack cannot start or a run cannot be triggered.
    """
    import time

    from retrainflow.airflow import stack
    from retrainflow.airflow.rest import AirflowClient
    from retrainflow.data.seed import seed
    from retrainflow.registry import Registry

    cfg = find_config(DEMO_PIPELINE)
    log.info("seeding the lake with flights before %s", first_end)
    seed(cfg, first_end - timedelta(days=1))
    log.info("starting the embedded stack (first start takes ~30-60 s)")
    info = stack.start(stack.StackConfig())
    client = AirflowClient(info.airflow_url, info.username, info.password)
    dag_id = cfg.retrain_dag_id
    for dag in (dag_id, cfg.monitor_dag_id):
        client.wait_for_dag(dag, timeout=180)
        client.set_paused(dag, False)
    registry = Registry()
    stamp = datetime.now(UTC).strftime("%H%M%S")
    rows: list[DemoRow] = []
    for week in range(weeks + 1):
        end = first_end + timedelta(days=7 * week)
        seed(cfg, end - timedelta(days=1))  # this week's days arrive in the lake
        run_id = f"demo__{end.isoformat()}__{stamp}"
        conf = {
            "window_end": end.isoformat(),
            "mode": (Mode.STATELESS if week == 0 else Mode.AUTO).value,
            "reason": "demo: initial model" if week == 0 else "demo: weekly update",
        }
        t0 = time.perf_counter()
        client.trigger_dag_run(dag_id, conf=conf, run_id=run_id)
        log.info("triggered %s over REST (window end %s); waiting", run_id, end)
        final = client.wait_for_dag_run(dag_id, run_id, timeout=timeout)
        row = _row(cfg, registry, end, run_id, str(final.get("state")), time.perf_counter() - t0)
        log.info(
            "%s: %s, version %s (%s), champion now %s",
            run_id,
            row.state,
            row.version,
            row.mode,
            row.champion_after,
        )
        rows.append(row)
    day_rows = []
    for offset in range(days):
        day = first_end + timedelta(days=7 * weeks + offset)
        day_rows.append(_monitor_day(cfg, client, registry, day, stamp, timeout))
    if registry.champion(cfg.registered_model_name) is None:
        raise RetrainflowError(
            "The demo ended without a champion; see the Airflow UI and task logs."
        )
    return DemoResult(rows, day_rows)


def _monitor_day(
    cfg: PipelineConfig, client: Any, registry: Any, day: date, stamp: str, timeout: float
) -> DayRow:
    """Release ``day`` into the lake, run the monitoring DAG for it, follow any retrain it started."""
    import time

    from retrainflow.artifacts import ArtifactStore
    from retrainflow.data.seed import seed

    seed(cfg, day)
    check_date = day + timedelta(days=1)
    run_id = f"demo__monitor__{check_date.isoformat()}__{stamp}"
    client.trigger_dag_run(
        cfg.monitor_dag_id, conf={"check_date": check_date.isoformat()}, run_id=run_id
    )
    final = client.wait_for_dag_run(cfg.monitor_dag_id, run_id, timeout=timeout)
    run = ArtifactStore(cfg.artifact_root_uri()).run(cfg.name, run_id)
    if final.get("state") != "success" or not run.exists("monitor/manifest.json"):
        log.warning("monitoring run %s ended %s", run_id, final.get("state"))
        return DayRow(
            day.isoformat(),
            str(final.get("state")),
            None,
            None,
            None,
            None,
            "check failed",
            None,
            None,
            None,
        )
    m = run.read_json("monitor/manifest.json")
    check, decision = m["check"], m["decision"]
    if decision["trigger"]:
        label = "RETRAIN: " + ",".join(decision["reasons"])
    elif decision["reasons"]:
        label = "held: " + ",".join(decision["blocked_by"])
    else:
        label = (
            "-"
            if not decision["blocked_by"]
            else "quiet (" + ",".join(decision["blocked_by"]) + ")"
        )
    retrain = None
    if m.get("triggered_run_id"):
        t0 = time.perf_counter()
        done = client.wait_for_dag_run(cfg.retrain_dag_id, m["triggered_run_id"], timeout=timeout)
        retrain = _row(
            cfg,
            registry,
            check_date,
            m["triggered_run_id"],
            str(done.get("state")),
            time.perf_counter() - t0,
        )
    log.info(
        "%s: drift share %s, metric %s -> %s",
        day,
        _rounded(check["drift_share"]),
        _rounded(check["metric"]),
        label,
    )
    return DayRow(
        day.isoformat(),
        "success",
        check["current_rows"],
        check["drift_share"],
        len(check["drifted_columns"]),
        check["metric"],
        label,
        _resolved_mode(cfg, decision, m.get("triggered_run_id"), retrain),
        retrain,
        m.get("report_uri"),
    )


def _resolved_mode(
    cfg: PipelineConfig, decision: dict[str, Any], run_id: str | None, retrain: DemoRow | None
) -> str | None:
    """The mode the retrain a check started resolved to (its version's tag, else its pull
    report), not the ``auto`` the policy asked for; that only when the run resolved none."""
    if not decision["trigger"]:
        return None
    if retrain is not None and retrain.mode:
        return retrain.mode
    if run_id:
        from retrainflow.airflow.ui_timeline import pulled_mode
        from retrainflow.artifacts import ArtifactStore

        mode = pulled_mode(ArtifactStore(cfg.artifact_root_uri()), cfg.name, run_id)
        if mode:
            return mode
    return f"{decision['mode']} (asked)"


def _rounded(value: float | None) -> str:
    """A number for people (the JSON keeps it exact)."""
    return "-" if value is None else f"{value:.3f}"
