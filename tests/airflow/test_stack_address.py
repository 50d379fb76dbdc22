"""One source for the stack's address: ``start`` records it in ``<home>/stack.json``, every
reader (the CLI's in-process runs, the ``retrainflow_api`` connection, the plugin's MLflow
links) takes it from there. No live stack: the functions are called on a temporary home."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from retrainflow.airflow import stack
from retrainflow.exceptions import StackError


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in ("AIRFLOW_CONN_RETRAINFLOW_API", "RETRAINFLOW_MLFLOW_UI_URL"):
        monkeypatch.delenv(key, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("RETRAINFLOW_HOME", str(home))
    return home


def _record(home: Path, api_port: int = 18080, mlflow_port: int = 15000) -> None:
    stack._record_address(stack.StackConfig(home=home, api_port=api_port, mlflow_port=mlflow_port))


def test_without_a_record_the_defaults_are_used(home: Path) -> None:
    cfg = stack.StackConfig(home=home)
    assert (cfg.host, cfg.api_port, cfg.mlflow_port) == ("127.0.0.1", 8080, 5000)
    assert stack.recorded_address(home) == {}
    assert stack.mlflow_ui_url(home) == "http://127.0.0.1:5000"


def test_the_record_holds_the_address_and_no_secret(home: Path) -> None:
    _record(home)
    path = home / "stack.json"
    data = json.loads(path.read_text())
    assert data["api_port"] == 18080 and data["mlflow_port"] == 15000
    assert data["airflow_url"] == "http://127.0.0.1:18080"
    assert data["mlflow_url"] == "http://127.0.0.1:15000"
    cfg = stack.StackConfig(home=home)
    _, password = stack.admin_credentials(cfg)
    env = stack.airflow_env(cfg)
    for secret in (
        password,
        env["AIRFLOW__API_AUTH__JWT_SECRET"],
        env["AIRFLOW__CORE__FERNET_KEY"],
    ):
        assert secret not in path.read_text()
    assert not list(home.glob(".stack.json.*"))  # the temporary file was renamed into place


def test_a_recorded_port_is_what_every_reader_uses(home: Path) -> None:
    _record(home)
    cfg = stack.StackConfig(home=home)
    assert (cfg.api_port, cfg.mlflow_port) == (18080, 15000)

    env = stack.airflow_env(cfg)
    assert env["AIRFLOW__API__PORT"] == "18080"
    assert env["AIRFLOW__API__BASE_URL"] == "http://127.0.0.1:18080"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"
    conn = urlsplit(env["AIRFLOW_CONN_RETRAINFLOW_API"])
    assert (conn.hostname, conn.port, conn.username) == ("127.0.0.1", 18080, "admin")
    assert urlsplit(stack.connection_uri(cfg)).port == 18080
    # the plugin's MLflow links (the env var is how the api-server process gets it)
    assert env["RETRAINFLOW_MLFLOW_UI_URL"] == "http://127.0.0.1:15000"
    assert stack.mlflow_ui_url(home) == "http://127.0.0.1:15000"
    assert stack.mlflow_ui_url() == "http://127.0.0.1:15000"  # the current RETRAINFLOW_HOME
    # tasks and the CLI write to the tracking store directly, not through the server's port
    assert env["MLFLOW_TRACKING_URI"] == f"sqlite:///{home}/mlflow/mlflow.db"


def test_the_cli_in_process_run_uses_the_recorded_port(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``retrainflow monitor`` / ``retrain`` build their connection in ``prepare_env``."""
    from retrainflow.airflow import local_run

    _record(home)
    cfg = stack.StackConfig(home=home)
    for key in stack.airflow_env(cfg):  # prepare_env updates os.environ: restore it after
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("RETRAINFLOW_HOME", str(home))
    assert cfg.airflow_home is not None
    (cfg.airflow_home / ".migrated").touch()  # no migration needed for this check
    local_run.prepare_env()
    assert urlsplit(os.environ["AIRFLOW_CONN_RETRAINFLOW_API"]).port == 18080
    assert os.environ["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith(
        "http://127.0.0.1:18080/"
    )


def test_explicit_ports_and_env_vars_override_the_record(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _record(home)
    cfg = stack.StackConfig(home=home, api_port=28080)
    assert (cfg.api_port, cfg.mlflow_port) == (28080, 15000)
    assert urlsplit(stack.connection_uri(cfg)).port == 28080

    monkeypatch.setenv("AIRFLOW_CONN_RETRAINFLOW_API", "http://u:p@airflow.example:443")
    monkeypatch.setenv("RETRAINFLOW_MLFLOW_UI_URL", "https://mlflow.example/")
    env = stack.airflow_env(stack.StackConfig(home=home))
    assert env["AIRFLOW_CONN_RETRAINFLOW_API"] == "http://u:p@airflow.example:443"
    assert env["RETRAINFLOW_MLFLOW_UI_URL"] == "https://mlflow.example/"
    assert stack.mlflow_ui_url(home) == "https://mlflow.example"


def test_an_unreadable_record_is_an_error_not_the_default_port(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "stack.json").write_text("{not json")
    with pytest.raises(StackError, match=r"stack.json cannot be read.*delete it"):
        stack.StackConfig(home=home)
    for bad in ({"host": "127.0.0.1", "api_port": "x"}, [8080]):
        (home / "stack.json").write_text(json.dumps(bad))
        with pytest.raises(StackError, match="does not hold the stack's host, api_port"):
            stack.StackConfig(home=home)


def test_start_refuses_to_move_a_running_stack(home: Path) -> None:
    _record(home)
    cfg = stack.StackConfig(home=home, api_port=28080)
    cfg.run_dir.mkdir(parents=True)
    (cfg.run_dir / "scheduler.pid").write_text(str(os.getpid()))  # "running": this process
    with pytest.raises(StackError, match=r"running at http://127.0.0.1:18080.*retrainflow down"):
        stack.start(cfg, timeout=5)
    assert json.loads((home / "stack.json").read_text())["api_port"] == 18080


def test_up_flags_override_and_their_absence_reads_the_record(home: Path) -> None:
    from retrainflow.cli.main import build_parser
    from retrainflow.cli.stack_cmds import stack_config

    parser = build_parser()
    cfg = stack_config(parser.parse_args(["up", "--airflow-port", "18080"]))
    assert (cfg.api_port, cfg.mlflow_port) == (18080, 5000)
    stack._record_address(cfg)  # what `up` does once the stack is healthy
    again = stack_config(parser.parse_args(["up"]))
    assert (again.api_port, again.mlflow_port) == (18080, 5000)
    assert stack_config().airflow_url == "http://127.0.0.1:18080"  # `down`, `demo`


def test_without_a_stack_the_admin_password_goes_nowhere(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 9, finding 8: with no `up` in this home, the in-process CLI built its API
    connection for 127.0.0.1:8080 with the admin password, for whatever listened there."""
    cfg = stack.StackConfig(home=home)
    _, password = stack.admin_credentials(cfg)
    env = stack.airflow_env(cfg)
    assert "AIRFLOW_CONN_RETRAINFLOW_API" not in env
    assert not any(password in value for value in env.values())
    # a stack recorded elsewhere: still no connection for the default port
    _record(home, api_port=18080)
    env = stack.airflow_env(stack.StackConfig(home=home, api_port=8080))
    assert "AIRFLOW_CONN_RETRAINFLOW_API" not in env
    # the recorded stack's own address gets it
    env = stack.airflow_env(stack.StackConfig(home=home))
    assert urlsplit(env["AIRFLOW_CONN_RETRAINFLOW_API"]).port == 18080


def test_the_scheduler_idle_sleep_is_the_stack_setting(home: Path) -> None:
    """A finished task's successor waits at most one idle loop of the scheduler."""
    assert stack.airflow_env(stack.StackConfig(home=home))[
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME"
    ] == str(stack.StackConfig.scheduler_idle_sleep)
    slow = stack.StackConfig(home=home, scheduler_idle_sleep=1.0)
    assert stack.airflow_env(slow)["AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME"] == "1.0"


def test_the_stack_runs_openmp_passive_unless_the_operator_says_otherwise(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert stack.airflow_env(stack.StackConfig(home=home))["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert stack.airflow_env(stack.StackConfig(home=home))["OMP_WAIT_POLICY"] == "ACTIVE"


def test_warming_the_execution_api_is_one_anonymous_request(home: Path) -> None:
    """What ``start`` sends a new API server so the first task does not wait for it."""
    import http.server
    import threading

    seen: list[tuple[str, str, str | None]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_PATCH(self) -> None:  # noqa: N802 - http.server's naming
            seen.append((self.command, self.path, self.headers.get("Authorization")))
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cfg = stack.StackConfig(home=home, api_port=server.server_address[1])
        assert stack.warm_execution_api(cfg, timeout=10) is not None
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [
        ("PATCH", "/execution/task-instances/00000000-0000-0000-0000-000000000000/run", None)
    ]
    # Nothing listening: a warning, no exception (the first task pays the build then).
    assert stack.warm_execution_api(cfg, timeout=5) is None
