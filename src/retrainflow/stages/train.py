"""Stage 4 — train: fit from scratch, or continue the champion on new rows.

* **stateless**: a new estimator fitted on the window.
* **warm_start**: the champion's estimator continued on the pulled rows (new
  data plus the replay sample) with ``training.warm_start.method``
  (:func:`continue_estimator`): LightGBM appends trees (``append``) or re-fits
  the leaf values of the existing trees (``refit``, and two mixes); SGD models
  run ``partial_fit`` epochs. The parent in the registry is never modified.

The output is a :class:`~retrainflow.model.TabularModel` (transformer +
estimator) pickled to ``model.pkl``, plus its cost: CPU and wall seconds and
the process's peak memory while fitting.
"""

from __future__ import annotations

import copy
import logging
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from retrainflow.artifacts import ArtifactStore
from retrainflow.manifest import FeaturesManifest, PullManifest, TrainManifest
from retrainflow.metering import measure
from retrainflow.model import TabularModel

if TYPE_CHECKING:
    import pandas as pd

    from retrainflow.config import PipelineConfig
    from retrainflow.registry import Registry

log = logging.getLogger(__name__)
STAGE = "train"


def lightgbm_params(config: PipelineConfig) -> tuple[dict[str, Any], int]:
    """LightGBM core params and the number of boosting rounds for a full fit."""
    params: dict[str, Any] = {"verbosity": -1, "num_threads": 1, "seed": config.training.random_seed}
    params.update(config.training.params)
    rounds = int(params.pop("n_estimators", 200))
    params["objective"] = "binary" if config.task == "binary_classification" else "regression"
    return params, rounds


def import_fitting_libraries(config: PipelineConfig) -> None:
    """Import the feature and fitting libraries now, so the first fit's measured CPU is
    not their import time (the backtest and freshness analyses time every fit)."""
    import sklearn.compose
    import sklearn.impute
    import sklearn.metrics
    import sklearn.pipeline
    import sklearn.preprocessing

    if config.training.estimator == "lightgbm":
        import lightgbm  # noqa: F401
    else:
        import sklearn.ensemble
        import sklearn.linear_model  # noqa: F401


def sklearn_estimator(config: PipelineConfig) -> Any:
    """A new, unfitted scikit-learn estimator as configured."""
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import SGDClassifier, SGDRegressor

    classify = config.task == "binary_classification"
    params: dict[str, Any] = {"random_state": config.training.random_seed, **config.training.params}
    name = config.training.estimator
    if name == "sgd":
        if classify:
            params.setdefault("loss", "log_loss")
        return (SGDClassifier if classify else SGDRegressor)(**params)
    if name == "random_forest":
        params.setdefault("n_jobs", 1)
        params.setdefault("min_samples_leaf", 20)
        return (RandomForestClassifier if classify else RandomForestRegressor)(**params)
    if name == "hist_gradient_boosting":
        return (HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor)(**params)
    raise AssertionError(f"not a scikit-learn estimator: {name}")


def fit_estimator(config: PipelineConfig, X: pd.DataFrame, y: np.ndarray, categorical: list[str],
                  parent: Any | None = None) -> Any:
    """Fit a new estimator, or continue ``parent`` when given (warm start).

    A warm start uses the pipeline's ``training.warm_start`` settings
    (:func:`continue_estimator`).
    """
    if parent is not None:
        return continue_estimator(config, parent, X, y, categorical)
    if config.training.estimator == "lightgbm":
        import lightgbm as lgb

        params, rounds = lightgbm_params(config)
        data = lgb.Dataset(X, label=y, categorical_feature=categorical or "auto", free_raw_data=True)
        return lgb.train(params, data, num_boost_round=rounds)
    return sklearn_estimator(config).fit(X, y)


def continue_estimator(config: PipelineConfig, parent: Any, X: pd.DataFrame, y: np.ndarray,
                       categorical: list[str], *, method: str | None = None,
                       decay_rate: float | None = None, num_boost_round: int | None = None,
                       max_trees: int | None = None) -> Any:
    """Continue a fitted estimator on new rows; ``parent`` itself is never modified.

    ``append``
        LightGBM: ``num_boost_round`` new trees fitted on the new rows on top of the
        parent (``init_model=``); SGD: ``max_iter`` epochs of ``partial_fit``. Cheap,
        but the old trees stay as they were and pile up.
    ``refit``
        ``Booster.refit(X, y, decay_rate=d)``: the trees' *structure* is kept and every
        leaf value becomes ``d * old + (1 - d) * value fitted on the new rows``. No tree
        is added: the model keeps its size, and a refit costs about one pass of
        prediction over the new rows.
    ``refit_append``
        ``refit``, then ``append``: re-weighs the old trees *and* adds new structure.
    ``bounded``
        ``append``, then only the newest ``max_trees`` trees are kept and the leaves are
        re-fitted on the new rows, which re-anchors the shortened ensemble.

    Args:
        config: The pipeline; its ``training.warm_start`` gives every default.
        parent: A fitted LightGBM ``Booster`` (or an SGD model, ``append`` only).
        X: Features of the new rows (the parent's frozen transformer's output).
        y: Their targets.
        categorical: Categorical feature names (as at the parent's fit).
        method: Overrides ``warm_start.method``.
        decay_rate: Overrides ``warm_start.decay_rate``.
        num_boost_round: Overrides ``warm_start.num_boost_round``.
        max_trees: Overrides ``warm_start.max_trees`` (default ``n_estimators``).

    Returns:
        The new estimator.

    Raises:
        ValueError: a LightGBM-only method for another estimator.
    """
    from retrainflow.config import LIGHTGBM_WARM_METHODS

    ws = config.training.warm_start
    method = method or ws.method
    decay = ws.decay_rate if decay_rate is None else decay_rate
    rounds = num_boost_round or ws.num_boost_round
    if method in LIGHTGBM_WARM_METHODS and config.training.estimator != "lightgbm":
        raise ValueError(f"warm method '{method}' needs LightGBM; the estimator is "
                         f"'{config.training.estimator}'")
    if config.training.estimator != "lightgbm":
        est = copy.deepcopy(parent)
        epochs = int(config.training.params.get("max_iter", 5))
        for _ in range(epochs):
            if config.task == "binary_classification":
                est.partial_fit(X, y, classes=np.array([0.0, 1.0]))
            else:
                est.partial_fit(X, y)
        return est
    import lightgbm as lgb

    def append(base: Any) -> Any:
        params, _ = lightgbm_params(config)
        data = lgb.Dataset(X, label=y, categorical_feature=categorical or "auto", free_raw_data=True)
        return lgb.train(params, data, num_boost_round=rounds, init_model=base)

    if method == "append":
        return append(parent)
    if method == "refit":
        return parent.refit(X, y, decay_rate=decay)
    if method == "refit_append":
        return append(parent.refit(X, y, decay_rate=decay))
    if method != "bounded":
        raise ValueError(f"unknown warm-start method {method!r}")
    grown = append(parent)
    keep = max_trees or ws.max_trees or lightgbm_params(config)[1]
    total = grown.num_trees()
    if total <= keep:
        return grown
    trimmed = lgb.Booster(model_str=grown.model_to_string(start_iteration=total - keep))
    trimmed.params = dict(grown.params)  # refit needs the objective and params
    return trimmed.refit(X, y, decay_rate=decay)


def run(config: PipelineConfig, pulled: PullManifest, features: FeaturesManifest, *,
        registry: Registry, store: ArtifactStore | None = None) -> TrainManifest:
    """Train the challenger and write ``model.pkl``.

    Raises:
        RuntimeError: when training wrote no model (post-condition).
    """
    import pandas as pd

    from retrainflow.stages.features import TARGET

    store = store or ArtifactStore(config.artifact_root_uri())
    out = store.stage(config.name, pulled.context.run_id, STAGE)
    frame = pd.read_parquet(features.train_uri)
    y = frame.pop(TARGET).to_numpy()
    transformer = pickle.loads(Path(features.transformer_uri).read_bytes())
    parent_estimator = None
    if pulled.mode == "warm_start":
        assert pulled.parent_version is not None
        parent_estimator = registry.load_model(config.registered_model_name, pulled.parent_version).estimator
    frame_mb = float(frame.memory_usage(deep=True).sum()) / 2**20
    with measure() as cost:
        estimator = fit_estimator(config, frame, y, features.categorical_features, parent_estimator)
    model = TabularModel(transformer, estimator, config.task, config.training.estimator)
    path = out.write_with("model.pkl", lambda p: p.write_bytes(pickle.dumps(model)))
    if not path.is_file() or path.stat().st_size == 0:
        raise RuntimeError(f"train wrote no model to {path}")
    manifest = TrainManifest(
        model_uri=str(path), estimator=config.training.estimator, mode=pulled.mode, rows=len(frame),
        train_cpu_seconds=round(cost.cpu_seconds, 3), train_wall_seconds=round(cost.wall_seconds, 3),
        peak_rss_mb=round(cost.peak_rss_mb, 1), start_rss_mb=round(cost.start_rss_mb, 1),
        train_frame_mb=round(frame_mb, 2),
        model_size_kb=round(path.stat().st_size / 1024, 1), params=dict(config.training.params),
    )
    out.write_json("manifest.json", manifest.to_dict())
    log.info("train %s: %s %s on %d rows in %.1fs (cpu %.1fs, peak %.0f MiB)", config.name,
             pulled.mode, config.training.estimator, len(frame), cost.wall_seconds, cost.cpu_seconds,
             cost.peak_rss_mb)
    return manifest


def load_model(manifest: TrainManifest) -> TabularModel:
    """The challenger written by :func:`run`."""
    with open(manifest.model_uri, "rb") as fh:
        return pickle.load(fh)
