"""``retrainflow demo``: the main job on the embedded stack."""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict

from retrainflow.cli.output import print_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="seed NYC flights 2013, start the embedded stack, retrain through "
        "Airflow (initial stateless model, then weekly warm starts)",
    )
    p.add_argument(
        "--weeks", type=int, default=2, help="weekly warm-start updates after the initial model"
    )
    p.add_argument(
        "--days",
        type=int,
        default=14,
        help="days then released one by one, each checked by monitor__flights",
    )
    p.set_defaults(func=demo_cmd)


def demo_cmd(args: argparse.Namespace) -> int:
    from retrainflow.airflow import stack
    from retrainflow.cli.stack_cmds import print_urls
    from retrainflow.demo import run_demo

    t0 = time.perf_counter()
    result = run_demo(weeks=args.weeks, days=args.days)
    rows = result.retrains + [d.retrain for d in result.days if d.retrain]
    print("\nRetrains (initial, weekly updates, and those the monitoring DAG started over REST):")
    print_table(
        [{**asdict(r), "seconds": f"{r.seconds:.0f}"} for r in rows],
        [
            "window_end",
            "state",
            "version",
            "mode",
            "rows",
            "metric",
            "champion_metric",
            "gate_passed",
            "champion_after",
            "seconds",
        ],
        [
            "window end",
            "run",
            "version",
            "mode",
            "rows",
            "roc_auc",
            "champion roc_auc",
            "gate",
            "champion",
            "seconds",
        ],
    )
    if result.days:
        print(
            "\nMonitoring, one check per released day (drift and performance over the last week):"
        )
        print_table(
            [
                {**asdict(d), "drift_share": d.drift_share, "retrain": _retrain_label(d)}
                for d in result.days
            ],
            [
                "day",
                "current_rows",
                "drift_share",
                "drifted",
                "metric",
                "decision",
                "mode",
                "retrain",
            ],
            [
                "day",
                "rows",
                "drift share",
                "drifted cols",
                "champion roc_auc",
                "decision",
                "mode",
                "retrain",
            ],
        )
        print("\nDrift reports:")
        for d in result.days:
            if d.report_uri:
                print(f"  {d.day}: {d.report_uri}")
    print(
        f"\ndemo finished in {time.perf_counter() - t0:.0f}s "
        "(a longer replay: `retrainflow demo --weeks 4 --days 60`)"
    )
    info = stack.start(stack.StackConfig())  # already up: returns how to reach it
    print_urls(info)
    print("Lineage: `retrainflow history flights`; stop the stack with `retrainflow down`.")
    ok = all(r.state == "success" for r in rows) and all(d.state == "success" for d in result.days)
    return 0 if ok else 1


def _retrain_label(day) -> str:
    r = day.retrain
    if r is None:
        return "-"
    if r.version is None:
        return f"run {r.state}"
    return f"v{r.version} {r.mode} {'promoted' if r.champion_after == r.version else 'not promoted'} ({r.state})"
