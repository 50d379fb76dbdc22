"""``retrainflow backtest``: replay a pipeline's data through retraining strategies."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from typing import IO, TYPE_CHECKING, Any

from retrainflow.cli.analysis_args import add_threads_option, analysis_config
from retrainflow.cli.output import StreamProgress, print_json, print_table

if TYPE_CHECKING:
    from retrainflow.backtest.progress import BacktestProgress

#: ``--batch-days`` by default (:data:`retrainflow.backtest.strategies.DEFAULT_BATCH_DAYS`;
#: not imported, to keep ``--help`` fast; a test checks that they agree).
DEFAULT_BATCH_DAYS = 7
#: Where the project's goals for the comparisons are judged (a source checkout only).
GOALS_SCRIPT = "benchmarks/backtest_goals.py"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "backtest",
        help="replay PIPELINE's data batch by batch (test-then-train) through retraining "
        "strategies; compare forward-in-time metric and compute",
    )
    p.add_argument("pipeline")
    p.add_argument(
        "--start",
        type=date.fromisoformat,
        help="first day of data used (default: the first partition)",
    )
    p.add_argument(
        "--end",
        type=date.fromisoformat,
        help="exclusive last day (default: the day after the last partition)",
    )
    cadence = p.add_mutually_exclusive_group()
    cadence.add_argument(
        "--batch-days",
        type=int,
        default=DEFAULT_BATCH_DAYS,
        help="days per batch (default %(default)s: weekly; the oracle retrains and the "
        "policy checks once a batch)",
    )
    cadence.add_argument(
        "--daily",
        dest="batch_days",
        action="store_const",
        const=1,
        help="daily batches (= --batch-days 1): a daily oracle and the monitoring DAG's "
        "daily check (7x their fits and checks; the other strategies still retrain weekly)",
    )
    p.add_argument(
        "--warmup-days",
        type=int,
        help="days before the first scored batch (default: training.window_days)",
    )
    p.add_argument(
        "--strategies",
        help="comma-separated strategy names, or 'all' (default: the default set; --list "
        "shows every known strategy)",
    )
    p.add_argument(
        "--strategy-file",
        metavar="YAML",
        help="more strategies from a YAML list of specs (e.g. other trigger "
        "policies: {name: p2, kind: policy, gate: true, policy: {cooldown_hours: "
        "168}}), run after the selected ones",
    )
    add_threads_option(p)
    p.add_argument(
        "--jobs",
        type=_jobs,
        default=None,
        help="worker processes replaying the strategies in parallel (same results). Default "
        "'auto': min(strategies, usable CPUs), one LightGBM thread per fit. Each worker "
        "spawns, imports the libraries and reads the data itself: on flights with 2 shared "
        "cores, 2 jobs took 18%% less wall time for 14%% more CPU than 1 (README). "
        "1 = all in this process",
    )
    p.add_argument("--list", action="store_true", help="list the strategies and exit")
    p.add_argument(
        "--validate",
        action="store_true",
        help="validate every training frame with the expectations (slow)",
    )
    p.add_argument(
        "--out",
        help="output folder (default: $RETRAINFLOW_HOME/artifacts/"
        "PIPELINE/backtest__<time>/backtest)",
    )
    p.add_argument(
        "--mlflow",
        action="store_true",
        help="also log the summary and files to MLflow (<pipeline>-backtest)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print the summary and paths as JSON (progress only on a terminal's stderr)",
    )
    p.set_defaults(func=backtest_cmd)


def _jobs(text: str) -> int | None:
    """``--jobs``: a number (checked by the command), or None for ``auto``."""
    if text == "auto":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto'; got {text!r}") from None


class ProgressBar(StreamProgress):
    """Backtest progress on a stream: on a terminal, a bar with the ETA rewritten in place
    (at most every ``interval`` seconds); otherwise a line per tenth of the expected work,
    so a log stays short (the same rules as ``ingest``'s progress line).
    """

    def __init__(self, stream: IO[str], interval: float = 0.2) -> None:
        super().__init__(stream)
        self.interval = interval
        self._last = float("-inf")
        self._tenth = 0

    def __call__(self, p: BacktestProgress) -> None:
        now = time.monotonic()
        last = p.done == p.total
        if self.tty:
            if not last and now - self._last < self.interval:
                return
            self.show(f"{self.bar(p.fraction)} {p.line()}")
        else:
            tenth = int(p.fraction * 10)
            if tenth <= self._tenth and not last:
                return
            self._tenth = 10 if last else tenth
            self.show(p.line())
        self._last = now


def backtest_cmd(args: argparse.Namespace) -> int:
    from retrainflow.backtest import (
        SUMMARY_COLUMNS,
        default_strategies,
        load_strategies,
        log_to_mlflow,
        run_backtest,
        save,
        select_strategies,
    )
    from retrainflow.exceptions import UserError
    from retrainflow.reports import default_out_dir

    cfg = analysis_config(args)
    if args.batch_days < 1:
        raise UserError(f"--batch-days must be >= 1; got {args.batch_days}")
    if args.list:
        default = {s.name for s in default_strategies(cfg, batch_days=args.batch_days)}
        print_table(
            [
                {**s.to_dict(), "default": s.name in default}
                for s in default_strategies(cfg, batch_days=args.batch_days, extras=True)
            ],
            ["name", "kind", "default", "description"],
        )
        return 0
    names = (
        [n.strip() for n in args.strategies.split(",") if n.strip()] if args.strategies else None
    )
    strategies = select_strategies(cfg, names, batch_days=args.batch_days)
    if args.strategy_file:
        strategies += load_strategies(args.strategy_file)

    if args.jobs is not None and args.jobs < 1:
        raise UserError(f"--jobs must be >= 1 or 'auto'; got {args.jobs}")
    from retrainflow.core.training import usable_cpus

    jobs = args.jobs or min(len(strategies), usable_cpus())
    bar = ProgressBar(sys.stderr)
    try:
        result = run_backtest(
            cfg,
            start=args.start,
            end=args.end,
            batch_days=args.batch_days,
            strategies=strategies,
            warmup_days=args.warmup_days,
            validate=args.validate,
            progress=bar if bar.tty or not args.json else None,
            jobs=jobs,
        )
    finally:
        bar.close()
    out_dir = args.out or default_out_dir(cfg, "backtest")
    paths = save(result, out_dir)
    mlflow_run = log_to_mlflow(cfg, result, paths) if args.mlflow else None
    summary = result.summary()
    if args.json:
        print_json(
            {
                "summary": summary,
                "comparisons": result.comparisons(),
                "paths": {k: str(v) for k, v in paths.items()},
                "mlflow_run_id": mlflow_run,
                "seconds": result.seconds,
                "jobs": jobs,
                "goal_check": goal_check(paths["json"]),
            }
        )
        return 0
    steps = len(result.steps_of(result.strategy_names[0]))
    print(
        f"\n{cfg.name}: {result.data_rows} rows {result.start}..{result.end}, {steps} batches "
        f"of {result.batch_days} day(s) from {result.first_batch}; "
        f"{result.primary_metric} on the next batch (last = mean of the last "
        f"{result.last_n} batches); {result.seconds:.0f} s"
        + (f" with {jobs} jobs" if jobs > 1 else "")
        + "\n"
    )
    print_table(summary, SUMMARY_COLUMNS)
    comparisons = result.comparisons()
    if comparisons["warm_start"]:
        refs = comparisons["references"]
        print(
            f"\nwarm starts vs {refs['stateless_full']} (train CPU and memory) and "
            f"{refs['best_stateless']} (metric):"
        )
        print_table(
            comparisons["warm_start"],
            [
                "strategy",
                "cpu_x_less",
                "mem_x_less",
                "behind_best",
                "pct_behind_best",
                "points_behind_best",
            ],
        )
    if comparisons["policy"]:
        print("\npolicies vs the oracle (gain over static, retrains):")
        print_table(
            comparisons["policy"],
            [
                "strategy",
                "gain_points",
                "oracle_gain_points",
                "gain_share",
                "retrains",
                "oracle_retrains",
                "retrain_share",
            ],
        )
    for line in missing_comparisons(comparisons):
        print(f"\n{line}")
    print(f"\njson: {paths['json']}\nplots: {paths['metric_png']}\n       {paths['compute_png']}")
    print(
        "goals: no verdict here. The ratios above are this backtest's findings; the "
        "thresholds they are held to are the retrainflow project's own development goals, "
        f"not a property of your pipeline. In a source checkout: {goal_check(paths['json'])}"
    )
    if mlflow_run:
        print(f"mlflow run: {mlflow_run}")
    return 0


def goal_check(json_path: Any) -> str:
    """The command that judges a ``backtest.json`` against the project's goals."""
    return f"python {GOALS_SCRIPT} {json_path}"


def missing_comparisons(comparisons: dict[str, Any]) -> list[str]:
    """Why a comparison table is absent (its reference strategies were not in the run)."""
    refs = comparisons["references"]
    out = []
    if not comparisons["warm_start"]:
        out.append(
            "no warm-start comparison: it needs stateless on all history (stateless_full)"
            + ("" if refs["stateless_full"] else " [missing]")
            + " and a warm_start or hybrid strategy in the run"
        )
    if not comparisons["policy"]:
        out.append(
            "no policy comparison: it needs static"
            + ("" if refs["static"] else " [missing]")
            + ", oracle"
            + ("" if refs["oracle"] else " [missing]")
            + " and a policy strategy in the run"
        )
    return out
