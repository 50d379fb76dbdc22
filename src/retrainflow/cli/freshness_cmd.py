"""``retrainflow freshness``: how the metric falls as the training data gets older."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import date
from typing import TypeVar

from retrainflow.cli.analysis_args import add_threads_option, analysis_config
from retrainflow.cli.output import print_json, print_table

T = TypeVar("T")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "freshness",
        help="value of freshness: train on windows ending at increasing ages before "
        "evaluation periods; show how the metric falls with staleness and what "
        "retraining every 1/7/14/28 days would score",
    )
    p.add_argument("pipeline")
    p.add_argument(
        "--ages",
        help="comma-separated ages in days (0 is always added; default "
        "0,1,2,3,5,7,14,21,28,42,56, clipped to the data)",
    )
    p.add_argument(
        "--window-days",
        type=int,
        help="days of every training window (default: training.window_days)",
    )
    p.add_argument(
        "--eval-days", type=int, default=7, help="days of every evaluation period (default 7)"
    )
    anchors = p.add_mutually_exclusive_group()
    anchors.add_argument(
        "--anchors",
        type=int,
        help="evaluation periods spread over the second half of the data (default 4)",
    )
    anchors.add_argument(
        "--eval-start",
        help="comma-separated first days of the evaluation periods (YYYY-MM-DD[,YYYY-MM-DD...])",
    )
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
    p.add_argument(
        "--intervals",
        default="1,7,14,28",
        help="retraining intervals in days to translate the ages into (default 1,7,14,28)",
    )
    p.add_argument(
        "--delay-days",
        type=int,
        help="days a retrained model lags behind its data when it starts serving "
        "(default: monitoring.label_delay_days)",
    )
    p.add_argument(
        "--out",
        help="output folder (default: $RETRAINFLOW_HOME/artifacts/"
        "PIPELINE/freshness__<time>/freshness)",
    )
    p.add_argument(
        "--mlflow",
        action="store_true",
        help="also log the tables and files to MLflow (<pipeline>-freshness)",
    )
    add_threads_option(p)
    p.add_argument("--json", action="store_true", help="print the tables and paths as JSON")
    p.set_defaults(func=freshness_cmd)


def _split(
    flag: str, text: str | None, convert: Callable[[str], T], what: str, example: str
) -> list[T] | None:
    """``"a,b"`` → ``[convert(a), convert(b)]``; None stays None.

    Raises:
        UserError: an empty list, or a part ``convert`` refuses (``what`` names the kind).
    """
    from retrainflow.exceptions import UserError

    if text is None:
        return None
    parts = [t.strip() for t in text.split(",") if t.strip()]
    if not parts:
        raise UserError(f"{flag} is empty; give {what}, e.g. {flag} {example}.")
    try:
        return [convert(t) for t in parts]
    except ValueError:
        raise UserError(f"{flag}: expected {what}; got {text!r}.") from None


def _ints(flag: str, text: str | None) -> list[int] | None:
    return _split(flag, text, int, "comma-separated whole days", "0,7,14")


def _dates(flag: str, text: str | None) -> list[date] | None:
    return _split(
        flag, text, date.fromisoformat, "comma-separated YYYY-MM-DD dates", "2013-10-01,2013-11-01"
    )


def freshness_cmd(args: argparse.Namespace) -> int:
    from retrainflow.freshness import (
        AGE_COLUMNS,
        INTERVAL_COLUMNS,
        log_to_mlflow,
        run_freshness,
        save,
    )
    from retrainflow.reports import default_out_dir

    cfg = analysis_config(args)
    ages = _ints("--ages", args.ages)
    intervals = _ints("--intervals", args.intervals) or []
    eval_starts = _dates("--eval-start", args.eval_start)

    def progress(line: str) -> None:
        if not args.json:
            print(line, file=sys.stderr, flush=True)

    result = run_freshness(
        cfg,
        ages=ages,
        window_days=args.window_days,
        eval_days=args.eval_days,
        anchors=args.anchors,
        eval_starts=eval_starts,
        start=args.start,
        end=args.end,
        intervals=intervals,
        delay_days=args.delay_days,
        progress=progress,
    )
    paths = save(result, args.out or default_out_dir(cfg, "freshness"))
    mlflow_run = log_to_mlflow(cfg, result, paths) if args.mlflow else None
    by_age = [r.to_dict() for r in result.by_age()]
    by_interval = [r.to_dict() for r in result.by_interval()]
    skipped = [
        {"anchor": r.anchor, "age_days": r.age_days, "reason": r.skipped} for r in result.skipped
    ]
    if args.json:
        print_json(
            {
                "pipeline": result.pipeline,
                "primary_metric": result.primary_metric,
                "lower_is_better": result.lower_is_better,
                "anchors": result.anchors,
                "ages": result.ages,
                "dropped_ages": result.dropped_ages,
                "by_age": by_age,
                "by_interval": by_interval,
                "skipped": skipped,
                "paths": {k: str(v) for k, v in paths.items()},
                "mlflow_run_id": mlflow_run,
                "seconds": result.seconds,
            }
        )
        return 0
    direction = "lower is better" if result.lower_is_better else "higher is better"
    print(
        f"\n{cfg.name}: {result.data_rows} rows {result.start}..{result.end}; "
        f"{result.window_days}-day training windows, {result.eval_days}-day evaluation "
        f"periods from {', '.join(result.anchors)}; {result.primary_metric} "
        f"({direction}); {result.seconds:.0f} s\n"
    )
    print(
        "by age of the training data (delta_vs_fresh: vs age 0, paired by anchor, "
        "negative = worse; within ~2 delta_se of 0 it is noise)"
    )
    print_table(by_age, AGE_COLUMNS)
    print(
        f"\nby retraining interval (served ages uniform over delay {result.delay_days} .. "
        f"delay + interval - 1; delta_vs_daily negative = worse)"
    )
    if by_interval:
        print_table(by_interval, INTERVAL_COLUMNS)
    else:
        print("(no interval fits the measured ages)")
    missing = sorted(set(result.intervals) - {r["interval_days"] for r in by_interval})
    if missing:
        print(
            f"not reached by the measured ages (up to {max(result.ages)} days): "
            f"{', '.join(map(str, missing))}"
        )
    if result.dropped_ages:
        print(
            f"\nages dropped (no anchor leaves room for their window after "
            f"{result.start}): {', '.join(map(str, result.dropped_ages))}"
        )
    if skipped:
        print(f"\nskipped {len(skipped)} of {len(result.records)} combinations:")
        for s in skipped:
            print(f"  anchor {s['anchor']} age {s['age_days']}: {s['reason']}")
    print(f"\njson: {paths['json']}\nplot: {paths['png']}")
    if mlflow_run:
        print(f"mlflow run: {mlflow_run}")
    return 0
