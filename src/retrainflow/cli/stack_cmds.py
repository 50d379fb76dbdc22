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
        print(f"MLflow UI:   {info.mlflow_url}")
    print(f"Logs:        {info.log_dir}")


def up_cmd(args: argparse.Namespace) -> int:
    from retrainflow.airflow import stack

    cfg = stack_config(args)
    info = stack.start(cfg)
    print(f"stack up in {info.startup_seconds:.0f}s" if info.started else "stack already running")
    print_urls(info)
    print(f"Address:     {cfg.record_file} (the CLI and the plugin read it)")
    print("Stop it with `retrainflow down`.")
    return 0


def down_cmd(args: argparse.Namespace) -> int:
    from retrainflow.airflow import stack

    stopped = stack.stop(stack_config())
    print("stopped: " + (", ".join(c for c, ok in stopped.items() if ok) or "nothing was running"))
    return 0
