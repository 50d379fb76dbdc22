"""Run an Airflow command with the tasks' heavy libraries imported first.

``python -m retrainflow.airflow.preload scheduler --skip-serve-logs`` imports
pandas, pyarrow, scikit-learn, LightGBM, MLflow, Great Expectations and
Evidently, then hands over to Airflow's own CLI. On Linux the LocalExecutor
forks its workers from the scheduler and each task process from a worker
(a bare ``os.fork``), so every retrainflow task starts with these modules
already in memory (shared copy-on-write) instead of spending ~5–15 s per task
importing them. Only the embedded stack's scheduler runs this way; nothing is
imported at DAG-parse time.

Importing is not all a task would otherwise pay on its first MLflow or model call, so
:func:`warm` also does, once, the work MLflow defers to first use and keeps for the rest of
the process (measured in one task process forked from a preloaded scheduler, one-week warm
start of ``flights``): importing its SQL tracking / registry stores (~2.5 s in every task
that opens the registry, most of it configuring their SQLAlchemy mappers, which the import
does), and the map of installed distributions that ``mlflow.pyfunc.load_model`` checks a
model's requirements against (~0.6 s in each of features, train and evaluate). Both are pure
Python state — no thread, file handle or connection is opened — so they are safe to inherit
through ``fork``.
"""

from __future__ import annotations

import importlib
import logging
import sys
import time

#: What retrainflow's stages import; order: cheap and shared first.
MODULES = (
    "numpy",
    "pandas",
    "pyarrow.parquet",
    "sklearn.compose",
    "sklearn.metrics",
    "lightgbm",
    "mlflow",
    "mlflow.pyfunc",
    # Imported by MLflow when a client first opens a SQL store (sqlite:// or postgresql://).
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.tracking.sqlalchemy_workspace_store",
    "mlflow.store.model_registry.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_workspace_store",
    "mlflow.tracing.processor.base_mlflow",
    "mlflow.tracing.processor.otel",
    "mlflow.tracing.export.utils",
    "great_expectations",
    "evidently",
    "retrainflow.stages.pull",
    "retrainflow.stages.validate",
    "retrainflow.stages.features",
    "retrainflow.stages.train",
    "retrainflow.stages.evaluate",
    "retrainflow.stages.promote",
    "retrainflow.stages.monitor",
    "retrainflow.pipeline",
    "retrainflow.registry",
    "retrainflow.airflow.rest",
    "retrainflow.pyfunc",
    "retrainflow.validation",
    "retrainflow.monitoring.drift",
)


def preload(modules: tuple[str, ...] = MODULES) -> float:
    """Import ``modules`` quietly; returns the seconds it took. Missing ones are skipped."""
    from retrainflow import settings
    from retrainflow.core.openmp import prepare_openmp

    settings.quiet_third_party()
    prepare_openmp()  # before lightgbm is imported: OpenMP reads its settings once
    t0 = time.perf_counter()
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:  # an optional library missing must not stop the scheduler
            logging.getLogger(__name__).warning("preload: cannot import %s: %s", name, exc)
    warm()
    return time.perf_counter() - t0


def warm() -> None:
    """Do once what MLflow otherwise does on first use in every task (see the module doc)."""
    log = logging.getLogger(__name__)
    try:
        from mlflow.utils.requirements_utils import warn_dependency_requirement_mismatches

        # Builds and caches MLflow's package -> modules map (installed distributions);
        # "mlflow" itself is always satisfied, so nothing is printed.
        warn_dependency_requirement_mismatches(["mlflow"])
    except Exception as exc:  # noqa: BLE001 - an optimisation; MLflow changing must not stop Airflow
        log.warning("preload: cannot warm MLflow: %s", exc)


def main() -> None:
    seconds = preload()
    print(f"retrainflow: preloaded task libraries in {seconds:.1f}s", file=sys.stderr, flush=True)
    from airflow.__main__ import main as airflow_main

    sys.argv = ["airflow", *sys.argv[1:]]
    airflow_main()


if __name__ == "__main__":
    main()
