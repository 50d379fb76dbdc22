"""Data sources: where windows of rows come from.

Every source stores rows partitioned by the calendar day of the pipeline's
time column and answers three questions: which days exist, what rows fall in a
window ``[start, end)`` of days, and (for seeding and tests) how to write one
day. :meth:`Source.read_parts` reads the same rows file by file, with the
partition each came from, for the data contract the pull stage enforces
(:mod:`retrainflow.data.contract`). Implementations:

* :class:`ParquetLakeSource` — local directory of ``date=YYYY-MM-DD/part-0.parquet``
  (the embedded default);
* :class:`S3ParquetSource` — the same layout in an S3 bucket (boto3 + pyarrow);
* :class:`SqlSource` — a table in any SQLAlchemy database.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from retrainflow import settings
from retrainflow.exceptions import CorruptDataError, InvalidPartitionError

if TYPE_CHECKING:
    import pandas as pd

    from retrainflow.config import PipelineConfig

PARTITION_RE = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
PART_FILE = "part-0.parquet"
#: Entries of a lake starting with these belong to tools (``_``: e.g. an ingest ledger;
#: ``.``: a writer's temporary files), not to the data.
RESERVED_PREFIXES = ("_", ".")


def partition_name(day: date) -> str:
    return f"date={day.isoformat()}"


def parse_partition(name: str, where: str) -> date | None:
    """The day of a partition named ``name`` (``date=YYYY-MM-DD``); None if it is no partition.

    Args:
        name: A directory name (or key prefix) in the lake.
        where: The lake's URI, for the message.

    Raises:
        InvalidPartitionError: ``name`` starts with ``date=`` but is not a valid date
            (``date=2013-02-30``, ``date=2013-2-3``): a partition that cannot be placed.
    """
    if not name.startswith("date="):
        return None
    m = PARTITION_RE.match(name)
    reason = "not of the form date=YYYY-MM-DD"
    if m:
        try:
            return date.fromisoformat(m.group(1))
        except ValueError as exc:
            reason = str(exc)
    raise InvalidPartitionError(
        f"The partition {name} in {where} is not a valid date ({reason}). Rename it to "
        "date=YYYY-MM-DD of the day its rows belong to, or move it out of the lake.",
        partition=name,
        file=f"{where.rstrip('/')}/{name}",
    )


@dataclass(frozen=True)
class Part:
    """The rows of one stored file, and the partition it belongs to.

    Attributes:
        day: The partition's day; None for sources without day partitions (SQL).
        uri: Where the rows were read from (a file, an ``s3://`` object, a table).
        frame: The rows, as stored.
    """

    day: date | None
    uri: str
    frame: pd.DataFrame

    @property
    def label(self) -> str:
        """``date=YYYY-MM-DD/<file>`` (or the URI when there is no partition)."""
        if self.day is None:
            return self.uri
        return f"{partition_name(self.day)}/{self.uri.rstrip('/').rsplit('/', 1)[-1]}"


def naive_in_zone(frame: pd.DataFrame, column: str, time_zone: str) -> pd.DataFrame:
    """``frame`` with a zone-aware ``column`` converted to ``time_zone`` and made naive."""
    import pandas as pd

    if column not in frame.columns:
        return frame
    values = frame[column]
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        converted = values.dt.tz_convert(time_zone).dt.tz_localize(None)
    elif pd.api.types.is_object_dtype(values.dtype) and any(
        getattr(v, "tzinfo", None) is not None for v in values.dropna().head(1)
    ):  # zone-aware timestamps of several zones or offsets
        converted = pd.to_datetime(values, utc=True).dt.tz_convert(time_zone).dt.tz_localize(None)
    else:
        return frame
    return frame.assign(**{column: converted})


def days_between(start: date, end: date) -> list[date]:
    """The days of ``[start, end)``."""
    return [start + timedelta(days=i) for i in range((end - start).days)]


class Source(ABC):
    """A day-partitioned store of raw rows."""

    def __init__(self, time_column: str) -> None:
        self.time_column = time_column
        #: The pipeline's ``time_zone`` (set by :func:`make_source`): zone-aware times are
        #: read as naive local times of this zone, and days are cut in it.
        self.time_zone: str | None = None

    @property
    @abstractmethod
    def uri(self) -> str:
        """Where the data lives, for manifests and messages."""

    @abstractmethod
    def partitions(self) -> list[date]:
        """The days that hold data, sorted."""

    @abstractmethod
    def read_days(self, days: list[date]) -> pd.DataFrame:
        """Rows of the given days (which must exist), concatenated in day order."""

    @abstractmethod
    def write_partition(self, day: date, frame: pd.DataFrame) -> None:
        """Write (or replace) one day's rows atomically."""

    def write_partition_file(self, day: date, path: Path) -> None:
        """Write (or replace) one day with the rows of a local Parquet file, atomically.

        Sources that store Parquet override this to publish the file as it is
        (a rename, an upload) instead of reading it into memory; ``path`` is
        consumed (moved or deleted).

        Args:
            day: The partition's day; every row of the file must fall on it.
            path: A Parquet file.
        """
        import pyarrow.parquet as pq

        self.write_partition(day, pq.read_table(path).to_pandas())
        path.unlink()

    def read_parts(self, days: list[date]) -> list[Part]:
        """The rows of ``days`` file by file, each with its partition, in day order.

        Sources that store days as files override this; the default is one part
        holding all the rows, without a partition.
        """
        return [Part(None, self.uri, self.read_days(days))] if days else []

    def unknown_entries(self) -> list[str]:
        """Entries of the store that are neither partitions, their Parquet files, nor
        reserved (``_`` or ``.`` prefix); the data contract lists them as a warning."""
        return []

    def read_window(self, start: date, end: date) -> pd.DataFrame:
        """Rows whose day is in ``[start, end)``; an empty frame when there are none.

        With a ``time_zone``, zone-aware times are converted to it and made naive.
        """
        import pandas as pd

        days = [d for d in self.partitions() if start <= d < end]
        if not days:
            return pd.DataFrame()
        frame = self.read_days(days)
        if self.time_zone:
            frame = naive_in_zone(frame, self.time_column, self.time_zone)
        return frame

    def count_rows(self, start: date, end: date) -> int:
        """Rows in ``[start, end)`` (sources with cheaper counts override this)."""
        return len(self.read_window(start, end)) if start < end else 0

    def write_frame(self, frame: pd.DataFrame) -> list[date]:
        """Split ``frame`` by the day of the time column and write each day."""
        import pandas as pd

        ts = pd.to_datetime(frame[self.time_column])
        if self.time_zone and isinstance(ts.dtype, pd.DatetimeTZDtype):
            ts = ts.dt.tz_convert(self.time_zone)  # days of the pipeline's zone
        written = []
        for day, part in frame.groupby(ts.dt.date, sort=True):
            self.write_partition(day, part.reset_index(drop=True))
            written.append(day)
        return written


class ParquetLakeSource(Source):
    """Local Parquet lake: ``<root>/date=YYYY-MM-DD/part-0.parquet``."""

    def __init__(self, root: Path, time_column: str) -> None:
        super().__init__(time_column)
        self.root = Path(root)

    @property
    def uri(self) -> str:
        return str(self.root)

    def partitions(self) -> list[date]:
        if not self.root.is_dir():
            return []
        out = []
        for child in self.root.iterdir():
            if child.is_dir():
                day = parse_partition(child.name, self.uri)
                if day is not None:
                    out.append(day)
        return sorted(out)

    def read_parts(self, days: list[date]) -> list[Part]:
        """Each Parquet file of ``days``, in day and file-name order."""
        parts = []
        for day in days:
            directory = self.root / partition_name(day)
            for file in sorted(directory.glob("*.parquet")):
                parts.append(Part(day, str(file), read_parquet(file, uri=str(file), day=day)))
        return parts

    def read_days(self, days: list[date]) -> pd.DataFrame:
        import pandas as pd

        frames = [part.frame for part in self.read_parts(days)]
        if not frames:
            return pd.DataFrame()
        return pd.concat(frames, ignore_index=True)

    def unknown_entries(self) -> list[str]:
        if not self.root.is_dir():
            return []
        out = []
        for child in sorted(self.root.iterdir()):
            if child.name.startswith(RESERVED_PREFIXES):
                continue
            if not (child.is_dir() and PARTITION_RE.match(child.name)):
                out.append(child.name + ("/" if child.is_dir() else ""))
                continue
            for inner in sorted(child.iterdir()):
                if not (inner.name.startswith(RESERVED_PREFIXES) or inner.suffix == ".parquet"):
                    out.append(f"{child.name}/{inner.name}" + ("/" if inner.is_dir() else ""))
        return out

    def count_rows(self, start: date, end: date) -> int:
        """Rows in ``[start, end)`` from the Parquet footers alone (no data read)."""
        import pyarrow.parquet as pq

        return sum(
            pq.ParquetFile(f).metadata.num_rows
            for d in self.partitions()
            if start <= d < end
            for f in (self.root / partition_name(d)).glob("*.parquet")
        )

    def write_partition(self, day: date, frame: pd.DataFrame) -> None:
        self._publish(day, lambda part: frame.to_parquet(part, index=False))

    def write_partition_file(self, day: date, path: Path) -> None:
        """Move the Parquet file ``path`` into place as the day's only part (a rename when
        ``path`` is on the lake's file system, e.g. under a temporary directory in it)."""
        self._publish(day, lambda part: shutil.move(path, part))

    def _publish(self, day: date, write: Callable[[Path], object]) -> None:
        """``write(part_path)`` into a hidden directory, then swap it in as the partition."""
        target = self.root / partition_name(day)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=self.root))
        try:
            write(tmp / PART_FILE)
            if target.exists():
                old = target.with_name(f".{target.name}.old.{os.getpid()}")
                target.rename(old)
                tmp.rename(target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                tmp.rename(target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


def make_source(config: PipelineConfig) -> Source:
    """The source a pipeline config describes.

    A ``parquet`` source with a relative path lives under the lake root
    (:func:`~retrainflow.settings.lake_root`): when ``RETRAINFLOW_LAKE_URI`` is
    ``s3://bucket/prefix`` it is an :class:`~retrainflow.data.s3.S3ParquetSource` at
    ``<prefix>/<path>`` (endpoint and region from ``AWS_ENDPOINT_URL`` and
    ``AWS_DEFAULT_REGION``).
    """
    src = config.source
    source: Source
    lake = (
        settings.lake_root()
        if src.kind == "parquet" and not Path(src.path).expanduser().is_absolute()
        else None
    )
    if src.kind == "parquet" and isinstance(lake, settings.S3Location):
        from retrainflow.data.s3 import S3ParquetSource

        env = os.environ.get
        source = S3ParquetSource(
            bucket=lake.bucket,
            prefix=lake.key(src.path),
            endpoint_url=env("AWS_ENDPOINT_URL_S3") or env("AWS_ENDPOINT_URL"),
            region=env("AWS_REGION") or env("AWS_DEFAULT_REGION") or "us-east-1",
            time_column=config.time_column,
        )
    elif src.kind == "parquet":
        source = ParquetLakeSource(src.resolved_path(), config.time_column)
    elif src.kind == "s3":
        from retrainflow.data.s3 import S3ParquetSource

        source = S3ParquetSource(
            bucket=src.bucket,
            prefix=src.prefix,
            endpoint_url=src.endpoint_url,
            region=src.region,
            time_column=config.time_column,
        )
    elif src.kind == "sql":
        from retrainflow.data.sql import SqlSource

        source = SqlSource(url=src.url, table=src.table, time_column=config.time_column)
    else:
        raise AssertionError(f"unhandled source kind {src.kind!r}")
    source.time_zone = config.time_zone
    return source


def read_parquet(data: Path | bytes, *, uri: str, day: date) -> pd.DataFrame:
    """One Parquet file (a path, or an object's bytes) as a frame.

    Raises:
        CorruptDataError: naming ``uri`` and the partition to rewrite.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(io.BytesIO(data) if isinstance(data, bytes) else data).to_pandas()
    # pyarrow raises ArrowInvalid/OSError for bad bytes; pandas metadata can add more
    except (pa.ArrowException, OSError, ValueError, TypeError, KeyError) as exc:
        raise CorruptDataError(
            f"The Parquet file {uri} cannot be read ({type(exc).__name__}: {exc}). "
            f"Re-write the partition {partition_name(day)} or remove it.",
            file=uri,
        ) from None


def fingerprint(frame: pd.DataFrame) -> str:
    """A content hash of a frame (values and column names, not row order of the index)."""
    import pandas as pd

    h = hashlib.sha256()
    h.update(",".join(map(str, frame.columns)).encode())
    h.update(",".join(str(t) for t in frame.dtypes).encode())
    if len(frame):
        h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()[:32]


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """``frame`` serialized as one Parquet file."""
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()
