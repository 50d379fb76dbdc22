"""``retrainflow monitor``: one monitoring check (through the stack when it is up)."""

from __future__ import annotations

import argparse
from datetime import date

from retrainflow.cli.output import add_timeout_arg, explain_failed_run, print_json, print_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "monitor",
        help="run monitor__PIPELINE (drift, performance, trigger decision): through the stack "
        "when it is up, else in this process",
    )
    p.add_argument("pipeline")
    p.add_argument(
        "--date",
        type=date.fromisoformat,
        help="exclusive end of the checked window (default: today)",
    )
    p.add_argument("--no-trigger", action="store_true", help="decide, but start no retrain")
    p.add_argument(
        "--on-demand", action="store_true", help="ask for a retrain whatever the rules say"
    )
    p.add_argument("--json", action="store_true")
    add_timeout_arg(p)
    p.set_defaults(func=monitor_cmd)


def monitor_cmd(args: argparse.Namespace) -> int:
    from retrainflow.airflow.cli_runs import run_pipeline_dag
    from retrainflow.config import find_config
    from retrainflow.exceptions import UserError

    cfg = find_config(args.pipeline)
    if not cfg.monitoring.enabled:
        raise UserError(f"Monitoring of '{cfg.name}' is disabled (monitoring.enabled: false).")
    conf = {
        "check_date": (args.date or date.today()).isoformat(),
        "trigger": not args.no_trigger,
        "on_demand": args.on_demand,
    }
    # The retrain DAG's stale runs too: the check's single flight counts them as active.
    result = run_pipeline_dag(
        cfg.monitor_dag_id,
        conf,
        command="monitor",
        timeout=args.timeout,
        also_clean=(cfg.retrain_dag_id,),
    )
    manifest = result.outputs.get("check")
    if args.json:
        print_json({"state": result.state, "run_id": result.run_id, "check": manifest})
        return 0 if result.state == "success" else 1
    if not manifest:
        explain_failed_run(result, "monitor")
        return 1
    drift = manifest["drift"] or {}
    columns = drift.get("columns") or {}
    if columns:
        print_table(
            [{"column": c, **v} for c, v in columns.items()],
            ["column", "method", "score", "threshold", "drifted"],
        )
        print()
    check, decision = manifest["check"], manifest["decision"]
    print(
        f"champion {manifest['champion_version']}: {check['current_rows']} current rows "
        f"({check['labelled_rows']} labelled), drift share {check['drift_share']}, "
        f"metric {check['metric']}"
    )
    print("\n".join(manifest["explain"]))
    print(
        f"\ndecision: {'RETRAIN' if decision['trigger'] else 'no retrain'} "
        f"reasons={decision['reasons']} blocked_by={decision['blocked_by']} mode={decision['mode']}"
    )
    if manifest["triggered_run_id"]:
        print(
            f"triggered {cfg.retrain_dag_id} run {manifest['triggered_run_id']} ({manifest['trigger_status']})"
        )
    if result.ui_url:  # through the stack: the plugin serves the reports to logged-in users
        page = f"{result.ui_url.split('/dags/', 1)[0]}/retrainflow/run/{cfg.monitor_dag_id}/{result.run_id}"
        print(f"run report: {page}  (in the Airflow UI: the run's 'Run report' tab)")
        if manifest["report_uri"]:
            print(f"drift report: {page}/drift")
    elif manifest["report_uri"]:
        print(f"drift report: {manifest['report_uri']}")
    return 0 if result.state == "success" else 1
