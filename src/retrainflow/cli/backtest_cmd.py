"""``retrainflow backtest``: replay a pipeline's data through retraining strategies."""

from __future__ import annotations

import argparse
import sys
from datetime import date

from retrainflow.cli.analysis_args import add_threads_option, analysis_config
from retrainflow.cli.output import print_json, print_table


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
    p.add_argument("--batch-days", type=int, default=1, help="days per batch (default 1)")
    p.add_argument(
        "--warmup-days",
        type=int,
        help="days before the first scored batch (default: training.window_days)",
    )
    p.add_argument("--strategies", help="comma-separated strategy names (default: all; see --list)")
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
        type=int,
        default=1,
        help="worker processes: replay the strategies in parallel (default 1)",
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
    p.add_argument("--json", action="store_true", help="print the summary and paths as JSON")
    p.set_defaults(func=backtest_cmd)


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
        print_table(
            [s.to_dict() for s in default_strategies(cfg, batch_days=args.batch_days)],
            ["name", "kind", "description"],
        )
        return 0
    names = (
        [n.strip() for n in args.strategies.split(",") if n.strip()] if args.strategies else None
    )
    strategies = select_strategies(cfg, names, batch_days=args.batch_days)
    if args.strategy_file:
        strategies += load_strategies(args.strategy_file)

    def progress(line: str) -> None:
        if not args.json:
            print(line, file=sys.stderr, flush=True)

    if args.jobs < 1:
        raise UserError(f"--jobs must be >= 1; got {args.jobs}")
    result = run_backtest(
        cfg,
        start=args.start,
        end=args.end,
        batch_days=args.batch_days,
        strategies=strategies,
        warmup_days=args.warmup_days,
        validate=args.validate,
        progress=progress,
        jobs=args.jobs,
    )
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
            }
        )
        return 0
    steps = len(result.steps_of(result.strategy_names[0]))
    print(
        f"\n{cfg.name}: {result.data_rows} rows {result.start}..{result.end}, {steps} batches "
        f"of {result.batch_days} day(s) from {result.first_batch}; "
        f"{result.primary_metric} on the next batch (last = mean of the last "
        f"{result.last_n} batches); {result.seconds:.0f} s\n"
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
    print(
        f"\njson: {paths['json']}\nplots: {paths['metric_png']}\n       {paths['compute_png']}"
        f"\n(the project's goals for these ratios: benchmarks/backtest_goals.py JSON)"
    )
    if mlflow_run:
        print(f"mlflow run: {mlflow_run}")
    return 0
