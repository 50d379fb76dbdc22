"""A small synthetic tabular data set with a known drift point.

Used by tests and quick demos: it is fast, deterministic, and its drift is
known exactly. Each day holds ``rows_per_day`` rows with

* ``ts`` — event time, spread at random over the day (sorted within the day);
* ``x1`` … ``x4`` — numeric features (``x4`` is non-negative);
* ``segment`` (``a``/``b``/``c``) and ``channel`` (``web``/``app``) — categorical;
* ``label`` (0/1) drawn from a logistic model of the features, or, with
  ``task="regression"``, a numeric ``y`` from a linear model plus noise.

From ``drift_day`` on (counted from ``start``, 0-based), with
``drift_strength`` ``s`` in ``[0, 1]`` scaling every change:

* covariate shift: ``x1`` moves by ``+0.5 s``, ``x2`` spreads out, ``x4``
  grows, segment ``c`` and channel ``app`` become more common;
* concept change: the coefficient of ``x1`` goes from ``+1.5`` to
  ``1.5 - 3 s`` (it flips sign at ``s = 1``), the effects of segments ``b``
  and ``c`` swap, and ``x4`` starts to matter.

A model fitted before the drift therefore loses a lot of accuracy after it
(the tests check a drop of more than 0.1 AUC at full strength).

Each day's rows come from their own random stream seeded by ``(seed, day)``,
so day ``k`` is identical whatever ``days`` is: a longer frame extends a
shorter one.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

TIME_COLUMN = "ts"
NUMERIC = ("x1", "x2", "x3", "x4")
CATEGORICAL = ("segment", "channel")
SEGMENTS = ("a", "b", "c")
CHANNELS = ("web", "app")
CLASSIFICATION_TARGET = "label"
REGRESSION_TARGET = "y"

#: The data set ``seed`` writes for the ``synthetic`` pipeline.
DEFAULT_START = date(2023, 1, 1)
DEFAULT_DAYS = 120
DEFAULT_ROWS_PER_DAY = 400
DEFAULT_DRIFT_DAY = 60
DEFAULT_SEED = 0

_NS_PER_DAY = 86_400 * 10**9


def _day_rows(
    rng: np.random.Generator,
    n: int,
    s: float,
    task: Literal["binary_classification", "regression"],
) -> dict[str, np.ndarray]:
    """Features and target of one day; ``s`` is the drift strength in force (0 = none)."""
    import numpy as np

    x1 = rng.normal(0.5 * s, 1.0, n)
    x2 = rng.normal(0.0, 1.0 + 0.5 * s, n)
    x3 = rng.normal(0.0, 1.0, n)
    x4 = rng.exponential(1.0 + s, n)
    seg_p = (1 - s) * np.array([0.5, 0.3, 0.2]) + s * np.array([0.2, 0.3, 0.5])
    segment = rng.choice(np.array(SEGMENTS, dtype=object), size=n, p=seg_p)
    channel = np.where(rng.random(n) < 0.4 + 0.3 * s, "app", "web").astype(object)

    seg_b, seg_c = 0.8 - 1.6 * s, -0.8 + 1.6 * s
    seg_effect = np.select([segment == "b", segment == "c"], [seg_b, seg_c], 0.0)
    linear = (
        (1.5 - 3.0 * s) * x1
        - 1.0 * x2
        + 0.5 * x3
        + 0.6 * s * (x4 - (1.0 + s))
        + seg_effect
        + 0.4 * (channel == "app")
    )
    out: dict[str, np.ndarray] = {
        "x1": x1,
        "x2": x2,
        "x3": x3,
        "x4": x4,
        "segment": segment,
        "channel": channel,
    }
    if task == "regression":
        out[REGRESSION_TARGET] = 10.0 + 2.0 * linear + rng.normal(0.0, 1.0, n)
    else:
        p = 1.0 / (1.0 + np.exp(-(linear - 0.3)))
        out[CLASSIFICATION_TARGET] = (rng.random(n) < p).astype("int64")
    return out


def make_synthetic(
    start: date,
    days: int,
    rows_per_day: int,
    drift_day: int | None,
    seed: int,
    drift_strength: float = 1.0,
    *,
    task: Literal["binary_classification", "regression"] = "binary_classification",
) -> pd.DataFrame:
    """Generate ``days`` days of rows starting at ``start``.

    Args:
        start: The first day.
        days: How many days (>= 0).
        rows_per_day: Rows in each day (>= 1).
        drift_day: 0-based index of the first drifted day; ``None`` for no drift.
        seed: Seed of the random streams; equal arguments give equal frames.
        drift_strength: 0 (no change) to 1 (``x1``'s coefficient flips sign).
        task: ``binary_classification`` gives a 0/1 ``label``; ``regression`` a float ``y``.

    Returns:
        Columns ``ts`` (``datetime64[ns]``), ``x1``..``x4`` (float), ``segment``,
        ``channel`` (str) and ``label`` (int 0/1) or ``y`` (float), sorted by ``ts``.

    Raises:
        ValueError: for negative ``days``, ``rows_per_day`` < 1, a negative
            ``drift_day``, ``drift_strength`` outside ``[0, 1]`` or an unknown ``task``.
    """
    import numpy as np
    import pandas as pd

    if days < 0:
        raise ValueError(f"days must be >= 0; got {days}")
    if rows_per_day < 1:
        raise ValueError(f"rows_per_day must be >= 1; got {rows_per_day}")
    if drift_day is not None and drift_day < 0:
        raise ValueError(f"drift_day must be >= 0 or None; got {drift_day}")
    if not 0.0 <= drift_strength <= 1.0:
        raise ValueError(f"drift_strength must be in [0, 1]; got {drift_strength}")
    if task not in ("binary_classification", "regression"):
        raise ValueError(f"task must be 'binary_classification' or 'regression'; got {task!r}")

    target = REGRESSION_TARGET if task == "regression" else CLASSIFICATION_TARGET
    columns = [TIME_COLUMN, *NUMERIC, *CATEGORICAL, target]
    parts: list[pd.DataFrame] = []
    for i in range(days):
        rng = np.random.default_rng([seed, i])
        day = start + timedelta(days=i)
        midnight = np.datetime64(datetime.combine(day, datetime.min.time()), "ns")
        offsets = np.sort(rng.integers(0, _NS_PER_DAY, rows_per_day))
        s = drift_strength if drift_day is not None and i >= drift_day else 0.0
        rows = _day_rows(rng, rows_per_day, s, task)
        ts = midnight + offsets.astype("timedelta64[ns]")
        parts.append(pd.DataFrame({TIME_COLUMN: ts, **rows}))
    if not parts:
        empty = {c: pd.Series(dtype="float64") for c in columns}
        empty[TIME_COLUMN] = pd.Series(dtype="datetime64[ns]")
        for c in CATEGORICAL:
            empty[c] = pd.Series(dtype=object)
        if target == CLASSIFICATION_TARGET:
            empty[target] = pd.Series(dtype="int64")
        return pd.DataFrame(empty)[columns]
    frame = pd.concat(parts, ignore_index=True)[columns]
    frame[TIME_COLUMN] = frame[TIME_COLUMN].astype("datetime64[ns]")
    return frame


def default_synthetic() -> pd.DataFrame:
    """The ``synthetic`` pipeline's data: 2023-01-01, 120 days × 400 rows, drift at day 60, seed 0.

    Returns:
        The frame of :func:`make_synthetic` with the default arguments.
    """
    return make_synthetic(
        DEFAULT_START, DEFAULT_DAYS, DEFAULT_ROWS_PER_DAY, DEFAULT_DRIFT_DAY, DEFAULT_SEED
    )
