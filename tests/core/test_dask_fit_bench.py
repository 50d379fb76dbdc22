"""``benchmarks/dask_fit.py``: its summary on made-up runs, and a tiny run of both engines (no
timing asserted)."""

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
    spec = importlib.util.spec_from_file_location("dask_fit", BENCH / "dask_fit.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["dask_fit"] = module
    spec.loader.exec_module(module)
    return module


def _run(way: str, wall: float, **extra: Any) -> dict[str, Any]:
    return {
        "days": 60,
        "way": way,
        "label": way,
        "rows": 1000,
        "wall_s": wall,
        "cpu_s": 1.0,
        "rss_before_mb": 200.0,
        "peak_rss_mb": 250.0,
        "roc_auc": 0.7,
        "load_before": [1.0, 1.0, 1.0],
        **extra,
    }


def test_summary_per_window_and_way(bench) -> None:  # type: ignore[no-untyped-def]
    workers = [
        {"cpu_s": 1.0, "rss_before_mb": 150.0, "peak_rss_mb": 190.0},
        {"cpu_s": 1.5, "rss_before_mb": 150.0, "peak_rss_mb": 230.0},
    ]
    runs = [
        _run("local", 2.0),
        _run("local", 4.0, peak_rss_mb=270.0),
        _run(
            "dask-2",
            3.0,
            partitions=60,
            chunks=8,
            fit_workers=2,
            workers=workers,
            workers_cpu_s=2.5,
        ),
        _run("dask-2", 5.0, partitions=60, roc_auc=0.71, workers=workers, workers_cpu_s=2.7),
    ]
    rows = {r["way"]: r for r in bench.summarize(runs)}
    local, dask = rows["local"], rows["dask-2"]
    assert (local["wall_s_min"], local["wall_s_median"], local["runs"]) == (2.0, 3.0, 2)
    assert (local["peak_rss_mb_median"], local["fit_rss_mb_median"]) == (260.0, 60.0)
    assert local["worker_peak_rss_mb_max"] is None and local["workers_cpu_s_median"] is None
    assert (dask["partitions"], dask["chunks"], dask["workers_cpu_s_median"]) == (60, 8, 2.6)
    assert (dask["worker_peak_rss_mb_max"], dask["worker_fit_rss_mb_max"]) == (230.0, 80.0)
    assert dask["roc_auc"] == [0.7, 0.71]


def test_tiny_run_writes_both_engines(bench, tmp_path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    """Two days of flights, one local and one Dask fit, each in its own process (~10-15 s)."""
    monkeypatch.setenv("RETRAINFLOW_HOME", str(tmp_path / "home"))
    out = tmp_path / "dask_fit.json"
    assert bench.main(["--days", "2", "--ways", "local", "dask-2", "--output", str(out)]) == 0
    saved = json.loads(out.read_text())
    local, dask = saved["runs"]
    assert (local["way"], local["engine"], dask["way"], dask["engine"]) == (
        "local",
        "local",
        "dask-2",
        "dask",
    )
    assert (dask["partitions"], dask["chunks"], dask["fit_workers"]) == (2, 2, 2)
    assert len(dask["workers"]) == 2
    assert all(w["peak_rss_mb"] >= w["rss_before_mb"] > 0 for w in dask["workers"])
    assert local["trees"] == dask["trees"] == 200
    assert local["peak_rss_mb"] >= local["rss_before_mb"] > 0
    assert 0.5 < local["roc_auc"] < 1 and 0.5 < dask["roc_auc"] < 1
    assert "| dask, 2 workers x 1 thread |" in saved["markdown"]
    assert "dask, 2 workers x 1 thread" in capsys.readouterr().out
