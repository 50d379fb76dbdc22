"""Entry point of the ``retrainflow`` command.

``main`` only wires the command groups (one module each) and maps errors to
messages: a retrainflow error prints its message and the next command to try,
and exits 1; a traceback is shown only with ``RETRAINFLOW_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from collections.abc import Sequence

from retrainflow.exceptions import (
    AirflowApiError,
    ConfigError,
    ConfigExistsError,
    DataError,
    EmptyWindowError,
    EnvironmentSettingError,
    IngestError,
    InvalidPipelineNameError,
    ModeError,
    PartitionExistsError,
    PipelineNotFoundError,
    ProfileError,
    RegistryError,
    RegistryUnavailableError,
    RetrainflowError,
    RunInProgressError,
    RunTimeoutError,
    TaskMismatchError,
    TimeColumnError,
    TimeZoneError,
)

#: Error type → what to try next.
NEXT_STEP: dict[type[RetrainflowError], str] = {
    ConfigError: "Fix the file, then check it with `retrainflow validate-config`.",
    EnvironmentSettingError: "Fix or unset the environment variable named above (README, "
    "'Production stack', lists each one).",
    PipelineNotFoundError: "List pipelines with `retrainflow validate-config`.",
    EmptyWindowError: "Load data for those days (`retrainflow ingest PIPELINE FILE`; for the demo "
    "data sets `retrainflow seed PIPELINE --until DATE`), or pick a --date whose window holds "
    "data.",
    DataError: "Open the saved report; fix the data, then load the fixed days again "
    "(`retrainflow ingest PIPELINE FILE --replace`; demo data: `retrainflow seed`).",
    ModeError: "Retry with `--mode stateless` (or `--mode auto`).",
    PartitionExistsError: "Add --replace to overwrite those days, or ingest a file without them.",
    IngestError: "Fix the input named above; `retrainflow ingest --help` says what it takes.",
    TimeColumnError: "Fix or drop the rows named above, then run `retrainflow ingest` again.",
    TimeZoneError: "Write the times as the pipeline's time_zone expects (naive without it, with "
    "their offset with it), or change time_zone; then ingest the data again.",
    ConfigExistsError: "Add --force to overwrite it, or choose another NAME.",
    InvalidPipelineNameError: "Name it like `sales_daily`: lower-case letters, digits and '_'.",
    TaskMismatchError: "Pass the --task that fits the target's values, or another --target.",
    ProfileError: "Check the file and the columns given as --time-column / --target, then run "
    "`retrainflow init` again.",
    RegistryError: "See the model's lineage with `retrainflow history PIPELINE`.",
    RegistryUnavailableError: "Is the MLflow server up? `retrainflow up` starts it; retry when it "
    "answers (logs under $RETRAINFLOW_HOME/logs).",
    RunInProgressError: "Wait for that run to finish (or stop that process), then run the "
    "command again.",
    RunTimeoutError: "Follow the run in the Airflow UI (address above), or wait longer with "
    "--timeout SECONDS.",
    AirflowApiError: "Is the stack up? `retrainflow up` starts it; logs are under $RETRAINFLOW_HOME/logs.",
}


def build_parser() -> argparse.ArgumentParser:
    from retrainflow.cli import (
        backtest_cmd,
        data_cmds,
        demo_cmd,
        freshness_cmd,
        init_cmd,
        model_cmds,
        monitor_cmd,
        runbook_cmds,
        stack_cmds,
    )

    parser = argparse.ArgumentParser(
        prog="retrainflow",
        description="Continual training for tabular models, orchestrated by Apache Airflow.",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show progress logs of libraries too"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (
        demo_cmd,
        init_cmd,
        data_cmds,
        model_cmds,
        monitor_cmd,
        backtest_cmd,
        freshness_cmd,
        stack_cmds,
        runbook_cmds,
    ):
        module.register(sub)
    return parser


def next_step_for_code(code: str | None) -> str | None:
    """The next step for an error ``code`` (as saved in reports), if one is known."""
    for cls, step in NEXT_STEP.items():
        if code and cls.code == code:
            return step
    for cls, step in NEXT_STEP.items():  # a subclass's code: its nearest listed parent
        if code and any(sub.code == code for sub in _subclasses(cls)):
            return step
    return None


def _subclasses(cls: type[RetrainflowError]) -> list[type[RetrainflowError]]:
    out: list[type[RetrainflowError]] = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


def _next_step(exc: RetrainflowError) -> str | None:
    for cls in type(exc).__mro__:
        if cls in NEXT_STEP:
            return NEXT_STEP[cls]
    return None


def main(argv: Sequence[str] | None = None) -> int:
    from retrainflow.core.openmp import prepare_openmp

    prepare_openmp()  # before anything loads LightGBM (OpenMP reads OMP_WAIT_POLICY once)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if not args.verbose:
        from retrainflow import settings

        settings.quiet_third_party()
    try:
        return int(args.func(args) or 0)
    except RetrainflowError as exc:
        if os.environ.get("RETRAINFLOW_DEBUG"):
            raise
        print(f"error: {exc.message}", file=sys.stderr)
        step = _next_step(exc)
        if step:
            print(f"next: {step}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def run() -> None:
    """The ``retrainflow`` console script: :func:`main`, then a quick exit.

    A command that ran a pipeline holds a large heap (pandas, LightGBM, MLflow, Great
    Expectations, Airflow); the interpreter's final garbage collection walked all of it for
    ~11 s after the last line was printed (a CLI retrain on a loaded 2-core host; 0.5 s with
    the heap frozen). ``gc.freeze()`` moves every live object out of the collector's reach;
    atexit handlers, log and file flushing still run as usual.
    """
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
