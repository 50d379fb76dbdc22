"""Stage 4 — train: fit from scratch, or continue the champion on new rows.

Reads the features written by the ``features`` stage and runs steps 2–3 of the
fit sequence of :mod:`retrainflow.core.training` (the backtest and freshness run
the same functions): a new estimator (stateless), or the champion's estimator
continued with ``training.warm_start.method`` (warm start). The parent in the
registry is never modified.

The output is a :class:`~retrainflow.model.TabularModel` (transformer +
estimator) pickled to ``model.pkl``, plus its cost: CPU and wall seconds and
the process's peak memory while fitting, and how the fit was threaded
(:func:`~retrainflow.core.training.fit_threads`: threads, why, OpenMP's wait
policy, the load seen), which promote records in the lineage.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import TYPE_CHECKING

from retrainflow.artifacts import ArtifactStore
from retrainflow.core import training
from retrainflow.core.modes import Mode
from retrainflow.manifest import FeaturesManifest, PullManifest, TrainManifest
from retrainflow.metering import measure

if TYPE_CHECKING:
    from retrainflow.config import PipelineConfig
    from retrainflow.model import TabularModel
    from retrainflow.registry import Registry

log = logging.getLogger(__name__)
STAGE = "train"


def run(
    config: PipelineConfig,
    pulled: PullManifest,
    features: FeaturesManifest,
    *,
    registry: Registry,
    store: ArtifactStore | None = None,
) -> TrainManifest:
    """Train the challenger and write ``model.pkl``.

    Raises:
        RuntimeError: when training wrote no model (post-condition).
    """
    import pandas as pd

    from retrainflow.stages.features import TARGET

    training.prepare_openmp()  # before anything here loads LightGBM (the parent model does)
    store = store or ArtifactStore(config.artifact_root_uri())
    out = store.stage(config.name, pulled.context.run_id, STAGE)
    frame = pd.read_parquet(features.train_uri)
    y = frame.pop(TARGET).to_numpy()
    transformer = pickle.loads(Path(features.transformer_uri).read_bytes())
    parent_estimator = None
    if pulled.mode == Mode.WARM_START:
        assert pulled.parent_version is not None
        parent_estimator = registry.load_model(
            config.registered_model_name, pulled.parent_version
        ).estimator
    frame_mb = float(frame.memory_usage(deep=True).sum()) / 2**20
    threads = training.fit_threads(config, len(frame))
    with measure() as cost:
        estimator = training.fit_estimator(
            config, frame, y, features.categorical_features, parent_estimator, threads=threads
        )
    model = training.assemble(config, transformer, estimator)
    path = out.write_with("model.pkl", lambda p: p.write_bytes(pickle.dumps(model)))
    if not path.is_file() or path.stat().st_size == 0:
        raise RuntimeError(f"train wrote no model to {path}")
    manifest = TrainManifest(
        model_uri=str(path),
        estimator=config.training.estimator,
        mode=pulled.mode,
        rows=len(frame),
        train_cpu_seconds=round(cost.cpu_seconds, 3),
        train_wall_seconds=round(cost.wall_seconds, 3),
        peak_rss_mb=round(cost.peak_rss_mb, 1),
        start_rss_mb=round(cost.start_rss_mb, 1),
        train_frame_mb=round(frame_mb, 2),
        model_size_kb=round(path.stat().st_size / 1024, 1),
        params=dict(config.training.params),
        fit_threads=threads.threads,
        fit_threads_reason=threads.reason,
        omp_wait_policy=threads.omp_wait_policy,
        cpus=threads.cpus,
        busy_cpus=threads.busy,
        load_average=list(threads.load_average),
    )
    out.write_json("manifest.json", manifest.to_dict())
    log.info(
        "train %s: %s %s on %d rows in %.1fs (cpu %.1fs, peak %.0f MiB); threads %s, %s, "
        "OMP_WAIT_POLICY %s",
        config.name,
        pulled.mode,
        config.training.estimator,
        len(frame),
        cost.wall_seconds,
        cost.cpu_seconds,
        cost.peak_rss_mb,
        threads.threads,
        threads.reason,
        threads.omp_wait_policy,
    )
    return manifest


def load_model(manifest: TrainManifest) -> TabularModel:
    """The challenger written by :func:`run`."""
    with open(manifest.model_uri, "rb") as fh:
        model: TabularModel = pickle.load(fh)
    return model
