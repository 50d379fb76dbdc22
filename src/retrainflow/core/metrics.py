"""How models are scored and gated — metrics, their direction, slices and the gate.

The evaluate stage, the backtest (its gated strategies and every batch's score),
freshness, the monitoring check (the champion's live metric) and the trigger
policy (how much the metric dropped) all score through this module, so "better"
means the same everywhere: :func:`improvement` is positive when a value is
better than another, whatever the metric's direction.

The gate (:func:`gate`):

* the challenger's primary metric beats the champion's by at least ``min_delta``;
* every guardrail metric is no worse than the champion's by more than its tolerance;
* every floor (an absolute sanity bound) is met — also on the first run, when
  there is no champion to compare with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from retrainflow.jsonsafe import finite_or_none

__all__ = [
    "CLASSIFICATION_METRICS",
    "LOWER_IS_BETTER",
    "REGRESSION_METRICS",
    "Challenge",
    "challenge",
    "compute_metrics",
    "finite_or_none",
    "gate",
    "improvement",
    "lower_is_better",
    "margin",
    "slice_metrics",
]

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from retrainflow.config import PipelineConfig
    from retrainflow.model import TabularModel

CLASSIFICATION_METRICS = ("roc_auc", "log_loss", "accuracy", "f1", "brier")
REGRESSION_METRICS = ("rmse", "mae", "r2")
#: Metrics on a 0-1 scale, whose differences read as percentage points (x 100).
POINT_SCALE_METRICS = frozenset({"roc_auc", "accuracy", "f1", "brier"})
#: Metrics where a smaller value is better.
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "rmse", "mae"})


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is better."""
    return metric in LOWER_IS_BETTER


def improvement(metric: str, value: float, reference: float) -> float:
    """How much better ``value`` is than ``reference`` (positive = better, either direction)."""
    return (reference - value) if lower_is_better(metric) else (value - reference)


def margin(spec: float | str, reference: float) -> float:
    """An amount of a metric: ``spec`` itself, or (``"2%"``) that share of ``|reference|``.

    ``evaluation.min_delta`` and ``monitoring.policy.performance_drop`` take either form,
    so a pipeline copied from a ROC AUC example (0.02) does not fire on every change of
    an error metric measured in hundreds.
    """
    if isinstance(spec, str):
        return abs(reference) * float(spec.rstrip("%")) / 100
    return float(spec)


def _margin_text(spec: float | str, amount: float) -> str:
    return f"{spec} = {amount:.4g}" if isinstance(spec, str) else f"{spec}"


def compute_metrics(task: str, y_true: Any, scores: Any) -> dict[str, float]:
    """All metrics of the task; a metric undefined on these rows is NaN (e.g. one class only)."""
    import numpy as np
    from sklearn import metrics as skm

    y_true = np.asarray(y_true, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    out: dict[str, float] = {}
    if task == "binary_classification":
        p = np.clip(scores, 1e-7, 1 - 1e-7)
        both = len(np.unique(y_true)) == 2
        out["roc_auc"] = float(skm.roc_auc_score(y_true, p)) if both else math.nan
        out["log_loss"] = float(skm.log_loss(y_true, p, labels=[0, 1]))
        out["accuracy"] = float(skm.accuracy_score(y_true, p >= 0.5))
        out["f1"] = float(skm.f1_score(y_true, p >= 0.5, zero_division=0))
        out["brier"] = float(skm.brier_score_loss(y_true, p))
        assert set(out) == set(CLASSIFICATION_METRICS)
    else:
        out["rmse"] = float(np.sqrt(skm.mean_squared_error(y_true, scores)))
        out["mae"] = float(skm.mean_absolute_error(y_true, scores))
        out["r2"] = float(skm.r2_score(y_true, scores)) if len(y_true) > 1 else math.nan
        assert set(out) == set(REGRESSION_METRICS)
    return out


def gate(
    config: PipelineConfig, challenger: dict[str, float], champion: dict[str, float] | None
) -> tuple[bool, list[str]]:
    """Apply the evaluation gate; returns (passed, human-readable reasons)."""
    ev = config.evaluation
    reasons: list[str] = []
    passed = True
    primary = ev.primary_metric
    value = challenger[primary]
    if math.isnan(value):
        return False, [f"{primary} is undefined on the holdout rows (one class only?)"]
    for metric, floor in ev.floors.items():
        v = challenger[metric]
        ok = (v <= floor) if lower_is_better(metric) else (v >= floor)
        word = "ceiling" if lower_is_better(metric) else "floor"
        reasons.append(f"{metric} {v:.4f} {'meets' if ok else 'misses'} the {word} {floor}")
        passed &= ok
    if champion is None:
        reasons.append("no champion yet: the gate is the floors alone")
        if not ev.floors:
            reasons.append("warning: no floors configured")
        return passed, reasons
    delta = improvement(primary, value, champion[primary])
    need = margin(ev.min_delta, champion[primary])
    ok = delta >= need
    reasons.append(
        f"{primary} {value:.4f} vs champion {champion[primary]:.4f}: "
        f"{'+' if delta >= 0 else ''}{delta:.4f} "
        f"({'>=' if ok else '<'} min_delta {_margin_text(ev.min_delta, need)})"
    )
    passed &= ok
    for metric, tol in ev.guardrails.items():
        worse = -improvement(metric, challenger[metric], champion[metric])
        ok = worse <= tol
        reasons.append(
            f"guardrail {metric}: {challenger[metric]:.4f} vs {champion[metric]:.4f} "
            f"({'within' if ok else 'beyond'} tolerance {tol})"
        )
        passed &= ok
    return passed, reasons


def slice_metrics(
    config: PipelineConfig, frame: pd.DataFrame, y: np.ndarray, scores: dict[str, np.ndarray]
) -> dict[str, Any]:
    """Primary metric per value of each slice column, for every scored model."""
    out: dict[str, Any] = {}
    primary = config.evaluation.primary_metric
    for col in config.evaluation.slices:
        values = frame[col].astype("string").fillna("__missing__")
        per: dict[str, Any] = {}
        for value, idx in values.groupby(values).groups.items():
            if len(idx) < config.evaluation.min_slice_rows:
                continue
            pos = frame.index.get_indexer(idx)
            per[str(value)] = {
                "rows": len(idx),
                **{
                    who: compute_metrics(config.task, y[pos], s[pos])[primary]
                    for who, s in scores.items()
                },
            }
        out[col] = per
    return out


@dataclass(frozen=True)
class Challenge:
    """Challenger vs champion on the same held-out rows, and the gate's verdict."""

    passed: bool
    reasons: list[str]
    challenger: dict[str, float]
    champion: dict[str, float] | None
    y: np.ndarray
    scores: dict[str, np.ndarray]
    #: The rows compared (the holdout, less any the champion was trained on).
    rows: pd.DataFrame


def challenge(
    config: PipelineConfig,
    holdout: pd.DataFrame,
    challenger: TabularModel,
    champion: TabularModel | None,
    *,
    champion_data_end: date | None = None,
) -> Challenge:
    """Score both models on ``holdout`` (raw rows, as served) and apply :func:`gate`.

    Both models are scored on *future* data only: when the champion's training data
    reaches into the holdout (a retrain with an earlier window end than the champion's,
    or a holdout longer than the gap), the rows before ``champion_data_end`` are left
    out of the comparison — on them the champion would be scored in-sample. No rows left
    is a failed gate that says so.
    """
    import pandas as pd

    from retrainflow.core.training import targets

    note = None
    if champion is not None and champion_data_end is not None and len(holdout):
        fresh = pd.to_datetime(holdout[config.time_column]) >= pd.Timestamp(champion_data_end)
        if not fresh.all():
            total = len(holdout)
            holdout = holdout[fresh.to_numpy()]
            note = (
                f"compared on the {len(holdout)} of {total} holdout rows on or after "
                f"{champion_data_end}, the champion's data end: it was trained on the earlier ones"
            )
            if not len(holdout):
                names = (
                    CLASSIFICATION_METRICS
                    if config.task == "binary_classification"
                    else REGRESSION_METRICS
                )
                undefined = {m: math.nan for m in names}
                return Challenge(
                    False,
                    [
                        f"no holdout row is newer than the champion's data end {champion_data_end}: "
                        "it was trained on all of them, so no fair comparison is possible; "
                        "pick a later window end"
                    ],
                    undefined,
                    dict(undefined),
                    targets(config, holdout),
                    {},
                    holdout,
                )
    y = targets(config, holdout)
    scores = {"challenger": challenger.predict(holdout)}
    champion_metrics = None
    if champion is not None:
        scores["champion"] = champion.predict(holdout)
        champion_metrics = compute_metrics(config.task, y, scores["champion"])
    challenger_metrics = compute_metrics(config.task, y, scores["challenger"])
    passed, reasons = gate(config, challenger_metrics, champion_metrics)
    if note:
        reasons.append(note)
    return Challenge(passed, reasons, challenger_metrics, champion_metrics, y, scores, holdout)
