"""The small-run benchmark's goal check and report, on a saved result (no runs, no timing)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def small_runs() -> ModuleType:
    return _load("small_runs")


def _run(wall: float, **extra: Any) -> dict[str, Any]:
    return {"ok": True, "wall_seconds": wall, "load_average_before": [0.5, 0, 0], **extra}


def _payload() -> dict[str, Any]:
    tasks = {t: {"duration": 1.0, "gap_before_start": 0.5} for t in ("pull", "validate")}
    return {
        "setup": {"repeat": 2},
        "machine": {"nproc": 2},
        "import_probe": {"warm-start": {"modules": ["pandas"], "wall_seconds": 9.0}},
        "runs": {
            "warm-start": {
                "library": [
                    _run(3.0, cpu_seconds=3.5, stage_seconds={"pull": 1.0, "validate": 0.5}),
                    _run(2.0, cpu_seconds=2.5, stage_seconds={"pull": 0.8, "validate": 0.4}),
                ],
                "cli-local": [_run(20.0, cpu_seconds=19.0), _run(22.0, cpu_seconds=21.0)],
                "airflow": [_run(5.5, timeline={"tasks": tasks}), {"ok": False, "error": "x"}],
                "cli-stack": [_run(3.9, cpu_seconds=1.0)],
            },
            "monitor": {"library": [_run(1.0)], "airflow": [_run(4.5)]},
        },
    }


def test_goals_are_judged_on_the_fastest_runs(small_runs: ModuleType) -> None:
    summary = small_runs.summarize(_payload()["runs"])
    assert summary["warm-start"]["library"]["wall_fastest"] == 2.0
    assert summary["warm-start"]["library"]["wall_median"] == 2.5
    assert summary["warm-start"]["airflow"]["ok_runs"] == 1  # the failed run does not count
    goals = {
        (g["workload"], g["way"]): g for g in small_runs.judge(summary, _payload()["import_probe"])
    }
    af = goals[("warm-start", "airflow")]
    assert (af["value"], af["met"], af["distance"]) == (3.5, True, -0.5)
    local = goals[("warm-start", "cli-local")]
    assert (local["target"], local["met"], local["ratio"], local["distance"]) == (
        4.0,
        False,
        10.0,
        16.0,
    )
    # the goal leaves less than the imports cost a cold process
    assert (local["import_floor"], local["budget_after_floor"]) == (9.0, -5.0)
    stack = goals[("warm-start", "cli-stack")]
    assert stack["met"] is True and stack["import_floor"] is None
    mon = goals[("monitor", "airflow")]
    assert (mon["value"], mon["met"]) == (3.5, True)
    assert ("monitor", "cli-local") not in goals  # not measured: no row


def test_report_prints_a_saved_result(small_runs: ModuleType, capsys: Any) -> None:
    out = small_runs.report(_payload())
    text = capsys.readouterr().out
    assert "fixed overhead <= 4 s" in text and "FAILED RUN warm-start/airflow" in text
    assert {"summary", "goals", "tasks_warm-start", "timeline_warm-start"} <= set(out["markdown"])
    assert "fastest_run" not in out["summary"]["warm-start"]["library"]


def test_pipeline_overhead_reports_the_fixed_overhead() -> None:
    po = _load("pipeline_overhead")
    manifest = {"train_wall_seconds": 1.0, "train_cpu_seconds": 1.0}
    row = po.summarize("airflow", [_run(15.0, run_id="r", train_manifest=manifest)], 9.0, 10.5)
    assert row["fixed_overhead_seconds"] == 4.5 and row["fixed_overhead_goal_met"] is False
    assert row["bookkeeping_seconds"] == 6.0
