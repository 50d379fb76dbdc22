"""Data and config commands: ``seed``, ``ingest``, ``fetch-data``, ``validate-config``."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path
from typing import IO, TYPE_CHECKING

from retrainflow.cli.output import StreamProgress, print_table

if TYPE_CHECKING:
    from retrainflow.data.ingest import IngestProgress, IngestResult

#: Data sets that are downloaded on request (the others ship with the installed packages),
#: with the ``seed`` range that covers all of them.
FETCHABLE = {"flights3m": "--until 2001-06-30"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("seed", help="write a demo data set's days into the pipeline's source")
    p.add_argument("pipeline")
    p.add_argument(
        "--until", required=True, type=date.fromisoformat, help="last day to write (YYYY-MM-DD)"
    )
    p.add_argument("--since", type=date.fromisoformat, help="first day to write")
    p.set_defaults(func=seed_cmd)

    p = sub.add_parser(
        "ingest",
        help="write the rows of CSV / Parquet files (or a SQL query) into the pipeline's source "
        "as day partitions",
        description="Write the rows of CSV / Parquet files, or of a SQL query (--sql, --url), into "
        "the pipeline's source as day partitions of its time column. New days are added; days "
        "the source holds are refused unless --replace. A file ingested before is skipped.",
    )
    p.add_argument("pipeline")
    p.add_argument(
        "files",
        nargs="*",
        type=Path,
        metavar="FILE",
        help="CSV (.csv, .tsv; may be .gz, .bz2, .xz compressed) or Parquet (.parquet, .pq)",
    )
    p.add_argument("--sql", metavar="QUERY", help="read the rows this query returns instead")
    p.add_argument("--url", metavar="URL", help="SQLAlchemy URL of the database --sql reads")
    p.add_argument("--replace", action="store_true", help="overwrite days the source already holds")
    p.add_argument(
        "--chunk-rows", type=int, metavar="N", help="rows read per chunk (default 100000)"
    )
    p.set_defaults(func=ingest_cmd)

    p = sub.add_parser(
        "fetch-data", help="download a demo data set that is not bundled (flights3m: from npm)"
    )
    p.add_argument("dataset", choices=sorted(FETCHABLE), help="the data set to download")
    p.set_defaults(func=fetch_data_cmd)

    p = sub.add_parser(
        "validate-config", help="check pipeline YAML files (all of config/pipelines by default)"
    )
    p.add_argument("paths", nargs="*", type=Path)
    p.add_argument(
        "--no-data",
        action="store_true",
        help="skip the check that every configured column exists in the source's newest partition",
    )
    p.set_defaults(func=validate_config_cmd)


def seed_cmd(args: argparse.Namespace) -> int:
    from retrainflow.config import find_config
    from retrainflow.data.seed import seed

    cfg = find_config(args.pipeline)
    result = seed(cfg, args.until, since=args.since)
    print(
        f"{args.pipeline}: wrote {result.days_written} day(s), {result.rows_written} rows "
        f"(skipped {result.days_skipped} already present)"
    )
    return 0


def ingest_cmd(args: argparse.Namespace) -> int:
    from retrainflow.config import find_config
    from retrainflow.data.ingest import ingest_files, ingest_sql
    from retrainflow.exceptions import UserError

    if bool(args.files) == bool(args.sql):
        raise UserError(
            "Name the FILEs to ingest, or give --sql QUERY with --url URL (one of the two)."
        )
    if args.sql and not args.url:
        raise UserError("--sql needs --url (the SQLAlchemy URL of the database).")
    if args.url and not args.sql:
        raise UserError("--url goes with --sql QUERY.")
    if args.chunk_rows is not None and args.chunk_rows < 1:
        raise UserError(f"--chunk-rows must be >= 1; got {args.chunk_rows}")
    cfg = find_config(args.pipeline)
    options = {} if args.chunk_rows is None else {"chunk_rows": args.chunk_rows}
    bar = ProgressLine(sys.stderr)
    try:
        if args.sql:
            result = ingest_sql(
                cfg, args.sql, args.url, replace=args.replace, progress=bar, **options
            )
        else:
            result = ingest_files(cfg, args.files, replace=args.replace, progress=bar, **options)
    finally:
        bar.close()
    print_ingest_summary(args.pipeline, result)
    return 0


def print_ingest_summary(pipeline: str, result: IngestResult) -> None:
    """Warnings, what each skipped input was, rows and days, where, and the next command."""
    for text in result.warnings:
        print(f"warning: {text}.")
    for outcome in result.inputs:
        if outcome.skipped:
            print(f"{outcome.name}: {outcome.reason}; nothing to do.")
    if result.noop:
        print(f"{pipeline}: no new rows ({result.uri}).")
        return
    formats = sorted({o.time_format for o in result.inputs if not o.skipped and o.time_format})
    parsed = f"; times read as {', '.join(formats)}" if formats else ""
    print(
        f"{pipeline}: {result.rows:,} rows into {result.uri} in {result.seconds:.1f} s "
        f"(peak RSS {result.peak_rss_mb:,.0f} MB){parsed}"
    )
    written = result.days_written
    span = f" ({written[0]} .. {written[-1]})" if written else ""
    print(
        f"days: {len(result.days_new)} new, {len(result.days_replaced)} replaced, "
        f"{len(result.days_skipped)} skipped{span}"
    )
    if result.next_date:
        print(f"next: retrainflow retrain {pipeline} --date {result.next_date}")


class ProgressLine(StreamProgress):
    """Ingest progress on a stream: one line rewritten in place on a terminal; otherwise a
    line per tenth of each input and of publishing (every few seconds when the size of the
    input is unknown, as for a query)."""

    def __init__(self, stream: IO[str], interval: float = 0.2, quiet_interval: float = 5.0) -> None:
        super().__init__(stream)
        self.interval = interval if self.tty else quiet_interval
        self._last = 0.0
        self._key: tuple[str, str] | None = None
        self._tenth = -1
        #: The newest line not shown (no terminal), shown before the next input's or at the end.
        self._pending = ""

    def __call__(self, p: IngestProgress) -> None:
        fraction = p.fraction
        what = "publishing" if p.phase == "publish" else p.name
        detail = f"{p.done:,}/{p.total:,} days" if p.phase == "publish" else f"{p.rows:,} rows"
        text = f"{what}: {detail}"
        if fraction is not None:
            text = f"{self.bar(fraction)} {fraction:4.0%} {text}"
        now = time.monotonic()
        key = (p.phase, what)
        changed = key != self._key
        tenth = int(fraction * 10) if fraction is not None else -1
        if self.tty:
            due = changed or fraction == 1.0 or now - self._last >= self.interval
        elif fraction is None:
            due = changed or now - self._last >= self.interval
        else:
            due = changed or tenth > self._tenth
        self._key = key
        if not due:
            self._pending = text
            return
        self._last, self._tenth = now, tenth
        if not self.tty and changed and self._pending:
            self.show(self._pending)
        self.show(text)
        self._pending = ""

    def close(self) -> None:
        """End the rewritten line (terminal), or show the last state (no terminal)."""
        if self._pending and not self.tty:
            self.show(self._pending)
            self._pending = ""
        super().close()


def fetch_data_cmd(args: argparse.Namespace) -> int:
    from retrainflow.data import flights3m

    # argparse allows only the names of FETCHABLE; flights3m is the only one so far.
    path = flights3m.fetch_flights3m()
    print(f"{args.dataset}: {path} ({path.stat().st_size:,} bytes, SHA-256 verified)")
    print(f"next: retrainflow seed {args.dataset} {FETCHABLE[args.dataset]}")
    return 0


def validate_config_cmd(args: argparse.Namespace) -> int:
    from retrainflow.config import config_paths, config_warnings, load_config
    from retrainflow.exceptions import ConfigError

    paths = args.paths or config_paths()
    rows, failed, warnings = [], 0, []
    for path in paths:
        try:
            cfg = load_config(path)
            status = "ok (data not checked: --no-data)" if args.no_data else "ok"
            if not args.no_data and not check_columns_exist(cfg, path):
                status = "ok (no data yet: only the file was checked)"
            rows.append({"file": str(path), "pipeline": cfg.name, "status": status})
            warnings += [f"warning: {path}: {text}." for text in config_warnings(cfg)]
        except ConfigError as exc:
            failed += 1
            rows.append({"file": str(path), "pipeline": "-", "status": exc.message})
    if not rows:
        print("no pipeline configs found")
        return 1
    print_table(rows, ["file", "pipeline", "status"])
    for line in warnings:  # valid, but known to go wrong: said, not failed
        print(line)
    return 1 if failed else 0


def check_columns_exist(cfg, path: Path) -> bool:
    """Raise ConfigError when a configured column is absent from the newest partition, or
    the target's values there do not fit the task (the rule ``retrainflow init`` applies
    too: :func:`retrainflow.data.profile.target_problem`). Returns False when the source
    holds no data yet (nothing was checked)."""
    from retrainflow.data.profile import target_problem
    from retrainflow.data.sources import make_source
    from retrainflow.exceptions import ConfigError

    source = make_source(cfg)
    days = source.partitions()
    if not days:
        return False
    newest = source.read_days(days[-1:])
    columns = set(newest.columns)
    named = {
        "target": [cfg.target],
        "time_column": [cfg.time_column],
        "features.numeric": cfg.features.numeric,
        "features.categorical": cfg.features.categorical,
    }
    for field, cols in named.items():
        for i, col in enumerate(cols):
            if col not in columns:
                where = field if field in ("target", "time_column") else f"{field}[{i}]"
                raise ConfigError(
                    f"column '{col}' is not in the data of {source.uri} "
                    f"(newest partition {days[-1]}).",
                    file=path,
                    field=where,
                )
    problem = target_problem(cfg.task, cfg.target, newest[cfg.target])
    if problem is not None:
        raise ConfigError(
            f"{problem} (in the data of {source.uri}, newest partition {days[-1]}).",
            file=path,
            field="task",
        )
    return True
