"""CLI runs leave nothing blocking (issue 9, finding 3): ``retrainflow.airflow.cli_runs``.

Fast: the per-DAG lock (live owner, dead pid, recycled pid), stale-run detection, where a run
goes, and the run through the stack against a fake REST client (stale run failed, DAG unpaused,
result read back, Ctrl-C). Slow: a real in-process ``retrainflow retrain`` SIGKILLed during
promote, then run again; and a live stack, where the CLI goes through REST and fails the
in-process run a killed CLI left behind.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest

from retrainflow.airflow import cli_runs
from retrainflow.airflow.cli_runs import LockOwner, RunLock, RunView, stale_reason
from retrainflow.exceptions import RunInProgressError, StackError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pipelines"
CLI = str(Path(sys.executable).parent / "retrainflow")
DAG = "retrain__synthetic"


# -- helpers -------------------------------------------------------------------------------------


@pytest.fixture
def sleeper() -> Iterator[psutil.Process]:
    """A live process that is not this one."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        yield psutil.Process(proc.pid)
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    return proc.pid


def _write_owner(run_dir: Path, **fields: Any) -> Path:
    record = {
        "pid": os.getpid(),
        "create_time": psutil.Process().create_time(),
        "host": next(iter(cli_runs._this_host())),
        "dag_id": DAG,
        "command": "retrain",
        "since": "2026-12-01 10:00:00 UTC",
        "run_id": "manual__2026-12-01T10:00:00+00:00",
        **fields,
    }
    path = cli_runs.lock_path(run_dir, DAG)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


# -- the lock ------------------------------------------------------------------------------------


def test_the_lock_records_this_process_and_is_removed_after(tmp_path: Path) -> None:
    with RunLock(tmp_path, DAG, "retrain") as lock:
        owner = cli_runs.read_owner(lock.path)
        assert owner is not None and owner.pid == os.getpid() and owner.alive()
        assert owner.create_time == pytest.approx(psutil.Process().create_time(), abs=1)
        lock.record_run("manual__x")
        assert cli_runs.read_owner(lock.path).run_id == "manual__x"  # type: ignore[union-attr]
        assert lock.previous is None
    assert not lock.path.exists()
    assert cli_runs.live_cli_runs(tmp_path) == []


def test_a_live_owner_is_refused_and_left_alone(tmp_path: Path, sleeper: psutil.Process) -> None:
    path = _write_owner(tmp_path, pid=sleeper.pid, create_time=sleeper.create_time())
    before = path.read_text()
    with pytest.raises(RunInProgressError) as info:
        RunLock(tmp_path, DAG, "retrain").acquire()
    assert f"another `retrainflow retrain` (pid {sleeper.pid}) is running this pipeline" in str(
        info.value
    )
    assert path.read_text() == before
    assert [o.pid for o in cli_runs.live_cli_runs(tmp_path)] == [sleeper.pid]


def test_a_dead_owner_is_taken_over_and_named(tmp_path: Path) -> None:
    pid = _dead_pid()
    _write_owner(tmp_path, pid=pid, create_time=time.time() - 5)
    with RunLock(tmp_path, DAG, "monitor") as lock:
        assert lock.previous is not None and lock.previous.pid == pid
        assert cli_runs.read_owner(lock.path).pid == os.getpid()  # type: ignore[union-attr]


def test_a_recycled_pid_is_not_the_owner(tmp_path: Path, sleeper: psutil.Process) -> None:
    # The recorded owner started an hour before the process that now has its pid.
    _write_owner(tmp_path, pid=sleeper.pid, create_time=sleeper.create_time() - 3600)
    with RunLock(tmp_path, DAG, "retrain") as lock:
        assert lock.previous is not None and lock.previous.pid == sleeper.pid
    assert not cli_runs.process_alive(sleeper.pid, sleeper.create_time() - 3600)
    assert cli_runs.process_alive(sleeper.pid, sleeper.create_time())


def test_an_owner_on_another_machine_counts_as_alive(tmp_path: Path) -> None:
    _write_owner(tmp_path, pid=_dead_pid(), host="some-other-host.example")
    with pytest.raises(RunInProgressError, match="on some-other-host.example"):
        RunLock(tmp_path, DAG, "retrain").acquire()


def test_an_unreadable_lock_file_holds_nothing(tmp_path: Path) -> None:
    path = cli_runs.lock_path(tmp_path, DAG)
    path.write_text('{"pid": 12')  # half-written by a process killed right then
    with RunLock(tmp_path, DAG, "retrain") as lock:
        assert lock.previous is None


def test_release_leaves_a_lock_taken_over_by_someone_else(tmp_path: Path) -> None:
    lock = RunLock(tmp_path, DAG, "retrain")
    lock.acquire()
    path = _write_owner(tmp_path, pid=_dead_pid())  # e.g. after this process was deemed gone
    lock.release()
    assert path.exists()


# -- stale runs ----------------------------------------------------------------------------------


def _view(**kw: Any) -> RunView:
    return RunView(**{"run_id": "manual__1", "state": "running", "triggered_by": "test", **kw})


def test_an_unfinished_test_run_nobody_runs_is_stale() -> None:
    reason = stale_reason(_view(), DAG)
    assert reason is not None
    assert reason.startswith(
        "failed stale run manual__1 of retrain__synthetic: it was left running"
    )
    assert stale_reason(_view(state="queued", triggered_by="TEST"), DAG)  # the DB's spelling
    dead = LockOwner(_dead_pid(), 1.0, "h", DAG, "retrain", "then", run_id="manual__1")
    named = stale_reason(_view(), DAG, dead)
    assert named and f"by `retrainflow retrain` (pid {dead.pid}" in named


@pytest.mark.parametrize(
    "view",
    [
        _view(state="success"),
        _view(state="failed"),
        _view(triggered_by="rest_api"),  # the scheduler's or a REST run: not the CLI's
        _view(triggered_by="timetable"),
        _view(triggered_by=None),
    ],
)
def test_finished_or_foreign_runs_are_not_stale(view: RunView) -> None:
    assert stale_reason(view, DAG) is None


def test_a_run_whose_task_process_lives_is_not_stale(sleeper: psutil.Process) -> None:
    host = next(iter(cli_runs._this_host()))
    started = datetime.fromtimestamp(sleeper.create_time() + 5, UTC)
    assert stale_reason(_view(running_tasks=((sleeper.pid, host, started),)), DAG) is None
    # the same pid, but the process started after the task did: a recycled pid
    early = started - timedelta(hours=1)
    reason = stale_reason(_view(running_tasks=((sleeper.pid, host, early),)), DAG)
    assert reason and f"pid {sleeper.pid}" in reason
    # a task process on another machine cannot be checked: the lock decides
    assert stale_reason(_view(running_tasks=((sleeper.pid, "elsewhere", started),)), DAG)


def test_cli_run_ids_are_valid_airflow_run_ids() -> None:
    run_id = cli_runs.cli_run_id("flights", datetime(2026, 12, 2, 8, 25, 47, 123456, UTC))
    assert run_id == "cli__flights__20261202T082547.123Z"
    assert re.fullmatch(r"[A-Za-z0-9_.~:+-]+", run_id)


# -- where a run goes ----------------------------------------------------------------------------


@pytest.fixture
def stack_cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, helpers: Any) -> Any:
    from retrainflow.airflow import stack

    helpers.point_env(monkeypatch, tmp_path)
    monkeypatch.delenv("AIRFLOW_CONN_RETRAINFLOW_API", raising=False)
    # The REST path exports the stack's MLflow settings into os.environ (as a CLI process
    # should): have them restored after the test.
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.setenv(key, os.environ.get(key, ""))  # records the value to restore
        if not os.environ[key]:
            monkeypatch.delenv(key)
    return stack.StackConfig(api_port=18080, mlflow_port=15000, with_mlflow_server=False)


def test_where_a_run_goes(monkeypatch: pytest.MonkeyPatch, stack_cfg: Any) -> None:
    from retrainflow.airflow import stack

    def up(*alive: str, health: bool = True) -> None:
        monkeypatch.setattr(stack, "status", lambda cfg: {c: c in alive for c in cfg.components()})
        monkeypatch.setattr(stack, "airflow_health", lambda cfg: {} if health else None)

    up()
    assert cli_runs.stack_is_up(stack_cfg) is False
    up("api-server", "dag-processor")  # no scheduler: nothing would pick an in-process run up
    assert cli_runs.stack_is_up(stack_cfg) is False
    up("api-server", "scheduler", "dag-processor")
    assert cli_runs.stack_is_up(stack_cfg) is True
    up("api-server", "scheduler", health=False)
    with pytest.raises(StackError, match="picked up by that scheduler"):
        cli_runs.stack_is_up(stack_cfg)
    up("scheduler")
    with pytest.raises(StackError, match="retrainflow up"):
        cli_runs.stack_is_up(stack_cfg)


class FakeClient:
    """The REST calls of a run through the stack, answered from memory."""

    def __init__(self, runs: list[dict[str, Any]], paused: bool = True, interrupt: bool = False):
        self.runs = runs
        self.paused = paused
        self.interrupt = interrupt
        self.calls: list[tuple[Any, ...]] = []
        self.polls = 0

    def wait_for_dag(self, dag_id: str, timeout: float) -> dict[str, Any]:
        return {"dag_id": dag_id, "is_paused": self.paused, "timetable_summary": None}

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.calls.append(("set_paused", dag_id, paused))

    def list_dag_runs(self, dag_id: str, states: list[str]) -> list[dict[str, Any]]:
        return [r for r in self.runs if r["dag_id"] == dag_id and r["state"] in states]

    def set_dag_run_state(self, dag_id: str, run_id: str, state: str, note: str) -> None:
        self.calls.append(("patch", dag_id, run_id, state, note))

    def trigger_dag_run(self, dag_id: str, conf: dict, run_id: str, note: str) -> None:
        self.calls.append(("trigger", dag_id, conf, run_id))
        self.run_id = run_id

    def get_dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        if self.interrupt:
            raise KeyboardInterrupt
        self.polls += 1
        return {"state": "running" if self.polls < 2 else "success"}

    def get_task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        if run_id != getattr(self, "run_id", None):  # the stale run: its task process is gone
            return [{"task_id": "train", "state": "running", "pid": _dead_pid(), "hostname": "x"}]
        done = self.polls >= 2
        return [
            {"task_id": "train", "state": "success"},
            {"task_id": "promote", "state": "success" if done else "running"},
            {"task_id": "evaluate", "state": "success"},
        ]

    def get_xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        return {"promote": None, "evaluate": {"passed": True}}.get(task_id, {"t": task_id})


RUN_ID = "cli__synthetic__20261202T000000.000Z"


def _through_stack(
    monkeypatch: pytest.MonkeyPatch, stack_cfg: Any, client: FakeClient, said: list[str]
) -> Any:
    """``run_pipeline_dag`` with the stack "up" and ``client`` as its REST API."""
    from retrainflow.airflow import rest, stack

    monkeypatch.setattr(stack, "status", lambda cfg: {c: True for c in cfg.components()})
    monkeypatch.setattr(stack, "airflow_health", lambda cfg: {})
    monkeypatch.setattr(stack, "StackConfig", lambda: stack_cfg)
    monkeypatch.setattr(rest, "AirflowClient", lambda *a, **k: client)
    monkeypatch.setattr(cli_runs, "_close_mlflow_runs", lambda dag_id, run_id: ["abc"])
    monkeypatch.setattr(cli_runs, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(cli_runs, "cli_run_id", lambda pipeline: RUN_ID)
    return cli_runs.run_pipeline_dag(
        DAG, {"window_end": "2023-02-15"}, command="retrain", say=said.append
    )


def test_through_the_stack_stale_runs_fail_and_the_result_reads_back(
    monkeypatch: pytest.MonkeyPatch, stack_cfg: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = [
        {"dag_id": DAG, "dag_run_id": "manual__old", "state": "running", "triggered_by": "test"},
        {
            "dag_id": DAG,
            "dag_run_id": "scheduled__x",
            "state": "queued",
            "triggered_by": "timetable",
        },
    ]
    client = FakeClient(runs)
    # the promote manifest the task saved (its XCom is "missing" in the fake)
    saved = stack_cfg.paths.artifacts / "synthetic" / RUN_ID / "promote" / "manifest.json"
    saved.parent.mkdir(parents=True)
    saved.write_text(json.dumps({"version": "3"}))

    said: list[str] = []
    result = _through_stack(monkeypatch, stack_cfg, client, said)

    patches = [c for c in client.calls if c[0] == "patch"]
    assert [c[2:4] for c in patches] == [("manual__old", "failed")]  # not the scheduled run
    assert "Marked failed by retrainflow" in patches[0][4]
    assert said[0].startswith("failed stale run manual__old of retrain__synthetic: it was left")
    assert "closed its MLflow run abc (left RUNNING) as KILLED" in said[0]
    assert ("set_paused", DAG, False) in client.calls
    assert any(line.startswith(f"unpaused {DAG}") for line in said)
    trigger = next(c for c in client.calls if c[0] == "trigger")
    assert trigger[2] == {"window_end": "2023-02-15"}
    assert result.run_id == trigger[3] == RUN_ID
    assert result.state == "success"
    assert list(result.task_states) == ["evaluate", "promote", "train"]  # as dag.test() lists
    assert result.outputs == {
        "evaluate": {"passed": True},
        "promote": {"version": "3"},  # from the saved manifest
        "train": {"t": "train"},
    }
    assert result.ui_url.endswith(f"/dags/{DAG}/runs/{RUN_ID}")
    assert "promote running" in capsys.readouterr().err  # the progress line
    assert not cli_runs.lock_path(stack_cfg.run_dir, DAG).exists()


def test_ctrl_c_while_waiting_says_the_run_goes_on(
    monkeypatch: pytest.MonkeyPatch, stack_cfg: Any
) -> None:
    said: list[str] = []
    client = FakeClient([], paused=False, interrupt=True)
    with pytest.raises(KeyboardInterrupt):
        _through_stack(monkeypatch, stack_cfg, client, said)
    assert said[-1].startswith(f"interrupted: run {RUN_ID} of {DAG} goes on in the stack")
    assert f"/runs/{RUN_ID}" in said[-1]
    assert not any(c[0] == "set_paused" for c in client.calls)  # it was not paused
    assert not cli_runs.lock_path(stack_cfg.run_dir, DAG).exists()


def test_a_failed_task_log_gives_the_error_line(tmp_path: Path) -> None:
    log = tmp_path / "attempt=1.log"
    events = [
        {"event": "starting", "level": "info"},
        {
            "event": "Task failed with exception",
            "level": "error",
            "error_detail": [
                {
                    "exc_type": "AirflowFailException",
                    "exc_value": "[empty_window] The window holds no rows",
                },
                {"exc_type": "EmptyWindowError", "exc_value": "The window holds no rows"},
            ],
        },
    ]
    log.write_text("\n".join(json.dumps(e) for e in events) + "\nnot json\n")
    assert cli_runs.task_log_error(log) == "[empty_window] The window holds no rows"


# -- slow: real CLI processes --------------------------------------------------------------------


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLFLOW_TRACKING"))}
    env.update(RETRAINFLOW_HOME=str(home), RETRAINFLOW_CONFIG_DIR=str(FIXTURES))
    env.pop("RETRAINFLOW_DEBUG", None)
    return env


def _cli(home: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], env=_env(home), capture_output=True, text=True, timeout=timeout, check=False
    )


def _query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    if not db.exists():
        return []
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return []  # not created yet, or busy: ask again


def _spawn_cli(home: Path, args: list[str]) -> subprocess.Popen[bytes]:
    """``retrainflow ARGS`` for ``home``, quiet, in its own process group (to be killed)."""
    return subprocess.Popen(
        [CLI, *args],
        env=_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _start_and_kill(
    home: Path, args: list[str], when: str, deadline_s: float = 300
) -> tuple[int, bool]:
    """Start ``retrainflow ARGS`` and SIGKILL its process group as soon as ``when`` holds:
    ``"pull"`` (its first task runs) or ``"promote"`` (promote runs and, ideally, has opened
    its MLflow run). Returns the killed pid and whether an MLflow run was open."""
    proc = _spawn_cli(home, args)
    airflow_db, mlflow_db = home / "airflow" / "airflow.db", home / "mlflow" / "mlflow.db"
    t0 = time.monotonic()
    promote_since = None
    mlflow_open: list[Any] = []
    try:
        while time.monotonic() - t0 < deadline_s:
            assert proc.poll() is None, f"the CLI ended (exit {proc.returncode}) before the kill"
            states = dict(
                _query(
                    airflow_db,
                    "select ti.task_id, ti.state from task_instance ti join dag_run dr "
                    "on ti.run_id = dr.run_id and ti.dag_id = dr.dag_id "
                    "where dr.state = 'running'",
                )
            )
            if when == "pull" and states.get("pull") == "running":
                break
            if when == "promote" and states.get("promote") == "running":
                promote_since = promote_since or time.monotonic()
                mlflow_open = _query(mlflow_db, "select 1 from runs where status = 'RUNNING'")
                if mlflow_open or time.monotonic() - promote_since > 1.0:
                    break
            time.sleep(0.05)
        else:
            pytest.fail(f"{when} did not start within {deadline_s} s")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    return proc.pid, bool(mlflow_open)


def _dag_runs(home: Path) -> list[tuple[str, str, str]]:
    return _query(
        home / "airflow" / "airflow.db",
        "select run_id, state, triggered_by from dag_run where dag_id = 'retrain__synthetic' "
        "order by id",
    )


@pytest.mark.slow
@pytest.mark.faults
def test_a_cli_retrain_killed_during_promote_blocks_nothing(seeded: Any, home: Any) -> None:
    from mlflow.tracking import MlflowClient

    root = home.root
    args = ["retrain", "synthetic", "--date", "2023-02-15", "--mode", "stateless"]
    t0 = time.monotonic()
    killed_pid, mlflow_open = _start_and_kill(root, args, "promote")
    t_killed = time.monotonic() - t0
    [(stale_id, state, trigger)] = _dag_runs(root)
    assert (state, trigger) == ("running", "TEST")  # what a killed CLI left, before this fix
    owner = cli_runs.read_owner(cli_runs.lock_path(root / "run", DAG))
    assert owner is not None and owner.pid == killed_pid and owner.run_id == stale_id

    out = _cli(root, *args)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    line = f"failed stale run {stale_id} of retrain__synthetic: it was left running by "
    assert line + f"`retrainflow retrain` (pid {killed_pid}), which is gone" in out.stderr
    if mlflow_open:  # promote's MLflow run was open at the kill: closed with the stale run
        assert "(left RUNNING) as KILLED" in out.stderr
    assert "registered models:/synthetic/1; champion is version 1" in out.stdout
    runs = _dag_runs(root)
    assert [r[1] for r in runs] == ["failed", "success"]
    tis = dict(
        _query(
            root / "airflow" / "airflow.db",
            f"select task_id, state from task_instance where run_id = '{stale_id}'",
        )
    )
    assert tis["promote"] == "failed" and tis["pull"] == "success"
    assert not cli_runs.lock_path(root / "run", DAG).exists()

    client = MlflowClient(f"sqlite:///{home.mlflow_db}")
    versions = client.search_model_versions("name = 'synthetic'")
    by_run = [v.tags.get("retrain_run_id") for v in versions]
    assert by_run == [runs[1][0]], by_run  # one version, of the successful run
    experiments = [e.experiment_id for e in client.search_experiments()]
    statuses = [r.info.status for r in client.search_runs(experiments)]
    assert "RUNNING" not in statuses, statuses
    assert ("KILLED" in statuses) == mlflow_open
    print(
        f"killed after {t_killed:.1f} s (MLflow run open: {mlflow_open}); rerun took {time.monotonic() - t0 - t_killed:.1f} s"
    )


@pytest.mark.slow
@pytest.mark.faults
def test_a_second_cli_run_of_the_same_pipeline_is_refused(seeded: Any, home: Any) -> None:
    root = home.root
    args = ["retrain", "synthetic", "--date", "2023-02-15", "--mode", "stateless"]
    first = _spawn_cli(root, args)
    try:
        lock = cli_runs.lock_path(root / "run", DAG)
        deadline = time.monotonic() + 120
        while not lock.exists():
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.1)
        out = _cli(root, *args, timeout=120)
        assert out.returncode == 1
        assert f"another `retrainflow retrain` (pid {first.pid}) is running this pipeline" in (
            out.stderr
        )
        assert "next: Wait for that run to finish" in out.stderr
        assert first.poll() is None  # untouched
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)


@pytest.mark.slow
def test_with_the_stack_up_the_cli_goes_through_it(
    seeded: Any, home: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retrainflow.airflow.rest import AirflowClient
    from tests.airflow.live import explain_run, running_stack

    root = home.root
    # A CLI retrain killed while the stack was down leaves an in-process run behind.
    _start_and_kill(
        root, ["retrain", "synthetic", "--date", "2023-02-15", "--mode", "stateless"], "pull"
    )
    [(stale_id, _, _)] = _dag_runs(root)
    monkeypatch.delenv("AIRFLOW_CONN_RETRAINFLOW_API", raising=False)
    with running_stack([DAG, "monitor__synthetic"]) as live:
        client: AirflowClient = live.client
        client.set_paused(DAG, True)  # the CLI unpauses it, and says so
        t0 = time.monotonic()
        out = _cli(root, "retrain", "synthetic", "--date", "2023-02-15", "--mode", "stateless")
        took = time.monotonic() - t0
        runs = client.list_dag_runs(DAG)
        cli_ids = [r["dag_run_id"] for r in runs if r["dag_run_id"].startswith("cli__synthetic__")]
        assert out.returncode == 0, (
            out.stdout[-3000:]
            + out.stderr[-3000:]
            + (explain_run(client, DAG, cli_ids[0]) if cli_ids else "")
        )
        assert f"failed stale run {stale_id} of retrain__synthetic" in out.stderr
        assert f"unpaused {DAG}" in out.stderr
        assert len(cli_ids) == 1 and f"runs there as {cli_ids[0]}" in out.stderr
        assert "registered models:/synthetic/1; champion is version 1" in out.stdout
        for task in ("pull", "validate", "features", "train", "evaluate", "promote"):
            assert re.search(rf"^{task}\s+success\s*$", out.stdout, re.M), out.stdout
        states = {r["dag_run_id"]: (r["state"], r["triggered_by"]) for r in runs}
        assert states[stale_id] == ("failed", "test")
        assert states[cli_ids[0]] == ("success", "rest_api")
        assert [r for r in runs if r["triggered_by"] == "test" and r["state"] != "failed"] == []
        # the printed result was read from the tasks' XComs over REST
        assert client.get_xcom(DAG, cli_ids[0], "promote")["model_uri"] == "models:/synthetic/1"

        out = _cli(root, "monitor", "synthetic", "--date", "2023-04-01", "--no-trigger", "--json")
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        payload = json.loads(out.stdout)
        assert payload["state"] == "success" and payload["run_id"].startswith("cli__synthetic__")
        assert payload["check"]["champion_version"] == "1"
        assert payload["check"]["trigger_status"] == "trigger disabled"
        monitor_runs = client.list_dag_runs("monitor__synthetic")
        assert [r["triggered_by"] for r in monitor_runs] == ["rest_api"]
    print(f"retrain through the stack: {took:.1f} s")


def test_up_waits_for_an_in_process_cli_run(
    tmp_path: Path, sleeper: psutil.Process, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scheduler started during a CLI's ``dag.test()`` run would run its tasks too."""
    from retrainflow.airflow import stack
    from retrainflow.cli.main import main

    monkeypatch.setenv("RETRAINFLOW_HOME", str(tmp_path))
    cfg = stack.StackConfig(home=tmp_path)
    _write_owner(cfg.run_dir, pid=sleeper.pid, create_time=sleeper.create_time())
    started: list[object] = []
    monkeypatch.setattr(stack, "start", lambda *a, **k: started.append(a))
    assert main(["up"]) == 1
    assert started == []  # nothing was started
