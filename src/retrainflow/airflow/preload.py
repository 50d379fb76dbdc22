"""Run an Airflow command with the tasks' heavy libraries imported first.

``python -m retrainflow.airflow.preload scheduler --skip-serve-logs`` imports
pandas, pyarrow, scikit-learn, LightGBM, MLflow, Great Expectations and
Evidently, then hands over to Airflow's own CLI. On Linux the LocalExecutor
forks its workers from the scheduler and each task process from a worker
(a bare ``os.fork``), so every retrainflow task starts with these modules
already in memory (shared copy-on-write) instead of spending ~5–15 s per task
importing them. Only the embedded stack's scheduler runs this way; nothing is
imported at DAG-parse time.
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
    "great_expectations",
    "evidently",
    "retrainflow.stages.pull",
    "retrainflow.stages.validate",
    "retrainflow.stages.train",
    "retrainflow.stages.evaluate",
    "retrainflow.stages.promote",
    "retrainflow.pyfunc",
    "retrainflow.validation",
    "retrainflow.monitoring.drift",
)


def preload(modules: tuple[str, ...] = MODULES) -> float:
    """Import ``modules`` quietly; returns the seconds it took. Missing ones are skipped."""
    from retrainflow import settings

    settings.quiet_third_party()
    t0 = time.perf_counter()
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:  # an optional library missing must not stop the scheduler
            logging.getLogger(__name__).warning("preload: cannot import %s: %s", name, exc)
    return time.perf_counter() - t0


def main() -> None:
    seconds = preload()
    print(f"retrainflow: preloaded task libraries in {seconds:.1f}s", file=sys.stderr, flush=True)
    from airflow.__main__ import main as airflow_main

    sys.argv = ["airflow", *sys.argv[1:]]
    airflow_main()


if __name__ == "__main__":
    main()
