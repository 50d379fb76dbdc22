"""The embedded local stack: Airflow 3 components and an MLflow server, no Docker.

Every component runs as its own background process, started with the
virtualenv's own ``airflow`` / ``mlflow`` executables in a new session
(``setsid``) so that stopping it means signalling one process group:

==================  ===================================================
``api-server``      REST API v2, UI and the execution API for tasks
``scheduler``       schedules runs; its LocalExecutor runs the tasks
``dag-processor``   parses DAG files into the metadata database
``triggerer``       runs deferred tasks (optional)
``mlflow``          tracking UI / REST server (optional)
``worker-N``        Celery workers, one per queue list (CeleryExecutor only)
==================  ===================================================

The same code runs the production topology of ``docker-compose.yml`` on one host,
configured by environment only (README, "Production stack"): with
``AIRFLOW__CORE__EXECUTOR=CeleryExecutor`` the scheduler sends tasks to Celery
through ``AIRFLOW__CELERY__BROKER_URL`` and ``start`` adds one Celery worker per
entry of ``RETRAINFLOW_CELERY_WORKERS`` (``;``-separated queue lists, default one
worker serving ``default,training``); ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` moves
the metadata to PostgreSQL, ``MLFLOW_BACKEND_STORE_URI`` and
``MLFLOW_ARTIFACTS_DESTINATION`` move MLflow's server to PostgreSQL and S3. Before
anything starts, :mod:`retrainflow.airflow.preflight` checks that the database,
broker and buckets those variables name answer, with bounded timeouts.

Logs go to ``<home>/logs/<component>.log`` and process ids to
``<home>/run/<component>.pid``. Secrets (JWT secret, API secret key, Fernet
key) and the admin password are generated once under ``AIRFLOW_HOME`` so that
restarts, the CLI and in-process code all agree. For the same reason
:func:`start` records the host and ports it used in ``<home>/stack.json`` (no
secrets in it): a :class:`StackConfig` that is not given a port takes the recorded
one, so the in-process CLI, the monitor's ``retrainflow_api`` connection and the
plugin's MLflow links (:func:`mlflow_ui_url`) reach the stack that ``up`` started.

Nothing from Airflow is imported here: Airflow reads its configuration when
it is first imported, so this module only computes environment variables and
launches subprocesses.

Typical use::

    from retrainflow.airflow import stack

    cfg = stack.StackConfig()
    info = stack.start(cfg)          # idempotent
    ...
    stack.stop(cfg)
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests

from retrainflow import settings
from retrainflow.exceptions import StackError

log = logging.getLogger(__name__)

#: The simple auth manager user created for the local stack.
ADMIN_USER = "admin"

#: Where the stack listens when neither the caller nor ``<home>/stack.json`` says otherwise.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_API_PORT = 8080
DEFAULT_MLFLOW_PORT = 5000

#: Components in start order.
START_ORDER: tuple[str, ...] = ("mlflow", "api-server", "scheduler", "dag-processor", "triggerer")

#: Components in stop order. The scheduler goes first: stopping the API server
#: first leaves task supervisors retrying and the scheduler hanging. Celery workers
#: (``worker-N``) stop right after the scheduler (see :func:`_stop_order`).
STOP_ORDER: tuple[str, ...] = ("scheduler", "triggerer", "dag-processor", "api-server", "mlflow")

CELERY_EXECUTOR = "CeleryExecutor"
#: Queues of the one Celery worker started when ``RETRAINFLOW_CELERY_WORKERS`` is unset.
DEFAULT_WORKER_QUEUES = "default,training"
_WORKER_PREFIX = "worker-"

_SECRETS_FILE = "retrainflow_secrets.json"
_PASSWORDS_FILE = "simple_auth_manager_passwords.json"

# Loggers that flood server and task logs at INFO; task logs stay at INFO.
_QUIET_NAMESPACES = (
    "sqlalchemy",
    "alembic",
    "httpx",
    "httpcore",
    "urllib3",
    "botocore",
    "boto3",
    "s3transfer",
    "great_expectations",
    "mlflow",
    "evidently",
    "skops",
    "matplotlib",
    "numexpr",
    "filelock",
)


def _repo_dir(name: str) -> Path:
    return Path(settings.__file__).resolve().parents[2] / name


@dataclass
class StackConfig:
    """Where and how the local stack runs.

    Fields left at ``None`` are derived from ``home`` in ``__post_init__``.

    Attributes:
        home: The retrainflow home (``RETRAINFLOW_HOME``); default
            ``settings.paths().root``.
        airflow_home: ``AIRFLOW_HOME``; default ``<home>/airflow``.
        dags_folder: Folder scanned by the DAG processor; default the repo's ``dags/``.
        plugins_folder: Airflow plugins folder; default the repo's ``plugins/``.
        api_port: Port of the Airflow API server; default the one recorded in
            ``<home>/stack.json`` by the last :func:`start`, else ``DEFAULT_API_PORT``.
        mlflow_port: Port of the MLflow server; default as ``api_port``
            (``DEFAULT_MLFLOW_PORT``).
        host: Interface both servers bind to; default as ``api_port`` (``DEFAULT_HOST``).
        parallelism: ``core.parallelism``; LocalExecutor pre-forks this many workers.
        sql_alchemy_conn: Airflow metadata database; default
            ``$AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` when it names a server database
            (PostgreSQL…), else a SQLite file under ``airflow_home``.
        executor: ``core.executor``; default ``$AIRFLOW__CORE__EXECUTOR``, else
            ``LocalExecutor``. With ``CeleryExecutor`` the stack adds Celery workers.
        celery_workers: One queue list (comma-separated) per Celery worker to start; default
            ``$RETRAINFLOW_CELERY_WORKERS`` split on ``;``, else one worker serving
            ``default,training``. Ignored by other executors.
        mlflow_tracking_uri: What tasks use as ``MLFLOW_TRACKING_URI``; default
            ``$MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<home>/mlflow/mlflow.db``.
        with_mlflow_server: Also start ``mlflow server`` (UI / REST on ``mlflow_port``).
        with_triggerer: Also start ``airflow triggerer`` (needed for deferrable tasks).
        preload_task_libraries: Start the scheduler through
            :mod:`retrainflow.airflow.preload`, so LocalExecutor's forked task processes
            inherit pandas/LightGBM/MLflow/GE/Evidently instead of importing them per task.
        supervise: After :func:`start`, run :mod:`retrainflow.airflow.supervise`, which
            restarts a component that dies and records each one's health.
        scheduler_idle_sleep: ``scheduler.scheduler_idle_sleep_time``: how long an idle
            scheduler loop sleeps, and so how long a finished task can wait before the
            scheduler queues the next one (Airflow's default is 1 s; see the README's
            figures for what each value costs idle and saves per run).
    """

    home: Path | None = None
    airflow_home: Path | None = None
    dags_folder: Path = field(default_factory=lambda: _repo_dir("dags"))
    plugins_folder: Path = field(default_factory=lambda: _repo_dir("plugins"))
    api_port: int | None = None
    mlflow_port: int | None = None
    host: str | None = None
    parallelism: int = 4
    sql_alchemy_conn: str | None = None
    executor: str | None = None
    celery_workers: tuple[str, ...] | None = None
    mlflow_tracking_uri: str | None = None
    with_mlflow_server: bool = True
    with_triggerer: bool = True
    preload_task_libraries: bool = True
    supervise: bool = True
    scheduler_idle_sleep: float = 0.25

    def __post_init__(self) -> None:
        self.home = Path(self.home).expanduser().resolve() if self.home else settings.paths().root
        p = settings.Paths(self.home)
        self.airflow_home = (
            Path(self.airflow_home).expanduser().resolve() if self.airflow_home else p.airflow_home
        )
        self.dags_folder = Path(self.dags_folder).expanduser().resolve()
        self.plugins_folder = Path(self.plugins_folder).expanduser().resolve()
        if not self.sql_alchemy_conn:
            # A server database from the environment; SQLite always lives under this home (an
            # in-process run exports its own home's SQLite URL, which must not follow us).
            env_conn = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
            self.sql_alchemy_conn = (
                env_conn
                if env_conn and not env_conn.startswith("sqlite")
                else f"sqlite:///{self.airflow_home / 'airflow.db'}"
            )
        self.executor = (
            self.executor or os.environ.get("AIRFLOW__CORE__EXECUTOR") or ("LocalExecutor")
        )
        if self.celery_workers is None:
            raw = os.environ.get("RETRAINFLOW_CELERY_WORKERS") or DEFAULT_WORKER_QUEUES
            self.celery_workers = tuple(q.strip() for q in raw.split(";") if q.strip())
        self.celery_workers = tuple(self.celery_workers)
        for queues in self.celery_workers:
            names = [q.strip() for q in queues.split(",")]
            if not all(re.fullmatch(r"[A-Za-z0-9_.-]+", q) for q in names):
                raise StackError(
                    f"RETRAINFLOW_CELERY_WORKERS: {queues!r} is not a comma-separated list of "
                    "queue names (letters, digits, '_', '.', '-'); workers are separated by ';', "
                    "e.g. 'default;training'."
                )
        if self.api_port is None or self.mlflow_port is None or self.host is None:
            rec = recorded_address(self.home)
            self.host = self.host or str(rec.get("host") or DEFAULT_HOST)
            self.api_port = self.api_port or int(rec.get("api_port") or DEFAULT_API_PORT)
            self.mlflow_port = self.mlflow_port or int(
                rec.get("mlflow_port") or DEFAULT_MLFLOW_PORT
            )
        if not self.mlflow_tracking_uri:
            self.mlflow_tracking_uri = (
                os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{p.mlflow_db}"
            )

    # Derived locations -------------------------------------------------------------------

    @property
    def paths(self) -> settings.Paths:
        """The :class:`retrainflow.settings.Paths` under ``home``."""
        assert self.home is not None
        return settings.Paths(self.home)

    @property
    def log_dir(self) -> Path:
        """``<home>/logs``: one ``<component>.log`` per background process."""
        return self.paths.logs

    @property
    def run_dir(self) -> Path:
        """``<home>/run``: one ``<component>.pid`` per background process."""
        assert self.home is not None
        return self.home / "run"

    @property
    def password_file(self) -> Path:
        """The simple auth manager's JSON password file (``{"admin": "<password>"}``)."""
        assert self.airflow_home is not None
        return self.airflow_home / _PASSWORDS_FILE

    @property
    def secrets_file(self) -> Path:
        """JSON file holding the JWT secret, API secret key and Fernet key."""
        assert self.airflow_home is not None
        return self.airflow_home / _SECRETS_FILE

    @property
    def mlflow_credentials_file(self) -> Path:
        """JSON file holding the MLflow server's admin user and password (basic-auth)."""
        from retrainflow.airflow import mlflow_auth

        return mlflow_auth.credentials_file(self.home)

    @property
    def airflow_url(self) -> str:
        """Base URL of the Airflow API server (no trailing slash, no ``/api/v2``)."""
        return f"http://{self.host}:{self.api_port}"

    @property
    def mlflow_url(self) -> str:
        """Base URL of the MLflow server."""
        return f"http://{self.host}:{self.mlflow_port}"

    @property
    def mlflow_backend_uri(self) -> str:
        """Backend store of the MLflow server: ``$MLFLOW_BACKEND_STORE_URI``, else the tasks'
        database URI, else the home's SQLite."""
        if os.environ.get("MLFLOW_BACKEND_STORE_URI"):
            return os.environ["MLFLOW_BACKEND_STORE_URI"]
        uri = self.mlflow_tracking_uri or ""
        if uri.startswith(("http://", "https://", "databricks")):
            return f"sqlite:///{self.paths.mlflow_db}"
        return uri

    @property
    def record_file(self) -> Path:
        """``<home>/stack.json``: the host and ports :func:`start` used (no secrets)."""
        return self.paths.stack_record

    @property
    def mlflow_artifact_root(self) -> str:
        """Where the MLflow server keeps artifacts: ``$MLFLOW_ARTIFACTS_DESTINATION`` (e.g.
        ``s3://mlflow-artifacts``), else ``$RETRAINFLOW_MLFLOW_ARTIFACTS``, else the home's
        ``mlflow/artifacts`` folder."""
        return (
            os.environ.get("MLFLOW_ARTIFACTS_DESTINATION")
            or os.environ.get("RETRAINFLOW_MLFLOW_ARTIFACTS")
            or self.paths.mlflow_artifacts.as_uri()
        )

    @property
    def celery(self) -> bool:
        """Whether tasks run on Celery workers (``CeleryExecutor``)."""
        return self.executor == CELERY_EXECUTOR

    def workers(self) -> dict[str, str]:
        """Celery worker component name (``worker-1``…) to the queues it serves."""
        if not self.celery:
            return {}
        return {f"{_WORKER_PREFIX}{i}": q for i, q in enumerate(self.celery_workers or (), 1)}

    def components(self) -> tuple[str, ...]:
        """The enabled components, in start order."""
        return tuple(
            c
            for c in START_ORDER
            if (c != "mlflow" or self.with_mlflow_server)
            and (c != "triggerer" or self.with_triggerer)
        ) + tuple(self.workers())


@dataclass(frozen=True)
class StackInfo:
    """How to reach a running stack.

    Attributes:
        airflow_url: Base URL of the Airflow API server (``/api/v2`` and ``/auth`` live below it).
        mlflow_url: Base URL of the MLflow server, or ``None`` if it is not part of the stack.
        username: The admin user of the simple auth manager.
        password_file: JSON file holding the admin password.
        log_dir: Directory with one ``<component>.log`` per process.
        pids: Process id (= process group id) of each component.
        started: Components this call started (empty if everything was already up).
        startup_seconds: Wall time of the :func:`start` call.
        mlflow_credentials_file: JSON file with the MLflow server's user and password, or
            ``None`` if the server is not part of the stack.
    """

    airflow_url: str
    mlflow_url: str | None
    username: str
    password_file: Path
    log_dir: Path
    pids: dict[str, int]
    started: tuple[str, ...] = ()
    startup_seconds: float = 0.0
    mlflow_credentials_file: Path | None = None

    @property
    def password(self) -> str:
        """The admin password, read from ``password_file``."""
        return json.loads(self.password_file.read_text())[self.username]


# The stack's address -----------------------------------------------------------------------


def recorded_address(home: Path | None = None) -> dict[str, Any]:
    """The host and ports the last :func:`start` in ``home`` recorded, or ``{}`` if none.

    Args:
        home: The retrainflow home; default the current ``RETRAINFLOW_HOME``.

    Returns:
        ``{"host", "api_port", "mlflow_port", "airflow_url", "mlflow_url", ...}``.

    Raises:
        StackError: the record exists but cannot be read (a wrong port would be worse).
    """
    path = settings.Paths(home or settings.home()).stack_record
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise StackError(
            f"{path} cannot be read ({exc}); delete it and run `retrainflow up` "
            "(with --airflow-port/--mlflow-port if the stack does not use 8080/5000)."
        ) from None
    ok = (
        isinstance(data, dict)
        and isinstance(data.get("host"), str)
        and all(isinstance(data.get(k), int) for k in ("api_port", "mlflow_port"))
    )
    if not ok:
        raise StackError(
            f"{path} does not hold the stack's host, api_port and mlflow_port; delete it "
            "and run `retrainflow up` (with --airflow-port/--mlflow-port as needed)."
        )
    return data


def _record_address(cfg: StackConfig) -> None:
    """Atomically write ``<home>/stack.json`` with the address ``cfg`` uses (no secrets)."""
    record = {
        "host": cfg.host,
        "api_port": cfg.api_port,
        "mlflow_port": cfg.mlflow_port,
        "airflow_url": cfg.airflow_url,
        "mlflow_url": cfg.mlflow_url,
        "with_mlflow_server": cfg.with_mlflow_server,
    }
    from retrainflow.artifacts import atomic_path

    with atomic_path(cfg.record_file) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")


def mlflow_ui_url(home: Path | None = None) -> str:
    """Base URL of the MLflow UI for links (no trailing slash).

    ``RETRAINFLOW_MLFLOW_UI_URL`` if set (e.g. a proxy or the compose topology), else the
    MLflow server of the stack recorded in ``home`` (default port if none was recorded).
    """
    url = os.environ.get("RETRAINFLOW_MLFLOW_UI_URL")
    if url:
        return url.rstrip("/")
    return StackConfig(home=home).mlflow_url


# Secrets and credentials -------------------------------------------------------------------


def _write_once(path: Path, content: str) -> bool:
    """Atomically create ``path`` (mode 0600) unless it exists. Returns whether it was written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(content)
    try:
        os.link(tmp, path)  # fails if another process created it first
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def _read_json(path: Path) -> dict[str, str]:
    for _ in range(20):  # a concurrent writer may still be mid-way (only without link())
        try:
            text = path.read_text().strip()
            return json.loads(text or "{}")
        except json.JSONDecodeError:
            time.sleep(0.05)
    raise StackError(f"{path} is not valid JSON; delete it to regenerate it.")


def _secrets(cfg: StackConfig) -> dict[str, str]:
    """The JWT secret, API secret key and Fernet key, generated on first use."""
    path = cfg.secrets_file
    if not path.exists():
        generated = {
            "jwt_secret": secrets.token_urlsafe(48),
            "api_secret_key": secrets.token_urlsafe(32),
            "fernet_key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        }
        _write_once(path, json.dumps(generated, indent=2) + "\n")
    return _read_json(path)


def admin_credentials(cfg: StackConfig) -> tuple[str, str]:
    """The admin user and password of the stack, generating the password on first use.

    The password is stored in :attr:`StackConfig.password_file` in the format the
    simple auth manager reads (``{"admin": "<password>"}``).

    Args:
        cfg: The stack configuration.

    Returns:
        ``(username, password)``.

    Raises:
        StackError: The password file exists but is not valid JSON.
    """
    path = cfg.password_file
    if not path.exists():
        _write_once(path, json.dumps({ADMIN_USER: secrets.token_urlsafe(18)}) + "\n")
    passwords = _read_json(path)
    if ADMIN_USER not in passwords:  # file written by someone else: add our user
        passwords[ADMIN_USER] = secrets.token_urlsafe(18)
        path.write_text(json.dumps(passwords) + "\n")
        path.chmod(0o600)
    return ADMIN_USER, passwords[ADMIN_USER]


def connection_uri(cfg: StackConfig) -> str:
    """The Airflow connection URI of the API (``http://admin:<password>@host:port``).

    Suitable for ``AIRFLOW_CONN_RETRAINFLOW_API`` and
    :meth:`retrainflow.airflow.rest.AirflowClient.from_connection_uri`.
    """
    from urllib.parse import quote

    user, password = admin_credentials(cfg)
    return f"http://{quote(user, safe='')}:{quote(password, safe='')}@{cfg.host}:{cfg.api_port}"


def airflow_env(cfg: StackConfig) -> dict[str, str]:
    """Environment variables shared by every stack process and by in-process Airflow use.

    Only the variables the stack defines are returned (merge them over
    ``os.environ`` for a subprocess; ``os.environ.update()`` them before the first
    ``import airflow`` for in-process use). Creates the secrets and password
    files on first call.

    Args:
        cfg: The stack configuration.

    Returns:
        Variable name to value.
    """
    assert cfg.home is not None and cfg.airflow_home is not None
    cfg.airflow_home.mkdir(parents=True, exist_ok=True)
    keys = _secrets(cfg)
    admin_credentials(cfg)
    quiet = " ".join(f"{name}=WARNING" for name in _QUIET_NAMESPACES)
    from retrainflow.airflow import mlflow_auth

    # Clients that go through the MLflow server authenticate (its basic-auth app).
    mlflow_client = (
        mlflow_auth.client_env(
            cfg.home, tracking_uri=cfg.mlflow_tracking_uri, server_url=cfg.mlflow_url
        )
        if cfg.with_mlflow_server
        else {}
    )
    return {
        "RETRAINFLOW_HOME": str(cfg.home),
        "AIRFLOW_HOME": str(cfg.airflow_home),
        # core
        "AIRFLOW__CORE__DAGS_FOLDER": str(cfg.dags_folder),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(cfg.plugins_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": str(cfg.executor),
        "AIRFLOW__CORE__PARALLELISM": str(cfg.parallelism),
        "AIRFLOW__CORE__FERNET_KEY": keys["fernet_key"],
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{cfg.airflow_url}/execution/",
        # auth: simple auth manager, one fixed admin
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(cfg.password_file),
        "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt_secret"],
        # api server
        "AIRFLOW__API__SECRET_KEY": keys["api_secret_key"],
        "AIRFLOW__API__BASE_URL": cfg.airflow_url,
        "AIRFLOW__API__HOST": str(cfg.host),
        "AIRFLOW__API__PORT": str(cfg.api_port),
        "AIRFLOW__API__WORKERS": "1",
        # database
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": str(cfg.sql_alchemy_conn),
        **_sqlite_settings(cfg),
        # scheduler: hand a finished task's successor over quickly (an idle loop sleeps this long)
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": str(cfg.scheduler_idle_sleep),
        # dag processor: see new files within seconds, not minutes
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        # logging: keep task logs at INFO, silence access logs and library floods
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW__LOGGING__UVICORN_LOGGING_LEVEL": "WARNING",
        "AIRFLOW__LOGGING__NAMESPACE_LEVELS": quiet,
        # MLflow: tasks write to the tracking store directly
        "MLFLOW_TRACKING_URI": str(cfg.mlflow_tracking_uri),
        **mlflow_client,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_CONFIGURE_LOGGING": "false",
        "DO_NOT_TRACK": "1",
        "GX_ANALYTICS_ENABLED": "false",
        "GIT_PYTHON_REFRESH": "quiet",
        "PYTHONUNBUFFERED": "1",
        # LightGBM's OpenMP threads sleep instead of spinning while they wait (read once, when
        # the preloading scheduler imports lightgbm); an operator's own value wins.
        **{k: os.environ.get(k) or v for k, v in _openmp_env().items()},
        **_api_connection(cfg),
        # The plugin's MLflow links (an env var set by the user wins, e.g. behind a proxy).
        "RETRAINFLOW_MLFLOW_UI_URL": os.environ.get("RETRAINFLOW_MLFLOW_UI_URL") or cfg.mlflow_url,
    }


def _api_connection(cfg: StackConfig) -> dict[str, str]:
    """``AIRFLOW_CONN_RETRAINFLOW_API``, with which the monitoring DAG reaches the REST API.

    An env var set by the user wins (e.g. another deployment). Otherwise it is built only
    for the address :func:`start` recorded for this home: the admin password is never
    sent to a port where no stack of this home was started (something else may listen).
    """
    name = "AIRFLOW_CONN_RETRAINFLOW_API"
    if os.environ.get(name):
        return {name: os.environ[name]}
    rec = recorded_address(cfg.home)
    if rec and (rec["host"], rec["api_port"]) == (cfg.host, cfg.api_port):
        return {name: connection_uri(cfg)}
    return {}


#: Variables :func:`_sqlite_settings` sets; dropped from a server database's process
#: environment when inherited (an in-process run of another, SQLite, home exported them).
_SQLITE_ONLY = (
    "RETRAINFLOW_API_WRITE_CONCURRENCY",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_ENABLED",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC",
)


def _sqlite_settings(cfg: StackConfig) -> dict[str, str]:
    """A long busy timeout for a SQLite metadata DB (see :mod:`retrainflow.airflow.db_settings`)."""
    if not str(cfg.sql_alchemy_conn).startswith("sqlite"):
        return {}
    mod = "retrainflow.airflow.db_settings"
    return {
        # SQLite has one writer: the API server admits REST writes one at a time and answers
        # 503 + Retry-After when too many wait (retrainflow.airflow.admission).
        "RETRAINFLOW_API_WRITE_CONCURRENCY": "1",
        # No connection pool: opening a SQLite connection costs well under a millisecond,
        # while the default pool (5 + 10) ran dry under a burst and the API server's reads
        # then waited 30 s for a connection and failed (seen in CI after 100 triggers).
        "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_ENABLED": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": f"{mod}.SQLITE_CONNECT_ARGS",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC": f"{mod}.SQLITE_CONNECT_ARGS_ASYNC",
    }


def _openmp_env() -> dict[str, str]:
    from retrainflow.core.openmp import OPENMP_ENV

    return OPENMP_ENV


def _process_env(cfg: StackConfig) -> dict[str, str]:
    inherited = dict(os.environ)
    if not str(cfg.sql_alchemy_conn).startswith("sqlite"):
        for name in _SQLITE_ONLY:
            inherited.pop(name, None)
    return {**inherited, **airflow_env(cfg)}


# Processes ---------------------------------------------------------------------------------


def _bin(name: str) -> str:
    """An executable of the running virtualenv (falls back to ``PATH``)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def _command(cfg: StackConfig, component: str) -> list[str]:
    airflow = _bin("airflow")
    if component == "api-server":
        return [
            airflow,
            "api-server",
            "--host",
            str(cfg.host),
            "--port",
            str(cfg.api_port),
            "--workers",
            "1",
        ]
    if component == "scheduler":
        if cfg.preload_task_libraries and cfg.executor == "LocalExecutor":
            # Tasks fork from the scheduler: import their libraries once, here.
            return [
                sys.executable,
                "-m",
                "retrainflow.airflow.preload",
                "scheduler",
                "--skip-serve-logs",
            ]
        return [airflow, "scheduler", "--skip-serve-logs"]
    if component in cfg.workers():
        # Like the LocalExecutor scheduler: the worker imports the task libraries once and its
        # pool processes fork from it. Logs stay in the shared AIRFLOW_HOME/logs (one host), so
        # no log server: two workers on one host would fight over its port (8793).
        lead = (
            [sys.executable, "-m", "retrainflow.airflow.preload"]
            if cfg.preload_task_libraries
            else [airflow]
        )
        return [
            *lead,
            "celery",
            "worker",
            "--queues",
            cfg.workers()[component],
            "--celery-hostname",
            f"{component}@%h",
            "--skip-serve-logs",
            "--without-gossip",
            "--without-mingle",
        ]
    if component == "dag-processor":
        return [airflow, "dag-processor"]
    if component == "triggerer":
        return [airflow, "triggerer", "--skip-serve-logs"]
    if component == "mlflow":
        from retrainflow.airflow import mlflow_auth

        art = cfg.mlflow_artifact_root
        # A local folder is both the default root and the served destination (tasks that write
        # to SQLite directly also write artifacts there). Elsewhere (s3://…) the server proxies
        # every artifact (mlflow-artifacts:/…): only it needs the bucket's credentials.
        root = ["--default-artifact-root", art] if art.startswith("file:") else []
        return [
            _bin("mlflow"),
            "server",
            "--backend-store-uri",
            cfg.mlflow_backend_uri,
            *root,
            "--artifacts-destination",
            art,
            "--host",
            str(cfg.host),
            "--port",
            str(cfg.mlflow_port),
            "--workers",
            "1",
            *mlflow_auth.server_args(),  # MLflow's basic-auth app: no anonymous access
        ]
    raise ValueError(f"unknown component {component!r}")


def _stop_order(cfg: StackConfig) -> tuple[str, ...]:
    """:data:`STOP_ORDER` with the Celery workers after the scheduler: those configured, and
    any other ``worker-N`` with a pid file (a stack started with more workers than now)."""
    recorded = sorted(p.stem for p in cfg.run_dir.glob(f"{_WORKER_PREFIX}*.pid"))
    workers = tuple(dict.fromkeys([*cfg.workers(), *recorded]))
    return (STOP_ORDER[0], *workers, *STOP_ORDER[1:])


def _pid_file(cfg: StackConfig, component: str) -> Path:
    return cfg.run_dir / f"{component}.pid"


def _log_file(cfg: StackConfig, component: str) -> Path:
    return cfg.log_dir / f"{component}.log"


def _read_pid(cfg: StackConfig, component: str) -> int | None:
    """The recorded pid if that process is still alive (and not a recycled pid)."""
    path = _pid_file(cfg, component)
    try:
        pid = int(path.read_text().strip())
        mtime = path.stat().st_mtime
    except (OSError, ValueError):
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        if proc.create_time() > mtime + 5:  # pid reused by a newer process
            return None
    except psutil.Error:
        return None
    return pid


def _group_members(pgid: int) -> list[psutil.Process]:
    """Live processes whose process group is ``pgid``."""
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return members


def _tree(pid: int) -> list[psutil.Process]:
    """The process group of ``pid`` plus all descendants (task processes use their own groups)."""
    procs: dict[int, psutil.Process] = {p.pid: p for p in _group_members(pid)}
    try:
        root = psutil.Process(pid)
        procs[root.pid] = root
        for child in root.children(recursive=True):
            procs[child.pid] = child
    except psutil.Error:
        pass
    return list(procs.values())


def _signal_all(procs: list[psutil.Process], pgid: int, sig: signal.Signals) -> None:
    if pgid <= 1 or pgid == os.getpgrp():  # a corrupt pid file must never reach init or us
        raise StackError(f"refusing to signal process group {pgid}: it is not the stack's")
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    for proc in procs:
        try:
            proc.send_signal(sig)
        except psutil.Error:
            pass


def _terminate(pid: int, grace: float) -> None:
    """SIGTERM the group of ``pid`` and its descendants; SIGKILL what is left after ``grace``."""
    procs = _tree(pid)
    _signal_all(procs, pid, signal.SIGTERM)
    _, alive = psutil.wait_procs(procs, timeout=grace)
    alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    late = [p for p in _tree(pid) if p not in alive]  # children forked during shutdown
    if alive or late:
        _signal_all(alive + late, pid, signal.SIGKILL)
        psutil.wait_procs(alive + late, timeout=10)


def _launch(cfg: StackConfig, component: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    cmd = _command(cfg, component)
    log_path = _log_file(cfg, component)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    child_env = dict(env)
    if component == "mlflow":
        from retrainflow.airflow import mlflow_auth

        child_env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        child_env = mlflow_auth.server_env(cfg.home, child_env)
    if component in cfg.workers():
        # Each task instance records which worker ran it (its `hostname`: worker-N@<host>).
        child_env["RETRAINFLOW_WORKER_NAME"] = component
        child_env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] = "retrainflow.airflow.hostname.hostname"
    if component == "api-server" and "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS" in child_env:
        child_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"] = (
            "retrainflow.airflow.db_settings.API_SERVER_CONNECT_ARGS"
        )
    with open(log_path, "ab") as log:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log.write(f"\n===== {stamp} retrainflow starts: {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env,
            cwd=str(cfg.home),
            start_new_session=True,
        )
    _pid_file(cfg, component).write_text(f"{proc.pid}\n")
    return proc


def _redact(uri: str) -> str:
    """``uri`` with the password replaced by ``***``."""
    from retrainflow.airflow.preflight import redact

    return redact(uri)


def _migrate(cfg: StackConfig, env: dict[str, str], timeout: float) -> None:
    log_path = _log_file(cfg, "db-migrate")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} airflow db migrate\n".encode())
        log.flush()
        try:
            result = subprocess.run(
                [_bin("airflow"), "db", "migrate"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=str(cfg.home),
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise StackError(
                f"'airflow db migrate' took over {timeout:.0f} s; see {log_path}"
            ) from exc
    if result.returncode != 0:
        raise StackError(
            f"'airflow db migrate' failed (exit {result.returncode}); see {log_path}. "
            f"Check AIRFLOW__DATABASE__SQL_ALCHEMY_CONN={_redact(str(cfg.sql_alchemy_conn))}."
        )


# Health ------------------------------------------------------------------------------------


def airflow_health(cfg: StackConfig, timeout: float = 5) -> dict | None:
    """``GET /api/v2/monitor/health`` of the API server, or ``None`` if it does not answer."""
    try:
        resp = requests.get(f"{cfg.airflow_url}/api/v2/monitor/health", timeout=timeout)
        if resp.status_code == 200:
            return resp.json()
    except (requests.RequestException, ValueError):
        pass
    return None


def _port_in_use(host: str, port: int) -> bool:
    """Whether something already accepts connections on ``host:port``."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def _mlflow_ok(cfg: StackConfig, timeout: float = 5) -> bool:
    # /health stays public under the basic-auth app (mlflow.server.auth.is_unprotected_route).
    try:
        return requests.get(f"{cfg.mlflow_url}/health", timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def _unhealthy(cfg: StackConfig) -> list[str]:
    """Components that do not (yet) report healthy; empty when the stack is ready."""
    waiting: list[str] = []
    health = airflow_health(cfg)
    if health is None:
        waiting.append("api-server")
    else:
        for key, component in (
            ("metadatabase", "api-server"),
            ("scheduler", "scheduler"),
            ("dag_processor", "dag-processor"),
            ("triggerer", "triggerer"),
        ):
            if component not in cfg.components():
                continue
            if (health.get(key) or {}).get("status") != "healthy":
                waiting.append(component)
    if cfg.with_mlflow_server and not _mlflow_ok(cfg):
        waiting.append("mlflow")
    waiting += [w for w in cfg.workers() if not _worker_ready(cfg, w)]
    return waiting


def _worker_ready(cfg: StackConfig, component: str) -> bool:
    """Whether a Celery worker's log says it is ready since its last start (Celery logs
    ``celery@<name> ready.`` once connected to the broker)."""
    if _read_pid(cfg, component) is None:
        return False
    try:
        with open(_log_file(cfg, component), "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(fh.tell() - 256_000, 0))
            tail = fh.read().decode(errors="replace")
    except OSError:
        return False
    since_start = tail.rsplit("retrainflow starts:", 1)[-1]
    return f"{component}@" in since_start and " ready." in since_start


# Public API --------------------------------------------------------------------------------


def status(cfg: StackConfig) -> dict[str, bool]:
    """Whether each enabled component's recorded process is alive.

    Args:
        cfg: The stack configuration.

    Returns:
        Component name to ``True`` if its pid file names a live process.
    """
    return {c: _read_pid(cfg, c) is not None for c in cfg.components()}


def _info(cfg: StackConfig, started: tuple[str, ...], t0: float) -> StackInfo:
    return StackInfo(
        airflow_url=cfg.airflow_url,
        mlflow_url=cfg.mlflow_url if cfg.with_mlflow_server else None,
        username=ADMIN_USER,
        password_file=cfg.password_file,
        mlflow_credentials_file=cfg.mlflow_credentials_file if cfg.with_mlflow_server else None,
        log_dir=cfg.log_dir,
        pids={c: pid for c in cfg.components() if (pid := _read_pid(cfg, c)) is not None},
        started=started,
        startup_seconds=round(time.monotonic() - t0, 1),
    )


def start(cfg: StackConfig, *, timeout: float = 180) -> StackInfo:
    """Start the stack (or the components that are not running) and wait until it is healthy.

    Runs ``airflow db migrate`` first, then launches each missing component in its
    own session and waits until the API server reports healthy components and the
    MLflow server answers ``/health``. Calling it again while the stack runs just
    returns its :class:`StackInfo`.

    Args:
        cfg: The stack configuration.
        timeout: Seconds to wait for the whole stack, migration included.

    Returns:
        How to reach the stack.

    Raises:
        StackError: Migration failed, a component exited early, or the stack was not
            healthy in time. The message names the log file to read; everything this
            call started has been stopped.
    """
    t0 = time.monotonic()
    deadline = t0 + timeout
    running = status(cfg)
    missing = [c for c in cfg.components() if not running[c]]
    rec = recorded_address(cfg.home)
    moved = rec and (rec["host"], rec["api_port"], rec["mlflow_port"]) != (
        cfg.host,
        cfg.api_port,
        cfg.mlflow_port,
    )
    if moved and any(running.values()):
        raise StackError(
            f"The stack of {cfg.home} is running at http://{rec['host']}:{rec['api_port']} "
            f"(MLflow port {rec['mlflow_port']}), not at {cfg.airflow_url} (MLflow port "
            f"{cfg.mlflow_port}). Fix: use it there, or run `retrainflow down` first to move it."
        )
    if not missing and not _unhealthy(cfg):
        _record_address(cfg)
        if cfg.supervise and _supervisor_pid(cfg) is None:
            _start_supervisor(cfg)
        return _info(cfg, (), t0)
    _stop_supervisor(cfg)  # this call starts what is missing, not the supervisor

    for component, port in (("api-server", cfg.api_port), ("mlflow", cfg.mlflow_port)):
        if component in missing and _port_in_use(str(cfg.host), int(port or 0)):
            raise StackError(
                f"Port {port} on {cfg.host} is already in use, so the {component} cannot start "
                "there (another stack or program?). Fix: stop it or choose another port "
                f"({'api_port' if component == 'api-server' else 'mlflow_port'})."
            )

    env = _process_env(cfg)
    from retrainflow.airflow import preflight

    # The database, broker and buckets the environment names answer (bounded, clear errors).
    preflight.check(env, celery=cfg.celery, mlflow_server="mlflow" in missing)
    _record_address(cfg)  # before the processes: their retrainflow_api connection reads it
    env = _process_env(cfg)
    for d in (cfg.log_dir, cfg.run_dir, cfg.paths.mlflow_dir, cfg.paths.mlflow_artifacts):
        d.mkdir(parents=True, exist_ok=True)

    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        # The MLflow server does not need Airflow's database: start it during the migration.
        if "mlflow" in missing:
            procs["mlflow"] = _launch(cfg, "mlflow", env)
        if any(c != "mlflow" for c in missing):
            _migrate(cfg, env, timeout=max(deadline - time.monotonic(), 1))
        for component in missing:
            if component not in procs:
                procs[component] = _launch(cfg, component, env)

        waiting: list[str] = list(missing)
        while True:
            for component, proc in procs.items():
                code = proc.poll()
                if code is not None:
                    raise StackError(
                        f"The {component} process exited with code {code} during startup; "
                        f"see {_log_file(cfg, component)}."
                    )
            waiting = _unhealthy(cfg)
            if not waiting:
                break
            if time.monotonic() > deadline:
                logs = ", ".join(str(_log_file(cfg, c)) for c in waiting)
                raise StackError(
                    f"The local stack was not healthy after {timeout:.0f} s "
                    f"(waiting for: {', '.join(waiting)}); see {logs}."
                )
            time.sleep(1)
    except BaseException:
        for component in _stop_order(cfg):
            if component in procs:
                _terminate(procs[component].pid, grace=15)
                _pid_file(cfg, component).unlink(missing_ok=True)
        raise
    _record_address(cfg)
    if "api-server" in missing:
        warm_execution_api(cfg)
    if cfg.supervise:
        _start_supervisor(cfg)
    return _info(cfg, tuple(missing), t0)


def warm_execution_api(cfg: StackConfig, timeout: float = 60) -> float | None:
    """Make a new API server build its Task Execution API now rather than in the first task.

    The server builds that app on the first request under ``/execution/``: measured 3–5 s
    on this project's 2-core host, which the first task of the first run after ``up`` (or
    after a restart) paid before it could start. An anonymous request is enough — it is
    refused (401) after the build, changes nothing and never queues at the write gate.

    Returns:
        Seconds the request took; None when the server did not answer (the first task then
        pays the build, as before).
    """
    t0 = time.monotonic()
    try:
        requests.patch(
            f"{cfg.airflow_url}/execution/task-instances/00000000-0000-0000-0000-000000000000/run",
            timeout=timeout,
        )
    except requests.RequestException as exc:
        log.warning("could not warm up the execution API at %s: %s", cfg.airflow_url, exc)
        return None
    return time.monotonic() - t0


def stop(cfg: StackConfig, *, grace: float = 30) -> dict[str, bool]:
    """Stop every component: scheduler, triggerer, dag-processor, api-server, mlflow.

    Each component's process group (and any descendant that left it, such as task
    processes) gets SIGTERM, then SIGKILL after ``grace`` seconds — also the group of a
    component that already died (its orphaned workers). Pid files are removed.

    Args:
        cfg: The stack configuration.
        grace: Seconds to wait after SIGTERM before SIGKILL, per component.

    Returns:
        Component name to whether a running process was stopped.
    """
    _stop_supervisor(cfg)  # first: nothing may be restarted while the stack stops
    stopped: dict[str, bool] = {}
    for component in _stop_order(cfg):
        pid = _read_pid(cfg, component)
        if pid is not None:
            _terminate(pid, grace=grace)
        else:
            pid = _orphaned_group(cfg, component)
            if pid is not None:  # the component died; its workers live on in its group
                _terminate(pid, grace=grace)
        stopped[component] = pid is not None
        _pid_file(cfg, component).unlink(missing_ok=True)
    return stopped


_SUPERVISOR = "supervisor"


def _supervisor_pid(cfg: StackConfig) -> int | None:
    return _read_pid(cfg, _SUPERVISOR)


def _start_supervisor(cfg: StackConfig) -> int:
    """Start :mod:`retrainflow.airflow.supervise` for this stack in its own session."""
    from retrainflow.airflow import supervise

    path = supervise.save_config(cfg)
    log_path = _log_file(cfg, _SUPERVISOR)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "retrainflow.airflow.supervise", str(path)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_process_env(cfg),
            cwd=str(cfg.home),
            start_new_session=True,
        )
    _pid_file(cfg, _SUPERVISOR).write_text(f"{proc.pid}\n")
    return proc.pid


def _stop_supervisor(cfg: StackConfig) -> bool:
    """Stop the supervisor (it exits at its next 0.2 s tick). Returns whether one ran."""
    pid = _supervisor_pid(cfg)
    if pid is not None:
        # Only the supervisor itself: the components it restarted are in their own sessions
        # and belong to the stack, not to it.
        try:
            proc = psutil.Process(pid)
            proc.terminate()
            proc.wait(timeout=10)
        except psutil.TimeoutExpired:
            proc.kill()
        except psutil.Error:
            pass
    _pid_file(cfg, _SUPERVISOR).unlink(missing_ok=True)
    return pid is not None


def health(cfg: StackConfig) -> dict[str, dict[str, Any]]:
    """Each component's health, for ``retrainflow status``.

    Returns:
        Component name to ``{"process": "running" | "down", "pid", "api": "healthy" |
        "unhealthy" | "unknown", "restarts", "last_exit", "gave_up"}``, plus a
        ``"supervisor"`` entry (``process`` only).
    """
    from retrainflow.airflow import supervise

    api = airflow_health(cfg)
    keys = {"scheduler": "scheduler", "dag-processor": "dag_processor", "triggerer": "triggerer"}
    record = (supervise.read_health(cfg) or {}).get("components", {})
    out: dict[str, dict[str, Any]] = {}
    for component in cfg.components():
        pid = _read_pid(cfg, component)
        if component == "api-server":
            answer = "unknown" if pid is None else ("healthy" if api else "unhealthy")
        elif component in cfg.workers():
            answer = "healthy" if _worker_ready(cfg, component) else "unknown"
        elif component == "mlflow":
            answer = "healthy" if pid is not None and _mlflow_ok(cfg) else "unknown"
        else:
            status_ = ((api or {}).get(keys[component]) or {}).get("status")
            answer = status_ if status_ in ("healthy", "unhealthy") else "unknown"
        rec = record.get(component, {})
        out[component] = {
            "process": "running" if pid is not None else "down",
            "pid": pid,
            "api": answer,
            "restarts": int(rec.get("restarts") or 0),
            "last_exit": rec.get("last_exit"),
            "gave_up": bool(rec.get("gave_up")),
        }
    sup = _supervisor_pid(cfg)
    out[_SUPERVISOR] = {"process": "running" if sup is not None else "down", "pid": sup}
    return out


def _orphaned_group(cfg: StackConfig, component: str) -> int | None:
    """The recorded pid of a component that died while processes of its group (e.g. a
    crashed scheduler's LocalExecutor workers, which ignore SIGTERM) still run; else None.

    Each component is started as a session leader, so its pid is its group's id. When
    that pid now belongs to another process, the group is not ours: None.
    """
    try:
        pid = int(_pid_file(cfg, component).read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            return None  # alive: the component itself, or a recycled pid that is not ours
    except psutil.NoSuchProcess:
        pass  # gone (reaped), or a zombie its parent has not reaped yet: dead either way
    except psutil.Error:
        return None
    return pid if _group_members(pid) else None


def memory_mb(cfg: StackConfig) -> dict[str, float]:
    """Proportional set size (MB) of each running component's processes (for diagnostics).

    Args:
        cfg: The stack configuration.

    Returns:
        Component name to PSS in MB (USS/RSS if PSS is unavailable), plus ``"total"``.
    """
    out: dict[str, float] = {}
    for component in cfg.components():
        pid = _read_pid(cfg, component)
        if pid is None:
            continue
        total = 0
        for proc in _tree(pid):
            try:
                mem = proc.memory_full_info()
                total += getattr(mem, "pss", 0) or mem.rss
            except psutil.Error:
                continue
        out[component] = round(total / 2**20, 1)
    out["total"] = round(sum(out.values()), 1)
    return out


def process_count(cfg: StackConfig) -> int:
    """Number of live processes belonging to the stack."""
    return sum(len(_tree(pid)) for c in cfg.components() if (pid := _read_pid(cfg, c)) is not None)


def migrate(cfg: StackConfig, *, timeout: float = 300) -> None:
    """Create or upgrade the Airflow metadata database (``airflow db migrate``).

    Raises:
        StackError: the migration failed or timed out (names the log file).
    """
    _migrate(cfg, _process_env(cfg), timeout)
