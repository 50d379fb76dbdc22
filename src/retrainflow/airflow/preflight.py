"""Check the services a stack's environment names before anything starts.

The production topology (``docker-compose.yml``, or the same processes on one host) is
configured by environment only. A wrong database URL, an unreachable broker or a missing
bucket would otherwise show up minutes later as a component that never gets healthy, or
as a task stuck in ``queued``. :func:`check` asks each one once, with bounded timeouts,
and raises :class:`~retrainflow.exceptions.StackError` naming the variable to fix:

==================================  ==============================================
``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``  Airflow's metadata database (not SQLite)
``MLFLOW_BACKEND_STORE_URI``        the MLflow server's database (not SQLite)
``AIRFLOW__CELERY__BROKER_URL``     Celery's broker (Redis), CeleryExecutor only
``AIRFLOW__CELERY__RESULT_BACKEND`` Celery's result backend (``db+postgresql://``)
``RETRAINFLOW_ARTIFACT_ROOT``,      buckets of ``s3://`` locations, through
``RETRAINFLOW_LAKE_URI``,           ``AWS_ENDPOINT_URL`` and the standard AWS
``MLFLOW_ARTIFACTS_DESTINATION``    credential chain
==================================  ==============================================

No secret is ever printed: URLs are shown with their password replaced by ``***``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from retrainflow.exceptions import StackError

#: Seconds each service gets to answer.
TIMEOUT = 5.0

_S3_VARIABLES = (
    "RETRAINFLOW_ARTIFACT_ROOT",
    "RETRAINFLOW_LAKE_URI",
    "MLFLOW_ARTIFACTS_DESTINATION",
)


def redact(uri: str) -> str:
    """``uri`` with the password replaced by ``***``."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", uri)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return redact(text[0] if text else type(exc).__name__)


def check_database(variable: str, url: str, timeout: float = TIMEOUT) -> None:
    """Connect to ``url`` once (SQLite is skipped: it is a file the stack creates)."""
    if url.startswith("db+"):
        url = url[3:]
    if url.startswith("sqlite"):
        return
    import sqlalchemy as sa

    args = {"connect_timeout": int(max(timeout, 1))} if url.startswith("postgresql") else {}
    try:
        engine = sa.create_engine(url, connect_args=args, poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 — any driver error becomes one clear message
        raise StackError(
            f"{variable}={redact(url)}: cannot connect to the database "
            f"({_first_line(exc)}). Fix the host, port, user, password or database name."
        ) from None


def check_broker(url: str, timeout: float = TIMEOUT) -> None:
    """Ping the Celery broker (Redis; other transports are only checked for a reachable port)."""
    variable = "AIRFLOW__CELERY__BROKER_URL"
    if not url:
        raise StackError(
            f"{variable} is not set: the CeleryExecutor needs a broker, e.g. "
            "redis://127.0.0.1:6379/0 (README, 'Production stack')."
        )
    parts = urlsplit(url)
    try:
        if parts.scheme in ("redis", "rediss"):
            import redis

            redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout).ping()
        else:
            import socket

            with socket.create_connection((parts.hostname or "", parts.port or 0), timeout):
                pass
    except Exception as exc:  # noqa: BLE001
        raise StackError(
            f"{variable}={redact(url)}: the Celery broker does not answer "
            f"({_first_line(exc)}). Start it or fix the URL."
        ) from None


def check_bucket(variable: str, uri: str, timeout: float = TIMEOUT) -> None:
    """``HEAD`` the bucket of an ``s3://`` location through ``AWS_ENDPOINT_URL`` (if set)."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    bucket = urlsplit(uri).netloc
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    where = f"S3 endpoint {endpoint} (AWS_ENDPOINT_URL)" if endpoint else "S3"
    # A session of its own: boto3's default session keeps the credentials it found first.
    client = boto3.session.Session().client(
        "s3",
        config=Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1}),
    )
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchBucket", "NotFound"):
            problem = f"bucket {bucket!r} does not exist on {where}; create it"
        elif code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            problem = (
                f"{where} refuses the credentials for bucket {bucket!r}; check "
                "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
            )
        else:
            problem = f"{where} answered {code or exc} for bucket {bucket!r}"
        raise StackError(f"{variable}={uri}: {problem}.") from None
    except NoCredentialsError:
        raise StackError(
            f"{variable}={uri}: no S3 credentials found; set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or another source of boto3's credential chain)."
        ) from None
    except BotoCoreError as exc:
        raise StackError(
            f"{variable}={uri}: cannot reach {where} ({_first_line(exc)}). Start it or fix "
            "AWS_ENDPOINT_URL."
        ) from None


def check(env: Mapping[str, str], *, celery: bool, mlflow_server: bool) -> None:
    """Check every service ``env`` names; raise :class:`StackError` at the first that fails.

    Args:
        env: The stack's process environment.
        celery: The executor is Celery (check the broker and result backend).
        mlflow_server: The stack starts an MLflow server (check its database).
    """
    check_database(
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    )
    if mlflow_server and env.get("MLFLOW_BACKEND_STORE_URI"):
        check_database("MLFLOW_BACKEND_STORE_URI", env["MLFLOW_BACKEND_STORE_URI"])
    if celery:
        check_broker(env.get("AIRFLOW__CELERY__BROKER_URL", ""))
        backend = env.get("AIRFLOW__CELERY__RESULT_BACKEND", "")
        if backend.startswith("db+"):
            check_database("AIRFLOW__CELERY__RESULT_BACKEND", backend)
    for variable in _S3_VARIABLES:
        uri = env.get(variable, "")
        if uri.startswith("s3://"):
            check_bucket(variable, uri)
