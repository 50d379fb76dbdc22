"""The flights3m data set: fetching it from npm, preparing it, seeding it.

Fully offline: a tiny Parquet file with the real file's schema is packed into a
real ``.tgz`` under ``package/data/flights-3m.parquet``, and ``RETRAINFLOW_NPM``
points at a fake ``npm`` (a shell script written here) that copies that tarball
into its working directory, as ``npm pack`` does. The real 3-million-row file
is never needed.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from retrainflow.cli.main import main
from retrainflow.config import load_config
from retrainflow.data import flights3m as f3
from retrainflow.data.seed import DATASETS, seed
from retrainflow.data.sources import make_source
from retrainflow.exceptions import UserError

REPO = Path(__file__).resolve().parents[2]
FLIGHTS3M_YAML = REPO / "config" / "pipelines" / "flights3m.yaml"
DAYS = [date(2001, 1, 1), date(2001, 1, 2), date(2001, 1, 3)]
ROWS_PER_DAY = 120
AIRPORTS = ["ORD", "DFW", "ATL", "LAX", "PHX", "SFO"]


# -- the fake package ---------------------------------------------------------------------------
def _tiny_parquet() -> bytes:
    """A few hundred flights with the real file's schema, plus one at 2001-07-01 00:00."""
    rng = np.random.default_rng(7)
    stamps = sorted(
        datetime.combine(day, datetime.min.time()) + timedelta(minutes=int(m))
        for day in DAYS
        for m in rng.integers(0, 24 * 60, ROWS_PER_DAY)
    )
    stamps.append(datetime(2001, 7, 1))  # a June 30 flight that left at midnight: dropped
    n = len(stamps)
    origin = rng.choice(AIRPORTS, n)
    dest = np.array(
        [
            AIRPORTS[(AIRPORTS.index(o) + int(k)) % len(AIRPORTS)]
            for o, k in zip(origin, rng.integers(1, len(AIRPORTS), n), strict=True)
        ]
    )
    table = pa.table(
        {
            "date": pa.array(stamps, type=pa.timestamp("us")),
            "delay": pa.array(rng.integers(-40, 120, n), type=pa.int64()),
            "distance": pa.array(rng.integers(30, 4900, n), type=pa.int64()),
            "origin": pa.array(origin, type=pa.large_string()),
            "destination": pa.array(dest, type=pa.large_string()),
        }
    )
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def _tgz(path: Path, members: dict[str, bytes], symlink: str | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if symlink:
            info = tarfile.TarInfo(symlink)
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            tar.addfile(info)
    return path


def _fake_npm(directory: Path, tarball: Path | None, *, fail: bool = False) -> Path:
    """An ``npm`` that logs its arguments and drops ``tarball`` into its cwd (or fails)."""
    script = directory / "npm"
    log = directory / "npm.log"
    body = f'echo "$@" >> "{log}"\n'
    if fail:
        body += 'echo "npm ERR! 404 Not Found - GET https://registry.npmjs.org/vega-datasets" >&2\nexit 1\n'
    else:
        body += f'cp "{tarball}" ./vega-datasets-3.2.1.tgz\n'
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def _calls(npm: Path) -> list[str]:
    log = npm.parent / "npm.log"
    return log.read_text().splitlines() if log.exists() else []


@pytest.fixture(scope="module")
def tiny() -> bytes:
    return _tiny_parquet()


@pytest.fixture(scope="module")
def tiny_sha(tiny: bytes) -> str:
    return hashlib.sha256(tiny).hexdigest()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "home"
    monkeypatch.setenv("RETRAINFLOW_HOME", str(root))
    monkeypatch.setenv("RETRAINFLOW_CONFIG_DIR", str(FLIGHTS3M_YAML.parent))
    monkeypatch.delenv("RETRAINFLOW_DEBUG", raising=False)
    return root


@pytest.fixture
def npm(tmp_path: Path, tiny: bytes, home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """RETRAINFLOW_NPM -> a fake npm serving a package that holds the tiny file."""
    tools = tmp_path / "tools"
    tools.mkdir()
    pkg = _tgz(
        tmp_path / "pkg.tgz",
        {"package/package.json": b'{"name": "vega-datasets"}', f3.TARBALL_MEMBER: tiny},
    )
    script = _fake_npm(tools, pkg)
    monkeypatch.setenv(f3.NPM_ENV, str(script))
    return script


def _nothing_installed(home: Path) -> None:
    assert not f3.raw_path().exists()
    assert not (home / "external").exists(), list((home / "external").rglob("*"))


# -- fetch ----------------------------------------------------------------------------------------
def test_fetch_places_the_file(home: Path, npm: Path, tiny: bytes, tiny_sha: str) -> None:
    path = f3.fetch_flights3m(expected_sha256=tiny_sha)
    assert path == f3.raw_path() == home / "external" / "vega-datasets-3.2.1" / "flights-3m.parquet"
    assert path.read_bytes() == tiny
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["flights-3m.parquet"]  # no temp files
    assert _calls(npm) == ["pack vega-datasets@3.2.1 --ignore-scripts"]


def test_second_fetch_is_a_no_op(
    home: Path, npm: Path, tiny_sha: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = f3.fetch_flights3m(expected_sha256=tiny_sha)
    mtime = path.stat().st_mtime_ns
    monkeypatch.setenv(f3.NPM_ENV, str(home / "no-such-npm"))  # npm is not even needed
    assert f3.fetch_flights3m(expected_sha256=tiny_sha) == path
    assert path.stat().st_mtime_ns == mtime
    assert len(_calls(npm)) == 1


def test_a_file_with_other_content_is_replaced(
    home: Path, npm: Path, tiny: bytes, tiny_sha: str
) -> None:
    f3.raw_path().parent.mkdir(parents=True)
    f3.raw_path().write_bytes(b"truncated download")
    assert f3.fetch_flights3m(expected_sha256=tiny_sha).read_bytes() == tiny
    assert len(_calls(npm)) == 1


def test_hash_mismatch_is_refused_and_leaves_nothing(home: Path, npm: Path, tiny_sha: str) -> None:
    # The real default: the pinned SHA-256 of vega-datasets 3.2.1's file, not the tiny file's.
    assert f3.SHA256 != tiny_sha
    with pytest.raises(f3.FetchError) as info:
        f3.fetch_flights3m()
    msg = info.value.message
    assert f"has SHA-256 {tiny_sha}, expected {f3.SHA256}" in msg
    assert "was not installed" in msg and "retrainflow fetch-data flights3m" in msg
    assert isinstance(info.value, UserError)
    _nothing_installed(home)


def test_hash_mismatch_keeps_an_existing_file(home: Path, npm: Path) -> None:
    f3.raw_path().parent.mkdir(parents=True)
    f3.raw_path().write_bytes(b"whatever was there")
    with pytest.raises(f3.FetchError, match="SHA-256"):
        f3.fetch_flights3m()
    assert f3.raw_path().read_bytes() == b"whatever was there"
    assert [p.name for p in f3.raw_path().parent.iterdir()] == ["flights-3m.parquet"]


def test_file_missing_from_the_tarball(
    home: Path, tmp_path: Path, tiny: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = _tgz(tmp_path / "other.tgz", {"package/data/flights-2k.json": b"[]"})
    monkeypatch.setenv(f3.NPM_ENV, str(_fake_npm(tmp_path, pkg)))
    with pytest.raises(f3.FetchError) as info:
        f3.fetch_flights3m(expected_sha256=hashlib.sha256(tiny).hexdigest())
    assert "has no package/data/flights-3m.parquet" in info.value.message
    assert "retrainflow fetch-data flights3m" in info.value.message
    _nothing_installed(home)


def test_a_link_in_place_of_the_file_is_refused(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = _tgz(tmp_path / "evil.tgz", {}, symlink=f3.TARBALL_MEMBER)
    monkeypatch.setenv(f3.NPM_ENV, str(_fake_npm(tmp_path, pkg)))
    with pytest.raises(f3.FetchError, match="not a regular file"):
        f3.fetch_flights3m()
    _nothing_installed(home)


def test_npm_missing(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f3.NPM_ENV, str(tmp_path / "no-such-npm"))
    with pytest.raises(f3.FetchError) as info:
        f3.fetch_flights3m()
    msg = info.value.message
    assert "RETRAINFLOW_NPM" in msg and "not an executable" in msg
    assert "retrainflow fetch-data flights3m" in msg
    _nothing_installed(home)

    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.delenv(f3.NPM_ENV)
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(f3.FetchError, match=r"npm is not on the PATH.*install Node\.js/npm"):
        f3.fetch_flights3m()


def test_npm_failure_is_reported(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(f3.NPM_ENV, str(_fake_npm(tmp_path, None, fail=True)))
    with pytest.raises(f3.FetchError) as info:
        f3.fetch_flights3m()
    msg = info.value.message
    assert "`npm pack vega-datasets@3.2.1` failed (exit 1)" in msg
    assert "404 Not Found" in msg and "retrainflow fetch-data flights3m" in msg
    _nothing_installed(home)


# -- load -----------------------------------------------------------------------------------------
def test_load_without_the_file_says_how_to_get_it(home: Path) -> None:
    with pytest.raises(f3.DatasetNotFetchedError) as info:
        f3.load_flights3m()
    assert str(f3.raw_path()) in info.value.message
    assert "`retrainflow fetch-data flights3m`" in info.value.message


def test_load_refuses_a_file_that_is_not_the_pinned_one(
    home: Path, npm: Path, tiny_sha: str
) -> None:
    f3.fetch_flights3m(expected_sha256=tiny_sha)
    with pytest.raises(f3.DatasetNotFetchedError, match="is not the pinned flights3m file"):
        f3.load_flights3m()


def test_load_prepares_the_frame(home: Path, npm: Path, tiny: bytes, tiny_sha: str) -> None:
    f3.fetch_flights3m(expected_sha256=tiny_sha)
    frame = f3.load_flights3m(expected_sha256=tiny_sha)
    raw = pq.read_table(io.BytesIO(tiny)).to_pandas()
    raw = raw[raw["date"] < pd.Timestamp("2001-07-01")].reset_index(drop=True)

    assert tuple(frame.columns) == f3.COLUMNS == ("dep_time", "origin", "dest", "distance", "late")
    for col in (*f3.LEAKING, "date", "destination", "hour", "dep_hour"):
        assert col not in frame.columns
    assert len(frame) == len(DAYS) * ROWS_PER_DAY
    assert frame["dep_time"].dtype == "datetime64[ns]"
    assert frame["dep_time"].is_monotonic_increasing
    assert sorted(set(frame["dep_time"].dt.date)) == DAYS  # the 2001-07-01 row is dropped
    for col in f3.CATEGORICAL:
        assert frame[col].dtype == object and frame[col].map(type).eq(str).all(), col
    assert frame["distance"].dtype == "int16"
    assert frame["late"].dtype == "int64"
    np.testing.assert_array_equal(frame["late"], (raw["delay"] > 15).astype(int))
    np.testing.assert_array_equal(frame["origin"], raw["origin"])
    np.testing.assert_array_equal(frame["dest"], raw["destination"])
    np.testing.assert_array_equal(frame["distance"], raw["distance"])


def test_config_matches_the_frame(home: Path, npm: Path, tiny_sha: str) -> None:
    cfg = load_config(FLIGHTS3M_YAML)
    f3.fetch_flights3m(expected_sha256=tiny_sha)
    frame = f3.load_flights3m(expected_sha256=tiny_sha)
    assert cfg.time_column == f3.TIME_COLUMN and cfg.target == f3.TARGET
    assert set(cfg.required_columns) == set(frame.columns)
    assert cfg.features.time_parts == ["day_of_week"]  # no hour: dep_time is the actual departure
    assert cfg.schedule is None and cfg.monitoring.schedule is None
    for col, exp in cfg.expectations.columns.items():
        values = frame[col]
        assert values.notna().all() or exp.nullable, col
        if exp.allowed is not None:
            assert set(values.unique()) <= set(exp.allowed), col
        if exp.min is not None:
            assert values.min() >= exp.min, col
        if exp.max is not None:
            assert values.max() <= exp.max, col


# -- seed and the command line ----------------------------------------------------------------------
def test_seed_writes_day_partitions(
    home: Path, npm: Path, tiny_sha: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert DATASETS["flights3m"] is f3.load_flights3m
    f3.fetch_flights3m(expected_sha256=tiny_sha)
    monkeypatch.setattr(f3, "SHA256", tiny_sha)  # the registered loader checks the pinned hash
    cfg = load_config(FLIGHTS3M_YAML)

    first = seed(cfg, DAYS[1])
    assert first.days == DAYS[:2] and first.rows_written == 2 * ROWS_PER_DAY
    source = make_source(cfg)
    assert source.uri == str(home / "lake" / "flights3m")
    assert source.partitions() == DAYS[:2]
    second = seed(cfg, date(2001, 6, 30))
    assert second.days == DAYS[2:] and second.days_skipped == 2
    assert source.partitions() == DAYS

    day = source.read_days([DAYS[2]])
    expected = f3.load_flights3m()
    expected = expected[expected["dep_time"].dt.date == DAYS[2]].reset_index(drop=True)
    pd.testing.assert_frame_equal(day, expected)  # dtypes survive the lake (int16, str, ns)


def test_cli_fetch_then_seed(
    home: Path,
    npm: Path,
    tiny_sha: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["seed", "flights3m", "--until", "2001-01-02"]) == 1
    assert "retrainflow fetch-data flights3m" in capsys.readouterr().err

    assert main(["fetch-data", "flights3m"]) == 1  # the pinned hash: the tiny file is refused
    assert "SHA-256" in capsys.readouterr().err
    _nothing_installed(home)

    monkeypatch.setattr(f3, "SHA256", tiny_sha)
    assert main(["fetch-data", "flights3m"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"flights3m: {f3.raw_path()} (") and "SHA-256 verified" in out[0]
    assert out[1] == "next: retrainflow seed flights3m --until 2001-06-30"
    assert main(["seed", "flights3m", "--until", "2001-01-02"]) == 0
    assert "wrote 2 day(s)" in capsys.readouterr().out
    assert os.listdir(home / "lake" / "flights3m") != []
