"""SQLAlchemy connect arguments for the embedded stack's SQLite metadata database.

Airflow imports these by name (``[database] sql_alchemy_connect_args`` and
``sql_alchemy_connect_args_async``); :func:`retrainflow.airflow.stack.airflow_env` points
at them only when the metadata database is SQLite.

SQLite has one writer at a time. Python's ``sqlite3`` waits 5 s for the write lock by
default and then raises ``database is locked``: under a burst of REST requests the API
server held the lock longer than that, the scheduler's, DAG processor's and triggerer's
heartbeats failed and those processes exited. A longer busy timeout makes every writer
wait its turn instead (Airflow itself already turns on WAL, so readers never wait).
"""

from __future__ import annotations

#: Seconds a connection waits for SQLite's write lock before ``database is locked``.
BUSY_TIMEOUT_SECONDS = 60

#: For the synchronous engine (``sqlite3.connect(timeout=...)``).
SQLITE_CONNECT_ARGS: dict[str, object] = {"timeout": BUSY_TIMEOUT_SECONDS}

#: For the API server's asynchronous engine (``aiosqlite.connect`` passes it to sqlite3).
SQLITE_CONNECT_ARGS_ASYNC: dict[str, object] = {"timeout": BUSY_TIMEOUT_SECONDS}

#: Seconds the API server waits for the write lock. Shorter: Airflow's audit log
#: (``log_action``) commits with a synchronous session on the server's event loop, so a
#: wait there freezes every request (the execution API used by running tasks included);
#: the API server's own writes are serialised by :mod:`retrainflow.airflow.admission`,
#: so it only ever waits for the scheduler, DAG processor or triggerer.
API_SERVER_BUSY_TIMEOUT_SECONDS = 10

#: The API server's synchronous engine.
API_SERVER_CONNECT_ARGS: dict[str, object] = {"timeout": API_SERVER_BUSY_TIMEOUT_SECONDS}
