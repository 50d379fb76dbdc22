"""Warm-start methods on a long trending stream: which ones stay near a from-scratch fit.

Issue 7, finding 5: on a public hourly regression stream with strong growth, naive
``append`` (40 trees per weekly warm start) went from a next-week MAE of 53 to 4,033 over
~130 weeks while a weekly stateless refit on a window stayed at 27-74. Nothing in the code is wrong
there (the appended trees start from the parent's predictions, no average is added
twice, the frozen transformer is not involved): it is what ``append`` is. Every warm
start adds trees grown on one week's residuals — a few hundred rows, too few for the
structure a window-sized fit learns (``min_child_samples: 50`` leaves a tree on 168 rows
at most three leaves) — and never revisits the old ones, so the level x profile
interaction learned at the start is never rescaled and every week's idiosyncrasies are
summed. The gap to a from-scratch fit grows with the number of chained warm starts.

The same replay found a defect in ``bounded``: it kept only the newest ``max_trees``
trees, so after ``max_trees / num_boost_round`` warm starts the from-scratch fit (the only
trees grown on a whole window; its first tree also carries the target's mean) was gone
and the model was as far behind as ``append`` (6.5x here). It now keeps the oldest trees
and drops the appended ones in between.

The stream: 80 weeks of hourly rows (168 a week) whose level grows 6x, with a weekday
commute / weekend midday profile and a seasonal temperature effect; features hour,
weekday, month and temperature. A warm-up fit on the first 8 weeks, then every method
continues its model on each new week only; each is scored on the next week against a
from-scratch fit on the 8 weeks before it (the pipeline's stateless window). Measured
(seeds 0-2, next-week MAE / from-scratch MAE, weeks 8-16 after the warm-up -> last 8 of
80): ``append`` 3.1-3.3x -> 5.4-6.0x; ``bounded`` 1.5-1.8x -> 1.7-2.2x (seed 0 before
the fix: 4.3x -> 6.5x); ``refit_append`` 1.1-1.4x -> 1.4-2.0x. The stated bound, 2.5x,
leaves room for other LightGBM versions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrainflow.config import PipelineConfig, parse_config
from retrainflow.core.training import continue_estimator, fit_estimator
from retrainflow.features import FeatureTransformer

WEEK = 168  # hourly rows
WEEKS = 80
WARMUP = 8  # weeks of the first fit and of every from-scratch window
ROUNDS = 40  # trees appended per warm start (the setting)
#: ``bounded`` and ``refit_append`` stay within this factor of a from-scratch fit's MAE.
FACTOR = 2.5


def trending_hourly_stream(weeks: int, seed: int = 0, growth: float = 6.0) -> pd.DataFrame:
    """Hourly counts whose level grows ``growth``-fold over the stream (bike-share-like)."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2021-01-04", periods=weeks * WEEK, freq="h")
    hour, dow = ts.hour.to_numpy(), ts.dayofweek.to_numpy()
    commute = np.exp(-((hour - 8) ** 2) / 2.0) + 1.2 * np.exp(-((hour - 17.5) ** 2) / 3.0)
    midday = np.exp(-((hour - 14) ** 2) / 12.0)
    profile = np.where(dow >= 5, 0.15 + 0.9 * midday, 0.1 + 0.35 * midday + commute)
    day = np.arange(len(ts)) // 24
    temp = (
        14
        - 11 * np.cos(2 * np.pi * (ts.dayofyear.to_numpy() - 15) / 365.25)
        + 4 * np.sin(2 * np.pi * (hour - 9) / 24)
        + rng.normal(0, 4.0, day[-1] + 1)[day]
        + rng.normal(0, 1.0, len(ts))
    )
    weather = 1 / (1 + np.exp(-(temp - 8) / 4)) * np.where(temp > 30, 0.8, 1.0)
    level = 40 * (1 + (growth - 1) * np.arange(len(ts)) / len(ts))
    y = rng.poisson(level * profile * (0.3 + 0.9 * weather) * 3).astype(float)
    return pd.DataFrame({"ts": ts, "temp": temp.round(1), "count": y})


def hourly_config(**warm_start: Any) -> PipelineConfig:
    """A regression pipeline sized for a 60-day window (as ``flights`` is), one thread."""
    return parse_config(
        {
            "name": "hourly",
            "task": "regression",
            "target": "count",
            "time_column": "ts",
            "source": {"kind": "parquet", "path": "hourly"},
            "features": {"numeric": ["temp"], "time_parts": ["hour", "day_of_week", "month"]},
            "training": {
                "estimator": "lightgbm",
                "params": {
                    "n_estimators": 200,
                    "learning_rate": 0.05,
                    "num_leaves": 63,
                    "min_child_samples": 50,
                    "feature_fraction": 0.8,
                    "bagging_fraction": 0.8,
                    "bagging_freq": 1,
                    "lambda_l2": 1.0,
                    "num_threads": 1,
                    "deterministic": True,
                    "verbosity": -1,
                },
                "warm_start": {"num_boost_round": ROUNDS, **warm_start},
                "random_seed": 0,
            },
            "evaluation": {"primary_metric": "mae"},
        }
    )


def _mae(model: Any, X: pd.DataFrame, y: np.ndarray) -> float:
    return float(np.mean(np.abs(model.predict(X) - y)))


@pytest.fixture(scope="module")
def replay() -> dict[str, dict[str, float]]:
    """Mean next-week MAE ratio to a from-scratch fit, 8 weeks after the warm-up
    (``early``) and over the last 8 weeks (``late``), per warm-start method."""
    cfg = hourly_config()
    rows = trending_hourly_stream(WEEKS)
    week = [rows.iloc[i * WEEK : (i + 1) * WEEK] for i in range(WEEKS)]
    first = rows.iloc[: WARMUP * WEEK]
    transformer = FeatureTransformer.from_config(cfg).fit(first)  # frozen, as in a warm start
    base = fit_estimator(cfg, transformer.transform(first), first["count"].to_numpy(), [])
    methods = {"append": {}, "bounded": {}, "refit_append": {"decay_rate": 0.5}}
    models = dict.fromkeys(methods, base)
    scored = {
        **dict.fromkeys(range(WARMUP + 8, WARMUP + 16), "early"),
        **dict.fromkeys(range(WEEKS - 8, WEEKS), "late"),
    }
    errors: dict[str, dict[str, list[float]]] = {"early": {}, "late": {}}
    for k in range(WARMUP, WEEKS):
        X, y = transformer.transform(week[k]), week[k]["count"].to_numpy()
        if k in scored:
            window = rows.iloc[(k - WARMUP) * WEEK : k * WEEK]
            scratch = fit_estimator(
                cfg, transformer.transform(window), window["count"].to_numpy(), []
            )
            at = errors[scored[k]]
            at.setdefault("scratch", []).append(_mae(scratch, X, y))
            for name, model in models.items():
                at.setdefault(name, []).append(_mae(model, X, y))
        for name, kwargs in methods.items():  # then learn this week, and only it
            models[name] = continue_estimator(cfg, models[name], X, y, [], method=name, **kwargs)
    assert models["append"].num_trees() == 200 + (WEEKS - WARMUP) * ROUNDS
    assert models["bounded"].num_trees() == 200
    return {
        when: {
            name: float(np.mean(v) / np.mean(errs["scratch"]))
            for name, v in errs.items()
            if name != "scratch"
        }
        for when, errs in errors.items()
    }


@pytest.mark.parametrize("method", ["bounded", "refit_append"])
def test_bounded_and_refit_append_stay_near_a_from_scratch_fit(
    replay: dict[str, dict[str, float]], method: str
) -> None:
    assert replay["early"][method] < FACTOR, replay
    assert replay["late"][method] < FACTOR, replay


def test_append_falls_ever_further_behind(replay: dict[str, dict[str, float]]) -> None:
    """The method's nature, documented: beyond the bound, and the gap keeps growing."""
    assert replay["late"]["append"] > 4.0, replay  # measured 5.4-6.0x
    assert replay["late"]["append"] > 1.5 * replay["early"]["append"], replay
    assert replay["late"]["append"] > 2 * replay["late"]["bounded"], replay


def test_bounded_keeps_the_oldest_trees_and_the_newest() -> None:
    """``bounded`` keeps the from-scratch fit's first trees (tree 0 carries the target's
    mean) and the newest appended ones; with decay 1.0 (old leaf values kept) the model
    is exactly those trees of the grown ensemble."""
    cfg = hourly_config()
    rows = trending_hourly_stream(WEEKS).iloc[: (WARMUP + 2) * WEEK]
    first, new = rows.iloc[: WARMUP * WEEK], rows.iloc[WARMUP * WEEK :]
    tf = FeatureTransformer.from_config(cfg).fit(first)
    base = fit_estimator(cfg, tf.transform(first), first["count"].to_numpy(), [])
    X, y = tf.transform(new), new["count"].to_numpy()
    grown = continue_estimator(cfg, base, X, y, [], method="append")  # 240 trees
    for keep, oldest in ((200, 160), (230, 190), (30, 0), (300, 240)):
        kept = continue_estimator(
            cfg, base, X, y, [], method="bounded", decay_rate=1.0, max_trees=keep
        )
        assert kept.num_trees() == min(keep, 240)  # no more trees than grown: none dropped
        expected = grown.predict(X, num_iteration=oldest) if oldest else 0.0
        if oldest < keep < 240:
            expected = expected + grown.predict(X, start_iteration=240 - (keep - oldest))
        np.testing.assert_allclose(kept.predict(X), expected, rtol=1e-9, atol=1e-6)
    # dropped trees take their share of the level with them; the leaf re-fit puts it back
    # (fully with decay 0: tree 0 fits the mean again)
    refitted = continue_estimator(cfg, base, X, y, [], method="bounded", decay_rate=0.0)
    assert abs(float(np.mean(refitted.predict(X) - y))) < 0.01 * float(np.mean(y))
