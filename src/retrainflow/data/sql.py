"""Rows in a SQL table, partitioned by the calendar day of the time column.

Works with any SQLAlchemy 2 URL; tested against PostgreSQL and SQLite. A window
is one ``SELECT`` with a parameterised range condition on the time column, and a
partition write is ``DELETE`` of that day + ``INSERT`` of the new rows in one
transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from retrainflow.data.sources import Source
from retrainflow.exceptions import DataError

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy import ColumnElement, Connection, Engine, TableClause

#: Bound parameters per INSERT statement (PostgreSQL allows 65535, SQLite 32766).
_MAX_PARAMS = 10_000


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min)


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """``days`` as sorted, merged half-open ranges ``[start, end)`` of consecutive days."""
    runs: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if runs and runs[-1][1] == day:
            runs[-1] = (runs[-1][0], day + timedelta(days=1))
        else:
            runs.append((day, day + timedelta(days=1)))
    return runs


def _as_date(value: Any) -> date:
    """A date from what a driver returns for ``CAST(x AS DATE)`` / SQLite ``date(x)``."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


class SqlSource(Source):
    """A table in a SQLAlchemy database; one partition per calendar day of the time column."""

    def __init__(self, url: str, table: str, time_column: str) -> None:
        """Describe the table; no connection is opened until it is used.

        Args:
            url: SQLAlchemy URL, e.g. ``postgresql+psycopg2://user:pw@host/db``.
            table: Table name, optionally ``schema.table``.
            time_column: Column whose calendar day partitions the rows.

        Raises:
            DataError: ``url`` is not a valid SQLAlchemy URL.
        """
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        super().__init__(time_column)
        try:
            self._url = make_url(url)
        except ArgumentError as exc:
            raise DataError(f"'{url}' is not a valid SQLAlchemy URL: {exc}") from None
        self.url = url
        schema, _, name = table.rpartition(".")
        self.table = table
        self.table_name = name
        self.schema = schema or None
        self._engine: Engine | None = None

    # -- plumbing -----------------------------------------------------------------------------

    @property
    def safe_url(self) -> str:
        """The URL with its password replaced by ``***``."""
        return self._url.render_as_string(hide_password=True)

    @property
    def uri(self) -> str:
        """``<url without password>#<table>``."""
        return f"{self.safe_url}#{self.table}"

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, created on first use."""
        if self._engine is None:
            from sqlalchemy import create_engine

            self._engine = create_engine(self._url, pool_pre_ping=True)
        return self._engine

    def close(self) -> None:
        """Close the pooled connections (the source stays usable; it reconnects on demand)."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _unreachable(self, exc: Exception) -> DataError:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        first = detail[0] if detail else type(exc).__name__
        if self._url.password:
            first = first.replace(str(self._url.password), "***")
        return DataError(
            f"Cannot connect to the database {self.safe_url}: {first}", url=self.safe_url
        )

    @contextmanager
    def _connect(self, *, transaction: bool = False) -> Iterator[Connection]:
        """A connection (in a transaction committed on success when ``transaction``).

        Raises:
            DataError: The database cannot be reached (message names the URL, no password).
        """
        from sqlalchemy.exc import DBAPIError, OperationalError

        try:
            conn = self.engine.connect()
        except (OperationalError, DBAPIError) as exc:
            raise self._unreachable(exc) from None
        with conn:
            if transaction:
                with conn.begin():
                    yield conn
            else:
                yield conn

    def _reflect(self, conn: Connection) -> TableClause | None:
        """The table's columns as they exist in the database; ``None`` when there is no table.

        Only the column list is read (one catalog query), not indexes or constraints.

        Raises:
            DataError: The table exists but has no time column.
        """
        from sqlalchemy import column, inspect, table
        from sqlalchemy.exc import NoSuchTableError

        try:
            columns = inspect(conn).get_columns(self.table_name, schema=self.schema)
        except NoSuchTableError:
            return None
        if not columns:  # some dialects answer [] instead of raising
            return None
        clause = table(
            self.table_name, *(column(c["name"], c["type"]) for c in columns), schema=self.schema
        )
        if self.time_column not in clause.c:
            raise DataError(
                f"The table {self.table} in {self.safe_url} has no column '{self.time_column}' "
                f"(columns: {', '.join(clause.c.keys())}).",
                url=self.safe_url,
            )
        return clause

    def _in_days(self, table: TableClause, days: list[date]) -> ColumnElement[bool]:
        """``time_column`` in any of ``days``, as half-open ranges (parameterised)."""
        from sqlalchemy import and_, or_

        col = table.c[self.time_column]
        return or_(
            *(and_(col >= _day_start(start), col < _day_start(end)) for start, end in _runs(days))
        )

    # -- Source API ---------------------------------------------------------------------------

    def partitions(self) -> list[date]:
        """The distinct calendar days of the time column, sorted.

        Returns:
            Sorted days; empty when the table does not exist or holds no rows.

        Raises:
            DataError: The database is unreachable or the table has no time column.
        """
        from sqlalchemy import Date, cast, func, select

        with self._connect() as conn:
            table = self._reflect(conn)
            if table is None:
                return []
            col = table.c[self.time_column]
            # SQLite has no DATE type: CAST(x AS DATE) would yield a number; date(x) is its way.
            day = func.date(col) if conn.dialect.name == "sqlite" else cast(col, Date)
            rows = conn.execute(select(day).where(col.is_not(None)).distinct()).scalars()
            return sorted({_as_date(v) for v in rows if v is not None})

    def read_days(self, days: list[date]) -> pd.DataFrame:
        """Rows of ``days`` in one query, ordered by the time column.

        Args:
            days: Days to read (need not be consecutive).

        Returns:
            The rows; the time column is ``datetime64[ns]`` (naive columns) and the
            other columns keep their natural dtypes (``int64``, ``float64``, ``object``).
            An empty frame with no columns when the table does not exist or ``days``
            is empty.

        Raises:
            DataError: The database is unreachable or the table has no time column.
        """
        import pandas as pd
        from sqlalchemy import select

        if not days:
            return pd.DataFrame()
        with self._connect() as conn:
            table = self._reflect(conn)
            if table is None:
                return pd.DataFrame()
            query = (
                select(table).where(self._in_days(table, days)).order_by(table.c[self.time_column])
            )
            frame = pd.read_sql(query, conn)
        return self._fix_dtypes(frame, table)

    def _fix_dtypes(self, frame: pd.DataFrame, table: TableClause) -> pd.DataFrame:
        """Align dtypes with what the Parquet sources return.

        Drivers hand back Python objects; an empty result would be all ``object``
        columns, and SQLite returns times as strings unless told otherwise.
        """
        import pandas as pd

        for column in table.c:
            name = column.name
            if name not in frame.columns:
                continue
            try:
                py_type = column.type.python_type
            except NotImplementedError:
                continue
            series = frame[name]
            if py_type is datetime or name == self.time_column:
                converted = pd.to_datetime(series)
                if getattr(converted.dt, "tz", None) is None:
                    converted = converted.astype("datetime64[ns]")
                frame[name] = converted
            elif series.dtype == object and len(series) == 0:
                if py_type is int:
                    frame[name] = series.astype("int64")
                elif py_type is float:
                    frame[name] = series.astype("float64")
                elif py_type is bool:
                    frame[name] = series.astype("bool")
        return frame

    def write_partition(self, day: date, frame: pd.DataFrame) -> None:
        """Replace one day's rows: ``DELETE`` the day then ``INSERT`` ``frame``, in one transaction.

        The table is created from ``frame``'s dtypes on the first write.

        Args:
            day: The day to replace.
            frame: Its rows; every time must fall on ``day``.

        Raises:
            DataError: ``frame`` lacks the time column or holds rows of other days, the
                database is unreachable, or the existing table has no time column.
        """
        import pandas as pd
        from sqlalchemy import delete

        if self.time_column not in frame.columns:
            raise DataError(
                f"Cannot write to {self.uri}: the frame has no column '{self.time_column}'."
            )
        ts = pd.to_datetime(frame[self.time_column])
        outside = ts.notna() & (ts.dt.date != day)
        if outside.any():
            raise DataError(
                f"Cannot write the partition {day} to {self.uri}: {int(outside.sum())} rows fall "
                f"on other days (first: {ts[outside].iloc[0]})."
            )
        chunksize = max(1, _MAX_PARAMS // max(1, len(frame.columns)))
        with self._connect(transaction=True) as conn:
            table = self._reflect(conn)
            if table is not None:
                conn.execute(delete(table).where(self._in_days(table, [day])))
            frame.to_sql(
                self.table_name,
                conn,
                schema=self.schema,
                if_exists="append",
                index=False,
                method="multi",
                chunksize=chunksize,
            )
