"""Serving: ``models:/synthetic@champion`` predicts exactly what training-time code predicts."""

from __future__ import annotations

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest

from retrainflow import settings
from retrainflow.registry import Registry
from retrainflow.stages.train import load_model


@pytest.fixture
def champion(trained):
    """The registered champion as a serving client loads it, and the run that trained it."""
    # as a client would; the registry URI follows the tracking URI
    uri = settings.mlflow_tracking_uri()
    assert uri == f"sqlite:///{trained.paths.mlflow_db}"
    mlflow.set_tracking_uri(uri)
    version = Registry().champion("synthetic").version
    run = next(r for r in (trained.stateless, trained.warm) if r.promote.version == version)
    return mlflow.pyfunc.load_model("models:/synthetic@champion"), run


@pytest.fixture
def raw_rows(trained) -> pd.DataFrame:
    """Raw rows as they arrive: every column of the lake (label and ts included)."""
    return trained.probe.copy()


def test_champion_predicts_like_the_training_time_model(trained, champion, raw_rows) -> None:
    served, run = champion
    model = load_model(run.train)
    scores = np.asarray(served.predict(raw_rows), dtype=np.float64)
    assert scores.shape == (len(raw_rows),)
    np.testing.assert_array_equal(scores, model.predict(raw_rows))
    # ... and what the transformer and the estimator compute by hand
    features = model.transformer.transform(raw_rows)
    assert list(features.columns) == run.features.feature_names
    by_hand = model.estimator.predict(features)  # LightGBM binary: probability of class 1
    np.testing.assert_allclose(scores, by_hand, rtol=0, atol=1e-12)
    assert ((scores > 0) & (scores < 1)).all()
    # the unwrapped python model is the TabularModel that was trained
    inner = served.unwrap_python_model().model
    assert inner.num_trees == model.num_trees


def test_version_uri_and_alias_agree(trained, champion, raw_rows) -> None:
    served, run = champion
    by_version = mlflow.pyfunc.load_model(f"models:/synthetic/{run.promote.version}")
    np.testing.assert_array_equal(served.predict(raw_rows), by_version.predict(raw_rows))
    challenger = mlflow.pyfunc.load_model("models:/synthetic@challenger")
    np.testing.assert_array_equal(
        challenger.predict(raw_rows), load_model(trained.warm.train).predict(raw_rows)
    )


def test_extra_columns_and_column_order_do_not_matter(champion, raw_rows) -> None:
    served, _ = champion
    expected = served.predict(raw_rows)
    extra = raw_rows.assign(unrelated=7, note="hello")
    np.testing.assert_array_equal(served.predict(extra), expected)
    reordered = raw_rows[list(reversed(raw_rows.columns))]
    np.testing.assert_array_equal(served.predict(reordered), expected)
    minimal = raw_rows[["channel", "x4", "ts", "segment", "x3", "x2", "x1"]]  # no label
    np.testing.assert_array_equal(served.predict(minimal), expected)
    # one row at a time gives the same scores as the batch
    np.testing.assert_array_equal(served.predict(raw_rows.iloc[[5]]), expected[[5]])


def test_unseen_category_and_nulls_are_served(champion, raw_rows) -> None:
    served, _ = champion
    odd = raw_rows.iloc[:3].copy()
    odd["segment"] = ["zzz", None, "a"]
    odd.loc[odd.index[1], "x1"] = np.nan
    scores = np.asarray(served.predict(odd))
    assert np.isfinite(scores).all() and ((scores > 0) & (scores < 1)).all()


@pytest.mark.parametrize("column", ["x3", "segment", "ts"])
def test_missing_feature_column_is_a_clear_error(champion, raw_rows, column) -> None:
    served, _ = champion
    with pytest.raises(Exception, match=rf"lack the feature column\(s\) \['{column}'\]"):
        served.predict(raw_rows.drop(columns=[column]))
