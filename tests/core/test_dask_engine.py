"""``training.engine: dask``: a stateless LightGBM fit on a Dask cluster (a ``LocalCluster`` of
two worker processes here), served like any other model; its errors and its limits."""

from __future__ import annotations

import pickle
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score

from retrainflow.core import dask_engine, training
from retrainflow.exceptions import ConfigError, DaskEngineError
from retrainflow.model import TabularModel
from retrainflow.stages.train import load_model

#: How far the Dask fit's holdout ROC AUC may be from the local fit's on the same rows. The
#: two fits differ only in the features' bin boundaries (each worker finds some features' bins
#: on its own rows); measured 0.0005. 0.01 is about one standard error of an AUC of ~0.86 on
#: the 2,000 holdout rows: a difference the promotion gate could not tell from noise.
AUC_TOLERANCE = 0.01


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """Two single-threaded worker processes on 127.0.0.1; the scheduler's address."""
    from distributed import LocalCluster

    training.prepare_openmp()  # the workers inherit OMP_WAIT_POLICY=PASSIVE
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as local:
        yield local.scheduler_address


@pytest.fixture(scope="module")
def dask_run(
    tmp_path_factory: pytest.TempPathFactory, template_home, cluster: str, helpers
) -> Iterator[SimpleNamespace]:
    """A stateless run of the synthetic pipeline with ``engine: dask``, promoted champion."""
    from retrainflow.pipeline import run_all

    root = tmp_path_factory.mktemp("dask_home")
    helpers.copy_home(template_home, root)
    with pytest.MonkeyPatch.context() as mp:
        helpers.point_env(mp, root)
        mp.setenv("RETRAINFLOW_DASK_ADDRESS", cluster)
        cfg = helpers.config_with({"training.engine": "dask"})
        result = run_all(cfg, helpers.context("dask-stateless", helpers.BASE_END, "stateless"))
        yield SimpleNamespace(config=cfg, result=result, address=cluster)


def _auc(model: TabularModel, rows: pd.DataFrame) -> float:
    return float(roc_auc_score(rows["label"], model.predict(rows)))


# -- the fit through the stages -----------------------------------------------------------------


def test_train_manifest_records_the_engine_workers_and_partitions(dask_run) -> None:
    r = dask_run.result
    t = r.train
    assert (t.engine, t.engine_reason) == ("dask", "configured (training.engine: dask)")
    assert t.dask_address == dask_run.address and t.dask_workers == 2
    # the 30 days of the window, one row group each, read by the workers in 2 x 4 groups
    days = pd.read_parquet(r.pull.train.uri)["ts"].dt.normalize().nunique()
    assert t.dask_partitions == days == 30
    assert t.dask_chunks == 2 * dask_engine.CHUNKS_PER_WORKER == 8
    assert pq.ParquetFile(r.features.train_uri).metadata.num_row_groups == days
    assert t.rows == r.pull.train.rows and t.fit_threads == 2  # 2 workers x 1 thread
    assert t.fit_threads_reason.startswith("dask:")


def test_dask_model_serves_from_the_registry_as_well_as_a_local_fit(dask_run, helpers) -> None:
    """``models:/synthetic@champion`` predicts from raw rows what the trained model does, and
    as well as a local fit of the same rows (:data:`AUC_TOLERANCE`)."""
    import mlflow

    from retrainflow.registry import Registry

    r = dask_run.result
    assert r.promote.champion and r.promote.champion_version == r.promote.version
    model = load_model(r.train)
    assert isinstance(model, TabularModel) and type(model.estimator).__name__ == "Booster"
    holdout = pd.read_parquet(r.pull.holdout.uri)
    with Registry().tracking():  # as a serving client pointed at this registry
        served = mlflow.pyfunc.load_model("models:/synthetic@champion")
    raw = holdout.drop(columns=["label"])
    assert np.allclose(np.asarray(served.predict(raw)).ravel(), model.predict(raw))

    local = training.train_model(helpers.config_with({}), pd.read_parquet(r.pull.train.uri))
    assert abs(_auc(model, holdout) - _auc(local, holdout)) <= AUC_TOLERANCE
    assert np.corrcoef(model.predict(holdout), local.predict(holdout))[0, 1] > 0.98
    assert model.num_trees == local.num_trees == 50


def test_dask_model_loads_and_predicts_without_dask(dask_run, tmp_path) -> None:
    """The pickled model holds a plain booster: a process that never imports dask or
    distributed loads it and predicts; its parameters and text are a local booster's."""
    r = dask_run.result
    model = load_model(r.train)
    params = model.estimator.params
    assert not {"machines", "num_machines", "tree_learner", "local_listen_port"} & set(params)
    text = model.estimator.model_to_string()
    assert "[num_machines: 1]" in text and "[tree_learner: serial]" in text
    rows = tmp_path / "rows.pkl"
    holdout = pd.read_parquet(r.pull.holdout.uri)
    rows.write_bytes(pickle.dumps(holdout))
    script = textwrap.dedent(
        f"""
        import pickle, sys
        model = pickle.loads(open({r.train.model_uri!r}, "rb").read())
        scores = model.predict(pickle.loads(open({str(rows)!r}, "rb").read()))
        assert len(scores) == {len(holdout)}
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("dask", "distributed"))
        assert not loaded, loaded
        print(float(scores.sum()))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.strip()) == pytest.approx(float(model.predict(holdout).sum()))


@pytest.mark.timeout(120)
def test_warm_start_continues_a_dask_champion_locally(dask_run, helpers) -> None:
    """A warm start runs in this process (the reason recorded), and a ``refit`` of the
    Dask-fitted booster does not try to reach the workers again (it would wait 2 hours)."""
    from retrainflow.pipeline import run_all

    r = dask_run.result
    champion = load_model(r.train)
    raw = pd.read_parquet(r.pull.holdout.uri)
    features = champion.transformer.transform(raw)
    cat = list(champion.transformer.categorical_features_)
    y = training.targets(dask_run.config, raw)
    refitted = training.continue_estimator(
        dask_run.config, champion.estimator, features, y, cat, method="refit"
    )
    assert refitted.num_trees() == champion.num_trees

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RETRAINFLOW_DASK_ADDRESS", dask_run.address)
        warm = run_all(dask_run.config, helpers.context("dask-warm", helpers.WARM_END, "auto"))
    assert warm.train.mode == "warm_start" and warm.train.engine == "local"
    assert warm.train.engine_reason.startswith("warm start:")
    assert warm.train.dask_workers is None


# -- rows in memory (backtest, freshness) -------------------------------------------------------


def test_in_memory_rows_reach_the_workers_in_groups_of_days(
    dask_run, cluster, monkeypatch, helpers
) -> None:
    monkeypatch.setenv("RETRAINFLOW_DASK_ADDRESS", cluster)
    cfg = dask_run.config
    raw = pd.read_parquet(dask_run.result.pull.train.uri)
    transformer, X = training.prepare_features(cfg, raw)
    sizes = dask_engine.partition_sizes(raw["ts"])
    booster, engine = training.fit(
        cfg,
        X,
        training.targets(cfg, raw),
        list(transformer.categorical_features_),
        partitions=sizes,
    )
    assert engine.name == "dask" and engine.dask is not None
    assert (engine.dask.partitions, engine.dask.chunks, engine.dask.workers) == (30, 8, 2)
    holdout = pd.read_parquet(dask_run.result.pull.holdout.uri)
    model = training.assemble(cfg, transformer, booster)
    local = training.train_model(helpers.config_with({}), raw)
    assert abs(_auc(model, holdout) - _auc(local, holdout)) <= AUC_TOLERANCE


# -- configuration and errors -------------------------------------------------------------------


def test_config_allows_dask_for_stateless_lightgbm_only(helpers) -> None:
    assert helpers.config_with({"training.engine": "dask"}).training.engine == "dask"
    assert helpers.config_with({}).training.engine == "local"
    with pytest.raises(ConfigError, match=r"training\.engine.*LightGBM only"):
        helpers.config_with(
            {"training.engine": "dask", "training.estimator": "sgd", "training.params": {}}
        )
    with pytest.raises(ConfigError, match=r"training\.engine.*mode 'auto'"):
        helpers.config_with({"training.engine": "dask", "training.mode": "warm_start"})


def test_choose_engine_keeps_warm_starts_local(helpers) -> None:
    cfg = helpers.config_with({"training.engine": "dask"})
    assert training.choose_engine(cfg, warm=False).name == "dask"
    warm = training.choose_engine(cfg, warm=True)
    assert warm.name == "local" and "stateless only" in warm.reason


@pytest.mark.parametrize("value", [None, "  ", "not-an-address"])
def test_missing_or_bad_address_names_the_variable_and_the_pipeline(
    helpers, monkeypatch, value
) -> None:
    if value is None:
        monkeypatch.delenv("RETRAINFLOW_DASK_ADDRESS", raising=False)
    else:
        monkeypatch.setenv("RETRAINFLOW_DASK_ADDRESS", value)
    cfg = helpers.config_with({"training.engine": "dask"})
    X = pd.DataFrame({"x": np.arange(10.0)})
    with pytest.raises(ConfigError, match="RETRAINFLOW_DASK_ADDRESS") as err:
        training.fit_estimator(cfg, X, np.zeros(10), [])
    assert "'synthetic'" in str(err.value)


def test_unreachable_scheduler_fails_within_the_bound(helpers, monkeypatch) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    monkeypatch.setenv("RETRAINFLOW_DASK_ADDRESS", address)
    monkeypatch.setattr(dask_engine, "CONNECT_TIMEOUT_S", 2.0)
    cfg = helpers.config_with({"training.engine": "dask"})
    started = time.perf_counter()
    with pytest.raises(DaskEngineError, match=rf"{address}.*did not answer within 2 s"):
        training.fit_estimator(cfg, pd.DataFrame({"x": np.arange(10.0)}), np.zeros(10), [])
    assert time.perf_counter() - started < 6
    assert dask_engine.CONNECT_TIMEOUT_S <= 20  # the default bound is not a hang either


def test_workers_that_cannot_read_the_rows_say_which_file(cluster, helpers, tmp_path) -> None:
    cfg = helpers.config_with({"training.engine": "dask"})
    path = tmp_path / "train.parquet"
    frame = pd.DataFrame({"x": np.arange(40.0), "__target__": np.r_[np.zeros(20), np.ones(20)]})
    dask_engine.write_partitioned(frame, [20, 20], path)
    rows = dask_engine.StoredRows(str(path), "__target__")
    original = dask_engine.read_row_groups

    def missing(indices: list[int], uri: str) -> pd.DataFrame:  # a worker without the volume
        return original(indices, uri + ".elsewhere")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dask_engine, "read_row_groups", missing)
        with pytest.raises(DaskEngineError, match=r"could not read .*train\.parquet.*mount"):
            dask_engine.fit(cfg, rows, None, [], address=cluster)


# -- pieces -----------------------------------------------------------------------------------


def test_partitions_are_the_runs_of_days_and_round_trip_as_row_groups(tmp_path) -> None:
    times = pd.Series(pd.to_datetime(["2023-01-01 05:00", "2023-01-01 23:59", "2023-01-02 00:00"]))
    assert dask_engine.partition_sizes(times) == [2, 1]
    assert dask_engine.partition_sizes(times.iloc[:0]) == []
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "__target__": [0.0, 1.0, 0.0]})
    path = tmp_path / "f.parquet"
    dask_engine.write_partitioned(frame, [2, 1], path)
    assert pq.ParquetFile(path).metadata.num_row_groups == 2
    pd.testing.assert_frame_equal(pd.read_parquet(path), frame)
    rows = dask_engine.StoredRows(str(path), "__target__")
    assert rows.footer() == (3, 2, ["a"])
    second = dask_engine.read_row_groups([1], str(path))
    pd.testing.assert_frame_equal(second, frame.iloc[2:].reset_index(drop=True))
    pd.testing.assert_frame_equal(dask_engine.read_row_groups([0, 1], str(path)), frame)
    with pytest.raises(ValueError, match="add up to 2"):
        dask_engine.write_partitioned(frame, [2], path)


def test_strided_groups_span_the_window() -> None:
    assert dask_engine.strided_groups(7, 3) == [[0, 3, 6], [1, 4], [2, 5]]
    assert dask_engine.strided_groups(2, 8) == [[0], [1]]
    assert dask_engine.strided_groups(0, 8) == []


def test_estimator_params_fit_what_lightgbm_train_fits(helpers) -> None:
    """The scikit-learn wrapper's keyword arguments (with its own defaults and aliases) fit
    the local ``lightgbm.train`` model exactly: only the distribution differs on Dask."""
    import lightgbm as lgb

    params = {
        "n_estimators": 30,
        "learning_rate": 0.05,
        "num_leaves": 15,
        "min_data_in_leaf": 30,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "feature_fraction": 0.8,
        "lambda_l2": 1.0,
        "max_cat_to_onehot": 4,
        "cat_smooth": 10,
        "num_threads": 1,
        "deterministic": True,
    }
    cfg = helpers.config_with({"training.params": params, "training.engine": "dask"})
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=3000), "c": rng.integers(0, 6, 3000).astype(float)})
    y = ((X["a"] + (X["c"] == 2) + rng.normal(size=3000)) > 0.5).astype(float).to_numpy()
    kwargs, recorded = dask_engine.estimator_params(cfg)
    wrapped = lgb.LGBMRegressor(n_jobs=1, **kwargs).fit(X, y, categorical_feature=["c"])
    core, rounds = training.lightgbm_params(cfg)
    local = lgb.train(core, lgb.Dataset(X, label=y, categorical_feature=["c"]), rounds)
    np.testing.assert_allclose(wrapped.booster_.predict(X), local.predict(X))
    assert dask_engine.local_booster(wrapped.booster_, recorded).params == local.params
