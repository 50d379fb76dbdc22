"""Offline tests of the REST client against a tiny fake Airflow API served on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from retrainflow.airflow.rest import AirflowClient
from retrainflow.exceptions import AirflowApiError

USER, PASSWORD = "admin", "s3cret:/@pw"
TRIGGER_KEYS = {
    "dag_run_id",
    "logical_date",
    "conf",
    "note",
    "run_after",
    "data_interval_start",
    "data_interval_end",
    "partition_key",
}


@dataclass
class FakeAirflow:
    """State of the fake API server; tests read and change it."""

    url: str = ""
    tokens_issued: int = 0
    valid_tokens: set[str] = field(default_factory=set)
    dags: dict[str, bool] = field(default_factory=lambda: {"etl": True, "locked": True})
    runs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    raw_paths: list[str] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)
    run_polls_until_success: int = 2
    #: The next this-many trigger requests are answered 503 + Retry-After (a busy server).
    busy_triggers: int = 0

    def expire_tokens(self) -> None:
        self.valid_tokens.clear()


def _make_handler(state: FakeAirflow) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> Any:
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
            body = json.loads(raw) if raw else None
            state.bodies.append(body)
            return body

        def _authorized(self) -> bool:
            auth = self.headers.get("Authorization", "")
            if not auth.startswith("Bearer "):
                self._send(401, {"detail": "Not authenticated"})
                return False
            if auth.removeprefix("Bearer ") not in state.valid_tokens:
                self._send(401, {"detail": "Token Expired"})
                return False
            return True

        def _route(self, method: str) -> None:
            state.raw_paths.append(self.path)
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            segs = [unquote(s) for s in parts.path.strip("/").split("/")]
            if method == "POST" and parts.path == "/auth/token":
                body = self._body() or {}
                if body.get("username") == USER and body.get("password") == PASSWORD:
                    state.tokens_issued += 1
                    token = f"tok-{state.tokens_issued}"
                    state.valid_tokens.add(token)
                    return self._send(201, {"access_token": token})
                return self._send(401, {"detail": "Invalid credentials"})
            if not self._authorized():
                return None
            if segs[:2] != ["api", "v2"]:
                return self._send(404, {"detail": "Not Found"})
            segs = segs[2:]
            if segs == ["monitor", "health"]:
                return self._send(200, {"metadatabase": {"status": "healthy"}})
            if segs == ["boom"]:
                return self._send(500, {"detail": "Internal Server Error"})
            if len(segs) >= 2 and segs[0] == "dags":
                dag_id = segs[1]
                if dag_id not in state.dags:
                    return self._send(404, {"detail": f"The Dag with ID: `{dag_id}` was not found"})
                if dag_id == "locked" and method != "GET":
                    return self._send(403, {"detail": "Forbidden"})
                if len(segs) == 2 and method == "GET":
                    return self._send(200, {"dag_id": dag_id, "is_paused": state.dags[dag_id]})
                if len(segs) == 2 and method == "PATCH":
                    state.dags[dag_id] = bool((self._body() or {})["is_paused"])
                    return self._send(200, {"dag_id": dag_id, "is_paused": state.dags[dag_id]})
                if segs[2:] == ["dagRuns"] and method == "POST" and state.busy_triggers > 0:
                    state.busy_triggers -= 1
                    self._body()
                    data = b'{"detail": "busy"}'
                    self.send_response(503)
                    self.send_header("Retry-After", "1")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return None
                if segs[2:] == ["dagRuns"] and method == "POST":
                    return self._trigger(dag_id, self._body())
                if segs[2:] == ["dagRuns"] and method == "GET":
                    wanted = set(query.get("state", []))
                    runs = [
                        r
                        for (d, _), r in state.runs.items()
                        if d == dag_id and (not wanted or r["state"] in wanted)
                    ]
                    return self._send(200, {"dag_runs": runs, "total_entries": len(runs)})
                if len(segs) >= 4 and segs[2] == "dagRuns":
                    run = state.runs.get((dag_id, segs[3]))
                    if run is None:
                        return self._send(
                            404, {"detail": f"The DagRun with run_id: `{segs[3]}` was not found"}
                        )
                    if segs[4:] == ["taskInstances"]:
                        return self._send(
                            200,
                            {
                                "task_instances": [{"task_id": "t1", "state": "success"}],
                                "total_entries": 1,
                            },
                        )
                    run["polls"] += 1
                    if run["polls"] >= state.run_polls_until_success:
                        run["state"] = "success"
                    elif run["polls"] >= 1:
                        run["state"] = "running"
                    return self._send(200, {k: v for k, v in run.items() if k != "polls"})
            return self._send(404, {"detail": "Not Found"})

        def _trigger(self, dag_id: str, body: Any) -> None:
            if not isinstance(body, dict) or "logical_date" not in body:
                return self._send(
                    422,
                    {
                        "detail": [
                            {
                                "type": "missing",
                                "loc": ["body", "logical_date"],
                                "msg": "Field required",
                            }
                        ]
                    },
                )
            extra = set(body) - TRIGGER_KEYS
            if extra:
                return self._send(
                    422,
                    {
                        "detail": [
                            {
                                "type": "extra_forbidden",
                                "loc": ["body", min(extra)],
                                "msg": "Extra inputs are not permitted",
                            }
                        ]
                    },
                )
            run_id = body.get("dag_run_id") or f"manual__{len(state.runs)}"
            if (dag_id, run_id) in state.runs:
                return self._send(409, {"detail": {"reason": "Unique constraint violation"}})
            run = {
                "dag_id": dag_id,
                "dag_run_id": run_id,
                "state": "queued",
                "conf": body.get("conf"),
                "logical_date": body["logical_date"],
                "polls": 0,
            }
            state.runs[(dag_id, run_id)] = run
            return self._send(200, {k: v for k, v in run.items() if k != "polls"})

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PATCH(self) -> None:
            self._route("PATCH")

    return Handler


@pytest.fixture
def fake() -> Iterator[FakeAirflow]:
    state = FakeAirflow()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def client(fake: FakeAirflow) -> AirflowClient:
    return AirflowClient(fake.url, USER, PASSWORD, timeout=5)


def test_token_is_fetched_once_and_cached(fake: FakeAirflow, client: AirflowClient) -> None:
    client.health()
    client.get_dag("etl")
    client.list_dag_runs("etl")
    assert fake.tokens_issued == 1
    assert fake.raw_paths.count("/auth/token") == 1


def test_expired_token_is_refetched_once(fake: FakeAirflow, client: AirflowClient) -> None:
    client.get_dag("etl")
    fake.expire_tokens()
    assert client.get_dag("etl")["dag_id"] == "etl"
    assert fake.tokens_issued == 2


def test_wrong_password_is_401_and_triggers_nothing(fake: FakeAirflow) -> None:
    bad = AirflowClient(fake.url, USER, "wrong", timeout=5)
    with pytest.raises(AirflowApiError) as err:
        bad.trigger_dag_run("etl", {"a": 1})
    assert err.value.status == 401
    assert "credentials" in str(err.value)
    assert fake.runs == {}


def test_trigger_sends_the_airflow_3_body(fake: FakeAirflow, client: AirflowClient) -> None:
    run = client.trigger_dag_run("etl", {"window": "2024-01-01"}, run_id="rf:1+a")
    assert run["dag_run_id"] == "rf:1+a"
    assert fake.bodies[-1] == {
        "logical_date": None,
        "conf": {"window": "2024-01-01"},
        "dag_run_id": "rf:1+a",
    }
    client.trigger_dag_run("etl", None)
    assert fake.bodies[-1] == {"logical_date": None, "conf": {}}


def test_trigger_rejects_naive_logical_date(client: AirflowClient) -> None:
    from datetime import datetime

    with pytest.raises(AirflowApiError) as err:
        client.trigger_dag_run("etl", {}, logical_date=datetime(2024, 1, 1))
    assert err.value.status == 422
    run = client.trigger_dag_run("etl", {}, logical_date=datetime(2024, 1, 1, tzinfo=UTC))
    assert run["logical_date"] == "2024-01-01T00:00:00+00:00"


def test_run_ids_are_url_encoded(fake: FakeAirflow, client: AirflowClient) -> None:
    run_id = "manual__2024-01-01T00:00:00+00:00"
    client.trigger_dag_run("etl", {}, run_id=run_id)
    client.get_dag_run("etl", run_id)
    client.get_task_instances("etl", run_id)
    encoded = "manual__2024-01-01T00%3A00%3A00%2B00%3A00"
    assert f"/api/v2/dags/etl/dagRuns/{encoded}" in fake.raw_paths
    assert f"/api/v2/dags/etl/dagRuns/{encoded}/taskInstances?limit=1000" in fake.raw_paths


@pytest.mark.parametrize(
    ("call", "status", "words"),
    [
        (lambda c: c.get_dag("nope"), 404, "not found"),
        (lambda c: c.get_dag_run("etl", "missing"), 404, "not found"),
        (lambda c: c.set_paused("locked", False), 403, "not allowed"),
        (
            lambda c: c.request("POST", "/api/v2/dags/etl/dagRuns", json={"conf": {}}),
            422,
            "logical_date: Field required",
        ),
        (
            lambda c: c.request(
                "POST", "/api/v2/dags/etl/dagRuns", json={"logical_date": None, "confx": {}}
            ),
            422,
            "confx",
        ),
        (lambda c: c.request("GET", "/api/v2/boom"), 500, "500"),
    ],
)
def test_errors_map_to_airflow_api_error(
    client: AirflowClient, call: Any, status: int, words: str
) -> None:
    with pytest.raises(AirflowApiError) as err:
        call(client)
    assert err.value.status == status
    assert words in str(err.value)
    assert err.value.code == "airflow_api_error"


def test_duplicate_run_id_is_409(client: AirflowClient) -> None:
    client.trigger_dag_run("etl", {}, run_id="same")
    with pytest.raises(AirflowApiError) as err:
        client.trigger_dag_run("etl", {}, run_id="same")
    assert err.value.status == 409
    assert "already exists" in str(err.value)


def test_wait_for_dag_run_polls_until_final(fake: FakeAirflow, client: AirflowClient) -> None:
    fake.run_polls_until_success = 3
    run = client.trigger_dag_run("etl", {}, run_id="r1")
    final = client.wait_for_dag_run("etl", run["dag_run_id"], timeout=10, poll=0.01)
    assert final["state"] == "success"
    assert [r["dag_run_id"] for r in client.list_dag_runs("etl", states=["success"])] == ["r1"]
    assert client.list_dag_runs("etl", states=["failed"]) == []


def test_wait_for_dag_run_times_out(fake: FakeAirflow, client: AirflowClient) -> None:
    fake.run_polls_until_success = 10**6
    client.trigger_dag_run("etl", {}, run_id="slow")
    with pytest.raises(AirflowApiError) as err:
        client.wait_for_dag_run("etl", "slow", timeout=0.2, poll=0.05)
    assert "still 'running'" in str(err.value)


def test_wait_for_dag_and_set_paused(client: AirflowClient) -> None:
    assert client.wait_for_dag("etl", timeout=1)["is_paused"] is True
    assert client.set_paused("etl", False)["is_paused"] is False
    with pytest.raises(AirflowApiError) as err:
        client.wait_for_dag("never", timeout=0.1, poll=0.05)
    assert err.value.status == 404


def test_from_connection_uri_decodes_credentials(fake: FakeAirflow) -> None:
    host = fake.url.removeprefix("http://")
    client = AirflowClient.from_connection_uri(f"http://admin:s3cret%3A%2F%40pw@{host}")
    assert client.base_url == fake.url
    assert client.username == USER
    assert client.get_dag("etl")["dag_id"] == "etl"


def test_from_connection_uri_without_credentials_fails() -> None:
    with pytest.raises(AirflowApiError):
        AirflowClient.from_connection_uri("http://127.0.0.1:8080")


def test_from_env(monkeypatch: pytest.MonkeyPatch, fake: FakeAirflow) -> None:
    host = fake.url.removeprefix("http://")
    monkeypatch.setenv("AIRFLOW_CONN_RETRAINFLOW_API", f"http://admin:s3cret%3A%2F%40pw@{host}")
    assert AirflowClient.from_env().health()["metadatabase"]["status"] == "healthy"
    monkeypatch.delenv("AIRFLOW_CONN_RETRAINFLOW_API")
    with pytest.raises(AirflowApiError):
        AirflowClient.from_env()


def test_unreachable_server_is_a_clear_error() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = AirflowClient(f"http://127.0.0.1:{port}", USER, PASSWORD, timeout=2)
    with pytest.raises(AirflowApiError) as err:
        client.health()
    assert err.value.status is None
    assert "Cannot reach" in str(err.value)


def test_a_busy_server_is_retried_after_its_retry_after(fake: FakeAirflow, client) -> None:
    """503 + Retry-After (the write gate's answer to a burst) means "nothing changed, come
    back": the client waits and retries, and the run is created once."""
    fake.busy_triggers = 2
    run = client.trigger_dag_run("etl", conf={"x": 1}, run_id="busy-1")
    assert run["dag_run_id"] == "busy-1"
    assert fake.busy_triggers == 0
    assert [k for k in fake.runs if k[1] == "busy-1"] == [("etl", "busy-1")]


def test_a_server_that_stays_busy_fails_with_a_clear_error(fake: FakeAirflow, client) -> None:
    fake.busy_triggers = AirflowClient.BUSY_RETRIES + 5
    with pytest.raises(AirflowApiError) as info:
        client.trigger_dag_run("etl", run_id="busy-2")
    assert info.value.status == 503
    assert "busy" in str(info.value) and "retried" in str(info.value)
    assert ("etl", "busy-2") not in fake.runs
