"""Run a pipeline's DAG in this process with ``dag.test()`` (no scheduler).

Used by ``retrainflow retrain`` and ``retrainflow monitor`` when the stack is down
(:mod:`retrainflow.airflow.cli_runs` decides, holds the per-DAG lock and fails runs
a killed CLI process left behind): the very same DAG object the scheduler runs,
executed task by task here, recorded in the embedded stack's metadata DB (so it
shows in the Airflow UI afterwards).

Airflow reads its configuration when first imported, so :func:`prepare_env`
must run before anything imports ``airflow``.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrainflow.artifacts import safe_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalRunResult:
    """Outcome of one DAG run the CLI started: in this process, or through the stack
    (:mod:`retrainflow.airflow.cli_runs` builds it from the REST API then)."""

    dag_id: str
    run_id: str
    state: str
    task_states: dict[str, str]
    #: The manifest each successful task returned (XCom ``return_value``).
    outputs: dict[str, Any]
    #: The saved report of a failed stage, if one was written.
    failure_report: dict[str, Any] | None
    #: Airflow's own output of the run (tracebacks included), unless RETRAINFLOW_DEBUG=1
    #: sent it to the terminal.
    log_path: str | None = None
    #: The last exception line of that output (``SomeError: message``), for a failure
    #: without a saved report.
    error_line: str | None = None
    #: The run in the Airflow UI, for a run that went through the stack (``log_path`` is then
    #: the failed task's log).
    ui_url: str | None = None


def prepare_env() -> None:
    """Point this process at the embedded stack's Airflow home and migrate its DB once.

    The stack's address (API port for the ``retrainflow_api`` connection and the execution
    API) is the one ``retrainflow up`` recorded in ``<home>/stack.json``, if any.
    """
    from retrainflow.airflow import stack

    cfg = stack.StackConfig()
    os.environ.update(stack.airflow_env(cfg))
    # dag.test() logs every task's lifecycle at INFO: keep the terminal to warnings and our summary.
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    marker = Path(os.environ["AIRFLOW_HOME"]) / ".migrated"
    if not marker.exists():
        stack.migrate(cfg)
        marker.touch()


def prepare_airflow() -> None:
    """:func:`prepare_env`, and keep Airflow and the libraries quiet; call before importing
    ``airflow`` in this process."""
    prepare_env()
    from retrainflow import settings

    settings.quiet_third_party()
    logging.getLogger("airflow").setLevel(logging.WARNING)  # before Airflow's first import logs


def run_dag(
    dag_id: str,
    conf: dict[str, Any],
    *,
    on_run_id: Callable[[str], None] | None = None,
) -> LocalRunResult:
    """Run DAG ``dag_id`` (from the pipeline configs) with ``conf`` and wait for it.

    Args:
        dag_id: The DAG.
        conf: The run's conf.
        on_run_id: Called with the run id before the run is created (``dag.test()`` names
            its run ``manual__<logical date>``; the date is fixed here so the id is known).
    """
    prepare_airflow()
    from airflow.models.dagrun import DagRun
    from airflow.sdk import timezone
    from airflow.utils.types import DagRunType

    from retrainflow import settings
    from retrainflow.airflow.dag_factory import build_dags

    dag = build_dags()[dag_id]
    # What dag.test() does by default (now as logical date and run-after), made explicit.
    now = timezone.utcnow()
    if on_run_id is not None:
        on_run_id(
            DagRun.generate_run_id(run_type=DagRunType.MANUAL, logical_date=now, run_after=now)
        )
    log_path = None
    if os.environ.get("RETRAINFLOW_DEBUG") == "1":
        dr = dag.test(run_conf=conf, logical_date=now, run_after=now)
    else:
        log_path = settings.paths().logs / f"{safe_name(dag_id)}-{os.getpid()}.log"
        with _output_to(log_path):
            dr = dag.test(run_conf=conf, logical_date=now, run_after=now)
    tis = {ti.task_id: ti for ti in dr.get_task_instances()}
    states = {tid: str(ti.state) for tid, ti in tis.items()}
    outputs: dict[str, Any] = {}
    for tid, ti in tis.items():
        if states[tid] == "success":
            try:
                outputs[tid] = ti.xcom_pull(task_ids=tid)
            except Exception:  # noqa: BLE001 - outputs are a convenience; the states are the result
                log.debug("no xcom for %s", tid)
    return LocalRunResult(
        dag_id,
        dr.run_id,
        str(dr.state),
        states,
        outputs,
        failure_report(dag_id, dr.run_id),
        str(log_path) if log_path else None,
        _last_error(log_path) if log_path and str(dr.state) != "success" else None,
    )


@contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (file descriptors 1 and 2, so that Airflow's
    task output and tracebacks go too) to ``path`` for the duration of the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception): .+|^KeyboardInterrupt$")
#: What a task stopped by Ctrl-C reports (dag.test() fails the task and goes on to the end).
INTERRUPTED = "interrupted (Ctrl-C): the task was stopped and failed"


def unwrap_error(line: str) -> str:
    """Airflow wraps our user errors: ``...AirflowFailException: [code] message`` ->
    ``[code] message``; other lines are kept."""
    return line.split("Exception: ", 1)[1] if "AirflowFailException: " in line else line


def _last_error(path: Path) -> str | None:
    """The last ``SomeError: message`` line in a run's output (the root cause comes last)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    found = [line.strip() for line in lines if _EXCEPTION_LINE.match(line.strip())]
    if not found:
        return None
    return INTERRUPTED if found[-1] == "KeyboardInterrupt" else unwrap_error(found[-1])


def failure_report(dag_id: str, run_id: str) -> dict[str, Any] | None:
    """The first saved stage report with ``success: false`` for this run."""
    from retrainflow.artifacts import ArtifactStore
    from retrainflow.config import find_config

    pipeline = dag_id.split("__", 1)[-1]
    run = ArtifactStore(find_config(pipeline).artifact_root_uri()).run(pipeline, run_id)
    for stage in ("pull", "validate"):
        name = f"{stage}/report.json"
        if run.exists(name):
            report = run.read_json(name)
            if not report.get("success", True):
                return {"stage": stage, "path": run.uri(name), **report}
    return None
