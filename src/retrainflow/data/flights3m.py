"""The US flights 2001 data set (3 million flights): will a flight arrive late?

The rows are ``data/flights-3m.parquet`` of the npm package ``vega-datasets``
3.2.1 (BSD-3-Clause; the flights are the US DOT Bureau of Transportation
Statistics' on-time performance reports, public data): 3,000,000 US domestic
flights that departed between 2001-01-01 and 2001-06-30 (the round count
suggests a sample; the generating script drops cancelled flights and those
without an arrival delay, i.e. diverted ones). The raw file has five columns:

* ``date`` — the **actual** departure date-time (local time, minute
  resolution). vega-datasets' ``scripts/flights.py`` builds it as
  ``FlightDate + CRSDepTime + DepDelay``, and the data agrees: only 33 % of
  the minutes are multiples of 5 (published schedules mostly are), flights
  that left in the 02:00 and 03:00 hours arrived 89 and 106 minutes late on
  average (6.7 overall), and the 6 departures stamped 2001-07-01 00:00 match
  the script's "DepTime 2400 -> next day" case;
* ``delay`` — arrival delay in minutes (negative: early);
* ``distance`` (miles), ``origin``, ``destination`` (IATA codes).

The file has no scheduled departure time, carrier or flight number.

The prepared frame (:func:`load_flights3m`) has one row per flight,
2,999,994 rows over 181 days (the 6 departures of 2001-07-01 are dropped so
that every day is whole):

* ``dep_time`` — the actual departure (the pipeline's time column: day
  partitions, windows and hold-out days are cut by its calendar day);
* ``origin``, ``dest`` — strings, categorical features (229 and 228 airports);
* ``distance`` — miles (``int16``, 21 to 4,962);
* ``late`` — the target: 1 when the flight arrived more than 15 minutes late.
  Cancelled and diverted flights are not in the file, so unlike the NYC
  ``flights`` data set they never count.

``delay`` is the label's source and is never part of the frame. The time of
day is not a feature either, although it is the strongest predictor in the
file: it is the *actual* departure time, which already contains the departure
delay. Measured on NYC flights 2013, which have both times (LightGBM on
origin, destination, distance and day of week; trained on Jan–Feb, scored on
Mar 1–14): ROC AUC 0.600 without an hour, 0.654 with the scheduled hour and
0.741 with the actual hour — most of what the actual hour adds is leaked
label. Here (trained on Jan–Feb 2001, scored on Mar 1–7): 0.614 without, 0.687
with the actual hour, 0.703 with the actual minute of day. The day of week
(from ``dep_time``, in the pipeline's ``time_parts``) only differs from the
scheduled one for the ~0.6 % of flights that left after midnight, and is kept.

Days hold 14,267 (Sun 2001-05-27) to 17,548 (Fri 2001-06-29) flights, 16,575 on
average; whole Monday-Sunday weeks 112,987 to 118,093. The late rate is
19.97 % overall, between 6.4 % (2001-04-28) and 41.7 % (2001-02-25) on single
days, and by month::

    Jan 20.5 %   Feb 23.3 %   Mar 21.0 %   Apr 17.9 %   May 16.1 %   Jun 21.3 %

Getting the file: ``retrainflow fetch-data flights3m`` (:func:`fetch_flights3m`)
runs ``npm pack vega-datasets@3.2.1`` (a 17.6 MB tarball; the whole fetch took
1.3 s here), extracts only this file (13,493,022 bytes), checks its SHA-256
against :data:`SHA256` and puts it at
``$RETRAINFLOW_HOME/external/vega-datasets-3.2.1/flights-3m.parquet``.

Building the frame from that file takes ~0.5 s once pandas and pyarrow are
imported (1.1-1.5 s in a fresh process), as fast as reading a prepared copy
would be, so unlike ``flights`` nothing is cached. The frame takes 102 MB (the
airport codes are shared string objects); loading it peaks at ~500 MB above the
interpreter's baseline, seeding all 181 days at ~675 MB RSS in ~7 s.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from retrainflow import settings
from retrainflow.exceptions import DatasetNotFetchedError, FetchError

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

#: The npm package and version that ship the file.
NPM_PACKAGE = "vega-datasets"
NPM_VERSION = "3.2.1"
#: Path of the file inside the package's tarball.
TARBALL_MEMBER = "package/data/flights-3m.parquet"
#: SHA-256 of ``flights-3m.parquet`` in vega-datasets 3.2.1 (13,493,022 bytes).
SHA256 = "dbeb920c90f59b6ccaff823dcc3d08f25a97fa1ce128d93f40be4e931f5900b0"
#: Environment variable naming the npm executable (default: ``npm`` on the PATH).
NPM_ENV = "RETRAINFLOW_NPM"
#: The command that installs the file (named in every error).
FETCH_COMMAND = "retrainflow fetch-data flights3m"
#: Refuse tarball members larger than this (the real file is 13.5 MB).
_MAX_BYTES = 200 * 1024 * 1024
_NPM_TIMEOUT_S = 600

#: Time column of the prepared frame (the *actual* departure; see the module docstring).
TIME_COLUMN = "dep_time"
#: Target column of the prepared frame.
TARGET = "late"
#: Arrival delay (minutes) above which a flight counts as late.
LATE_MINUTES = 15
CATEGORICAL = ("origin", "dest")
NUMERIC = ("distance",)
#: Every column of the prepared frame, in order.
COLUMNS = (TIME_COLUMN, *CATEGORICAL, *NUMERIC, TARGET)
#: Columns of the raw file that leak the label.
LEAKING = ("delay",)
#: Columns of the raw file.
RAW_COLUMNS = ("date", "delay", "distance", "origin", "destination")
#: The last whole day: the 6 departures at 2001-07-01 00:00 are dropped.
LAST_DAY = date(2001, 6, 30)


def raw_path() -> Path:
    """Where the raw file lives: ``$RETRAINFLOW_HOME/external/vega-datasets-3.2.1/flights-3m.parquet``."""
    return settings.home() / "external" / f"{NPM_PACKAGE}-{NPM_VERSION}" / "flights-3m.parquet"


def sha256_of(path: Path) -> str:
    """The hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _npm() -> str:
    wanted = os.environ.get(NPM_ENV) or "npm"
    found = shutil.which(wanted)
    if found is None:
        where = (
            f"{NPM_ENV}={wanted!r} is not an executable"
            if os.environ.get(NPM_ENV)
            else "npm is not on the PATH"
        )
        raise FetchError(
            f"Cannot download the flights3m data: {where}. It comes from the npm registry "
            f"(package {NPM_PACKAGE}@{NPM_VERSION}); install Node.js/npm (or set {NPM_ENV} to the "
            f"npm executable) and run `{FETCH_COMMAND}` again.",
            npm=wanted,
        )
    return found


def _npm_pack(npm: str, workdir: Path) -> Path:
    """Run ``npm pack vega-datasets@3.2.1`` in ``workdir``; the tarball it wrote."""
    spec = f"{NPM_PACKAGE}@{NPM_VERSION}"
    cmd = [npm, "pack", spec, "--ignore-scripts"]
    try:
        proc = subprocess.run(
            cmd, cwd=workdir, capture_output=True, text=True, timeout=_NPM_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise FetchError(
            f"`npm pack {spec}` did not finish within {_NPM_TIMEOUT_S} s. Check the network "
            f"(or the npm registry setting) and run `{FETCH_COMMAND}` again."
        ) from None
    except OSError as exc:
        raise FetchError(
            f"Cannot run {npm} ({exc.strerror}). Fix npm and run `{FETCH_COMMAND}` again.", npm=npm
        ) from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-5:]
        raise FetchError(
            f"`npm pack {spec}` failed (exit {proc.returncode}): {' | '.join(tail) or 'no output'}. "
            f"Check the network and the npm registry, then run `{FETCH_COMMAND}` again.",
            exit_code=proc.returncode,
        )
    tarballs = sorted(workdir.glob("*.tgz"))
    expected = workdir / f"{NPM_PACKAGE}-{NPM_VERSION}.tgz"
    if expected in tarballs:
        return expected
    if len(tarballs) == 1:
        return tarballs[0]
    raise FetchError(
        f"`npm pack {spec}` succeeded but left {len(tarballs)} tarballs "
        f"({[p.name for p in tarballs]}) instead of {expected.name}. Run `{FETCH_COMMAND}` again."
    )


def _extract_member(tarball: Path, out: Path) -> str:
    """Copy :data:`TARBALL_MEMBER` of ``tarball`` to ``out``; its SHA-256.

    Only that member is read, by name, as a stream: no path of the archive is
    ever used to create a file, so links and ``..`` entries cannot escape.
    """
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            try:
                member = tar.getmember(TARBALL_MEMBER)
            except KeyError:
                raise FetchError(
                    f"{tarball.name} has no {TARBALL_MEMBER}: the package on the registry is not "
                    f"the expected {NPM_PACKAGE}@{NPM_VERSION}. Run `{FETCH_COMMAND}` again; if "
                    f"it persists, check the npm registry setting (`npm config get registry`)."
                ) from None
            if not member.isfile():
                raise FetchError(
                    f"{TARBALL_MEMBER} in {tarball.name} is not a regular file; "
                    f"refusing it. Run `{FETCH_COMMAND}` again."
                )
            if member.size > _MAX_BYTES:
                raise FetchError(
                    f"{TARBALL_MEMBER} in {tarball.name} has {member.size} bytes "
                    f"(more than {_MAX_BYTES}); refusing it."
                )
            src = tar.extractfile(member)
            assert src is not None  # a regular file always has content
            h = hashlib.sha256()
            with src, open(out, "wb") as dst:
                for block in iter(lambda: src.read(1 << 20), b""):
                    h.update(block)
                    dst.write(block)
            return h.hexdigest()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise FetchError(
            f"{tarball.name} from npm cannot be read ({type(exc).__name__}: {exc}). "
            f"Run `{FETCH_COMMAND}` again."
        ) from None


def _install(src: Path, dest: Path) -> None:
    """Copy ``src`` to ``dest`` atomically (a temp file in ``dest``'s directory, then rename)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; workers of other users read it
        os.replace(tmp, dest)  # atomic: readers see no file or the whole file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def fetch_flights3m(*, expected_sha256: str | None = None, dest: Path | None = None) -> Path:
    """Download ``flights-3m.parquet`` from npm into the home, verified; idempotent.

    Runs ``npm pack vega-datasets@3.2.1`` (``$RETRAINFLOW_NPM`` or ``npm`` on the
    PATH) in a temporary directory, extracts only :data:`TARBALL_MEMBER`, checks
    its SHA-256 and only then moves it atomically into place. A file already in
    place with the expected hash is kept without running npm; one with another
    hash is replaced.

    Args:
        expected_sha256: The hash the file must have; default :data:`SHA256`
            (tests pass the hash of their own small file).
        dest: Where to put the file; default :func:`raw_path`.

    Returns:
        The path of the verified file.

    Raises:
        FetchError: npm is missing or fails, the tarball lacks the file or cannot
            be read, or the file's hash differs (nothing is written then).
    """
    expected = (expected_sha256 or SHA256).lower()
    dest = dest or raw_path()
    if dest.is_file():
        if sha256_of(dest) == expected:
            log.info("flights3m: %s is already in place (SHA-256 verified)", dest)
            return dest
        log.warning("flights3m: %s has an unexpected SHA-256; downloading it again", dest)

    npm = _npm()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="retrainflow-npm-") as tmp:
        workdir = Path(tmp)
        tarball = _npm_pack(npm, workdir)
        extracted = workdir / "flights-3m.parquet"
        digest = _extract_member(tarball, extracted)
        if digest != expected:
            raise FetchError(
                f"{TARBALL_MEMBER} of {NPM_PACKAGE}@{NPM_VERSION} has SHA-256 {digest}, expected "
                f"{expected}; it was not installed. The registry served different content: run "
                f"`{FETCH_COMMAND}` again, and check `npm config get registry` if it persists.",
                sha256=digest,
                expected=expected,
            )
        _install(extracted, dest)
    log.info("flights3m: installed %s in %.1f s", dest, time.perf_counter() - start)
    return dest


def _require_raw(expected_sha256: str | None) -> tuple[Path, str]:
    path = raw_path()
    if not path.is_file():
        raise DatasetNotFetchedError(
            f"The flights3m data is not on this machine ({path} is missing). Download it once "
            f"with `{FETCH_COMMAND}` (npm package {NPM_PACKAGE}@{NPM_VERSION}, 17.6 MB).",
            file=path,
        )
    digest = sha256_of(path)
    expected = (expected_sha256 or SHA256).lower()
    if digest != expected:
        raise DatasetNotFetchedError(
            f"{path} is not the pinned flights3m file (SHA-256 {digest}, expected {expected}). "
            f"Run `{FETCH_COMMAND}` to replace it.",
            file=path,
        )
    return path, digest


def build_flights3m(path: Path) -> pd.DataFrame:
    """Prepare the frame from a raw ``flights-3m.parquet`` (no hash check).

    Args:
        path: A Parquet file with the columns of :data:`RAW_COLUMNS`.

    Returns:
        The columns of :data:`COLUMNS`, sorted by ``dep_time`` (ties keep the
        file's order), days after :data:`LAST_DAY` dropped.

    Raises:
        DatasetNotFetchedError: the file cannot be read or lacks a column.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(
            path, columns=list(RAW_COLUMNS), read_dictionary=["origin", "destination"]
        )
    except (pa.ArrowException, OSError) as exc:
        raise DatasetNotFetchedError(
            f"{path} cannot be read as the flights3m Parquet file ({type(exc).__name__}: {exc}). "
            f"Run `{FETCH_COMMAND}` to replace it.",
            file=path,
        ) from None
    end = pa.scalar(
        pd.Timestamp(LAST_DAY) + pd.Timedelta(days=1), type=table.schema.field("date").type
    )
    keep = pc.less(table["date"], end)
    if not pc.all(keep).as_py():
        table = table.filter(keep)

    def strings(chunked: pa.ChunkedArray) -> np.ndarray:
        # Dictionary indices -> one shared str object per airport (fast, and 8 bytes a row).
        col = chunked.unify_dictionaries().combine_chunks()
        if not isinstance(col, pa.DictionaryArray):  # an empty table has no dictionary
            return np.asarray(col.to_pylist(), dtype=object)
        codes = col.indices.to_numpy(zero_copy_only=False)
        return np.asarray(col.dictionary.to_pylist(), dtype=object).take(codes)

    out = pd.DataFrame(
        {
            TIME_COLUMN: table["date"].to_numpy().astype("datetime64[ns]"),
            "origin": strings(table["origin"]),
            "dest": strings(table["destination"]),
            "distance": table["distance"].to_numpy().astype("int16"),
            TARGET: (table["delay"].to_numpy() > LATE_MINUTES).astype("int64"),
        }
    )
    del table
    times = out[TIME_COLUMN].to_numpy()
    if len(times) > 1 and not (times[1:] >= times[:-1]).all():
        out = out.iloc[np.argsort(times, kind="stable")].reset_index(drop=True)
    return out


def load_flights3m(*, expected_sha256: str | None = None) -> pd.DataFrame:
    """The prepared US flights 2001 frame (2,999,994 rows, 181 days).

    Args:
        expected_sha256: The hash the raw file must have; default :data:`SHA256`.

    Returns:
        One row per flight: ``dep_time`` (``datetime64[ns]``), string ``origin``
        and ``dest``, ``int16`` ``distance``, int 0/1 ``late``.

    Raises:
        DatasetNotFetchedError: the raw file is missing, unreadable or not the
            pinned one; the message names ``retrainflow fetch-data flights3m``.
    """
    start = time.perf_counter()
    path, _ = _require_raw(expected_sha256)
    frame = build_flights3m(path)
    log.info("flights3m: prepared %d rows in %.1f s", len(frame), time.perf_counter() - start)
    return frame
