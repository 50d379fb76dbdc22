"""One contract, every source.

The same tests run against:

* ``parquet`` — :class:`ParquetLakeSource` in ``tmp_path``;
* ``s3`` — :class:`S3ParquetSource` against moto's standalone S3 server on 127.0.0.1
  (a real HTTP endpoint, one bucket per test);
* ``postgres`` — :class:`SqlSource` against the PostgreSQL at 127.0.0.1:5432, database
  ``test`` (one uniquely named table per test, dropped afterwards; skipped if unreachable);
* ``sqlite`` — :class:`SqlSource` on a SQLite file in ``tmp_path``.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrainflow.data.sources import ParquetLakeSource, Source
from retrainflow.exceptions import CorruptDataError, DataError

TIME = "event_time"
PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_URL = f"postgresql+psycopg2://postgres@{PG_HOST}:{PG_PORT}/test"
D1, D2, D3 = date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 3)
EXPECTED_DTYPES = {
    TIME: np.dtype("datetime64[ns]"),
    "id": np.dtype("int64"),
    "amount": np.dtype("float64"),
    "label": np.dtype("object"),
}


def sample_frame() -> pd.DataFrame:
    """Three days of rows, including both edges of each day and a missing float."""
    times = [
        "2024-03-01 00:00:00",  # first instant of D1
        "2024-03-01 12:30:00.123456",
        "2024-03-01 23:59:59.999999",  # last microsecond of D1
        "2024-03-02 00:00:00",
        "2024-03-02 08:15:42.5",
        "2024-03-03 06:00:00",
        "2024-03-03 18:45:01",
        "2024-03-03 23:59:59",
    ]
    n = len(times)
    return pd.DataFrame(
        {
            TIME: pd.to_datetime(times, format="ISO8601").astype("datetime64[ns]"),
            "id": np.arange(n, dtype="int64") * 1_000_000_007,  # beyond int32
            "amount": [1.5, -2.25, np.nan, 1e-9, 3.0, 123456.789, 0.0, -1e12],
            "label": ["a", "b", "ünïcode", "d", "e'quote", 'f"dq', "g;--", "h"],
        }
    )


def rows_of(frame: pd.DataFrame, days: list[date]) -> pd.DataFrame:
    return frame[frame[TIME].dt.date.isin(days)].reset_index(drop=True)


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """Sorted rows, so sources that order rows differently within a day compare equal."""
    return frame.sort_values([TIME, "id"], kind="stable").reset_index(drop=True)


def assert_same_rows(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(actual.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(canonical(actual), canonical(expected), check_dtype=True)


# -- servers ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def aws_env() -> Iterator[None]:
    """Fake credentials; no shared config/credentials files from the machine."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("AWS_CONFIG_FILE", os.devnull)
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        for var in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            mp.delenv(var, raising=False)
        yield


@pytest.fixture(scope="session")
def s3_endpoint(aws_env: None) -> Iterator[str]:
    """URL of a moto S3 server running in a thread for the whole session."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one INFO line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_available() -> None:
    """Skip (with the reason) unless PostgreSQL answers at 127.0.0.1:5432."""
    import sqlalchemy as sa

    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=2):
            pass
        engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except (OSError, sa.exc.SQLAlchemyError) as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {type(exc).__name__}: {exc}")


def _s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


# -- the parametrised source ------------------------------------------------------------------


@dataclass
class Case:
    """A source under test, and how to corrupt one of its partitions."""

    kind: str
    source: Source
    #: Overwrite a day's stored data with garbage; returns the name the error must mention.
    corrupt: Callable[[date], str] | None = None


def _parquet_case(tmp_path: Path) -> Case:
    root = tmp_path / "lake"
    source = ParquetLakeSource(root, TIME)

    def corrupt(day: date) -> str:
        file = root / f"date={day.isoformat()}" / "part-0.parquet"
        file.write_bytes(b"this is not parquet")
        return str(file)

    return Case("parquet", source, corrupt)


def _s3_case(endpoint: str) -> Iterator[Case]:
    from retrainflow.data.s3 import S3ParquetSource

    bucket = f"rf-test-{uuid.uuid4().hex[:12]}"
    client = _s3_client(endpoint)
    client.create_bucket(Bucket=bucket)
    source = S3ParquetSource(
        bucket=bucket,
        prefix="/lake/events/",
        endpoint_url=endpoint,
        region="us-east-1",
        time_column=TIME,
    )

    def corrupt(day: date) -> str:
        key = f"lake/events/date={day.isoformat()}/part-0.parquet"
        client.put_object(Bucket=bucket, Key=key, Body=b"this is not parquet")
        return f"s3://{bucket}/{key}"

    yield Case("s3", source, corrupt)
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=obj["Key"])
    client.delete_bucket(Bucket=bucket)


def _sql_case(kind: str, url: str) -> Iterator[Case]:
    import sqlalchemy as sa

    from retrainflow.data.sql import SqlSource

    table = f"rf_test_{uuid.uuid4().hex[:12]}"
    source = SqlSource(url=url, table=table, time_column=TIME)
    yield Case(kind, source)
    source.close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(f"DROP TABLE IF EXISTS {engine.dialect.identifier_preparer.quote(table)}")
        )
    engine.dispose()


@pytest.fixture(params=["parquet", "s3", "postgres", "sqlite"])
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Case]:
    kind = request.param
    if kind == "parquet":
        yield _parquet_case(tmp_path)
    elif kind == "s3":
        yield from _s3_case(request.getfixturevalue("s3_endpoint"))
    elif kind == "postgres":
        request.getfixturevalue("postgres_available")
        yield from _sql_case(kind, PG_URL)
    else:
        yield from _sql_case(kind, f"sqlite:///{tmp_path / 'lake.db'}")


# -- the contract -----------------------------------------------------------------------------


def test_empty_source_has_no_partitions(case: Case) -> None:
    assert case.source.partitions() == []
    assert len(case.source.read_window(D1, D3)) == 0


def test_write_frame_lists_each_day(case: Case) -> None:
    assert case.source.write_frame(sample_frame()) == [D1, D2, D3]
    assert case.source.partitions() == [D1, D2, D3]


@pytest.mark.parametrize(
    ("start", "end", "days"),
    [
        (D1, D3, [D1, D2]),  # end is exclusive
        (D2, D3, [D2]),
        (D1, date(2024, 3, 4), [D1, D2, D3]),
        (date(2024, 2, 1), date(2024, 12, 31), [D1, D2, D3]),
    ],
)
def test_read_window_returns_exactly_the_rows_of_the_window(
    case: Case, start: date, end: date, days: list[date]
) -> None:
    frame = sample_frame()
    case.source.write_frame(frame)
    got = case.source.read_window(start, end)
    assert_same_rows(got, rows_of(frame, days))
    # concatenated in day order
    assert got[TIME].dt.date.is_monotonic_increasing


def test_read_days_skips_days_not_asked_for(case: Case) -> None:
    frame = sample_frame()
    case.source.write_frame(frame)
    assert_same_rows(case.source.read_days([D1, D3]), rows_of(frame, [D1, D3]))


def test_dtypes_match_the_parquet_source(case: Case, tmp_path: Path) -> None:
    frame = sample_frame()
    reference = ParquetLakeSource(tmp_path / "reference", TIME)
    reference.write_frame(frame)
    case.source.write_frame(frame)
    got = case.source.read_window(D1, D3)
    want = reference.read_window(D1, D3)
    assert dict(want.dtypes) == EXPECTED_DTYPES
    assert dict(got.dtypes) == dict(want.dtypes)
    assert isinstance(got[TIME].iloc[0], pd.Timestamp)
    assert isinstance(got["label"].iloc[0], str)


def test_rewriting_a_day_replaces_it(case: Case) -> None:
    frame = sample_frame()
    case.source.write_frame(frame)
    replacement = pd.DataFrame(
        {
            TIME: pd.to_datetime(["2024-03-02 09:00:00", "2024-03-02 10:00:00"]).astype(
                "datetime64[ns]"
            ),
            "id": np.array([7, 8], dtype="int64"),
            "amount": [70.0, 80.0],
            "label": ["new-1", "new-2"],
        }
    )
    case.source.write_partition(D2, replacement)
    case.source.write_partition(D2, replacement)  # twice: still no duplicates
    assert case.source.partitions() == [D1, D2, D3]
    assert_same_rows(case.source.read_window(D2, D3), replacement)
    expected = pd.concat([rows_of(frame, [D1]), replacement, rows_of(frame, [D3])])
    assert_same_rows(case.source.read_window(D1, date(2024, 3, 4)), expected)


def test_rewriting_with_write_frame_is_idempotent(case: Case) -> None:
    frame = sample_frame()
    case.source.write_frame(frame)
    case.source.write_frame(frame)
    assert_same_rows(case.source.read_window(D1, date(2024, 3, 4)), frame)


@pytest.mark.parametrize(
    ("start", "end"),
    [(date(2024, 2, 1), D1), (date(2024, 3, 4), date(2024, 4, 1)), (D2, D2)],
)
def test_empty_window_gives_an_empty_frame(case: Case, start: date, end: date) -> None:
    case.source.write_frame(sample_frame())
    got = case.source.read_window(start, end)
    assert isinstance(got, pd.DataFrame)
    assert got.empty


@pytest.mark.parametrize("case", ["parquet", "s3"], indirect=True)  # SQL: nothing to corrupt
def test_corrupt_data_raises_an_error_naming_it(case: Case) -> None:
    assert case.corrupt is not None
    case.source.write_frame(sample_frame())
    name = case.corrupt(D2)
    assert_same_rows(case.source.read_window(D1, D2), rows_of(sample_frame(), [D1]))
    with pytest.raises(CorruptDataError) as info:
        case.source.read_window(D1, D3)
    assert name in str(info.value)
    assert info.value.code == "corrupt_data"


def test_uri_names_the_location(case: Case) -> None:
    uri = case.source.uri
    assert uri
    if case.kind == "s3":
        assert uri.startswith("s3://rf-test-") and uri.endswith("/lake/events")


# -- source-specific failures -----------------------------------------------------------------


def test_s3_missing_bucket_names_it(s3_endpoint: str) -> None:
    from retrainflow.data.s3 import S3ParquetSource

    source = S3ParquetSource(
        bucket="rf-no-such-bucket",
        prefix="x",
        endpoint_url=s3_endpoint,
        region="us-east-1",
        time_column=TIME,
    )
    for action in (source.partitions, lambda: source.write_partition(D1, sample_frame())):
        with pytest.raises(DataError) as info:
            action()
        assert "rf-no-such-bucket" in str(info.value)
        assert "does not exist" in str(info.value)


def test_s3_rewrite_removes_other_files_of_the_day(s3_endpoint: str) -> None:
    from retrainflow.data.s3 import S3ParquetSource
    from retrainflow.data.sources import parquet_bytes

    for case in _s3_case(s3_endpoint):
        assert isinstance(case.source, S3ParquetSource)
        frame = sample_frame()
        case.source.write_frame(frame)
        client = _s3_client(s3_endpoint)
        extra = rows_of(frame, [D2]).assign(id=lambda f: f["id"] + 1)
        client.put_object(
            Bucket=case.source.bucket,
            Key="lake/events/date=2024-03-02/part-1.parquet",
            Body=parquet_bytes(extra),
        )
        assert len(case.source.read_days([D2])) == 2 * len(extra)
        case.source.write_partition(D2, rows_of(frame, [D2]))
        assert_same_rows(case.source.read_days([D2]), rows_of(frame, [D2]))


def test_s3_lists_more_than_one_page(s3_endpoint: str) -> None:
    from retrainflow.data.s3 import S3ParquetSource
    from retrainflow.data.sources import parquet_bytes

    for case in _s3_case(s3_endpoint):
        assert isinstance(case.source, S3ParquetSource)
        client = _s3_client(s3_endpoint)
        case.source.list_page_size = 3  # 25 partitions + noise = 10 pages
        body = parquet_bytes(rows_of(sample_frame(), [D1]))
        days = pd.date_range("2020-01-01", periods=25, freq="D").date
        for day in days:
            client.put_object(
                Bucket=case.source.bucket,
                Key=f"lake/events/date={day.isoformat()}/part-0.parquet",
                Body=body,
            )
        # noise that must not count as partitions
        client.put_object(Bucket=case.source.bucket, Key="lake/events/_SUCCESS", Body=b"")
        client.put_object(
            Bucket=case.source.bucket, Key="lake/other/date=2024-01-01/p.parquet", Body=body
        )
        assert case.source.partitions() == list(days)
        assert_same_rows(case.source.read_days([days[-1]]), rows_of(sample_frame(), [D1]))


def test_sql_unreachable_database_hides_the_password() -> None:
    from retrainflow.data.sql import SqlSource

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    source = SqlSource(
        url=f"postgresql+psycopg2://alice:s3cr3t-pw@127.0.0.1:{port}/nowhere",
        table="events",
        time_column=TIME,
    )
    with pytest.raises(DataError) as info:
        source.partitions()
    message = str(info.value)
    assert f"127.0.0.1:{port}/nowhere" in message
    assert "s3cr3t-pw" not in message
    assert "s3cr3t-pw" not in source.uri


def test_sql_rejects_rows_of_another_day(tmp_path: Path) -> None:
    from retrainflow.data.sql import SqlSource

    source = SqlSource(url=f"sqlite:///{tmp_path / 'x.db'}", table="events", time_column=TIME)
    with pytest.raises(DataError, match="other days"):
        source.write_partition(D1, sample_frame())
    assert source.partitions() == []


def test_sql_schema_qualified_table(postgres_available: None) -> None:
    import sqlalchemy as sa

    from retrainflow.data.sql import SqlSource

    schema = f"rf_schema_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    source = SqlSource(url=PG_URL, table=f"{schema}.Events", time_column=TIME)
    try:
        frame = sample_frame()
        source.write_frame(frame)
        assert source.partitions() == [D1, D2, D3]
        assert_same_rows(source.read_window(D2, date(2024, 3, 4)), rows_of(frame, [D2, D3]))
    finally:
        source.close()
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def test_sql_reads_a_table_it_did_not_create(postgres_available: None) -> None:
    """A TIMESTAMP/DATE-typed table made by someone else, with a mixed-case time column."""
    import sqlalchemy as sa

    from retrainflow.data.sql import SqlSource

    table = f"rf_ext_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE TABLE "{table}" ("Time" timestamp, x integer, y text)'))
        conn.execute(
            sa.text(f'INSERT INTO "{table}" VALUES (:t, :x, :y)'),
            [
                {"t": datetime(2024, 3, 1, 23, 59), "x": 1, "y": "a"},
                {"t": datetime(2024, 3, 2, 0, 0), "x": 2, "y": "b"},
            ],
        )
    source = SqlSource(url=PG_URL, table=table, time_column="Time")
    try:
        assert source.partitions() == [D1, D2]
        got = source.read_window(D2, D3)
        assert got["x"].tolist() == [2]
        assert got["Time"].dtype == np.dtype("datetime64[ns]")
    finally:
        source.close()
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP TABLE "{table}"'))
        engine.dispose()


def test_count_rows_matches_the_rows_read(tmp_path) -> None:
    """The lake counts from Parquet footers; the result equals what a read returns."""
    from datetime import date

    from retrainflow.data.sources import ParquetLakeSource
    from retrainflow.data.synthetic import make_synthetic

    source = ParquetLakeSource(tmp_path / "lake", "ts")
    source.write_frame(make_synthetic(date(2023, 1, 1), 5, 50, drift_day=None, seed=1))
    for start, end in (
        (date(2023, 1, 1), date(2023, 1, 6)),
        (date(2023, 1, 2), date(2023, 1, 4)),
        (date(2023, 1, 4), date(2023, 1, 4)),
    ):
        assert source.count_rows(start, end) == len(source.read_window(start, end))
    assert source.count_rows(date(2023, 1, 2), date(2023, 1, 4)) == 100


# -- the data contract's read path: the same in the local lake and S3 (issue 8) --------------


def _put(case: Case, relative: str, body: bytes) -> None:
    """Store ``body`` at ``relative`` under the source's root (a file or an object)."""
    from retrainflow.data.s3 import S3ParquetSource

    if isinstance(case.source, ParquetLakeSource):
        path = case.source.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    else:
        assert isinstance(case.source, S3ParquetSource)
        key = case.source.prefix + relative
        case.source.client.put_object(Bucket=case.source.bucket, Key=key, Body=body)


def _events_config(**changes: Any) -> Any:
    from retrainflow.config import parse_config

    data = {
        "name": "events",
        "task": "regression",
        "target": "amount",
        "time_column": TIME,
        "source": {"kind": "parquet", "path": "events"},
        "features": {"numeric": ["id"], "categorical": ["label"]},
        "evaluation": {"primary_metric": "mae"},
        **changes,
    }
    return parse_config(data)


@pytest.mark.parametrize("case", ["parquet", "s3"], indirect=True)
def test_read_parts_names_each_file_and_its_partition(case: Case) -> None:
    from retrainflow.data.sources import parquet_bytes

    frame = sample_frame()
    case.source.write_frame(frame)
    _put(case, "date=2024-03-02/part-1.parquet", parquet_bytes(rows_of(frame, [D2])))
    parts = case.source.read_parts([D1, D2])
    assert [(p.day, p.label) for p in parts] == [
        (D1, "date=2024-03-01/part-0.parquet"),
        (D2, "date=2024-03-02/part-0.parquet"),
        (D2, "date=2024-03-02/part-1.parquet"),
    ]
    assert parts[2].uri.startswith(case.source.uri) and parts[2].uri.endswith("part-1.parquet")
    assert_same_rows(parts[0].frame, rows_of(frame, [D1]))


@pytest.mark.parametrize("case", ["parquet", "s3"], indirect=True)
def test_a_partition_that_is_not_a_date_is_a_user_error(case: Case) -> None:
    from retrainflow.data.sources import parquet_bytes
    from retrainflow.exceptions import InvalidPartitionError, UserError

    case.source.write_frame(sample_frame())
    _put(case, "date=2024-02-30/part-0.parquet", parquet_bytes(rows_of(sample_frame(), [D1])))
    for action in (case.source.partitions, lambda: case.source.read_window(D1, D3)):
        with pytest.raises(InvalidPartitionError, match="date=2024-02-30 in .* not a valid date"):
            action()
    assert issubclass(InvalidPartitionError, UserError)


@pytest.mark.parametrize("case", ["parquet", "s3"], indirect=True)
def test_unknown_entries_are_listed_and_reserved_ones_are_not(case: Case) -> None:
    case.source.write_frame(sample_frame())
    for name in (
        "notes.txt",
        "misc/x.parquet",
        "_ingest/ledger.json",
        "date=2024-03-01/readme.md",
        "date=2024-03-01/_SUCCESS",
    ):
        _put(case, name, b"x")
    assert case.source.unknown_entries() == ["date=2024-03-01/readme.md", "misc/", "notes.txt"]
    assert case.source.partitions() == [D1, D2, D3]


@pytest.mark.parametrize("case", ["parquet", "s3"], indirect=True)
def test_the_contract_names_a_second_identical_file(case: Case) -> None:
    from retrainflow.data.contract import ContractReader
    from retrainflow.data.sources import parquet_bytes
    from retrainflow.exceptions import DuplicateRowsError

    frame = sample_frame()
    case.source.write_frame(frame)
    _put(case, "date=2024-03-02/part-1.parquet", parquet_bytes(rows_of(frame, [D2])))
    with pytest.raises(DuplicateRowsError) as info:
        ContractReader(case.source, _events_config()).read_window(D1, D3, "training")
    assert (
        "date=2024-03-02/part-1.parquet is an identical copy of date=2024-03-02/part-0.parquet"
        in str(info.value)
    )
    assert info.value.details["file"] == f"{case.source.uri}/date=2024-03-02/part-1.parquet"
    reader = ContractReader(case.source, _events_config(expectations={"duplicates": "drop"}))
    assert_same_rows(reader.read_window(D1, D3, "training"), rows_of(frame, [D1, D2]))
    assert reader.report()["duplicates_dropped"] == {"training": 2}


@pytest.mark.parametrize("case", ["parquet", "s3", "sqlite"], indirect=True)
def test_the_contract_refuses_duplicated_rows_in_every_source(case: Case) -> None:
    from retrainflow.data.contract import ContractReader
    from retrainflow.exceptions import DuplicateRowsError

    frame = sample_frame()
    case.source.write_frame(pd.concat([frame, frame.iloc[[3]]], ignore_index=True))
    with pytest.raises(DuplicateRowsError, match="1 row is an exact copy of another row, in "):
        ContractReader(case.source, _events_config()).read_window(D1, D3, "training")


@pytest.mark.parametrize("case", ["parquet", "s3"], indirect=True)  # SQLite stores no zone
def test_the_contract_refuses_aware_times_without_a_time_zone(case: Case) -> None:
    from retrainflow.data.contract import ContractReader
    from retrainflow.exceptions import TimeZoneError

    frame = sample_frame()
    aware = frame.assign(**{TIME: frame[TIME].dt.tz_localize("UTC")})
    case.source.write_frame(aware)
    with pytest.raises(TimeZoneError, match="zone-aware timestamps"):
        ContractReader(case.source, _events_config()).read_window(D1, D3, "training")
    reader = ContractReader(case.source, _events_config(time_zone="UTC"))
    got = reader.read_window(D1, D3, "training")
    assert_same_rows(got, rows_of(frame, [D1, D2]))
