"""The monitoring DAG's stage: the check of :mod:`retrainflow.core.monitoring` on the lake.

For a check at ``check_date`` (exclusive end):

* **reference** = the rows the champion was trained on, found through its
  lineage tags (``data_start``/``data_end``), sampled to ``reference_rows``;
* **current** = ``[check_date - current_days, check_date)``; rows newer than
  ``check_date - label_delay_days`` have no label yet (performance and target
  drift use only the labelled ones);
* the champion scores both (prediction drift) and Evidently measures feature
  drift per column, prediction drift, target drift and performance;
* the :mod:`retrainflow.policy` decides from this check, the ledger of earlier
  checks and whether a retrain is already active;
* a positive decision starts ``retrain__<pipeline>`` through the REST API
  (:class:`~retrainflow.airflow.trigger.RetrainTrigger`) with the flight's run id
  (:func:`flight_run_id`) — neither a retried check nor concurrent checks trigger twice.

The HTML report and the JSON summary are saved in the artifact store and
logged to the MLflow experiment ``<pipeline>-monitoring``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from retrainflow.artifacts import ArtifactStore, local_copy, safe_name
from retrainflow.core import windows
from retrainflow.core.monitoring import decide_retrain, run_check
from retrainflow.data.sources import make_source
from retrainflow.manifest import Manifest
from retrainflow.monitoring.ledger import CheckLedger, LedgerEntry
from retrainflow.stages.pull import champion_facts

if TYPE_CHECKING:
    import pandas as pd

    from retrainflow.config import PipelineConfig
    from retrainflow.data.sources import Source
    from retrainflow.policy import CheckResult
    from retrainflow.registry import Registry, VersionInfo

log = logging.getLogger(__name__)
STAGE = "monitor"


class Trigger(Protocol):
    """What the check needs from whoever can start a retrain run."""

    def active_runs(self) -> list[str]: ...

    def trigger(self, run_id: str, conf: dict[str, Any]) -> str: ...


@dataclass(frozen=True)
class MonitorContext(Manifest):
    pipeline: str
    run_id: str
    #: Exclusive end of the checked window (ISO date).
    check_date: str
    on_demand: bool = False
    #: False: decide but start nothing (``retrainflow monitor --no-trigger``).
    trigger_enabled: bool = True


@dataclass(frozen=True)
class MonitorManifest(Manifest):
    context: MonitorContext
    champion_version: str | None
    check: dict[str, Any]
    drift: dict[str, Any]
    decision: dict[str, Any]
    report_uri: str | None
    summary_uri: str
    triggered_run_id: str | None = None
    trigger_status: str = "not triggered"
    mlflow_run_id: str | None = None
    explain: list[str] = field(default_factory=list)


def flight_run_id(pipeline: str, champion_version: str | None, flight: int) -> str:
    """The retrain run id of the ``flight``-th retrain the policy starts for this champion.

    Single flight is an atomic claim on this id: every check that decides to retrain
    while the same champion serves and the same number of flights have been started
    computes the same id, and Airflow keeps run ids unique (a second create answers 409),
    so of any number of concurrent checks exactly one starts the retrain and the others
    join it. A retried check computes its own earlier id again (its ledger entry is left
    out of the count), and re-confirms the run instead of starting another.
    """
    return f"monitor__{safe_name(pipeline)}__v{champion_version or 0}__flight{flight}"


def _flights_started(
    earlier: list[LedgerEntry], pipeline: str, champion_version: str | None
) -> int:
    """Flights the ``earlier`` ledger entries (not this check's own) started for this champion."""
    prefix = flight_run_id(pipeline, champion_version, 0).removesuffix("0")
    return len(
        {
            e.triggered_run_id
            for e in earlier
            if e.triggered_run_id and e.triggered_run_id.startswith(prefix)
        }
    )


def _reference(config: PipelineConfig, source: Source, champion: VersionInfo) -> pd.DataFrame:
    """The champion's training rows (its lineage's data window)."""
    start = date.fromisoformat(champion.tags.get("data_start") or champion.tags["window_start"])
    end = date.fromisoformat(champion.tags["data_end"])
    return source.read_window(start, end)


def run(
    config: PipelineConfig,
    context: MonitorContext,
    *,
    registry: Registry,
    store: ArtifactStore | None = None,
    trigger: Trigger | None = None,
    now: datetime | None = None,
) -> MonitorManifest:
    """Run one monitoring check; may start a retrain through ``trigger``.

    Raises:
        AirflowApiError: the trigger was refused (credentials, missing or paused DAG, bad conf).
    """
    import pandas as pd

    from retrainflow.monitoring.drift import save

    store = store or ArtifactStore(config.artifact_root_uri())
    out = store.stage(config.name, context.run_id, STAGE)
    mon = config.monitoring
    end = date.fromisoformat(context.check_date)
    # Policy time is the check's data time, not the wall clock: a replay of old data (the demo,
    # a backtest) gets the same cooldowns and staleness as the live check would have.
    now = now or datetime.combine(end, datetime.min.time(), tzinfo=UTC)
    win = windows.monitoring(end, mon.current_days, mon.label_delay_days)
    source = make_source(config)
    current = source.read_window(win.current.start, win.current.end)
    champion = registry.champion(config.registered_model_name)
    facts = champion_facts(champion)
    ledger = CheckLedger(config.artifact_root_uri(), config.name)

    model, reference = None, pd.DataFrame()
    if champion is not None and len(current):
        reference = _reference(config, source, champion)
        model = registry.load_model(config.registered_model_name, champion.version)
    measured = run_check(
        config,
        model=model,
        reference=reference,
        current=current,
        label_cutoff=win.label_cutoff,
        checked_at=now,
        champion_schema=champion.schema if champion else None,
    )
    check, report_uri, drift_summary = measured.check, None, {}
    if measured.drift is not None:
        report_uri = save(measured.drift, out).get("html")
        drift_summary = measured.drift.summary()
    summary_path = out.write_json("monitor_summary.json", {"drift": drift_summary})

    new_rows = 0
    if facts is not None and facts.data_end is not None:
        new_rows = source.count_rows(facts.data_end, win.label_cutoff)
    # Single flight: another retrain is active. This check's own flight (started by an
    # earlier attempt, or by a concurrent check deciding the same) does not count: it
    # re-confirms it (409) instead.
    champion_version = champion.version if champion else None
    # One read of the ledger: earlier checks, not this one's own entry (a retried attempt).
    earlier = [e for e in ledger.entries() if e.run_id != context.run_id]
    own = flight_run_id(
        config.name, champion_version, _flights_started(earlier, config.name, champion_version)
    )
    active = trigger is not None and any(r != own for r in trigger.active_runs())
    decision = decide_retrain(
        config,
        check,
        facts,
        gate_metric=_float(champion.tags.get("challenger_metric")) if champion else None,
        previous_checks=[e.check for e in earlier],
        trigger_times=[e.triggered_at for e in earlier if e.triggered_at],
        retrain_active=active,
        new_labelled_rows=new_rows,
        now=now,
        on_demand=context.on_demand,
    )

    triggered_run_id, status = None, "not triggered"
    if decision.trigger and context.trigger_enabled and trigger is not None:
        triggered_run_id = own
        conf = {
            "mode": decision.mode,
            "reason": "monitor: " + ",".join(decision.reasons),
            "reason_codes": decision.reasons,
            "window_end": context.check_date,
            "details": {
                "monitor_run_id": context.run_id,
                "report_uri": report_uri,
                "drift_share": check.drift_share,
                "drifted_columns": check.drifted_columns[:20],
                "metric": check.metric,
                "mode_reason": decision.mode_reason,
            },
        }
        status = trigger.trigger(triggered_run_id, conf)
    elif decision.trigger:
        status = "trigger disabled" if not context.trigger_enabled else "no trigger configured"

    ledger.record(
        LedgerEntry(
            run_id=context.run_id,
            check=check,
            decision=decision.to_dict(),
            triggered_run_id=triggered_run_id,
            triggered_at=check.checked_at if triggered_run_id else None,
        )
    )
    mlflow_run_id = _log_to_mlflow(
        config,
        context,
        check,
        decision.to_dict(),
        drift_summary,
        [p for p in (report_uri, str(summary_path)) if p],
        registry,
    )
    manifest = MonitorManifest(
        context=context,
        champion_version=champion.version if champion else None,
        check=check.to_dict(),
        drift=drift_summary,
        decision=decision.to_dict(),
        report_uri=report_uri,
        summary_uri=str(summary_path),
        triggered_run_id=triggered_run_id,
        trigger_status=status,
        mlflow_run_id=mlflow_run_id,
        explain=decision.explain().splitlines(),
    )
    out.write_json("manifest.json", manifest.to_dict())
    log.info(
        "monitor %s @ %s: drift share %s, metric %s -> %s %s",
        config.name,
        context.check_date,
        check.drift_share,
        check.metric,
        "TRIGGER" if decision.trigger else "no retrain",
        ",".join(decision.reasons or decision.blocked_by),
    )
    return manifest


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def _log_to_mlflow(
    config: PipelineConfig,
    context: MonitorContext,
    check: CheckResult,
    decision: dict[str, Any],
    drift: dict[str, Any],
    files: list[str],
    registry: Registry,
) -> str:
    """One run per check in experiment ``<pipeline>-monitoring``: the check's history."""
    import mlflow

    with registry.tracking():
        experiment_id = registry.experiment(f"{config.name}-monitoring")
        with mlflow.start_run(
            experiment_id=experiment_id,
            run_name=context.run_id,
            tags={
                "check_date": context.check_date,
                "trigger": str(decision.get("trigger")),
                "reasons": ",".join(decision.get("reasons", [])),
            },
        ) as run:
            metrics = {
                "current_rows": check.current_rows,
                "labelled_rows": check.labelled_rows,
                "triggered": float(bool(decision.get("trigger"))),
            }
            if check.drift_share is not None:
                metrics["drift_share"] = check.drift_share
            if check.metric is not None:
                metrics[f"champion_{config.evaluation.primary_metric}"] = check.metric
            mlflow.log_metrics(metrics)
            mlflow.log_dict(decision, "decision.json")
            for path in files:
                with local_copy(path) as local:
                    mlflow.log_artifact(str(local), artifact_path="report")
            return run.info.run_id
