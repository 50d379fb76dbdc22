"""How ``retrainflow retrain`` / ``retrainflow monitor`` run a pipeline's DAG, leaving no run behind.

**The stack of this home is up** (its scheduler and API server are alive and the API answers at
the address ``retrainflow up`` recorded): the run goes through the stack. It is triggered over
REST as ``cli__<pipeline>__<UTC time>`` with the same conf as an in-process run, followed with a
progress line up to a timeout, and read back (task states over REST, each task's XCom or saved
stage manifest) into the :class:`~retrainflow.airflow.local_run.LocalRunResult` the commands
print. Never ``dag.test()`` next to a live scheduler: the scheduler picks the in-process run's
task instances up too (``TI was not in a state where it could be marked as running``).

**The stack is down**: ``dag.test()`` in this process, as before (:mod:`local_run`).

Either way the process first holds ``<home>/run/cli__<dag_id>.lock``, a JSON record of its pid,
the pid's create time (a recycled pid is not the owner) and the run id. A second CLI process for
the same DAG is refused while the owner lives. A ``dag.test()`` run (``triggered_by = test``) that
is still queued or running while no live process holds its DAG's lock is **stale**: a CLI process
killed mid-run left it, and with ``max_active_runs=1`` every later run of the DAG would queue
behind it forever. Before its own run the CLI marks stale runs failed the way Airflow's "mark run
as failed" does (running task instances failed, the others skipped) — in-process through the ORM
(:func:`airflow.api.common.mark_tasks.set_dag_run_state_to_failed`), or with ``PATCH
.../dagRuns/{run_id}`` when the stack is up — closes the MLflow runs it left ``RUNNING`` as
``KILLED``, and prints one line saying which run and why. A run whose task process is still
alive on this machine (e.g. an ``airflow dags test`` by hand) is left alone.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

import psutil

from retrainflow.airflow import local_run, stack
from retrainflow.airflow.local_run import LocalRunResult
from retrainflow.artifacts import atomic_path
from retrainflow.cli.output import StreamProgress
from retrainflow.exceptions import (
    AirflowApiError,
    RunInProgressError,
    RunTimeoutError,
    StackError,
)

log = logging.getLogger(__name__)

#: Run ids of runs the CLI starts through the stack: ``cli__<pipeline>__<UTC time>``.
RUN_ID_PREFIX = "cli__"
#: Run states a stale run can be left in.
UNFINISHED_STATES = ("queued", "running")
#: ``DagRun.triggered_by`` of ``dag.test()`` runs (``DagRunTriggeredByType.TEST``).
TEST_TRIGGER = "test"
#: Seconds to wait for a run through the stack (``--timeout``).
DEFAULT_TIMEOUT = 1800.0
#: Seconds to wait for the DAG processor to have parsed the DAG.
DAG_PARSE_TIMEOUT = 180.0
#: Seconds between two looks at a run through the stack (two reads, never gated) ...
POLL_SECONDS = 0.5
#: ... for the first this many seconds of a run (small runs end within seconds), then
#: :data:`SLOW_POLL_SECONDS`.
FAST_POLL_FOR = 60.0
SLOW_POLL_SECONDS = 2.0
#: Create times of one process read at different moments differ by rounding only.
_CREATE_TIME_SLACK = 1.0

#: Where the CLI's notices go (stderr: stdout stays the command's result, e.g. ``--json``).
Say = Callable[[str], None]


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# -- processes and the per-DAG lock ----------------------------------------------------------


def _this_host() -> set[str]:
    return {socket.gethostname(), socket.getfqdn()}


def process_alive(
    pid: int, create_time: float | None = None, *, started_by: float | None = None
) -> bool:
    """Whether ``pid`` is a live process (not a zombie) — the same one that was recorded.

    Args:
        pid: The process id.
        create_time: The recorded create time (``psutil``): a process with another one
            reuses the pid, and does not count.
        started_by: A time (epoch seconds) the process was already running at (e.g. the
            start of a task it ran): a process created after it reuses the pid.
    """
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        created = proc.create_time()
    except psutil.Error:
        return False
    if create_time is not None and abs(created - create_time) > _CREATE_TIME_SLACK:
        return False
    return started_by is None or created <= started_by + _CREATE_TIME_SLACK


@dataclass(frozen=True)
class LockOwner:
    """The process that holds (or held) a DAG's CLI lock."""

    pid: int
    create_time: float
    host: str
    dag_id: str
    command: str
    since: str
    run_id: str | None = None

    @classmethod
    def current(cls, dag_id: str, command: str) -> LockOwner:
        """This process."""
        return cls(
            pid=os.getpid(),
            create_time=psutil.Process().create_time(),
            host=socket.gethostname(),
            dag_id=dag_id,
            command=command,
            since=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        )

    def alive(self) -> bool:
        """Whether the owner still runs. An owner on another machine (a home shared over a
        network file system) cannot be checked, and counts as alive."""
        if self.host not in _this_host():
            return True
        return process_alive(self.pid, self.create_time)

    def same_process(self, other: LockOwner) -> bool:
        return (self.pid, self.host) == (other.pid, other.host) and abs(
            self.create_time - other.create_time
        ) <= _CREATE_TIME_SLACK

    def describe(self) -> str:
        where = "" if self.host in _this_host() else f" on {self.host}"
        return f"`retrainflow {self.command}` (pid {self.pid}{where})"


def lock_path(run_dir: Path, dag_id: str) -> Path:
    """``<home>/run/cli__<dag_id>.lock``."""
    return run_dir / f"{RUN_ID_PREFIX}{dag_id}.lock"


def read_owner(path: Path) -> LockOwner | None:
    """The owner recorded in lock file ``path``; ``None`` if there is none (or it is unreadable,
    e.g. half-written by a process killed at that moment: nobody holds it then)."""
    try:
        data = json.loads(path.read_text())
        return LockOwner(**{k: data[k] for k in LockOwner.__dataclass_fields__ if k in data})
    except (OSError, ValueError, TypeError):
        return None


class RunLock:
    """The lock a CLI process holds on one DAG while it runs it (a context manager).

    Every change to the lock file happens under an ``flock`` of ``<lock>.guard``, held for
    milliseconds (the kernel drops it when its process dies, even by SIGKILL), so two processes
    never both take over a dead owner's lock.

    Attributes:
        path: The lock file.
        previous: The dead owner found when the lock was taken, if any (names the run it left).
    """

    def __init__(self, run_dir: Path, dag_id: str, command: str) -> None:
        self.path = lock_path(run_dir, dag_id)
        self.dag_id = dag_id
        self.me = LockOwner.current(dag_id, command)
        self.previous: LockOwner | None = None
        self.held = False

    @contextmanager
    def _guard(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".guard"), "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _write(self, owner: LockOwner) -> None:
        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps(asdict(owner), indent=2) + "\n")

    def acquire(self) -> LockOwner | None:
        """Take the lock; returns the dead owner it replaced, if any.

        Raises:
            RunInProgressError: a live process holds it.
        """
        with self._guard():
            owner = read_owner(self.path)
            if owner is not None and owner.alive():
                run = f", run {owner.run_id}" if owner.run_id else ""
                raise RunInProgressError(
                    f"another {owner.describe()} is running this pipeline ({self.dag_id} in "
                    f"this home, since {owner.since}{run}); its run is left alone "
                    f"(lock: {self.path}).",
                    pid=owner.pid,
                    run_id=owner.run_id,
                )
            self._write(self.me)
        self.previous = owner
        self.held = True
        return owner

    def record_run(self, run_id: str) -> None:
        """Record the id of the run this process started (named if it is left behind)."""
        with self._guard():
            self.me = replace(self.me, run_id=run_id)
            self._write(self.me)

    def release(self) -> None:
        """Remove the lock file if it is still this process's."""
        if not self.held:
            return
        with self._guard():
            owner = read_owner(self.path)
            if owner is not None and owner.same_process(self.me):
                self.path.unlink(missing_ok=True)
        self.held = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def live_cli_runs(run_dir: Path) -> list[LockOwner]:
    """The CLI processes that run a DAG of this home right now (e.g. for ``retrainflow up``,
    whose scheduler would pick their in-process runs up)."""
    owners = [read_owner(p) for p in sorted(run_dir.glob(f"{RUN_ID_PREFIX}*.lock"))]
    return [o for o in owners if o is not None and o.alive()]


# -- stale runs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunView:
    """What stale detection needs to know of a DAG run (from the ORM or the REST API)."""

    run_id: str
    state: str
    triggered_by: str | None
    #: ``(pid, hostname, start time)`` of each of its running task instances.
    running_tasks: tuple[tuple[int | None, str | None, datetime | None], ...] = ()


def _trigger_name(value: Any) -> str | None:
    """``DagRunTriggeredByType.TEST`` / ``"test"`` / ``"TEST"`` -> ``"test"``."""
    if value is None:
        return None
    return str(getattr(value, "value", value)).lower()


def stale_reason(run: RunView, dag_id: str, previous: LockOwner | None = None) -> str | None:
    """Why ``run`` is stale, as the line to print; ``None`` if it is not stale.

    The caller holds the DAG's lock, so no live CLI process runs ``run``. It is stale when it is
    a ``dag.test()`` run (the CLI's in-process runs) still queued or running, and none of its
    running task instances names a live process of this machine that started before the task.

    Args:
        run: The run.
        dag_id: Its DAG.
        previous: The dead owner of the DAG's lock, if one was found (names the command).
    """
    if run.state not in UNFINISHED_STATES or _trigger_name(run.triggered_by) != TEST_TRIGGER:
        return None
    hosts = _this_host()
    for pid, host, started in run.running_tasks:
        if pid and host in hosts:
            if process_alive(pid, started_by=started.timestamp() if started else None):
                return None  # e.g. `airflow dags test` by hand, alive: not ours to fail
    if previous is not None and previous.run_id == run.run_id:
        who = f"{previous.describe()}, which is gone"
    else:
        pids = sorted({pid for pid, _, _ in run.running_tasks if pid})
        by = f", pid {', '.join(map(str, pids))}" if pids else ""
        who = f"an in-process CLI run (dag.test{by}) whose process is gone"
    return (
        f"failed stale run {run.run_id} of {dag_id}: it was left {run.state} by {who}, and "
        "would have blocked every later run of the DAG"
    )


def _close_mlflow_runs(dag_id: str, run_id: str) -> list[str]:
    """Mark the MLflow runs that DAG run ``run_id`` left ``RUNNING`` as ``KILLED`` (their name is
    the DAG run id: promote's run in ``<pipeline>``, the check's in ``<pipeline>-monitoring``)."""
    from retrainflow.config import find_config
    from retrainflow.registry import Registry, search_literal

    cfg = find_config(dag_id.split("__", 1)[-1])
    client = Registry().client
    closed = []
    for name in (cfg.name, f"{cfg.name}-monitoring"):
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            continue
        runs = client.search_runs(
            [experiment.experiment_id],
            filter_string=f"attributes.run_name = {search_literal(run_id)} "
            "and attributes.status = 'RUNNING'",
        )
        for run in runs:
            client.set_terminated(run.info.run_id, status="KILLED")
            closed.append(run.info.run_id)
    return closed


def _failed(dag_id: str, run_id: str, reason: str, say: Say) -> None:
    """Close what the failed run left open in MLflow and print the one line about it."""
    try:
        closed = _close_mlflow_runs(dag_id, run_id)
    except Exception as exc:  # noqa: BLE001 - the Airflow run is failed; MLflow is a tidy-up
        say(f"{reason} (its MLflow runs could not be checked: {exc})")
        return
    if closed:
        reason += f"; closed its MLflow run {', '.join(closed)} (left RUNNING) as KILLED"
    say(reason)


def _note(reason: str) -> str:
    return f"Marked failed by retrainflow: {reason.split(': ', 1)[-1]}."


# In this process (the stack is down): Airflow's ORM.


def _runs_in_db(dag_id: str) -> list[RunView]:
    """The unfinished runs of ``dag_id`` in the metadata DB (Airflow must be importable)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from sqlalchemy import select

    with create_session() as session:
        runs = session.scalars(
            select(DagRun).where(
                DagRun.dag_id == dag_id,
                DagRun.state.in_([DagRunState.QUEUED, DagRunState.RUNNING]),
            )
        ).all()
        return [
            RunView(
                run_id=dr.run_id,
                state=str(getattr(dr.state, "value", dr.state)),
                triggered_by=_trigger_name(dr.triggered_by),
                running_tasks=tuple(
                    (ti.pid, ti.hostname, ti.start_date)
                    for ti in dr.get_task_instances(
                        state=[TaskInstanceState.RUNNING], session=session
                    )
                ),
            )
            for dr in runs
        ]


def fail_run_in_db(dag_id: str, run_id: str, note: str) -> bool:
    """Mark an unfinished run failed as Airflow's "mark run as failed" does (running task
    instances failed, those not started skipped), with ``note``. Returns whether it changed."""
    from airflow.api.common.mark_tasks import set_dag_run_state_to_failed
    from airflow.models.dagbag import DBDagBag
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, State, TaskInstanceState
    from sqlalchemy import select

    with create_session() as session:
        dr = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        if dr is None or dr.state not in (DagRunState.QUEUED, DagRunState.RUNNING):
            return False
        dag = DBDagBag().get_dag_for_run(dr, session=session)
        if dag is not None:
            set_dag_run_state_to_failed(dag=dag, run_id=run_id, commit=True, session=session)
        else:  # no serialized DAG to go by: fail what is unfinished by hand
            for ti in dr.get_task_instances(session=session):
                if ti.state not in State.finished:
                    ti.set_state(TaskInstanceState.FAILED, session=session)
            dr.set_state(DagRunState.FAILED)
        dr.note = note
    return True


def _fail_stale_in_db(dag_id: str, previous: LockOwner | None, say: Say) -> list[str]:
    failed = []
    for run in _runs_in_db(dag_id):
        reason = stale_reason(run, dag_id, previous)
        if reason and fail_run_in_db(dag_id, run.run_id, _note(reason)):
            _failed(dag_id, run.run_id, reason, say)
            failed.append(run.run_id)
    return failed


# Through the stack: the REST API.


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


def _runs_over_rest(client: Any, dag_id: str) -> list[RunView]:
    views = []
    for r in client.list_dag_runs(dag_id, states=list(UNFINISHED_STATES)):
        running: tuple[tuple[int | None, str | None, datetime | None], ...] = ()
        if _trigger_name(r.get("triggered_by")) == TEST_TRIGGER:
            running = tuple(
                (ti.get("pid"), ti.get("hostname"), _time(ti.get("start_date")))
                for ti in client.get_task_instances(dag_id, r["dag_run_id"])
                if ti.get("state") == "running"
            )
        views.append(RunView(r["dag_run_id"], str(r.get("state")), r.get("triggered_by"), running))
    return views


def _fail_stale_over_rest(
    client: Any, dag_id: str, previous: LockOwner | None, say: Say
) -> list[str]:
    failed = []
    for run in _runs_over_rest(client, dag_id):
        reason = stale_reason(run, dag_id, previous)
        if reason:
            client.set_dag_run_state(dag_id, run.run_id, "failed", note=_note(reason))
            _failed(dag_id, run.run_id, reason, say)
            failed.append(run.run_id)
    return failed


def _also_clean(
    run_dir: Path,
    dag_ids: Iterable[str],
    command: str,
    fail: Callable[[str, LockOwner | None], Any],
) -> None:
    """Fail the stale runs of other DAGs too (e.g. ``monitor`` those of the retrain DAG, which
    its single-flight check counts as active), each under its lock; skip a DAG a live CLI
    process runs."""
    for dag_id in dag_ids:
        try:
            with RunLock(run_dir, dag_id, command) as other:
                fail(dag_id, other.previous)
        except RunInProgressError:
            continue


# -- deciding where to run --------------------------------------------------------------------


def stack_is_up(cfg: stack.StackConfig) -> bool:
    """Whether runs of this home go through its stack.

    Returns:
        ``True``: the stack's scheduler and API server run (pid files) and the API answers at the
        recorded address. ``False``: its scheduler does not run (an in-process run is safe).

    Raises:
        StackError: the scheduler runs but the API server does not answer — an in-process run
            would be picked up by that scheduler, and a run through the stack cannot start.
    """
    alive = stack.status(cfg)
    if not alive.get("scheduler"):
        return False
    if alive.get("api-server") and stack.airflow_health(cfg) is not None:
        return True
    raise StackError(
        f"The scheduler of the stack in {cfg.home} is running, but its API server does not "
        f"answer at {cfg.airflow_url}: a run in this process would be picked up by that "
        "scheduler too, and a run through the stack cannot be started. Fix: `retrainflow up` "
        "(starts what is missing) or `retrainflow down`, then run this again."
    )


def cli_run_id(pipeline: str, now: datetime | None = None) -> str:
    """``cli__<pipeline>__<UTC time>``, e.g. ``cli__flights__20261202T082547.123Z``."""
    now = now or datetime.now(UTC)
    return f"{RUN_ID_PREFIX}{pipeline}__{now:%Y%m%dT%H%M%S}.{now.microsecond // 1000:03d}Z"


def run_url(airflow_url: str, dag_id: str, run_id: str) -> str:
    """The run in the Airflow UI."""
    return f"{airflow_url}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def run_pipeline_dag(
    dag_id: str,
    conf: dict[str, Any],
    *,
    command: str,
    timeout: float = DEFAULT_TIMEOUT,
    also_clean: Sequence[str] = (),
    say: Say = _say,
) -> LocalRunResult:
    """Run ``dag_id`` with ``conf`` for CLI command ``command`` and wait for it: through the
    stack when it is up, else in this process; stale runs of the DAG (and of ``also_clean``)
    are failed first.

    Raises:
        RunInProgressError: another live CLI process runs this DAG in this home.
        StackError: the stack is partly up (see :func:`stack_is_up`).
        RunTimeoutError: the run through the stack did not finish within ``timeout`` seconds.
        KeyboardInterrupt: after saying what became of the run.
    """
    cfg = stack.StackConfig()
    up = stack_is_up(cfg)
    with RunLock(cfg.run_dir, dag_id, command) as lock:
        if up:
            return _run_through_stack(cfg, dag_id, conf, lock, timeout, also_clean, say)
        return _run_in_process(cfg, dag_id, conf, lock, also_clean, say)


# -- in this process ---------------------------------------------------------------------------


def _run_in_process(
    cfg: stack.StackConfig,
    dag_id: str,
    conf: dict[str, Any],
    lock: RunLock,
    also_clean: Sequence[str],
    say: Say,
) -> LocalRunResult:
    local_run.prepare_airflow()
    _fail_stale_in_db(dag_id, lock.previous, say)
    _also_clean(
        cfg.run_dir,
        also_clean,
        lock.me.command,
        lambda other, previous: _fail_stale_in_db(other, previous, say),
    )
    started: list[str] = []

    def on_run_id(run_id: str) -> None:
        started.append(run_id)
        lock.record_run(run_id)

    try:
        return local_run.run_dag(dag_id, conf, on_run_id=on_run_id)
    except BaseException as exc:
        # Ctrl-C (or a crash) mid-run: the run cannot go on without this process.
        why = "interrupted" if isinstance(exc, KeyboardInterrupt) else type(exc).__name__
        if started:
            from airflow import settings as airflow_settings

            if airflow_settings.Session is not None:  # dag.test()'s may be mid-transaction
                airflow_settings.Session.remove()
        for run_id in started:
            try:
                if fail_run_in_db(dag_id, run_id, f"Marked failed by retrainflow: {why}."):
                    _failed(dag_id, run_id, f"{why}: marked run {run_id} of {dag_id} failed", say)
            except Exception:  # noqa: BLE001 - the original error matters more
                log.warning("could not mark %s failed", run_id, exc_info=True)
        raise


# -- through the stack -------------------------------------------------------------------------


class _Progress(StreamProgress):
    """A run's progress line: rewritten at every look on a terminal, a line per change
    otherwise."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self.last = ""

    def update(self, text: str, elapsed: float) -> None:
        if self.tty or text != self.last:
            self.show(f"{text} ({elapsed:.0f} s)")
        self.last = text


def _progress_text(dag_id: str, run_id: str, state: str, tis: list[dict[str, Any]]) -> str:
    finished = {"success", "failed", "skipped", "upstream_failed", "removed"}
    done = sum(1 for ti in tis if ti.get("state") in finished)
    running = sorted(ti["task_id"] for ti in tis if ti.get("state") == "running")
    text = f"{dag_id} {run_id}: {state}, {done}/{len(tis)} tasks done"
    return text + (f", {', '.join(running)} running" if running else "")


def _wait(
    client: Any,
    dag_id: str,
    run_id: str,
    timeout: float,
    url: str,
    until: Callable[[list[dict[str, Any]]], bool] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Poll the run until it ends (or ``until(task_instances)`` holds, e.g. a task waits for a
    person's approval); returns it and its task instances."""
    progress = _Progress(sys.stderr)
    t0 = time.monotonic()
    try:
        while True:
            run = client.get_dag_run(dag_id, run_id)
            tis = client.get_task_instances(dag_id, run_id)
            state = str(run.get("state"))
            progress.update(_progress_text(dag_id, run_id, state, tis), time.monotonic() - t0)
            if state in ("success", "failed") or (until is not None and until(tis)):
                return run, tis
            if time.monotonic() - t0 > timeout:
                raise RunTimeoutError(
                    f"run {run_id} of {dag_id} is still {state} after {timeout:.0f} s; it goes "
                    f"on in the stack: {url}",
                    run_id=run_id,
                )
            elapsed = time.monotonic() - t0
            time.sleep(POLL_SECONDS if elapsed < FAST_POLL_FOR else SLOW_POLL_SECONDS)
    finally:
        progress.close()


def _run_through_stack(
    cfg: stack.StackConfig,
    dag_id: str,
    conf: dict[str, Any],
    lock: RunLock,
    timeout: float,
    also_clean: Sequence[str],
    say: Say,
) -> LocalRunResult:
    from retrainflow.airflow.rest import AirflowClient

    # The stack's MLflow settings, for closing runs a stale run left open.
    os.environ.update({k: v for k, v in stack.airflow_env(cfg).items() if k.startswith("MLFLOW")})
    client = AirflowClient(cfg.airflow_url, *stack.admin_credentials(cfg))
    dag = client.wait_for_dag(dag_id, timeout=DAG_PARSE_TIMEOUT)
    _fail_stale_over_rest(client, dag_id, lock.previous, say)
    _also_clean(
        cfg.run_dir,
        also_clean,
        lock.me.command,
        lambda other, previous: _fail_stale_over_rest(client, other, previous, say),
    )
    if dag.get("is_paused"):
        client.set_paused(dag_id, False)
        schedule = dag.get("timetable_summary")
        active = f"; its schedule ({schedule}) is active from now on" if schedule else ""
        say(f"unpaused {dag_id} (it was paused, and the run could not start){active}")
    pipeline = dag_id.split("__", 1)[-1]
    run_id = cli_run_id(pipeline)
    try:
        client.trigger_dag_run(
            dag_id, conf=conf, run_id=run_id, note=f"retrainflow {lock.me.command}"
        )
    except AirflowApiError as exc:
        if exc.status != 409:
            raise
        run_id = cli_run_id(pipeline)  # the same millisecond as another run: a new id
        client.trigger_dag_run(
            dag_id, conf=conf, run_id=run_id, note=f"retrainflow {lock.me.command}"
        )
    lock.record_run(run_id)
    url = run_url(cfg.airflow_url, dag_id, run_id)
    say(f"the stack is up: {dag_id} runs there as {run_id} ({url})")
    try:
        run, tis = _wait(client, dag_id, run_id, timeout, url)
    except KeyboardInterrupt:
        say(
            f"interrupted: run {run_id} of {dag_id} goes on in the stack; follow it at {url} "
            "(Mark as failed there to stop it)."
        )
        raise
    return result_from_rest(client, dag_id, run_id, str(run.get("state")), tis, cfg, url)


#: Where each task of the pipeline DAGs saves what it returns (relative to the run's folder).
SAVED_OUTPUTS = {
    "pull": "pull/manifest.json",
    "validate": "validate/manifest.json",
    "features": "features/manifest.json",
    "train": "train/manifest.json",
    "evaluate": "evaluate/verdict.json",
    "promote": "promote/manifest.json",
    "check": "monitor/manifest.json",
}


def _saved_output(dag_id: str, run_id: str, task_id: str) -> Any:
    """What ``task_id`` returned, from the stage manifest it saved under the run's folder."""
    from retrainflow.artifacts import ArtifactStore
    from retrainflow.config import find_config

    rel = SAVED_OUTPUTS.get(task_id)
    if rel is None:
        return None
    pipeline = dag_id.split("__", 1)[-1]
    try:
        run = ArtifactStore(find_config(pipeline).artifact_root_uri()).run(pipeline, run_id)
        return run.read_json(rel)
    except (OSError, ValueError):
        return None


def task_log_error(path: Path) -> str | None:
    """The error a failed task's log (Airflow 3's JSON lines) ends with, as ``Type: message``
    (``[code] message`` for retrainflow's user errors, as in-process)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    found = None
    for raw in lines:
        try:
            event = json.loads(raw)
        except ValueError:
            continue
        details = event.get("error_detail") if isinstance(event, dict) else None
        if isinstance(details, list) and details and isinstance(details[0], dict):
            exc = details[0]  # the exception raised (its causes follow)
            found = f"{exc.get('exc_type')}: {exc.get('exc_value')}"
    return local_run.unwrap_error(found) if found else None


def _task_log(cfg: stack.StackConfig, dag_id: str, run_id: str, task_id: str) -> Path | None:
    """The last attempt's log file of a task (Airflow's default log layout)."""
    assert cfg.airflow_home is not None
    folder = (
        cfg.airflow_home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
    )
    attempts = sorted(folder.glob("attempt=*.log"), key=lambda p: int(p.stem.split("=")[1] or 0))
    return attempts[-1] if attempts else None


def result_from_rest(
    client: Any,
    dag_id: str,
    run_id: str,
    state: str,
    tis: list[dict[str, Any]],
    cfg: stack.StackConfig,
    url: str | None = None,
) -> LocalRunResult:
    """The :class:`LocalRunResult` of a finished run through the stack: what an in-process run
    of it would have returned (task states by task id, each successful task's return value —
    its XCom, else the manifest it saved), plus the run's UI address."""
    states = {str(ti["task_id"]): str(ti.get("state")) for ti in tis}
    states = dict(sorted(states.items()))  # the order dag.test()'s task instances come in
    outputs: dict[str, Any] = {}
    for task_id, task_state in states.items():
        if task_state != "success":
            continue
        try:
            value = client.get_xcom(dag_id, run_id, task_id)
        except AirflowApiError:
            log.debug("no xcom for %s over REST", task_id)
            value = None
        if value is None:
            value = _saved_output(dag_id, run_id, task_id)
        if value is not None:
            outputs[task_id] = value
    log_path = error_line = None
    if state != "success":
        for task_id, task_state in states.items():
            if task_state == "failed":
                path = _task_log(cfg, dag_id, run_id, task_id)
                if path is not None:
                    log_path, error_line = str(path), task_log_error(path)
                break
    return LocalRunResult(
        dag_id,
        run_id,
        state,
        states,
        outputs,
        local_run.failure_report(dag_id, run_id),
        log_path,
        error_line,
        ui_url=url,
    )
