"""Model commands: ``retrain``, ``history``, ``rollback``."""

from __future__ import annotations

import argparse
from datetime import date
from typing import Any

from retrainflow.cli.output import add_timeout_arg, explain_failed_run, print_json, print_table
from retrainflow.core.modes import Mode

HISTORY_COLUMNS = [
    "version",
    "aliases",
    "mode",
    "warm_method",
    "parent_version",
    "window_start",
    "window_end",
    "rows",
    "trigger_reason",
    "challenger_metric",
    "champion_metric",
    "gate_passed",
    "champion_periods",
]
#: The model's champion periods, in order; ``data_end`` is the data time the champion was trained to.
PERIOD_COLUMNS = ["seq", "version", "since", "until", "data_end", "reason"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "retrain",
        help="run retrain__PIPELINE: through the stack when it is up, else in this process "
        "(the same DAG, via dag.test)",
    )
    p.add_argument("pipeline")
    p.add_argument(
        "--date",
        type=date.fromisoformat,
        help="exclusive end of the data window (default: up to the newest data in the source)",
    )
    p.add_argument(
        "--mode",
        choices=[m.value for m in Mode],
        default=None,
        help="default: the pipeline's training.mode",
    )
    p.add_argument("--reason", default="cli")
    add_timeout_arg(p)
    p.set_defaults(func=retrain_cmd)

    p = sub.add_parser(
        "history", help="versions, modes, parents, gate results and champion periods"
    )
    p.add_argument("pipeline")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=history_cmd)

    p = sub.add_parser("rollback", help="make the previous (or a given) version champion again")
    p.add_argument("pipeline")
    p.add_argument("--to", help="version to restore (default: the champion before the current one)")
    p.set_defaults(func=rollback_cmd)


def _shown(value: float | None) -> str:
    """A metric for people: 4 decimals, or "undefined" (e.g. ROC AUC on one class)."""
    return "undefined" if value is None else f"{value:.4f}"


def retrain_cmd(args: argparse.Namespace) -> int:
    from retrainflow.airflow.cli_runs import run_pipeline_dag
    from retrainflow.config import find_config

    cfg = find_config(args.pipeline)
    # No --date: no window_end, and the run resolves it (retrainflow.runs.build_context): up
    # to the newest data in the source, as for the UI's empty form and a REST trigger.
    conf = {"reason": args.reason}
    if args.date:
        conf["window_end"] = args.date.isoformat()
    if args.mode:
        conf["mode"] = args.mode
    result = run_pipeline_dag(cfg.retrain_dag_id, conf, command="retrain", timeout=args.timeout)
    show_retrain(result)
    if result.state != "success":
        explain_failed_run(result, "retrain")
        return 1
    return 0


def show_retrain(result: Any) -> None:
    """Print what a retrain run did: task states, the version it registered or reused, and
    the gate's verdict (``result``: a :class:`~retrainflow.airflow.local_run.LocalRunResult`)."""
    print_table([{"task": t, "state": s} for t, s in result.task_states.items()], ["task", "state"])
    run_ctx = (result.outputs.get("pull") or {}).get("context") or {}
    if run_ctx.get("window_end_from") == "newest_data":
        print(f"\nwindow end {run_ctx['window_end']}: up to the newest data in the source")
    promoted = result.outputs.get("promote")
    if promoted:
        what = (
            f"reused {promoted['model_uri']} ({promoted['reused_reason']})"
            if promoted.get("reused")
            else f"registered {promoted['model_uri']}"
        )
        print(
            f"\n{what}; champion is version {promoted['champion_version']}"
            + (" (awaiting approval)" if promoted.get("awaiting_approval") else "")
        )
    verdict = result.outputs.get("evaluate")
    if verdict:
        primary = verdict["primary_metric"]
        champ = verdict.get("champion")
        against = (
            f" vs champion {verdict['champion_version']} {_shown(champ.get(primary))}"
            if champ is not None
            else " (no champion yet)"
        )
        gate = "passed" if verdict["passed"] else "failed"
        print(
            f"challenger {primary} {_shown(verdict['challenger'].get(primary))}{against}: gate {gate}"
        )
        if promoted and not promoted.get("champion"):
            for reason in verdict["reasons"]:
                print(f"  {reason}")


def history_cmd(args: argparse.Namespace) -> int:
    from retrainflow.config import find_config
    from retrainflow.registry import Registry, history

    cfg = find_config(args.pipeline)
    registry = Registry()
    rows = history(registry, cfg.registered_model_name)
    periods = [p.to_dict() for p in registry.champion_periods(cfg.registered_model_name)]
    if args.json:
        print_json({"pipeline": cfg.name, "versions": rows, "champion_periods": periods})
    elif not rows:
        print(f"'{cfg.name}' has no registered versions yet.")
    else:
        # a version's champion periods by number; the second table has their times
        print_table(
            [
                {**r, "champion_periods": [f"#{p['seq']}" for p in r["champion_periods"]]}
                for r in rows
            ],
            HISTORY_COLUMNS,
        )
        if periods:
            print(
                "\nchampion periods (wall-clock since/until, UTC; data_end: data the champion was trained to)"
            )
            print_table(
                [{**p, "until": p["until"] or "(serving)"} for p in periods], PERIOD_COLUMNS
            )
    return 0


def rollback_cmd(args: argparse.Namespace) -> int:
    from retrainflow.config import find_config
    from retrainflow.registry import Registry

    cfg = find_config(args.pipeline)
    old, new = Registry().rollback(cfg.registered_model_name, args.to)
    print(f"{cfg.name}: champion moved from version {old} back to version {new}")
    return 0
