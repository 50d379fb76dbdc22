"""MLflow's own authentication for the embedded MLflow server (``--app-name basic-auth``).

Without it anyone who reaches the server's port can, for example, move a registered
model's alias (``POST /api/2.0/mlflow/registered-models/alias``) and so crown any model
version. With MLflow's basic-auth app every request needs HTTP basic credentials; only
``/health``, ``/static…`` and ``/mlflow/server-info`` stay public.

Per home, under ``<home>/mlflow/`` (all mode 0600):

=================================  ==========================================================
``basic_auth_credentials.json``    the admin user and password (and the server's Flask secret
                                   key), generated once: ``retrainflow up`` names this file
``basic_auth.ini``                 the config MLflow reads through ``MLFLOW_AUTH_CONFIG_PATH``;
                                   rewritten from the credentials before each server start
``basic_auth.db``                  MLflow's user and permission store (SQLite)
=================================  ==========================================================

MLflow creates the admin user from ``admin_password`` only when its user store has no such
user yet; afterwards the password in the store is authoritative. So the credentials file and
the user store belong together: if the credentials file is lost while the store exists,
:func:`credentials` refuses to invent a new password (it would never be accepted).

The server needs the ``Flask-WTF`` package (``mlflow[auth]``) and a static Flask secret key
(``MLFLOW_FLASK_SERVER_SECRET_KEY``), see :func:`server_env`. Clients authenticate through
``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` (:func:`client_env`).

The password never appears in a log line, an exception message or on stdout: errors name
the file, never its content.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from retrainflow import settings
from retrainflow.airflow.stack import _read_json, _write_once
from retrainflow.exceptions import StackError

#: The MLflow admin user of the local stack.
ADMIN_USER = "admin"

#: ``mlflow server --app-name``: MLflow's HTTP basic authentication app.
APP_NAME = "basic-auth"

#: Permission of an authenticated non-admin user on resources without an explicit grant
#: (MLflow's default). Anonymous requests are refused whatever this says.
DEFAULT_PERMISSION = "READ"

#: What MLflow 3.17 calls to authenticate a request (its default, stated explicitly).
AUTHORIZATION_FUNCTION = "mlflow.server.auth:authenticate_request_basic_auth"

CREDENTIALS_FILE = "basic_auth_credentials.json"
CONFIG_FILE = "basic_auth.ini"
AUTH_DB_FILE = "basic_auth.db"

#: Variables that would make MLflow create an admin other than the one in the credentials
#: file (they take precedence over the ini file), or skip its bootstrap checks.
_SERVER_ENV_DROP = (
    "MLFLOW_AUTH_ADMIN_USERNAME",
    "MLFLOW_AUTH_ADMIN_PASSWORD",
    "_MLFLOW_AUTH_ADMIN_BOOTSTRAPPED",
)

_LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0", "::"}
_MIN_PASSWORD = 12  # MLflow's own policy (mlflow.utils.validation._validate_password)


@dataclass(frozen=True)
class MlflowCredentials:
    """The MLflow admin of a home. ``repr`` / ``str`` never show the secrets."""

    username: str
    password: str = field(repr=False)
    #: ``MLFLOW_FLASK_SERVER_SECRET_KEY``: signs the basic-auth app's sessions / CSRF tokens.
    flask_secret_key: str = field(repr=False)
    #: The file they were read from.
    path: Path


def _mlflow_dir(home: Path | None) -> Path:
    return settings.Paths(Path(home) if home else settings.home()).mlflow_dir


def credentials_file(home: Path | None = None) -> Path:
    """``<home>/mlflow/basic_auth_credentials.json`` (default home: ``RETRAINFLOW_HOME``)."""
    return _mlflow_dir(home) / CREDENTIALS_FILE


def config_file(home: Path | None = None) -> Path:
    """``<home>/mlflow/basic_auth.ini``: what ``MLFLOW_AUTH_CONFIG_PATH`` names."""
    return _mlflow_dir(home) / CONFIG_FILE


def auth_db(home: Path | None = None) -> Path:
    """``<home>/mlflow/basic_auth.db``: MLflow's user and permission store."""
    return _mlflow_dir(home) / AUTH_DB_FILE


def _private(path: Path) -> None:
    """Make ``path`` readable by its owner only (a hand-copied file may be group-readable)."""
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        path.chmod(0o600)


def _safe_value(value: str) -> bool:
    """Whether ``value`` survives an ini line unchanged (no line breaks, no outer blanks)."""
    return bool(value) and value == value.strip() and not any(c in value for c in "\r\n\0")


def credentials(home: Path | None = None) -> MlflowCredentials:
    """The MLflow admin credentials of ``home``, generated (mode 0600) on first use.

    Args:
        home: The retrainflow home; default ``RETRAINFLOW_HOME``.

    Returns:
        The credentials; the same on every call for the same home.

    Raises:
        StackError: The file is not valid, or it is missing while MLflow's user store
            exists (a new password would not match the stored one). The message names
            files, never a secret.
    """
    path = credentials_file(home)
    if not path.exists():
        db = auth_db(home)
        if db.exists() and db.stat().st_size > 0:
            raise StackError(
                f"{path} is missing but MLflow's user store {db} exists: its admin password "
                f"is no longer known. Fix: restore {path.name}, or stop the MLflow server "
                f"(`retrainflow down`), delete {db} (it holds MLflow's users and permissions) "
                "and start it again to get new credentials."
            )
        generated = {
            "username": ADMIN_USER,
            "password": secrets.token_urlsafe(24),
            "flask_secret_key": secrets.token_urlsafe(32),
        }
        _write_once(path, json.dumps(generated, indent=2) + "\n")
    _private(path)
    data = _read_json(path)
    if not isinstance(data, dict):
        raise StackError(f"{path} does not hold a JSON object; see {_mlflow_dir(home)}.")
    values = {k: data.get(k) for k in ("username", "password", "flask_secret_key")}
    bad = [k for k, v in values.items() if not isinstance(v, str) or not _safe_value(v)]
    if bad or len(str(values["password"])) < _MIN_PASSWORD:
        which = ", ".join(bad) or f"password (shorter than {_MIN_PASSWORD} characters)"
        raise StackError(
            f"{path} has no valid {which}. Fix: restore it, or delete it together with "
            f"{auth_db(home)} while the MLflow server is stopped to get new credentials."
        )
    return MlflowCredentials(
        username=str(values["username"]),
        password=str(values["password"]),
        flask_secret_key=str(values["flask_secret_key"]),
        path=path,
    )


def _ini_value(value: str) -> str:
    # MLflow reads the file with configparser's default interpolation: '%' must be doubled.
    return value.replace("%", "%%")


def config_text(home: Path | None = None, creds: MlflowCredentials | None = None) -> str:
    """The content of :func:`config_file`: MLflow 3.17's ``[mlflow]`` basic-auth section."""
    creds = creds or credentials(home)
    lines = [
        "# Written by retrainflow from basic_auth_credentials.json before each MLflow start.",
        "# admin_password only creates the admin user in an empty user store.",
        "[mlflow]",
        f"default_permission = {DEFAULT_PERMISSION}",
        f"database_uri = sqlite:///{_ini_value(str(auth_db(home)))}",
        f"admin_username = {_ini_value(creds.username)}",
        f"admin_password = {_ini_value(creds.password)}",
        f"authorization_function = {AUTHORIZATION_FUNCTION}",
        "grant_default_workspace_access = false",
    ]
    return "\n".join(lines) + "\n"


def write_config(home: Path | None = None, creds: MlflowCredentials | None = None) -> Path:
    """(Re)write :func:`config_file` atomically with mode 0600 and return its path."""
    path = config_file(home)
    text = config_text(home, creds)
    try:
        if path.read_text() == text:
            _private(path)
            return path
    except OSError:
        pass
    from retrainflow.artifacts import atomic_path

    with atomic_path(path) as tmp:  # mkstemp: created 0600
        tmp.write_text(text)
    return path


def server_args() -> list[str]:
    """Extra ``mlflow server`` arguments: run MLflow's basic-auth app."""
    return ["--app-name", APP_NAME]


def server_env(home: Path | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of the ``mlflow server`` process: ``base`` plus the basic-auth settings.

    Writes the ini file, creates the user store with mode 0600, sets
    ``MLFLOW_AUTH_CONFIG_PATH`` and
    ``MLFLOW_FLASK_SERVER_SECRET_KEY``, and drops ``MLFLOW_AUTH_ADMIN_*`` from ``base`` (they
    would override the ini file's admin).

    Args:
        home: The retrainflow home; default ``RETRAINFLOW_HOME``.
        base: The environment to extend (e.g. the stack's process environment).

    Returns:
        A new mapping; ``base`` is not modified.
    """
    creds = credentials(home)
    # MLflow creates its user store with the umask's mode: create it private (it holds the
    # users' password hashes); SQLite gives its journal files the database file's mode.
    db = auth_db(home)
    os.close(os.open(db, os.O_WRONLY | os.O_CREAT, 0o600))
    _private(db)
    env = {k: v for k, v in (base or {}).items() if k not in _SERVER_ENV_DROP}
    env["MLFLOW_AUTH_CONFIG_PATH"] = str(write_config(home, creds))
    env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = creds.flask_secret_key
    return env


def _server_address(url: str) -> tuple[str, int | None] | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return None
    host = (parts.hostname or "").lower()
    host = "127.0.0.1" if host in _LOOPBACK else host
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = None
    return host, port


def targets_server(tracking_uri: str | None, server_url: str) -> bool:
    """Whether credentials for ``server_url`` may go to a client using ``tracking_uri``.

    True for a local store (``sqlite:``, a path…: the credentials only matter to code that
    calls the server explicitly) and for ``server_url`` itself; false for another HTTP
    server, which must not receive this stack's password.
    """
    target = _server_address(tracking_uri or "")
    return target is None or target == _server_address(server_url)


def client_env(
    home: Path | None = None,
    *,
    tracking_uri: str | None = None,
    server_url: str | None = None,
) -> dict[str, str]:
    """``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` for clients of the server.

    Args:
        home: The retrainflow home; default ``RETRAINFLOW_HOME``.
        tracking_uri: The clients' ``MLFLOW_TRACKING_URI``. If it is an HTTP server other than
            ``server_url``, nothing is returned (that server has its own credentials).
        server_url: The MLflow server these credentials belong to.

    Returns:
        Variable name to value (empty when the credentials must not be sent).
    """
    if server_url is not None and not targets_server(tracking_uri, server_url):
        return {}
    creds = credentials(home)
    return {
        "MLFLOW_TRACKING_USERNAME": creds.username,
        "MLFLOW_TRACKING_PASSWORD": creds.password,
    }
