"""The ``retrainflow`` command line, called in-process through ``main([...])``.

Registry state for ``history`` / ``rollback`` is built without Airflow, by
running the stages in-process (:func:`retrainflow.pipeline.run_all`) once per
module; each test works on its own copy of that state.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from retrainflow.cli.main import main
from retrainflow.exceptions import PipelineNotFoundError

REPO = Path(__file__).resolve().parents[2]
FIXTURE_CONFIGS = REPO / "tests" / "fixtures" / "pipelines"
SYNTHETIC_YAML = FIXTURE_CONFIGS / "synthetic.yaml"
CONSOLE_SCRIPT = Path(sys.executable).parent / "retrainflow"


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


Cli = Callable[..., Result]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run ``retrainflow ARGS...`` in this process; returns exit code, stdout and stderr."""

    def run(*argv: str) -> Result:
        capsys.readouterr()  # drop anything printed before
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def _set_env(mp: pytest.MonkeyPatch, home: Path, config_dir: Path) -> None:
    mp.setenv("RETRAINFLOW_HOME", str(home))
    mp.setenv("RETRAINFLOW_CONFIG_DIR", str(config_dir))
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    mp.delenv("RETRAINFLOW_DEBUG", raising=False)
    mp.delenv("RETRAINFLOW_MLFLOW_ARTIFACTS", raising=False)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty RETRAINFLOW_HOME; pipelines from tests/fixtures/pipelines."""
    root = tmp_path / "home"
    _set_env(monkeypatch, root, FIXTURE_CONFIGS)
    return root


def _synthetic(**evaluation: Any) -> dict[str, Any]:
    data = yaml.safe_load(SYNTHETIC_YAML.read_text())
    data["evaluation"].update(evaluation)
    return data


def _write_config(directory: Path, data: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _partitions(lake: Path) -> list[str]:
    return (
        sorted(p.name for p in lake.iterdir() if p.name.startswith("date="))
        if lake.is_dir()
        else []
    )


# -- the installed console script ---------------------------------------------------------------
def test_console_script_help() -> None:
    assert CONSOLE_SCRIPT.is_file(), f"{CONSOLE_SCRIPT} is not installed"
    proc = subprocess.run(
        [str(CONSOLE_SCRIPT), "--help"], check=False, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    for command in ("validate-config", "seed", "history", "rollback", "retrain"):
        assert command in proc.stdout


# -- validate-config ----------------------------------------------------------------------------
def test_validate_config_all_good(home: Path, cli: Cli) -> None:
    res = cli("validate-config")
    assert res.code == 0, res.out + res.err
    lines = res.out.splitlines()
    assert lines[0].split() == ["file", "pipeline", "status"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    body = lines[2:]
    assert len(body) == len(list(FIXTURE_CONFIGS.glob("*.y*ml")))
    row = next(line for line in body if "synthetic.yaml" in line)
    # an empty home: the file is valid, and the status says the data was not checked
    assert row.split()[1:3] == ["synthetic", "ok"] and "no data yet" in row
    assert res.err == ""


def test_validate_config_bad_file_names_file_and_field(
    home: Path, tmp_path: Path, cli: Cli
) -> None:
    bad = _write_config(tmp_path / "bad", _synthetic(primary_metric="acc"))
    res = cli("validate-config", str(bad), str(SYNTHETIC_YAML))
    assert res.code == 1
    assert f"The field 'evaluation.primary_metric' in {bad}" in res.out
    assert "got 'acc'" in res.out
    good = next(line for line in res.out.splitlines() if str(SYNTHETIC_YAML) in line)
    assert good.split()[1:3] == ["synthetic", "ok"]


def test_validate_config_reports_unset_env_var_and_unfit_drift_method(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    monkeypatch.delenv("RF_TEST_UNSET_LAKE", raising=False)
    unset = _synthetic()
    unset["source"]["path"] = "${RF_TEST_UNSET_LAKE}/synthetic"
    unset_path = _write_config(tmp_path / "unset", unset)
    unfit = _synthetic()
    unfit["monitoring"]["drift"] = {"columns": {"x1": {"method": "chisquare"}}}
    unfit_path = _write_config(tmp_path / "unfit", unfit)
    res = cli("validate-config", "--no-data", str(unset_path), str(unfit_path))
    assert res.code == 1
    assert f"The field 'source.path' in {unset_path}: uses ${{RF_TEST_UNSET_LAKE}}" in res.out
    assert f"The field 'monitoring.drift.columns.x1.method' in {unfit_path}: 'chisquare'" in res.out


def test_validate_config_invalid_yaml(home: Path, tmp_path: Path, cli: Cli) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: broken\nfeatures: [x1\n")
    res = cli("validate-config", str(bad))
    assert res.code == 1
    assert f"{bad}: is not valid YAML" in res.out


def test_validate_config_no_configs(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("RETRAINFLOW_CONFIG_DIR", str(empty))
    res = cli("validate-config")
    assert res.code == 1
    assert "no pipeline configs found" in res.out


def test_validate_config_checks_columns_against_data(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    config_dir = tmp_path / "configs"
    data = _synthetic()
    data["features"]["numeric"] = ["x1", "x2", "x3", "x4", "x9"]
    path = _write_config(config_dir, data)
    monkeypatch.setenv("RETRAINFLOW_CONFIG_DIR", str(config_dir))

    # Without data there is nothing to compare against: the schema alone is valid.
    assert cli("validate-config").code == 0

    seeded = cli("seed", "synthetic", "--until", "2023-01-10")
    assert seeded.code == 0, seeded.err
    assert len(_partitions(home / "lake" / "synthetic")) == 10

    res = cli("validate-config")
    assert res.code == 1
    assert f"The field 'features.numeric[4]' in {path}" in res.out
    assert "column 'x9' is not in the data" in res.out
    assert "2023-01-10" in res.out  # the newest partition it looked at

    no_data = cli("validate-config", "--no-data")
    assert no_data.code == 0, no_data.out
    assert "ok" in no_data.out


# -- seed ---------------------------------------------------------------------------------------
def test_seed_writes_partitions_then_only_new_days(home: Path, cli: Cli) -> None:
    lake = home / "lake" / "synthetic"
    first = cli("seed", "synthetic", "--until", "2023-01-03")
    assert first.code == 0, first.err
    assert first.out.startswith("synthetic: ")
    assert _partitions(lake) == ["date=2023-01-01", "date=2023-01-02", "date=2023-01-03"]
    assert all((lake / p / "part-0.parquet").is_file() for p in _partitions(lake))
    mtimes = {p: (lake / p / "part-0.parquet").stat().st_mtime_ns for p in _partitions(lake)}

    second = cli("seed", "synthetic", "--until", "2023-01-05")
    assert second.code == 0, second.err
    assert second.out.startswith("synthetic: ")
    assert _partitions(lake)[-2:] == ["date=2023-01-04", "date=2023-01-05"]
    assert len(_partitions(lake)) == 5
    # Days already present are not rewritten.
    assert {p: (lake / p / "part-0.parquet").stat().st_mtime_ns for p in mtimes} == mtimes

    again = cli("seed", "synthetic", "--until", "2023-01-05")
    assert again.code == 0, again.err
    assert len(_partitions(lake)) == 5


def test_seed_since_after_until(home: Path, cli: Cli) -> None:
    res = cli("seed", "synthetic", "--since", "2023-01-05", "--until", "2023-01-01")
    assert res.code == 1
    assert "error: since (2023-01-05) is after until (2023-01-01)" in res.err


# -- errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["history", "nope"],
        ["rollback", "nope"],
        ["seed", "nope", "--until", "2023-01-01"],
        ["history", "nope", "--json"],
    ],
    ids=["history", "rollback", "seed", "history-json"],
)
def test_unknown_pipeline(home: Path, cli: Cli, argv: list[str]) -> None:
    res = cli(*argv)
    assert res.code == 1
    lines = res.err.splitlines()
    assert lines[0].startswith("error: No pipeline named 'nope'")
    assert "known pipelines: [" in lines[0] and "'synthetic'" in lines[0]
    assert lines[1] == "next: List pipelines with `retrainflow validate-config`."
    assert "Traceback" not in res.err
    assert res.out == ""


def test_invalid_config_error_is_reported_with_next_step(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    config_dir = tmp_path / "configs"
    path = _write_config(config_dir, _synthetic(guardrails={"rmse": 0.1}))
    monkeypatch.setenv("RETRAINFLOW_CONFIG_DIR", str(config_dir))
    res = cli("history", "synthetic")
    assert res.code == 1
    assert res.err.startswith(f"error: The field 'evaluation.guardrails.rmse' in {path}: ")
    assert "next: Fix the file, then check it with `retrainflow validate-config`." in res.err
    assert "Traceback" not in res.err


def test_debug_env_shows_the_exception(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRAINFLOW_DEBUG", "1")
    with pytest.raises(PipelineNotFoundError):
        main(["history", "nope"])


def test_argparse_errors_exit_2(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["seed", "synthetic", "--until", "not-a-date"])
    assert info.value.code == 2
    assert "--until" in capsys.readouterr().err


# -- history / rollback -------------------------------------------------------------------------
@dataclass(frozen=True)
class Trained:
    """Snapshots of a home after one and after two in-process retrain runs."""

    config_dir: Path
    one_version: Path
    two_versions: Path
    summaries: list[dict[str, Any]]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    """Run the synthetic pipeline twice (stateless, 2023-02-15 then 2023-02-22).

    ``min_delta: -1.0`` makes the gate pass whatever the metrics, so the second
    version is promoted and version 1 becomes its previous champion.
    """
    from retrainflow.config import load_config
    from retrainflow.data.seed import seed
    from retrainflow.manifest import RunContext
    from retrainflow.pipeline import run_all

    root = tmp_path_factory.mktemp("trained")
    config_dir = root / "configs"
    path = _write_config(config_dir, _synthetic(min_delta=-1.0))
    work = root / "work"
    summaries = []
    with pytest.MonkeyPatch.context() as mp:
        _set_env(mp, work, config_dir)
        cfg = load_config(path)
        seed(cfg, date(2023, 2, 22))
        for i, end in enumerate(("2023-02-15", "2023-02-22"), start=1):
            ctx = RunContext(
                pipeline="synthetic",
                run_id=f"test__{i}",
                window_end=end,
                requested_mode="stateless",
                trigger_reason=f"test run {i}",
            )
            summaries.append(run_all(cfg, ctx).summary())
            shutil.copytree(work, root / f"after_{i}")
    yield Trained(config_dir, root / "after_1", root / "after_2", summaries)


def _use_copy(snapshot: Path, config_dir: Path, tmp_path: Path, mp: pytest.MonkeyPatch) -> Path:
    """A private copy of a snapshot as RETRAINFLOW_HOME (so tests may change it)."""
    root = tmp_path / "home"
    shutil.copytree(snapshot, root)
    _set_env(mp, root, config_dir)
    return root


@pytest.fixture
def two_versions(trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return _use_copy(trained.two_versions, trained.config_dir, tmp_path, monkeypatch)


@pytest.fixture
def one_version(trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return _use_copy(trained.one_version, trained.config_dir, tmp_path, monkeypatch)


def test_runs_were_promoted(trained: Trained) -> None:
    first, second = trained.summaries
    assert (first["version"], first["promoted"], first["champion"]) == ("1", True, "1")
    assert (second["version"], second["gate_passed"], second["promoted"]) == ("2", True, True)
    assert second["parent"] == "1"


def test_history_json(two_versions: Path, cli: Cli) -> None:
    res = cli("history", "synthetic", "--json")
    assert res.code == 0, res.err
    payload = json.loads(res.out)
    assert payload["pipeline"] == "synthetic"
    v1, v2 = payload["versions"]
    assert [v1["version"], v2["version"]] == ["1", "2"]
    assert v1["mode"] == v2["mode"] == "stateless"
    assert not v1["parent_version"]
    assert v2["parent_version"] == "1"  # the champion it was compared against
    assert v1["aliases"] == []
    assert v2["aliases"] == ["challenger", "champion"]
    assert v1["gate_passed"] is True and v2["gate_passed"] is True
    assert v1["window_end"] == "2023-02-10" and v2["window_end"] == "2023-02-17"  # minus holdout
    (p1,), (p2,) = v1["champion_periods"], v2["champion_periods"]
    assert (p1["seq"], p1["version"], p2["seq"], p2["version"]) == (1, "1", 2, "2")
    assert p1["until"] == p2["since"] and p2["until"] is None
    assert v2["previous_champion"] == p2["previous"] == "1"
    assert (p1["data_end"], p2["data_end"]) == ("2023-02-10", "2023-02-17")  # data time
    assert payload["champion_periods"] == [p1, p2]
    assert v2["trigger_reason"] == "test run 2"
    assert v2["warm_method"] == ""
    assert int(v2["rows"]) > 0


def test_history_table(two_versions: Path, cli: Cli) -> None:
    res = cli("history", "synthetic")
    assert res.code == 0, res.err
    versions, periods = res.out.split("\n\n")
    header, rule, *rows = versions.splitlines()
    assert header.split()[:5] == ["version", "aliases", "mode", "warm_method", "parent_version"]
    assert header.split()[-1] == "champion_periods"
    assert set(rule.replace(" ", "")) == {"-"}
    assert len(rows) == 2
    assert rows[0].split()[:5] == ["1", "-", "stateless", "-", "-"]
    assert rows[1].split()[:5] == ["2", "challenger,champion", "stateless", "-", "1"]
    assert rows[0].split()[-1] == "#1" and rows[1].split()[-1] == "#2"
    title, header, rule, *rows = periods.splitlines()
    assert "data_end" in title
    assert header.split() == ["seq", "version", "since", "until", "data_end", "reason"]
    assert [r.split()[:2] + r.split()[3:5] for r in rows] == [
        ["1", "1", rows[1].split()[2], "2023-02-10"],
        ["2", "2", "(serving)", "2023-02-17"],
    ]


def test_rollback_to_previous_champion(two_versions: Path, cli: Cli) -> None:
    from retrainflow.registry import Registry

    assert Registry().champion("synthetic").version == "2"
    res = cli("rollback", "synthetic")
    assert res.code == 0, res.err
    assert "synthetic: champion moved from version 2 back to version 1" in res.out

    champion = Registry().champion("synthetic")
    assert champion is not None and champion.version == "1"
    assert champion.tags["rolled_back_from"] == "2"
    assert champion.tags["champion_reason"] == "rollback from 2"

    history = json.loads(cli("history", "synthetic", "--json").out)["versions"]
    assert history[0]["aliases"] == ["champion"]
    assert history[1]["aliases"] == ["challenger"]
    assert history[1]["champion_periods"][0]["until"]
    assert history[0]["champion_periods"][-1]["until"] is None


def test_rollback_to_explicit_version(two_versions: Path, cli: Cli) -> None:
    from retrainflow.registry import Registry

    assert cli("rollback", "synthetic", "--to", "1").code == 0
    assert Registry().champion("synthetic").version == "1"
    # and forward again: version 2 passed its gate
    res = cli("rollback", "synthetic", "--to", "2")
    assert res.code == 0, res.err
    assert "from version 1 back to version 2" in res.out
    assert Registry().champion("synthetic").version == "2"


def test_rollbacks_keep_every_champion_period(two_versions: Path, cli: Cli) -> None:
    """Issue 7, finding 6: ``rollback`` then ``rollback --to`` read "since 03:35:15 → until 03:33:13"
    and lost the earlier periods."""
    assert cli("rollback", "synthetic").code == 0
    assert cli("rollback", "synthetic", "--to", "2").code == 0
    assert cli("rollback", "synthetic").code == 0
    payload = json.loads(cli("history", "synthetic", "--json").out)
    periods = payload["champion_periods"]
    assert [(p["seq"], p["version"]) for p in periods] == [
        (1, "1"),
        (2, "2"),
        (3, "1"),
        (4, "2"),
        (5, "1"),
    ]
    assert [p["reason"] for p in periods[2:]] == [
        "rollback from 2",
        "rollback from 1",
        "rollback from 2",
    ]
    for p, following in zip(periods, periods[1:], strict=False):
        assert p["since"] <= p["until"] == following["since"]
    assert periods[-1]["until"] is None
    v1, v2 = payload["versions"]
    assert [p["seq"] for p in v1["champion_periods"]] == [1, 3, 5]
    assert [p["seq"] for p in v2["champion_periods"]] == [2, 4]

    table = cli("history", "synthetic").out
    assert "#1,#3,#5" in table and "#2,#4" in table
    assert table.count("(serving)") == 1


def test_rollback_to_unknown_version(two_versions: Path, cli: Cli) -> None:
    from retrainflow.registry import Registry

    res = cli("rollback", "synthetic", "--to", "99")
    assert res.code == 1
    assert "error: Model 'synthetic' has no version 99" in res.err
    assert "retrainflow history synthetic" in res.err
    assert "Traceback" not in res.err
    assert Registry().champion("synthetic").version == "2"  # unchanged


def test_rollback_without_previous_champion(one_version: Path, cli: Cli) -> None:
    from retrainflow.registry import Registry

    res = cli("rollback", "synthetic")
    assert res.code == 1
    assert (
        "error: Champion version 1 of 'synthetic' has no previous champion; pass --to VERSION."
        in res.err
    )
    assert "next: See the model's lineage with `retrainflow history PIPELINE`." in res.err
    assert "Traceback" not in res.err
    assert Registry().champion("synthetic").version == "1"


def test_empty_registry(home: Path, cli: Cli) -> None:
    res = cli("history", "synthetic")
    assert res.code == 0
    assert "'synthetic' has no registered versions yet." in res.out
    assert json.loads(cli("history", "synthetic", "--json").out) == {
        "pipeline": "synthetic",
        "versions": [],
        "champion_periods": [],
    }

    res = cli("rollback", "synthetic")
    assert res.code == 1
    assert "error: 'synthetic' has no champion to roll back from." in res.err
    assert "Traceback" not in res.err


# -- a failed in-process run explains itself (issue 8, item 6) ----------------------------------


def _failed_run(tmp_path: Path, report: dict | None, log_text: str):  # type: ignore[no-untyped-def]
    from retrainflow.airflow.local_run import LocalRunResult, _last_error

    log = tmp_path / "run.log"
    log.write_text(log_text)
    return LocalRunResult(
        dag_id="retrain__synthetic",
        run_id="manual__1",
        state="failed",
        task_states={"pull": "success", "validate": "failed", "train": "upstream_failed"},
        outputs={},
        failure_report=report,
        log_path=str(log),
        error_line=_last_error(log),
    )


def test_a_failed_validation_prints_the_reason_and_the_next_step(tmp_path: Path, capsys) -> None:
    from retrainflow.cli.output import explain_failed_run

    report = {
        "stage": "validate",
        "path": "/x/validate/report.json",
        "error": {"code": "validation_failed", "message": "column 'x1': 3 values outside [0, 1]"},
    }
    explain_failed_run(_failed_run(tmp_path, report, "Traceback ...\n"), "retrain")
    out = capsys.readouterr().out
    assert "error: validate failed: column 'x1': 3 values outside [0, 1]" in out
    assert "next: Open the saved report" in out  # DataError's step, for its subclass' code
    assert "report: /x/validate/report.json" in out and "RETRAINFLOW_DEBUG=1" in out
    assert "Traceback" not in out


def test_a_failure_without_a_report_shows_the_last_error_of_the_log(tmp_path: Path, capsys) -> None:
    from retrainflow.cli.output import explain_failed_run

    log = (
        "Traceback (most recent call last):\n  File x\nRuntimeError: first\n"
        "The above exception was the direct cause of the following exception:\n"
        "airflow.sdk.exceptions.AirflowFailException: [invalid_mode] The champion (version 1) "
        "was trained on data up to 2013-02-22 (exclusive)\n"
    )
    explain_failed_run(_failed_run(tmp_path, None, log), "retrain")
    out = capsys.readouterr().out
    assert "error: validate failed: The champion (version 1) was trained on data up to" in out
    assert "next: Retry with `--mode stateless`" in out
    assert "AirflowFailException" not in out


def test_the_validate_report_carries_the_error(trained_fork, helpers) -> None:
    from retrainflow.exceptions import ValidationFailedError
    from retrainflow.pipeline import run_all

    lake = trained_fork.paths.lake / "synthetic"
    helpers.rewrite_days(lake, [date(2023, 2, 20)], lambda f: f.assign(x1=99.0))
    with pytest.raises(ValidationFailedError) as info:
        run_all(trained_fork.config, helpers.context("bad-x1", "2023-02-25", "stateless"))
    report = json.loads(Path(info.value.report_uri).read_text())
    assert report["error"]["code"] == "validation_failed"
    assert "column 'x1'" in report["error"]["message"]


def test_console_script_keeps_the_exit_code_and_flushes_its_output(tmp_path: Path) -> None:
    """``retrainflow`` (:func:`retrainflow.cli.main.run`) exits with main()'s code, output intact."""
    missing = tmp_path / "missing.yaml"
    bad = subprocess.run(
        [sys.executable, "-m", "retrainflow.cli.main", "validate-config", str(missing)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 1
    assert f"{missing}: cannot be read" in bad.stdout
    good = subprocess.run(
        [sys.executable, "-m", "retrainflow.cli.main", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert good.returncode == 0
    assert "Continual training for tabular models" in good.stdout


@pytest.mark.parametrize("through_stack", [True, False])
def test_monitor_points_at_its_reports(
    home: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, through_stack: bool
) -> None:
    """Through the stack the check's reports are pages of the plugin (the Run report tab and
    the Evidently report behind Airflow's login); in this process, the saved file."""
    from retrainflow.airflow import cli_runs
    from retrainflow.airflow.local_run import LocalRunResult

    run_id = "cli__synthetic__20261202T101010.000Z"
    manifest = {
        "drift": {"columns": {}},
        "check": {"current_rows": 10, "labelled_rows": 10, "drift_share": 0.5, "metric": 0.7},
        "champion_version": "1",
        "explain": ["drift: [fired]"],
        "decision": {"trigger": False, "reasons": [], "blocked_by": [], "mode": "auto"},
        "triggered_run_id": None,
        "report_uri": "/h/artifacts/synthetic/x/monitor/drift_report.html",
    }
    ui = f"http://127.0.0.1:18080/dags/monitor__synthetic/runs/{run_id}" if through_stack else None
    result = LocalRunResult(
        "monitor__synthetic",
        run_id,
        "success",
        {"check": "success"},
        {"check": manifest},
        None,
        ui_url=ui,
    )
    monkeypatch.setattr(cli_runs, "run_pipeline_dag", lambda *a, **k: result)
    out = cli("monitor", "synthetic", "--date", "2023-04-01", "--no-trigger").out
    if through_stack:
        page = f"http://127.0.0.1:18080/retrainflow/run/monitor__synthetic/{run_id}"
        assert f"run report: {page}  (in the Airflow UI" in out
        assert f"drift report: {page}/drift" in out and "/h/artifacts" not in out
    else:
        assert "drift report: /h/artifacts/synthetic/x/monitor/drift_report.html" in out
