"""Model commands: ``retrain``, ``history``, ``rollback``."""

from __future__ import annotations

import argparse
from datetime import date

from retrainflow.cli.output import print_json, print_table

HISTORY_COLUMNS = ["version", "aliases", "mode", "parent_version", "window_start", "window_end", "rows",
                   "trigger_reason", "challenger_metric", "champion_metric", "gate_passed",
                   "champion_since", "champion_until"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("retrain", help="run retrain__PIPELINE in this process (the same DAG, via dag.test)")
    p.add_argument("pipeline")
    p.add_argument("--date", type=date.fromisoformat,
                   help="exclusive end of the data window (default: today)")
    p.add_argument("--mode", choices=["auto", "stateless", "warm_start"], default=None)
    p.add_argument("--reason", default="cli")
    p.set_defaults(func=retrain_cmd)

    p = sub.add_parser("history", help="versions, modes, parents, gate results and champion periods")
    p.add_argument("pipeline")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=history_cmd)

    p = sub.add_parser("rollback", help="make the previous (or a given) version champion again")
    p.add_argument("pipeline")
    p.add_argument("--to", help="version to restore (default: the champion before the current one)")
    p.set_defaults(func=rollback_cmd)


def retrain_cmd(args: argparse.Namespace) -> int:
    from retrainflow.airflow.local_run import run_dag
    from retrainflow.config import find_config

    cfg = find_config(args.pipeline)
    conf = {"reason": args.reason, "window_end": (args.date or date.today()).isoformat()}
    if args.mode:
        conf["mode"] = args.mode
    result = run_dag(cfg.retrain_dag_id, conf)
    print_table([{"task": t, "state": s} for t, s in result.task_states.items()], ["task", "state"])
    promoted = result.outputs.get("promote")
    if promoted:
        print(f"\nregistered {promoted['model_uri']}; champion is version {promoted['champion_version']}"
              + (" (awaiting approval)" if promoted.get("awaiting_approval") else ""))
    if result.state != "success":
        msg = f"run {result.run_id} of {result.dag_id} ended {result.state}."
        if result.failure_report:
            err = result.failure_report.get("error") or {}
            msg += f"\n{result.failure_report['stage']} failed: {err.get('message', '')}".rstrip()
            msg += f"\nreport: {result.failure_report['path']}"
        print(msg)
        return 1
    return 0


def history_cmd(args: argparse.Namespace) -> int:
    from retrainflow.config import find_config
    from retrainflow.registry import Registry, history

    cfg = find_config(args.pipeline)
    rows = history(Registry(), cfg.registered_model_name)
    if args.json:
        print_json({"pipeline": cfg.name, "versions": rows})
    elif not rows:
        print(f"'{cfg.name}' has no registered versions yet.")
    else:
        print_table(rows, HISTORY_COLUMNS)
    return 0


def rollback_cmd(args: argparse.Namespace) -> int:
    from retrainflow.config import find_config
    from retrainflow.registry import Registry

    cfg = find_config(args.pipeline)
    old, new = Registry().rollback(cfg.registered_model_name, args.to)
    print(f"{cfg.name}: champion moved from version {old} back to version {new}")
    return 0
