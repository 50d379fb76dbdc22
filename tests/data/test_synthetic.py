"""The synthetic generator and seeding the synthetic pipeline."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import r2_score, roc_auc_score

from retrainflow.config import load_config, parse_config
from retrainflow.data.seed import DATASETS, UnknownDatasetError, seed
from retrainflow.data.sources import make_source
from retrainflow.data.synthetic import default_synthetic, make_synthetic
from retrainflow.exceptions import UserError

SYNTHETIC_YAML = Path(__file__).resolve().parents[1] / "fixtures" / "pipelines" / "synthetic.yaml"
START = date(2023, 1, 1)


def _design(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, pd.Series]:
    features = frame.drop(columns=["ts", target])
    x = pd.get_dummies(features, columns=["segment", "channel"], dtype=float)
    return x, frame[target]


def test_columns_and_dtypes() -> None:
    f = make_synthetic(START, 3, 50, None, 1)
    assert list(f.columns) == ["ts", "x1", "x2", "x3", "x4", "segment", "channel", "label"]
    assert len(f) == 150
    assert f["ts"].dtype == "datetime64[ns]"
    assert f["ts"].is_monotonic_increasing
    assert f.groupby(f["ts"].dt.date).size().to_dict() == {
        date(2023, 1, 1): 50,
        date(2023, 1, 2): 50,
        date(2023, 1, 3): 50,
    }
    assert f["ts"].dt.hour.nunique() > 12  # spread over the day
    assert set(f["segment"]) == {"a", "b", "c"}
    assert set(f["channel"]) == {"web", "app"}
    assert set(f["label"]) == {0, 1} and f["label"].dtype == "int64"
    assert (f["x4"] >= 0).all()


def test_deterministic_per_seed() -> None:
    a = make_synthetic(START, 10, 100, 5, seed=7)
    b = make_synthetic(START, 10, 100, 5, seed=7)
    c = make_synthetic(START, 10, 100, 5, seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert not a[["x1", "x2"]].equals(c[["x1", "x2"]])
    # Day k does not depend on how many days are generated.
    longer = make_synthetic(START, 12, 100, 5, seed=7)
    pd.testing.assert_frame_equal(longer.iloc[: len(a)], a)


def test_drift_degrades_a_pre_drift_model() -> None:
    f = default_synthetic()
    assert len(f) == 120 * 400
    day = (f["ts"] - pd.Timestamp(START)).dt.days
    x, y = _design(f, "label")
    pre, post_fit, post_eval = day < 60, (day >= 60) & (day < 90), day >= 90
    old = LogisticRegression(max_iter=1000).fit(x[pre], y[pre])
    new = LogisticRegression(max_iter=1000).fit(x[post_fit], y[post_fit])
    auc_old = roc_auc_score(y[post_eval], old.predict_proba(x[post_eval])[:, 1])
    auc_new = roc_auc_score(y[post_eval], new.predict_proba(x[post_eval])[:, 1])
    assert auc_new - auc_old > 0.1, (auc_old, auc_new)
    # Before the drift the old model is fine.
    pre_eval = (day >= 45) & (day < 60)
    old2 = LogisticRegression(max_iter=1000).fit(x[day < 45], y[day < 45])
    assert roc_auc_score(y[pre_eval], old2.predict_proba(x[pre_eval])[:, 1]) > 0.8
    # The feature distribution shifts too.
    assert f.loc[day >= 60, "x1"].mean() - f.loc[pre, "x1"].mean() > 0.3
    assert (f.loc[day >= 60, "segment"] == "c").mean() > (f.loc[pre, "segment"] == "c").mean() + 0.2


def test_no_drift_without_drift_day() -> None:
    f = make_synthetic(START, 40, 300, None, seed=3)
    day = (f["ts"] - pd.Timestamp(START)).dt.days
    x, y = _design(f, "label")
    model = LogisticRegression(max_iter=1000).fit(x[day < 20], y[day < 20])
    assert roc_auc_score(y[day >= 20], model.predict_proba(x[day >= 20])[:, 1]) > 0.8
    weak = make_synthetic(START, 40, 300, 20, seed=3, drift_strength=0.0)
    pd.testing.assert_frame_equal(weak, f)


def test_regression_variant() -> None:
    f = make_synthetic(START, 40, 300, 20, seed=5, task="regression")
    assert "y" in f.columns and "label" not in f.columns
    assert f["y"].dtype == "float64"
    day = (f["ts"] - pd.Timestamp(START)).dt.days
    x, y = _design(f, "y")
    old = LinearRegression().fit(x[day < 20], y[day < 20])
    new = LinearRegression().fit(x[(day >= 20) & (day < 30)], y[(day >= 20) & (day < 30)])
    ev = day >= 30
    r2_old, r2_new = r2_score(y[ev], old.predict(x[ev])), r2_score(y[ev], new.predict(x[ev]))
    assert r2_new > 0.8 and r2_new - r2_old > 0.3, (r2_old, r2_new)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"days": -1},
        {"rows_per_day": 0},
        {"drift_day": -2},
        {"drift_strength": 1.5},
        {"task": "ranking"},
    ],
)
def test_bad_arguments(kwargs: dict) -> None:
    args = {"start": START, "days": 2, "rows_per_day": 10, "drift_day": None, "seed": 0} | kwargs
    with pytest.raises(ValueError):
        make_synthetic(**args)


def test_zero_days_gives_empty_typed_frame() -> None:
    f = make_synthetic(START, 0, 10, None, 0)
    assert f.empty and f["ts"].dtype == "datetime64[ns]"


def test_fixture_config_fits_the_generator() -> None:
    cfg = load_config(SYNTHETIC_YAML)
    f = default_synthetic()
    assert set(cfg.required_columns) == set(f.columns)
    for col, exp in cfg.expectations.columns.items():
        if exp.allowed is not None:
            assert set(f[col].unique()) <= set(exp.allowed), col
        if exp.min is not None:
            assert f[col].min() >= exp.min, col
        if exp.max is not None:
            assert f[col].max() <= exp.max, col
    assert DATASETS["synthetic"] is default_synthetic


def test_seed_synthetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    monkeypatch.setenv("RETRAINFLOW_HOME", str(tmp_path))
    cfg = load_config(SYNTHETIC_YAML)
    with caplog.at_level(logging.INFO, logger="retrainflow.data.seed"):
        r = seed(cfg, date(2023, 3, 11))
    assert r.days_written == 70 and r.rows_written == 70 * 400
    assert r.last_day == date(2023, 3, 11)
    progress = [m for m in caplog.messages if "day(s) written" in m]
    assert len(progress) == 3  # one line per 30 days
    source = make_source(cfg)
    assert source.uri.startswith(str(tmp_path / "lake" / "synthetic"))
    r2 = seed(cfg, date(2023, 12, 31), since=date(2023, 3, 1))
    assert r2.days_skipped == 11
    assert r2.days_written == 50 and r2.last_day == date(2023, 4, 30)
    assert len(source.partitions()) == 120
    back = source.read_window(date(2023, 1, 1), date(2023, 5, 1))
    pd.testing.assert_frame_equal(back, default_synthetic(), check_dtype=False)


def test_seed_since_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRAINFLOW_HOME", str(tmp_path))
    cfg = load_config(SYNTHETIC_YAML)
    r = seed(cfg, date(2023, 2, 5), since=date(2023, 2, 1))
    assert r.days == [date(2023, 2, d) for d in range(1, 6)]
    with pytest.raises(UserError):
        seed(cfg, date(2023, 2, 1), since=date(2023, 2, 5))


def test_seed_unknown_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRAINFLOW_HOME", str(tmp_path))
    raw = load_config(SYNTHETIC_YAML).model_dump()
    raw["name"], raw["tags"] = "churn", {}
    cfg = parse_config(raw)
    with pytest.raises(UnknownDatasetError) as info:
        seed(cfg, date(2023, 1, 5))
    assert "flights" in str(info.value) and "synthetic" in str(info.value)
    assert isinstance(info.value, UserError)
    # An explicit loader works for any pipeline.
    r = seed(cfg, date(2023, 1, 5), frame_loader=lambda: make_synthetic(START, 10, 20, None, 0))
    assert r.days_written == 5 and r.rows_written == 100


def test_seed_missing_time_column(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRAINFLOW_HOME", str(tmp_path))
    cfg = load_config(SYNTHETIC_YAML)
    frame = make_synthetic(START, 2, 10, None, 0).rename(columns={"ts": "when"})
    with pytest.raises(UserError, match="time_column"):
        seed(cfg, date(2023, 1, 5), frame_loader=lambda: frame)
    assert not np.any([p.exists() for p in (tmp_path / "lake" / "synthetic").glob("date=*")])
