"""Admission control for the API server's writes: one at a time on SQLite, a clean 503 when full.

SQLite has a single writer. Measured on the embedded stack (2 cores, one API worker),
100 concurrent ``POST /api/v2/dags/{dag_id}/dagRuns`` made the API server's request
threads fight for the write lock: with sqlite3's default 5 s busy timeout 94 of them
answered HTTP 500 (``database is locked``) and the scheduler, DAG processor and
triggerer exited when their heartbeats could not be written; with a 60 s busy timeout
alone the requests instead stalled each other and every one timed out. Neither Airflow
nor SQLAlchemy has a setting that serialises one process's writers without a pool
deadlock (the API server uses more than one connection per request), so this ASGI
middleware does it in front of the app: state-changing requests to the public REST API
(``/api/v2``), the UI's API and the execution API enter one at a time, the execution
API's (running tasks reporting their state) first; a request that cannot enter within
``max_wait`` seconds, or arrives while ``max_queue`` others wait, gets **503 with
``Retry-After``** instead of a 500 or a hang. Every API-server writer must be gated:
Airflow's audit log (``log_action``) commits with a synchronous session *on the event
loop*, so while it waits for a lock held by one of the server's own request threads,
that thread cannot finish either and the whole server froze until the busy timeout.
Reads and anonymous requests are not gated (WAL readers never wait for the writer), nor
are requests whose token is not signed with the stack's JWT secret: the app refuses them
(401) without writing, so a flood of junk tokens cannot fill the queue in front of real
users and running tasks.

The stack enables it for a SQLite metadata database only
(``RETRAINFLOW_API_WRITE_CONCURRENCY``, see :func:`limits_from_env`); PostgreSQL handles
concurrent writers itself.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Environment variables the stack sets for the API server (0 or unset concurrency = off).
CONCURRENCY_ENV = "RETRAINFLOW_API_WRITE_CONCURRENCY"
MAX_WAIT_ENV = "RETRAINFLOW_API_WRITE_MAX_WAIT"
MAX_QUEUE_ENV = "RETRAINFLOW_API_WRITE_MAX_QUEUE"

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Limits:
    """How many gated writes run at once, how long one may wait, how many may wait."""

    concurrency: int = 1
    max_wait: float = 30.0
    max_queue: int = 256
    retry_after: int = 5
    #: Paths whose writes are gated: the public REST API, the UI's own API and the
    #: execution API (running tasks report their state through it).
    prefixes: tuple[str, ...] = ("/api/v2/", "/ui/", "/execution/")
    #: Gated paths served before the others: a task's state change must not wait behind a
    #: burst of triggers (the Task SDK gives up after ~30 s of retries).
    urgent_prefixes: tuple[str, ...] = ("/execution/",)
    #: The API's JWT secret (``AIRFLOW__API_AUTH__JWT_SECRET``): only requests with a token
    #: it signed (and not expired) queue; None gates every request that carries credentials.
    jwt_secret: str | None = field(default=None, repr=False)


def limits_from_env(environ: MutableMapping[str, str] | None = None) -> Limits | None:
    """The limits the stack configured for this API server, or ``None`` when gating is off.

    Raises:
        ValueError: a variable is set to something that is not a number (names it).
    """
    env = os.environ if environ is None else environ

    def number(name: str, default: float) -> float:
        raw = env.get(name)
        if raw in (None, ""):
            return default
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"{name}={raw!r} is not a number") from None

    concurrency = int(number(CONCURRENCY_ENV, 0))
    if concurrency <= 0:
        return None
    base = Limits()
    return Limits(
        concurrency=concurrency,
        max_wait=number(MAX_WAIT_ENV, base.max_wait),
        max_queue=int(number(MAX_QUEUE_ENV, base.max_queue)),
        jwt_secret=env.get("AIRFLOW__API_AUTH__JWT_SECRET") or None,
    )


def _token(scope: Scope) -> str | None:
    """The bearer token of a request, else the UI's ``_token`` cookie."""
    for name, value in scope.get("headers", ()):
        key = name.lower()
        if key == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                cookie, _, token = part.strip().partition("=")
                if cookie == "_token" and token:
                    return token
    return None


def _signed(token: str, secret: str) -> bool:
    """Whether ``token`` is an unexpired JWT signed with ``secret`` (HMAC; any audience)."""
    import jwt

    try:
        jwt.decode(
            token,
            secret,
            algorithms=["HS512", "HS384", "HS256"],
            options={"verify_aud": False, "require": ["exp"]},
        )
    except jwt.PyJWTError:
        return False
    return True


class _PriorityGate:
    """At most ``capacity`` holders; waiters enter in order, urgent ones first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.holders = 0
        self._queues: tuple[deque[asyncio.Future[None]], deque[asyncio.Future[None]]] = (
            deque(),
            deque(),
        )

    @property
    def waiting(self) -> int:
        return sum(len(q) for q in self._queues)

    async def acquire(self, urgent: bool, timeout: float) -> None:
        """Enter, waiting at most ``timeout`` seconds (``TimeoutError`` when not admitted)."""
        if self.holders < self.capacity and not self.waiting:
            self.holders += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._queues[0 if urgent else 1]
        queue.append(future)
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout=timeout)
        except BaseException:
            if future.done() and not future.cancelled():
                self.release()  # admitted just as we gave up: pass the turn on
            else:
                future.cancel()
                queue.remove(future)
            raise

    def release(self) -> None:
        self.holders -= 1
        for queue in self._queues:
            while queue:
                future = queue.popleft()
                if not future.done():
                    self.holders += 1
                    future.set_result(None)
                    return


class WriteGate:
    """ASGI middleware: admits gated requests ``limits.concurrency`` at a time (see module)."""

    def __init__(self, app: ASGIApp, limits: Limits | None = None) -> None:
        self.app = app
        self.limits = limits or Limits()
        self._gate: _PriorityGate | None = None
        #: Requests refused with 503 since start (for tests and diagnostics).
        self.refused = 0

    def _gated(self, scope: Scope) -> bool:
        if scope.get("type") != "http" or scope.get("method", "GET") in _READ_METHODS:
            return False
        if not str(scope.get("path", "")).startswith(self.limits.prefixes):
            return False
        # Anonymous requests are refused by the app without writing: they never queue
        # (an anonymous flood cannot crowd out logged-in users).
        if self.limits.jwt_secret is None:
            names = {name.lower() for name, _ in scope.get("headers", ())}
            return b"authorization" in names or b"cookie" in names
        token = _token(scope)
        return token is not None and _signed(token, self.limits.jwt_secret)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._gated(scope):
            await self.app(scope, receive, send)
            return
        if self._gate is None:  # created inside the server's event loop
            self._gate = _PriorityGate(self.limits.concurrency)
        gate = self._gate
        urgent = str(scope.get("path", "")).startswith(self.limits.urgent_prefixes)
        if not urgent and gate.waiting >= self.limits.max_queue:
            await self._refuse(send, f"{gate.waiting} writes are already waiting")
            return
        try:
            await gate.acquire(urgent, self.limits.max_wait)
        except TimeoutError:
            await self._refuse(send, f"no turn within {self.limits.max_wait:.0f} s")
            return
        try:
            await self.app(scope, receive, send)
        finally:
            gate.release()

    async def _refuse(self, send: Send, why: str) -> None:
        self.refused += 1
        body = json.dumps(
            {
                "detail": (
                    f"The API server is busy ({why}); retry after "
                    f"{self.limits.retry_after} s. Nothing was changed."
                )
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(self.limits.retry_after).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
