"""`retrainflow retrain` and `retrainflow monitor` run the real DAGs in-process (dag.test).

Run as the installed console script in a subprocess, as a person would: each
call migrates/uses the embedded Airflow metadata DB under RETRAINFLOW_HOME.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pipelines"
CLI = str(Path(sys.executable).parent / "retrainflow")


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLFLOW_TRACKING"))}
    env.update(RETRAINFLOW_HOME=str(home), RETRAINFLOW_CONFIG_DIR=str(FIXTURES))
    return subprocess.run(
        [CLI, *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )


def test_retrain_then_monitor_from_the_command_line(tmp_path: Path) -> None:
    assert _cli(tmp_path, "seed", "synthetic", "--until", "2023-04-30").returncode == 0

    out = _cli(tmp_path, "retrain", "synthetic", "--date", "2023-02-15", "--mode", "stateless")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "registered models:/synthetic/1; champion is version 1" in out.stdout
    for task in ("pull", "validate", "features", "train", "evaluate", "promote"):
        assert f"{task}" in out.stdout and "failed" not in out.stdout

    out = _cli(tmp_path, "monitor", "synthetic", "--date", "2023-04-01", "--no-trigger", "--json")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    payload = json.loads(out.stdout[out.stdout.index("{") :])
    check = payload["check"]
    assert payload["state"] == "success"
    assert check["champion_version"] == "1"
    assert check["decision"]["trigger"] is True and "drift" in check["decision"]["reasons"]
    assert check["trigger_status"] == "trigger disabled" and check["triggered_run_id"] is None

    history = json.loads(_cli(tmp_path, "history", "synthetic", "--json").stdout)
    assert [v["version"] for v in history["versions"]] == ["1"]


def test_retrain_reports_a_data_failure_and_its_report(tmp_path: Path) -> None:
    assert _cli(tmp_path, "seed", "synthetic", "--until", "2023-01-20").returncode == 0
    out = _cli(tmp_path, "retrain", "synthetic", "--date", "2024-01-01", "--mode", "stateless")
    assert out.returncode == 1
    assert "pull failed" in out.stdout and "holds no rows" in out.stdout
    report = Path(out.stdout.rsplit("\nreport: ", 1)[1].split()[0])
    assert report.is_file() and json.loads(report.read_text())["success"] is False
