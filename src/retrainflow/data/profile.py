"""Profile a CSV or Parquet file into a commented pipeline config (``retrainflow init``).

:func:`init_pipeline` reads a bounded sample of the file, decides what each column
is, and writes ``<config dir>/<name>.yaml`` with a comment beside every choice, so
that a data engineer can read why and change what they know better. PyYAML drops
comments, so the text is built here line by line (:func:`render_config`) and then
checked with :func:`retrainflow.config.parse_config` before it is written.

What is read:

* The time column of every row, streamed (CSV chunks, Parquet record batches; only
  counts per day are kept): the exact span, rows per day and newest day.
* A sample of at most :data:`SAMPLE_ROWS` rows of every column, spread over the file:
  a Parquet file gives evenly spaced row groups (enough for the sample, and at least
  :data:`MIN_ROW_GROUPS`), of which every k-th row is kept; a CSV file is read in
  chunks, keeping every k-th row (k doubles whenever the sample grows past the
  limit). The YAML says how many rows were profiled.

The rules (each restated in the YAML it writes):

* Features by dtype: numbers are numeric, except integers with at most
  :data:`MAX_INT_CATEGORIES` distinct values (categorical) and integer IDs (a name
  such as ``id`` / ``user_id`` with mostly distinct values, or a strictly increasing
  row counter). Strings and booleans are categorical, except those with more than
  :data:`MAX_CATEGORIES` values or with more distinct values than half their rows
  (IDs, free text) and date-like strings. Constant and always-null columns, and
  names LightGBM refuses (``[]{}":,``), are left out. Left-out columns stay in the
  expectations, so the column set is still checked. The time column and the target
  are never features.
* Calendar ``time_parts`` by the time resolution: timestamps within the day give
  ``hour, day_of_week``; daily rows ``day_of_week, month``; weekly or monthly rows
  ``month``.
* Expectations: the observed type; ``nullable: false`` when no null was seen, else
  ``max_null_fraction`` = max(2 x seen, seen + 5 %) rounded up to 5 % (none at 50 %
  or more); numeric ranges are the observed min..max widened by
  :data:`RANGE_MARGIN` x (max - min) on each side, never below 0 for a column that
  never was, rounded outwards; categoricals with at most :data:`MAX_ALLOWED` values
  list them.
* The task, when not given: booleans or exactly two values (0/1, or two labels that
  map to 0/1) make ``binary_classification``; numbers with more values make
  ``regression``. A task that does not fit the target is refused
  (:func:`target_problem`, the rule ``validate-config`` applies to stored data too).
* Windows: ``window_days`` = a third of the span, at most 60 days (scaled by the
  step of coarser-than-daily data), ``holdout_days`` = 7 (4 steps of coarser data);
  sparse data gets more days, so that the holdout holds at least
  :data:`MIN_HOLDOUT_ROWS` and the window :data:`MIN_WINDOW_ROWS` rows (capped at a
  sixth and a half of the span); ``min_rows`` = half a typical week of rows, at least
  half the 200-row minimum, at most half the holdout's rows.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from retrainflow.exceptions import (
    ConfigExistsError,
    InvalidPipelineNameError,
    ProfileError,
    TaskMismatchError,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from retrainflow.config import PipelineConfig

__all__ = [
    "SAMPLE_ROWS",
    "ColumnProfile",
    "Draft",
    "FileProfile",
    "InitResult",
    "TargetProfile",
    "TimeProfile",
    "binary_labels",
    "check_pipeline_name",
    "draft_settings",
    "init_pipeline",
    "profile_file",
    "render_config",
    "target_problem",
]

Task = Literal["binary_classification", "regression"]
TASKS: tuple[Task, ...] = ("binary_classification", "regression")

#: At most this many rows of every column are profiled (the time column is read whole).
SAMPLE_ROWS = 200_000
#: A large Parquet file is sampled from at least this many evenly spaced row groups.
MIN_ROW_GROUPS = 10
#: Rows per CSV chunk / Parquet record batch while streaming.
CHUNK_ROWS = 50_000
#: Integer columns with at most this many distinct values are categorical.
MAX_INT_CATEGORIES = 10
#: String columns with more distinct values than this are left out (IDs, free text).
MAX_CATEGORIES = 200
#: Categoricals with at most this many values list them as ``allowed``.
MAX_ALLOWED = 20
#: Numeric ranges are widened by this share of the observed range on each side.
RANGE_MARGIN = 0.5
#: Characters LightGBM refuses in a feature name.
LIGHTGBM_BAD_CHARS = frozenset('[]{}":,')

_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.xz", ".csv.zst")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_ID_NAME = re.compile(r"(^|[_\W])(id|uuid|guid|key)$|^(id|uuid|guid)([_\W]|$)|[a-z]Id$|ID$")
_DATE_TEXT = re.compile(r"^\s*\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?")
_POSITIVE = {"1", "yes", "y", "true", "t", "positive", "pos"}
_NEGATIVE = {"0", "no", "n", "false", "f", "negative", "neg"}


# -- what a profile holds -------------------------------------------------------------------


@dataclass(frozen=True)
class TimeProfile:
    """The time column over the whole file.

    Attributes:
        column: Its name.
        first: The oldest timestamp (naive, in ``time_zone`` when that is set).
        last: The newest timestamp.
        rows: Rows with a parsed timestamp.
        nulls: Rows without one.
        unparsed: Non-null values that are not timestamps; ``examples`` shows a few.
        days_with_rows: Calendar days that hold rows.
        median_day_rows: Median rows of a day that holds rows.
        resolution: ``sub-hourly``, ``hourly``, ``daily``, ``weekly`` or ``monthly``.
        step_days: Median gap between days with rows (1 for daily-or-finer data).
        time_zone: IANA zone of zone-aware timestamps (``UTC`` for fixed offsets).
    """

    column: str
    first: datetime
    last: datetime
    rows: int
    nulls: int
    unparsed: int
    examples: list[str]
    days_with_rows: int
    median_day_rows: int
    resolution: Literal["sub-hourly", "hourly", "daily", "weekly", "monthly"]
    step_days: int
    time_zone: str | None

    @property
    def first_day(self) -> date:
        return self.first.date()

    @property
    def last_day(self) -> date:
        return self.last.date()

    @property
    def end(self) -> date:
        """The day after the newest day: the exclusive end of a window over all the rows."""
        return self.last_day + timedelta(days=1)

    @property
    def span_days(self) -> int:
        """Calendar days from the first day to the last, both included."""
        return (self.last_day - self.first_day).days + 1

    @property
    def rows_per_day(self) -> float:
        """Rows per calendar day of the span (days without rows count)."""
        return self.rows / self.span_days

    @property
    def within_day(self) -> bool:
        return self.resolution in ("sub-hourly", "hourly")


@dataclass(frozen=True)
class ColumnProfile:
    """One column of the sample and the role chosen for it.

    Attributes:
        name: The column.
        dtype: Its pandas dtype in the sample.
        type: The config type (``int``, ``float``, ``str``, ``bool``, ``datetime``), or
            None when the stored type may vary (integers with nulls, mixed values).
        role: ``numeric`` or ``categorical`` (a feature), or ``left_out``.
        reason: Why, in a few words (the YAML comment).
        nulls: Null rows in the sample.
        rows: Rows in the sample.
        distinct: Distinct non-null values.
        low: Smallest value (numeric columns).
        high: Largest value (numeric columns).
        values: The sorted values, when there are at most :data:`MAX_ALLOWED`.
        integral: Every value is a whole number (numeric columns).
    """

    name: str
    dtype: str
    type: Literal["int", "float", "str", "bool", "datetime"] | None
    role: Literal["numeric", "categorical", "left_out"]
    reason: str
    nulls: int
    rows: int
    distinct: int
    low: float | None = None
    high: float | None = None
    values: list[Any] | None = None
    integral: bool = False

    @property
    def null_fraction(self) -> float:
        return self.nulls / self.rows if self.rows else 0.0


@dataclass(frozen=True)
class TargetProfile:
    """The target column and the task that fits it.

    Attributes:
        column: Its name.
        task: The task (given, or inferred).
        inferred: True when the task was inferred from the values.
        dtype: Its pandas dtype in the sample.
        nulls: Null rows in the sample.
        rows: Rows in the sample.
        distinct: Distinct non-null values.
        shown: The values, as :func:`_values_text` words them.
        labels: For two stored values other than 0/1: ``(negative, positive)``, which
            must be stored as 0 and 1 before the pipeline can train on them.
        low: Smallest value (regression).
        high: Largest value (regression).
        std: Standard deviation (regression).
        integral: All values are whole numbers (regression).
    """

    column: str
    task: Task
    inferred: bool
    dtype: str
    nulls: int
    rows: int
    distinct: int
    shown: str
    labels: tuple[Any, Any] | None = None
    low: float | None = None
    high: float | None = None
    std: float | None = None
    integral: bool = False

    @property
    def mapping(self) -> str | None:
        """How stored labels become 0/1 (``'yes' as 1 and 'no' as 0``); None when no need."""
        if self.labels is None:
            return None
        negative, positive = self.labels
        return f"{_word(positive)} as 1 and {_word(negative)} as 0"


@dataclass(frozen=True)
class FileProfile:
    """What :func:`profile_file` found.

    Attributes:
        path: The data file.
        format: ``csv`` or ``parquet``.
        total_rows: Rows in the file.
        sampled_rows: Rows of the sample every column was profiled on.
        sampling: How the sample was drawn, in words.
        time: The time column.
        target: The target and its task.
        columns: Every other column, in file order.
    """

    path: Path
    format: Literal["csv", "parquet"]
    total_rows: int
    sampled_rows: int
    sampling: str
    time: TimeProfile
    target: TargetProfile
    columns: list[ColumnProfile]

    def role(self, role: str) -> list[ColumnProfile]:
        return [c for c in self.columns if c.role == role]


@dataclass(frozen=True)
class Draft:
    """The settings chosen from a profile (rendered by :func:`render_config`)."""

    name: str
    time_parts: list[str]
    window_days: int
    holdout_days: int
    min_rows: int
    rows_per_week: float
    num_leaves: int
    min_child_samples: int
    primary_metric: str
    guardrails: dict[str, float]
    floors: dict[str, float]
    slices: list[str]
    min_slice_rows: int
    current_days: int
    min_new_rows: int
    min_samples: int
    performance_drop: float | str
    #: Things the user should know before the first run (printed and in the YAML).
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class InitResult:
    """What :func:`init_pipeline` wrote."""

    path: Path
    profile: FileProfile
    draft: Draft
    config: PipelineConfig
    overwritten: bool


# -- the shared rule: does this target fit this task? ---------------------------------------


def binary_labels(values: pd.Series) -> tuple[Any, Any] | None:
    """The ``(negative, positive)`` labels of a column with exactly two values that are not
    already 0/1 or booleans; None otherwise.

    The positive label is the one named like it (``yes``, ``true``, ``1``, ``positive``...),
    else the larger of two numbers, else the rarer label (the event a model usually flags).
    """
    import pandas as pd

    present = values.dropna()
    uniques = list(pd.unique(present))
    if len(uniques) != 2 or _is_zero_one(present):
        return None
    if all(_is_number(v) for v in uniques):
        low, high = sorted(uniques)
        return low, high
    words = [str(v).strip().lower() for v in uniques]
    positive = [i for i in (0, 1) if words[i] in _POSITIVE]
    negative = [i for i in (0, 1) if words[i] in _NEGATIVE]
    if len(positive) == 1 and positive != negative:
        return uniques[1 - positive[0]], uniques[positive[0]]
    if len(negative) == 1:
        return uniques[negative[0]], uniques[1 - negative[0]]
    counts = present.value_counts()
    a, b = sorted(uniques, key=str)
    return (b, a) if counts[a] < counts[b] else (a, b)


def target_problem(task: str, column: str, values: pd.Series) -> str | None:
    """Why the target ``column``'s ``values`` do not fit ``task``, or None when they do.

    The one rule behind ``retrainflow init`` and ``retrainflow validate-config`` (which
    applies it to the stored data): the pipeline trains a binary task on targets stored
    as 0/1 (or booleans), and a regression on numbers (not booleans).

    Args:
        task: ``binary_classification`` or ``regression``.
        column: The target's name, for the message.
        values: The target's values (nulls are ignored).

    Returns:
        None, or a sentence naming the values seen and what to do instead.
    """
    import pandas as pd

    present = values.dropna()
    if present.empty:
        return f"the target '{column}' holds no values (every row is null)"
    shown = _values_text(present)
    distinct = present.nunique()
    numeric = _numeric(present)
    if task == "binary_classification":
        if pd.api.types.is_bool_dtype(present.dtype) or _is_zero_one(present):
            return None
        labels = binary_labels(present)
        if labels is not None:
            negative, positive = labels
            return (
                f"'binary_classification' needs the target stored as 0/1 (or booleans); "
                f"'{column}' holds the two labels {shown}: store {_word(positive)} as 1 and "
                f"{_word(negative)} as 0"
            )
        instead = (
            "a count or a measurement: use task 'regression'"
            if numeric
            else "retrainflow trains two classes (binary_classification) or numbers "
            "(regression), not more classes"
        )
        return (
            f"'binary_classification' needs a target with two classes (0/1); "
            f"'{column}' holds {distinct} distinct values: {shown} — {instead}"
        )
    if task == "regression":
        if numeric:
            return None
        instead = (
            "use task 'binary_classification'"
            if distinct == 2 or pd.api.types.is_bool_dtype(present.dtype)
            else "store it as numbers"
        )
        kind = "booleans" if pd.api.types.is_bool_dtype(present.dtype) else "text"
        return (
            f"'regression' needs a numeric target; '{column}' holds {kind} "
            f"({distinct} distinct values: {shown}) — {instead}"
        )
    raise ValueError(f"unknown task {task!r}; expected one of {list(TASKS)}")


def _numeric(values: pd.Series) -> bool:
    import pandas as pd

    dtype = values.dtype
    return bool(pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) or _np_number(value)


def _np_number(value: Any) -> bool:
    import numpy as np

    return isinstance(value, np.integer | np.floating)


def _is_zero_one(values: pd.Series) -> bool:
    """All values are the numbers 0 and 1 (or booleans), as the pipeline's check wants."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(values.dtype):
        return True
    if _numeric(values):
        return bool(values.isin([0, 1]).all())
    return all(isinstance(v, bool) or (_is_number(v) and v in (0, 1)) for v in values.unique())


def _values_text(values: pd.Series, limit: int = 8) -> str:
    """The distinct values, sorted: ``0, 1, 2, …, 37`` or ``'no', 'yes'``."""
    uniques = list(values.dropna().unique())
    try:
        uniques.sort()
    except TypeError:
        uniques.sort(key=str)
    words = [_word(v) for v in uniques]
    if len(words) > limit:
        words = [*words[: limit - 1], "…", words[-1]]
    return ", ".join(words)


def _word(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if _is_number(value):
        number = float(value)
        return str(int(number)) if number.is_integer() else f"{number:g}"
    return str(value)


# -- reading: the time column whole, a bounded sample of everything -------------------------


class _TimeStats:
    """Accumulates the time column chunk by chunk (counts per day, not the values)."""

    def __init__(self, column: str, file: Path) -> None:
        self.column = column
        self.file = file
        self.day_counts: dict[np.datetime64, int] = {}
        self.rows = 0
        self.nulls = 0
        self.unparsed = 0
        self.examples: list[str] = []
        self.within_day = False
        self.off_hour = False
        self.first: pd.Timestamp | None = None
        self.last: pd.Timestamp | None = None
        self.time_zone: str | None = None

    def add(self, raw: pd.Series) -> None:
        import numpy as np

        ts = self._parse(raw)
        missing = raw.isna()
        self.nulls += int(missing.sum())
        bad = ts.isna() & ~missing
        if bad.any():
            self.unparsed += int(bad.sum())
            for value in raw[bad].astype(str).head(3):
                if len(self.examples) < 3 and value not in self.examples:
                    self.examples.append(value)
        ts = ts.dropna()
        if ts.empty:
            return
        self.rows += len(ts)
        days, counts = np.unique(ts.to_numpy().astype("datetime64[D]"), return_counts=True)
        for day, count in zip(days, counts, strict=True):
            self.day_counts[day] = self.day_counts.get(day, 0) + int(count)
        if not self.within_day:
            self.within_day = bool((ts != ts.dt.normalize()).any())
        if not self.off_hour:
            self.off_hour = bool(((ts.dt.minute != 0) | (ts.dt.second != 0)).any())
        low, high = ts.min(), ts.max()
        self.first = low if self.first is None else min(self.first, low)
        self.last = high if self.last is None else max(self.last, high)

    def _parse(self, raw: pd.Series) -> pd.Series:
        """Naive timestamps (zone-aware ones in their own zone, or UTC for offsets)."""
        import pandas as pd

        if raw.isna().all():  # an empty chunk of a CSV column reads as float NaN
            return pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
        if pd.api.types.is_bool_dtype(raw.dtype) or pd.api.types.is_numeric_dtype(raw.dtype):
            example = raw.dropna().head(1).tolist()
            raise ProfileError(
                f"The time column '{self.column}' of {self.file} holds numbers "
                f"(e.g. {example[0] if example else 'none'}), not timestamps. Store it as text "
                "such as 2024-01-31 or 2024-01-31 14:05:00, or as a timestamp type.",
                file=self.file,
                column=self.column,
            )
        if isinstance(raw.dtype, pd.DatetimeTZDtype):
            return self._naive(raw)
        if pd.api.types.is_datetime64_dtype(raw.dtype):
            return raw
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ts = pd.to_datetime(raw, errors="coerce")
            except (ValueError, TypeError):  # mixed offsets
                ts = pd.to_datetime(raw, errors="coerce", utc=True)
            if ts.dtype == object:
                ts = pd.to_datetime(raw, errors="coerce", utc=True)
            bad = ts.isna() & raw.notna()
            if bad.any() and not isinstance(ts.dtype, pd.DatetimeTZDtype):
                try:  # rows written in another format than the first one
                    ts[bad] = pd.to_datetime(raw[bad], errors="coerce", format="mixed")
                except (ValueError, TypeError):
                    pass
        return self._naive(ts) if isinstance(ts.dtype, pd.DatetimeTZDtype) else ts

    def _naive(self, ts: pd.Series) -> pd.Series:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        name = str(ts.dt.tz)
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            name = "UTC"  # a fixed offset: days are cut in UTC
        self.time_zone = self.time_zone or name
        return ts.dt.tz_convert(self.time_zone).dt.tz_localize(None)

    def result(self) -> TimeProfile:
        import numpy as np

        if self.first is None or self.last is None:
            seen = f" (e.g. {', '.join(map(repr, self.examples))})" if self.examples else ""
            raise ProfileError(
                f"The time column '{self.column}' of {self.file} holds no timestamps{seen}. "
                "Name the column of event times with --time-column.",
                file=self.file,
                column=self.column,
            )
        days = np.array(sorted(self.day_counts))
        counts = [self.day_counts[d] for d in days]
        gaps = np.diff(days).astype("int64") if len(days) > 1 else np.array([1])
        step = max(1, int(np.median(gaps)))
        resolution: Literal["sub-hourly", "hourly", "daily", "weekly", "monthly"]
        if self.within_day:
            resolution = "sub-hourly" if self.off_hour else "hourly"
        elif step < 4:
            resolution, step = "daily", 1
        elif step < 20:
            resolution = "weekly"
        else:
            resolution = "monthly"
        return TimeProfile(
            column=self.column,
            first=self.first.to_pydatetime(warn=False),
            last=self.last.to_pydatetime(warn=False),
            rows=self.rows,
            nulls=self.nulls,
            unparsed=self.unparsed,
            examples=self.examples,
            days_with_rows=len(days),
            median_day_rows=int(np.median(counts)),
            resolution=resolution,
            step_days=1 if self.within_day else step,
            time_zone=self.time_zone,
        )


@dataclass
class _Sampler:
    """Keeps every ``stride``-th row of a stream, doubling the stride past ``max_rows``."""

    max_rows: int
    stride: int = 1
    seen: int = 0
    pieces: list[tuple[Any, pd.DataFrame]] = field(default_factory=list)  # (positions, rows)

    def add(self, chunk: pd.DataFrame) -> None:
        import numpy as np

        positions = np.arange(self.seen, self.seen + len(chunk))
        keep = positions % self.stride == 0
        self.pieces.append((positions[keep], chunk.iloc[np.flatnonzero(keep)]))
        self.seen += len(chunk)
        while sum(len(p) for p, _ in self.pieces) > self.max_rows:
            self.stride *= 2
            self.pieces = [
                (p[p % self.stride == 0], rows.iloc[np.flatnonzero(p % self.stride == 0)])
                for p, rows in self.pieces
            ]

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        frames = [rows for _, rows in self.pieces if len(rows)]
        if not frames:
            return self.pieces[0][1] if self.pieces else pd.DataFrame()
        return pd.concat(frames, ignore_index=True)


def _format(path: Path) -> Literal["csv", "parquet"]:
    name = path.name.lower()
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    raise ProfileError(
        f"{path} is neither a CSV file ({', '.join(_CSV_SUFFIXES)}) nor a Parquet file "
        f"({', '.join(_PARQUET_SUFFIXES)}); give a file with one of these endings.",
        file=path,
    )


def _csv_chunks(path: Path) -> Iterator[pd.DataFrame]:
    import pandas as pd

    try:
        with pd.read_csv(path, chunksize=CHUNK_ROWS) as reader:
            yield from reader
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ProfileError(
            f"{path} cannot be read as CSV ({type(exc).__name__}: {exc}).", file=path
        ) from None


def _header(path: Path, fmt: str) -> list[str]:
    import pandas as pd

    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return list(pq.ParquetFile(path).schema_arrow.names)
        except (pa.ArrowException, OSError) as exc:
            raise ProfileError(
                f"{path} cannot be read as Parquet ({type(exc).__name__}: {exc}).", file=path
            ) from None
    try:
        return list(pd.read_csv(path, nrows=0).columns)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ProfileError(
            f"{path} cannot be read as CSV ({type(exc).__name__}: {exc}).", file=path
        ) from None


def _read_csv(path: Path, time: _TimeStats, max_rows: int) -> tuple[pd.DataFrame, int, str]:
    sampler = _Sampler(max_rows)
    for chunk in _csv_chunks(path):
        time.add(chunk[time.column])
        sampler.add(chunk)
    sample = sampler.frame()
    if sampler.stride == 1:
        how = f"all {sampler.seen:,} rows"
    else:
        how = (
            f"{len(sample):,} of {sampler.seen:,} rows: every {_ordinal(sampler.stride)} row, "
            "read in chunks"
        )
    return sample, sampler.seen, how


def _read_parquet(path: Path, time: _TimeStats, max_rows: int) -> tuple[pd.DataFrame, int, str]:
    import numpy as np
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    total = pf.metadata.num_rows
    for batch in pf.iter_batches(batch_size=CHUNK_ROWS, columns=[time.column]):
        time.add(batch.to_pandas()[time.column])
    groups = pf.metadata.num_row_groups
    sizes = [pf.metadata.row_group(i).num_rows for i in range(groups)]
    if total <= max_rows:
        chosen = list(range(groups))
    else:
        # Enough groups for max_rows, and at least MIN_ROW_GROUPS of them (when the file has
        # that many) so that the sample covers the whole span, thinned to max_rows.
        wanted = min(groups, max(math.ceil(max_rows / (total / groups)), MIN_ROW_GROUPS))
        chosen = sorted({int(round(x)) for x in np.linspace(0, groups - 1, wanted)})
    sampler = _Sampler(max_rows, stride=max(1, math.ceil(sum(sizes[i] for i in chosen) / max_rows)))
    if chosen:
        for batch in pf.iter_batches(batch_size=CHUNK_ROWS, row_groups=chosen):
            sampler.add(batch.to_pandas())
    sample = sampler.frame()
    if len(sample) == total:
        how = f"all {total:,} rows"
    else:
        part = f"{len(chosen)} of {groups} row groups spread over the file"
        every = f"every {_ordinal(sampler.stride)} row of " if sampler.stride > 1 else ""
        how = f"{len(sample):,} of {total:,} rows: {every}{part}"
    return sample, total, how


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# -- profiling ------------------------------------------------------------------------------


def profile_file(
    path: Path | str,
    *,
    time_column: str,
    target: str,
    task: str | None = None,
    max_rows: int = SAMPLE_ROWS,
) -> FileProfile:
    """Profile a CSV or Parquet file for a pipeline (see the module docstring for the rules).

    Args:
        path: The file (``.csv``, optionally compressed, ``.parquet`` or ``.pq``).
        time_column: The event-time column.
        target: The label column.
        task: ``binary_classification`` or ``regression``; None infers it from the target.
        max_rows: Most rows of the sample every column is profiled on.

    Returns:
        The :class:`FileProfile`.

    Raises:
        ProfileError: the file cannot be read, a named column is not in it, or the time
            column holds no timestamps.
        TaskMismatchError: the target does not fit ``task`` (or no task fits it).
    """
    path = Path(path).expanduser()
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {list(TASKS)}; got {task!r}")
    if not path.is_file():
        raise ProfileError(f"No file {path}: give the path of a CSV or Parquet file.", file=path)
    fmt = _format(path)
    header = _header(path, fmt)
    for flag, col in (("--time-column", time_column), ("--target", target)):
        if col not in header:
            raise ProfileError(
                f"{path} has no column '{col}' (given as {flag}); its columns are {header}.",
                file=path,
                column=col,
            )
    if time_column == target:
        raise ProfileError(
            f"'{target}' cannot be both the time column and the target.", file=path, column=target
        )
    time = _TimeStats(time_column, path)
    reader = _read_parquet if fmt == "parquet" else _read_csv
    sample, total, how = reader(path, time, max_rows)
    if total == 0:
        raise ProfileError(f"{path} holds no rows (only a header).", file=path)
    target_profile = _profile_target(sample[target], target, task, path)
    columns = [
        _profile_column(sample[c], c) for c in sample.columns if c not in (time_column, target)
    ]
    return FileProfile(
        path=path,
        format=fmt,
        total_rows=total,
        sampled_rows=len(sample),
        sampling=how,
        time=time.result(),
        target=target_profile,
        columns=columns,
    )


def _profile_target(values: pd.Series, column: str, task: str | None, file: Path) -> TargetProfile:
    import pandas as pd

    present = values.dropna()
    labels = binary_labels(present)
    inferred = task is None
    if task is None:
        task = _infer_task(present, column, file, labels)
    checked = present
    if task == "binary_classification" and labels is not None:
        checked = (present == labels[1]).astype("int64")  # as it must be stored
    problem = target_problem(task, column, checked)
    if problem is not None:
        raise TaskMismatchError(
            f"The target of {file} does not fit the task: {problem}.",
            task=task,
            file=file,
            column=column,
        )
    numeric = _numeric(present) and task == "regression"
    shown = _values_text(present)
    if numeric and present.nunique() > 8:
        low, high = float(present.min()), float(present.max())
        shown = f"{present.nunique():,} distinct numbers, {_short(low)} .. {_short(high)}"
    return TargetProfile(
        column=column,
        task=task,  # type: ignore[arg-type]  # one of TASKS, checked above
        inferred=inferred,
        dtype=str(values.dtype),
        nulls=int(values.isna().sum()),
        rows=len(values),
        distinct=int(present.nunique()),
        shown=shown,
        labels=labels if task == "binary_classification" else None,
        low=float(present.min()) if numeric else None,
        high=float(present.max()) if numeric else None,
        std=float(pd.to_numeric(present).std()) if numeric else None,
        integral=bool(numeric and _integral(present)),
    )


def _infer_task(
    present: pd.Series, column: str, file: Path, labels: tuple[Any, Any] | None
) -> Task:
    import pandas as pd

    distinct = present.nunique()
    if distinct < 2:
        raise TaskMismatchError(
            f"The target '{column}' of {file} holds "
            f"{'no values' if distinct == 0 else 'only the value ' + _values_text(present)}: "
            "there is nothing to learn. Give the label column with --target.",
            task="unknown",
            file=file,
            column=column,
        )
    if pd.api.types.is_bool_dtype(present.dtype) or labels is not None or _is_zero_one(present):
        return "binary_classification"
    if _numeric(present):
        return "regression"
    raise TaskMismatchError(
        f"The target '{column}' of {file} holds {distinct} labels ({_values_text(present)}): "
        "retrainflow trains two classes (binary_classification) or numbers (regression). "
        "Pick two classes (store them as 0/1) or a numeric target.",
        task="unknown",
        file=file,
        column=column,
    )


def _integral(values: pd.Series) -> bool:
    import numpy as np
    import pandas as pd

    if pd.api.types.is_integer_dtype(values.dtype):
        return True
    if not pd.api.types.is_float_dtype(values.dtype):
        return False
    finite = values.to_numpy(dtype="float64")
    finite = finite[np.isfinite(finite)]
    return bool(len(finite) and np.all(finite == np.round(finite)))


def _profile_column(values: pd.Series, name: str) -> ColumnProfile:
    """Type, role and statistics of one non-target, non-time column of the sample."""
    col = _classify(values, name)
    if col.role != "left_out" and any(ch in LIGHTGBM_BAD_CHARS for ch in name):
        return replace(
            col,
            role="left_out",
            reason=f"{col.role} ({col.reason}), but LightGBM refuses a feature name with any "
            'of []{}":, (rename the column to use it)',
        )
    return col


def _classify(values: pd.Series, name: str) -> ColumnProfile:
    import pandas as pd

    present = values.dropna()
    base: dict[str, Any] = {
        "name": name,
        "dtype": str(values.dtype),
        "nulls": int(values.isna().sum()),
        "rows": len(values),
        "distinct": int(present.nunique()),
    }
    dtype = values.dtype

    def left_out(reason: str, type_: Any = None) -> ColumnProfile:
        return ColumnProfile(**base, type=type_, role="left_out", reason=reason)

    if pd.api.types.is_bool_dtype(dtype):
        kind: Any = "bool"
    elif isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype):
        kind = "datetime"
    elif pd.api.types.is_integer_dtype(dtype):
        kind = "int"
    elif pd.api.types.is_float_dtype(dtype):
        kind = "float"
    elif pd.api.types.is_string_dtype(dtype) and all(isinstance(v, str) for v in present):
        kind = "str"
    else:
        kind = None  # mixed values, categories, durations...
    stored_type = None if isinstance(dtype, pd.DatetimeTZDtype) else kind
    if kind == "float" and base["nulls"] and _integral(present):
        stored_type = None  # whole numbers with gaps: int on days without nulls, float with

    if present.empty:
        return left_out("always null in the profiled rows", stored_type)
    if base["distinct"] == 1:
        return left_out(f"constant (always {_word(present.iloc[0])}): no signal", stored_type)
    if kind == "datetime":
        return left_out("a timestamp: calendar parts come from the time column", stored_type)
    if base["nulls"] > 0.95 * base["rows"]:
        return left_out(f"{base['nulls'] / base['rows']:.0%} null: too sparse", stored_type)
    distinct, rows = base["distinct"], len(present)

    if kind in ("int", "float") and _integral(present):
        if _looks_like_id(name, present):
            return left_out(f"an ID ({distinct:,} distinct values in {rows:,} rows)", stored_type)
        if distinct <= MAX_INT_CATEGORIES:
            return ColumnProfile(
                **base,
                type=stored_type,
                role="categorical",
                reason=f"{distinct} whole-number values",
                values=_sorted_values(present),
            )
    if kind in ("int", "float"):
        low, high = float(present.min()), float(present.max())
        return ColumnProfile(
            **base,
            type=stored_type,
            role="numeric",
            reason=f"{kind}, {_short(low)} .. {_short(high)}",
            low=low,
            high=high,
            integral=_integral(present),
        )
    text = present.astype(str)
    if text.head(200).str.match(_DATE_TEXT).mean() >= 0.95:
        return left_out("dates as text: calendar parts come from the time column", stored_type)
    if distinct > MAX_CATEGORIES or distinct > rows / 2:
        spaced = text.str.contains(" ").mean() >= 0.5 and text.str.len().mean() >= 20
        what = "free text" if spaced else "an ID or code"
        return left_out(f"{what} ({distinct:,} distinct values in {rows:,} rows)", stored_type)
    return ColumnProfile(
        **base,
        type="bool" if kind == "bool" else stored_type,
        role="categorical",
        reason=f"{distinct} values" if kind != "bool" else "true/false",
        values=_sorted_values(present) if kind != "bool" else None,
    )


def _looks_like_id(name: str, present: pd.Series) -> bool:
    """An integer ID: an ID-like name with mostly distinct values, or a row counter."""
    distinct = present.nunique()
    if _ID_NAME.search(name) and distinct > len(present) / 2:
        return True
    return bool(distinct == len(present) and len(present) > 100 and present.is_monotonic_increasing)


def _sorted_values(present: pd.Series) -> list[Any] | None:
    uniques = list(present.unique())
    if len(uniques) > MAX_ALLOWED:
        return None
    plain = [int(v) if _is_number(v) and float(v).is_integer() else v for v in uniques]
    try:
        return sorted(plain)
    except TypeError:
        return sorted(plain, key=str)


# -- the settings chosen from a profile ------------------------------------------------------


#: Rows a holdout and a training window should hold at least (sparse data gets more days).
MIN_HOLDOUT_ROWS = 200
MIN_WINDOW_ROWS = 1_000


def draft_settings(profile: FileProfile, name: str) -> Draft:
    """Windows, model size, gate and monitoring sized to the profiled data.

    Raises:
        ProfileError: no column is usable as a feature and no calendar part either.
    """
    time, target = profile.time, profile.target
    step, span = time.step_days, time.span_days
    notes: list[str] = []
    if time.within_day:
        time_parts = ["hour", "day_of_week"]
    elif time.resolution == "daily":
        time_parts = ["day_of_week", "month"]
    else:
        time_parts = ["month"]
    if any(ch in LIGHTGBM_BAD_CHARS for ch in time.column):
        time_parts = []
        notes.append(
            f"no calendar features: LightGBM refuses names derived from '{time.column}'; "
            "rename the time column to get them"
        )
    features = profile.role("numeric") + profile.role("categorical")
    if not features and not time_parts:
        why = "; ".join(f"{c.name}: {c.reason}" for c in profile.role("left_out"))
        raise ProfileError(
            f"No column of {profile.path} can be a feature ({why or 'no other columns'}).",
            file=profile.path,
        )
    holdout = 7 if step == 1 else 4 * step
    window = max(min(60 * step, span // 3), 2 * holdout)
    # Sparse data (a few rows a day): size by rows, not days, so the gate and the model see
    # enough rows (a week of one row a day is 7 rows: no ROC AUC worth the name).
    per_day = max(time.rows_per_day, 1e-9)
    if per_day * holdout < MIN_HOLDOUT_ROWS:
        holdout = max(holdout, min(math.ceil(MIN_HOLDOUT_ROWS / per_day), max(span // 6, 1)))
    if per_day * window < MIN_WINDOW_ROWS:
        window = max(window, min(math.ceil(MIN_WINDOW_ROWS / per_day), max(span // 2, 1)))
    window = max(window, 2 * holdout)
    if span < 3 * holdout:
        notes.append(
            f"the file spans only {span} days: a {window}-day window with a {holdout}-day "
            "holdout leaves little to train on; ingest more days before trusting the gate"
        )
    if target.task == "regression" and target.distinct <= MAX_INT_CATEGORIES:
        notes.append(
            f"the target holds only {target.distinct} distinct values: if they are classes "
            "rather than amounts, retrainflow cannot train them (two classes or numbers only)"
        )
    window_rows = time.rows_per_day * window
    if window_rows >= 50_000:
        leaves, child = 63, 50
    elif window_rows >= 5_000:
        leaves, child = 31, 20
    else:
        leaves, child = 15, 10
    performance_drop: float | str
    if target.task == "binary_classification":
        primary, guardrails, floors = "roc_auc", {"log_loss": 0.02}, {"roc_auc": 0.5}
        performance_drop = 0.02
    else:
        primary, guardrails = "mae", {"r2": 0.02}
        std = target.std or 0.0
        floors = {"mae": _round_sig(std, "up")} if std > 0 else {}
        performance_drop = "10%"
    small = [c for c in profile.role("categorical") if c.distinct <= MAX_ALLOWED]
    slices = [c.name for c in sorted(small, key=lambda c: (c.distinct, c.name))[:2]]
    current_days = max(7 if step == 1 else holdout, min(holdout, span // 4 or 1))
    return Draft(
        name=name,
        time_parts=time_parts,
        window_days=window,
        holdout_days=holdout,
        min_rows=max(
            1,
            min(
                max(_count_down(time.rows_per_day * 7 / 2), MIN_HOLDOUT_ROWS // 2),
                _count_down(time.rows_per_day * holdout / 2),
            ),
        ),
        rows_per_week=time.rows_per_day * 7,
        num_leaves=leaves,
        min_child_samples=child,
        primary_metric=primary,
        guardrails=guardrails,
        floors=floors,
        slices=slices,
        min_slice_rows=int(min(200, max(20, time.rows_per_day * holdout // 20))),
        current_days=current_days,
        min_new_rows=_count_down(time.rows_per_day * 28),
        min_samples=min(2000, _count_down(time.rows_per_day * current_days * 0.3)),
        performance_drop=performance_drop,
        notes=notes,
    )


def _round_sig(value: float, direction: Literal["up", "down"], digits: int = 2) -> float:
    """``value`` (> 0) rounded up or down to ``digits`` significant digits."""
    step = 10.0 ** (math.floor(math.log10(value)) - digits + 1)
    rounded = (math.ceil if direction == "up" else math.floor)(value / step) * step
    return round(rounded, max(0, -math.floor(math.log10(step))))


def _count_down(value: float) -> int:
    """A row count: ``value`` rounded down to two significant digits, at least 1."""
    return max(1, int(_round_sig(value, "down"))) if value >= 1 else 1


def _bounds(low: float, high: float, integral: bool) -> tuple[float, float]:
    """``[low, high]`` widened by :data:`RANGE_MARGIN` x the range on each side (not below 0
    for a column that never was), rounded outwards to a tenth of the widened range's order."""
    spread = high - low
    lo, hi = low - RANGE_MARGIN * spread, high + RANGE_MARGIN * spread
    if low >= 0:
        lo = max(lo, 0.0)
    width = hi - lo
    step = 10.0 ** (math.floor(math.log10(width)) - 1) if width > 0 else 1.0
    if integral:
        step = max(step, 1.0)
    digits = max(0, -math.floor(math.log10(step)))
    return (
        round(math.floor(lo / step) * step, digits),
        round(math.ceil(hi / step) * step, digits),
    )


# -- rendering: the YAML text, comments included ---------------------------------------------


def render_config(profile: FileProfile, draft: Draft, *, today: date | None = None) -> str:
    """The commented YAML text of the pipeline ``draft`` describes.

    Args:
        profile: What the file holds.
        draft: The settings chosen from it (:func:`draft_settings`).
        today: The date written into the header (default: today).

    Returns:
        The YAML text; :func:`retrainflow.config.parse_config` accepts it.
    """
    sections = [
        _header_lines(profile, draft, today or date.today()),
        _target_lines(profile),
        _source_lines(draft.name),
        _feature_lines(profile, draft),
        _expectation_lines(profile, draft),
        _training_lines(profile, draft),
        _evaluation_lines(profile, draft),
        _monitoring_lines(profile, draft),
    ]
    if draft.notes:
        sections.append(
            ["# Notes from `retrainflow init`:", *(f"# - {_one_line(n)}." for n in draft.notes)]
        )
    return "\n\n".join("\n".join(lines) for lines in sections) + "\n"


_GRAIN = {
    "sub-hourly": "times to the minute or finer",
    "hourly": "times on the hour",
    "daily": "one date a day",
    "weekly": "weekly dates",
    "monthly": "monthly dates",
}


def _header_lines(profile: FileProfile, draft: Draft, today: date) -> list[str]:
    time, target = profile.time, profile.target
    lines = _wrap(
        f'Pipeline "{draft.name}": written by `retrainflow init` on {today.isoformat()} '
        f"from {profile.path}."
    )
    lines += _wrap(
        f"Profiled: {profile.sampling} of the {profile.format} file. The time column was read "
        f"in full: from {time.first_day} to {time.last_day}, {time.span_days} days, "
        f"~{_count(time.rows_per_day)} rows a day, {_GRAIN[time.resolution]}."
    )
    if time.nulls or time.unparsed:
        bad = [f"{time.nulls:,} rows have no time"] if time.nulls else []
        if time.unparsed:
            examples = ", ".join(repr(e) for e in time.examples)
            bad.append(f"{time.unparsed:,} values are not timestamps (e.g. {examples})")
        lines += _wrap(f"Beware: {' and '.join(bad)}; fix them before ingesting.")
    how = "inferred from" if target.inferred else "given; fits"
    lines += _wrap(
        "Every choice below is a starting point drawn from those rows: read the comments, "
        "change what you know better, then check the file with `retrainflow validate-config`. "
        "The file name must equal `name`."
    )
    lines += [
        f"name: {draft.name}",
        "description: >-",
        f"  Predicts {_one_line(target.column)} ({target.task.replace('_', ' ')}) from the "
        f"columns of {_one_line(profile.path.name)}.",
        *_aligned(
            [
                (
                    f"task: {target.task}",
                    f"{how} the values of {target.column}: {target.shown}",
                )
            ]
        ),
    ]
    return lines


def _target_lines(profile: FileProfile) -> list[str]:
    time, target = profile.time, profile.target
    lines: list[str] = []
    if target.task == "binary_classification" and target.labels is not None:
        negative, positive = target.labels
        lines += _wrap(
            f"Label column. {profile.path.name} stores it as {target.shown}; the pipeline "
            "reads binary targets as 0/1 (or true/false) and validation refuses other values: "
            f"store {_word(positive)} as 1 (the positive class) and {_word(negative)} as 0 "
            "before ingesting."
        )
    elif target.task == "binary_classification":
        lines.append("# Label column: 1 = the positive class, 0 = the other.")
    else:
        lines.append(
            f"# Label column: the number the model predicts ({_short(target.low)} .. "
            f"{_short(target.high)} in the profiled rows)."
        )
    if target.nulls:
        lines += _wrap(
            f"{_pct(target.nulls / target.rows)} of its profiled rows are null (labels not "
            "arrived yet?): such rows are kept for monitoring, not trained on "
            "(expectations.unlabelled: exclude)."
        )
    lines += [
        f"target: {_scalar(target.column)}",
        "# Event time: partitions, windows and hold-out days are cut by this column's day.",
    ]
    if time.time_zone:
        lines += _wrap(
            f"Its timestamps carry a time zone: days are cut in {time.time_zone} (time_zone; "
            "set your own zone to cut local days)."
        )
    lines.append(f"time_column: {_scalar(time.column)}")
    if time.time_zone:
        lines.append(f"time_zone: {_scalar(time.time_zone)}")
    return lines


def _source_lines(name: str) -> list[str]:
    return [
        "# Where the rows come from: the local Parquet lake,",
        f"# $RETRAINFLOW_HOME/lake/{name}/date=YYYY-MM-DD/part-0.parquet,",
        f"# written by `retrainflow ingest {name} FILE`.",
        "source:",
        "  kind: parquet",
        f"  path: {name}",
    ]


def _feature_lines(profile: FileProfile, draft: Draft) -> list[str]:
    time = profile.time
    lines = _wrap(
        "Model inputs, by each column's type in the profiled rows: numbers are numeric; "
        f"whole numbers with at most {MAX_INT_CATEGORIES} values, booleans, and text with at "
        f"most {MAX_CATEGORIES} values (and fewer than one per two rows) are categorical."
    )
    left_out = profile.role("left_out")
    if left_out:
        lines += _wrap(
            "Left out: IDs and free text (too many values to learn from one by one), dates, "
            "constants. They stay in the data and in `expectations`:"
        )
        for c in left_out:
            lines += _wrap(f"{c.name}: {c.reason}", first="#   ", rest="#     ")
    lines.append("features:")
    for group in ("numeric", "categorical"):
        cols = profile.role(group)
        if not cols:
            lines.append(f"  {group}: []")
            continue
        lines.append(f"  {group}:")
        rows = [
            (
                f"- {_scalar(c.name)}",
                c.reason + (f"; {_pct(c.null_fraction)} null" if c.nulls else ""),
            )
            for c in cols
        ]
        lines += _aligned(rows, "    ")
    grain = "timestamps within the day" if time.within_day else f"{time.resolution} rows"
    lines += [
        f"  # Calendar features derived from {_one_line(time.column)} ({grain}).",
        f"  time_parts: {_flow(draft.time_parts)}",
    ]
    return lines


def _expectation_lines(profile: FileProfile, draft: Draft) -> list[str]:
    time, target = profile.time, profile.target
    lines = _wrap(
        "Data quality gate (Great Expectations), checked on every window before anything is "
        "trained; a window that fails stops the run. From the profiled rows: a column with no "
        "nulls must have none; one with nulls may have about twice as many "
        "(max_null_fraction); numeric ranges are the observed min..max widened by half the "
        "range on each side (never below 0 for a column that never was); categoricals with at "
        f"most {MAX_ALLOWED} values list them (a new value fails: add it here)."
    )
    lines += [
        "expectations:",
        *_aligned(
            [
                (
                    f"min_rows: {draft.min_rows}",
                    f"half a typical week (~{_count(draft.rows_per_week)} rows): "
                    "far fewer means a broken feed",
                )
            ],
            "  ",
        ),
        "  allow_extra_columns: false",
    ]
    if target.nulls:
        lines.append("  unlabelled: exclude")
    lines.append("  columns:")
    rows = [(f"{_scalar(time.column)}: {{type: datetime, nullable: false}}", "")]
    rows.append(_target_expectation(target))
    for col in profile.role("numeric") + profile.role("categorical"):
        extra: dict[str, str] = {}
        if col.role == "numeric" and col.low is not None and col.high is not None:
            lo, hi = _bounds(col.low, col.high, col.integral)
            extra = {"min": _num(lo), "max": _num(hi)}
        elif col.values is not None:
            extra = {"allowed": _flow(col.values)}
        items, note = _column_rule(col, extra)
        rows.append((f"{_scalar(col.name)}: {items}", note))
    for col in profile.role("left_out"):
        items, note = _column_rule(col, {})
        rows.append(
            (f"{_scalar(col.name)}: {items}", "not a feature" + (f"; {note}" if note else ""))
        )
    return lines + _aligned(rows, "    ")


def _column_rule(col: ColumnProfile, extra: dict[str, str]) -> tuple[str, str]:
    """One column's inline expectations and their comment (the null rule)."""
    items: dict[str, str] = {"type": col.type} if col.type else {}
    note = ""
    if col.nulls == 0:
        items["nullable"] = "false"
    else:
        seen = col.null_fraction
        note = f"{_pct(seen)} null"
        if seen < 0.5:
            limit = min(1.0, math.ceil(max(2 * seen, seen + 0.05) * 20 - 1e-9) / 20)
            items["max_null_fraction"] = _num(round(limit, 2))
        else:
            note += ": mostly null, no limit"
    if col.type is None and col.role != "left_out" and col.dtype.startswith("float"):
        note = "whole numbers with nulls: int or float by day, so no type" + (
            f"; {note}" if note else ""
        )
    return _mapping(items | extra), note


def _target_expectation(target: TargetProfile) -> tuple[str, str]:
    name = _scalar(target.column)
    if target.task == "binary_classification":
        if target.dtype == "bool" and target.labels is None:
            return f"{name}: {{type: bool, nullable: false}}", ""
        stored_int = target.labels is not None or target.dtype.startswith(("int", "Int"))
        items = {"type": "int"} if stored_int else {}
        items |= {"nullable": "false", "allowed": "[0, 1]"}
        return f"{name}: {_mapping(items)}", "stored as 0/1" if target.labels else ""
    lo, hi = _bounds(target.low or 0.0, target.high or 0.0, target.integral)
    type_ = {"i": "int", "I": "int", "f": "float", "F": "float"}.get(target.dtype[:1])
    items = ({"type": type_} if type_ else {}) | {"nullable": "false"}
    items |= {"min": _num(lo), "max": _num(hi)}
    return f"{name}: {_mapping(items)}", "widen it if the target keeps growing"


def _training_lines(profile: FileProfile, draft: Draft) -> list[str]:
    time = profile.time
    per_day = time.rows_per_day
    limit = 60 * time.step_days
    return [
        "# What is trained and how.",
        "training:",
        "  estimator: lightgbm",
        f"  # Sized for a window of {draft.window_days} days x ~{_count(per_day)} rows a day "
        f"(~{_count(per_day * draft.window_days)} rows) on a 2-core machine.",
        "  params:",
        "    n_estimators: 200",
        "    learning_rate: 0.05",
        f"    num_leaves: {draft.num_leaves}",
        f"    min_child_samples: {draft.min_child_samples}",
        "    feature_fraction: 0.8",
        "    bagging_fraction: 0.8",
        "    bagging_freq: 1",
        "    lambda_l2: 1.0",
        "    # auto: per fit, the CPUs other work leaves idle, one per 400k rows at most",
        "    num_threads: auto",
        "    verbosity: -1",
        "  # auto: the first run fits from scratch; later runs warm-start the champion on the",
        "  # new days, with a full refit after max_warm_starts consecutive warm starts.",
        "  mode: auto",
        f"  # Days in a stateless (from scratch) fit: a third of the file's {time.span_days} "
        f"days, at most {limit},",
        f"  # at least twice the holdout ({2 * draft.holdout_days}).",
        f"  window_days: {draft.window_days}",
        "  warm_start:",
        "    # refit: keep the champion's trees and re-fit their leaf values on the new days",
        "    # (new = 0.8 x old + 0.2 x fitted). Not append: trees appended on a few days of",
        '    # rows each fall ever further behind a fit from scratch (README: "Warm start',
        '    # `append` runs away on long streams").',
        "    method: refit",
        "    decay_rate: 0.8",
        *_aligned(
            [
                ("replay_fraction: 0.2", "mix in 20 % as many older rows as new ones"),
                (f"replay_days: {draft.window_days}", "drawn from this many days back"),
                ("max_warm_starts: 4", "then a full refit (mode auto)"),
                ("num_boost_round: 40", "rounds added per warm start by append-type methods"),
            ],
            "    ",
        ),
        "  random_seed: 42",
    ]


def _evaluation_lines(profile: FileProfile, draft: Draft) -> list[str]:
    time, target = profile.time, profile.target
    lines = [
        "# The gate a challenger must pass to replace the champion, measured on the newest",
        "# holdout_days of the window (never trained on).",
        "evaluation:",
        f"  primary_metric: {draft.primary_metric}",
        *_aligned([("min_delta: 0.0", "at least as good as the champion")], "  "),
        "  # May be worse than the champion by at most this much on these metrics.",
        "  guardrails:",
        *(f"    {metric}: {_num(tol)}" for metric, tol in draft.guardrails.items()),
    ]
    if draft.floors:
        lines += ["  # Absolute limits, whatever the champion does.", "  floors:"]
        for metric, value in draft.floors.items():
            why = (
                "no better than chance means broken; raise it once you know the "
                "first champion's score"
                if metric == "roc_auc"
                else f"a ceiling: the target's std over the file ({_short(target.std)}); "
                "a larger error is worse than its mean"
            )
            lines += _aligned([(f"{metric}: {_num(value)}", why)], "    ")
    else:
        lines.append("  floors: {}")
    if draft.slices:
        lines += [
            "  # Per-value metrics reported for these categorical features.",
            f"  slices: {_flow(draft.slices)}",
        ]
    else:
        lines.append("  slices: []")
    holdout_rows = _count(time.rows_per_day * draft.holdout_days)
    lines += _aligned(
        [
            (f"holdout_days: {draft.holdout_days}", f"~{holdout_rows} rows"),
            (f"min_slice_rows: {draft.min_slice_rows}", "smaller slices are not reported"),
        ],
        "  ",
    )
    lines += [
        "",
        "# auto: a challenger that passes the gate is promoted without a human.",
        "promotion: auto",
        "# Airflow schedule of the retraining DAG.",
        *_aligned(
            [("schedule: null", 'runs are triggered (retrain, monitor, UI); live data: "@weekly"')]
        ),
        "",
        "tags:",
        f"  dataset: {draft.name}",
    ]
    return lines


def _monitoring_lines(profile: FileProfile, draft: Draft) -> list[str]:
    time, binary = profile.time, profile.target.task == "binary_classification"
    numeric, categorical = profile.role("numeric"), profile.role("categorical")
    method = "wasserstein" if numeric else "jensenshannon"
    drop = draft.performance_drop
    lines = [
        f"# The monitor__{draft.name} DAG: drift and performance with Evidently, then the trigger",
        "# policy (modelled on flights.yaml; see src/retrainflow/policy.py).",
        "monitoring:",
        *_aligned(
            [
                ("enabled: true", ""),
                ("schedule: null", 'checks are triggered; live data: "@daily"'),
                (
                    f"current_days: {draft.current_days}",
                    f"each check looks at the last {draft.current_days} days "
                    f"(~{_count(time.rows_per_day * draft.current_days)} rows)",
                ),
                ("reference_rows: 20000", "sampled from the champion's training data"),
                ("label_delay_days: 0", "days until the target is known: set it if labels lag"),
            ],
            "  ",
        ),
        "  drift:",
        *_aligned(
            [
                (
                    f"method: {method}",
                    "normalized Wasserstein distance (numeric features)"
                    if numeric
                    else "Jensen-Shannon distance",
                ),
                ("threshold: 0.1", ""),
            ],
            "    ",
        ),
    ]
    if numeric and categorical:
        lines += ["    # Categorical features: Jensen-Shannon distance.", "    columns:"]
        lines += [
            f"      {_scalar(c.name)}: {{method: jensenshannon, threshold: 0.1}}"
            for c in categorical
        ]
    metric = "ROC AUC" if binary else "MAE"
    share = " (a share of it)" if isinstance(drop, str) else ""
    lines += _aligned(
        [
            ("share_threshold: 0.5", "half the features drifted = the data set drifted"),
            ("key_features: []", ""),
            ("severe_share: 0.8", "this much drift: retrain from scratch"),
        ],
        "    ",
    )
    lines += [
        "  policy:",
        *_aligned(
            [
                ("triggers: [drift, performance, volume]", ""),
                (
                    f"performance_drop: {_scalar(drop)}",
                    f"champion's {metric} on the last days vs at its gate{share}",
                ),
                (
                    f"min_new_rows: {draft.min_new_rows}",
                    "~4 weeks of rows since the champion's data",
                ),
                ("cooldown_hours: 72", "at most one monitoring-triggered retrain per 3 days"),
                ("drift_m: 2", "drift must show in 2 of the last 3 checks"),
                ("drift_n: 3", ""),
                ("max_retrains_per_week: 2", ""),
                (f"min_samples: {draft.min_samples}", "fewer current rows decide nothing"),
            ],
            "    ",
        ),
    ]
    return lines


def _num(value: float) -> str:
    """A YAML number: whole numbers without a fraction, others as Python writes them."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = repr(value)
    return format(value, "f") if "e" in text else text


def _scalar(value: Any) -> str:
    """``value`` as a YAML scalar, quoted when YAML would read it as something else."""
    import yaml

    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_number(value):
        return _num(float(value)) if isinstance(value, float) else str(value)
    text = str(value)
    style = "'" if any(ch in text for ch in ':,[]{}#"') else None  # safe in flow mappings too
    dumped = yaml.safe_dump(text, default_flow_style=True, default_style=style, width=10**6)
    return str(dumped).removesuffix("\n").removesuffix("\n...").strip()


def _flow(values: list[Any]) -> str:
    return "[" + ", ".join(_scalar(v) for v in values) + "]"


def _mapping(items: dict[str, str]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in items.items()) + "}"


def _wrap(text: str, *, first: str = "# ", rest: str | None = None) -> list[str]:
    """``text`` as comment lines of at most 92 characters."""
    import textwrap

    return textwrap.wrap(
        _one_line(text),
        width=92,
        initial_indent=first,
        subsequent_indent=first if rest is None else rest,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _aligned(rows: list[tuple[str, str]], indent: str = "") -> list[str]:
    """``code  # comment`` lines with the comments in one column (rows without one as is)."""
    width = min(max((len(code) for code, note in rows if note), default=0), 44)
    return [
        f"{indent}{code.ljust(width)}  # {_one_line(note)}" if note else f"{indent}{code}"
        for code, note in rows
    ]


def _pct(fraction: float) -> str:
    pct = fraction * 100
    return f"{pct:.1f} %" if pct < 10 else f"{pct:.0f} %"


def _short(value: float | None) -> str:
    """A number for a comment: four significant digits, thousands separated."""
    if value is None:
        return "?"
    if abs(value) >= 10_000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _count(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}".removesuffix(".0")


# -- init: name checks, profile, render, check, write ---------------------------------------


def check_pipeline_name(name: str) -> None:
    """Refuse a pipeline name that looks like a path or is not ``[a-z][a-z0-9_]{0,62}``.

    Raises:
        InvalidPipelineNameError: saying why, with a name that would do.
    """
    from retrainflow.config import _NAME_RE

    pathlike = any(sep in name for sep in ("/", "\\")) or name.startswith((".", "~"))
    if pathlike or name.endswith((".yaml", ".yml")):
        stem = re.sub(r"\.ya?ml$", "", Path(name.replace("\\", "/")).name)
        raise InvalidPipelineNameError(
            f"'{name}' looks like a path; give the pipeline's name (e.g. '{_suggest(stem)}'): "
            "the file is written as <config dir>/NAME.yaml.",
            name=name,
        )
    if not re.fullmatch(_NAME_RE, name):
        raise InvalidPipelineNameError(
            f"'{name}' is not a valid pipeline name: lower-case letters, digits and '_', "
            f"starting with a letter, at most 63 characters (e.g. '{_suggest(name)}').",
            name=name,
        )


def _suggest(text: str) -> str:
    slug = re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_")
    if not slug or not slug[0].isalpha():
        slug = "p_" + slug
    return slug[:63].rstrip("_") or "my_pipeline"


def init_pipeline(
    name: str,
    file: Path | str,
    *,
    time_column: str,
    target: str,
    task: str | None = None,
    force: bool = False,
    directory: Path | None = None,
    max_rows: int = SAMPLE_ROWS,
) -> InitResult:
    """Profile ``file`` and write ``<directory>/<name>.yaml`` (``retrainflow init``).

    Args:
        name: The pipeline's name (also the file's stem).
        file: A CSV or Parquet file of rows.
        time_column: Its event-time column.
        target: Its label column.
        task: ``binary_classification`` or ``regression``; None infers it.
        force: Overwrite an existing config of that name.
        directory: The config directory (default: :func:`retrainflow.settings.config_dir`).
        max_rows: Most rows of the profiled sample.

    Returns:
        The :class:`InitResult` (path, profile, chosen settings, loaded config).

    Raises:
        InvalidPipelineNameError: ``name`` is a path or not a valid name.
        ConfigExistsError: the config exists and ``force`` is False.
        ProfileError: the file cannot be profiled (see :func:`profile_file`).
        TaskMismatchError: the target does not fit the task.
    """
    import yaml

    from retrainflow import settings
    from retrainflow.config import parse_config
    from retrainflow.exceptions import ConfigError, RetrainflowError

    check_pipeline_name(name)
    directory = directory or settings.config_dir()
    existing = [p for p in (directory / f"{name}.yaml", directory / f"{name}.yml") if p.exists()]
    if existing and not force:
        raise ConfigExistsError(
            f"{existing[0]} already exists; pass --force to overwrite it, or choose another name.",
            file=existing[0],
        )
    path = existing[0] if existing else directory / f"{name}.yaml"
    profile = profile_file(
        file, time_column=time_column, target=target, task=task, max_rows=max_rows
    )
    draft = draft_settings(profile, name)
    text = render_config(profile, draft)
    try:
        config = parse_config(yaml.safe_load(text), file=path)
    except (ConfigError, yaml.YAMLError) as exc:  # a bug of init, not the user's doing
        raise RetrainflowError(
            f"retrainflow init made a config it cannot load ({exc}); please report it."
        ) from exc
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return InitResult(
        path=path, profile=profile, draft=draft, config=config, overwritten=bool(existing)
    )
