"""Run the retraining stages in order, in this process, without a scheduler.

This is the same sequence the ``retrain__<pipeline>`` DAG runs task by task;
it serves tests, benchmarks (library vs Airflow overhead) and backtests. Each
stage still writes its artifacts and manifest, so a run looks the same on disk
whichever way it was executed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from retrainflow import settings
from retrainflow.artifacts import ArtifactStore
from retrainflow.manifest import (
    FeaturesManifest,
    PromoteManifest,
    PullManifest,
    RunContext,
    TrainManifest,
    ValidateManifest,
    Verdict,
)
from retrainflow.metering import measure

if TYPE_CHECKING:
    from retrainflow.config import PipelineConfig
    from retrainflow.registry import Registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunResult:
    """Every stage's manifest plus the wall seconds each stage took."""

    pull: PullManifest
    validate: ValidateManifest
    features: FeaturesManifest
    train: TrainManifest
    verdict: Verdict
    promote: PromoteManifest
    seconds: dict[str, float]

    def summary(self) -> dict[str, Any]:
        m = self.verdict.primary_metric
        return {
            "version": self.promote.version,
            "mode": self.pull.mode,
            "parent": self.pull.parent_version,
            "rows": self.train.rows,
            m: self.verdict.challenger[m],
            f"champion_{m}": None if self.verdict.champion is None else self.verdict.champion[m],
            "gate_passed": self.verdict.passed,
            "promoted": self.promote.champion,
            "champion": self.promote.champion_version,
        }


def run_all(
    config: PipelineConfig,
    context: RunContext,
    *,
    registry: Registry | None = None,
    store: ArtifactStore | None = None,
) -> RunResult:
    """pull → validate → features → train → evaluate → promote.

    Raises:
        Whatever a stage raises; stages before the failure keep their artifacts,
        and nothing is registered unless ``promote`` ran.
    """
    from retrainflow.core.openmp import prepare_openmp

    prepare_openmp()  # before features loads the parent model, and with it LightGBM
    from retrainflow.registry import Registry
    from retrainflow.stages import evaluate, features, promote, pull, train, validate

    settings.quiet_third_party()
    registry = registry or Registry()
    store = store or ArtifactStore(config.artifact_root_uri())
    seconds: dict[str, float] = {}

    def timed(name: str, call: Callable[[], Any]) -> Any:
        with measure(interval=0.5) as cost:
            result = call()
        seconds[name] = round(cost.wall_seconds, 3)
        return result

    reg = registry
    pulled = timed("pull", lambda: pull.run(config, context, registry=reg, store=store))
    validated = timed("validate", lambda: validate.run(config, pulled, store=store))
    feats = timed("features", lambda: features.run(config, pulled, registry=reg, store=store))
    trained = timed("train", lambda: train.run(config, pulled, feats, registry=reg, store=store))
    verdict = timed(
        "evaluate", lambda: evaluate.run(config, pulled, trained, registry=reg, store=store)
    )
    promoted = timed(
        "promote",
        lambda: promote.run(config, pulled, feats, trained, verdict, registry=reg, store=store),
    )
    return RunResult(pulled, validated, feats, trained, verdict, promoted, seconds)
