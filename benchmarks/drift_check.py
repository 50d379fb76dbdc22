#!/usr/bin/env python
"""Drift check speed: Evidently's ``DataDriftPreset`` defaults vs retrainflow's fast path.

The whole monitoring computation of :func:`retrainflow.monitoring.drift.compute_drift`
(feature drift of 20 columns — 15 numeric, 5 categorical with 8 levels — plus
prediction drift, target drift and the performance metrics on labelled rows) on a
reference and a current frame of N rows each, N = 100k and 1M, for

* ``preset``: ``fast=False`` — ``Report([DataDriftPreset()], include_tests=True)``
  (+ ``ValueDrift`` of scores and target) on the full frames, Evidently's defaults;
* ``fast``: the default path — Evidently's stat tests on 50k-row samples, no HTML;
* ``fast+html``: the same, also rendering Evidently's HTML report.

Each case runs in its own subprocess pinned to one core (``sched_setaffinity``,
``OMP/OPENBLAS/MKL_NUM_THREADS=1``); it reports the wall time of ``compute_drift``
(the import of Evidently, ~10-20 s, is measured separately) and the process's peak
RSS (``ru_maxrss``) together with the RSS before the call (the data frames).

Target: ``fast`` at 1M x 20 in <= 10 s on one core.

Usage::

    .venv/bin/python benchmarks/drift_check.py [--quick] [--skip-default-1m]

``--quick`` runs 100k only; ``--skip-default-1m`` skips the ~2-minute preset case at 1M.
Results: a table on stdout, JSON in ``benchmarks/results/drift_check.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    REPO_ROOT,
    format_markdown_table,
    git_revision,
    machine_info,
    print_table,
    progress,
    utc_now,
    write_json,
)

NUMERIC = [f"n{i}" for i in range(15)]
CATEGORICAL = [f"c{i}" for i in range(5)]
TARGET_SECONDS = 10.0
ENGINES = ("preset", "fast", "fast+html")


def _config() -> Any:
    from retrainflow.config import parse_config

    return parse_config(
        {
            "name": "bench",
            "task": "binary_classification",
            "target": "label",
            "time_column": "ts",
            "source": {"kind": "parquet", "path": "bench"},
            "features": {"numeric": NUMERIC, "categorical": CATEGORICAL},
        }
    )


def _frame(rows: int, seed: int, shift: float) -> tuple[Any, Any]:
    """``rows`` rows; ``shift`` moves n0..n4 by ``shift`` sd and skews c0/c1. Returns (frame, scores)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {
        c: rng.normal(shift if i < 5 else 0.0, 1.0, rows) for i, c in enumerate(NUMERIC)
    }
    levels = np.array([f"v{i}" for i in range(8)], dtype=object)
    for j, c in enumerate(CATEGORICAL):
        p = np.full(8, 1 / 8)
        if j < 2 and shift:
            p = np.linspace(1, 1 + 4 * shift, 8)
            p /= p.sum()
        data[c] = levels[rng.choice(8, rows, p=p)]
    frame = pd.DataFrame(data)
    linear = frame["n0"] - 0.5 * frame["n1"] + 0.3 * (frame["c0"] == "v7")
    scores = 1 / (1 + np.exp(-linear.to_numpy()))
    frame["label"] = (rng.random(rows) < scores).astype("int64")
    return frame, scores


def run_case(rows: int, engine: str) -> dict[str, Any]:
    """One measurement, in this (pinned) process."""
    import resource

    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    except (AttributeError, OSError):
        pass
    t0 = time.perf_counter()
    from retrainflow.monitoring import drift as drift_mod
    from retrainflow.settings import quiet_third_party

    quiet_third_party()
    import evidently  # timed separately from the computation
    import evidently.legacy.calculations.stattests  # noqa: F401

    import_s = time.perf_counter() - t0
    ref, ref_scores = _frame(rows, 0, 0.0)
    cur, cur_scores = _frame(rows, 1, 0.3)
    config = _config()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t1 = time.perf_counter()
    result = drift_mod.compute_drift(
        config,
        ref,
        cur,
        reference_scores=ref_scores,
        current_scores=cur_scores,
        labelled=True,
        render_html=engine == "fast+html",
        fast=engine != "preset",
    )
    seconds = time.perf_counter() - t1
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    summary = result.summary()
    return {
        "rows": rows,
        "columns": len(NUMERIC) + len(CATEGORICAL),
        "engine": engine,
        "seconds": round(seconds, 2),
        "import_seconds": round(import_s, 2),
        "peak_rss_mib": round(peak),
        "rss_before_mib": round(rss_before),
        "cpus": len(os.sched_getaffinity(0)),
        "drift_share": summary["drift_share"],
        "drifted_columns": summary["drifted_columns"],
        "dataset_drift": summary["dataset_drift"],
        "prediction_drift": summary["prediction_drift"],
        "target_drift": summary["target_drift"],
        "roc_auc": (summary["performance"] or {}).get("roc_auc"),
        "methods": sorted({c["method"] for c in summary["columns"].values()}),
        "html_bytes": len(result.html) if result.html else 0,
    }


def _spawn(rows: int, engine: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "NUMEXPR_MAX_THREADS": "1",
        "DO_NOT_TRACK": "1",
        "PYTHONPATH": str(REPO_ROOT / "src"),
    }
    proc = subprocess.run(
        [sys.executable, __file__, "--case", str(rows), engine],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"case {rows} {engine} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k rows only")
    parser.add_argument(
        "--skip-default-1m", action="store_true", help="skip the ~2 min preset case at 1M"
    )
    parser.add_argument("--case", nargs=2, metavar=("ROWS", "ENGINE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(int(args.case[0]), args.case[1])))
        return 0

    sizes = [100_000] if args.quick else [100_000, 1_000_000]
    results = []
    for rows in sizes:
        for engine in ENGINES:
            if engine == "preset" and rows >= 1_000_000 and args.skip_default_1m:
                continue
            progress(f"{rows:,} rows x 20 columns, {engine} ...")
            results.append(_spawn(rows, engine))
            r = results[-1]
            progress(
                f"  {r['seconds']} s, peak {r['peak_rss_mib']} MiB, drifted {r['drifted_columns']}"
            )
    headers = [
        "case",
        "rows",
        "seconds",
        "import s",
        "peak RSS MiB",
        "RSS before MiB",
        "drift share",
        "pred drift",
        "methods",
    ]
    table = [
        [
            r["engine"],
            f"{r['rows']:,}",
            r["seconds"],
            r["import_seconds"],
            r["peak_rss_mib"],
            r["rss_before_mib"],
            round(r["drift_share"], 2),
            r["prediction_drift"]["drifted"],
            ",".join(r["methods"]),
        ]
        for r in results
    ]
    print_table(
        headers,
        table,
        digits=2,
        title=f"compute_drift, 20 columns (15 num + 5 cat) + scores + target, 1 core; "
        f"target: fast 1M <= {TARGET_SECONDS:.0f} s",
    )
    fast_1m = [r for r in results if r["engine"] == "fast" and r["rows"] == 1_000_000]
    if fast_1m:
        ok = fast_1m[0]["seconds"] <= TARGET_SECONDS
        print(
            f"fast path at 1M: {fast_1m[0]['seconds']} s -> {'meets' if ok else 'MISSES'} the target"
        )
    path = write_json(
        "drift_check",
        {
            "benchmark": "drift_check",
            "created": utc_now(),
            "git": git_revision(),
            "machine": machine_info(),
            "target_seconds": TARGET_SECONDS,
            "results": results,
            "markdown": format_markdown_table(headers, table, digits=2),
        },
    )
    progress(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
