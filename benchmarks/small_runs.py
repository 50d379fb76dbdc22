#!/usr/bin/env python
"""Small runs: a one-week warm start and a monitoring check, library vs CLI vs Airflow.

Two workloads of the ``flights`` pipeline (issue 10, "Fast small runs"):

* ``warm-start``: a retrain with window end 2013-12-08 and requested mode
  ``warm_start``, continuing champion v1 (a stateless fit with window end
  2013-12-01, made once during setup) on one new week of flights;
* ``monitor``: a monitoring check of the last 7 days before 2013-12-08 that
  starts nothing (``--no-trigger``).

Each is measured up to four ways, side by side in one run:

* ``library``: in this (warmed-up) process, ``retrainflow.pipeline.run_all``
  for the retrain and ``retrainflow.stages.monitor.run`` (what the monitor DAG's
  ``check`` task calls) for the check: per-stage seconds, wall and CPU seconds;
* ``cli-local``: ``retrainflow retrain flights --date 2013-12-08 --mode
  warm_start`` / ``retrainflow monitor flights --date 2013-12-08 --no-trigger``
  as a subprocess with the stack down (the CLI runs the DAG with ``dag.test()``):
  wall and CPU seconds, interpreter start and imports included;
* ``airflow``: the embedded stack up (preloaded scheduler), ``retrain__flights``
  / ``monitor__flights`` triggered over REST with the same conf, wall from the
  trigger request until success is seen (polled every 0.25 s), per-task
  durations and gaps from the REST API;
* ``cli-stack``: the same CLI commands with the stack up (the CLI then triggers
  over REST and waits): wall and CPU seconds of the CLI process.

Before every measured run the registered model's ``champion`` alias is pointed
back at v1, so every repetition does the same work. Everything runs in its own
``RETRAINFLOW_HOME`` and ``RETRAINFLOW_CONFIG_DIR`` (a copy of flights.yaml)
and the stack on free ports; only one stack at a time.

Goals (issue 10): through Airflow, fixed overhead (airflow wall - library wall)
<= 4 s for each workload; from the CLI, wall <= 2x the library's wall. The
import floor (a fresh interpreter importing what each workload needs) is the
part of a cold CLI process's wall time that it cannot avoid.

Usage::

    .venv/bin/python benchmarks/small_runs.py [--repeat N] [--ways W,W] [--workloads W,W]

Results: tables on stdout, progress on stderr, JSON in
``benchmarks/results/small_runs.json``; ``--report-only JSON`` prints a saved
result's tables again.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    REPO_ROOT,
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
    usable_cpus,
    utc_now,
    write_json,
)

PIPELINE = "flights"
DAG_IDS = {"warm-start": f"retrain__{PIPELINE}", "monitor": f"monitor__{PIPELINE}"}
#: Task order of each workload's DAG.
TASKS = {
    "warm-start": ("pull", "validate", "features", "train", "evaluate", "promote"),
    "monitor": ("check",),
}
WORKLOADS = tuple(DAG_IDS)
WAYS = ("library", "cli-local", "airflow", "cli-stack")
CLI_WAYS = ("cli-local", "cli-stack")
LABELS = {
    "warm-start": "warm start (1 week)",
    "monitor": "monitoring check (7 days)",
}
#: The last day seeded (inclusive); the runs' exclusive window end / check date.
SEED_UNTIL = date(2013, 12, 8)
RUN_DATE = date(2013, 12, 8)
#: Exclusive window end of champion v1 (stateless, made once in setup).
CHAMPION_END = date(2013, 12, 1)
ALIAS = "champion"
AIRFLOW_GOAL_SECONDS = 4.0
CLI_GOAL_RATIO = 2.0
POLL_SECONDS = 0.25
SCHEMA = 1

#: What a cold process running each workload must import (the import floor).
#: The monitoring check validates nothing (no Great Expectations) but loads the champion.
FLOOR_MODULES: dict[str, list[str]] = {
    "warm-start": [
        "pandas",
        "pyarrow.parquet",
        "lightgbm",
        "sklearn",
        "mlflow",
        "great_expectations",
    ],
    "monitor": ["pandas", "pyarrow.parquet", "lightgbm", "sklearn", "mlflow", "evidently"],
}
#: Further fresh-interpreter probes, for reading the floor: bare interpreter, the CLI's own
#: module, the Task SDK (the in-process CLI imports Airflow to run ``dag.test()``).
EXTRA_PROBES: dict[str, list[str]] = {
    "interpreter": [],
    "cli-module": ["retrainflow.cli.main"],
    "airflow-sdk": ["airflow.sdk"],
}


def cli_argv(workload: str) -> list[str]:
    """The CLI command of ``workload`` (the venv's ``retrainflow`` script)."""
    exe = Path(sys.executable).parent / "retrainflow"
    base = [str(exe)] if exe.exists() else [sys.executable, "-m", "retrainflow.cli.main"]
    day = RUN_DATE.isoformat()
    if workload == "warm-start":
        return [*base, "retrain", PIPELINE, "--date", day, "--mode", "warm_start"]
    return [*base, "monitor", PIPELINE, "--date", day, "--no-trigger"]


def dag_conf(workload: str) -> dict[str, Any]:
    """The conf the CLI sends for ``workload`` (the airflow way triggers with the same)."""
    if workload == "warm-start":
        return {"reason": "cli", "window_end": RUN_DATE.isoformat(), "mode": "warm_start"}
    return {"check_date": RUN_DATE.isoformat(), "trigger": False, "on_demand": False}


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


# Setup -------------------------------------------------------------------------------------


def write_config(root: Path) -> Path:
    """flights.yaml, unchanged, alone in ``<root>/config/pipelines`` (only its DAGs are parsed)."""
    cfg_dir = root / "config" / "pipelines"
    cfg_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO_ROOT / "config" / "pipelines" / f"{PIPELINE}.yaml", cfg_dir)
    return cfg_dir


def child_env() -> dict[str, str]:
    """This process's environment for subprocesses, without Airflow / MLflow settings of the
    caller's shell (the CLI derives them from ``RETRAINFLOW_HOME``)."""
    drop = ("AIRFLOW_", "MLFLOW_TRACKING", "RETRAINFLOW_MLFLOW")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def import_probe(name: str, modules: list[str], repeat: int) -> dict[str, Any]:
    """A fresh interpreter importing ``modules``: wall and CPU of the whole process
    (start and exit included) and the imports' own seconds; fastest of ``repeat``."""
    code = (
        "import os, time, warnings\n"
        "t0 = time.perf_counter()\n"
        "warnings.simplefilter('ignore')\n"
        "for k, v in (('GX_ANALYTICS_ENABLED', 'false'), ('MLFLOW_DISABLE_TELEMETRY', 'true'),"
        " ('DO_NOT_TRACK', '1'), ('GIT_PYTHON_REFRESH', 'quiet')): os.environ.setdefault(k, v)\n"
        f"for m in {modules!r}: __import__(m)\n"
        "print(time.perf_counter() - t0)\n"
    )
    runs = []
    for _ in range(max(repeat, 1)):
        cpu0, t0 = _children_cpu(), time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            env={**child_env(), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"},
        )
        wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
        try:
            imports = float(out.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            imports = None
        runs.append(
            {
                "wall_seconds": round(wall, 2),
                "cpu_seconds": round(cpu, 2),
                "import_seconds": None if imports is None else round(imports, 2),
                "returncode": out.returncode,
                "error": out.stderr[-2000:] if out.returncode else None,
            }
        )
    ok = [r for r in runs if r["returncode"] == 0] or runs
    best = min(ok, key=lambda r: r["wall_seconds"])
    return {"name": name, "modules": modules, "runs": runs, **{k: best[k] for k in best}}


def champion_v1(cfg: Any) -> str:
    """The version of champion v1 (a stateless fit up to 2013-12-01), made if the model
    does not exist yet (a reused ``--home`` keeps it)."""
    from retrainflow.manifest import RunContext
    from retrainflow.pipeline import run_all
    from retrainflow.registry import Registry

    registry = Registry()
    name = cfg.registered_model_name
    if registry.champion(name) is not None or registry.exists(name):
        return "1"
    ctx = RunContext(
        pipeline=PIPELINE,
        run_id=f"bench_small_champion_{datetime.now():%Y%m%dT%H%M%S}",
        window_end=CHAMPION_END.isoformat(),
        requested_mode="stateless",
        trigger_reason="benchmark setup",
    )
    result = run_all(cfg, ctx, registry=registry)
    if not result.promote.champion:
        raise SystemExit(f"setup: the stateless fit was not promoted: {result.summary()}")
    return str(result.promote.version)


def reset_champion(cfg: Any, version: str) -> None:
    """Point the ``champion`` alias back at ``version`` (every repetition does the same work)."""
    from mlflow import MlflowClient

    from retrainflow.registry import Registry

    uri = Registry().tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.set_registered_model_alias(cfg.registered_model_name, ALIAS, version)


def warm_up_process() -> float:
    """Imports and Great Expectations context (as pipeline_overhead), plus the monitor's."""
    from pipeline_overhead import warm_up

    t0 = time.perf_counter()
    warm_up()
    import evidently  # noqa: F401

    from retrainflow.core import monitoring  # noqa: F401
    from retrainflow.monitoring import drift  # noqa: F401
    from retrainflow.stages import monitor  # noqa: F401

    return round(time.perf_counter() - t0, 2)


def _artifact(cfg: Any, run_id: str, rel: str) -> dict[str, Any] | None:
    from retrainflow.artifacts import ArtifactStore

    try:
        run = ArtifactStore(cfg.artifact_root_uri()).run(PIPELINE, run_id)
        data: dict[str, Any] = run.read_json(rel)
    except (OSError, ValueError):
        return None
    return data


def work_done(cfg: Any, workload: str, run_id: str | None) -> dict[str, Any]:
    """What a run did, from its saved manifests (the same work every way?)."""
    if not run_id:
        return {}
    if workload == "warm-start":
        pull = _artifact(cfg, run_id, "pull/manifest.json") or {}
        train = _artifact(cfg, run_id, "train/manifest.json") or {}
        return {
            "mode": pull.get("mode"),
            "parent_version": pull.get("parent_version"),
            "train_rows": train.get("rows"),
            "holdout_rows": (pull.get("holdout") or {}).get("rows"),
            "fit_seconds": train.get("train_wall_seconds"),
            "fit_cpu_seconds": train.get("train_cpu_seconds"),
        }
    mon = _artifact(cfg, run_id, "monitor/manifest.json") or {}
    check = mon.get("check") or {}
    return {
        "champion_version": mon.get("champion_version"),
        "current_rows": check.get("current_rows"),
        "drift_share": check.get("drift_share"),
        "html_report": bool(mon.get("report_uri")),
        "trigger": (mon.get("decision") or {}).get("trigger"),
    }


# Timelines ---------------------------------------------------------------------------------


def timeline(
    started: float, done: float, run: dict[str, Any], tis: list[dict[str, Any]], order: tuple
) -> dict[str, Any]:
    """Where a DAG run's wall time went, from ``started`` (epoch: process start or trigger
    request) to ``done`` (process exit or success seen); the parts add up to the wall."""
    t0 = datetime.fromtimestamp(started, UTC)
    t1 = datetime.fromtimestamp(done, UTC)
    by_id = {str(ti["task_id"]): ti for ti in tis}
    tasks: dict[str, Any] = {}
    prev_end = parse_ts(run.get("start_date"))
    for task_id in order:
        ti = by_id.get(task_id) or {}
        start, end = parse_ts(ti.get("start_date")), parse_ts(ti.get("end_date"))
        dur = ti.get("duration")
        tasks[task_id] = {
            "state": ti.get("state"),
            "duration": round(float(dur), 3) if dur is not None else seconds_between(start, end),
            "gap_before_start": seconds_between(prev_end, start),
            "queued_to_start": seconds_between(parse_ts(ti.get("queued_when")), start),
        }
        prev_end = end
    starts = [parse_ts(by_id[t].get("start_date")) for t in order if t in by_id]
    ends = [parse_ts(by_id[t].get("end_date")) for t in order if t in by_id]
    first = min((s for s in starts if s), default=None)
    last = max((e for e in ends if e), default=None)
    task_sum = round(sum(t["duration"] or 0.0 for t in tasks.values()), 3)
    span = seconds_between(first, last)
    queued = parse_ts(run.get("queued_at")) or parse_ts(run.get("start_date"))
    return {
        "tasks": tasks,
        "to_run_queued": seconds_between(t0, queued),
        "run_queued_to_first_task": seconds_between(queued, first),
        "task_seconds_sum": task_sum,
        "between_tasks": None if span is None else round(span - task_sum, 3),
        "last_task_to_done": seconds_between(last, t1),
        "dag_run_seconds": seconds_between(
            parse_ts(run.get("start_date")), parse_ts(run.get("end_date"))
        ),
    }


def local_run_from_db(airflow_db: Path, dag_id: str, since: float) -> tuple[dict, list[dict]]:
    """The newest run of ``dag_id`` created after ``since`` (epoch) and its task instances,
    read from the metadata DB (the stack is down: the CLI's ``dag.test()`` run)."""
    con = sqlite3.connect(f"file:{airflow_db}?mode=ro", uri=True, timeout=30)
    con.row_factory = sqlite3.Row
    try:
        rows = con.execute(
            "SELECT run_id, queued_at, start_date, end_date, state FROM dag_run "
            "WHERE dag_id = ? ORDER BY id DESC LIMIT 1",
            (dag_id,),
        ).fetchall()
        if not rows:
            return {}, []
        run = dict(rows[0])
        start = parse_ts(run.get("start_date"))
        if start is None or start.timestamp() < since - 1:
            return {}, []
        tis = [
            dict(r)
            for r in con.execute(
                "SELECT task_id, state, start_date, end_date, duration, queued_dttm AS queued_when "
                "FROM task_instance WHERE dag_id = ? AND run_id = ?",
                (dag_id, run["run_id"]),
            )
        ]
        return run, tis
    finally:
        con.close()


# The ways ----------------------------------------------------------------------------------


def run_library(cfg: Any, workload: str, run_id: str) -> dict[str, Any]:
    """One run in this process: ``run_all`` (warm start) or the monitor stage's ``run``."""
    from retrainflow.artifacts import ArtifactStore
    from retrainflow.registry import Registry

    registry = Registry()
    load_before = load_average()
    if workload == "warm-start":
        from retrainflow.manifest import RunContext
        from retrainflow.pipeline import run_all

        ctx = RunContext(
            pipeline=PIPELINE,
            run_id=run_id,
            window_end=RUN_DATE.isoformat(),
            requested_mode="warm_start",
            trigger_reason="benchmark",
        )
        cpu0, t0 = time.process_time(), time.perf_counter()
        result = run_all(cfg, ctx, registry=registry)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        stages = dict(result.seconds)
    else:
        from retrainflow.stages import monitor

        mctx = monitor.MonitorContext(
            pipeline=PIPELINE,
            run_id=run_id,
            check_date=RUN_DATE.isoformat(),
            on_demand=False,
            trigger_enabled=False,
        )
        store = ArtifactStore(cfg.artifact_root_uri())
        cpu0, t0 = time.process_time(), time.perf_counter()
        monitor.run(cfg, mctx, registry=registry, store=store, trigger=None)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        stages = {"check": round(wall, 3)}
    return {
        "ok": True,
        "run_id": run_id,
        "wall_seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "stage_seconds": stages,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "work": work_done(cfg, workload, run_id),
    }


def run_cli(
    cfg: Any, workload: str, log_dir: Path, tag: str, client: Any = None, timeout: float = 1800
) -> dict[str, Any]:
    """The CLI command as a subprocess: wall and CPU (``RUSAGE_CHILDREN`` delta), the run it
    made (from the metadata DB with the stack down, over REST with ``client``)."""
    argv = cli_argv(workload)
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_dir / f"{tag}.out", log_dir / f"{tag}.err"
    load_before = load_average()
    with out_path.open("w") as out, err_path.open("w") as err:
        cpu0, started, t0 = _children_cpu(), time.time(), time.perf_counter()
        proc = subprocess.run(
            argv, stdout=out, stderr=err, env=child_env(), timeout=timeout, check=False
        )
        wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    done = started + wall
    stderr = err_path.read_text(errors="replace")
    result: dict[str, Any] = {
        "ok": proc.returncode == 0,
        "argv": argv[1:],
        "returncode": proc.returncode,
        "wall_seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "stdout": str(out_path),
        "stderr": str(err_path),
    }
    if proc.returncode:
        result["error"] = (stderr or out_path.read_text(errors="replace"))[-3000:]
    dag_id = DAG_IDS[workload]
    try:
        if client is None:
            run, tis = local_run_from_db(cfg_airflow_db(), dag_id, started)
        else:
            m = re.search(r"runs there as (\S+)", stderr)
            run = client.get_dag_run(dag_id, m.group(1)) if m else {}
            tis = client.get_task_instances(dag_id, m.group(1)) if m else []
        run_id = run.get("run_id") or run.get("dag_run_id")
        result["run_id"] = run_id
        if run:
            result["timeline"] = timeline(started, done, run, tis, TASKS[workload])
        result["work"] = work_done(cfg, workload, run_id)
    except Exception as exc:  # noqa: BLE001 - the timing stands without the breakdown
        result["timeline_error"] = f"{type(exc).__name__}: {exc}"
    return result


def cfg_airflow_db() -> Path:
    return Path(os.environ["RETRAINFLOW_HOME"]) / "airflow" / "airflow.db"


def run_airflow(
    cfg: Any, client: Any, workload: str, run_id: str, timeout: float
) -> dict[str, Any]:
    """Trigger the workload's DAG over REST, wait for success (poll 0.25 s)."""
    dag_id = DAG_IDS[workload]
    load_before = load_average()
    started, t0 = time.time(), time.perf_counter()
    client.trigger_dag_run(dag_id, conf=dag_conf(workload), run_id=run_id)
    final = client.wait_for_dag_run(dag_id, run_id, timeout=timeout, poll=POLL_SECONDS)
    wall = time.perf_counter() - t0
    tis = client.get_task_instances(dag_id, run_id)
    ok = final.get("state") == "success"
    out: dict[str, Any] = {
        "ok": ok,
        "run_id": run_id,
        "state": final.get("state"),
        "wall_seconds": round(wall, 3),
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "timeline": timeline(started, started + wall, final, tis, TASKS[workload]),
        "work": work_done(cfg, workload, run_id),
    }
    if not ok:
        from pipeline_overhead import _failed_task_logs

        out["error"] = f"run ended {final.get('state')!r}"
        out["logs"] = _failed_task_logs(Path(os.environ["RETRAINFLOW_HOME"]), run_id)
    return out


# Report ------------------------------------------------------------------------------------


def _ok(runs: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [r for r in runs or [] if r.get("ok")]


def summarize(runs: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, dict[str, Any]]:
    """Per workload and way: fastest and median wall, CPU of the fastest run, run counts."""
    out: dict[str, dict[str, Any]] = {}
    for workload, ways in runs.items():
        out[workload] = {}
        for way, rs in ways.items():
            good = _ok(rs)
            if not good:
                out[workload][way] = {"runs": len(rs), "ok_runs": 0}
                continue
            best = min(good, key=lambda r: r["wall_seconds"])
            out[workload][way] = {
                "runs": len(rs),
                "ok_runs": len(good),
                "wall_fastest": best["wall_seconds"],
                "wall_median": median([r["wall_seconds"] for r in good]),
                "cpu_of_fastest": best.get("cpu_seconds"),
                "cpu_median": median([r.get("cpu_seconds") for r in good]),
                "fastest_run": best,
            }
    return out


def judge(
    summary: dict[str, dict[str, Any]], probes: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """The issue's goals against the fastest runs: met, and the distance left (value - target).

    Through Airflow: fixed overhead = airflow wall - library wall <= 4 s. From the CLI: wall
    <= 2x the library's wall; for cli-local also the import floor (a fresh interpreter
    importing what the workload needs) and what the goal leaves after it.
    """
    goals: list[dict[str, Any]] = []
    for workload, ways in summary.items():
        lib = (ways.get("library") or {}).get("wall_fastest")
        if lib is None:
            continue
        af = (ways.get("airflow") or {}).get("wall_fastest")
        if af is not None:
            overhead = round(af - lib, 2)
            goals.append(
                {
                    "workload": workload,
                    "way": "airflow",
                    "goal": f"fixed overhead <= {AIRFLOW_GOAL_SECONDS:g} s",
                    "value": overhead,
                    "target": AIRFLOW_GOAL_SECONDS,
                    "met": overhead <= AIRFLOW_GOAL_SECONDS,
                    "distance": round(overhead - AIRFLOW_GOAL_SECONDS, 2),
                    "wall": af,
                    "library_wall": lib,
                }
            )
        floor = ((probes or {}).get(workload) or {}).get("wall_seconds")
        for way in CLI_WAYS:
            wall = (ways.get(way) or {}).get("wall_fastest")
            if wall is None:
                continue
            budget = round(CLI_GOAL_RATIO * lib, 2)
            row = {
                "workload": workload,
                "way": way,
                "goal": f"wall <= {CLI_GOAL_RATIO:g}x library",
                "value": round(wall, 2),
                "target": budget,
                "met": wall <= budget,
                "distance": round(wall - budget, 2),
                "ratio": round(wall / lib, 2),
                "wall": wall,
                "library_wall": lib,
                "import_floor": None,
                "budget_after_floor": None,
            }
            if way == "cli-local" and floor is not None:
                row["import_floor"] = floor
                # what the goal leaves for everything but the imports (negative: the goal
                # is below what a cold process pays for the imports alone)
                row["budget_after_floor"] = round(budget - floor, 2)
            goals.append(row)
    return goals


def _timeline_rows(summary: dict[str, dict[str, Any]], workload: str) -> list[list[Any]]:
    items = [
        ("start -> run queued", "to_run_queued"),
        ("run queued -> first task start", "run_queued_to_first_task"),
        ("sum of task durations", "task_seconds_sum"),
        ("between tasks (gaps)", "between_tasks"),
        ("last task end -> done", "last_task_to_done"),
    ]
    ways = [w for w in ("cli-local", "airflow", "cli-stack") if w in summary[workload]]
    tls = {w: ((summary[workload][w].get("fastest_run") or {}).get("timeline") or {}) for w in ways}
    rows = [[name, *[tls[w].get(key) for w in ways]] for name, key in items]
    rows.append(
        [
            "wall",
            *[(summary[workload][w].get("fastest_run") or {}).get("wall_seconds") for w in ways],
        ]
    )
    return rows


def report(payload: dict[str, Any]) -> dict[str, Any]:
    """Print the tables of a result (fresh or saved); returns them for the JSON."""
    runs = payload.get("runs") or {}
    probes = payload.get("import_probe") or {}
    summary = summarize(runs)
    goals = judge(summary, probes)
    repeat = (payload.get("setup") or {}).get("repeat")
    markdown: dict[str, str] = {}

    headers = ["workload", "way", "fastest wall s", "median wall s", "cpu s (fastest)", "runs ok"]
    rows = []
    for workload, ways in summary.items():
        for way in WAYS:
            s = ways.get(way)
            if s is None:
                continue
            rows.append(
                [
                    workload,
                    way,
                    s.get("wall_fastest"),
                    s.get("wall_median"),
                    s.get("cpu_of_fastest"),
                    f"{s['ok_runs']}/{s['runs']}",
                ]
            )
    print()
    print_table(
        headers,
        rows,
        digits=2,
        title=f"Small runs of '{PIPELINE}' ({repeat or '?'} run(s) per way; cpu s: the library's "
        "process, the CLI subprocess; '-' for airflow: the work runs in the stack's processes)",
    )
    markdown["summary"] = format_markdown_table(headers, rows, digits=2)

    g_headers = [
        "workload",
        "way",
        "goal",
        "value s",
        "target s",
        "met?",
        "distance s",
        "x library",
        "import floor s",
        "target - floor s",
    ]
    g_rows = [
        [
            g["workload"],
            g["way"],
            g["goal"],
            g["value"],
            g["target"],
            g["met"],
            g["distance"],
            g.get("ratio"),
            g.get("import_floor"),
            g.get("budget_after_floor"),
        ]
        for g in goals
    ]
    if g_rows:
        print_table(
            g_headers,
            g_rows,
            digits=2,
            title="Goals (fastest runs): airflow value = airflow wall - library wall; CLI value = "
            "CLI wall, target = 2x library wall; distance = value - target (<= 0: met); "
            "target - floor: what the goal leaves once a cold process has imported the libraries",
        )
        markdown["goals"] = format_markdown_table(g_headers, g_rows, digits=2)

    for workload in summary:
        lib = (summary[workload].get("library") or {}).get("fastest_run") or {}
        lib_stages = lib.get("stage_seconds") or {}
        ways = [w for w in ("cli-local", "airflow", "cli-stack") if w in summary[workload]]
        tls = {
            w: ((summary[workload][w].get("fastest_run") or {}).get("timeline") or {}).get("tasks")
            or {}
            for w in ways
        }
        s_headers = ["task", "library s"]
        for w in ways:
            s_headers += [f"{w} task s", f"{w} task - library s", f"{w} gap s"]
        s_rows = []
        for task in TASKS[workload]:
            row: list[Any] = [task, lib_stages.get(task)]
            for w in ways:
                t = tls[w].get(task) or {}
                dur, lib_s = t.get("duration"), lib_stages.get(task)
                row += [
                    dur,
                    None if dur is None or lib_s is None else round(dur - lib_s, 2),
                    t.get("gap_before_start"),
                ]
            s_rows.append(row)
        if len(TASKS[workload]) > 1:
            total: list[Any] = ["total", sum(v or 0.0 for v in lib_stages.values()) or None]
            for i in range(len(ways) * 3):
                col = [r[2 + i] for r in s_rows]
                total.append(sum(c for c in col if c is not None) if any(col) else None)
            s_rows.append(total)
        if lib_stages or ways:
            print_table(
                s_headers,
                s_rows,
                digits=2,
                title=f"{LABELS.get(workload, workload)}: per task, fastest run of each way "
                "(gap = previous task's end, or the run's start, -> this task's start)",
            )
            markdown[f"tasks_{workload}"] = format_markdown_table(s_headers, s_rows, digits=2)
        tl_rows = _timeline_rows(summary, workload)
        if ways:
            tl_headers = ["seconds", *ways]
            print_table(
                tl_headers,
                tl_rows,
                digits=2,
                title=f"{LABELS.get(workload, workload)}: where the wall time goes (start = CLI "
                "process start / trigger request; done = process exit / success seen)",
            )
            markdown[f"timeline_{workload}"] = format_markdown_table(tl_headers, tl_rows, digits=2)

    if probes:
        p_headers = ["fresh interpreter imports", "modules", "wall s", "cpu s", "imports s"]
        p_rows = [
            [
                name,
                " ".join(p.get("modules") or []) or "(none)",
                p.get("wall_seconds"),
                p.get("cpu_seconds"),
                p.get("import_seconds"),
            ]
            for name, p in probes.items()
        ]
        print_table(
            p_headers,
            p_rows,
            digits=2,
            title="Import floor: a fresh interpreter (start to exit) importing what each workload "
            "needs; fastest of the probes",
        )
        markdown["import_floor"] = format_markdown_table(p_headers, p_rows, digits=2)

    loads = [
        x
        for ways in runs.values()
        for rs in ways.values()
        for r in rs
        for x in (
            (r.get("load_average_before") or [0])[0],
            (r.get("load_average_after") or [0])[0],
        )
    ]
    nproc = ((payload.get("machine") or {}).get("nproc")) or usable_cpus()
    load_max = max(loads) if loads else None
    if loads:
        print(
            f"1-minute load average during the runs: {min(loads):.2f} .. {load_max:.2f} "
            f"on {nproc} CPUs"
        )
        if load_max is not None and load_max > nproc:
            print(
                "WARNING: the load exceeded the number of CPUs: other work was competing; "
                "timings are inflated and noisy."
            )
        print()
    failed = [
        f"{workload}/{way}: {r.get('error', '')[:300]}"
        for workload, ways in runs.items()
        for way, rs in ways.items()
        for r in rs
        if not r.get("ok")
    ]
    for line in failed:
        print(f"FAILED RUN {line}\n")
    return {
        "summary": {
            w: {k: {kk: vv for kk, vv in v.items() if kk != "fastest_run"} for k, v in ws.items()}
            for w, ws in summary.items()
        },
        "goals": goals,
        "load_average_max": load_max,
        "markdown": markdown,
    }


# Main --------------------------------------------------------------------------------------


def _parse_list(choices: tuple[str, ...]) -> Any:
    def parse(text: str) -> list[str]:
        items = [w.strip() for w in text.split(",") if w.strip()]
        bad = [w for w in items if w not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {bad}; choose from {', '.join(choices)}")
        return items

    return parse


def measure_stack_ways(
    cfg: Any,
    payload: dict[str, Any],
    ways: list[str],
    workloads: list[str],
    repeat: int,
    v1: str,
    stamp: str,
    log_dir: Path,
    timeout: float,
) -> None:
    """Start the stack, run the airflow / cli-stack ways, stop it."""
    from retrainflow.airflow import stack
    from retrainflow.airflow.rest import AirflowClient

    home = Path(os.environ["RETRAINFLOW_HOME"])
    scfg = stack.StackConfig(
        home=home,
        api_port=free_port(),
        mlflow_port=free_port(),
        with_mlflow_server=False,
        with_triggerer=False,
        preload_task_libraries=True,
    )
    info: dict[str, Any] = {"airflow_url": scfg.airflow_url}
    payload["stack"] = info
    progress(
        f"starting the Airflow stack in {home} on {scfg.airflow_url} (preloaded scheduler, "
        "api-server, dag-processor; ~30-90 s)"
    )
    t0 = time.perf_counter()
    try:
        started = stack.start(scfg, timeout=300)
        client = AirflowClient(started.airflow_url, started.username, started.password)
        info["start_seconds"] = round(time.perf_counter() - t0, 1)
        for dag_id in (DAG_IDS[w] for w in workloads):
            client.wait_for_dag(dag_id, timeout=240)
            client.set_paused(dag_id, False)
        info["ready_seconds"] = round(time.perf_counter() - t0, 1)
        info["load_average_ready"] = load_average()
        progress(f"stack ready in {info['ready_seconds']} s; load average {load_average()}")
        for i in range(repeat):
            for workload in workloads:
                for way in ways:
                    reset_champion(cfg, v1)
                    tag = f"{way}_{workload}_{i + 1}"
                    progress(f"{way} {workload}: run {i + 1}/{repeat}")
                    try:
                        if way == "airflow":
                            run_id = f"bench_small_{workload.replace('-', '_')}_{stamp}_{i + 1}"
                            r = run_airflow(cfg, client, workload, run_id, timeout)
                        else:
                            r = run_cli(cfg, workload, log_dir, tag, client=client, timeout=timeout)
                    except Exception as exc:  # noqa: BLE001 - keep the other runs' numbers
                        r = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                    payload["runs"][workload][way].append(r)
                    _say_run(way, workload, r)
    except Exception as exc:  # noqa: BLE001 - report, then stop the stack
        progress(f"stack ways failed: {type(exc).__name__}: {exc}")
        info["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        progress("stopping the Airflow stack")
        try:
            stack.stop(scfg)
        except Exception as exc:  # noqa: BLE001
            progress(f"stopping the stack failed: {exc}")


def _say_run(way: str, workload: str, r: dict[str, Any]) -> None:
    if not r.get("ok"):
        progress(f"{way} {workload}: FAILED: {str(r.get('error'))[:500]}")
        return
    cpu = f", {r['cpu_seconds']:.1f} CPU s" if r.get("cpu_seconds") is not None else ""
    tasks = ((r.get("timeline") or {}).get("tasks")) or {}
    detail = (
        r.get("stage_seconds") or {k: v.get("duration") for k, v in tasks.items()} or r.get("work")
    )
    progress(
        f"{way} {workload}: {r['wall_seconds']:.1f} s wall{cpu}; {detail}; "
        f"work {r.get('work')}; load {r.get('load_average_after')}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--repeat", type=int, default=1, help="runs per way and workload (fastest and median)"
    )
    ap.add_argument(
        "--ways",
        type=_parse_list(WAYS),
        default=list(WAYS),
        metavar="W[,W...]",
        help=f"subset of {', '.join(WAYS)} (default all; the library always runs: it is "
        "the baseline of every goal)",
    )
    ap.add_argument(
        "--workloads",
        type=_parse_list(WORKLOADS),
        default=list(WORKLOADS),
        metavar="W[,W...]",
        help=f"subset of {', '.join(WORKLOADS)} (default both)",
    )
    ap.add_argument(
        "--home",
        type=Path,
        default=None,
        help="working directory (default: a temporary one, deleted afterwards); reused "
        "between invocations: the lake is seeded and champion v1 made only once",
    )
    ap.add_argument("--keep", action="store_true", help="keep the temporary working directory")
    ap.add_argument(
        "--skip-import-probe", action="store_true", help="do not measure the import floor"
    )
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    ap.add_argument(
        "--output",
        type=Path,
        default=None,
        help="JSON path (default benchmarks/results/small_runs.json)",
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
        report(json.loads(args.report_only.read_text()))
        return 0
    ways = ["library", *[w for w in WAYS[1:] if w in args.ways]]
    workloads = [w for w in WORKLOADS if w in args.workloads]

    temp = args.home is None
    root = (
        Path(tempfile.mkdtemp(prefix="retrainflow-small-"))
        if temp
        else args.home.expanduser().resolve()
    )
    root.mkdir(parents=True, exist_ok=True)
    home = root / "home"
    log_dir = root / "cli-logs"
    cfg_dir = write_config(root)
    # Before any retrainflow import: where the config is, and the home (MLflow store, lake,
    # Airflow DB) that every way uses.
    os.environ["RETRAINFLOW_CONFIG_DIR"] = str(cfg_dir)
    os.environ["RETRAINFLOW_HOME"] = str(home)
    for var in [k for k in os.environ if k.startswith(("AIRFLOW_", "AIRFLOW__"))] + [
        "MLFLOW_TRACKING_URI",
        "RETRAINFLOW_MLFLOW_ARTIFACTS",
    ]:
        os.environ.pop(var, None)

    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    load_start = load_average()
    progress(
        f"working directory {root}; ways {', '.join(ways)}; workloads {', '.join(workloads)}; "
        f"repeat {args.repeat}; load average {load_start}"
    )
    if load_start[0] > usable_cpus():
        progress(f"WARNING: load average {load_start[0]} on {usable_cpus()} CPUs: noisy timings")
    payload: dict[str, Any] = {
        "benchmark": "small_runs",
        "schema": SCHEMA,
        "started": utc_now(),
        "git": git_revision(),
        "machine": machine_info(),
        "setup": {
            "pipeline": PIPELINE,
            "root": str(root),
            "home": str(home),
            "repeat": args.repeat,
            "ways": ways,
            "workloads": workloads,
            "seed_until": SEED_UNTIL.isoformat(),
            "champion_window_end": CHAMPION_END.isoformat(),
            "run_date": RUN_DATE.isoformat(),
            "cli": {w: cli_argv(w)[1:] for w in workloads},
            "conf": {w: dag_conf(w) for w in workloads},
            "load_average_start": load_start,
            "goals": {
                "airflow_fixed_overhead_seconds_max": AIRFLOW_GOAL_SECONDS,
                "cli_wall_to_library_max": CLI_GOAL_RATIO,
            },
        },
        "runs": {w: {way: [] for way in ways} for w in workloads},
    }
    code = 0
    try:
        from retrainflow.config import find_config
        from retrainflow.data.seed import seed

        cfg = find_config(PIPELINE)
        t0 = time.perf_counter()
        progress(f"seeding flights up to {SEED_UNTIL} into {home / 'lake'}")
        seeded = seed(cfg, SEED_UNTIL)
        payload["setup"]["seed_seconds"] = round(time.perf_counter() - t0, 1)
        payload["setup"]["seeded_days"] = seeded.days_written

        if not args.skip_import_probe:
            progress("import floor: fresh interpreters importing each workload's libraries")
            probes = {w: import_probe(w, FLOOR_MODULES[w], args.repeat) for w in workloads}
            probes.update({n: import_probe(n, m, args.repeat) for n, m in EXTRA_PROBES.items()})
            payload["import_probe"] = probes
            progress(
                "import floor: "
                + ", ".join(f"{n} {p['wall_seconds']} s" for n, p in probes.items())
            )

        progress("warming up this process (imports, Great Expectations context, Evidently)")
        payload["setup"]["library_warmup_seconds"] = warm_up_process()
        t0 = time.perf_counter()
        v1 = champion_v1(cfg)
        payload["setup"]["champion_v1"] = v1
        payload["setup"]["champion_v1_seconds"] = round(time.perf_counter() - t0, 1)
        progress(f"champion v1 = version {v1} ({payload['setup']['champion_v1_seconds']} s)")
        # One unmeasured run of each workload: first-use costs (model loading, Evidently's
        # first report) would otherwise land in the first measured library run.
        warm: dict[str, float] = {}
        for workload in workloads:
            reset_champion(cfg, v1)
            r = run_library(cfg, workload, f"bench_small_warmup_{workload}_{stamp}")
            warm[workload] = r["wall_seconds"]
        payload["setup"]["library_warmup_runs_seconds"] = warm
        progress(f"library warm-up runs (not measured): {warm}")

        # Stack down: the library and the in-process CLI.
        if "cli-local" in ways:
            from retrainflow.airflow import stack

            if any(stack.status(stack.StackConfig(home=home)).values()):
                raise SystemExit(f"a stack of {home} is running: stop it first (cli-local)")
            t0 = time.perf_counter()
            progress("cli-local: preparing the Airflow metadata DB (as the CLI's first run does)")
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "from retrainflow.airflow import local_run; local_run.prepare_env()",
                ],
                env=child_env(),
                check=True,
                capture_output=True,
            )
            payload["setup"]["airflow_db_prepare_seconds"] = round(time.perf_counter() - t0, 1)
        for i in range(args.repeat):
            for workload in workloads:
                for way in ("library", "cli-local"):
                    if way not in ways:
                        continue
                    reset_champion(cfg, v1)
                    progress(f"{way} {workload}: run {i + 1}/{args.repeat}")
                    try:
                        if way == "library":
                            r = run_library(
                                cfg,
                                workload,
                                f"bench_small_lib_{workload.replace('-', '_')}_{stamp}_{i + 1}",
                            )
                        else:
                            r = run_cli(
                                cfg,
                                workload,
                                log_dir,
                                f"{way}_{workload}_{i + 1}",
                                timeout=args.timeout,
                            )
                    except Exception as exc:  # noqa: BLE001 - keep the other runs' numbers
                        r = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                    payload["runs"][workload][way].append(r)
                    _say_run(way, workload, r)

        # Stack up: Airflow and the CLI through it.
        stack_ways = [w for w in ("airflow", "cli-stack") if w in ways]
        if stack_ways:
            measure_stack_ways(
                cfg, payload, stack_ways, workloads, args.repeat, v1, stamp, log_dir, args.timeout
            )

        payload["load_average_end"] = load_average()
        payload["results"] = report(payload)
        payload["finished"] = utc_now()
        path = write_json("small_runs", payload, path=args.output)
        print(f"JSON: {path}")
        failed = any(
            not r.get("ok") for ws in payload["runs"].values() for rs in ws.values() for r in rs
        )
        code = 1 if failed or (payload.get("stack") or {}).get("error") else 0
    finally:
        if temp and not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        elif temp:
            progress(f"kept {root}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
