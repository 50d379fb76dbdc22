"""Stage 5 — evaluate: challenger vs champion on the same future rows.

Both models score the held-out rows, which are newer than every row either
model was trained on ("test on future data"), through the same raw-row
``predict`` that serving uses; the gate and the metrics are those of
:mod:`retrainflow.core.metrics` (also used by the backtest's gated strategies).

The stage writes a :class:`~retrainflow.manifest.Verdict`; ``promote`` reads
only that. There is no pass without thresholds: a first model still has to
meet the floors (and a config without floors gets a warning in the report).
"""

from __future__ import annotations

import logging
from datetime import date
from typing import TYPE_CHECKING

from retrainflow.artifacts import ArtifactStore, read_parquet
from retrainflow.core import metrics
from retrainflow.manifest import PullManifest, TrainManifest, Verdict
from retrainflow.stages.train import load_model

if TYPE_CHECKING:
    from retrainflow.config import PipelineConfig
    from retrainflow.registry import Registry

log = logging.getLogger(__name__)
STAGE = "evaluate"


def run(
    config: PipelineConfig,
    pulled: PullManifest,
    trained: TrainManifest,
    *,
    registry: Registry,
    store: ArtifactStore | None = None,
) -> Verdict:
    """Score challenger and champion on the holdout and apply the gate."""

    store = store or ArtifactStore(config.artifact_root_uri())
    out = store.stage(config.name, pulled.context.run_id, STAGE)
    holdout = read_parquet(pulled.holdout.uri)
    champion_info = registry.champion(config.registered_model_name)
    champion = None
    if champion_info is not None:
        champion = registry.load_model(config.registered_model_name, champion_info.version)
    result = metrics.challenge(
        config,
        holdout,
        load_model(trained),
        champion,
        champion_data_end=date.fromisoformat(champion_info.data_end)
        if champion_info is not None and champion_info.data_end
        else None,
    )
    passed, challenger_metrics, champion_metrics = result.passed, result.challenger, result.champion
    ev = config.evaluation
    verdict = Verdict(
        passed=passed,
        reasons=result.reasons,
        primary_metric=ev.primary_metric,
        challenger=challenger_metrics,
        champion=champion_metrics,
        champion_version=champion_info.version if champion_info else None,
        thresholds={
            "min_delta": ev.min_delta,
            "guardrails": dict(ev.guardrails),
            "floors": dict(ev.floors),
        },
        slices=metrics.slice_metrics(config, result.rows, result.y, result.scores)
        if result.scores
        else {},
        rows=len(result.rows),
        report_uri=str(out.file("verdict.json")),
    )
    out.write_json("verdict.json", verdict.to_dict())
    log.info(
        "evaluate %s: %s=%.4f vs champion %s -> %s",
        config.name,
        ev.primary_metric,
        challenger_metrics[ev.primary_metric],
        None if champion_metrics is None else round(champion_metrics[ev.primary_metric], 4),
        "PASS" if passed else "FAIL",
    )
    return verdict
