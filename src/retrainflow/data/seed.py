"""Seed a pipeline's source with demo data, one day partition at a time.

``seed(config, until)`` writes every day of the pipeline's data set up to and
including ``until`` that the source does not hold yet. Calling it again with a
later ``until`` makes the next days "arrive", which is how the demos and tests
simulate a live feed::

    seed(cfg, date(2013, 1, 10))   # writes 2013-01-01 .. 2013-01-10
    seed(cfg, date(2013, 1, 12))   # writes 2013-01-11 and 2013-01-12 only

The data set is chosen by the pipeline's ``tags.dataset`` if set, else by its
``name``, from :data:`DATASETS`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from retrainflow.data.flights import load_flights
from retrainflow.data.flights3m import load_flights3m
from retrainflow.data.sources import make_source
from retrainflow.data.synthetic import default_synthetic
from retrainflow.exceptions import UnknownDatasetError, UserError

if TYPE_CHECKING:
    import pandas as pd

    from retrainflow.config import PipelineConfig

log = logging.getLogger(__name__)

FrameLoader = Callable[[], "pd.DataFrame"]

#: Data set name -> loader of the full frame.
DATASETS: dict[str, FrameLoader] = {
    "flights": load_flights,
    # Downloaded once with `retrainflow fetch-data flights3m`; the loader says so when it is missing.
    "flights3m": load_flights3m,
    "synthetic": default_synthetic,
}

#: Days written per ``write_frame`` call, and per progress line.
_CHUNK_DAYS = 30


@dataclass(frozen=True)
class SeedResult:
    """What one :func:`seed` call wrote."""

    #: Days written by this call, sorted.
    days: list[date] = field(default_factory=list)
    rows_written: int = 0
    #: Days in the requested range that the source already held.
    days_skipped: int = 0

    @property
    def days_written(self) -> int:
        return len(self.days)

    @property
    def last_day(self) -> date | None:
        """The newest day written by this call (``None`` if nothing was written)."""
        return self.days[-1] if self.days else None


def dataset_name(config: PipelineConfig) -> str:
    """The data set a pipeline seeds from: ``tags.dataset``, else the pipeline name."""
    return config.tags.get("dataset", config.name)


def resolve_loader(config: PipelineConfig) -> FrameLoader:
    """The loader registered for the pipeline's data set.

    Args:
        config: The pipeline.

    Returns:
        A callable returning the full frame of the data set.

    Raises:
        UnknownDatasetError: naming the known data sets.
    """
    name = dataset_name(config)
    try:
        return DATASETS[name]
    except KeyError:
        raise UnknownDatasetError(
            f"No demo data set named '{name}' for pipeline '{config.name}'; known data sets: "
            f"{sorted(DATASETS)}. Name the pipeline after one, or set tags.dataset in its config.",
            pipeline=config.name,
            dataset=name,
        ) from None


def seed(
    config: PipelineConfig,
    until: date,
    *,
    since: date | None = None,
    frame_loader: FrameLoader | None = None,
) -> SeedResult:
    """Write the data set's days ``[since, until]`` that the source lacks.

    Args:
        config: The pipeline; its source receives the partitions.
        until: The last day to write (inclusive).
        since: The first day to write (inclusive); default: the data set's first day.
        frame_loader: Returns the full data frame; default: the loader registered
            for the pipeline (see :func:`resolve_loader`).

    Returns:
        The days and row count written, and how many requested days were already present.

    Raises:
        UnknownDatasetError: when no ``frame_loader`` is given and the pipeline's
            data set is unknown.
        UserError: when ``since`` is after ``until`` or the frame lacks the
            pipeline's time column.
    """
    import pandas as pd

    if since is not None and since > until:
        raise UserError(f"since ({since}) is after until ({until}); nothing to seed.")
    loader = frame_loader or resolve_loader(config)
    frame = loader()
    tc = config.time_column
    if tc not in frame.columns:
        raise UserError(
            f"The data set for pipeline '{config.name}' has no column '{tc}' "
            f"(the config's time_column); its columns are {list(frame.columns)}.",
            pipeline=config.name,
        )

    source = make_source(config)
    day = pd.to_datetime(frame[tc]).dt.date
    mask = day <= until
    if since is not None:
        mask &= day >= since
    wanted = sorted(set(day[mask]))
    present = set(source.partitions())
    todo = [d for d in wanted if d not in present]
    skipped = len(wanted) - len(todo)
    if not todo:
        log.info(
            "Seeding %s: nothing to write up to %s (%d day(s) already present) in %s",
            config.name,
            until,
            skipped,
            source.uri,
        )
        return SeedResult(days=[], rows_written=0, days_skipped=skipped)

    todo_set = set(todo)
    selected = frame[day.isin(todo_set)]
    selected_day = day[selected.index]
    written: list[date] = []
    rows = 0
    for i in range(0, len(todo), _CHUNK_DAYS):
        chunk = set(todo[i : i + _CHUNK_DAYS])
        part = selected[selected_day.isin(chunk)]
        written.extend(source.write_frame(part))
        rows += len(part)
        log.info(
            "Seeding %s: %d/%d day(s) written, through %s (%d rows) in %s",
            config.name,
            len(written),
            len(todo),
            written[-1],
            rows,
            source.uri,
        )
    return SeedResult(days=sorted(written), rows_written=rows, days_skipped=skipped)
