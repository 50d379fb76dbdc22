#!/usr/bin/env python
"""LightGBM fits under CPU contention: threads per fit and OpenMP's wait policy.

The same fit — the ``flights`` pipeline's LightGBM parameters on the full year of
NYC flights 2013 (336,776 rows x 16 features, the transformer of
``config/pipelines/flights.yaml``) — in four ways:

* ``2 threads (today)``: ``num_threads: 2``, OpenMP's default wait policy (LightGBM
  loaded before anything could set one, as in the preloading Airflow scheduler);
* ``2 threads PASSIVE``: the same with ``OMP_WAIT_POLICY=PASSIVE`` in the environment;
* ``1 thread``;
* ``auto``: ``num_threads: auto`` (:func:`retrainflow.core.training.fit_threads`):
  threads chosen from the idle CPUs and the rows, PASSIVE set before LightGBM loads;

each on a quiet machine and on a busy one: ``--busy`` (default: the CPU count)
CPU-burning child processes, started by the benchmark before the busy phase and
stopped after it. Every fit runs in a fresh subprocess (OpenMP reads its
environment once per process); the fit alone is timed there: wall seconds and the
process's CPU seconds (all its threads). Phases and ways are interleaved per repeat
(quiet then busy; the ways' order rotates) so that a drift in the machine's load
hits them alike.

Goal (issue 10): the CPU seconds of the same fit vary less than 1.5x between the
quiet and the busy machine (median busy / median quiet).

Usage::

    .venv/bin/python benchmarks/fit_contention.py [--repeat 3] [--quick]

``--quick``: 40,000 rows, one repeat (a smoke run). Results: tables on stdout, JSON
in ``benchmarks/results/fit_contention.json`` (every run with its load averages).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    REPO_ROOT,
    format_markdown_table,
    git_revision,
    machine_info,
    median,
    print_table,
    progress,
    utc_now,
    write_json,
)

PIPELINE_YAML = REPO_ROOT / "config" / "pipelines" / "flights.yaml"
GOAL_RATIO = 1.5
QUICK_ROWS = 40_000
#: key -> (label, training.params.num_threads, OMP_WAIT_POLICY in the child's environment,
#: LightGBM imported before the thread choice, i.e. before anything could set a policy).
WAYS: dict[str, tuple[str, int | str, str | None, bool]] = {
    "2-default": ("2 threads (today)", 2, None, True),
    "2-passive": ("2 threads PASSIVE", 2, "PASSIVE", True),
    "1": ("1 thread", 1, None, True),
    "auto": ("auto", "auto", None, False),
}
PHASES = ("quiet", "busy")
BURN = "while True:\n    pass\n"


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


# -- the measured fit (child process) -------------------------------------------------------


def run_case(spec: dict[str, Any]) -> dict[str, Any]:
    """One fit in this fresh process: ``spec`` = way, features file, categorical names."""
    label, setting, _policy, preload = WAYS[spec["way"]]
    if preload:  # as the preloading scheduler does: LightGBM (and OpenMP) up front
        import lightgbm  # noqa: F401
    import pandas as pd

    from retrainflow.config import load_config, with_fit_threads
    from retrainflow.core import training

    config = load_config(PIPELINE_YAML)
    if setting == "auto":
        params = {**config.training.params, "num_threads": "auto"}
        config = config.model_copy(
            update={"training": config.training.model_copy(update={"params": params})}
        )
    else:
        config = with_fit_threads(config, int(setting))
    frame = pd.read_parquet(spec["features"])
    y = frame.pop("__target__").to_numpy()
    load_before = _load()
    choice = training.fit_threads(config, len(frame))
    import lightgbm  # noqa: F401,F811  (imported here in the auto way, after the policy)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    booster = training.fit_estimator(config, frame, y, spec["categorical"], threads=choice)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    return {
        "way": spec["way"],
        "label": label,
        "rows": len(frame),
        "trees": booster.num_trees(),
        "threads": choice.threads,
        "reason": choice.reason,
        "omp_wait_policy": choice.omp_wait_policy,
        "busy_cpus_seen": choice.busy,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "load_before": load_before,
        "load_after": _load(),
    }


# -- orchestration ------------------------------------------------------------------------------


def prepare_features(rows: int | None, directory: Path) -> tuple[Path, list[str], int]:
    """The flights frame through the pipeline's transformer, written to ``directory``."""
    from retrainflow.config import load_config
    from retrainflow.core import training
    from retrainflow.data.flights import load_flights

    config = load_config(PIPELINE_YAML)
    raw = load_flights()
    if rows is not None:
        raw = raw.iloc[:rows]
    transformer, features = training.prepare_features(config, raw)
    features = features.copy()
    features["__target__"] = training.targets(config, raw)
    path = directory / "features.parquet"
    features.to_parquet(path)
    return path, list(transformer.categorical_features_), len(features)


def _spawn(way: str, features: Path, categorical: list[str], timeout: float) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    policy = WAYS[way][2]
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    env["PYTHONPATH"] = str(REPO_ROOT / "src")
    spec = {"way": way, "features": str(features), "categorical": categorical}
    proc = subprocess.Popen(
        [sys.executable, __file__, "--case", json.dumps(spec)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # a lower bound: the whole process's CPU so far (imports included), then stop it
        cpu = _process_cpu(proc.pid)
        proc.kill()
        proc.communicate()
        progress(f"  {way}: stopped after {timeout:.0f} s (timeout)")
        return {
            "way": way,
            "label": WAYS[way][0],
            "timed_out": True,
            "wall_s": timeout,
            "cpu_s": cpu,
            "load_before": _load(),
        }
    if proc.returncode != 0:
        raise RuntimeError(f"case {way} failed:\n{err[-3000:]}")
    return dict(json.loads(out.strip().splitlines()[-1]))


def _process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of a running process (Linux ``/proc``), all its threads."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 2)
    except (OSError, ValueError, IndexError):
        return None


class Burners:
    """``n`` CPU-burning child processes (the busy machine); stopped by :meth:`stop`."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        self.procs = [
            subprocess.Popen([sys.executable, "-c", BURN], start_new_session=True)
            for _ in range(self.n)
        ]

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs = []


def measure(
    features: Path,
    categorical: list[str],
    *,
    repeat: int,
    ways: list[str],
    phases: list[str],
    busy: int,
    settle: float,
    timeout: float,
) -> list[dict[str, Any]]:
    """Every (repeat, phase, way) fit, in run order."""
    runs: list[dict[str, Any]] = []
    burners = Burners(busy)
    for rep in range(repeat):
        order = ways[rep % len(ways) :] + ways[: rep % len(ways)]
        for phase in phases:
            if phase == "busy":
                burners.start()
                time.sleep(settle)
            try:
                for way in order:
                    progress(f"repeat {rep + 1}/{repeat}, {phase}, {WAYS[way][0]} ...")
                    run = _spawn(way, features, categorical, timeout)
                    run.update(repeat=rep + 1, phase=phase, burners=busy if phase == "busy" else 0)
                    runs.append(run)
                    progress(
                        f"  threads {run.get('threads')}, wall {run['wall_s']} s, cpu "
                        f"{run['cpu_s']} s, load {run.get('load_before')}"
                    )
            finally:
                if phase == "busy":
                    burners.stop()
    return runs


def summarize(runs: list[dict[str, Any]], ways: list[str]) -> list[dict[str, Any]]:
    """Per way: min/median wall and CPU per phase, the busy/quiet CPU ratio, the goal; and
    the median busy CPU over the least CPU of any fit (``busy_cpu_vs_best``): the fit's own
    cost, a reference where the quiet phase was not quiet."""
    done = [r["cpu_s"] for r in runs if r.get("cpu_s") is not None and not r.get("timed_out")]
    best = min(done) if done else None
    out = []
    for way in ways:
        row: dict[str, Any] = {"way": way, "label": WAYS[way][0]}
        for phase in PHASES:
            mine = [r for r in runs if r["way"] == way and r["phase"] == phase]
            for key in ("wall_s", "cpu_s"):
                values = [r[key] for r in mine if r.get(key) is not None]
                row[f"{phase}_{key}_min"] = min(values) if values else None
                row[f"{phase}_{key}_median"] = median(values)
            row[f"{phase}_threads"] = sorted({r["threads"] for r in mine if "threads" in r})
            row[f"{phase}_timeouts"] = sum(1 for r in mine if r.get("timed_out"))
        quiet, busy = row["quiet_cpu_s_median"], row["busy_cpu_s_median"]
        row["cpu_ratio"] = round(busy / quiet, 2) if quiet and busy else None
        row["goal_met"] = row["cpu_ratio"] is not None and row["cpu_ratio"] < GOAL_RATIO
        row["busy_cpu_vs_best"] = round(busy / best, 2) if busy and best else None
        out.append(row)
    return out


def _threads(values: list[int]) -> str:
    return "/".join(str(v) for v in values) or "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="fits per way and phase")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} rows, 1 repeat")
    parser.add_argument("--rows", type=int, help="first N rows of the year (default: all)")
    parser.add_argument("--ways", nargs="+", choices=list(WAYS), default=list(WAYS))
    parser.add_argument("--phases", nargs="+", choices=PHASES, default=list(PHASES))
    parser.add_argument("--busy", type=int, help="CPU burners in the busy phase (default: CPUs)")
    parser.add_argument(
        "--settle", type=float, default=3.0, help="seconds between starting burners and a fit"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="seconds per fit; a fit stopped there counts with its CPU so far (a lower bound)",
    )
    parser.add_argument("--output", type=Path, help="JSON path (default benchmarks/results/)")
    parser.add_argument("--report", type=Path, help="print the tables of a saved JSON result")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(json.loads(args.case))))
        return 0
    if args.report:
        saved = json.loads(args.report.read_text())
        saved.setdefault("ways", [w for w in WAYS if any(r["way"] == w for r in saved["runs"])])
        report(saved)
        return 0

    repeat = 1 if args.quick else max(1, args.repeat)
    rows = QUICK_ROWS if args.quick and args.rows is None else args.rows
    busy = args.busy if args.busy is not None else (os.cpu_count() or 1)
    load_start = _load()
    progress(f"load average {load_start} on {os.cpu_count()} CPUs; preparing the flights frame")
    with tempfile.TemporaryDirectory(prefix="fit_contention_") as tmp:
        features, categorical, n_rows = prepare_features(rows, Path(tmp))
        progress(f"{n_rows:,} rows; {len(args.ways)} ways x {args.phases} x {repeat} repeat(s)")
        started = utc_now()
        runs = measure(
            features,
            categorical,
            repeat=repeat,
            ways=args.ways,
            phases=args.phases,
            busy=busy,
            settle=args.settle,
            timeout=args.timeout,
        )
    load_end = _load()
    loads = [r["load_before"][0] for r in runs if r.get("load_before")]
    payload = {
        "benchmark": "fit_contention",
        "created": started,
        "git": git_revision(),
        "machine": machine_info(),
        "rows": n_rows,
        "repeat": repeat,
        "ways": args.ways,
        "burners": busy,
        "goal_ratio": GOAL_RATIO,
        "load_average_start": load_start,
        "load_average_end": load_end,
        "load_1m_max": max(loads) if loads else None,
        "runs": runs,
    }
    payload["summary"], payload["markdown"] = report(payload)
    path = write_json("fit_contention", payload, path=args.output)
    progress(f"wrote {path}")
    return 0


def report(payload: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """Print the table of a run (fresh, or saved: ``--report``); returns the summary and
    the table as Markdown."""
    runs = payload["runs"]
    summary = summarize(runs, payload["ways"])
    headers = [
        "way",
        "threads q/b",
        "quiet wall min/med",
        "quiet cpu min/med",
        "busy wall min/med",
        "busy cpu min/med",
        "cpu busy/quiet",
        f"< {GOAL_RATIO}x",
        "busy cpu / best",
    ]

    def pair(row: dict[str, Any], phase: str, key: str) -> str:
        lo, mid = row[f"{phase}_{key}_min"], row[f"{phase}_{key}_median"]
        stopped = row[f"{phase}_timeouts"]
        cell = "-" if lo is None else f"{lo:.1f} / {mid:.1f}"
        return f"{cell} ({stopped} stopped, >=)" if stopped else cell

    table = [
        [
            r["label"],
            f"{_threads(r['quiet_threads'])} / {_threads(r['busy_threads'])}",
            pair(r, "quiet", "wall_s"),
            pair(r, "quiet", "cpu_s"),
            pair(r, "busy", "wall_s"),
            pair(r, "busy", "cpu_s"),
            r["cpu_ratio"],
            r["goal_met"],
            r["busy_cpu_vs_best"],
        ]
        for r in summary
    ]
    title = (
        f"LightGBM fit of {payload['rows']:,} flights rows ({payload['repeat']} repeat(s); "
        f"seconds; busy = {payload['burners']} CPU burners on {payload['machine']['cpu_count']} "
        f"CPUs); load average {payload['load_average_start']} -> {payload['load_average_end']}"
    )
    print_table(headers, table, digits=2, title=title)
    print(
        f"1-minute load before each fit: quiet {_span(runs, 'quiet')}, busy {_span(runs, 'busy')}"
        f". busy cpu / best: median busy CPU over the least CPU any way's fit took (the fit's "
        "own cost, where the quiet phase was not quiet)\n"
    )
    return summary, format_markdown_table(headers, table, digits=2)


def _span(runs: list[dict[str, Any]], phase: str) -> str:
    loads = [r["load_before"][0] for r in runs if r["phase"] == phase and r.get("load_before")]
    return f"{min(loads):.2f}-{max(loads):.2f}" if loads else "-"


if __name__ == "__main__":
    sys.exit(main())
