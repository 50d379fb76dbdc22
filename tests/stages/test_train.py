"""Stage 4 — train: model files, costs, LightGBM/SGD warm starts, other estimators and tasks."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrainflow.config import PipelineConfig
from retrainflow.data.sources import ParquetLakeSource
from retrainflow.data.synthetic import DEFAULT_DRIFT_DAY, DEFAULT_START, make_synthetic
from retrainflow.model import TabularModel
from retrainflow.pipeline import RunResult, run_all
from retrainflow.registry import Registry
from retrainflow.stages.train import load_model

# -- the trained base (LightGBM) --------------------------------------------------------------


@pytest.mark.parametrize("which", ["stateless", "warm"])
def test_writes_model_and_costs(trained, which) -> None:
    t = getattr(trained, which).train
    path = Path(t.model_uri)
    assert path.is_file() and path == trained.run_dir(f"base-{which}") / "train" / "model.pkl"
    model = load_model(t)
    assert isinstance(model, TabularModel)
    assert (model.estimator_name, model.task) == ("lightgbm", "binary_classification")
    assert t.estimator == "lightgbm"
    assert t.mode == ("stateless" if which == "stateless" else "warm_start")
    assert t.rows == getattr(trained, which).pull.train.rows
    for field in (
        "train_cpu_seconds",
        "train_wall_seconds",
        "peak_rss_mb",
        "train_frame_mb",
        "model_size_kb",
    ):
        assert getattr(t, field) > 0, field
    assert t.model_size_kb == pytest.approx(path.stat().st_size / 1024, abs=0.1)
    assert t.params == dict(trained.config.training.params)
    scores = model.predict(trained.probe)
    assert scores.shape == (len(trained.probe),)
    assert ((scores > 0) & (scores < 1)).all()


def test_warm_start_adds_trees_to_the_parent(trained) -> None:
    cfg = trained.config
    parent = load_model(trained.stateless.train)
    warm = load_model(trained.warm.train)
    assert parent.num_trees == cfg.training.params["n_estimators"] == 50
    assert warm.num_trees == parent.num_trees + cfg.training.warm_start.num_boost_round == 70
    # the continued model differs from its parent
    assert not np.allclose(warm.predict(trained.probe), parent.predict(trained.probe))


def test_configured_refit_warm_start_keeps_the_trees_and_moves_the_leaves(
    trained_fork, helpers
) -> None:
    """``training.warm_start.method: refit`` through the real stages: the champion (loaded
    from the registry, a pickle round trip) is refitted on the new rows — same trees,
    new leaf values — and registered as a warm start of it."""
    cfg = helpers.config_with(
        {"training.warm_start.method": "refit", "training.warm_start.decay_rate": 0.5}
    )
    champion = Registry().champion("synthetic")
    result = run_all(cfg, helpers.context("refit-warm", "2023-03-01", "warm_start"))
    assert result.train.mode == "warm_start" and result.pull.parent_version == champion.version
    refitted = load_model(result.train)
    parent = Registry().load_model("synthetic", champion.version)
    assert refitted.num_trees == parent.num_trees
    assert not np.allclose(refitted.predict(trained_fork.probe), parent.predict(trained_fork.probe))


def test_continue_estimator_methods_keep_the_parent(helpers) -> None:
    from retrainflow.core.training import continue_estimator, fit_estimator
    from retrainflow.features import FeatureTransformer

    cfg = helpers.config_with(
        {
            "training.params": {
                "n_estimators": 20,
                "num_leaves": 7,
                "min_child_samples": 20,
                "num_threads": 1,
            }
        }
    )
    old = make_synthetic(DEFAULT_START, 10, 300, None, seed=1)
    new = make_synthetic(DEFAULT_START, 4, 300, 0, seed=2)
    tf = FeatureTransformer.from_config(cfg).fit(old)
    parent = fit_estimator(
        cfg, tf.transform(old), old["label"].to_numpy(float), tf.categorical_features_
    )
    X, y = tf.transform(new), new["label"].to_numpy(float)
    before = parent.predict(X)
    sizes = {}
    for method in ("append", "refit", "refit_append", "bounded"):
        est = continue_estimator(
            cfg,
            parent,
            X,
            y,
            tf.categorical_features_,
            method=method,
            decay_rate=0.3,
            num_boost_round=8,
            max_trees=15,
        )
        sizes[method] = est.num_trees()
        assert not np.allclose(est.predict(X), before), method
    np.testing.assert_array_equal(parent.predict(X), before)
    assert sizes == {"append": 28, "refit": 20, "refit_append": 28, "bounded": 15}
    # decay 1.0 keeps every old leaf value: a refit is then the parent itself
    np.testing.assert_allclose(
        continue_estimator(
            cfg, parent, X, y, tf.categorical_features_, method="refit", decay_rate=1.0
        ).predict(X),
        before,
    )
    with pytest.raises(ValueError, match="needs LightGBM"):
        continue_estimator(
            helpers.config_with({"training.estimator": "sgd", "training.params": {}}),
            None,
            X,
            y,
            [],
            method="refit",
        )


def test_refit_methods_need_lightgbm_in_the_config(helpers) -> None:
    from retrainflow.exceptions import ConfigError

    with pytest.raises(ConfigError, match="warm_start.method 'refit' needs estimator 'lightgbm'"):
        helpers.config_with(
            {
                "training.estimator": "sgd",
                "training.params": {},
                "training.warm_start.method": "refit",
            }
        )


def test_parent_version_unchanged_by_warm_start(trained) -> None:
    registry = Registry()
    parent_version = trained.warm.pull.parent_version
    after = registry.load_model("synthetic", parent_version)
    np.testing.assert_array_equal(after.predict(trained.probe), trained.parent_scores_before)
    assert after.num_trees == 50
    np.testing.assert_array_equal(
        load_model(trained.stateless.train).predict(trained.probe), trained.parent_scores_before
    )


# -- other estimators and the regression task -----------------------------------------------

REG_LAKE = "synthetic_reg"


def _configs(helpers) -> dict[str, PipelineConfig]:
    sgd = helpers.config_with(
        {"name": "synthetic_sgd", "training.estimator": "sgd", "training.params": {}}
    )
    rf = helpers.config_with(
        {
            "name": "synthetic_rf",
            "training.estimator": "random_forest",
            "training.params": {"n_estimators": 20, "max_depth": 8},
        }
    )
    columns = helpers.synthetic_dict()["expectations"]["columns"]
    columns.pop("label")
    columns["y"] = {"type": "float", "nullable": False}
    reg = helpers.config_with(
        {
            "name": "synthetic_reg",
            "task": "regression",
            "target": "y",
            "source.path": REG_LAKE,
            "expectations.columns": columns,
            "evaluation.primary_metric": "rmse",
            "evaluation.guardrails": {"mae": 0.1},
            "evaluation.floors": {"r2": 0.5},
        }
    )
    return {"sgd": sgd, "rf": rf, "reg": reg}


@dataclass(frozen=True)
class Variants:
    root: Path
    configs: dict[str, PipelineConfig]
    runs: dict[str, RunResult]
    sgd_parent_scores_before: np.ndarray
    probe: pd.DataFrame


@pytest.fixture(scope="module")
def variants_base(tmp_path_factory, template_home, helpers) -> Variants:
    """One home, three pipelines on the same lake: sgd (stateless, then warm start),
    random_forest (stateless), and a regression pipeline on its own lake."""
    root = tmp_path_factory.mktemp("variants")
    helpers.copy_home(template_home, root)
    configs = _configs(helpers)
    with pytest.MonkeyPatch.context() as mp:
        paths = helpers.point_env(mp, root)
        frame = make_synthetic(DEFAULT_START, 46, 200, DEFAULT_DRIFT_DAY, 0, task="regression")
        ParquetLakeSource(paths.lake / REG_LAKE, "ts").write_frame(frame)
        ctx = helpers.context
        runs = {"sgd": run_all(configs["sgd"], ctx("sgd-stateless", "2023-02-08", "stateless"))}
        probe = ParquetLakeSource(paths.lake / "synthetic", "ts").read_days([date(2023, 2, 20)])
        before = Registry().load_model("synthetic_sgd", runs["sgd"].promote.version).predict(probe)
        runs["sgd_warm"] = run_all(configs["sgd"], ctx("sgd-warm", "2023-02-15", "warm_start"))
        runs["rf"] = run_all(configs["rf"], ctx("rf", "2023-02-15", "stateless"))
        runs["reg"] = run_all(configs["reg"], ctx("reg", "2023-02-15", "stateless"))
    return Variants(root, configs, runs, before, probe)


@pytest.fixture
def variants(variants_base, monkeypatch, helpers) -> Variants:
    helpers.point_env(monkeypatch, variants_base.root)
    return variants_base


def test_sgd_stateless(variants) -> None:
    run = variants.runs["sgd"]
    assert run.pull.mode == "stateless"
    model = load_model(run.train)
    assert model.estimator_name == "sgd"
    assert type(model.estimator).__name__ == "SGDClassifier"
    assert model.transformer.encoding == "onehot"
    assert run.features.categorical_features == []  # one-hot: no native categoricals
    assert run.verdict.challenger["roc_auc"] > 0.75
    assert run.train.train_cpu_seconds > 0


def test_sgd_warm_start_continues_with_partial_fit(variants) -> None:
    run, parent_run = variants.runs["sgd_warm"], variants.runs["sgd"]
    assert (run.pull.mode, run.pull.parent_version) == ("warm_start", parent_run.promote.version)
    assert run.features.frozen is True
    parent, warm = load_model(parent_run.train), load_model(run.train)
    assert warm.estimator.t_ > parent.estimator.t_  # more SGD updates on top of the parent's
    assert not np.allclose(warm.estimator.coef_, parent.estimator.coef_)
    assert warm.transformer.feature_names_ == parent.transformer.feature_names_
    assert run.verdict.challenger["roc_auc"] > 0.75
    # the registered parent is untouched
    again = Registry().load_model("synthetic_sgd", parent_run.promote.version)
    np.testing.assert_array_equal(again.predict(variants.probe), variants.sgd_parent_scores_before)


def test_random_forest_stateless(variants) -> None:
    run = variants.runs["rf"]
    model = load_model(run.train)
    assert type(model.estimator).__name__ == "RandomForestClassifier"
    assert model.estimator.n_estimators == 20
    assert run.verdict.challenger["roc_auc"] > 0.75
    assert Path(run.train.model_uri).is_file()


def test_regression_trains_and_evaluates(variants) -> None:
    run = variants.runs["reg"]
    model = load_model(run.train)
    assert (model.task, type(model.estimator).__name__) == ("regression", "Booster")
    v = run.verdict
    assert v.primary_metric == "rmse"
    assert set(v.challenger) == {"rmse", "mae", "r2"}
    assert v.challenger["r2"] > 0.5 and 0 < v.challenger["mae"] < v.challenger["rmse"]
    assert v.passed and v.champion is None
    holdout = pd.read_parquet(run.pull.holdout.uri)
    preds = model.predict(holdout)
    rmse = float(np.sqrt(np.mean((preds - holdout["y"].to_numpy()) ** 2)))
    assert rmse == pytest.approx(v.challenger["rmse"])
    assert set(v.slices["segment"]) <= {"a", "b", "c"} and v.slices["segment"]
    assert Registry().champion("synthetic_reg").version == run.promote.version


def test_fit_estimator_params_reach_lightgbm(trained) -> None:
    from retrainflow.core.training import lightgbm_params

    params, rounds = lightgbm_params(trained.config)
    assert rounds == 50 and "n_estimators" not in params
    assert params["objective"] == "binary" and params["num_leaves"] == 15


def test_model_pickle_round_trip(trained) -> None:
    model = load_model(trained.stateless.train)
    clone: Any = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone.predict(trained.probe), model.predict(trained.probe))
