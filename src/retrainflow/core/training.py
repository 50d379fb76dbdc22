"""How a model is fitted and continued — the fit sequence, written once.

A model is a fitted :class:`~retrainflow.features.FeatureTransformer` plus an
estimator (:class:`~retrainflow.model.TabularModel`). The sequence is:

1. :func:`prepare_features`: a stateless fit learns a new transformer on the raw
   training rows; a warm start reuses the parent's fitted transformer unchanged
   (frozen), so the continued estimator sees features encoded exactly as before;
2. :func:`fit_estimator`: a new estimator on those features, or the parent's
   estimator continued (:func:`continue_estimator`, ``training.warm_start.method``);
3. :func:`assemble`: transformer + estimator, which predicts from raw rows.

:func:`train_model` runs the whole sequence in memory (backtest, freshness); the
DAG runs step 1 in its ``features`` stage and steps 2–3 in ``train`` (they are
separate tasks so that features can be inspected), through the same functions.
:func:`replay_sample` draws a warm start's replay rows.
"""

from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from retrainflow.model import TabularModel

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import pandas as pd

    from retrainflow.config import PipelineConfig
    from retrainflow.features import FeatureTransformer


def targets(config: PipelineConfig, raw: pd.DataFrame) -> np.ndarray:
    """The target column of raw rows as float64 (0/1 for binary classification)."""
    import pandas as pd

    return pd.to_numeric(raw[config.target]).to_numpy(dtype=np.float64)


def prepare_features(
    config: PipelineConfig, raw: pd.DataFrame, parent: TabularModel | None = None
) -> tuple[FeatureTransformer, pd.DataFrame]:
    """Step 1: the transformer (new and fitted, or the parent's frozen one) and the features.

    Args:
        config: The pipeline (``features``, ``training.estimator``).
        raw: Raw training rows.
        parent: The model a warm start continues; None for a stateless fit.

    Returns:
        ``(transformer, features)``.
    """
    from retrainflow.features import FeatureTransformer

    if parent is not None:
        transformer = parent.transformer
    else:
        transformer = FeatureTransformer.from_config(config).fit(raw)
    return transformer, transformer.transform(raw)


def assemble(
    config: PipelineConfig, transformer: FeatureTransformer, estimator: Any
) -> TabularModel:
    """Step 3: the servable model (predicts from raw rows)."""
    return TabularModel(transformer, estimator, config.task, config.training.estimator)


def train_model(
    config: PipelineConfig, raw: pd.DataFrame, parent: TabularModel | None = None, **warm: Any
) -> TabularModel:
    """The whole fit sequence on raw rows: a new model, or ``parent`` continued on them.

    Args:
        config: The pipeline.
        raw: Raw training rows (with the target column).
        parent: The model to continue (warm start); None for a stateless fit.
        **warm: Overrides of ``training.warm_start`` for :func:`continue_estimator`
            (``method``, ``decay_rate``, ``num_boost_round``, ``max_trees``).
    """
    transformer, features = prepare_features(config, raw, parent)
    y = targets(config, raw)
    categorical = list(transformer.categorical_features_)
    if parent is None:
        estimator = fit_estimator(config, features, y, categorical)
    else:
        estimator = continue_estimator(config, parent.estimator, features, y, categorical, **warm)
    return assemble(config, transformer, estimator)


def trees_added(parent: TabularModel, model: TabularModel) -> int | None:
    """How many trees a LightGBM warm start added to its parent (None: not LightGBM).

    0 after ``append`` means the new rows were too few for a single leaf
    (``min_child_samples``): the "retrained" model is its parent.
    """
    before, after = parent.num_trees, model.num_trees
    return None if before is None or after is None else after - before


def replay_size(new_rows: int, fraction: float) -> int:
    """How many older rows a warm start on ``new_rows`` rows replays."""
    return round(new_rows * fraction)


def replay_sample(
    older: pd.DataFrame, n: int, random_state: int | np.random.Generator
) -> pd.DataFrame:
    """``n`` rows drawn without replacement from ``older`` (all of them when fewer)."""
    if n <= 0 or len(older) == 0:
        return older.iloc[0:0]
    return older.sample(n=min(n, len(older)), random_state=random_state)


def lightgbm_params(config: PipelineConfig) -> tuple[dict[str, Any], int]:
    """LightGBM core params and the number of boosting rounds for a full fit."""
    params: dict[str, Any] = {
        "verbosity": -1,
        "num_threads": 1,
        "seed": config.training.random_seed,
    }
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
        return (HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor)(
            **params
        )
    raise AssertionError(f"not a scikit-learn estimator: {name}")


def fit_estimator(
    config: PipelineConfig,
    X: pd.DataFrame,
    y: np.ndarray,
    categorical: list[str],
    parent: Any | None = None,
) -> Any:
    """Fit a new estimator, or continue ``parent`` when given (warm start).

    A warm start uses the pipeline's ``training.warm_start`` settings
    (:func:`continue_estimator`).
    """
    if parent is not None:
        return continue_estimator(config, parent, X, y, categorical)
    if config.training.estimator == "lightgbm":
        import lightgbm as lgb

        params, rounds = lightgbm_params(config)
        data = lgb.Dataset(
            X, label=y, categorical_feature=categorical or "auto", free_raw_data=True
        )
        return lgb.train(params, data, num_boost_round=rounds)
    return sklearn_estimator(config).fit(X, y)


def continue_estimator(
    config: PipelineConfig,
    parent: Any,
    X: pd.DataFrame,
    y: np.ndarray,
    categorical: list[str],
    *,
    method: str | None = None,
    decay_rate: float | None = None,
    num_boost_round: int | None = None,
    max_trees: int | None = None,
) -> Any:
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
        ``append``, then ``max_trees`` trees are kept — the oldest (the from-scratch fit
        the chain started from: up to ``n_estimators`` trees, and at most ``max_trees -
        num_boost_round``) and the newest — and their leaves re-fitted on the new rows,
        which re-anchors the shortened ensemble. The appended trees in between are
        dropped. Keeping only the newest trees instead left, after ``max_trees /
        num_boost_round`` warm starts, trees each grown on one batch's residuals: as far
        behind a from-scratch fit as ``append`` (tests/core/test_warm_methods.py).

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
        raise ValueError(
            f"warm method '{method}' needs LightGBM; the estimator is '{config.training.estimator}'"
        )
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
        data = lgb.Dataset(
            X, label=y, categorical_feature=categorical or "auto", free_raw_data=True
        )
        grown = lgb.train(params, data, num_boost_round=rounds, init_model=base)
        if grown.num_trees() == base.num_trees():
            log.warning(
                "warm start added no tree: %d rows are too few for a leaf (min_child_samples / "
                "min_data_in_leaf); the model is unchanged. Retrain less often or stateless.",
                len(X),
            )
        return grown

    if method == "append":
        return append(parent)
    if method == "refit":
        return parent.refit(X, y, decay_rate=decay)
    if method == "refit_append":
        return append(parent.refit(X, y, decay_rate=decay))
    if method != "bounded":
        raise ValueError(f"unknown warm-start method {method!r}")
    grown = append(parent)
    full_fit = lightgbm_params(config)[1]
    keep = max_trees or ws.max_trees or full_fit
    total = grown.num_trees()
    if total <= keep:
        return grown
    oldest = max(0, min(full_fit, keep - rounds))
    trimmed = _select_trees(grown, [*range(oldest), *range(total - keep + oldest, total)])
    return trimmed.refit(X, y, decay_rate=decay)


def _select_trees(booster: Any, trees: list[int]) -> Any:
    """A new LightGBM Booster of the trees ``trees`` of ``booster``, in that order.

    LightGBM cuts a model only to one contiguous range of iterations; two ranges are
    joined in the model text: its header (less ``tree_sizes``, which LightGBM then does
    not need), the chosen ``Tree=`` blocks renumbered, and its trailer.
    """
    import re

    import lightgbm as lgb

    text = booster.model_to_string()
    start, end = text.index("Tree=0\n"), text.index("end of trees")
    blocks = re.split(r"^Tree=\d+\n", text[start:end], flags=re.MULTILINE)[1:]
    if len(blocks) != booster.num_trees():
        raise RuntimeError(f"cannot split the model into its {booster.num_trees()} trees")
    head = re.sub(r"^tree_sizes=.*\n", "", text[:start], flags=re.MULTILINE)
    body = "".join(f"Tree={i}\n{blocks[j]}" for i, j in enumerate(trees))
    out = lgb.Booster(model_str=head + body + text[end:])
    out.params = dict(booster.params)  # refit needs the objective and params
    return out
