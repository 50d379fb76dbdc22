"""``retrainflow ingest``: CSV / Parquet files and SQL queries into a pipeline's source.

Runs against the synthetic pipeline's local lake (``$RETRAINFLOW_HOME/lake/synthetic``,
empty under the ``home`` fixture), an S3 bucket on moto's server (the fixtures of
``test_sources``), and a SQLite file as the database of ``--sql``.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrainflow import settings
from retrainflow.cli.main import main
from retrainflow.config import PipelineConfig
from retrainflow.data.ingest import LEDGER_NAME, IngestProgress, ingest_files, ingest_sql
from retrainflow.data.sources import ParquetLakeSource, make_source
from retrainflow.exceptions import (
    IngestError,
    PartitionExistsError,
    TimeColumnError,
    TimeZoneError,
)
from tests.data.test_sources import aws_env, s3_endpoint  # noqa: F401 (fixtures)

D1 = date(2024, 3, 1)
COLUMNS = ["ts", "x1", "x2", "x3", "x4", "segment", "channel", "label"]


def rows(days: list[date], per_day: int = 4, *, seed: int = 0) -> pd.DataFrame:
    """``per_day`` rows of the synthetic pipeline's columns on each of ``days``, in time order."""
    rng = np.random.default_rng(seed)
    ts = [
        pd.Timestamp(day) + pd.Timedelta(hours=int(h))
        for day in days
        for h in np.sort(rng.choice(24, per_day, replace=False))
    ]
    n = len(ts)
    return pd.DataFrame(
        {
            "ts": pd.to_datetime(ts).astype("datetime64[ns]"),
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "x3": rng.normal(size=n),
            "x4": rng.uniform(0, 60, size=n),
            "segment": rng.choice(["a", "b", "c"], n),
            "channel": rng.choice(["web", "app"], n),
            "label": rng.integers(0, 2, n),
        }
    )


def days_from(start: date, n: int) -> list[date]:
    return [start + timedelta(days=i) for i in range(n)]


def write_csv(frame: pd.DataFrame, path: Path, **kwargs: Any) -> Path:
    frame.to_csv(path, index=False, date_format="%Y-%m-%d %H:%M:%S", **kwargs)
    return path


def lake_of(config: PipelineConfig) -> ParquetLakeSource:
    source = make_source(config)
    assert isinstance(source, ParquetLakeSource)
    return source


def stored(config: PipelineConfig, day: date) -> pd.DataFrame:
    return make_source(config).read_days([day])


def assert_rows_equal(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        actual.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False
    )


def snapshot(root: Path) -> dict[str, float]:
    """Every file under ``root`` with its modification time."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


# -- CSV and Parquet --------------------------------------------------------------------------


def test_csv_rows_land_in_one_partition_per_day(
    synthetic_cfg: PipelineConfig, home: settings.Paths, tmp_path: Path
) -> None:
    frame = rows(days_from(D1, 3))
    result = ingest_files(synthetic_cfg, [write_csv(frame, tmp_path / "events.csv")])

    assert result.rows == len(frame) == 12
    assert result.days_new == days_from(D1, 3)
    assert result.days_replaced == result.days_skipped == []
    assert result.next_date == date(2024, 3, 4)
    assert result.uri == str(home.lake / "synthetic")
    assert result.inputs[0].time_format == "ISO8601"
    assert result.seconds > 0 and result.peak_rss_mb > 0
    source = lake_of(synthetic_cfg)
    assert source.partitions() == days_from(D1, 3)
    for day in days_from(D1, 3):
        files = sorted(p.name for p in (source.root / f"date={day}").iterdir())
        assert files == ["part-0.parquet"]
    back = source.read_window(D1, date(2024, 3, 4))
    assert back["ts"].dtype == np.dtype("datetime64[ns]")
    assert_rows_equal(back, frame)
    # nothing of the ingest's own is left in the lake but the ledger
    assert sorted(p.name for p in source.root.iterdir() if not p.name.startswith("date=")) == [
        LEDGER_NAME
    ]


def test_parquet_file_is_read_in_batches(synthetic_cfg: PipelineConfig, tmp_path: Path) -> None:
    frame = rows(days_from(D1, 3), per_day=5)
    path = tmp_path / "events.parquet"
    frame.set_index(pd.Index(range(100, 115))).to_parquet(path)  # index stored as a column
    seen: list[IngestProgress] = []
    result = ingest_files(synthetic_cfg, [path], chunk_rows=4, progress=seen.append)

    assert result.days_new == days_from(D1, 3) and result.rows == 15
    assert_rows_equal(make_source(synthetic_cfg).read_window(D1, date(2024, 3, 4)), frame)
    reads = [p for p in seen if p.phase == "read"]
    assert [p.rows for p in reads] == [4, 8, 12, 15]
    assert reads[-1].fraction == 1.0
    publishes = [p for p in seen if p.phase == "publish"]
    assert [(p.done, p.total) for p in publishes] == [(1, 3), (2, 3), (3, 3)]


def test_compressed_and_tab_separated_csv(synthetic_cfg: PipelineConfig, tmp_path: Path) -> None:
    frame = rows(days_from(D1, 2))
    gz = write_csv(frame.iloc[:4], tmp_path / "a.csv.gz")
    tsv = write_csv(frame.iloc[4:], tmp_path / "b.tsv", sep="\t")
    result = ingest_files(synthetic_cfg, [gz, tsv])
    assert result.days_new == days_from(D1, 2)
    assert_rows_equal(make_source(synthetic_cfg).read_window(D1, date(2024, 3, 3)), frame)


def test_a_day_spread_over_chunks_and_files_ends_as_one_partition(
    synthetic_cfg: PipelineConfig, tmp_path: Path
) -> None:
    frame = rows(days_from(D1, 3), per_day=6)
    # Interleave the days so that every chunk of 4 rows holds several days.
    shuffled = frame.sample(frac=1, random_state=1).reset_index(drop=True)
    first = write_csv(shuffled.iloc[:10], tmp_path / "first.csv")
    second = write_csv(shuffled.iloc[10:], tmp_path / "second.csv")
    # spill_bytes=1: the day buffers go to temporary files after every chunk.
    result = ingest_files(synthetic_cfg, [first, second], chunk_rows=4, spill_bytes=1)

    assert result.days_new == days_from(D1, 3) and result.rows == 18
    source = lake_of(synthetic_cfg)
    for day in days_from(D1, 3):
        assert [p.name for p in (source.root / f"date={day}").iterdir()] == ["part-0.parquet"]
        expected = shuffled[shuffled["ts"].dt.date == day]
        assert_rows_equal(stored(synthetic_cfg, day), expected)  # in input order
    assert not [p for p in source.root.iterdir() if p.name.startswith(".")]


def test_column_types_are_unified_across_chunks(
    synthetic_cfg: PipelineConfig, tmp_path: Path
) -> None:
    frame = rows(days_from(D1, 2), per_day=4)
    frame["x4"] = [1, 2, 3, 4, 5, 6, 7.5, 8]  # integers in the first chunk, a float later
    frame["extra"] = ["1", "2", "3", "4", "5", "6", "7", "seven"]  # numbers, then text
    result = ingest_files(
        synthetic_cfg, [write_csv(frame, tmp_path / "e.csv")], chunk_rows=3, spill_bytes=1
    )
    assert result.rows == 8
    for day in days_from(D1, 2):
        back = stored(synthetic_cfg, day)
        assert back["x4"].dtype == np.dtype("float64")
        assert back["extra"].dtype == object
    both = make_source(synthetic_cfg).read_window(D1, date(2024, 3, 3))
    assert both["x4"].tolist() == [1, 2, 3, 4, 5, 6, 7.5, 8]
    assert both["extra"].tolist() == ["1", "2", "3", "4", "5", "6", "7", "seven"]


# -- appending, replacing, no-ops -------------------------------------------------------------


def test_later_days_are_appended_and_earlier_ones_left_alone(
    synthetic_cfg: PipelineConfig, tmp_path: Path
) -> None:
    ingest_files(synthetic_cfg, [write_csv(rows(days_from(D1, 3)), tmp_path / "a.csv")])
    root = lake_of(synthetic_cfg).root
    before = {k: v for k, v in snapshot(root).items() if k.startswith("date=")}

    later = rows(days_from(date(2024, 3, 4), 2), seed=1)
    result = ingest_files(synthetic_cfg, [write_csv(later, tmp_path / "b.csv")])

    assert result.days_new == days_from(date(2024, 3, 4), 2)
    assert result.next_date == date(2024, 3, 6)
    assert make_source(synthetic_cfg).partitions() == days_from(D1, 5)
    after = snapshot(root)
    assert all(after[k] == v for k, v in before.items())
    ledger = json.loads((root / LEDGER_NAME).read_text())
    assert [e["name"] for e in ledger["inputs"]] == [
        str(tmp_path / "a.csv"),
        str(tmp_path / "b.csv"),
    ]
    assert ledger["inputs"][1]["days"] == ["2024-03-04", "2024-03-05"]


def test_existing_days_are_refused_then_replaced_with_replace(
    synthetic_cfg: PipelineConfig, tmp_path: Path
) -> None:
    ingest_files(synthetic_cfg, [write_csv(rows(days_from(D1, 3)), tmp_path / "a.csv")])
    root = lake_of(synthetic_cfg).root
    before = snapshot(root)
    overlap = rows(days_from(date(2024, 3, 2), 3), seed=2)  # 03-02, 03-03 exist; 03-04 is new
    path = write_csv(overlap, tmp_path / "b.csv")

    with pytest.raises(PartitionExistsError, match=r"2024-03-02, 2024-03-03\).*--replace") as err:
        ingest_files(synthetic_cfg, [path], chunk_rows=2)
    assert err.value.days == ["2024-03-02", "2024-03-03"]
    assert err.value.code == "partition_exists"
    assert snapshot(root) == before  # nothing written, not even the new day or the ledger

    result = ingest_files(synthetic_cfg, [path], replace=True)
    assert result.days_replaced == [date(2024, 3, 2), date(2024, 3, 3)]
    assert result.days_new == [date(2024, 3, 4)]
    for day in days_from(date(2024, 3, 2), 3):
        assert_rows_equal(stored(synthetic_cfg, day), overlap[overlap["ts"].dt.date == day])
    assert len(stored(synthetic_cfg, D1)) == 4  # untouched


def test_the_same_file_again_is_a_no_op(synthetic_cfg: PipelineConfig, tmp_path: Path) -> None:
    path = write_csv(rows(days_from(D1, 3)), tmp_path / "a.csv")
    ingest_files(synthetic_cfg, [path])
    root = lake_of(synthetic_cfg).root
    before = snapshot(root)

    again = ingest_files(synthetic_cfg, [path])
    copy = tmp_path / "renamed.csv"
    copy.write_bytes(path.read_bytes())
    renamed = ingest_files(synthetic_cfg, [copy], replace=True)

    for result in (again, renamed):
        assert result.noop and result.rows == 0
        assert result.days_new == result.days_replaced == []
        assert result.days_skipped == days_from(D1, 3)
        assert result.inputs[0].skipped
        assert "already ingested" in result.inputs[0].reason
        assert str(path) in result.inputs[0].reason
        assert result.next_date is None
    assert snapshot(root) == before


def test_a_file_named_twice_in_one_call_is_read_once(
    synthetic_cfg: PipelineConfig, tmp_path: Path
) -> None:
    path = write_csv(rows(days_from(D1, 2)), tmp_path / "a.csv")
    result = ingest_files(synthetic_cfg, [path, path])
    assert result.rows == 8
    assert [i.skipped for i in result.inputs] == [False, True]
    assert "same content" in result.inputs[1].reason


def test_a_file_whose_days_were_removed_is_ingested_again(
    synthetic_cfg: PipelineConfig, tmp_path: Path
) -> None:
    import shutil

    path = write_csv(rows(days_from(D1, 2)), tmp_path / "a.csv")
    ingest_files(synthetic_cfg, [path])
    shutil.rmtree(lake_of(synthetic_cfg).root / "date=2024-03-02")
    with pytest.raises(PartitionExistsError, match="2024-03-01"):
        ingest_files(synthetic_cfg, [path])
    result = ingest_files(synthetic_cfg, [path], replace=True)
    assert result.days_new == [date(2024, 3, 2)] and result.days_replaced == [D1]
    assert any("no longer in the source" in w for w in result.warnings)


def test_reserved_names_in_the_lake_are_not_partitions(
    synthetic_cfg: PipelineConfig, tmp_path: Path
) -> None:
    ingest_files(synthetic_cfg, [write_csv(rows([D1]), tmp_path / "a.csv")])
    source = lake_of(synthetic_cfg)
    other_day = rows([date(2024, 3, 9)])
    for name in ("_date=2024-03-09", "_staging", ".ingest-leftover"):
        (source.root / name).mkdir()
        other_day.to_parquet(source.root / name / "part-0.parquet")
    (source.root / "_notes.parquet").write_bytes(b"not parquet")
    assert (source.root / LEDGER_NAME).is_file()

    assert source.partitions() == [D1]
    assert len(source.read_window(D1, date(2024, 3, 31))) == 4
    assert source.unknown_entries() == []


# -- bad input --------------------------------------------------------------------------------


def _nothing_written(config: PipelineConfig) -> None:
    root = lake_of(config).root
    assert not root.exists() or [p.name for p in root.iterdir()] == []


def test_an_unparseable_time_names_the_file_row_and_value(
    synthetic_cfg: PipelineConfig, tmp_path: Path
) -> None:
    frame = rows(days_from(D1, 2)).astype({"ts": str})
    frame.loc[5, "ts"] = "2024-03-02 25:99:00"
    frame.loc[7, "ts"] = "yesterday"
    path = write_csv(frame, tmp_path / "bad.csv")
    with pytest.raises(TimeColumnError, match=r"bad\.csv, row 6: .*'2024-03-02 25:99:00'") as err:
        ingest_files(synthetic_cfg, [path], chunk_rows=4)  # both bad rows in the 2nd chunk
    assert err.value.details["row"] == 6
    assert "1 more such row(s) in rows 5..8" in err.value.message
    _nothing_written(synthetic_cfg)


def test_one_time_format_holds_for_the_whole_file(
    synthetic_cfg: PipelineConfig, tmp_path: Path
) -> None:
    frame = rows(days_from(D1, 2))
    us = frame.assign(ts=frame["ts"].dt.strftime("%m/%d/%Y %H:%M"))
    result = ingest_files(synthetic_cfg, [write_csv(us, tmp_path / "us.csv")], chunk_rows=3)
    assert result.inputs[0].time_format == "%m/%d/%Y %H:%M"
    assert_rows_equal(make_source(synthetic_cfg).read_window(D1, date(2024, 3, 3)), frame)

    later = rows([date(2024, 3, 13)]).assign(ts=lambda f: f["ts"].dt.strftime("%m/%d/%Y %H:%M"))
    later.loc[3, "ts"] = "2024-03-13 20:00"  # another format further down
    with pytest.raises(
        TimeColumnError, match=r"row 4: .*in the format of row 1 \('03/13/2024 .*': %m/%d/%Y %H:%M"
    ):
        ingest_files(synthetic_cfg, [write_csv(later, tmp_path / "later.csv")], chunk_rows=2)


def test_a_missing_time_is_an_error(synthetic_cfg: PipelineConfig, tmp_path: Path) -> None:
    frame = rows(days_from(D1, 2)).astype({"ts": str})
    frame.loc[2, "ts"] = ""
    with pytest.raises(TimeColumnError, match=r"row 3: .* an empty value, but every row needs"):
        ingest_files(synthetic_cfg, [write_csv(frame, tmp_path / "gap.csv")])
    _nothing_written(synthetic_cfg)


def test_numbers_in_the_time_column_are_refused(
    synthetic_cfg: PipelineConfig, tmp_path: Path
) -> None:
    frame = rows([D1]).assign(ts=lambda f: f["ts"].astype("int64") // 10**9)
    path = tmp_path / "epoch.parquet"
    frame.to_parquet(path, index=False)
    with pytest.raises(TimeColumnError, match="holds numbers"):
        ingest_files(synthetic_cfg, [path])


def test_a_file_without_the_time_column_or_of_another_type_is_refused(
    synthetic_cfg: PipelineConfig, tmp_path: Path
) -> None:
    path = write_csv(rows([D1]).rename(columns={"ts": "when"}), tmp_path / "a.csv")
    with pytest.raises(IngestError, match=r"has no column 'ts' \(the time_column"):
        ingest_files(synthetic_cfg, [path])
    other = tmp_path / "a.json"
    other.write_text("{}")
    with pytest.raises(IngestError, match="use a CSV file"):
        ingest_files(synthetic_cfg, [other])
    with pytest.raises(IngestError, match="No such file"):
        ingest_files(synthetic_cfg, [tmp_path / "missing.csv"])
    _nothing_written(synthetic_cfg)


def test_missing_configured_columns_are_a_warning(
    synthetic_cfg: PipelineConfig, tmp_path: Path
) -> None:
    path = write_csv(rows([D1]).drop(columns=["x3", "label"]), tmp_path / "a.csv")
    result = ingest_files(synthetic_cfg, [path])
    assert result.days_new == [D1]
    assert result.warnings == [
        f"{path} lacks configured column(s) label, x3; windows without them will not pass "
        f"validation"
    ]


def test_times_with_an_offset_are_refused_for_a_naive_pipeline(
    synthetic_cfg: PipelineConfig, tmp_path: Path
) -> None:
    frame = rows([D1]).astype({"ts": str})
    frame["ts"] = [f"{t}+01:00" for t in frame["ts"]]
    with pytest.raises(TimeZoneError, match=r"UTC offset .*'2024-03-01 .*\+01:00'.* is naive"):
        ingest_files(synthetic_cfg, [write_csv(frame, tmp_path / "aware.csv")])
    aware = rows([D1]).assign(ts=lambda f: f["ts"].dt.tz_localize("UTC"))
    aware.to_parquet(tmp_path / "aware.parquet", index=False)
    with pytest.raises(TimeZoneError, match="no time_zone"):
        ingest_files(synthetic_cfg, [tmp_path / "aware.parquet"])
    _nothing_written(synthetic_cfg)


def test_times_with_and_without_offsets_in_one_file_are_refused(
    synthetic_cfg: PipelineConfig, tmp_path: Path
) -> None:
    frame = rows([D1]).astype({"ts": str})
    frame.loc[0, "ts"] = frame.loc[0, "ts"] + "Z"
    with pytest.raises(
        TimeZoneError, match=r"mixes times with a UTC offset \(row 1.*without \(row 2"
    ):
        ingest_files(synthetic_cfg, [write_csv(frame, tmp_path / "mixed.csv")])
    _nothing_written(synthetic_cfg)


def test_with_a_time_zone_times_are_stored_in_it_and_naive_ones_refused(
    home: settings.Paths, helpers: SimpleNamespace, tmp_path: Path
) -> None:
    cfg = helpers.config_with(time_zone="Europe/Paris")
    frame = rows([D1], per_day=2).astype({"ts": str})
    frame["ts"] = ["2024-03-01T10:00:00Z", "2024-03-01T23:30:00+00:00"]  # Paris: 11:00, 00:30
    result = ingest_files(cfg, [write_csv(frame, tmp_path / "utc.csv")])

    assert result.days_new == [D1, date(2024, 3, 2)]  # the local days of Europe/Paris
    back = make_source(cfg).read_days([date(2024, 3, 2)])
    assert str(back["ts"].dt.tz) == "Europe/Paris"
    assert back["ts"].iloc[0] == pd.Timestamp("2024-03-02 00:30", tz="Europe/Paris")
    naive = make_source(cfg).read_window(D1, date(2024, 3, 3))  # what the pull reads
    assert naive["ts"].tolist() == [
        pd.Timestamp("2024-03-01 11:00"),
        pd.Timestamp("2024-03-02 00:30"),
    ]

    with pytest.raises(TimeZoneError, match="naive times .* sets time_zone 'Europe/Paris'"):
        ingest_files(cfg, [write_csv(rows([date(2024, 3, 5)]), tmp_path / "naive.csv")])


# -- other sources ----------------------------------------------------------------------------


def test_sql_query_rows_are_ingested_and_a_second_run_is_a_no_op(
    synthetic_cfg: PipelineConfig, tmp_path: Path
) -> None:
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    frame = rows(days_from(D1, 3), per_day=5)
    engine = sa.create_engine(url)
    frame.to_sql("events", engine, index=False)
    engine.dispose()
    query = "SELECT * FROM events WHERE ts >= '2024-03-02' ORDER BY ts"

    result = ingest_sql(synthetic_cfg, query, url, chunk_rows=4, spill_bytes=1)
    assert result.days_new == days_from(date(2024, 3, 2), 2) and result.rows == 10
    assert result.inputs[0].name == f"sql: {query}"
    expected = frame[frame["ts"] >= "2024-03-02"]
    assert_rows_equal(make_source(synthetic_cfg).read_window(D1, date(2024, 3, 4)), expected)

    again = ingest_sql(synthetic_cfg, query, url)
    assert again.noop and again.days_skipped == days_from(date(2024, 3, 2), 2)

    with pytest.raises(IngestError, match="The query failed on sqlite"):
        ingest_sql(synthetic_cfg, "SELECT * FROM nowhere", url)


def test_a_sql_source_is_refused(
    home: settings.Paths, helpers: SimpleNamespace, tmp_path: Path
) -> None:
    cfg = helpers.config_with(
        source={"kind": "sql", "url": f"sqlite:///{tmp_path / 'db.sqlite'}", "table": "events"}
    )
    with pytest.raises(IngestError, match="reads the SQL table .*that table is its data"):
        ingest_files(cfg, [write_csv(rows([D1]), tmp_path / "a.csv")])


def test_s3_source_gets_partitions_and_a_ledger(
    home: settings.Paths,
    helpers: SimpleNamespace,
    s3_endpoint: str,  # noqa: F811 (fixture)
    tmp_path: Path,
) -> None:
    import boto3

    bucket = f"rf-ingest-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    cfg = helpers.config_with(
        source={"kind": "s3", "bucket": bucket, "prefix": "lake/syn", "endpoint_url": s3_endpoint}
    )
    frame = rows(days_from(D1, 3), per_day=6).sample(frac=1, random_state=3)
    path = write_csv(frame, tmp_path / "a.csv")

    result = ingest_files(cfg, [path], chunk_rows=5, spill_bytes=1)
    assert result.uri == f"s3://{bucket}/lake/syn"
    assert result.days_new == days_from(D1, 3)
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == [
        "lake/syn/_ingest_log.json",
        "lake/syn/date=2024-03-01/part-0.parquet",
        "lake/syn/date=2024-03-02/part-0.parquet",
        "lake/syn/date=2024-03-03/part-0.parquet",
    ]
    source = make_source(cfg)
    assert source.partitions() == days_from(D1, 3)
    assert source.unknown_entries() == []
    back = source.read_window(D1, date(2024, 3, 4))
    assert_rows_equal(back.sort_values("ts"), frame.sort_values("ts"))

    assert ingest_files(cfg, [path]).noop
    later = write_csv(rows(days_from(date(2024, 3, 3), 2), seed=5), tmp_path / "b.csv")
    with pytest.raises(PartitionExistsError, match="2024-03-03"):
        ingest_files(cfg, [later])
    replaced = ingest_files(cfg, [later], replace=True)
    assert replaced.days_replaced == [date(2024, 3, 3)]
    assert replaced.days_new == [date(2024, 3, 4)]
    assert len(source.read_days([date(2024, 3, 3)])) == 4


# -- the command ------------------------------------------------------------------------------


def test_cli_prints_a_summary_and_the_next_step(
    synthetic_cfg: PipelineConfig,
    home: settings.Paths,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write_csv(rows(days_from(D1, 3)), tmp_path / "a.csv")
    assert main(["ingest", "synthetic", str(path), "--chunk-rows", "5"]) == 0
    out = capsys.readouterr()
    assert f"synthetic: 12 rows into {home.lake / 'synthetic'}" in out.out
    assert "days: 3 new, 0 replaced, 0 skipped (2024-03-01 .. 2024-03-03)" in out.out
    assert "next: retrainflow retrain synthetic --date 2024-03-04" in out.out
    assert "100% a.csv: 12 rows" in out.err

    assert main(["ingest", "synthetic", str(path)]) == 0
    out = capsys.readouterr()
    assert "already ingested" in out.out and "nothing to do" in out.out
    assert "next:" not in out.out

    overlap = write_csv(rows([date(2024, 3, 3)], seed=9), tmp_path / "b.csv")
    assert main(["ingest", "synthetic", str(overlap)]) == 1
    err = capsys.readouterr().err
    assert "error: Pipeline 'synthetic' already holds 1 of the days" in err
    assert "next: Add --replace" in err
    assert main(["ingest", "synthetic", str(overlap), "--replace"]) == 0
    assert "days: 0 new, 1 replaced" in capsys.readouterr().out

    assert main(["ingest", "synthetic"]) == 1
    assert "Name the FILEs to ingest, or give --sql QUERY" in capsys.readouterr().err
