"""Value of freshness: how a pipeline's metric falls as its training data gets older.

``retrainflow freshness PIPELINE`` is the empirical way to choose a retraining
frequency. For each evaluation *anchor* ``E`` (the evaluation period is
``[E, E + eval_days)``) and each *age* ``a`` (in days) it trains a **stateless**
model on the window ``[E - a - window_days, E - a)`` and scores it on the
evaluation period. Age 0 is a model trained on every day up to the anchor; age
14 one whose newest training row is two weeks older than the first scored row.
The training window is always ``window_days`` long, so only the age changes.

Everything goes through the code the DAGs use: the data is read once with
:func:`~retrainflow.data.sources.make_source` into a
:class:`~retrainflow.data.frame.TimeFrame`; a window is
:func:`retrainflow.core.windows.stateless`; a fit is the DAG's fit sequence
:func:`retrainflow.core.training.train_model` (a
:class:`~retrainflow.model.TabularModel`, which predicts from raw rows, as served);
the score is :func:`retrainflow.core.metrics.compute_metrics`. Each fit's CPU
seconds are :func:`~retrainflow.metering.measure` around transform + fit (all the
process's threads: on a busy machine LightGBM's waiting threads inflate them).

Several anchors average out the noise of a single evaluation week; by default
``4`` anchors are spread evenly over the second half of the data. A combination
is **skipped** (and reported, with the reason) when its window starts before the
data or holds fewer than ``expectations.min_rows`` rows, or when the evaluation
period has no rows. An age that fits no anchor at all is dropped
(:attr:`FreshnessResult.dropped_ages`).

Reading the results (:meth:`FreshnessResult.by_age`): per age, the mean and the
standard deviation of the primary metric over the anchors, and
``delta_vs_fresh``, the mean over anchors of (metric at this age - metric at age
0), paired by anchor and signed so that **negative = worse** whatever the
metric's direction (:func:`~retrainflow.core.metrics.improvement`), with its
standard error ``delta_se`` over the anchors: day-to-day noise is large in real
data (one stormy day in or out of a window moves a flights model's ROC AUC by
several points), so small deltas mean nothing without it.

From ages to retraining intervals (:meth:`FreshnessResult.by_interval`): a model
retrained every ``k`` days serves, over time, at ages ``0, 1, ..., k - 1`` days
(each equally often), shifted by ``delay_days`` when labels or the pipeline lag
behind. The expected metric of interval ``k`` is therefore the mean of the
age curve (the mean metric per age, linearly interpolated between measured
ages) over ages ``delay .. delay + k - 1``; ``delta_vs_daily`` compares it with
``k = 1`` (negative = worse than retraining daily). An interval is reported only
when the measured ages reach ``delay + k - 1``.

Caveat: an age is measured to the *start* of the evaluation period, and a model
scored over ``eval_days`` days is on average ``(eval_days - 1) / 2`` days older
than that. The offset is the same at every age, so it mostly cancels in the
deltas; the absolute values describe a model that is that much staler.

Results: :class:`FreshnessResult` (per anchor and age :class:`FreshnessRecord`;
``to_dict`` is the JSON schema :data:`SCHEMA_VERSION`) and :func:`save`
(``freshness.json``, ``freshness.png``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from retrainflow.exceptions import EmptyWindowError, UserError
from retrainflow.jsonsafe import finite_or_none
from retrainflow.manifest import Manifest

if TYPE_CHECKING:
    from retrainflow.artifacts import Location
    from retrainflow.config import PipelineConfig
    from retrainflow.data.frame import TimeFrame

__all__ = [
    "AGE_COLUMNS",
    "DEFAULT_AGES",
    "DEFAULT_ANCHORS",
    "DEFAULT_EVAL_DAYS",
    "DEFAULT_INTERVALS",
    "INTERVAL_COLUMNS",
    "RECORD_FIELDS",
    "SCHEMA_VERSION",
    "AgeRow",
    "FreshnessRecord",
    "FreshnessResult",
    "IntervalRow",
    "default_anchors",
    "expected_metric",
    "log_to_mlflow",
    "run_freshness",
    "save",
]

log = logging.getLogger(__name__)

#: Version of the JSON layout of :meth:`FreshnessResult.to_dict`; bump on any change.
SCHEMA_VERSION = 1
#: Ages (days) measured by default, clipped to what the data allows.
DEFAULT_AGES = (0, 1, 2, 3, 5, 7, 14, 21, 28, 42, 56)
#: Retraining intervals (days) translated by default (those the measured ages reach).
DEFAULT_INTERVALS = (1, 7, 14, 28)
#: Days of one evaluation period.
DEFAULT_EVAL_DAYS = 7
#: Evaluation anchors spread over the second half of the data by default.
DEFAULT_ANCHORS = 4
#: Decimals kept in the aggregated tables.
_DECIMALS = 6


# -- records -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FreshnessRecord(Manifest):
    """One (anchor, age) combination: the window trained on and how the model scored.

    Attributes:
        anchor: First day of the evaluation period (ISO date).
        age_days: Days between the training window's (exclusive) end and the anchor.
        train_start: First day of the training window.
        train_end: Exclusive end of the training window (``anchor - age_days``).
        eval_end: Exclusive end of the evaluation period.
        rows: Training rows.
        eval_rows: Rows scored.
        metric: The primary metric on the evaluation period (None: skipped or undefined).
        metrics: Every metric of the task (empty when skipped).
        train_cpu_seconds: CPU seconds of feature fit + transform + estimator fit.
        skipped: Why the combination was not trained, else None.
    """

    anchor: str
    age_days: int
    train_start: str
    train_end: str
    eval_end: str
    rows: int
    eval_rows: int
    metric: float | None
    metrics: dict[str, float | None]
    train_cpu_seconds: float
    skipped: str | None

    strict: ClassVar[bool] = True


@dataclass(frozen=True)
class AgeRow(Manifest):
    """The primary metric at one age, over the anchors (a row of :meth:`FreshnessResult.by_age`).

    Attributes:
        age_days: The age.
        n_anchors: Anchors with a metric at this age.
        mean_metric: Mean over those anchors.
        std_metric: Sample standard deviation over them (None for fewer than 2).
        delta_vs_fresh: Mean of (this age - age 0) over anchors that have both, signed so
            that negative = worse.
        delta_se: Standard error of that mean (sample std of the paired differences over
            the square root of their number; None for fewer than 2): a ``delta_vs_fresh``
            within about 2 ``delta_se`` of 0 is noise.
        train_cpu_s: Mean CPU seconds of a fit at this age.
    """

    age_days: int
    n_anchors: int
    mean_metric: float | None
    std_metric: float | None
    delta_vs_fresh: float | None
    delta_se: float | None
    train_cpu_s: float | None


@dataclass(frozen=True)
class IntervalRow(Manifest):
    """What retraining every ``interval_days`` days would score (:meth:`FreshnessResult.by_interval`).

    Attributes:
        interval_days: Days between retrains.
        mean_age_days: Mean age of the served model: ``delay + (interval - 1) / 2``.
        expected_metric: Mean of the age curve over ages ``delay .. delay + interval - 1``.
        delta_vs_daily: ``expected_metric`` minus that of a daily retrain, negative = worse.
    """

    interval_days: int
    mean_age_days: float
    expected_metric: float | None
    delta_vs_daily: float | None


#: Keys of one record in ``freshness.json`` (the schema the tests pin).
RECORD_FIELDS = tuple(f.name for f in fields(FreshnessRecord))
#: Columns of :meth:`FreshnessResult.by_age` (printed by the CLI).
AGE_COLUMNS = tuple(f.name for f in fields(AgeRow))
#: Columns of :meth:`FreshnessResult.by_interval`.
INTERVAL_COLUMNS = tuple(f.name for f in fields(IntervalRow))


@dataclass(frozen=True)
class FreshnessResult(Manifest):
    """A whole freshness measurement: its setup and every (anchor, age) record.

    Attributes:
        schema_version: :data:`SCHEMA_VERSION`.
        pipeline: Pipeline name.
        task: The pipeline's task.
        primary_metric: ``evaluation.primary_metric``.
        lower_is_better: Direction of the primary metric.
        start: First day of the data used (ISO).
        end: Exclusive end of the data used.
        data_rows: Rows read.
        window_days: Days of every training window.
        eval_days: Days of every evaluation period.
        delay_days: Label/pipeline delay added to the served ages in :meth:`by_interval`.
        min_rows: ``expectations.min_rows`` (smaller windows are skipped).
        ages: Measured ages, ascending (0 first).
        dropped_ages: Requested ages whose window fits before no anchor.
        intervals: Retraining intervals asked for (:meth:`by_interval` keeps those that fit).
        anchors: Evaluation anchors (ISO dates), ascending.
        records: One per (anchor, age), anchor by anchor, ages ascending.
        created_at: ISO datetime of the run.
        seconds: Wall seconds of the whole run.
    """

    schema_version: int
    pipeline: str
    task: str
    primary_metric: str
    lower_is_better: bool
    start: str
    end: str
    data_rows: int
    window_days: int
    eval_days: int
    delay_days: int
    min_rows: int
    ages: list[int]
    dropped_ages: list[int]
    intervals: list[int]
    anchors: list[str]
    records: list[FreshnessRecord]
    created_at: str
    seconds: float

    nested: ClassVar[dict[str, type[Manifest]]] = {"records": FreshnessRecord}
    #: Keys :meth:`to_dict` adds (derived from the records; ignored by :meth:`from_dict`).
    derived: ClassVar[tuple[str, ...]] = ("by_age", "by_interval")

    @property
    def skipped(self) -> list[FreshnessRecord]:
        """The combinations that were not trained (each with its reason)."""
        return [r for r in self.records if r.skipped]

    def record(self, anchor: str | date, age_days: int) -> FreshnessRecord:
        """The record of one combination.

        Raises:
            KeyError: no such combination.
        """
        key = anchor.isoformat() if isinstance(anchor, date) else anchor
        for r in self.records:
            if r.anchor == key and r.age_days == age_days:
                return r
        raise KeyError(f"no record for anchor {key} and age {age_days}")

    def _better(self, value: float, reference: float) -> float:
        """How much better ``value`` is (:func:`retrainflow.core.metrics.improvement`)."""
        from retrainflow.core.metrics import improvement

        return improvement(self.primary_metric, value, reference)

    def by_age(self) -> list[AgeRow]:
        """One row per measured age (columns :data:`AGE_COLUMNS`); see the module doc."""
        per_age: dict[int, dict[str, float]] = {a: {} for a in self.ages}
        cpu: dict[int, list[float]] = {a: [] for a in self.ages}
        for r in self.records:
            if r.skipped is None:
                cpu[r.age_days].append(r.train_cpu_seconds)
            if (metric := finite_or_none(r.metric)) is not None:
                per_age[r.age_days][r.anchor] = metric
        fresh = per_age.get(0, {})
        rows = []
        for age in self.ages:
            values = per_age[age]
            vals = list(values.values())
            pairs = [self._better(values[a], fresh[a]) for a in values if a in fresh]
            rows.append(
                AgeRow(
                    age_days=age,
                    n_anchors=len(vals),
                    mean_metric=_round(np.mean(vals)) if vals else None,
                    std_metric=_round(np.std(vals, ddof=1)) if len(vals) > 1 else None,
                    delta_vs_fresh=_round(np.mean(pairs)) if pairs else None,
                    delta_se=(
                        _round(np.std(pairs, ddof=1) / math.sqrt(len(pairs)))
                        if len(pairs) > 1
                        else None
                    ),
                    train_cpu_s=round(float(np.mean(cpu[age])), 3) if cpu[age] else None,
                )
            )
        return rows

    def age_curve(self) -> tuple[list[int], list[float]]:
        """Measured ages that have a mean metric, and those means (the curve to interpolate)."""
        rows = [r for r in self.by_age() if r.mean_metric is not None]
        return [r.age_days for r in rows], [float(r.mean_metric or 0.0) for r in rows]

    def by_interval(self, intervals: Iterable[int] | None = None) -> list[IntervalRow]:
        """Expected metric per retraining interval (columns :data:`INTERVAL_COLUMNS`).

        Args:
            intervals: Days between retrains (default :attr:`intervals`). Intervals the
                measured ages do not reach (``delay_days + k - 1`` > the oldest measured
                age) are left out.
        """
        ages, means = self.age_curve()
        wanted = sorted(set(self.intervals if intervals is None else intervals))
        if not ages:
            return []
        daily = expected_metric(ages, means, 1, self.delay_days)
        rows = []
        for k in wanted:
            value = expected_metric(ages, means, k, self.delay_days)
            if value is None:
                continue
            rows.append(
                IntervalRow(
                    interval_days=k,
                    mean_age_days=self.delay_days + (k - 1) / 2,
                    expected_metric=_round(value),
                    delta_vs_daily=None if daily is None else _round(self._better(value, daily)),
                )
            )
        return rows

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: the fields plus ``by_age`` and ``by_interval`` (derived)."""
        out = super().to_dict()
        out["by_age"] = [r.to_dict() for r in self.by_age()]
        out["by_interval"] = [r.to_dict() for r in self.by_interval()]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FreshnessResult:
        """Inverse of :meth:`to_dict` (the derived tables are dropped and recomputed)."""
        return super().from_dict({k: v for k, v in data.items() if k not in cls.derived})


def _round(x: Any) -> float:
    return round(float(x), _DECIMALS)


def expected_metric(
    ages: Sequence[int], means: Sequence[float], interval_days: int, delay_days: int = 0
) -> float | None:
    """Expected metric of a model retrained every ``interval_days`` days.

    The served model's age is uniform over ``delay_days .. delay_days + interval_days - 1``;
    the result is the mean of the age curve (``means`` at ``ages``, linearly interpolated)
    over those ages.

    Args:
        ages: Measured ages, ascending.
        means: The mean metric at each age.
        interval_days: Days between retrains (>= 1).
        delay_days: Days between a retrain's newest row and the day it starts serving.

    Returns:
        The expected metric, or None when the measured ages do not cover the served ones.
    """
    if interval_days < 1 or delay_days < 0:
        raise ValueError(
            f"interval_days must be >= 1 and delay_days >= 0; got {interval_days}, {delay_days}"
        )
    if not ages or delay_days < ages[0] or delay_days + interval_days - 1 > ages[-1]:
        return None
    served = np.arange(delay_days, delay_days + interval_days, dtype=np.float64)
    return float(
        np.mean(
            np.interp(
                served, np.asarray(ages, dtype=np.float64), np.asarray(means, dtype=np.float64)
            )
        )
    )


# -- the run -----------------------------------------------------------------------------


def default_anchors(
    start: date, end: date, *, window_days: int, eval_days: int, n: int = DEFAULT_ANCHORS
) -> list[date]:
    """``n`` anchors spread evenly over the second half of ``[start, end)``.

    The first is the middle of the data (or later, so that a ``window_days`` window
    fits before it), the last leaves a whole evaluation period before ``end``.

    Raises:
        UserError: the data is too short for one window plus one evaluation period.
    """
    if n < 1:
        raise UserError(f"--anchors must be >= 1; got {n}")
    lo = max(start + timedelta(days=(end - start).days // 2), start + timedelta(days=window_days))
    hi = end - timedelta(days=eval_days)
    if lo > hi:
        raise UserError(
            f"The data [{start}, {end}) is too short for a {window_days}-day training window "
            f"(--window-days) plus a {eval_days}-day evaluation period (--eval-days)."
        )
    span = (hi - lo).days
    offsets = sorted({round(x) for x in np.linspace(0, span, n)})
    return [lo + timedelta(days=int(d)) for d in offsets]


def _check_ages(ages: Iterable[int] | None) -> list[int]:
    if ages is None:
        return list(DEFAULT_AGES)
    out = list(ages)
    if not out:
        raise UserError("--ages is empty; give ages in days, e.g. --ages 0,1,7,14,28.")
    for a in out:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)) or a < 0:
            raise UserError(f"--ages: every age must be a whole number of days >= 0; got {a!r}.")
    return sorted({0, *(int(a) for a in out)})


def run_freshness(
    config: PipelineConfig,
    *,
    ages: Iterable[int] | None = None,
    window_days: int | None = None,
    eval_days: int = DEFAULT_EVAL_DAYS,
    anchors: int | None = None,
    eval_starts: Sequence[date] | None = None,
    start: date | None = None,
    end: date | None = None,
    intervals: Iterable[int] = DEFAULT_INTERVALS,
    delay_days: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> FreshnessResult:
    """Train on windows of increasing age before each anchor and score the anchor's period.

    Args:
        config: The pipeline.
        ages: Ages in days (default :data:`DEFAULT_AGES`); 0 is always added; ages whose
            window fits before no anchor are dropped (listed in ``dropped_ages``).
        window_days: Days of every training window (default ``training.window_days``).
        eval_days: Days of every evaluation period.
        anchors: Number of anchors spread over the second half of the data
            (default :data:`DEFAULT_ANCHORS`); not with ``eval_starts``.
        eval_starts: Explicit anchors (first days of the evaluation periods).
        start: First day of data used (default: the first partition).
        end: Exclusive last day (default: the day after the last partition).
        intervals: Retraining intervals (days) for :meth:`FreshnessResult.by_interval`.
        delay_days: Days a retrained model lags behind its data when it starts serving
            (default ``monitoring.label_delay_days``).
        progress: Called with a line of text after each combination.

    Returns:
        The :class:`FreshnessResult`.

    Raises:
        UserError: a bad argument; the message names it as the CLI option
            (``--ages``, ``--eval-start``...).
        EmptyWindowError: no data in ``[start, end)``.
    """
    from retrainflow.core.training import import_fitting_libraries
    from retrainflow.data.frame import TimeFrame
    from retrainflow.data.sources import make_source

    t0 = time.perf_counter()
    age_list = _check_ages(ages)
    window = config.training.window_days if window_days is None else window_days
    delay = config.monitoring.label_delay_days if delay_days is None else delay_days
    interval_list = sorted(set(intervals))
    for flag, value, least in (
        ("--window-days", window, 1),
        ("--eval-days", eval_days, 1),
        ("--delay-days", delay, 0),
    ):
        if value < least:
            raise UserError(f"{flag} must be >= {least}; got {value}.")
    if not interval_list or min(interval_list) < 1:
        raise UserError(f"--intervals must be whole days >= 1; got {interval_list}.")
    if eval_starts is not None and anchors is not None:
        raise UserError("Give --anchors or --eval-start, not both.")
    if eval_starts is not None and not eval_starts:
        raise UserError("--eval-start is empty; give dates, e.g. --eval-start 2013-10-01.")
    if start is not None and end is not None and start >= end:
        raise UserError(f"--start {start} must be before --end {end}.")

    source = make_source(config)
    days = [
        d for d in source.partitions() if (start is None or d >= start) and (end is None or d < end)
    ]
    if not days:
        raise EmptyWindowError(
            f"No data for '{config.name}' in [{start or '...'}, {end or '...'}) in {source.uri}. "
            f"Seed it first (`retrainflow seed {config.name} --until DATE`)."
        )
    # The data actually there: "beyond the data" means beyond its last day.
    start, end = days[0], days[-1] + timedelta(days=1)
    one_day = timedelta(days=1)
    if eval_starts is None:
        anchor_days = default_anchors(
            start,
            end,
            window_days=window,
            eval_days=eval_days,
            n=DEFAULT_ANCHORS if anchors is None else anchors,
        )
    else:
        anchor_days = sorted(set(eval_starts))
        for e in anchor_days:
            e_end = e + timedelta(days=eval_days)
            if e_end > end:
                raise UserError(
                    f"--eval-start {e}: the evaluation period [{e}, {e_end}) goes beyond the "
                    f"data, whose last day is {end - one_day}; use an earlier date or a "
                    f"shorter --eval-days."
                )
            if e - timedelta(days=window) < start:
                raise UserError(
                    f"--eval-start {e}: the freshest training window [{e - timedelta(days=window)}"
                    f", {e}) starts before the data ({start}); use a later date or a shorter "
                    f"--window-days."
                )
    earliest = anchor_days[-1] - timedelta(days=window)  # the latest anchor fits the most ages
    kept = [a for a in age_list if earliest - timedelta(days=a) >= start]
    dropped = [a for a in age_list if a not in kept]
    if dropped:
        log.info(
            "freshness %s: ages %s fit before no anchor (data from %s): dropped",
            config.name,
            dropped,
            start,
        )

    data = TimeFrame(config, source.read_window(start, end))
    import_fitting_libraries(config)
    log.info(
        "freshness %s: %d rows, %d anchors x %d ages, %d-day windows",
        config.name,
        len(data.frame),
        len(anchor_days),
        len(kept),
        window,
    )
    records: list[FreshnessRecord] = []
    total = len(anchor_days) * len(kept)
    for e in anchor_days:
        e_end = e + timedelta(days=eval_days)
        evaluation = data.rows(e, e_end)
        y_eval = data.y[data.pos(e) : data.pos(e_end)]
        for a in kept:
            rec = _measure_one(config, data, e, e_end, a, window, start, evaluation, y_eval)
            records.append(rec)
            if progress:
                what = rec.skipped or (
                    f"{config.evaluation.primary_metric}="
                    f"{_fmt(rec.metric)} ({rec.rows} rows, "
                    f"{rec.train_cpu_seconds:.1f} s CPU)"
                )
                progress(f"[{len(records)}/{total}] anchor {e} age {a:>3}d: {what}")
    primary = config.evaluation.primary_metric
    return FreshnessResult(
        schema_version=SCHEMA_VERSION,
        pipeline=config.name,
        task=config.task,
        primary_metric=primary,
        lower_is_better=config.lower_is_better,
        start=start.isoformat(),
        end=end.isoformat(),
        data_rows=len(data.frame),
        window_days=window,
        eval_days=eval_days,
        delay_days=delay,
        min_rows=config.expectations.min_rows,
        ages=kept,
        dropped_ages=dropped,
        intervals=interval_list,
        anchors=[e.isoformat() for e in anchor_days],
        records=records,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        seconds=round(time.perf_counter() - t0, 2),
    )


def _measure_one(
    config: PipelineConfig,
    data: TimeFrame,
    e: date,
    e_end: date,
    age: int,
    window: int,
    data_start: date,
    evaluation: Any,
    y_eval: np.ndarray,
) -> FreshnessRecord:
    """Train on ``[e - age - window, e - age)`` and score ``[e, e_end)`` (or say why not)."""
    from retrainflow.core import metrics, training, windows
    from retrainflow.metering import measure

    trained = windows.stateless(e - timedelta(days=age), window)
    train_start, train_end = trained.start, trained.end
    rows = data.count(train_start, train_end)
    skipped = None
    if train_start < data_start:
        skipped = f"the window starts before the data ({data_start})"
    elif rows < config.expectations.min_rows:
        skipped = (
            f"only {rows} rows in {trained} "
            f"(< expectations.min_rows {config.expectations.min_rows})"
        )
    elif len(evaluation) == 0:
        skipped = f"no rows in the evaluation period [{e}, {e_end})"
    base: dict[str, Any] = {
        "anchor": e.isoformat(),
        "age_days": age,
        "train_start": train_start.isoformat(),
        "train_end": train_end.isoformat(),
        "eval_end": e_end.isoformat(),
        "rows": rows,
        "eval_rows": len(evaluation),
    }
    if skipped:
        return FreshnessRecord(
            **base, metric=None, metrics={}, train_cpu_seconds=0.0, skipped=skipped
        )
    raw = data.rows(train_start, train_end)
    with measure() as cost:
        model = training.train_model(config, raw)
    scores = metrics.compute_metrics(config.task, y_eval, model.predict(evaluation))
    return FreshnessRecord(
        **base,
        metric=metrics.finite_or_none(scores[config.evaluation.primary_metric]),
        metrics={k: metrics.finite_or_none(v) for k, v in scores.items()},
        train_cpu_seconds=round(cost.cpu_seconds, 4),
        skipped=None,
    )


def _fmt(x: float | None) -> str:
    return "-" if finite_or_none(x) is None else f"{x:.4f}"


# -- output ------------------------------------------------------------------------------


def save(result: FreshnessResult, out_dir: Path | str) -> dict[str, Location]:
    """Write ``freshness.json`` and ``freshness.png`` (atomically) into ``out_dir`` (a local
    folder, or an ``s3://`` URI: see :mod:`retrainflow.artifacts`).

    Returns:
        ``{"json": ..., "png": ...}``: Paths, or URIs on S3.
    """
    from retrainflow.artifacts import StageDir, is_uri

    out = StageDir(out_dir if is_uri(out_dir) else Path(out_dir))
    if isinstance(out.path, Path):
        out.path.mkdir(parents=True, exist_ok=True)
    return {
        "json": out.write_json("freshness.json", result.to_dict()),
        "png": out.write_with("freshness.png", lambda p: _plot(result, p)),
    }


def _plot(result: FreshnessResult, path: Path) -> None:
    """Metric vs age: one thin line per anchor, the mean thick with a +-1 std band."""
    from matplotlib import colormaps

    from retrainflow.reports import agg_figure

    fig = agg_figure(10, 5.5)
    ax = fig.add_subplot()
    colors = colormaps["tab10"].colors  # type: ignore[attr-defined]
    for k, anchor in enumerate(result.anchors):
        pts = [
            (r.age_days, r.metric)
            for r in result.records
            if r.anchor == anchor and r.metric is not None
        ]
        if pts:
            ax.plot(
                [a for a, _ in pts],
                [m for _, m in pts],
                "-",
                linewidth=0.9,
                alpha=0.6,
                marker=".",
                color=colors[k % len(colors)],
                label=f"eval from {anchor}",
            )
    rows = [r for r in result.by_age() if r.mean_metric is not None]
    x = np.array([r.age_days for r in rows], dtype=np.float64)
    mean = np.array([r.mean_metric for r in rows], dtype=np.float64)
    std = np.array([np.nan if r.std_metric is None else r.std_metric for r in rows])
    if len(rows):
        band = np.isfinite(std)
        if band.any():
            ax.fill_between(
                x[band],
                (mean - std)[band],
                (mean + std)[band],
                color="black",
                alpha=0.12,
                linewidth=0,
                label="mean ± 1 std",
            )
        ax.plot(
            x,
            mean,
            "-",
            color="black",
            linewidth=2.6,
            marker="o",
            label=f"mean over {len(result.anchors)} anchor(s)",
        )
    ax.set_xlabel("age of the training data at the start of the evaluation period (days)")
    direction = "lower is better" if result.lower_is_better else "higher is better"
    ax.set_ylabel(f"{result.primary_metric} ({direction})")
    ax.set_title(
        f"{result.pipeline}: value of freshness — {result.window_days}-day training "
        f"windows, {result.eval_days}-day evaluation periods"
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, format="png")


def log_to_mlflow(
    config: PipelineConfig, result: FreshnessResult, paths: Mapping[str, Location]
) -> str:
    """One run in experiment ``<pipeline>-freshness``: the tables as metrics, and the files.

    Metrics: ``age_<a>.mean_metric``, ``age_<a>.delta_vs_fresh``,
    ``interval_<k>.expected_metric``, ``interval_<k>.delta_vs_daily``.

    Returns:
        The MLflow run id.
    """
    from retrainflow.reports import log_report_to_mlflow

    metrics: dict[str, float | None] = {}
    for row in result.by_age():
        metrics[f"age_{row.age_days}.mean_metric"] = row.mean_metric
        metrics[f"age_{row.age_days}.delta_vs_fresh"] = row.delta_vs_fresh
    for irow in result.by_interval():
        metrics[f"interval_{irow.interval_days}.expected_metric"] = irow.expected_metric
        metrics[f"interval_{irow.interval_days}.delta_vs_daily"] = irow.delta_vs_daily
    return log_report_to_mlflow(
        f"{config.name}-freshness",
        f"freshness {result.anchors[0]}..{result.anchors[-1]}",
        paths.values(),
        metrics=metrics,
        artifact_path="freshness",
        params={
            "window_days": result.window_days,
            "eval_days": result.eval_days,
            "delay_days": result.delay_days,
            "primary_metric": result.primary_metric,
        },
        tags={"ages": ",".join(map(str, result.ages)), "anchors": ",".join(result.anchors)},
    )
