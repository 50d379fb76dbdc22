"""The NYC flights 2013 demo data and seeding it into a Parquet lake."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from retrainflow.config import load_config
from retrainflow.data import flights as fl
from retrainflow.data.seed import SeedResult, seed
from retrainflow.data.sources import make_source

REPO = Path(__file__).resolve().parents[2]
FLIGHTS_YAML = REPO / "config" / "pipelines" / "flights.yaml"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private RETRAINFLOW_HOME for the whole module (the flights cache lives there)."""
    root = tmp_path_factory.mktemp("rfhome")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RETRAINFLOW_HOME", str(root))
        yield root


@pytest.fixture(scope="module")
def frame(home: Path) -> pd.DataFrame:
    """The prepared frame, built once (cold) per module."""
    return fl.load_flights()


def test_shape_and_columns(frame: pd.DataFrame) -> None:
    assert len(frame) == 336_776
    assert tuple(frame.columns) == fl.COLUMNS
    assert frame["sched_dep"].dtype == "datetime64[ns]"
    assert frame["sched_dep"].is_monotonic_increasing
    assert frame["sched_dep"].dt.date.nunique() == 365
    assert frame["sched_dep"].min() == pd.Timestamp("2013-01-01 05:15")


def test_no_leaking_columns(frame: pd.DataFrame) -> None:
    for col in (*fl.LEAKING, "hour", "minute", "time_hour", "tailnum", "flight"):
        assert col not in frame.columns


def test_dtypes(frame: pd.DataFrame) -> None:
    for col in fl.CATEGORICAL:
        assert frame[col].map(type).eq(str).all(), col
    assert set(frame["origin"]) == {"EWR", "JFK", "LGA"}
    for col in ("distance", *fl.WEATHER):
        assert frame[col].dtype == "float64", col
    assert frame["sched_arr_hour"].dtype == "int64"
    assert frame["sched_arr_hour"].between(0, 23).all()
    assert frame["late"].dtype == "int64"
    assert set(frame["late"].unique()) == {0, 1}


def test_late_rate_by_month(frame: pd.DataFrame) -> None:
    monthly = frame.groupby(frame["sched_dep"].dt.month)["late"].mean()
    assert len(monthly) == 12
    assert monthly.between(0.14, 0.36).all(), monthly.round(3).to_dict()
    # The rate really moves over the year: a point of the demo.
    assert monthly.max() - monthly.min() > 0.15
    assert 0.15 <= frame["late"].mean() <= 0.35


def test_weather_join(frame: pd.DataFrame) -> None:
    assert frame["temp"].notna().mean() > 0.9
    assert frame["visib"].notna().mean() > 0.9
    # Weather is that of the origin at the scheduled hour: one reading per origin-hour.
    hour = frame["sched_dep"].dt.floor("h")
    per_hour = frame.assign(hour=hour).groupby(["origin", "hour"])["temp"].nunique(dropna=True)
    assert (per_hour <= 1).all()


def test_cache_is_used_and_equal(
    home: Path, frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = fl.cache_path()
    assert path == home / "cache" / "flights2013.parquet"
    assert path.is_file()
    assert not list(path.parent.glob(".*.tmp"))

    def no_build() -> pd.DataFrame:
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(fl, "build_flights", no_build)
    t0 = time.perf_counter()
    cached = fl.load_flights()
    elapsed = time.perf_counter() - t0
    pd.testing.assert_frame_equal(cached, frame)
    print(f"cached load: {elapsed:.2f}s")


def test_stale_cache_is_rebuilt(
    tmp_path: Path, frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETRAINFLOW_HOME", str(tmp_path))
    small = frame.head(500)
    calls: list[int] = []

    def build() -> pd.DataFrame:
        calls.append(1)
        return small

    monkeypatch.setattr(fl, "build_flights", build)
    pd.testing.assert_frame_equal(fl.load_flights(), small)
    pd.testing.assert_frame_equal(fl.load_flights(), small)
    assert len(calls) == 1
    monkeypatch.setattr(fl, "_LAYOUT_VERSION", "next")  # or a new package version
    fl.load_flights()
    assert len(calls) == 2
    fl.cache_path().write_bytes(b"not parquet")  # a broken cache is rebuilt too
    pd.testing.assert_frame_equal(fl.load_flights(), small)
    assert len(calls) == 3
    assert fl.load_flights(use_cache=False) is small and len(calls) == 4


def test_config_matches_frame(frame: pd.DataFrame) -> None:
    cfg = load_config(FLIGHTS_YAML)
    assert cfg.name == "flights"
    assert set(cfg.required_columns) == set(frame.columns)
    for col, exp in cfg.expectations.columns.items():
        values = frame[col]
        if not exp.nullable:
            assert values.notna().all(), col
        if exp.allowed is not None:
            assert set(values.dropna().unique()) <= set(exp.allowed), col
        if exp.min is not None:
            assert values.min() >= exp.min, col
        if exp.max is not None:
            assert values.max() <= exp.max, col
        if exp.max_null_fraction is not None:
            assert values.isna().mean() <= exp.max_null_fraction, col
    weekly = frame.groupby(frame["sched_dep"].dt.to_period("W")).size().iloc[1:-1]
    assert weekly.min() >= cfg.expectations.min_rows


def test_seed_incremental(home: Path, frame: pd.DataFrame) -> None:
    cfg = load_config(FLIGHTS_YAML)
    first = seed(cfg, date(2013, 1, 10), frame_loader=lambda: frame)
    assert isinstance(first, SeedResult)
    assert first.days_written == 10
    assert first.last_day == date(2013, 1, 10)
    source = make_source(cfg)
    assert str(home) in source.uri
    assert source.partitions() == [date(2013, 1, d) for d in range(1, 11)]
    jan = frame[frame["sched_dep"] < pd.Timestamp("2013-01-11")]
    assert first.rows_written == len(jan)

    second = seed(cfg, date(2013, 1, 12))  # the registry's loader, from the cache
    assert second.days == [date(2013, 1, 11), date(2013, 1, 12)]
    assert second.days_skipped == 10
    assert len(source.partitions()) == 12

    again = seed(cfg, date(2013, 1, 12), frame_loader=lambda: frame)
    assert again.days_written == 0 and again.rows_written == 0 and again.last_day is None

    day = source.read_days([date(2013, 1, 11)])
    expected = frame[frame["sched_dep"].dt.date == date(2013, 1, 11)].reset_index(drop=True)
    pd.testing.assert_frame_equal(day, expected, check_dtype=False)
    assert day["sched_dep"].dtype.kind == "M"
