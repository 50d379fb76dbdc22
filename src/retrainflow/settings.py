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

Environment variables that move state out of the home:

=============================  ====================================================
``RETRAINFLOW_CONFIG_DIR``     where pipeline YAML files are found (default:
                               ``config/pipelines`` of the checkout, else of the
                               current directory)
``RETRAINFLOW_ARTIFACT_ROOT``  artifact root of every pipeline whose YAML sets no
                               ``artifact_root``: a local path, ``file:///...`` or
                               ``s3://bucket/prefix`` (default ``$RETRAINFLOW_HOME/
                               artifacts``); see :func:`artifact_root`
``RETRAINFLOW_LAKE_URI``       root of the lake of ``source.kind: parquet`` with a
                               relative ``path``: a local path, ``file:///...`` or
                               ``s3://bucket/prefix`` (then the source is S3 at
                               ``<prefix>/<path>``; default ``$RETRAINFLOW_HOME/lake``);
                               see :func:`lake_root`
=============================  ====================================================

S3 locations use the standard ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY`` and ``AWS_DEFAULT_REGION`` variables (the URIs take no
query string).
"""

from __future__ import annotations

import logging
import os
import re
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


@dataclass(frozen=True)
class S3Location:
    """``s3://<bucket>/<prefix>`` (``prefix`` without slashes at either end, maybe empty)."""

    bucket: str
    prefix: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def key(self, path: str) -> str:
        """The key prefix of ``path`` (relative) under this location."""
        return "/".join(p for p in (self.prefix, path.strip("/")) if p)


_URI_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://(.*)$")


def _storage_root(var: str, raw: str) -> Path | S3Location:
    """The value of ``var``: a local folder (made absolute) or an S3 location.

    Raises:
        ConfigError: naming ``var``, for another scheme, a query string or no bucket.
    """
    from retrainflow.exceptions import EnvironmentSettingError

    m = _URI_RE.match(raw)
    if m is None:
        return Path(raw).expanduser().resolve()
    scheme, rest = m.group(1).lower(), m.group(2)
    expected = "a local path, file:///absolute/path or s3://bucket/prefix"
    if scheme == "file":
        if not rest.startswith("/"):
            raise EnvironmentSettingError(
                f"{var}={raw!r} is not an absolute file:/// URI; expected {expected}."
            )
        return Path(rest).resolve()
    if scheme != "s3":
        raise EnvironmentSettingError(
            f"{var}={raw!r} has the unsupported scheme {scheme!r}; expected {expected}."
        )
    if "?" in rest or "#" in rest:
        raise EnvironmentSettingError(
            f"{var}={raw!r} has a query string; expected {expected} (S3 options come from the "
            "AWS_* environment variables)."
        )
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise EnvironmentSettingError(f"{var}={raw!r} names no bucket; expected {expected}.")
    return S3Location(bucket, prefix.strip("/"))


def artifact_root() -> str:
    """Artifact root of pipelines whose YAML sets none: ``RETRAINFLOW_ARTIFACT_ROOT`` (a local
    path, made absolute, or ``s3://bucket/prefix``), else ``$RETRAINFLOW_HOME/artifacts``.

    Raises:
        ConfigError: naming the variable, for a value that is not such a location.
    """
    raw = os.environ.get("RETRAINFLOW_ARTIFACT_ROOT", "").strip()
    if not raw:
        return str(paths().artifacts)
    root = _storage_root("RETRAINFLOW_ARTIFACT_ROOT", raw)
    return root.uri if isinstance(root, S3Location) else str(root)


def lake_root() -> Path | S3Location:
    """Root of the lake of ``parquet`` sources with a relative path: ``RETRAINFLOW_LAKE_URI``
    (a local path, made absolute, or ``s3://bucket/prefix``), else ``$RETRAINFLOW_HOME/lake``.

    Raises:
        ConfigError: naming the variable, for a value that is not such a location.
    """
    raw = os.environ.get("RETRAINFLOW_LAKE_URI", "").strip()
    if not raw:
        return paths().lake
    return _storage_root("RETRAINFLOW_LAKE_URI", raw)


def mlflow_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the embedded SQLite store under the home."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    p = paths()
    p.mlflow_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{p.mlflow_db}"


def mlflow_artifact_location() -> str | None:
    """Artifact root for new MLflow experiments (``RETRAINFLOW_MLFLOW_ARTIFACTS`` overrides).

    ``None`` when tasks track through an MLflow server (``MLFLOW_TRACKING_URI=http…``): the
    server's own default (``mlflow-artifacts:/``, proxied to ``MLFLOW_ARTIFACTS_DESTINATION``,
    e.g. S3) applies. A local folder there would put the models of a multi-host deployment on
    one machine's disk.
    """
    uri = os.environ.get("RETRAINFLOW_MLFLOW_ARTIFACTS")
    if uri:
        return uri
    if os.environ.get("MLFLOW_TRACKING_URI", "").startswith(("http://", "https://")):
        return None
    p = paths()
    p.mlflow_artifacts.mkdir(parents=True, exist_ok=True)
    return p.mlflow_artifacts.as_uri()


#: The Dask scheduler that ``training.engine: dask`` fits on.
DASK_ADDRESS_ENV = "RETRAINFLOW_DASK_ADDRESS"


def dask_address() -> str | None:
    """The Dask scheduler of ``training.engine: dask`` (``RETRAINFLOW_DASK_ADDRESS``, e.g.
    ``tcp://10.0.0.5:8786``); None when unset or blank."""
    return os.environ.get(DASK_ADDRESS_ENV, "").strip() or None


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


def training_queue() -> str:
    """The Celery queue of the ``train`` task (``RETRAINFLOW_TRAINING_QUEUE``, default
    ``training``): fits go to workers started for them; every other task to ``default``.
    Executors without queues (LocalExecutor) ignore it."""
    return os.environ.get("RETRAINFLOW_TRAINING_QUEUE") or "training"


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
