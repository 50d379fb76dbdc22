"""``benchmarks/fit_contention.py``: its summary on made-up runs, and a smoke run (no timing
asserted)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    sys.path.insert(0, str(BENCH))  # its ``_common`` import
    spec = importlib.util.spec_from_file_location("fit_contention", BENCH / "fit_contention.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fit_contention"] = module
    spec.loader.exec_module(module)
    return module


def _run(way: str, phase: str, cpu: float | None, **extra: Any) -> dict[str, Any]:
    return {"way": way, "phase": phase, "cpu_s": cpu, "wall_s": 1.0, "threads": 2, **extra}


def test_summary_takes_median_busy_over_median_quiet_cpu(bench) -> None:  # type: ignore[no-untyped-def]
    runs = [
        _run("2-default", "quiet", 10.0),
        _run("2-default", "quiet", 12.0),
        _run("2-default", "busy", 30.0),
        _run("2-default", "busy", 100.0, timed_out=True),
        _run("1", "quiet", 8.0, threads=1),
        _run("1", "busy", 8.8, threads=1),
    ]
    rows = {r["way"]: r for r in bench.summarize(runs, ["2-default", "1"])}
    today = rows["2-default"]
    assert (today["quiet_cpu_s_median"], today["busy_cpu_s_median"]) == (11.0, 65.0)
    assert (today["cpu_ratio"], today["goal_met"], today["busy_timeouts"]) == (5.91, False, 1)
    one = rows["1"]
    assert (one["cpu_ratio"], one["goal_met"], one["quiet_threads"]) == (1.1, True, [1])
    # the least CPU of any finished fit (8.0) is the reference
    assert (today["busy_cpu_vs_best"], one["busy_cpu_vs_best"]) == (8.12, 1.1)


@pytest.mark.slow
def test_quick_run_writes_every_way_and_phase(bench, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """~1 min on 2 quiet cores (4 at a load of 10): 3,000 rows, two ways, one burner."""
    monkeypatch.setenv("RETRAINFLOW_HOME", str(tmp_path / "home"))
    out = tmp_path / "fit.json"
    argv = ["--quick", "--rows", "3000", "--ways", "1", "auto", "--busy", "1", "--settle", "0"]
    assert bench.main([*argv, "--output", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert [(r["way"], r["phase"]) for r in saved["runs"]] == [
        ("1", "quiet"),
        ("auto", "quiet"),
        ("1", "busy"),
        ("auto", "busy"),
    ]
    for run in saved["runs"]:
        assert run["rows"] == 3000 and run["cpu_s"] > 0 and run["threads"] == 1
    auto = [r for r in saved["runs"] if r["way"] == "auto"]
    assert all(r["reason"].startswith("auto: ") for r in auto)
    assert all(r["omp_wait_policy"] == "PASSIVE" for r in auto)  # set before LightGBM loaded
    assert {r["way"] for r in saved["summary"]} == {"1", "auto"}
    assert saved["machine"]["nproc"] >= 1 and len(saved["load_average_start"]) == 3
