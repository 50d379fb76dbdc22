"""Data sources: where windows of rows come from.

Every source stores rows partitioned by the calendar day of the pipeline's
time column and answers three questions: which days exist, what rows fall in a
window ``[start, end)`` of days, and (for seeding and tests) how to write one
day. Implementations:

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
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from retrainflow.exceptions import CorruptDataError

if TYPE_CHECKING:
    import pandas as pd

    from retrainflow.config import PipelineConfig

PARTITION_RE = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
PART_FILE = "part-0.parquet"


def partition_name(day: date) -> str:
    return f"date={day.isoformat()}"


def days_between(start: date, end: date) -> list[date]:
    """The days of ``[start, end)``."""
    return [start + timedelta(days=i) for i in range((end - start).days)]


class Source(ABC):
    """A day-partitioned store of raw rows."""

    def __init__(self, time_column: str) -> None:
        self.time_column = time_column

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

    def read_window(self, start: date, end: date) -> pd.DataFrame:
        """Rows whose day is in ``[start, end)``; an empty frame when there are none."""
        import pandas as pd

        days = [d for d in self.partitions() if start <= d < end]
        if not days:
            return pd.DataFrame()
        return self.read_days(days)

    def count_rows(self, start: date, end: date) -> int:
        """Rows in ``[start, end)`` (sources with cheaper counts override this)."""
        return len(self.read_window(start, end)) if start < end else 0

    def write_frame(self, frame: pd.DataFrame) -> list[date]:
        """Split ``frame`` by the day of the time column and write each day."""
        import pandas as pd

        ts = pd.to_datetime(frame[self.time_column])
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
            m = PARTITION_RE.match(child.name)
            if m and child.is_dir():
                out.append(date.fromisoformat(m.group(1)))
        return sorted(out)

    def read_days(self, days: list[date]) -> pd.DataFrame:
        import pandas as pd

        frames = []
        for day in days:
            directory = self.root / partition_name(day)
            for file in sorted(directory.glob("*.parquet")):
                frames.append(read_parquet(file, uri=str(file), day=day))
        if not frames:
            return pd.DataFrame()
        return pd.concat(frames, ignore_index=True)

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
        target = self.root / partition_name(day)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=self.root))
        try:
            frame.to_parquet(tmp / PART_FILE, index=False)
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
    """The source a pipeline config describes."""
    src = config.source
    if src.kind == "parquet":
        return ParquetLakeSource(src.resolved_path(), config.time_column)
    if src.kind == "s3":
        from retrainflow.data.s3 import S3ParquetSource

        return S3ParquetSource(
            bucket=src.bucket,
            prefix=src.prefix,
            endpoint_url=src.endpoint_url,
            region=src.region,
            time_column=config.time_column,
        )
    if src.kind == "sql":
        from retrainflow.data.sql import SqlSource

        return SqlSource(url=src.url, table=src.table, time_column=config.time_column)
    raise AssertionError(f"unhandled source kind {src.kind!r}")


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
