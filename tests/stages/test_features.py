"""Stage 3 — features: a new transformer for stateless runs, the parent's for warm starts."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from retrainflow.exceptions import DataError
from retrainflow.features import FeatureTransformer
from retrainflow.registry import Registry
from retrainflow.stages.features import TARGET

EXPECTED_FEATURES = ["x1", "x2", "x3", "x4", "ts_hour", "ts_day_of_week", "segment", "channel"]


def _load(uri: str) -> FeatureTransformer:
    with open(uri, "rb") as fh:
        return pickle.load(fh)


def _categories(t: FeatureTransformer) -> list[list[str]]:
    return [list(c) for c in t.column_transformer_.named_transformers_["cat"].categories_]


def test_stateless_fits_a_new_transformer(trained) -> None:
    f = trained.stateless.features
    assert f.frozen is False
    assert f.feature_names == EXPECTED_FEATURES
    assert f.categorical_features == ["segment", "channel"]
    assert f.rows == trained.stateless.pull.train.rows
    t = _load(f.transformer_uri)
    assert _categories(t) == [["a", "b", "c"], ["app", "web"]]
    matrix = pd.read_parquet(f.train_uri)
    assert list(matrix.columns) == [*EXPECTED_FEATURES, TARGET]
    assert len(matrix) == f.rows
    assert set(matrix[TARGET].unique()) == {0.0, 1.0}
    assert (matrix.dtypes == "float64").all()


def test_warm_start_reuses_the_parent_transformer(trained) -> None:
    parent, warm = trained.stateless.features, trained.warm.features
    assert warm.frozen is True
    assert warm.feature_names == parent.feature_names
    assert warm.categorical_features == parent.categorical_features
    reused, fitted = _load(warm.transformer_uri), _load(parent.transformer_uri)
    registered = Registry().load_model("synthetic", trained.warm.pull.parent_version).transformer
    assert _categories(reused) == _categories(fitted) == _categories(registered)
    # identical encoding of the same rows
    rows = trained.probe
    pd.testing.assert_frame_equal(reused.transform(rows), fitted.transform(rows))
    pd.testing.assert_frame_equal(reused.transform(rows), registered.transform(rows))


def test_warm_start_matrix_is_encoded_by_the_parent(trained) -> None:
    raw = pd.read_parquet(trained.warm.pull.train.uri)
    matrix = pd.read_parquet(trained.warm.features.train_uri).drop(columns=TARGET)
    expected = _load(trained.stateless.features.transformer_uri).transform(raw)
    pd.testing.assert_frame_equal(matrix, expected)


@pytest.fixture
def raw() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": pd.to_datetime(
                ["2023-01-02 03:00", "2023-01-03 04:00", "2023-01-04 05:00", "2023-01-05 06:00"]
            ),
            "x1": [1.0, 2.0, 3.0, 4.0],
            "x2": [0.5, -0.5, 1.5, 2.5],
            "segment": ["a", "b", "a", "b"],
            "label": [0, 1, 0, 1],
        }
    )


def _transformer(encoding: str) -> FeatureTransformer:
    return FeatureTransformer(
        numeric=["x1", "x2"],
        categorical=["segment"],
        time_column="ts",
        time_parts=["hour"],
        encoding=encoding,
    )


def test_ordinal_unseen_category_and_nulls(raw) -> None:
    t = _transformer("ordinal").fit(raw)
    new = pd.DataFrame(
        {
            "ts": pd.to_datetime(["2023-02-01 07:00", "2023-02-01 08:00", "2023-02-01 09:00"]),
            "x1": [1.0, None, 3.0],
            "x2": [0.0, 1.0, None],
            "segment": ["zzz", None, "b"],
        }
    )
    out = t.transform(new)
    assert list(out.columns) == ["x1", "x2", "ts_hour", "segment"]
    assert np.isnan(out.loc[0, "segment"])  # unseen category -> NaN
    assert np.isnan(out.loc[1, "segment"])  # null category (unseen '__missing__') -> NaN
    assert out.loc[2, "segment"] == 1.0  # 'b' keeps its code
    assert np.isnan(out.loc[1, "x1"]) and np.isnan(out.loc[2, "x2"])  # nulls stay NaN for trees
    assert out["ts_hour"].tolist() == [7.0, 8.0, 9.0]


def test_ordinal_null_category_seen_in_training(raw) -> None:
    raw.loc[3, "segment"] = None
    t = _transformer("ordinal").fit(raw)
    out = t.transform(
        pd.DataFrame({"ts": raw["ts"][:1], "x1": [1.0], "x2": [1.0], "segment": [None]})
    )
    assert not np.isnan(out.loc[0, "segment"])  # '__missing__' is a known category now


def test_onehot_unseen_category_and_nulls() -> None:
    n = 50
    raw = pd.DataFrame(
        {
            "ts": pd.date_range("2023-01-01", periods=2 * n, freq="h"),
            "x1": np.arange(2 * n, dtype=float),
            "x2": np.ones(2 * n),
            "segment": ["a"] * n + ["b"] * n,
        }
    )
    t = _transformer("onehot").fit(raw)
    new = raw.iloc[:2].copy()
    new["segment"] = ["zzz", None]
    new.loc[new.index[0], "x1"] = None
    out = t.transform(new)
    assert not out.isna().any().any()  # imputed and scaled
    seg = [c for c in out.columns if c.startswith("segment")]
    assert (out[seg] == 0).all().all()  # unknown categories encode as all zeros


def test_transformer_needs_its_columns(raw) -> None:
    t = _transformer("ordinal").fit(raw)
    with pytest.raises(DataError, match=r"\['x2'\]"):
        t.transform(raw.drop(columns=["x2"]))
    with pytest.raises(RuntimeError, match="not fitted"):
        _transformer("ordinal").transform(raw)


def test_transformer_ignores_extra_columns_and_order(raw) -> None:
    t = _transformer("ordinal").fit(raw)
    shuffled = raw.assign(extra="x")[["extra", "segment", "x2", "ts", "label", "x1"]]
    pd.testing.assert_frame_equal(t.transform(shuffled), t.transform(raw))
