"""Every pipeline config yields a DAG that imports cleanly, cheaply and without I/O.

Parsing runs in a fresh interpreter (Airflow reads its configuration once, at
import) whose metadata database points at a path that cannot exist, so any
database access at parse time would show up as an import error.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("mlflow", "great_expectations", "lightgbm", "sklearn", "evidently", "boto3", "pandas")

PARSE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
out = {"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": {}}
for dag_id, dag in bag.dags.items():
    out["dags"][dag_id] = {
        "tasks": {
            t.task_id: {
                "retries": t.retries,
                "queue": t.queue,
                "type": type(t).__name__,
                "multiple_outputs": getattr(t, "multiple_outputs", None),
            }
            for t in dag.tasks
        },
        "max_active_runs": dag.max_active_runs,
        "params": sorted(dag.params.keys()),
        # the trigger form: a param's section (None: in front, under "Run Parameters") and default
        "form": {
            k: [dag.params.get_param(k).schema.get("section"), dag.params.get_param(k).value]
            for k in dag.params.keys()
        },
        "description": dag.description,
        "schedule": str(getattr(dag.timetable, "description", "")),
    }
out["heavy"] = [m for m in HEAVY if m in sys.modules]
print("RESULT" + json.dumps(out))
""".replace("HEAVY", repr(HEAVY))


def parse_dags(config_dir: Path, tmp_path: Path) -> dict:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sqlite:////nonexistent-dir/never.db",
        "RETRAINFLOW_CONFIG_DIR": str(config_dir),
        "RETRAINFLOW_HOME": str(tmp_path / "home"),
    }
    proc = subprocess.run(
        [sys.executable, "-c", PARSE, str(ROOT / "dags")],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT"))
    return json.loads(line.removeprefix("RESULT"))


@pytest.fixture(scope="module")
def all_configs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every config of the repo and of the test fixtures in one directory."""
    d = tmp_path_factory.mktemp("configs")
    for src in [
        *(ROOT / "config" / "pipelines").glob("*.yaml"),
        *(ROOT / "tests" / "fixtures" / "pipelines").glob("*.yaml"),
    ]:
        shutil.copy(src, d / src.name)
    return d


@pytest.fixture(scope="module")
def parsed(all_configs: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    return parse_dags(all_configs, tmp_path_factory.mktemp("parse"))


def test_no_import_errors_and_no_heavy_imports(parsed: dict) -> None:
    assert parsed["errors"] == {}
    assert parsed["heavy"] == [], "DAG parsing must not import data/ML libraries"


@pytest.mark.parametrize(
    "name",
    sorted(
        p.stem
        for p in [
            *(ROOT / "config" / "pipelines").glob("*.yaml"),
            *(ROOT / "tests/fixtures/pipelines").glob("*.yaml"),
        ]
    ),
)
def test_every_config_yields_its_retrain_dag(parsed: dict, name: str) -> None:
    dag = parsed["dags"][f"retrain__{name}"]
    tasks = dag["tasks"]
    assert list(tasks)[:6] == ["pull", "validate", "features", "train", "evaluate", "promote"]
    assert dag["max_active_runs"] == 1
    assert {"mode", "reason", "window_end"} <= set(dag["params"])
    # The form: what a person sets in front, an empty window end (= up to the newest data);
    # what the monitor passes over REST in one collapsed section of its own.
    form = dag["form"]
    assert [form[k][0] for k in ("mode", "reason", "window_end")] == [None, None, None]
    assert form["window_end"][1] is None
    assert form["reason_codes"][0] == form["details"][0] == "Set by the monitor (leave as is)"
    assert set(form) == {"mode", "reason", "window_end", "reason_codes", "details"}
    # Retries only where a retry can help (the lake and the MLflow registry); never on
    # validation (user errors fail fast in every task).
    retried = {"pull", "features", "train", "evaluate", "promote"}
    assert all(tasks[tid]["retries"] == 2 for tid in retried)
    assert all(t["retries"] == 0 for tid, t in tasks.items() if tid not in retried)
    # Fits go to the Celery queue of training workers; everything else to the default queue.
    assert {tid: t["queue"] for tid, t in tasks.items()} == {
        tid: ("training" if tid == "train" else "default") for tid in tasks
    }
    # One XCom per stage (its manifest), not one more per key of it.
    assert {tid: t["multiple_outputs"] for tid, t in tasks.items()} == dict.fromkeys(tasks, False)
    monitor = parsed["dags"][f"monitor__{name}"]
    assert list(monitor["tasks"]) == ["check"]
    assert monitor["tasks"]["check"]["multiple_outputs"] is False
    assert monitor["max_active_runs"] == 1
    assert {"check_date", "on_demand", "trigger", "api_conn_id"} <= set(monitor["params"])


def test_disabled_monitoring_builds_no_monitor_dag(tmp_path: Path) -> None:
    cfg = yaml.safe_load((ROOT / "tests/fixtures/pipelines/synthetic.yaml").read_text())
    cfg["name"] = "quiet"
    cfg["monitoring"] = {"enabled": False}
    d = tmp_path / "cfg"
    d.mkdir()
    (d / "quiet.yaml").write_text(yaml.safe_dump(cfg))
    out = parse_dags(d, tmp_path)
    assert "retrain__quiet" in out["dags"] and "monitor__quiet" not in out["dags"]


def test_manual_promotion_adds_a_human_approval(tmp_path: Path) -> None:
    cfg = yaml.safe_load((ROOT / "tests/fixtures/pipelines/synthetic.yaml").read_text())
    cfg["name"] = "manualpipe"
    cfg["promotion"] = "manual"
    d = tmp_path / "cfg"
    d.mkdir()
    (d / "manualpipe.yaml").write_text(yaml.safe_dump(cfg))
    out = parse_dags(d, tmp_path)
    tasks = out["dags"]["retrain__manualpipe"]["tasks"]
    assert tasks["approve_champion"]["type"] == "ApprovalOperator"
    assert {"needs_approval", "crown"} <= set(tasks)
    assert tasks["crown"]["multiple_outputs"] is False


def test_invalid_config_is_visible_and_does_not_hide_others(tmp_path: Path) -> None:
    d = tmp_path / "cfg"
    d.mkdir()
    shutil.copy(ROOT / "tests/fixtures/pipelines/synthetic.yaml", d / "synthetic.yaml")
    bad = yaml.safe_load((ROOT / "tests/fixtures/pipelines/synthetic.yaml").read_text())
    bad["name"] = "broken"
    bad["evaluation"]["primary_metric"] = "acc"
    (d / "broken.yaml").write_text(yaml.safe_dump(bad))
    out = parse_dags(d, tmp_path)
    assert "retrain__synthetic" in out["dags"]
    broken = out["dags"]["invalid_config__broken"]
    assert "evaluation.primary_metric" in broken["description"]
    assert "broken.yaml" in broken["description"]
