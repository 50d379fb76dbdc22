"""Shared output helpers for CLI commands."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import IO, Any

from retrainflow.jsonsafe import json_safe


def add_timeout_arg(parser: argparse.ArgumentParser) -> None:
    """``--timeout`` of the commands that run a DAG (used when the run goes through the stack;
    the default is ``retrainflow.airflow.cli_runs.DEFAULT_TIMEOUT``, not imported to keep
    ``--help`` fast)."""
    parser.add_argument(
        "--timeout",
        type=float,
        default=1800.0,
        metavar="SECONDS",
        help="when the stack is up: how long to wait for the run (default %(default).0f); "
        "the run goes on in the stack after that",
    )


class StreamProgress:
    """Progress of a long command on a stream (stderr): on a terminal one line rewritten in
    place, elsewhere (a log, CI) whole lines. Subclasses decide when and what to show."""

    WIDTH = 24

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._open = False

    @classmethod
    def bar(cls, fraction: float) -> str:
        """``[#####-------]`` for ``fraction`` (0..1) of the work."""
        filled = int(fraction * cls.WIDTH)
        return f"[{'#' * filled}{'-' * (cls.WIDTH - filled)}]"

    def show(self, text: str) -> None:
        """Rewrite the line (terminal) or write a line."""
        if self.tty:
            self.stream.write("\r\033[K" + text)
            self._open = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the rewritten line (terminal)."""
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False


def print_json(payload: Any) -> None:
    print(json.dumps(json_safe(payload), indent=2, allow_nan=False))


def explain_failed_run(result: Any, what: str) -> None:
    """Say why a DAG run the CLI started failed: what is wrong (from the saved stage report, or
    the run's last error), what to try next, and where the report and the full log are."""
    from retrainflow.cli.main import next_step_for_code

    print(f"\n{what} run {result.run_id} of {result.dag_id} ended {result.state}.")
    report = result.failure_report
    failed = [t for t, s in result.task_states.items() if s == "failed"]
    stage = report["stage"] if report else (failed[0] if failed else "the run")
    err = (report or {}).get("error") or {}
    message = err.get("message") or result.error_line or "no error message was recorded"
    code = err.get("code")
    if not code and message.startswith("[") and "] " in message:  # "[invalid_mode] ..."
        code, message = message[1:].split("] ", 1)
    print(f"error: {stage} failed: {message}")
    step = next_step_for_code(code)
    if step:
        print(f"next: {step}")
    if report:
        print(f"report: {report['path']}")
    ui_url = getattr(result, "ui_url", None)  # set for a run that went through the stack
    if result.log_path:
        where = (
            f"the task's log; the run: {ui_url}" if ui_url else "RETRAINFLOW_DEBUG=1 prints it here"
        )
        print(f"log: {result.log_path} ({where})")
    elif ui_url:
        print(f"run: {ui_url}")


def fmt(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) or "-"
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{as_float:.4f}" if "." in str(value) else str(value)


def print_table(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], headers: Sequence[str] | None = None
) -> None:
    """A plain aligned text table."""
    headers = list(headers or columns)
    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
