"""The API server's write gate (``retrainflow.airflow.admission``), driven as ASGI.

The live burst test (``test_stack_load.py``) shows it holding 100 concurrent triggers on
the real stack; these tests pin down its rules with a fake app that records how many
requests it serves at once.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from retrainflow.airflow.admission import (
    CONCURRENCY_ENV,
    MAX_WAIT_ENV,
    Limits,
    WriteGate,
    limits_from_env,
)


class SlowApp:
    """An ASGI app that takes ``seconds`` per request and records overlap and order."""

    def __init__(self, seconds: float = 0.05) -> None:
        self.seconds = seconds
        self.active = 0
        self.max_active = 0
        self.served: list[str] = []

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await asyncio.sleep(self.seconds)
            self.served.append(scope["path"])
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"{}"})
        finally:
            self.active -= 1


def _scope(path: str, method: str = "POST", auth: bool = True) -> dict:
    headers = [(b"authorization", b"Bearer t")] if auth else []
    return {"type": "http", "method": method, "path": path, "headers": headers}


async def _call(gate: WriteGate, scope: dict) -> tuple[int, dict[str, str], bytes]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        sent.append(message)

    await gate(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {k.decode(): v.decode() for k, v in start.get("headers", [])}
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], headers, body


def _burst(gate: WriteGate, scopes: list[dict]) -> list[tuple[int, dict[str, str], bytes]]:
    async def main() -> list[tuple[int, dict[str, str], bytes]]:
        return list(await asyncio.gather(*(_call(gate, s) for s in scopes)))

    return asyncio.run(main())


def test_writes_enter_one_at_a_time_and_all_succeed() -> None:
    app = SlowApp(0.01)
    gate = WriteGate(app, Limits(concurrency=1, max_wait=30))
    results = _burst(gate, [_scope(f"/api/v2/dags/d/dagRuns/{i}") for i in range(40)])
    assert [status for status, _, _ in results] == [200] * 40
    assert app.max_active == 1
    assert len(app.served) == 40


def test_reads_and_anonymous_requests_are_not_gated() -> None:
    app = SlowApp(0.05)
    gate = WriteGate(app, Limits(concurrency=1))
    scopes = [_scope("/api/v2/dags", method="GET") for _ in range(5)]
    scopes += [_scope("/api/v2/dags/d/dagRuns", auth=False) for _ in range(5)]
    scopes += [_scope("/auth/token") for _ in range(2)]  # not under a gated prefix
    results = _burst(gate, scopes)
    assert all(status == 200 for status, _, _ in results)
    assert app.max_active == len(scopes)  # all at once


def test_with_the_jwt_secret_only_tokens_it_signed_queue() -> None:
    """Junk or forged tokens (and expired ones) are refused by the app without a write: they
    go straight through instead of filling the queue in front of real users and tasks."""
    import time

    import jwt

    secret = "the-stacks-jwt-secret-" + "0123456789abcdef" * 4

    def token(key: str, exp: float) -> str:
        return jwt.encode({"sub": "admin", "aud": "apache-airflow", "exp": int(exp)}, key, "HS512")

    now = time.time()
    good = token(secret, now + 600)
    app = SlowApp(0.05)
    gate = WriteGate(app, Limits(concurrency=1, jwt_secret=secret))

    def scope(value: bytes, header: bytes = b"authorization") -> dict:
        return {
            "type": "http",
            "method": "POST",
            "path": "/api/v2/dags/d/dagRuns",
            "headers": [(header, value)],
        }

    junk = [scope(b"Bearer junk") for _ in range(3)]
    junk += [scope(f"Bearer {token('another-secret-' + 'f' * 64, now + 600)}".encode())]  # forged
    junk += [scope(f"Bearer {token(secret, now - 60)}".encode())]  # expired
    junk += [scope(b"theme=dark; _token=junk", b"cookie")]
    assert not any(gate._gated(s) for s in junk)
    assert gate._gated(scope(f"Bearer {good}".encode()))
    assert gate._gated(scope(f"theme=dark; _token={good}".encode(), b"cookie"))
    # the junk ones are served at once, beside each other; the signed ones one at a time
    _burst(gate, junk)
    assert app.max_active == len(junk)
    app.max_active = 0
    _burst(gate, [scope(f"Bearer {good}".encode()) for _ in range(4)])
    assert app.max_active == 1


def test_the_jwt_secret_comes_from_the_stacks_environment() -> None:
    env = {CONCURRENCY_ENV: "1", "AIRFLOW__API_AUTH__JWT_SECRET": "s3cret"}
    limits = limits_from_env(env)
    assert limits is not None and limits.jwt_secret == "s3cret"
    assert "s3cret" not in repr(limits)


def test_a_request_that_waits_too_long_gets_503_with_retry_after() -> None:
    app = SlowApp(0.3)
    gate = WriteGate(app, Limits(concurrency=1, max_wait=0.1, retry_after=7))
    results = _burst(gate, [_scope("/api/v2/dags/d/dagRuns") for _ in range(3)])
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200, 503, 503]
    refused = [r for r in results if r[0] == 503]
    for _, headers, body in refused:
        assert headers["retry-after"] == "7"
        assert "busy" in json.loads(body)["detail"] and "Nothing was changed" in body.decode()
    assert len(app.served) == 1  # the refused ones never reached the app
    assert gate.refused == 2


def test_a_full_queue_refuses_at_once() -> None:
    app = SlowApp(0.05)
    gate = WriteGate(app, Limits(concurrency=1, max_wait=30, max_queue=3))
    results = _burst(gate, [_scope("/api/v2/x") for _ in range(10)])
    statuses = [status for status, _, _ in results]
    # one enters, three wait, the other six are refused on arrival
    assert statuses.count(200) == 4 and statuses.count(503) == 6


def test_task_state_changes_go_before_queued_triggers() -> None:
    """The execution API (a running task reporting its state) must not wait behind a burst
    of REST triggers: the Task SDK gives up after ~30 s and the task would fail."""
    app = SlowApp(0.02)
    gate = WriteGate(app, Limits(concurrency=1, max_wait=30))

    async def main() -> None:
        first = asyncio.create_task(_call(gate, _scope("/api/v2/first")))
        await asyncio.sleep(0.005)  # "first" holds the gate
        waiting = [asyncio.create_task(_call(gate, _scope(f"/api/v2/t{i}"))) for i in range(5)]
        await asyncio.sleep(0.005)
        urgent = asyncio.create_task(_call(gate, _scope("/execution/task-instances/1/state")))
        await asyncio.gather(first, urgent, *waiting)

    asyncio.run(main())
    assert app.served[:2] == ["/api/v2/first", "/execution/task-instances/1/state"]
    assert app.max_active == 1


def test_limits_come_from_the_environment() -> None:
    assert limits_from_env({}) is None  # off unless the stack turns it on (SQLite)
    assert limits_from_env({CONCURRENCY_ENV: "0"}) is None
    limits = limits_from_env({CONCURRENCY_ENV: "1", MAX_WAIT_ENV: "12.5"})
    assert limits is not None and limits.concurrency == 1 and limits.max_wait == 12.5
    with pytest.raises(ValueError, match=MAX_WAIT_ENV):
        limits_from_env({CONCURRENCY_ENV: "1", MAX_WAIT_ENV: "soon"})


def test_the_stack_turns_the_gate_on_for_sqlite_only(tmp_path, monkeypatch) -> None:
    from retrainflow.airflow import stack

    monkeypatch.setenv("RETRAINFLOW_HOME", str(tmp_path))
    sqlite_env = stack.airflow_env(stack.StackConfig(home=tmp_path))
    assert sqlite_env[CONCURRENCY_ENV] == "1"
    assert sqlite_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"].endswith("CONNECT_ARGS")
    assert sqlite_env["AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_ENABLED"] == "False"
    pg = stack.StackConfig(home=tmp_path, sql_alchemy_conn="postgresql://u@127.0.0.1/airflow")
    pg_env = stack.airflow_env(pg)
    assert CONCURRENCY_ENV not in pg_env
    assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS" not in pg_env
    assert "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_ENABLED" not in pg_env
