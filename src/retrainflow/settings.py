"""Where retrainflow keeps its state, and how third-party noise is silenced.

All state lives under ``RETRAINFLOW_HOME`` (default: ``.retrainflow`` in the
current directory, made absolute once so that child processes agree):

======================  ===============================================
``lake/<pipeline>/``    local Parquet data lake, ``date=YYYY-MM-DD/`` parts
``artifacts/``          stage outputs ``<pipeline>/<run_id>/<stage>/``
``mlflow/mlflow.db``    MLflow tracking + registry (SQLite)
``mlflow/artifacts/``   MLflow artifacts
``airflow/``            ``AIRFLOW_HOME`` of the embedded stack
``logs/``               logs of background servers
``stack.json``          host and ports of the embedded stack (``retrainflow up``)
``external/``           downloaded data sets (``retrainflow fetch-data``)
======================  ===============================================

``RETRAINFLOW_CONFIG_DIR`` overrides where pipeline YAML files are found
(default: ``config/pipelines`` of the checkout, else of the current directory).
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[2]


def home() -> Path:
    """The absolute ``RETRAINFLOW_HOME``; exported so that child processes agree."""
    raw = os.environ.get("RETRAINFLOW_HOME") or ".retrainflow"
    path = Path(raw).expanduser().resolve()
    os.environ["RETRAINFLOW_HOME"] = str(path)
    return path


def config_dir() -> Path:
    """The directory holding ``<pipeline>.yaml`` files."""
    raw = os.environ.get("RETRAINFLOW_CONFIG_DIR")
    if raw:
        return Path(raw).expanduser().resolve()
    for candidate in (_REPO_ROOT / "config" / "pipelines", Path.cwd() / "config" / "pipelines"):
        if candidate.is_dir():
            return candidate
    return Path.cwd() / "config" / "pipelines"


@dataclass(frozen=True)
class Paths:
    """Every location under one home directory."""

    root: Path

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def mlflow_dir(self) -> Path:
        return self.root / "mlflow"

    @property
    def mlflow_db(self) -> Path:
        return self.mlflow_dir / "mlflow.db"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.mlflow_dir / "artifacts"

    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def stack_record(self) -> Path:
        return self.root / "stack.json"


def paths() -> Paths:
    """Paths under the current ``RETRAINFLOW_HOME``."""
    return Paths(home())


def mlflow_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the embedded SQLite store under the home."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    p = paths()
    p.mlflow_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{p.mlflow_db}"


def mlflow_artifact_location() -> str:
    """Artifact root for new MLflow experiments (``RETRAINFLOW_MLFLOW_ARTIFACTS`` overrides)."""
    uri = os.environ.get("RETRAINFLOW_MLFLOW_ARTIFACTS")
    if uri:
        return uri
    p = paths()
    p.mlflow_artifacts.mkdir(parents=True, exist_ok=True)
    return p.mlflow_artifacts.as_uri()


_NOISY_LOGGERS = (
    "great_expectations",
    "mlflow",
    "alembic",
    "urllib3",
    "botocore",
    "boto3",
    "s3transfer",
    "evidently",
    "lightgbm",
    "matplotlib",
    "numexpr",
    "skops",
    "py.warnings",
    "sqlalchemy",
    "httpx",
    "filelock",
)


def quiet_third_party(level: int = logging.WARNING) -> None:
    """Silence INFO floods from libraries (call before importing them).

    Great Expectations and MLflow log hundreds of INFO lines per stage through
    plain :mod:`logging`; Airflow's logging config does not reach them.
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(level)
    # MLflow warns on every log_model about signatures and pip: expected here, not actionable.
    logging.getLogger("mlflow").setLevel(max(level, logging.ERROR))
    for category in (DeprecationWarning, FutureWarning, PendingDeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", message=".*DeprecatedImportWarning.*")
    warnings.filterwarnings("ignore", message=".*starlette.testclient.*")
    warnings.filterwarnings("ignore", module="great_expectations")
    warnings.filterwarnings("ignore", module="mlflow")
