"""The monitoring check — is there drift or a drop, and what does the policy decide?

Written once, run by the monitoring DAG's stage (:mod:`retrainflow.stages.monitor`,
on the lake, with the registered champion) and by the backtest's ``policy``
strategies (on in-memory rows, with the strategy's model):

1. :func:`run_check`: the champion scores a sample of its own training rows (the
   reference) and the current window; rows newer than the label cutoff have no
   label yet, so target drift and the live metric use only the labelled rows;
   Evidently (:func:`~retrainflow.monitoring.drift.compute_drift`) measures drift
   per feature, prediction drift and target drift; the result is a
   :class:`~retrainflow.policy.CheckResult`;
2. :func:`decide_retrain`: the champion's facts and the history of earlier checks
   and triggers feed :func:`retrainflow.policy.decide`, which answers *whether* and
   *in which mode* (:func:`retrainflow.core.modes.resolve_mode`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Literal

from retrainflow.core.metrics import finite_or_none
from retrainflow.core.schema import schema_diff, schema_of
from retrainflow.policy import ChampionInfo, CheckResult, Decision, PolicyState, decide

if TYPE_CHECKING:
    import pandas as pd

    from retrainflow.config import PipelineConfig
    from retrainflow.core.modes import ChampionFacts
    from retrainflow.model import TabularModel
    from retrainflow.monitoring.drift import DriftResult


@dataclass(frozen=True)
class MonitorCheck:
    """One check's measurements: the policy's input and Evidently's full result."""

    check: CheckResult
    #: None when there was nothing to compare (no champion or no current rows).
    drift: DriftResult | None


def sample(frame: pd.DataFrame, limit: int | None, seed: int) -> pd.DataFrame:
    """At most ``limit`` rows of ``frame`` (a seeded random sample; all when ``limit`` is None)."""
    if limit and len(frame) > limit:
        return frame.sample(n=limit, random_state=seed)
    return frame


def run_check(
    config: PipelineConfig,
    *,
    model: TabularModel | None,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    label_cutoff: date,
    checked_at: datetime,
    champion_schema: dict[str, str] | None = None,
    reference_cap: int | None = None,
    render_html: bool | Literal["on_drift"] | None = None,
    drift_sample_rows: int | None = None,
) -> MonitorCheck:
    """Measure drift and the live metric of ``model`` on the current window.

    Args:
        config: The pipeline (``monitoring``: reference and current sizes, drift settings).
        model: The champion; None when there is none (nothing is measured).
        reference: The champion's training rows (sampled here to ``reference_rows``).
        current: The current window's rows (sampled here to ``current_rows``).
        label_cutoff: Rows at or after this day have no label yet.
        checked_at: The check's time (data time, for replays).
        champion_schema: The champion's training schema: a difference is a schema change.
        reference_cap: A lower cap on the reference sample (the backtest's speed setting).
        render_html: Render Evidently's HTML report: ``True``, ``False``, ``"on_drift"``;
            ``None`` (default): as ``monitoring.html_report`` says.
        drift_sample_rows: Rows per side of the drift tests (None: the drift module's default).
    """
    import numpy as np
    import pandas as pd

    from retrainflow.monitoring.drift import DEFAULT_SAMPLE_ROWS, compute_drift

    mon, seed = config.monitoring, config.training.random_seed
    html: bool | Literal["on_drift"] = (
        render_html
        if render_html is not None
        else (
            mon.html_report == "always" or ("on_drift" if mon.html_report == "on_drift" else False)
        )
    )
    current = sample(current, mon.current_rows, seed)
    stamp = checked_at.isoformat(timespec="seconds")
    if model is None or not len(current):
        return MonitorCheck(
            CheckResult(
                checked_at=stamp,
                current_rows=len(current),
                labelled_rows=0,
                drift_share=None,
                drifted_columns=[],
                dataset_drift=None,
                prediction_drift=None,
                metric=None,
            ),
            None,
        )
    cap = mon.reference_rows if reference_cap is None else min(mon.reference_rows, reference_cap)
    reference = sample(reference, cap, seed).reset_index(drop=True)
    ts = pd.to_datetime(current[config.time_column])
    labelled = (ts < pd.Timestamp(label_cutoff)).to_numpy()
    masked = current
    if not labelled.all():
        masked = current.copy()
        masked.loc[~labelled, config.target] = np.nan
    result = compute_drift(
        config,
        reference,
        masked,
        seed=seed,
        reference_scores=model.predict(reference) if len(reference) else None,
        current_scores=model.predict(current),
        labelled=bool(labelled.any()),
        render_html=html,
        sample_rows=DEFAULT_SAMPLE_ROWS if drift_sample_rows is None else drift_sample_rows,
    )
    schema_changed = (
        champion_schema is not None and schema_diff(champion_schema, schema_of(current)) is not None
    )
    check = CheckResult(
        checked_at=stamp,
        current_rows=len(current),
        labelled_rows=int(labelled.sum()),
        drift_share=result.drift_share,
        drifted_columns=list(result.drifted_columns),
        dataset_drift=result.dataset_drift,
        prediction_drift=(
            None if result.prediction_drift is None else bool(result.prediction_drift.drifted)
        ),
        metric=finite_or_none((result.performance or {}).get(config.evaluation.primary_metric)),
        schema_changed=schema_changed,
    )
    return MonitorCheck(check, result)


def decide_retrain(
    config: PipelineConfig,
    check: CheckResult,
    champion: ChampionFacts | None,
    *,
    gate_metric: float | None,
    previous_checks: Sequence[CheckResult],
    trigger_times: Sequence[str],
    retrain_active: bool,
    new_labelled_rows: int,
    now: datetime,
    on_demand: bool = False,
) -> Decision:
    """The trigger policy's decision on one check (see :func:`retrainflow.policy.decide`).

    Args:
        config: The pipeline (``monitoring.policy`` and the mode settings).
        check: This check (:func:`run_check`).
        champion: The serving model's facts; None when there is none.
        gate_metric: The champion's primary metric at its gate (the performance baseline).
        previous_checks: Earlier checks, oldest first, not including this one.
        trigger_times: ISO datetimes of earlier triggers.
        retrain_active: A retrain is queued or running (single flight).
        new_labelled_rows: Labelled rows since the champion's data end (volume rule).
        now: The decision time.
        on_demand: An operator asked for a retrain.
    """
    info = ChampionInfo(
        version=None if champion is None else champion.version,
        gate_metric=finite_or_none(gate_metric),
        data_end=None
        if champion is None or champion.data_end is None
        else champion.data_end.isoformat(),
        estimator=None if champion is None else champion.estimator,
        warm_starts_since_full=0 if champion is None else champion.warm_starts_since_full,
    )
    state = PolicyState(
        previous_checks=list(previous_checks),
        trigger_times=list(trigger_times),
        retrain_active=retrain_active,
        new_labelled_rows_since_champion=new_labelled_rows,
    )
    return decide(config, check, info, state, now=now, on_demand=on_demand)
