"""``retrainflow ingest``'s progress line (the backtest's bar: tests/test_backtest.py); both are
:class:`retrainflow.cli.output.StreamProgress`."""

from __future__ import annotations

import io

from retrainflow.cli.data_cmds import ProgressLine
from retrainflow.cli.output import StreamProgress
from retrainflow.data.ingest import IngestProgress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _reads(name: str, total: int, steps: int) -> list[IngestProgress]:
    return [
        IngestProgress("read", name, rows=i * 100, done=i * total // steps, total=total)
        for i in range(1, steps + 1)
    ]


def test_bar() -> None:
    assert StreamProgress.bar(0.0) == "[" + "-" * 24 + "]"
    assert StreamProgress.bar(0.5) == "[" + "#" * 12 + "-" * 12 + "]"
    assert StreamProgress.bar(1.0) == "[" + "#" * 24 + "]"


def test_on_a_terminal_one_line_is_rewritten_and_ended() -> None:
    term = _Terminal()
    line = ProgressLine(term, interval=0.0)
    for event in _reads("a.csv", 1000, 4):
        line(event)
    line.close()
    text = term.getvalue()
    assert text.count("\r\033[K") == 4 and text.endswith("\n") and text.count("\n") == 1
    assert "[" + "#" * 24 + "] 100% a.csv: 400 rows" in text


def test_in_a_log_a_line_per_tenth_and_the_last_state_of_each_input() -> None:
    log = io.StringIO()
    line = ProgressLine(log)
    for event in _reads("a.csv", 1000, 50):
        line(event)
    # A query (size unknown) right after: the first report shows at once.
    line(IngestProgress("read", "query", rows=5_100, done=0, total=None))
    line(IngestProgress("read", "query", rows=5_200, done=0, total=None))
    line.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    a_lines = [x for x in lines if "a.csv" in x]
    # The input's first report, then one per tenth.
    assert len(a_lines) == 11 and a_lines[-1].endswith("100% a.csv: 5,000 rows")
    # The query's first report at once; its last (held back, < 5 s later) at the end.
    assert lines[-2:] == ["query: 5,100 rows", "query: 5,200 rows"]


def test_a_run_through_the_stack_shows_a_line_per_change_in_a_log() -> None:
    from retrainflow.airflow.cli_runs import _Progress

    log = io.StringIO()
    progress = _Progress(log)
    for text, t in (("queued", 0.4), ("queued", 0.9), ("running, 1/6", 2.2), ("success", 9.6)):
        progress.update(text, t)
    progress.close()
    assert log.getvalue().splitlines() == ["queued (0 s)", "running, 1/6 (2 s)", "success (10 s)"]

    term = _Terminal()  # a terminal: every look rewrites the line, which ends at close
    progress = _Progress(term)
    progress.update("queued", 0.4)
    progress.update("queued", 0.9)
    progress.close()
    assert term.getvalue() == "\r\033[Kqueued (0 s)\r\033[Kqueued (1 s)\n"
