"""Stage 6 — promote: log to MLflow, register with lineage, move the aliases.

The challenger is logged as an MLflow pyfunc model (transformer + estimator,
with retrainflow's code packaged beside it), registered as a new version of
the pipeline's model with lineage tags, and given the alias ``challenger``.
``champion`` moves only when the verdict passed, and — with
``promotion: manual`` — only after a person approved it (:func:`approve`).

Idempotent: a retried promote finds the version its run already registered
(tag ``retrain_run_id``) instead of registering a second one. And a retrain
that repeats an earlier one — same training data (``train_fingerprint``), same
model-relevant configuration (``config_fingerprint``), same mode and, for a
warm start, the same parent — reuses that earlier version instead of logging
and registering an identical model again; the manifest says so (``reused``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrainflow.artifacts import ArtifactStore, exists, local_copy
from retrainflow.core.modes import Mode
from retrainflow.manifest import (
    FeaturesManifest,
    PromoteManifest,
    PullManifest,
    TrainManifest,
    Verdict,
)
from retrainflow.stages.train import load_model

if TYPE_CHECKING:
    from retrainflow.config import PipelineConfig
    from retrainflow.registry import Registry, VersionInfo

log = logging.getLogger(__name__)
STAGE = "promote"
_SERVING_PACKAGES = (
    "lightgbm",
    "scikit-learn",
    "pandas",
    "numpy",
    "pyarrow",
    "cloudpickle",
    "mlflow",
)


def serving_requirements() -> list[str]:
    """Pinned requirements of the pyfunc model (explicit: inference costs ~8 s a call)."""
    out = []
    for name in _SERVING_PACKAGES:
        try:
            out.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return out


#: The parts of a pipeline config that change the model a retrain produces (or its verdict).
#: Not: description, source, expectations, promotion, schedule, artifact_root, tags, monitoring.
MODEL_CONFIG_FIELDS = ("task", "target", "time_column", "features", "training", "evaluation")


def config_fingerprint(config: PipelineConfig) -> str:
    """A stable hash of the model-relevant parts of ``config`` (:data:`MODEL_CONFIG_FIELDS`).

    Two configs with the same fingerprint train the same model from the same
    data; editing a description, the schedule or monitoring does not change it.
    """
    relevant = config.model_dump(mode="json", include=set(MODEL_CONFIG_FIELDS))
    payload = json.dumps(relevant, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def lineage_tags(
    config: PipelineConfig, pulled: PullManifest, trained: TrainManifest, verdict: Verdict
) -> dict[str, str]:
    """The tags that make a version's history answerable from the registry alone."""
    ctx = pulled.context
    tags: dict[str, Any] = {
        "pipeline": config.name,
        "retrain_run_id": ctx.run_id,
        "dag_run_id": ctx.dag_run_id or "",
        "trigger_reason": ctx.trigger_reason,
        "requested_mode": ctx.requested_mode,
        "mode": pulled.mode,
        "mode_reason": pulled.mode_reason,
        # How a warm start continued its parent (training.warm_start.method); "" when stateless.
        "warm_method": config.training.warm_start.method if pulled.mode == Mode.WARM_START else "",
        "parent_version": pulled.parent_version or "",
        "estimator": trained.estimator,
        "window_start": pulled.train.start,
        "window_end": pulled.train.end,
        # A warm start covers its parent's data too; promote() widens this to the parent's start.
        "data_start": pulled.train.start,
        "data_end": pulled.train.end,
        "holdout_start": pulled.holdout.start,
        "holdout_end": pulled.holdout.end,
        # How the run's window end (= holdout_end) was chosen: request, logical_date or
        # newest_data (retrainflow.runs.build_context).
        "window_end_from": ctx.window_end_from,
        "train_fingerprint": pulled.train.fingerprint,
        "holdout_fingerprint": pulled.holdout.fingerprint,
        "config_fingerprint": config_fingerprint(config),
        "rows": trained.rows,
        "new_rows": pulled.new_rows,
        "replay_rows": pulled.replay_rows,
        "train_cpu_seconds": trained.train_cpu_seconds,
        "train_wall_seconds": trained.train_wall_seconds,
        "peak_rss_mb": trained.peak_rss_mb,
        # How the fit was threaded (core.training.fit_threads); "" for another estimator.
        "fit_threads": trained.fit_threads,
        "fit_threads_reason": trained.fit_threads_reason,
        "omp_wait_policy": trained.omp_wait_policy,
        "fit_busy_cpus": trained.busy_cpus,
        "fit_load_average": " ".join(f"{v:g}" for v in trained.load_average),
        "warm_starts_since_full": pulled.warm_starts_since_full,
        "schema": json.dumps(pulled.schema, sort_keys=True),
        "gate_passed": "true" if verdict.passed else "false",
        "primary_metric": verdict.primary_metric,
        "challenger_metric": verdict.challenger[verdict.primary_metric],
        "champion_metric": ""
        if verdict.champion is None
        else verdict.champion[verdict.primary_metric],
        "champion_at_evaluation": verdict.champion_version or "",
    }
    return {k: ("" if v is None else str(v)) for k, v in tags.items()}


def close_orphan_runs(registry: Registry, experiment_id: str, retrain_run_id: str) -> list[str]:
    """Mark the MLflow runs an earlier, killed attempt of this promote left ``RUNNING`` as
    ``KILLED``; returns their ids.

    A promote killed after its MLflow run started leaves that run open (and perhaps a
    logged model) but registers nothing; the retry logs a fresh run and registers once.
    """
    from retrainflow.registry import search_literal

    runs = registry.client.search_runs(
        [experiment_id],
        filter_string=f"tags.retrain_run_id = {search_literal(retrain_run_id)} "
        "and attributes.status = 'RUNNING'",
    )
    closed = []
    for run in runs:
        registry.client.set_terminated(run.info.run_id, status="KILLED")
        closed.append(run.info.run_id)
        log.warning(
            "promote %s: closed MLflow run %s left RUNNING by a killed attempt",
            retrain_run_id,
            run.info.run_id,
        )
    return closed


def _log_run(
    config: PipelineConfig,
    pulled: PullManifest,
    features: FeaturesManifest,
    trained: TrainManifest,
    verdict: Verdict,
    registry: Registry,
) -> tuple[str, str]:
    """Create the MLflow run with params, metrics, reports and the model; returns (run id, model uri)."""
    import mlflow

    from retrainflow.pyfunc import PyfuncModel

    with registry.tracking():
        experiment_id = registry.experiment(config.name)
        ctx = pulled.context
        close_orphan_runs(registry, experiment_id, ctx.run_id)
        with mlflow.start_run(
            experiment_id=experiment_id,
            run_name=ctx.run_id,
            tags={
                "retrain_run_id": ctx.run_id,
                "trigger_reason": ctx.trigger_reason,
                "mode": pulled.mode,
            },
        ) as run:
            mlflow.log_params(
                {
                    "mode": pulled.mode,
                    "estimator": trained.estimator,
                    "window_start": pulled.train.start,
                    "window_end": pulled.train.end,
                    "holdout_days": config.evaluation.holdout_days,
                    "parent_version": pulled.parent_version or "none",
                    "rows": trained.rows,
                    "features": len(features.feature_names),
                    **{f"param_{k}": v for k, v in trained.params.items()},
                    # num_threads may be "auto": what the fit used, and why
                    "fit_threads": "none" if trained.fit_threads is None else trained.fit_threads,
                    "fit_threads_reason": trained.fit_threads_reason,
                    "omp_wait_policy": trained.omp_wait_policy or "none",
                }
            )
            metrics = {f"holdout_{k}": v for k, v in verdict.challenger.items() if _finite(v)}
            if verdict.champion:
                metrics.update(
                    {f"champion_{k}": v for k, v in verdict.champion.items() if _finite(v)}
                )
            metrics.update(
                {
                    "train_cpu_seconds": trained.train_cpu_seconds,
                    "train_wall_seconds": trained.train_wall_seconds,
                    "peak_rss_mb": trained.peak_rss_mb,
                    "gate_passed": float(verdict.passed),
                }
            )
            mlflow.log_metrics(metrics)
            for report in (pulled.report_uri, verdict.report_uri):
                if exists(report):
                    with local_copy(report) as local:
                        mlflow.log_artifact(str(local), artifact_path="reports")
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=PyfuncModel(load_model(trained)),
                pip_requirements=serving_requirements(),
                code_paths=[str(Path(__file__).resolve().parents[1])],
            )
            return run.info.run_id, info.model_uri


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def identical_version(
    registry: Registry, name: str, tags: dict[str, str], verdict: Verdict
) -> VersionInfo | None:
    """An earlier version that this retrain would only repeat, or None.

    Identical means the same mode, training data, model configuration and —
    for a warm start, which continues its parent — the same parent (a stateless
    fit does not depend on the champion it is compared with). When this run's
    gate passed, only a version whose own gate passed qualifies: the champion
    must never be an ungated version.
    """
    keys = ["mode", "train_fingerprint", "config_fingerprint"]
    if tags["mode"] == Mode.WARM_START:
        keys.append("parent_version")
    if not all(tags.get(k) for k in keys[1:]):
        return None
    found = registry.find(name, {k: tags[k] for k in keys})
    usable = [v for v in found if v.gate_passed or not verdict.passed]
    return usable[-1] if usable else None


def run(
    config: PipelineConfig,
    pulled: PullManifest,
    features: FeaturesManifest,
    trained: TrainManifest,
    verdict: Verdict,
    *,
    registry: Registry,
    store: ArtifactStore | None = None,
) -> PromoteManifest:
    """Register the challenger (or reuse an identical version) and, if the gate passed
    (and policy is auto), crown it."""
    store = store or ArtifactStore(config.artifact_root_uri())
    out = store.stage(config.name, pulled.context.run_id, STAGE)
    name = config.registered_model_name
    version = registry.find_by_run(name, pulled.context.run_id)
    reused_reason = None
    if version is None:
        tags = lineage_tags(config, pulled, trained, verdict)
        if pulled.mode == Mode.WARM_START and pulled.parent_version:
            parent = registry.get_version(name, pulled.parent_version)
            tags["data_start"] = parent.tags.get("data_start", tags["data_start"])
        version = identical_version(registry, name, tags, verdict)
        if version is not None:
            reused_reason = (
                f"identical to version {version.version} (run {version.tags.get('retrain_run_id')}): "
                f"same {tags['mode']} training data {tags['train_fingerprint'][:12]}, configuration "
                f"{tags['config_fingerprint'][:12]}"
                + (
                    f" and parent {tags['parent_version']}"
                    if tags["mode"] == Mode.WARM_START
                    else ""
                )
            )
        else:
            mlflow_run_id, model_uri = _log_run(
                config, pulled, features, trained, verdict, registry
            )
            version = registry.register(name, model_uri, mlflow_run_id, tags)
    registry.set_challenger(name, version.version)
    previous = registry.champion(name)
    crowned = False
    awaiting = False
    if verdict.passed and config.promotion == "auto":
        registry.set_champion(
            name, version.version, reason=f"gate passed ({pulled.context.trigger_reason})"
        )
        crowned = True
    elif verdict.passed:
        awaiting = True
    champion = registry.champion(name)
    manifest = PromoteManifest(
        version=version.version,
        run_id=version.run_id or "",
        champion=crowned,
        champion_version=champion.version if champion else None,
        previous_champion=previous.version
        if previous and previous.version != version.version
        else None,
        awaiting_approval=awaiting,
        model_uri=f"models:/{name}/{version.version}",
        reused=reused_reason is not None,
        reused_reason=reused_reason,
    )
    out.write_json("manifest.json", manifest.to_dict())
    log.info(
        "promote %s: version %s %s; champion=%s%s",
        name,
        version.version,
        f"reused, {reused_reason}" if reused_reason else "registered",
        manifest.champion_version,
        " (awaiting approval)" if awaiting else "",
    )
    return manifest


def approve(
    config: PipelineConfig,
    promoted: PromoteManifest,
    *,
    registry: Registry,
    approver: str = "unknown",
) -> PromoteManifest:
    """Crown a version that passed its gate and waited for a person's approval."""
    name = config.registered_model_name
    previous = registry.set_champion(name, promoted.version, reason=f"approved by {approver}")
    registry.set_tags(name, promoted.version, {"approved_by": approver})
    return PromoteManifest(
        **{
            **promoted.to_dict(),
            "champion": True,
            "champion_version": promoted.version,
            "previous_champion": previous,
            "awaiting_approval": False,
        }
    )
