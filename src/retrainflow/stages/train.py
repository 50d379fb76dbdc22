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

With ``training.engine: dask`` a stateless fit runs on the Dask cluster: the workers
read the training matrix's row groups themselves (this task reads its footer only),
and the manifest records the engine, the scheduler's address and the workers and
partitions the fit used (:mod:`retrainflow.core.dask_engine`). A warm start always
continues the champion here (``engine: local``, the reason recorded).
"""

from __future__ import annotations

import logging
import pickle
from typing import TYPE_CHECKING

from retrainflow.artifacts import ArtifactStore, exists, read_bytes, read_parquet, size
from retrainflow.core import training
from retrainflow.core.dask_engine import StoredRows
from retrainflow.core.modes import Mode
from retrainflow.manifest import FeaturesManifest, PullManifest, TrainManifest
from retrainflow.metering import measure

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

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

    from retrainflow.stages.features import TARGET

    training.prepare_openmp()  # before anything here loads LightGBM (the parent model does)
    store = store or ArtifactStore(config.artifact_root_uri())
    out = store.stage(config.name, pulled.context.run_id, STAGE)
    engine = training.choose_engine(config, warm=pulled.mode == Mode.WARM_START)
    rows: pd.DataFrame | StoredRows
    y: np.ndarray | None = None
    if engine.name == "dask":  # the workers read the rows; this task reads the footer only
        rows = StoredRows(str(features.train_uri), TARGET)
        n_rows, _, names = rows.footer()
        frame_mb = n_rows * len(names) * 8 / 2**20  # float64 features
    else:
        frame = read_parquet(features.train_uri)
        y = frame.pop(TARGET).to_numpy()
        rows, n_rows = frame, len(frame)
        frame_mb = float(frame.memory_usage(deep=True).sum()) / 2**20
    transformer = pickle.loads(read_bytes(features.transformer_uri))
    parent_estimator = None
    if pulled.mode == Mode.WARM_START:
        assert pulled.parent_version is not None
        parent_estimator = registry.load_model(
            config.registered_model_name, pulled.parent_version
        ).estimator
    threads = training.fit_threads(config, n_rows) if engine.name == "local" else None
    with measure() as cost:
        estimator, engine = training.fit(
            config,
            rows,
            y,
            features.categorical_features,
            parent_estimator,
            threads=threads,
            engine=engine,
        )
    if threads is None:  # Dask: each worker fitted with its own threads
        assert engine.dask is not None
        threads = training.ThreadChoice(
            engine.dask.threads,
            f"dask: the threads of the {engine.dask.workers} fitting workers (LightGBM's Dask "
            "interface sets num_threads to each worker's)",
            training.prepare_openmp(),
            training.usable_cpus(),
        )
    model = training.assemble(config, transformer, estimator)
    path = out.write_with("model.pkl", lambda p: p.write_bytes(pickle.dumps(model)))
    written = size(path) if exists(path) else 0
    if written == 0:
        raise RuntimeError(f"train wrote no model to {path}")
    manifest = TrainManifest(
        model_uri=str(path),
        estimator=config.training.estimator,
        mode=pulled.mode,
        rows=n_rows,
        train_cpu_seconds=round(cost.cpu_seconds, 3),
        train_wall_seconds=round(cost.wall_seconds, 3),
        peak_rss_mb=round(cost.peak_rss_mb, 1),
        start_rss_mb=round(cost.start_rss_mb, 1),
        train_frame_mb=round(frame_mb, 2),
        model_size_kb=round(written / 1024, 1),
        params=dict(config.training.params),
        fit_threads=threads.threads,
        fit_threads_reason=threads.reason,
        omp_wait_policy=threads.omp_wait_policy,
        cpus=threads.cpus,
        busy_cpus=threads.busy,
        load_average=list(threads.load_average),
        engine=engine.name,
        engine_reason=engine.reason,
        dask_address=engine.dask.address if engine.dask else None,
        dask_workers=engine.dask.workers if engine.dask else None,
        dask_partitions=engine.dask.partitions if engine.dask else None,
        dask_chunks=engine.dask.chunks if engine.dask else None,
    )
    out.write_json("manifest.json", manifest.to_dict())
    log.info(
        "train %s: %s %s on %d rows (%s) in %.1fs (cpu %.1fs, peak %.0f MiB); threads %s, "
        "%s, OMP_WAIT_POLICY %s",
        config.name,
        pulled.mode,
        config.training.estimator,
        n_rows,
        engine.name,
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
    model: TabularModel = pickle.loads(read_bytes(manifest.model_uri))
    return model
