"""How far a backtest is, and how long it has left: progress events with an ETA.

A backtest's steps are not equally costly: a stateless fit on all history reads more
rows at every retrain, a static model never trains again. The ETA therefore weighs
each step (strategy x batch) by the rows it is expected to train on plus the rows it
scores (:func:`expected_work`), and extrapolates the elapsed time over the weighted
share done. The events are the same whether the strategies run in one process or in
worker processes (steps completed across all workers).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from retrainflow.backtest.strategies import Strategy
    from retrainflow.data.frame import TimeFrame

#: A policy's monitoring check, in rows-trained equivalents (its reference sample and
#: the current week, tested for drift; about 0.3 CPU s on flights).
CHECK_WORK = 10_000
#: Share of a policy's checks assumed to trigger a retrain on its window.
POLICY_RETRAIN_SHARE = 0.25


@dataclass(frozen=True)
class BacktestProgress:
    """One progress event: a strategy finished a step.

    Attributes:
        done: Steps (strategy x batch) replayed so far, across all strategies.
        total: Steps of the whole run.
        fraction: Share of the expected work done (steps weighed by :func:`expected_work`).
        elapsed_seconds: Wall seconds since the replay started (data read before).
        eta_seconds: Expected wall seconds left (None until a step is done).
        strategy: The strategy that finished a step.
        batch_start: First day of its batch (ISO).
        metric: Its model's primary metric on the batch (None when undefined).
    """

    done: int
    total: int
    fraction: float
    elapsed_seconds: float
    eta_seconds: float | None
    strategy: str
    batch_start: str
    metric: float | None

    def line(self) -> str:
        """A plain line: ``42% 230/528 steps, 1:02 elapsed, ETA 1:25 (hybrid 2013-06-01 0.712)``."""
        metric = "-" if self.metric is None else f"{self.metric:.3f}"
        eta = "-" if self.eta_seconds is None else clock(self.eta_seconds)
        return (
            f"{self.fraction:4.0%} {self.done}/{self.total} steps, "
            f"{clock(self.elapsed_seconds)} elapsed, ETA {eta} "
            f"({self.strategy} {self.batch_start} {metric})"
        )


def clock(seconds: float) -> str:
    """``75`` -> ``1:15``, ``3725`` -> ``1:02:05``."""
    s = max(0, round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def expected_work(
    data: TimeFrame,
    start: date,
    strategy: Strategy,
    batches: Sequence[tuple[date, date]],
) -> list[float]:
    """Expected cost of each of a strategy's steps, in rows (trained on, checked, scored).

    An estimate for the ETA only: a scheduled stateless fit reads its window (all rows
    since ``start`` for ``window_days=None``), a warm start the rows since its previous
    retrain plus the replay sample, a ``hybrid`` as a warm start but a full window every
    ``full_refit_every + 1`` retrains when the strategy sets it (the pipeline's own limit
    is the mode resolver's business, :mod:`retrainflow.core.modes`; a hybrid is a small
    share of a run), a ``policy`` a check at every batch and a window fit at
    :data:`POLICY_RETRAIN_SHARE` of them. Every step scores its batch.
    """
    s = strategy
    max_warm = s.full_refit_every

    def window_rows(b0: date) -> int:
        if s.window_days is None:
            return data.count(start, b0)
        return data.count(max(start, b0 - timedelta(days=s.window_days)), b0)

    every = 1 if s.kind == "oracle" else s.retrain_every
    out: list[float] = []
    last_fit: date | None = None
    retrains = 0
    for i, (b0, b1) in enumerate(batches):
        work = float(data.count(b0, b1))
        if i == 0:
            work += window_rows(b0)
            last_fit = b0
        elif s.kind == "policy":
            work += CHECK_WORK + POLICY_RETRAIN_SHARE * window_rows(b0)
        elif s.kind != "static" and i % every == 0:
            retrains += 1
            assert last_fit is not None
            new = data.count(last_fit, b0) * (1 + s.replay_fraction)
            if s.kind in ("stateless", "oracle"):
                work += window_rows(b0)
            elif s.kind == "hybrid" and max_warm is not None and retrains % (max_warm + 1) == 0:
                work += window_rows(b0)
            else:
                work += new
            last_fit = b0
        out.append(work)
    return out


class ProgressTracker:
    """Counts finished steps and turns them into :class:`BacktestProgress` events.

    Args:
        work: Each strategy's expected cost per step (:func:`expected_work`).
        callback: Called with every event (nothing is called when None).
        clock: Seconds, monotonic (a test may pass a fake one).
    """

    def __init__(
        self,
        work: Mapping[str, Sequence[float]],
        callback: Callable[[BacktestProgress], None] | None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.work = {name: list(w) for name, w in work.items()}
        self.callback = callback
        self.clock = clock
        self.t0 = clock()
        self.total = sum(len(w) for w in self.work.values())
        self.total_work = sum(sum(w) for w in self.work.values()) or 1.0
        self.steps_done = dict.fromkeys(self.work, 0)
        self.work_done = 0.0

    @property
    def done(self) -> int:
        return sum(self.steps_done.values())

    def advance(
        self, strategy: str, step: int, batch_start: str, metric: float | None
    ) -> BacktestProgress | None:
        """Mark ``strategy``'s steps up to ``step`` (0-based) done; emit an event.

        A step already counted (a late message from a worker whose result has been
        collected) changes nothing and emits nothing.
        """
        before = self.steps_done[strategy]
        if step < before:
            return None
        self.steps_done[strategy] = step + 1
        self.work_done += sum(self.work[strategy][before : step + 1])
        fraction = min(1.0, self.work_done / self.total_work)
        elapsed = self.clock() - self.t0
        eta = elapsed * (1 - fraction) / fraction if fraction > 0 else None
        event = BacktestProgress(
            done=self.done,
            total=self.total,
            fraction=fraction,
            elapsed_seconds=elapsed,
            eta_seconds=eta,
            strategy=strategy,
            batch_start=batch_start,
            metric=metric,
        )
        if self.callback is not None:
            self.callback(event)
        return event
