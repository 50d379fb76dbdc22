"""Ingest a user's rows — CSV or Parquet files, or a SQL query — into a pipeline's source.

The rows are written as day partitions of the pipeline's time column into the
pipeline's source: the local Parquet lake (``date=YYYY-MM-DD/part-0.parquet``)
or the same layout in S3. A SQL source is the table itself and is refused.

How it keeps memory bounded and writes safely:

* inputs are read in chunks (``pandas.read_csv(chunksize=…)``, Parquet record
  batches, ``pandas.read_sql(chunksize=…)``); each chunk's times are parsed, the
  chunk is split by day and the pieces are buffered per day. When the buffers
  exceed ``spill_bytes`` they are spilled to temporary Parquet files in a hidden
  directory of the lake (``.ingest-*``; the system's temporary directory for S3),
  so a day spread over many chunks, or several files, still ends as one partition;
* nothing is published until every input has been read: an unparseable time, a
  time-zone mismatch or a day that already exists (without ``replace``) leaves
  the source untouched;
* then each day is merged into one Parquet file and published atomically (a
  rename into the lake, one upload to S3);
* a ledger ``_ingest_log.json`` beside the partitions records each input's
  SHA-256 and the days it wrote, so ingesting the same file again is a no-op.
  (Names starting with ``_`` or ``.`` are never partitions: only ``date=…``
  directories and keys are.)

Time zones follow the pipeline's ``time_zone`` and are never guessed: without
it the times must be naive (times with a UTC offset are refused: read as they
are, rows would move to other hours and days); with it they must carry their
offset or zone, and are stored zone-aware in that zone, so partitions are its
local days (the pull stage then makes them naive local times). Naive times for
a pipeline with a ``time_zone`` are refused: they do not say which zone they are in.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from retrainflow.data.sources import ParquetLakeSource, Source, make_source
from retrainflow.exceptions import (
    DataError,
    IngestError,
    PartitionExistsError,
    TimeColumnError,
    TimeZoneError,
)
from retrainflow.metering import measure

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from retrainflow.config import PipelineConfig

log = logging.getLogger(__name__)

#: Rows per chunk read from an input.
CHUNK_ROWS = 100_000
#: Buffered bytes (Arrow) after which the per-day buffers are spilled to temporary files.
SPILL_BYTES = 32 * 2**20
#: Rows per row group of a published partition.
ROW_GROUP_ROWS = 128 * 1024
#: The ingest ledger, beside the partitions.
LEDGER_NAME = "_ingest_log.json"

CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}
PARQUET_SUFFIXES = (".parquet", ".pq")
#: Compressed CSV: suffix -> opener of a binary file object.
_COMPRESSION = (".gz", ".bz2", ".xz")
#: A time of day followed by a UTC offset (``…10:00Z``, ``…10:00:00.5+01:00``, ``…-0500``,
#: ``… 10:00 UTC``).
_OFFSET_RE = r"\d:\d\d(?::\d\d(?:[.,]\d+)?)?\s*(?:Z|z|UTC|GMT|[+-]\d\d(?::?\d\d)?)$"
#: pandas writes a non-default index into Parquet as these columns: not data.
_INDEX_COLUMN_RE = re.compile(r"^__index_level_\d+__$")
#: Days named in a message before "and N more".
_MAX_LISTED = 10


@dataclass(frozen=True)
class IngestProgress:
    """One progress report: after each chunk read, and after each day published."""

    phase: Literal["read", "publish"]
    #: The input being read (its file name, or ``query``); ``""`` while publishing.
    name: str
    #: Rows read so far, over all inputs.
    rows: int
    #: Bytes of this input read so far (``read``), days published so far (``publish``).
    done: int
    #: Size of this input in bytes (``read``; ``None`` for a query), days to publish (``publish``).
    total: int | None

    @property
    def fraction(self) -> float | None:
        """``done / total`` in ``[0, 1]``, or ``None`` when the total is unknown."""
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


ProgressCallback = Callable[[IngestProgress], None]


@dataclass(frozen=True)
class InputOutcome:
    """What happened to one input (a file, or a query)."""

    #: The file's path, or ``sql: <query>``.
    name: str
    #: SHA-256 of the file's bytes (of the query's rows for SQL).
    sha256: str
    rows: int
    #: Days that hold rows of this input, sorted.
    days: list[date]
    #: True when the input had been ingested before and nothing was done.
    skipped: bool = False
    #: Why it was skipped (names the earlier ingest).
    reason: str = ""
    #: How the time column was parsed (``ISO8601``, a strftime format, ``mixed``, or the
    #: Arrow type when the column already held times).
    time_format: str = ""


@dataclass(frozen=True)
class IngestResult:
    """What one :func:`ingest_files` / :func:`ingest_sql` call did."""

    pipeline: str
    #: Where the partitions are (lake directory or ``s3://`` URI).
    uri: str
    #: Rows written (0 for a no-op).
    rows: int
    #: Days written that the source did not hold, sorted.
    days_new: list[date]
    #: Days the source held and that were overwritten (only with ``replace``), sorted.
    days_replaced: list[date]
    #: Days of inputs skipped because they had been ingested before, sorted.
    days_skipped: list[date]
    inputs: list[InputOutcome]
    #: Things the user should know (e.g. configured columns missing from a file).
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: Peak resident memory of this process during the call, in MiB.
    peak_rss_mb: float = 0.0

    @property
    def days_written(self) -> list[date]:
        return sorted([*self.days_new, *self.days_replaced])

    @property
    def noop(self) -> bool:
        """Nothing was written because every input had been ingested before."""
        return not self.days_written and all(i.skipped for i in self.inputs)

    @property
    def next_date(self) -> date | None:
        """The day after the newest day written: a ``--date`` whose window includes it."""
        written = self.days_written
        return written[-1] + timedelta(days=1) if written else None


# -- public API ---------------------------------------------------------------------------------


def ingest_files(
    config: PipelineConfig,
    paths: Sequence[Path | str],
    *,
    replace: bool = False,
    progress: ProgressCallback | None = None,
    chunk_rows: int = CHUNK_ROWS,
    spill_bytes: int = SPILL_BYTES,
) -> IngestResult:
    """Write the rows of CSV / Parquet files into the pipeline's source as day partitions.

    All files of one call are read first and their rows grouped by day together,
    so a day spread over several chunks or files ends as one partition; nothing
    is written unless every file could be read. A file whose content (SHA-256)
    the ledger already lists, with all its days still present, is skipped.

    Args:
        config: The pipeline: its ``time_column``, ``source`` and ``required_columns``.
        paths: ``.csv`` / ``.tsv`` (optionally ``.gz``, ``.bz2``, ``.xz``) or ``.parquet``
            / ``.pq`` files.
        replace: Overwrite days the source already holds (otherwise refused).
        progress: Called after each chunk read and each day published.
        chunk_rows: Rows per chunk read.
        spill_bytes: Buffered bytes after which the day buffers go to temporary files.

    Returns:
        Rows and days written, new / replaced / skipped, per-input outcomes, warnings,
        wall seconds and peak RSS.

    Raises:
        IngestError: A SQL source, a missing or unsupported file, a file that cannot be
            read or lacks the time column.
        PartitionExistsError: Days the source holds, without ``replace`` (names them).
        TimeColumnError: A missing or unparseable time (names the file, row and value).
        TimeZoneError: Times with a UTC offset for a naive pipeline, or the reverse.
    """
    files = [Path(p) for p in paths]
    if not files:
        raise IngestError("No file to ingest: name at least one CSV or Parquet file.")
    for file in files:
        _check_file(file)
    with measure() as cost:
        t0 = time.perf_counter()
        job = _Job(config, replace=replace, progress=progress, spill_bytes=spill_bytes)
        try:
            for file in files:
                job.add_file(file, chunk_rows)
            result = job.finish()
        finally:
            job.close()
    return _with_cost(result, time.perf_counter() - t0, cost.peak_rss_mb)


def ingest_sql(
    config: PipelineConfig,
    query: str,
    url: str,
    *,
    replace: bool = False,
    progress: ProgressCallback | None = None,
    chunk_rows: int = CHUNK_ROWS,
    spill_bytes: int = SPILL_BYTES,
) -> IngestResult:
    """Write the rows a SQL query returns into the pipeline's source as day partitions.

    The query's result is streamed in chunks (server-side cursor where the driver
    has one). Its rows are hashed as they are read: when the same rows were
    ingested before (and their days are still present), nothing is written.

    Args:
        config: The pipeline.
        query: A ``SELECT`` returning the pipeline's time column (and the others).
        url: SQLAlchemy URL of the database.
        replace: Overwrite days the source already holds (otherwise refused).
        progress: Called after each chunk read and each day published.
        chunk_rows: Rows per chunk fetched.
        spill_bytes: Buffered bytes after which the day buffers go to temporary files.

    Returns:
        As :func:`ingest_files`.

    Raises:
        IngestError: A SQL source, an invalid URL, or a query that fails.
        DataError: The database cannot be reached.
        PartitionExistsError, TimeColumnError, TimeZoneError: as :func:`ingest_files`.
    """
    with measure() as cost:
        t0 = time.perf_counter()
        job = _Job(config, replace=replace, progress=progress, spill_bytes=spill_bytes)
        try:
            job.add_sql(query, url, chunk_rows)
            result = job.finish()
        finally:
            job.close()
    return _with_cost(result, time.perf_counter() - t0, cost.peak_rss_mb)


def file_sha256(path: Path, block: int = 2**20) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            h.update(chunk)
    return h.hexdigest()


# -- the job ------------------------------------------------------------------------------------


def _with_cost(result: IngestResult, seconds: float, peak_rss_mb: float) -> IngestResult:
    from dataclasses import replace

    return replace(result, seconds=seconds, peak_rss_mb=peak_rss_mb)


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise IngestError(f"No such file: {path}.", file=str(path))
    if _file_kind(path) is None:
        raise IngestError(
            f"Cannot ingest {path}: use a CSV file ({', '.join(CSV_SUFFIXES)}, optionally "
            f"compressed: {', '.join(_COMPRESSION)}) or a Parquet file "
            f"({', '.join(PARQUET_SUFFIXES)}).",
            file=str(path),
        )


def _file_kind(path: Path) -> tuple[str, str | None] | None:
    """``("csv", separator)`` / ``("parquet", None)`` from the file's suffixes, or ``None``."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSION:
        suffixes = suffixes[:-1]
    if not suffixes:
        return None
    if suffixes[-1] in CSV_SUFFIXES:
        return "csv", CSV_SUFFIXES[suffixes[-1]]
    if suffixes[-1] in PARQUET_SUFFIXES and path.suffix.lower() in PARQUET_SUFFIXES:
        return "parquet", None
    return None


def _listed(days: Sequence[date]) -> str:
    shown = ", ".join(d.isoformat() for d in days[:_MAX_LISTED])
    more = len(days) - _MAX_LISTED
    return f"{shown} and {more} more" if more > 0 else shown


def _span(days: Sequence[date]) -> str:
    if not days:
        return "no days"
    if len(days) == 1:
        return f"1 day, {days[0]}"
    return f"{len(days)} days, {days[0]} .. {days[-1]}"


class _Job:
    """One ingest call: the source, the ledger, the time parser state and the day buffers."""

    def __init__(
        self,
        config: PipelineConfig,
        *,
        replace: bool,
        progress: ProgressCallback | None,
        spill_bytes: int,
    ) -> None:
        self.config = config
        self.replace = replace
        self.progress = progress
        self.source = make_source(config)
        if not isinstance(self.source, ParquetLakeSource) and not _is_s3(self.source):
            raise IngestError(
                f"Pipeline '{config.name}' reads the SQL table {self.source.uri}: that table is "
                f"its data, so there is nothing to ingest into. Load rows into the table with "
                f"the database's own tools, or point the pipeline at a Parquet lake "
                f"(source.kind: parquet) or S3 (source.kind: s3) to use `retrainflow ingest`.",
                pipeline=config.name,
            )
        self.present = set(self.source.partitions())
        self.ledger = _Ledger(self.source)
        self.tmp = _temp_dir(self.source)
        self.days = _DayBuffers(self.tmp, config.time_column, spill_bytes)
        self.outcomes: list[InputOutcome] = []
        self.warnings: list[str] = []
        self.rows = 0
        self.seen: dict[str, str] = {}  # sha256 -> name, within this call
        self.conflicts: set[date] = set()

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- inputs -------------------------------------------------------------------------------

    def _known(self, sha: str, name: str) -> InputOutcome | None:
        """An outcome "skipped" when ``sha`` was ingested before (this call or the ledger)."""
        if sha in self.seen:
            return InputOutcome(
                name, sha, 0, [], skipped=True, reason=f"same content as {self.seen[sha]}"
            )
        entry = self.ledger.find(sha)
        if entry is None:
            return None
        days = sorted(date.fromisoformat(d) for d in entry.get("days", []))
        missing = [d for d in days if d not in self.present]
        if missing:
            self.warnings.append(
                f"{name} was ingested on {entry.get('ingested_at', '?')}, but {len(missing)} of "
                f"its days are no longer in the source ({_listed(missing)}): ingesting it again"
            )
            return None
        return InputOutcome(
            name,
            sha,
            int(entry.get("rows", 0)),
            days,
            skipped=True,
            reason=f"already ingested on {entry.get('ingested_at', '?')} as "
            f"{entry.get('name', '?')} ({_span(days)})",
        )

    def add_file(self, path: Path, chunk_rows: int) -> None:
        name = str(path)
        sha = file_sha256(path)
        known = self._known(sha, name)
        if known is not None:
            self.outcomes.append(known)
            log.debug("%s: %s; skipped", name, known.reason)
            return
        self.seen[sha] = name
        kind, sep = _file_kind(path) or ("", None)
        size = path.stat().st_size
        parser = _TimeParser(self.config, name)
        chunks = (
            _csv_chunks(path, sep or ",", self.config.time_column, chunk_rows)
            if kind == "csv"
            else _parquet_chunks(path, chunk_rows)
        )
        rows, days = self._consume(path.name, chunks, parser, size, hasher=None)
        self.outcomes.append(InputOutcome(name, sha, rows, days, time_format=parser.used))

    def add_sql(self, query: str, url: str, chunk_rows: int) -> None:
        name = f"sql: {query}"
        hasher = hashlib.sha256()
        parser = _TimeParser(self.config, "the query's result")
        rows, days = self._consume(
            "query", _sql_chunks(query, url, chunk_rows), parser, None, hasher
        )
        sha = hasher.hexdigest()
        known = self._known(sha, name)
        if known is not None:
            self.days.discard()
            self.conflicts.clear()
            self.outcomes.append(known)
            return
        self.outcomes.append(InputOutcome(name, sha, rows, days, time_format=parser.used))

    def _consume(
        self,
        label: str,
        chunks: Generator[tuple[pd.DataFrame | pa.RecordBatch, int], None, None],
        parser: _TimeParser,
        size: int | None,
        hasher: Any,
    ) -> tuple[int, list[date]]:
        """Parse, split by day and buffer every chunk of one input."""
        import pandas as pd
        import pyarrow as pa

        tc = self.config.time_column
        rows = 0
        days: set[date] = set()
        checked = False
        try:
            for chunk, done in chunks:
                if isinstance(chunk, pd.DataFrame):
                    names = [str(c) for c in chunk.columns]
                    if not checked:
                        self._check_columns(names, parser.where)
                    if hasher is not None:
                        _hash_rows(hasher, chunk, names=not checked)
                    times = parser.parse(chunk[tc], rows)
                    table = _arrow_of(chunk.drop(columns=[tc]), parser.where)
                else:
                    names = chunk.schema.names
                    if not checked:
                        self._check_columns(names, parser.where)
                    table = pa.Table.from_batches([chunk])
                    times = parser.parse_arrow(table.column(tc), rows)
                    table = table.drop_columns([tc])
                checked = True
                table = _with_time(table, tc, times, names)
                write = self.replace or not self.conflicts
                found = self.days.add(table, _days_of(times), write=write)
                days |= found
                if not self.replace and found & self.present:
                    self.conflicts |= found & self.present
                    self.days.discard()  # the call will be refused: stop buffering
                rows += table.num_rows
                self.rows += table.num_rows
                if self.progress:
                    self.progress(IngestProgress("read", label, self.rows, done, size))
        finally:
            chunks.close()
        return rows, sorted(days)

    def _check_columns(self, columns: list[str], where: str) -> None:
        tc = self.config.time_column
        if tc not in columns:
            raise IngestError(
                f"{where} has no column '{tc}' (the time_column of pipeline "
                f"'{self.config.name}'); its columns are {columns}.",
                file=where,
            )
        lacking = [c for c in self.config.required_columns if c not in columns]
        if lacking:
            self.warnings.append(
                f"{where} lacks configured column(s) {', '.join(lacking)}; windows without "
                f"them will not pass validation"
            )

    # -- publish ------------------------------------------------------------------------------

    def finish(self) -> IngestResult:
        skipped_days = sorted({d for o in self.outcomes if o.skipped for d in o.days})
        if self.conflicts:
            days = sorted(self.conflicts)
            raise PartitionExistsError(
                f"Pipeline '{self.config.name}' already holds {len(days)} of the days in the "
                f"input ({_listed(days)}) in {self.source.uri}; nothing was written. Use "
                f"--replace to overwrite them.",
                days=[d.isoformat() for d in days],
                pipeline=self.config.name,
            )
        todo = self.days.day_list()
        new = [d for d in todo if d not in self.present]
        replaced = [d for d in todo if d in self.present]
        rows = 0
        for i, day in enumerate(todo):
            path, n = self.days.merge(day, self.tmp / "publish")
            self.source.write_partition_file(day, path)
            rows += n
            if self.progress:
                self.progress(IngestProgress("publish", "", self.rows, i + 1, len(todo)))
        written = [o for o in self.outcomes if not o.skipped]
        if written:
            self.ledger.record(written, replaced)
        log.debug(
            "Ingested %d rows into %s: %d new day(s), %d replaced, %d skipped",
            rows,
            self.source.uri,
            len(new),
            len(replaced),
            len(skipped_days),
        )
        return IngestResult(
            pipeline=self.config.name,
            uri=self.source.uri,
            rows=rows,
            days_new=new,
            days_replaced=replaced,
            days_skipped=skipped_days,
            inputs=list(self.outcomes),
            warnings=list(self.warnings),
        )


def _hash_rows(hasher: Any, frame: pd.DataFrame, *, names: bool) -> None:
    """Add ``frame``'s rows (and with ``names`` its column names) to ``hasher``.

    Numbers are hashed as floats, so the hash does not depend on how the rows were cut
    into chunks (a chunk with a missing value reads an integer column as floats).
    """
    import pandas as pd

    if names:
        hasher.update(",".join(map(str, frame.columns)).encode())
    numeric = [
        c
        for c in frame.columns
        if pd.api.types.is_numeric_dtype(frame[c].dtype) or pd.api.types.is_bool_dtype(frame[c])
    ]
    if numeric:
        frame = frame.astype(dict.fromkeys(numeric, "float64"))
    hasher.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())


def _arrow_of(frame: pd.DataFrame, where: str) -> pa.Table:
    """A chunk's columns as an Arrow table.

    Raises:
        IngestError: A column mixes values Arrow cannot hold in one type.
    """
    import pyarrow as pa

    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise IngestError(
            f"{where}: a column mixes kinds of values that cannot be stored together "
            f"({type(exc).__name__}: {exc}).",
            file=where,
        ) from None


def _is_s3(source: Source) -> bool:
    from retrainflow.data.s3 import S3ParquetSource

    return isinstance(source, S3ParquetSource)


def _temp_dir(source: Source) -> Path:
    """Where day buffers spill: a hidden directory in the lake (so publishing is a rename),
    or the system's temporary directory for S3."""
    if isinstance(source, ParquetLakeSource):
        source.root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".ingest-", dir=source.root))
    return Path(tempfile.mkdtemp(prefix="retrainflow-ingest-"))


# -- readers ------------------------------------------------------------------------------------


@contextmanager
def _counting_open(path: Path) -> Iterator[tuple[IO[bytes], IO[bytes]]]:
    """``(stream, raw)``: the file's (decompressed) bytes, and the raw file whose position
    tells how many bytes of the file have been read."""
    import bz2
    import gzip
    import lzma

    openers: dict[str, Callable[[IO[bytes]], Any]] = {
        ".gz": lambda raw: gzip.GzipFile(fileobj=raw),
        ".bz2": bz2.BZ2File,
        ".xz": lzma.LZMAFile,
    }
    with open(path, "rb") as raw:
        opener = openers.get(path.suffix.lower())
        if opener is None:
            yield raw, raw
            return
        with opener(raw) as stream:
            yield stream, raw


def _csv_chunks(
    path: Path, sep: str, time_column: str, chunk_rows: int
) -> Generator[tuple[pd.DataFrame, int], None, None]:
    """``(frame, bytes read)`` per chunk of a CSV file; the time column is read as text."""
    import pandas as pd

    with _counting_open(path) as (stream, raw):
        try:
            reader = pd.read_csv(
                stream,
                sep=sep,
                chunksize=chunk_rows,
                dtype={time_column: str},
                low_memory=False,
            )
            with reader:
                for frame in reader:
                    yield frame, raw.tell()
        except pd.errors.EmptyDataError:
            raise IngestError(
                f"{path} is empty (not even a header line).", file=str(path)
            ) from None
        except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError, ValueError) as exc:
            raise IngestError(
                f"{path} cannot be read as CSV: {type(exc).__name__}: {exc}", file=str(path)
            ) from None


def _parquet_chunks(
    path: Path, chunk_rows: int
) -> Generator[tuple[pa.RecordBatch, int], None, None]:
    """``(batch, approximate bytes read)`` per record batch of a Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # pre_buffer would read every row group's bytes ahead: the whole file in memory.
        pf = pq.ParquetFile(path, pre_buffer=False, buffer_size=2**20)
        total_rows = pf.metadata.num_rows
        size = path.stat().st_size
        columns = [n for n in pf.schema_arrow.names if not _INDEX_COLUMN_RE.match(n)]
        read = 0
        for batch in pf.iter_batches(batch_size=chunk_rows, columns=columns):
            read += batch.num_rows
            yield batch, (size * read // total_rows) if total_rows else size
    except (pa.ArrowException, OSError) as exc:
        raise IngestError(
            f"{path} cannot be read as Parquet: {type(exc).__name__}: {exc}", file=str(path)
        ) from None


def _sql_chunks(
    query: str, url: str, chunk_rows: int
) -> Generator[tuple[pd.DataFrame, int], None, None]:
    """``(frame, 0)`` per chunk of the query's result, streamed from the database."""
    import pandas as pd
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError, SQLAlchemyError

    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise IngestError(f"'{url}' is not a valid SQLAlchemy URL: {exc}") from None
    safe = parsed.render_as_string(hide_password=True)

    def first_line(exc: Exception) -> str:
        lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        line = lines[0] if lines else type(exc).__name__
        return line.replace(str(parsed.password), "***") if parsed.password else line

    engine = create_engine(parsed)
    try:
        try:
            conn = engine.connect()
        except (OperationalError, DBAPIError) as exc:
            raise DataError(
                f"Cannot connect to the database {safe}: {first_line(exc)}", url=safe
            ) from None
        with conn:
            conn = conn.execution_options(stream_results=True)
            try:
                for frame in pd.read_sql(text(query), conn, chunksize=chunk_rows):
                    yield frame, 0
            except SQLAlchemyError as exc:
                raise IngestError(
                    f"The query failed on {safe}: {first_line(exc)}", url=safe
                ) from None
    finally:
        engine.dispose()


# -- times --------------------------------------------------------------------------------------


class _TimeParser:
    """Parses one input's time column chunk by chunk, with one format for the whole input,
    and brings the times to the pipeline's representation: naive, or in its ``time_zone``."""

    def __init__(self, config: PipelineConfig, where: str) -> None:
        self.config = config
        self.column = config.time_column
        self.where = where
        self.time_zone = config.time_zone
        self.format: str | None = None
        #: The value the format was guessed from (the input's first time).
        self.format_from = ""
        self.used = ""

    def _bad(self, values: pd.Series, bad: pd.Series, first_row: int, what: str) -> TimeColumnError:
        import numpy as np

        positions = np.flatnonzero(bad.to_numpy())
        pos = int(positions[0])
        row = first_row + pos + 1
        value = values.iloc[pos]
        more = len(positions) - 1
        also = (
            f" ({more} more such row(s) in rows {first_row + 1:,}..{first_row + len(values):,})"
            if more
            else ""
        )
        shown = "an empty value" if _is_missing(value) else f"'{value}'"
        return TimeColumnError(
            f"{self.where}, row {row:,}: the time column '{self.column}' holds {shown}, {what}"
            f"{also}. Fix or drop those rows and ingest again; nothing was written.",
            file=self.where,
            row=row,
            value=str(value),
        )

    def parse(self, values: pd.Series, first_row: int) -> pd.Series:
        """Times of a pandas column (text, datetimes or dates); ``first_row`` rows came before."""
        import pandas as pd

        values = values.reset_index(drop=True)
        missing = values.isna()
        if missing.any():
            raise self._bad(values, missing, first_row, "but every row needs a time")
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            self.used = self.used or str(values.dtype)
            return self._normalize(values, values, first_row)
        if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
            raise TimeColumnError(
                f"The time column '{self.column}' of {self.where} holds numbers ({values.dtype}), "
                f"not times; write the times as text (e.g. ISO 8601 '2024-03-01 10:00:00') or as "
                f"a timestamp column.",
                file=self.where,
            )
        if len(values) and not isinstance(values.iloc[0], str):
            # datetime / date objects (SQL drivers, Parquet date columns)
            return self._from_objects(values, first_row)
        return self._from_text(values.astype(object), first_row)

    def parse_arrow(self, column: pa.ChunkedArray, first_row: int) -> pd.Series:
        """Times of an Arrow column (a Parquet file's)."""
        import pyarrow as pa

        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if pa.types.is_timestamp(column.type):
            self.used = self.used or str(column.type)
        return self.parse(column.to_pandas(), first_row)

    def _from_objects(self, values: pd.Series, first_row: int) -> pd.Series:
        import pandas as pd

        first = values.iloc[0]
        if not isinstance(first, date):  # datetime and pd.Timestamp are dates too
            raise TimeColumnError(
                f"The time column '{self.column}' of {self.where} holds "
                f"{type(first).__name__} values (row {first_row + 1:,}: {first!r}), not times; "
                f"write the times as text (ISO 8601) or as a timestamp column.",
                file=self.where,
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ts = pd.to_datetime(values, errors="coerce")
            except (TypeError, ValueError) as exc:  # naive and aware objects mixed
                raise TimeZoneError(
                    f"The time column '{self.column}' of {self.where} mixes times with and "
                    f"without a time zone ({exc}); nothing was written.",
                    file=self.where,
                ) from None
        self.used = self.used or "datetime objects"
        bad = ts.isna()
        if bad.any():
            raise self._bad(values, bad, first_row, "which is not a time")
        if ts.dtype == object:
            raise TimeZoneError(
                f"The time column '{self.column}' of {self.where} mixes time zones; nothing was "
                f"written.",
                file=self.where,
            )
        return self._normalize(ts, values, first_row)

    def _from_text(self, values: pd.Series, first_row: int) -> pd.Series:
        import pandas as pd
        import pyarrow as pa
        import pyarrow.compute as pc
        from pandas.tseries.api import guess_datetime_format

        if self.format is None and len(values):
            self.format_from = str(values.iloc[0]).strip()
            guess = guess_datetime_format(self.format_from)
            if guess is None:
                self.format = "mixed"
            elif guess.startswith("%Y-%m"):
                self.format = "ISO8601"
            else:
                self.format = guess
            self.used = self.format
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # mixed offsets: a FutureWarning; handled below
            ts = pd.to_datetime(values, format=self.format, errors="coerce")
        bad = ts.isna()
        if bad.any():
            how = "which is not a time"
            if self.format != "mixed":
                how += f" in the format of row 1 ('{self.format_from}': {self.format})"
            raise self._bad(values, bad, first_row, how)
        if ts.dtype == object or getattr(ts.dtype, "tz", None) is not None:
            # Some value has a UTC offset: pandas would give the others the first one's.
            has = pc.match_substring_regex(pa.array(values, pa.string()), _OFFSET_RE)
            without = pc.invert(has)
            if pc.any(without).as_py():
                pos = pc.index(without, True).as_py()
                with_pos = pc.index(has, True).as_py()
                raise TimeZoneError(
                    f"{self.where}: the time column '{self.column}' mixes times with a UTC "
                    f"offset (row {first_row + with_pos + 1:,}: '{values.iloc[with_pos]}') and "
                    f"without (row {first_row + pos + 1:,}: '{values.iloc[pos]}'); nothing was "
                    f"written. Write every time the same way.",
                    file=self.where,
                    row=first_row + pos + 1,
                )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ts = pd.to_datetime(values, format=self.format, utc=True)
        return self._normalize(ts, values, first_row)

    def _normalize(self, ts: pd.Series, values: pd.Series, first_row: int) -> pd.Series:
        """``ts`` as the pipeline stores times, in nanoseconds: naive without a ``time_zone``,
        converted to it (still zone-aware) with one.

        Raises:
            TimeZoneError: Times with an offset without ``time_zone``, naive times with it.
            TimeColumnError: A time outside what nanoseconds can hold.
        """
        import pandas as pd

        aware = getattr(ts.dtype, "tz", None) is not None
        zone = self.time_zone
        try:
            if aware and zone:
                return ts.dt.tz_convert(zone).dt.as_unit("ns")
            if not aware and not zone:
                return ts.astype("datetime64[ns]")
        except (pd.errors.OutOfBoundsDatetime, OverflowError) as exc:
            raise TimeColumnError(
                f"{self.where}: a time of the column '{self.column}' lies outside the years "
                f"1677-2262 that can be stored ({exc}); nothing was written.",
                file=self.where,
            ) from None
        example = f"row {first_row + 1:,}: '{values.iloc[0]}'"
        name = self.config.name
        if aware:
            raise TimeZoneError(
                f"{self.where}: the time column '{self.column}' holds times with a UTC offset "
                f"({example}) but the pipeline '{name}' is naive (no time_zone): stored as "
                f"they are, its rows would shift to other hours and days, so nothing was "
                f"written. Set time_zone to the IANA zone whose local days partition the data "
                f"(e.g. time_zone: UTC or Europe/Paris) to convert them, or write naive local "
                f"times.",
                file=self.where,
                column=self.column,
            )
        raise TimeZoneError(
            f"{self.where}: the time column '{self.column}' holds naive times ({example}) but "
            f"the pipeline '{name}' sets time_zone '{zone}', which converts zone-aware ones: a "
            f"naive time does not say which zone it is in, so nothing was written. Write the "
            f"times with their UTC offset, or remove time_zone if they already are local times.",
            file=self.where,
            column=self.column,
            time_zone=zone,
        )


def _is_missing(value: Any) -> bool:
    import pandas as pd

    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _days_of(times: pd.Series) -> np.ndarray:
    """The calendar day of each time (in its own zone when it has one), as ``datetime64[D]``."""
    if getattr(times.dtype, "tz", None) is not None:
        times = times.dt.tz_localize(None)
    return times.to_numpy().astype("datetime64[D]")


def _with_time(table: pa.Table, time_column: str, times: pd.Series, order: list[str]) -> pa.Table:
    """``table`` with the parsed ``times`` as the time column, columns in ``order``."""
    import pyarrow as pa

    table = table.append_column(time_column, pa.array(times))
    names = [n for n in order if n in table.column_names]
    return table.select(names).replace_schema_metadata(None)


# -- day buffers --------------------------------------------------------------------------------


def _merge_types(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    """One type for a column that chunks or files typed ``a`` and ``b``: the wider number,
    else text (as reading the whole file at once would give)."""
    import pyarrow as pa

    t = pa.types
    if a.equals(b) or t.is_null(b):
        return a
    if t.is_null(a):
        return b
    if t.is_dictionary(a):
        return _merge_types(a.value_type, b)
    if t.is_dictionary(b):
        return _merge_types(a, b.value_type)
    if t.is_integer(a) and t.is_integer(b):
        return pa.int64()
    if t.is_timestamp(a) and t.is_timestamp(b) and a.tz == b.tz:
        return pa.timestamp("ns", a.tz)
    if (t.is_integer(a) or t.is_floating(a)) and (t.is_integer(b) or t.is_floating(b)):
        return pa.float64()
    if t.is_large_string(a) or t.is_large_string(b):
        return pa.large_string()
    return pa.string()


class _DayBuffers:
    """Rows grouped by day: in memory up to ``spill_bytes``, then in temporary Parquet files."""

    def __init__(self, directory: Path, time_column: str, spill_bytes: int) -> None:
        self.dir = directory
        self.time_column = time_column
        self.spill_bytes = spill_bytes
        self.schema: pa.Schema | None = None
        self.buffers: dict[date, list[pa.Table]] = {}
        self.spills: dict[date, list[Path]] = {}
        self.rows: dict[date, int] = {}
        self.buffered = 0
        self.spill_count = 0

    def _unify(self, schema: pa.Schema) -> None:
        import pyarrow as pa

        if self.schema is None:
            self.schema = schema
            return
        if schema.equals(self.schema):
            return
        fields = {f.name: f.type for f in self.schema}
        for f in schema:
            fields[f.name] = _merge_types(fields[f.name], f.type) if f.name in fields else f.type
        self.schema = pa.schema([pa.field(n, typ) for n, typ in fields.items()])

    def _conform(self, table: pa.Table, schema: pa.Schema) -> pa.Table:
        """``table`` with ``schema``'s columns and types (absent columns all null)."""
        import pyarrow as pa

        if table.schema.equals(schema):
            return table
        columns = []
        for f in schema:
            if f.name in table.column_names:
                col = table.column(f.name)
                columns.append(col if col.type.equals(f.type) else col.cast(f.type))
            else:
                columns.append(pa.nulls(table.num_rows, f.type))
        return pa.Table.from_arrays(columns, schema=schema)

    def add(self, table: pa.Table, days: np.ndarray, *, write: bool = True) -> set[date]:
        """Buffer ``table``'s rows under their ``days``; return the days seen. With
        ``write=False`` the rows are only counted (the call is going to be refused)."""
        import numpy as np

        if table.num_rows == 0:
            return set()
        if np.all(days[:-1] <= days[1:]):
            ordered, sorted_days = table, days
        else:
            order = np.argsort(days, kind="stable")
            ordered, sorted_days = table.take(order), days[order]
        unique, starts = np.unique(sorted_days, return_index=True)
        found = {d.item() for d in unique}
        if not write:
            return found
        self._unify(ordered.schema)
        bounds = [*starts.tolist(), len(sorted_days)]
        for day, a, b in zip(unique, bounds, bounds[1:], strict=False):
            key: date = day.item()
            self.buffers.setdefault(key, []).append(ordered.slice(a, b - a))
            self.rows[key] = self.rows.get(key, 0) + (b - a)
        self.buffered += ordered.nbytes
        if self.buffered > self.spill_bytes:
            self.spill()
        return found

    def spill(self) -> None:
        """Write every day's buffered rows to a new temporary file of that day."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        assert self.schema is not None
        for day, pieces in self.buffers.items():
            path = self.dir / f"{day.isoformat()}.{self.spill_count:05d}.parquet"
            table = pa.concat_tables([self._conform(p, self.schema) for p in pieces])
            pq.write_table(table, path, row_group_size=ROW_GROUP_ROWS)
            self.spills.setdefault(day, []).append(path)
        self.spill_count += 1
        self.buffers.clear()
        self.buffered = 0

    def discard(self) -> None:
        """Forget every buffered row (the call will write nothing)."""
        for paths in self.spills.values():
            for path in paths:
                path.unlink(missing_ok=True)
        self.buffers.clear()
        self.spills.clear()
        self.rows.clear()
        self.buffered = 0

    def day_list(self) -> list[date]:
        return sorted(self.rows)

    def merge(self, day: date, directory: Path) -> tuple[Path, int]:
        """One Parquet file of the day's rows, in input order; returns it and its row count."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        assert self.schema is not None
        schema = self.schema
        directory.mkdir(parents=True, exist_ok=True)
        out = directory / f"{day.isoformat()}.parquet"
        rows = 0
        pending: list[pa.Table] = []
        pending_rows = 0
        with pq.ParquetWriter(out, schema) as writer:

            def flush() -> None:
                nonlocal pending, pending_rows
                if pending:
                    writer.write_table(pa.concat_tables(pending), row_group_size=ROW_GROUP_ROWS)
                pending, pending_rows = [], 0

            def pieces() -> Iterator[pa.Table]:
                for path in self.spills.pop(day, []):
                    pf = pq.ParquetFile(path)
                    for i in range(pf.num_row_groups):
                        yield pf.read_row_group(i)
                    path.unlink()
                yield from self.buffers.pop(day, [])

            for piece in pieces():
                piece = self._conform(piece, schema)
                pending.append(piece)
                pending_rows += piece.num_rows
                rows += piece.num_rows
                if pending_rows >= ROW_GROUP_ROWS:
                    flush()
            flush()
        return out, rows


# -- ledger -------------------------------------------------------------------------------------


class _Ledger:
    """``_ingest_log.json`` beside the partitions: what each ingested input wrote.

    ``{"version": 1, "inputs": [{"sha256", "name", "rows", "days", "replaced",
    "ingested_at"}, …]}``, rewritten whole (atomically: a rename, or one ``PutObject``).
    """

    def __init__(self, source: Source) -> None:
        self.source = source
        self._data: dict[str, Any] | None = None

    @property
    def uri(self) -> str:
        return f"{self.source.uri}/{LEDGER_NAME}"

    def _load(self) -> dict[str, Any]:
        if self._data is None:
            text = self._read()
            if text is None:
                self._data = {"version": 1, "inputs": []}
            else:
                try:
                    data = json.loads(text)
                    if not isinstance(data, dict) or not isinstance(data.get("inputs"), list):
                        raise ValueError("no 'inputs' list")
                except ValueError as exc:
                    raise IngestError(
                        f"The ingest ledger {self.uri} is damaged ({exc}). Move it away to start "
                        f"a new one (ingested files will then not be recognised again).",
                        file=self.uri,
                    ) from None
                self._data = data
        return self._data

    def find(self, sha: str) -> dict[str, Any] | None:
        for entry in reversed(self._load()["inputs"]):
            if isinstance(entry, dict) and entry.get("sha256") == sha:
                return entry
        return None

    def record(self, outcomes: list[InputOutcome], replaced: list[date]) -> None:
        data = self._load()
        now = datetime.now(UTC).isoformat(timespec="seconds")
        replaced_set = set(replaced)
        for o in outcomes:
            data["inputs"].append(
                {
                    "sha256": o.sha256,
                    "name": o.name,
                    "rows": o.rows,
                    "days": [d.isoformat() for d in o.days],
                    "replaced": [d.isoformat() for d in o.days if d in replaced_set],
                    "ingested_at": now,
                }
            )
        self._write(json.dumps(data, indent=1))

    def _read(self) -> str | None:
        source = self.source
        if isinstance(source, ParquetLakeSource):
            path = source.root / LEDGER_NAME
            return path.read_text() if path.is_file() else None
        from botocore.exceptions import BotoCoreError, ClientError

        s3: Any = source
        try:
            body = s3.client.get_object(Bucket=s3.bucket, Key=f"{s3.prefix}{LEDGER_NAME}")["Body"]
            return str(body.read().decode())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise DataError(f"Cannot read the ingest ledger {self.uri}: {exc}") from None
        except BotoCoreError as exc:
            raise DataError(f"Cannot read the ingest ledger {self.uri}: {exc}") from None

    def _write(self, text: str) -> None:
        source = self.source
        if isinstance(source, ParquetLakeSource):
            path = source.root / LEDGER_NAME
            tmp = source.root / f".{LEDGER_NAME}.{os.getpid()}.tmp"  # the umask's permissions
            tmp.write_text(text)
            os.replace(tmp, path)
            return
        from botocore.exceptions import BotoCoreError, ClientError

        s3: Any = source
        try:
            s3.client.put_object(
                Bucket=s3.bucket, Key=f"{s3.prefix}{LEDGER_NAME}", Body=text.encode()
            )
        except (ClientError, BotoCoreError) as exc:
            raise DataError(f"Cannot write the ingest ledger {self.uri}: {exc}") from None
