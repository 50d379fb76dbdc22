"""A pipeline's rows held in memory and sliced by day — the analyses' data source.

The backtest and the freshness analysis read a pipeline's data once and then
cut windows out of it many times; :class:`TimeFrame` answers ``read_window`` and
``count_rows`` like the lake's :class:`~retrainflow.data.sources.Source`, so the
core functions see the same rows a pull of those days would return.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from retrainflow.config import PipelineConfig


class TimeFrame:
    """A pipeline's rows in memory, sorted by the time column, sliced by day.

    Shared by the backtest and :mod:`retrainflow.freshness`: ``rows(start, end)``
    (alias ``read_window``, as on a :class:`~retrainflow.data.sources.Source`) is the
    ``[start, end)`` window a pull of those days would return (a positional slice),
    ``y`` the target as floats.
    """

    def __init__(self, config: PipelineConfig, frame: pd.DataFrame) -> None:
        import pandas as pd

        ts = pd.to_datetime(frame[config.time_column])
        order = np.argsort(ts.to_numpy(), kind="stable")
        self.frame = frame.iloc[order].reset_index(drop=True)
        self.days = ts.to_numpy()[order].astype("datetime64[D]")
        self.y = pd.to_numeric(self.frame[config.target]).to_numpy(dtype=np.float64)

    def pos(self, day: date) -> int:
        """Row position of the first row on or after ``day``."""
        return int(np.searchsorted(self.days, np.datetime64(day, "D"), side="left"))

    def rows(self, start: date, end: date) -> pd.DataFrame:
        return self.frame.iloc[self.pos(start) : self.pos(end)]

    def count(self, start: date, end: date) -> int:
        return max(0, self.pos(end) - self.pos(start))

    # The Source interface the stages read through, so the core's callers look alike.
    read_window = rows
    count_rows = count
