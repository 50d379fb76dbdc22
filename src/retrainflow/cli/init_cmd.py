"""``retrainflow init``: a commented pipeline config from a CSV or Parquet file."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "init",
        help="profile a CSV or Parquet file and write config/pipelines/NAME.yaml for it",
        description=(
            "Profile a CSV or Parquet file (a bounded sample of its rows; the time column in "
            "full) and write a commented pipeline config for it: features by type, "
            "expectations from the observed types, nulls and ranges, the task, training, "
            "evaluation and monitoring defaults."
        ),
    )
    p.add_argument("name", help="the pipeline's name: lower-case letters, digits and '_'")
    p.add_argument("--from", dest="file", required=True, type=Path, help="the CSV or Parquet file")
    p.add_argument("--time-column", required=True, help="the column of event times")
    p.add_argument("--target", required=True, help="the label column")
    p.add_argument(
        "--task",
        choices=["binary_classification", "regression"],
        help="default: inferred from the target's values",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing config")
    p.set_defaults(func=init_cmd)


def init_cmd(args: argparse.Namespace) -> int:
    from retrainflow.data.profile import init_pipeline

    result = init_pipeline(
        args.name,
        args.file,
        time_column=args.time_column,
        target=args.target,
        task=args.task,
        force=args.force,
    )
    profile, draft, cfg = result.profile, result.draft, result.config
    target, time = profile.target, profile.time
    left_out = profile.role("left_out")
    verb = "overwrote" if result.overwritten else "wrote"
    how = "inferred" if target.inferred else "given"
    print(f"{verb} {result.path}")
    print(f"  profiled {profile.sampling} of {profile.path}")
    print(
        f"  rows from {time.first_day} to {time.last_day} ({time.span_days} days, "
        f"~{time.rows_per_day:,.0f} a day)"
    )
    print(f"  task {target.task} ({how}), target '{target.column}': {target.shown}")
    print(
        f"  features: {len(cfg.features.numeric)} numeric, {len(cfg.features.categorical)} "
        f"categorical, time_parts {cfg.features.time_parts}"
    )
    for col in left_out:
        print(f"  left out {col.name}: {col.reason}")
    print(
        f"  window {draft.window_days} days, holdout {draft.holdout_days} days, "
        f"min_rows {draft.min_rows}, primary metric {draft.primary_metric}"
    )
    for note in draft.notes:
        print(f"  note: {note}")
    print("Read the comments in the file and change what you know better.")
    print()
    print("next:")
    step = 1
    if target.mapping:
        print(
            f"  {step}. in {profile.path.name}, store '{target.column}' {target.mapping}: "
            "the pipeline trains on 0/1 targets only"
        )
        step += 1
    if time.nulls or time.unparsed:
        print(f"  {step}. give every row a valid '{time.column}' (see the file's header)")
        step += 1
    end = time.end.isoformat()
    data = _arg(str(profile.path))
    print(f"  {step}. retrainflow ingest {cfg.name} {data}")
    print("       writes the rows into the lake, one partition per day")
    print(f"  {step + 1}. retrainflow retrain {cfg.name} --date {end}")
    print(
        f"       holds out the last {cfg.evaluation.holdout_days} days before {end} to compare "
        f"models on, and trains on the {cfg.training.window_days} days before those (--date "
        f"is the exclusive end: the day after the newest day, {time.last_day})"
    )
    monitor_date = "" if time.end >= date.today() else f" --date {end}"
    print(f"  {step + 2}. retrainflow monitor {cfg.name}{monitor_date} --no-trigger")
    print(
        f"       drift and the champion's performance over the last "
        f"{cfg.monitoring.current_days} days, without starting a retrain"
    )
    return 0


def _arg(text: str) -> str:
    """``text`` quoted for a POSIX shell when it needs to be."""
    import shlex

    return shlex.quote(text)
