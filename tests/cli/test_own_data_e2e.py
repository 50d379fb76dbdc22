"""Your own data, end to end through the command line (issue 8), as a new user would:

a CSV made here (the drifting synthetic generator, 120 days, drift at day 60) →
``init`` → ``ingest`` of the first half → ``retrain`` (stateless) → ``ingest`` of
the second half → ``retrain`` (auto) → ``monitor --no-trigger`` → ``backtest``.
Each command is the installed console script in a subprocess, against its own
``RETRAINFLOW_HOME`` and config directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from retrainflow.data.synthetic import make_synthetic

pytestmark = pytest.mark.slow

CLI = str(Path(sys.executable).parent / "retrainflow")
START = date(2024, 1, 1)


def _cli(home: Path, configs: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLFLOW_TRACKING"))}
    env.update(RETRAINFLOW_HOME=str(home), RETRAINFLOW_CONFIG_DIR=str(configs))
    return subprocess.run(
        [CLI, *args], env=env, capture_output=True, text=True, timeout=900, check=False
    )


def _ok(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def test_a_csv_of_my_own_to_a_champion_then_warm_start_monitor_and_backtest(
    tmp_path: Path,
) -> None:
    home, configs = tmp_path / "home", tmp_path / "configs"
    configs.mkdir()
    frame = make_synthetic(START, days=120, rows_per_day=300, drift_day=60, seed=7)
    frame = frame.rename(columns={"ts": "event_time", "label": "converted"})
    first, second = tmp_path / "jan-feb.csv", tmp_path / "mar-apr.csv"
    cut = START + timedelta(days=60)
    frame[frame["event_time"] < str(cut)].to_csv(first, index=False)
    frame[frame["event_time"] >= str(cut)].to_csv(second, index=False)

    out = _ok(
        _cli(
            home,
            configs,
            "init",
            "shop",
            "--from",
            str(first),
            "--time-column",
            "event_time",
            "--target",
            "converted",
        )
    )
    assert "ingest" in out and "retrain" in out  # the next steps
    spec = yaml.safe_load((configs / "shop.yaml").read_text())
    assert spec["task"] == "binary_classification" and spec["target"] == "converted"
    assert {"x1", "x2", "x3", "x4"} <= set(spec["features"]["numeric"])
    assert _cli(home, configs, "validate-config", "--no-data").returncode == 0

    _ok(_cli(home, configs, "ingest", "shop", str(first)))
    again = _ok(_cli(home, configs, "ingest", "shop", str(first)))
    assert "already" in again.lower()  # the same file twice is a no-op that says so

    out = _ok(
        _cli(home, configs, "retrain", "shop", "--date", cut.isoformat(), "--mode", "stateless")
    )
    assert "champion is version 1" in out

    _ok(_cli(home, configs, "ingest", "shop", str(second)))
    later = cut + timedelta(days=21)
    out = _ok(_cli(home, configs, "retrain", "shop", "--date", later.isoformat(), "--mode", "auto"))
    assert "challenger" in out  # the challenger's metric against the champion

    history = json.loads(_ok(_cli(home, configs, "history", "shop", "--json")))
    versions = history["versions"]
    assert [v["mode"] for v in versions] == ["stateless", "warm_start"]
    assert versions[1]["parent_version"] == "1"

    out = _cli(
        home,
        configs,
        "monitor",
        "shop",
        "--date",
        (cut + timedelta(days=30)).isoformat(),
        "--no-trigger",
        "--json",
    )
    payload = json.loads(_ok(out)[out.stdout.index("{") :])
    assert payload["state"] == "success"
    assert payload["check"]["drift"]  # drift was measured on the user's own columns

    out = _ok(
        _cli(
            home,
            configs,
            "backtest",
            "shop",
            "--batch-days",
            "7",
            "--strategies",
            "static,stateless_window,warm_refit",
            "--json",
        )
    )
    summary = json.loads(out[out.index("{") :])["summary"]
    assert [r["strategy"] for r in summary] == ["static", "stateless_window", "warm_refit"]
    assert all(r["mean_metric"] is not None for r in summary)
