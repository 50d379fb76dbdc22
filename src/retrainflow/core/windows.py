"""Which days a run reads — window arithmetic, written once.

Every window is half-open, ``[start, end)``, in whole days; ``end`` is exclusive.
For a retrain whose data ends at ``window_end`` with ``h`` holdout days:

* holdout (the *future* data the gate scores on): ``[window_end - h, window_end)``;
* the training rows end where the holdout starts (``train_end``);
* stateless: ``[train_end - window_days, train_end)`` (clipped to the first day
  of data when one is given; ``window_days=None`` = all history);
* warm start: the days after the parent's data end, ``[parent_end, train_end)``;
* replay: ``[parent_end - replay_days, parent_end)``, sampled.

A monitoring check at ``check_date`` looks at ``[check_date - current_days,
check_date)``; rows on or after ``check_date - label_delay_days`` have no label yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Window:
    """A half-open range of days ``[start, end)``."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return max(0, (self.end - self.start).days)

    def __str__(self) -> str:
        return f"[{self.start}, {self.end})"


def holdout(window_end: date, holdout_days: int) -> Window:
    """The held-out future days of a run ending at ``window_end`` (exclusive)."""
    return Window(window_end - holdout_days * _DAY, window_end)


def stateless(train_end: date, window_days: int | None, *, first_day: date | None = None) -> Window:
    """A from-scratch training window: ``window_days`` before ``train_end``.

    Args:
        train_end: Exclusive end (the holdout's start, a batch's start, ...).
        window_days: Length; None = everything since ``first_day``.
        first_day: The first day of data, if known: the window never starts before it.
    """
    if window_days is None:
        if first_day is None:
            raise ValueError("an unbounded window needs first_day")
        return Window(first_day, train_end)
    start = train_end - window_days * _DAY
    if first_day is not None:
        start = max(start, first_day)
    return Window(start, train_end)


def warm_start(parent_end: date, train_end: date) -> Window:
    """The new days a warm start continues its parent on."""
    return Window(parent_end, train_end)


def replay(parent_end: date, replay_days: int, *, first_day: date | None = None) -> Window:
    """The older days a warm start's replay sample is drawn from."""
    start = parent_end - replay_days * _DAY
    if first_day is not None:
        start = max(start, first_day)
    return Window(start, parent_end)


@dataclass(frozen=True)
class CheckWindows:
    """The windows of one monitoring check."""

    current: Window
    #: Rows before this day have their labels (performance and target drift use only them).
    label_cutoff: date


def monitoring(check_date: date, current_days: int, label_delay_days: int) -> CheckWindows:
    """The current window of a check at ``check_date`` (exclusive) and its label cutoff."""
    return CheckWindows(
        Window(check_date - current_days * _DAY, check_date), check_date - label_delay_days * _DAY
    )
