"""Stage 5 — evaluate: challenger vs champion on the same future rows.

Both models score the held-out rows, which are newer than every row either
model was trained on ("test on future data"), through the same raw-row
``predict`` that serving uses. The gate:

* the challenger's primary metric beats the champion's by at least ``min_delta``;
* every guardrail metric is no worse than the champion's by more than its tolerance;
* every floor (an absolute sanity bound) is met — also on the first run, when
  there is no champion to compare with.

The stage writes a :class:`~retrainflow.manifest.Verdict`; ``promote`` reads
only that. There is no pass without thresholds: a first model still has to
meet the floors (and a config without floors gets a warning in the report).
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from retrainflow.artifacts import ArtifactStore
from retrainflow.config import CLASSIFICATION_METRICS, LOWER_IS_BETTER, REGRESSION_METRICS
from retrainflow.manifest import PullManifest, TrainManifest, Verdict
from retrainflow.stages.train import load_model

if TYPE_CHECKING:
    from retrainflow.config import PipelineConfig
    from retrainflow.registry import Registry

log = logging.getLogger(__name__)
STAGE = "evaluate"


def compute_metrics(task: str, y_true: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """All metrics of the task; a metric undefined on these rows is NaN (e.g. one class only)."""
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


def _better_by(metric: str, challenger: float, champion: float) -> float:
    """How much better the challenger is (positive = better), whatever the metric's direction."""
    return (champion - challenger) if metric in LOWER_IS_BETTER else (challenger - champion)


def gate(config: PipelineConfig, challenger: dict[str, float],
         champion: dict[str, float] | None) -> tuple[bool, list[str]]:
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
        ok = (v <= floor) if metric in LOWER_IS_BETTER else (v >= floor)
        word = "ceiling" if metric in LOWER_IS_BETTER else "floor"
        reasons.append(f"{metric} {v:.4f} {'meets' if ok else 'misses'} the {word} {floor}")
        passed &= ok
    if champion is None:
        reasons.append("no champion yet: the gate is the floors alone")
        if not ev.floors:
            reasons.append("warning: no floors configured")
        return passed, reasons
    delta = _better_by(primary, value, champion[primary])
    ok = delta >= ev.min_delta
    reasons.append(f"{primary} {value:.4f} vs champion {champion[primary]:.4f}: "
                   f"{'+' if delta >= 0 else ''}{delta:.4f} ({'>=' if ok else '<'} min_delta {ev.min_delta})")
    passed &= ok
    for metric, tol in ev.guardrails.items():
        worse = -_better_by(metric, challenger[metric], champion[metric])
        ok = worse <= tol
        reasons.append(f"guardrail {metric}: {challenger[metric]:.4f} vs {champion[metric]:.4f} "
                       f"({'within' if ok else 'beyond'} tolerance {tol})")
        passed &= ok
    return passed, reasons


def slice_metrics(config: PipelineConfig, frame: Any, y: np.ndarray, scores: dict[str, np.ndarray]) -> dict[str, Any]:
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
            per[str(value)] = {"rows": len(idx), **{
                who: compute_metrics(config.task, y[pos], s[pos])[primary] for who, s in scores.items()
            }}
        out[col] = per
    return out


def run(config: PipelineConfig, pulled: PullManifest, trained: TrainManifest, *,
        registry: Registry, store: ArtifactStore | None = None) -> Verdict:
    """Score challenger and champion on the holdout and apply the gate."""
    import pandas as pd

    store = store or ArtifactStore(config.artifact_root_uri())
    out = store.stage(config.name, pulled.context.run_id, STAGE)
    holdout = pd.read_parquet(pulled.holdout.uri)
    y = pd.to_numeric(holdout[config.target]).to_numpy(dtype=np.float64)
    scores = {"challenger": load_model(trained).predict(holdout)}
    champion_info = registry.champion(config.registered_model_name)
    champion_metrics = None
    if champion_info is not None:
        champion_model = registry.load_model(config.registered_model_name, champion_info.version)
        scores["champion"] = champion_model.predict(holdout)
        champion_metrics = compute_metrics(config.task, y, scores["champion"])
    challenger_metrics = compute_metrics(config.task, y, scores["challenger"])
    passed, reasons = gate(config, challenger_metrics, champion_metrics)
    ev = config.evaluation
    verdict = Verdict(
        passed=passed, reasons=reasons, primary_metric=ev.primary_metric,
        challenger=challenger_metrics, champion=champion_metrics,
        champion_version=champion_info.version if champion_info else None,
        thresholds={"min_delta": ev.min_delta, "guardrails": dict(ev.guardrails), "floors": dict(ev.floors)},
        slices=slice_metrics(config, holdout, y, scores), rows=len(holdout),
        report_uri=str(out.file("verdict.json")),
    )
    out.write_json("verdict.json", verdict.to_dict())
    log.info("evaluate %s: %s=%.4f vs champion %s -> %s", config.name, ev.primary_metric,
             challenger_metrics[ev.primary_metric],
             None if champion_metrics is None else round(champion_metrics[ev.primary_metric], 4),
             "PASS" if passed else "FAIL")
    return verdict
