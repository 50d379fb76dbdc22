"""Embedded stack commands: ``up``, ``down``."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "up",
        help="start the embedded Airflow (API server, scheduler, DAG processor, "
        "triggerer) and MLflow server in the background",
    )
    p.add_argument(
        "--airflow-port",
        type=int,
        default=None,
        help="port of the Airflow UI / API (default: the one this home's last `up` used, "
        "else 8080); recorded in $RETRAINFLOW_HOME/stack.json for the CLI and the plugin",
    )
    p.add_argument(
        "--mlflow-port",
        type=int,
        default=None,
        help="port of the MLflow UI (default: the one this home's last `up` used, else 5000)",
    )
    p.set_defaults(func=up_cmd)

    p = sub.add_parser("down", help="stop the embedded stack")
    p.set_defaults(func=down_cmd)
    # `status` (this table, and each pipeline's) is in runbook_cmds.


def stack_config(args: argparse.Namespace | None = None):
    from retrainflow.airflow.stack import StackConfig

    if args is None or not hasattr(args, "airflow_port"):
        return StackConfig()
    return StackConfig(api_port=args.airflow_port, mlflow_port=args.mlflow_port)


def print_urls(info) -> None:
    print(
        f"Airflow UI:  {info.airflow_url}   (user '{info.username}', password in {info.password_file})"
    )
    if info.mlflow_url:
        creds = getattr(info, "mlflow_credentials_file", None)
        where = f"   (user and password in {creds})" if creds else ""
        print(f"MLflow UI:   {info.mlflow_url}{where}")
    print(f"Logs:        {info.log_dir}")


def up_cmd(args: argparse.Namespace) -> int:
    from retrainflow.airflow import stack

    cfg = stack_config(args)
    _refuse_during_in_process_runs(cfg)
    info = stack.start(cfg)
    print(f"stack up in {info.startup_seconds:.0f}s" if info.started else "stack already running")
    print_urls(info)
    print(f"Address:     {cfg.record_file} (the CLI and the plugin read it)")
    print()
    _print_health(stack.health(cfg))
    print("A supervisor restarts a component that dies (logs/supervisor.log);")
    print("`retrainflow status` shows this table again. Stop the stack with `retrainflow down`.")
    return 0


def _refuse_during_in_process_runs(cfg) -> None:
    """A scheduler started now would pick up the task instances of a CLI's in-process
    (``dag.test()``) run too: wait for it instead."""
    from retrainflow.airflow import cli_runs, stack
    from retrainflow.exceptions import StackError

    if stack.status(cfg).get("scheduler"):
        return  # the CLI runs of a running stack go through its REST API
    busy = cli_runs.live_cli_runs(cfg.run_dir)
    if busy:
        who = ", ".join(f"`retrainflow {o.command}` (pid {o.pid}) runs {o.dag_id}" for o in busy)
        raise StackError(
            f"Not starting the stack while {who} in its own process: the scheduler would run "
            "that run's tasks too. Fix: wait for it to finish (or stop it), then run "
            "`retrainflow up`."
        )


def down_cmd(args: argparse.Namespace) -> int:
    from retrainflow.airflow import stack

    stopped = stack.stop(stack_config())
    print("stopped: " + (", ".join(c for c, ok in stopped.items() if ok) or "nothing was running"))
    return 0


def _print_health(health: dict) -> None:
    from retrainflow.cli.output import print_table

    rows = [
        {
            "component": c,
            "process": f"{h['process']} (pid {h['pid']})" if h["pid"] else h["process"],
            "health": h.get("api", "-"),
            "restarts": h.get("restarts", "-"),
            "note": (
                "gave up restarting it: read its log"
                if h.get("gave_up")
                else (f"last exit code {h['last_exit']}" if h.get("last_exit") is not None else "")
            ),
        }
        for c, h in health.items()
    ]
    print_table(rows, ["component", "process", "health", "restarts", "note"])
