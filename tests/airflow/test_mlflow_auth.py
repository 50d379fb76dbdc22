"""The embedded MLflow server runs MLflow's basic-auth app: no anonymous access.

Fast tests check the credentials (generated once per home, private, never shown) and the
files and environment MLflow reads; the live test starts only the MLflow server of a stack
and shows that an anonymous client can neither read the registry nor move an alias, while
the stack's admin credentials can.
"""

from __future__ import annotations

import configparser
import json
import stat
import time
from pathlib import Path

import pytest
import requests

from retrainflow.airflow import mlflow_auth, stack
from retrainflow.exceptions import StackError

from .live import free_port

_CLIENT_VARS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("RETRAINFLOW_HOME", str(home))
    for var in (
        "MLFLOW_TRACKING_URI",
        "MLFLOW_REGISTRY_URI",
        "RETRAINFLOW_MLFLOW_ARTIFACTS",
        "AIRFLOW_CONN_RETRAINFLOW_API",
        "RETRAINFLOW_MLFLOW_UI_URL",
        "MLFLOW_AUTH_CONFIG_PATH",
        "MLFLOW_AUTH_ADMIN_USERNAME",
        "MLFLOW_AUTH_ADMIN_PASSWORD",
        *_CLIENT_VARS,
    ):
        monkeypatch.delenv(var, raising=False)
    return home


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- credentials -----------------------------------------------------------------------------


def test_credentials_are_generated_once_private_and_stable(home: Path) -> None:
    creds = mlflow_auth.credentials(home)
    path = mlflow_auth.credentials_file(home)
    assert path == home / "mlflow" / "basic_auth_credentials.json"
    assert creds.path == path
    assert _mode(path) == 0o600
    assert creds.username == "admin"
    assert len(creds.password) >= 12 and len(creds.flask_secret_key) >= 32
    assert creds.password != creds.flask_secret_key
    # stable across calls, config objects and the default home
    assert mlflow_auth.credentials(home) == creds
    assert mlflow_auth.credentials() == creds
    assert stack.StackConfig(home=home).mlflow_credentials_file == path
    # another home gets other secrets
    other = mlflow_auth.credentials(home.parent / "other")
    assert other.password != creds.password
    assert other.flask_secret_key != creds.flask_secret_key
    assert not list(path.parent.glob(".*.tmp"))  # the temporary file was linked into place


def test_a_group_readable_credentials_file_is_made_private(home: Path) -> None:
    creds = mlflow_auth.credentials(home)
    creds.path.chmod(0o644)
    assert mlflow_auth.credentials(home) == creds
    assert _mode(creds.path) == 0o600


def test_the_password_is_not_in_repr_or_str(home: Path) -> None:
    creds = mlflow_auth.credentials(home)
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert creds.password not in text
        assert creds.flask_secret_key not in text
        assert "admin" in text


def test_a_broken_credentials_file_is_an_error_that_does_not_show_the_password(
    home: Path,
) -> None:
    path = mlflow_auth.credentials_file(home)
    path.parent.mkdir(parents=True)
    short = "tooShort%9"  # below MLflow's 12-character minimum
    path.write_text(json.dumps({"username": "admin", "password": short, "flask_secret_key": "k"}))
    with pytest.raises(StackError) as err:
        mlflow_auth.credentials(home)
    assert short not in str(err.value) and str(path) in str(err.value)

    secret = "a-long-enough-password\n"  # a line break would corrupt the ini file
    path.write_text(json.dumps({"username": "admin", "password": secret, "flask_secret_key": "x"}))
    with pytest.raises(StackError) as err:
        mlflow_auth.credentials(home)
    assert secret.strip() not in str(err.value) and "password" in str(err.value)

    path.write_text("{not json")
    with pytest.raises(StackError) as err:
        mlflow_auth.credentials(home)
    assert str(path) in str(err.value)


def test_a_lost_credentials_file_is_not_silently_replaced(home: Path) -> None:
    """MLflow keeps the admin password of its first start: a new one would never work."""
    creds = mlflow_auth.credentials(home)
    mlflow_auth.server_env(home)  # creates the (empty) user store
    creds.path.unlink()
    assert mlflow_auth.credentials(home).password != creds.password  # empty store: fine

    mlflow_auth.credentials(home).path.unlink()
    mlflow_auth.auth_db(home).write_bytes(b"SQLite format 3\0")  # a store with users
    with pytest.raises(StackError) as err:
        mlflow_auth.credentials(home)
    assert "basic_auth.db" in str(err.value)
    assert not mlflow_auth.credentials_file(home).exists()


# -- what MLflow reads -----------------------------------------------------------------------


def test_the_ini_file_is_what_mlflow_3_17_reads(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = mlflow_auth.credentials(home)
    path = mlflow_auth.write_config(home)
    assert path == home / "mlflow" / "basic_auth.ini"
    assert _mode(path) == 0o600

    ini = configparser.ConfigParser()  # MLflow's reader: default (percent) interpolation
    ini.read(path)
    section = ini["mlflow"]
    assert section["default_permission"] == "READ"
    assert section["database_uri"] == f"sqlite:///{home / 'mlflow' / 'basic_auth.db'}"
    assert section["database_uri"].startswith("sqlite:////")  # an absolute path
    assert section["admin_username"] == "admin"
    assert section["admin_password"] == creds.password
    assert section["authorization_function"] == (
        "mlflow.server.auth:authenticate_request_basic_auth"
    )

    from mlflow.server.auth.config import read_auth_config

    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(path))
    conf = read_auth_config()
    assert conf.admin_username == creds.username
    assert conf.admin_password == creds.password
    assert conf.database_uri == section["database_uri"]
    assert conf.default_permission == "READ"

    # rewriting the same content keeps the file; a percent sign survives MLflow's interpolation
    mtime = path.stat().st_mtime_ns
    assert mlflow_auth.write_config(home) == path and path.stat().st_mtime_ns == mtime
    data = json.loads(creds.path.read_text())
    data["password"] = "100%-random-%(x)s-pass"
    creds.path.write_text(json.dumps(data))
    mlflow_auth.write_config(home)
    assert read_auth_config().admin_password == "100%-random-%(x)s-pass"
    assert _mode(path) == 0o600


def test_server_env_and_arguments(home: Path) -> None:
    creds = mlflow_auth.credentials(home)
    base = {
        "PATH": "/usr/bin",
        "MLFLOW_AUTH_ADMIN_USERNAME": "someone-else",
        "MLFLOW_AUTH_ADMIN_PASSWORD": "would-override-the-ini",
    }
    env = mlflow_auth.server_env(home, base)
    assert env["PATH"] == "/usr/bin"
    assert env["MLFLOW_AUTH_CONFIG_PATH"] == str(mlflow_auth.config_file(home))
    assert env["MLFLOW_FLASK_SERVER_SECRET_KEY"] == creds.flask_secret_key
    assert "MLFLOW_AUTH_ADMIN_USERNAME" not in env and "MLFLOW_AUTH_ADMIN_PASSWORD" not in env
    assert creds.password not in env.values()  # the password travels in the 0600 ini only
    assert base["MLFLOW_AUTH_ADMIN_USERNAME"] == "someone-else"  # the input is not modified
    assert _mode(mlflow_auth.auth_db(home)) == 0o600
    assert mlflow_auth.server_args() == ["--app-name", "basic-auth"]

    cfg = stack.StackConfig(home=home, api_port=18080, mlflow_port=15000)
    cmd = stack._command(cfg, "mlflow")
    assert cmd[-2:] == ["--app-name", "basic-auth"]
    assert creds.password not in " ".join(cmd)  # the command line is logged


def test_clients_of_the_stack_get_the_credentials(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = mlflow_auth.credentials(home)
    cfg = stack.StackConfig(home=home, api_port=18080, mlflow_port=15000)
    env = stack.airflow_env(cfg)
    assert env["MLFLOW_TRACKING_USERNAME"] == creds.username
    assert env["MLFLOW_TRACKING_PASSWORD"] == creds.password
    again = stack.airflow_env(stack.StackConfig(home=home, api_port=18080, mlflow_port=15000))
    assert {k: again[k] for k in _CLIENT_VARS} == {k: env[k] for k in _CLIENT_VARS}  # stable

    def client_vars(uri: str) -> dict[str, str]:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        cfg = stack.StackConfig(home=home, api_port=18080, mlflow_port=15000)
        return {k: v for k, v in stack.airflow_env(cfg).items() if k in _CLIENT_VARS}

    # the stack's own server, however it is spelled, gets them
    for uri in ("http://127.0.0.1:15000", "http://localhost:15000/"):
        assert client_vars(uri)["MLFLOW_TRACKING_PASSWORD"] == creds.password
    # another server never receives this stack's password
    for uri in ("https://mlflow.example.com", "http://127.0.0.1:5001", "http://10.0.0.1:15000"):
        assert client_vars(uri) == {}
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    # without an MLflow server in the stack there is nothing to authenticate to
    no_server = stack.StackConfig(home=home, with_mlflow_server=False)
    assert not set(_CLIENT_VARS) & set(stack.airflow_env(no_server))


def test_up_names_the_credentials_file_but_never_prints_the_password(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from retrainflow.cli.stack_cmds import print_urls

    cfg = stack.StackConfig(home=home, api_port=18080, mlflow_port=15000)
    creds = mlflow_auth.credentials(home)
    info = stack._info(cfg, (), time.monotonic())
    assert info.mlflow_credentials_file == creds.path
    print_urls(info)
    out = capsys.readouterr().out
    assert str(creds.path) in out and "http://127.0.0.1:15000" in out
    assert creds.password not in out and creds.flask_secret_key not in out

    no_server = stack.StackConfig(home=home, with_mlflow_server=False)
    assert stack._info(no_server, (), time.monotonic()).mlflow_credentials_file is None


# -- live: the server refuses anonymous requests ---------------------------------------------


@pytest.mark.slow
@pytest.mark.security
@pytest.mark.timeout(180)
def test_an_anonymous_client_cannot_move_an_alias(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    cfg = stack.StackConfig(
        home=home, api_port=free_port(), mlflow_port=free_port(), with_triggerer=False
    )
    env = stack._process_env(cfg)
    for d in (cfg.log_dir, cfg.run_dir, cfg.paths.mlflow_dir, cfg.paths.mlflow_artifacts):
        d.mkdir(parents=True, exist_ok=True)
    creds = mlflow_auth.credentials(home)
    url = cfg.mlflow_url
    alias_url = f"{url}/api/2.0/mlflow/registered-models/alias"

    t0 = time.monotonic()
    proc = stack._launch(cfg, "mlflow", env)  # only the MLflow server of the stack
    try:
        while not stack._mlflow_ok(cfg, timeout=2):  # /health needs no credentials
            code = proc.poll()
            assert code is None, f"mlflow server exited ({code}); see {cfg.log_dir}/mlflow.log"
            assert time.monotonic() - t0 < 120, "mlflow server not healthy after 120 s"
            time.sleep(0.5)
        print(f"mlflow server with basic-auth healthy after {time.monotonic() - t0:.1f} s")

        # the stack's admin registers two versions and crowns the first
        for key, value in mlflow_auth.client_env(home).items():
            monkeypatch.setenv(key, value)
        client = MlflowClient(tracking_uri=url, registry_uri=url)
        run = client.create_run(client.create_experiment("auth-check"))
        weights = tmp_path / "weights.txt"
        weights.write_text("not a real model")
        client.log_artifact(run.info.run_id, str(weights), "model")  # artifacts are proxied too
        client.create_registered_model("guarded")
        source = f"runs:/{run.info.run_id}/model"
        v1 = client.create_model_version("guarded", source, run_id=run.info.run_id)
        v2 = client.create_model_version("guarded", source, run_id=run.info.run_id)
        client.set_registered_model_alias("guarded", "champion", v1.version)

        move = {"name": "guarded", "alias": "champion", "version": str(v2.version)}
        # anonymous: refused, and the alias stays where it was
        for path in (
            "/api/2.0/mlflow/registered-models/alias",
            "/ajax-api/2.0/mlflow/registered-models/alias",
        ):
            resp = requests.post(f"{url}{path}", json=move, timeout=15)
            assert resp.status_code == 401, (path, resp.status_code, resp.text[:200])
            assert resp.headers.get("WWW-Authenticate", "").startswith("Basic")
        resp = requests.post(alias_url, json=move, timeout=15, auth=("admin", "wrong-password-1"))
        assert resp.status_code == 401
        assert str(client.get_model_version_by_alias("guarded", "champion").version) == str(
            v1.version
        )
        resp = requests.get(
            f"{url}/api/2.0/mlflow/registered-models/get", params={"name": "guarded"}, timeout=15
        )
        assert resp.status_code == 401
        assert "guarded" not in resp.text

        # with the stack's credentials the same request works
        resp = requests.post(
            alias_url, json=move, timeout=15, auth=(creds.username, creds.password)
        )
        assert resp.status_code == 200, resp.text[:200]
        assert str(client.get_model_version_by_alias("guarded", "champion").version) == str(
            v2.version
        )
    finally:
        stack._terminate(proc.pid, grace=15)
        stack._pid_file(cfg, "mlflow").unlink(missing_ok=True)
    assert proc.wait(timeout=15) is not None

    # the password is only in the two private files, not in the server's log
    log = (cfg.log_dir / "mlflow.log").read_text(errors="replace")
    assert "--app-name basic-auth" in log
    assert creds.password not in log
    holders = sorted(
        p.name for p in home.rglob("*") if p.is_file() and creds.password.encode() in p.read_bytes()
    )
    assert holders == ["basic_auth.ini", "basic_auth_credentials.json"]
