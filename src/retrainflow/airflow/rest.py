"""A small client for Airflow 3's REST API v2 (``requests`` only, no Airflow import).

Authentication is the auth manager's token endpoint: ``POST {base}/auth/token``
with ``{"username", "password"}`` returns an ``access_token`` (a JWT) that is sent
as ``Authorization: Bearer ...``. The token is cached and fetched again once when
the API answers 401 (expired) or 403 "Invalid JWT token" (the stack was restarted
with another secret).

Every non-2xx answer raises :class:`retrainflow.exceptions.AirflowApiError` whose
``status`` is the HTTP status and whose message names the cause and the fix.

Why not the official ``apache-airflow-client`` (not a dependency): it would replace
only the URL and body building of the endpoints below. It has no token helper (``/auth/token``), so the token fetch, the
refetch after a 401 and the mapping of errors to ``AirflowApiError`` with a fix in
the message would stay here either way. And it costs where this client runs — in the
monitoring task, on every check: importing ``airflow_client.client`` 3.3.2 took
1.2-2.2 s here (``python -X importtime``) against 0.17 s for ``requests``, and it
parses every answer into the full response models of one server version (a DAG
needs 15 fields). Worth switching if much more of the API is needed.

Example::

    client = AirflowClient.from_connection_uri("http://admin:secret@127.0.0.1:8080")
    client.wait_for_dag("my_dag", timeout=120)
    client.set_paused("my_dag", False)
    run = client.trigger_dag_run("my_dag", {"window": "2024-01-01"})
    final = client.wait_for_dag_run("my_dag", run["dag_run_id"], timeout=600)
"""

from __future__ import annotations

import json as _json
import os
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from retrainflow.exceptions import AirflowApiError

#: Dag run states after which a run no longer changes by itself.
FINAL_DAG_RUN_STATES = frozenset({"success", "failed"})

#: Environment variable holding the API's connection URI (Airflow connection ``retrainflow_api``).
CONNECTION_ENV_VAR = "AIRFLOW_CONN_RETRAINFLOW_API"


def _q(value: str) -> str:
    """Percent-encode one path segment (run ids may contain ``:``, ``+``, ``/`` ...)."""
    return quote(str(value), safe="")


def _detail(resp: requests.Response) -> str:
    """Airflow's ``detail`` field (or the raw body), shortened."""
    try:
        body = resp.json()
    except ValueError:
        return (resp.text or "").strip()[:500]
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, list):  # pydantic validation errors
        parts = []
        for err in detail:
            if isinstance(err, dict):
                loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
                parts.append(f"{loc}: {err.get('msg', err)}" if loc else str(err.get("msg", err)))
            else:
                parts.append(str(err))
        return "; ".join(parts)[:1000]
    if isinstance(detail, dict):
        return str(detail.get("reason") or detail.get("message") or detail)[:1000]
    return str(detail)[:1000]


class AirflowClient:
    """Client of one Airflow API server.

    Args:
        base_url: Server root, e.g. ``http://127.0.0.1:8080`` (a trailing ``/api/v2`` is
            tolerated and removed).
        username: User of the auth manager.
        password: Its password.
        timeout: Seconds per HTTP request.
    """

    #: Times a 503/429 answer (busy, nothing changed) is retried after its Retry-After.
    BUSY_RETRIES = 6

    def __init__(self, base_url: str, username: str, password: str, timeout: float = 30) -> None:
        base = base_url.rstrip("/")
        base = base.removesuffix("/api/v2")
        self.base_url = base
        self.username = username
        self._password = password
        self.timeout = timeout
        self._token: str | None = None
        self._session = requests.Session()
        # A busy server answers 503 (or 429) with Retry-After before changing anything
        # (retrainflow.airflow.admission): wait as told and try again, a bounded number of
        # times, for every method. Other statuses are answered as they come.
        busy = Retry(
            total=None,
            connect=0,
            read=0,
            redirect=0,
            other=0,
            status=self.BUSY_RETRIES,
            status_forcelist=(429, 503),
            allowed_methods=None,
            respect_retry_after_header=True,
            backoff_factor=0.5,
            backoff_max=10,
            raise_on_status=False,
        )
        self._session.mount("http://", HTTPAdapter(max_retries=busy))
        self._session.mount("https://", HTTPAdapter(max_retries=busy))

    def __repr__(self) -> str:
        return f"AirflowClient({self.base_url!r}, user={self.username!r})"

    # Construction ------------------------------------------------------------------------

    @classmethod
    def from_connection_uri(cls, uri: str, timeout: float = 30) -> AirflowClient:
        """Build a client from an Airflow connection URI.

        ``http://user:pass@host:port[/path]``; user and password are percent-decoded.
        ``https://`` is kept; other schemes (e.g. ``airflow://`` or ``http+https``) are
        read as ``http``. A ``__extra__`` query is ignored.

        Args:
            uri: The connection URI.
            timeout: Seconds per HTTP request.

        Returns:
            The client.

        Raises:
            AirflowApiError: The URI has no host or no credentials.
        """
        parts = urlsplit(uri)
        if not parts.hostname:
            raise AirflowApiError(
                f"Connection URI {uri.split('@')[-1]!r} has no host; expected "
                "http://user:password@host:port.",
                status=None,
            )
        if parts.username is None or parts.password is None:
            raise AirflowApiError(
                f"Connection URI for {parts.hostname} has no user and password; expected "
                "http://user:password@host:port.",
                status=None,
            )
        scheme = "https" if parts.scheme in ("https", "http+https") else "http"
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        netloc = f"{host}:{parts.port}" if parts.port else host
        base = f"{scheme}://{netloc}{parts.path.rstrip('/')}"
        return cls(base, unquote(parts.username), unquote(parts.password), timeout=timeout)

    @classmethod
    def from_env(cls, var: str = CONNECTION_ENV_VAR, timeout: float = 30) -> AirflowClient:
        """Build a client from the connection URI in environment variable ``var``.

        Raises:
            AirflowApiError: The variable is not set.
        """
        uri = os.environ.get(var)
        if not uri:
            raise AirflowApiError(
                f"{var} is not set; set it to http://user:password@host:port of the Airflow API.",
                status=None,
            )
        return cls.from_connection_uri(uri, timeout=timeout)

    # Low level ---------------------------------------------------------------------------

    def _fetch_token(self) -> str:
        url = f"{self.base_url}/auth/token"
        try:
            resp = self._session.post(
                url,
                json={"username": self.username, "password": self._password},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise self._unreachable(exc) from exc
        if resp.status_code in (400, 401, 403):
            raise AirflowApiError(
                f"Airflow at {self.base_url} rejected the credentials of user "
                f"{self.username!r} ({resp.status_code}: {_detail(resp)}). Fix: use the password "
                "from the simple auth manager's password file (AIRFLOW__CORE__"
                "SIMPLE_AUTH_MANAGER_PASSWORDS_FILE) or the connection URI "
                f"{CONNECTION_ENV_VAR}.",
                status=resp.status_code,
                url=url,
            )
        if not resp.ok:
            raise self._error(resp, "POST", "/auth/token")
        try:
            token = resp.json()["access_token"]
        except (ValueError, KeyError, TypeError) as exc:
            raise AirflowApiError(
                f"{url} answered {resp.status_code} without an access_token; is {self.base_url} "
                "an Airflow 3 API server?",
                status=resp.status_code,
                url=url,
            ) from exc
        self._token = token
        return token

    def _unreachable(self, exc: Exception) -> AirflowApiError:
        return AirflowApiError(
            f"Cannot reach the Airflow API at {self.base_url} ({type(exc).__name__}: {exc}). "
            "Fix: start the stack (retrainflow stack start) or check the URL.",
            status=None,
            url=self.base_url,
        )

    @staticmethod
    def _needs_new_token(resp: requests.Response) -> bool:
        if resp.status_code == 401:
            return True
        return resp.status_code == 403 and "invalid jwt" in _detail(resp).lower()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
        ok_404: bool = False,
    ) -> Any:
        """Call ``{base}{path}`` with a bearer token and return the decoded JSON body.

        Args:
            method: HTTP method.
            path: Path below the server root, starting with ``/`` (already URL-encoded).
            json: JSON body, if any.
            params: Query parameters.
            ok_404: Return ``None`` on 404 instead of raising.

        Returns:
            The decoded JSON (``None`` for an empty body).

        Raises:
            AirflowApiError: Non-2xx answer, or the server is unreachable.
        """
        url = f"{self.base_url}{path}"
        for attempt in (1, 2):
            token = self._token or self._fetch_token()
            try:
                resp = self._session.request(
                    method,
                    url,
                    json=json,
                    params=params,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=self.timeout,
                )
            except requests.RequestException as exc:
                raise self._unreachable(exc) from exc
            if attempt == 1 and self._needs_new_token(resp):
                self._token = None
                continue
            break
        if ok_404 and resp.status_code == 404:
            return None
        if not resp.ok:
            raise self._error(resp, method, path)
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError as exc:
            raise AirflowApiError(
                f"{method} {path} answered {resp.status_code} with a body that is not JSON.",
                status=resp.status_code,
                url=url,
            ) from exc

    def _error(self, resp: requests.Response, method: str, path: str) -> AirflowApiError:
        status = resp.status_code
        detail = _detail(resp)
        what = f"{method} {path}"
        if status == 401:
            msg = (
                f"{what}: not authenticated ({detail}). Fix: check the user and password "
                f"of {self.username!r}."
            )
        elif status == 403:
            msg = (
                f"{what}: user {self.username!r} is not allowed to do this ({detail}). "
                "Fix: use a user with the needed role (e.g. admin in "
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS)."
            )
        elif status == 404:
            msg = (
                f"{what}: not found ({detail}). Fix: check the DAG id / run id; a new DAG "
                "file appears only after the DAG processor has parsed it (wait_for_dag)."
            )
        elif status == 409:
            msg = (
                f"{what}: conflict, the DAG run already exists ({detail}). Fix: use a new "
                "run id or logical date, or fetch the existing run."
            )
        elif status in (429, 503):
            msg = (
                f"{what}: the API server is busy ({detail}); retried {self.BUSY_RETRIES} times "
                "after its Retry-After. Nothing was changed. Fix: try again later, or spread "
                "the requests out."
            )
        elif status in (400, 422):
            msg = (
                f"{what}: invalid request ({detail}). Fix: correct the request body or parameters."
            )
        else:
            msg = f"{what}: Airflow answered {status} ({detail})."
        return AirflowApiError(msg, status=status, url=f"{self.base_url}{path}", detail=detail)

    # API ---------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``GET /api/v2/monitor/health``: status of metadatabase, scheduler, triggerer, dag processor."""
        return self.request("GET", "/api/v2/monitor/health")

    def get_dag(self, dag_id: str) -> dict[str, Any]:
        """The DAG as the API sees it (``is_paused``, ``last_parsed_time`` ...).

        Raises:
            AirflowApiError: status 404 if the DAG processor has not (yet) stored it.
        """
        return self.request("GET", f"/api/v2/dags/{_q(dag_id)}")

    def wait_for_dag(self, dag_id: str, timeout: float = 120, poll: float = 2) -> dict[str, Any]:
        """Wait until the DAG processor has parsed ``dag_id`` (the API knows it and it is not stale).

        Args:
            dag_id: The DAG id.
            timeout: Seconds to wait.
            poll: Seconds between checks.

        Returns:
            The DAG as :meth:`get_dag` returns it.

        Raises:
            AirflowApiError: status 404 if it did not appear in time (the message points
                at import errors if Airflow recorded any).
        """
        deadline = time.monotonic() + timeout
        while True:
            dag = self.request("GET", f"/api/v2/dags/{_q(dag_id)}", ok_404=True)
            if dag is not None and not dag.get("is_stale", False):
                return dag
            if time.monotonic() > deadline:
                errors = self._import_errors()
                hint = f" Import errors: {errors}" if errors else ""
                raise AirflowApiError(
                    f"DAG {dag_id!r} was not parsed within {timeout:.0f} s. Fix: check that its "
                    "file is in the DAG folder and imports cleanly (dag-processor log)." + hint,
                    status=404,
                    dag_id=dag_id,
                )
            time.sleep(poll)

    def _import_errors(self) -> str:
        try:
            body = self.request("GET", "/api/v2/importErrors", params={"limit": 5})
        except AirflowApiError:
            return ""
        errs = (body or {}).get("import_errors", [])
        return "; ".join(
            f"{e.get('filename')}: {str(e.get('stack_trace', ''))[-300:]}" for e in errs
        )

    def set_paused(self, dag_id: str, paused: bool) -> dict[str, Any]:
        """Pause or unpause a DAG (new DAGs start paused).

        Returns:
            The updated DAG.
        """
        return self.request(
            "PATCH",
            f"/api/v2/dags/{_q(dag_id)}",
            json={"is_paused": bool(paused)},
            params={"update_mask": "is_paused"},
        )

    def trigger_dag_run(
        self,
        dag_id: str,
        conf: dict[str, Any] | None = None,
        run_id: str | None = None,
        logical_date: datetime | str | None = None,
        note: str | None = None,
    ) -> dict[str, Any]:
        """Create a manual DAG run (``POST /api/v2/dags/{dag_id}/dagRuns``).

        Args:
            dag_id: The DAG id.
            conf: The run's ``conf`` (``params`` of the DAG), JSON-serialisable.
            run_id: Run id; Airflow generates one if omitted. Allowed characters:
                ``A-Za-z0-9_.~:+-``.
            logical_date: Aware datetime or ISO string; ``None`` (the default) lets
                several runs coexist without a logical date.
            note: Optional note shown in the UI.

        Returns:
            The new run (``dag_run_id``, ``state`` ...).

        Raises:
            AirflowApiError: 404 DAG missing, 409 run id / logical date already used,
                400/422 invalid body (e.g. a malformed run id).
        """
        if isinstance(logical_date, datetime):
            if logical_date.tzinfo is None:
                raise AirflowApiError(
                    "logical_date must be timezone-aware (Airflow rejects naive datetimes). "
                    "Fix: pass e.g. datetime(..., tzinfo=timezone.utc).",
                    status=422,
                )
            logical_date = logical_date.isoformat()
        body: dict[str, Any] = {"logical_date": logical_date, "conf": dict(conf or {})}
        if run_id is not None:
            body["dag_run_id"] = run_id
        if note is not None:
            body["note"] = note
        return self.request("POST", f"/api/v2/dags/{_q(dag_id)}/dagRuns", json=body)

    def get_dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """One DAG run (``state`` is ``queued``, ``running``, ``success`` or ``failed``)."""
        return self.request("GET", f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}")

    def list_dag_runs(
        self,
        dag_id: str,
        states: Iterable[str] | None = None,
        limit: int = 100,
        order_by: str = "-run_after",
    ) -> list[dict[str, Any]]:
        """Runs of a DAG, newest first.

        Args:
            dag_id: The DAG id (``~`` for all DAGs).
            states: Only runs in one of these states.
            limit: Maximum number of runs.
            order_by: Sort field, ``-`` for descending.

        Returns:
            The runs.
        """
        params: list[tuple[str, Any]] = [("limit", limit), ("order_by", order_by)]
        params += [("state", s) for s in (states or ())]
        path = f"/api/v2/dags/{dag_id if dag_id == '~' else _q(dag_id)}/dagRuns"
        body = self.request("GET", path, params=params)
        return list(body.get("dag_runs", []))

    def wait_for_dag_run(
        self, dag_id: str, run_id: str, timeout: float = 600, poll: float = 2
    ) -> dict[str, Any]:
        """Poll a run until it is ``success`` or ``failed``.

        Args:
            dag_id: The DAG id.
            run_id: The run id.
            timeout: Seconds to wait.
            poll: Seconds between polls.

        Returns:
            The run in its final state (check ``["state"]``).

        Raises:
            AirflowApiError: The run did not finish in time (``status`` None, the last
                state in ``details``), or the API answered an error.
        """
        deadline = time.monotonic() + timeout
        while True:
            run = self.get_dag_run(dag_id, run_id)
            if run.get("state") in FINAL_DAG_RUN_STATES:
                return run
            if time.monotonic() > deadline:
                raise AirflowApiError(
                    f"DAG run {dag_id}/{run_id} is still {run.get('state')!r} after {timeout:.0f} s. "
                    "Fix: check that the scheduler is running and the DAG is unpaused, or wait longer.",
                    status=None,
                    dag_id=dag_id,
                    run_id=run_id,
                    state=run.get("state"),
                )
            time.sleep(poll)

    def get_task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Task instances of a run (``task_id``, ``state``, ``try_number`` ...)."""
        body = self.request(
            "GET",
            f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances",
            params={"limit": 1000},
        )
        return list(body.get("task_instances", []))

    def set_dag_run_state(
        self, dag_id: str, run_id: str, state: str, note: str | None = None
    ) -> dict[str, Any]:
        """Set a run's state (``PATCH /api/v2/dags/{dag_id}/dagRuns/{run_id}``), e.g. ``failed``:
        Airflow then fails its running task instances and skips those not started.

        Args:
            dag_id: The DAG id.
            run_id: The run id.
            state: ``success``, ``failed`` or ``queued``.
            note: Optional note shown with the run in the UI (why its state was set).

        Returns:
            The updated run.
        """
        body: dict[str, Any] = {"state": state}
        if note is not None:
            body["note"] = note
        return self.request("PATCH", f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}", json=body)

    def hitl_details(
        self,
        dag_id: str,
        run_id: str = "~",
        *,
        task_id: str | None = None,
        waiting: bool | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Human-in-the-loop requests (``HITLOperator``, ``ApprovalOperator``) of a DAG's runs,
        newest first (``GET /api/v2/dags/{dag_id}/dagRuns/{run_id}/hitlDetails``).

        Args:
            dag_id: The DAG id (``~`` for all DAGs).
            run_id: The run id (``~`` for all runs).
            task_id: Only the requests of this task.
            waiting: True: only those not answered yet; False: only answered ones.
            limit: Maximum number of requests.

        Returns:
            The requests: ``subject``, ``options``, ``created_at``, ``response_received``,
            ``task_instance`` (``dag_run_id``, ``task_id``, ``map_index``, ``state`` ...).
        """
        params: list[tuple[str, Any]] = [("limit", limit), ("order_by", "-created_at")]
        if task_id is not None:
            params.append(("task_id", task_id))
        if waiting is not None:
            params.append(("response_received", "false" if waiting else "true"))
        path = f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/hitlDetails"
        body = self.request("GET", path, params=params)
        return list((body or {}).get("hitl_details", []))

    def answer_hitl(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        chosen_options: list[str],
        *,
        params_input: dict[str, Any] | None = None,
        map_index: int = -1,
    ) -> dict[str, Any]:
        """Answer a waiting human-in-the-loop request, e.g. ``["Approve"]`` for an
        ``ApprovalOperator`` (``PATCH .../taskInstances/{task_id}/{map_index}/hitlDetails``);
        the task then resumes.

        Returns:
            The response as recorded (``responded_by``, ``responded_at``, ``chosen_options``).

        Raises:
            AirflowApiError: 404 no such request, 409 already answered, 400 an option the
                request does not offer, 403 the user may not answer it.
        """
        path = (
            f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}"
            f"/{int(map_index)}/hitlDetails"
        )
        body = {"chosen_options": list(chosen_options), "params_input": dict(params_input or {})}
        return self.request("PATCH", path, json=body)

    def get_xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        """The XCom value ``key`` of a task instance (default: what the task returned), or
        ``None`` if there is none. A value stored as JSON text is decoded."""
        path = (
            f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}"
            f"/xcomEntries/{_q(key)}"
        )
        entry = self.request("GET", path, ok_404=True)
        if not isinstance(entry, dict):
            return None
        value = entry.get("value")
        if isinstance(value, str):
            try:
                return _json.loads(value)
            except ValueError:
                return value
        return value
