"""How a model is fitted and continued — the fit sequence, written once.

A model is a fitted :class:`~retrainflow.features.FeatureTransformer` plus an
estimator (:class:`~retrainflow.model.TabularModel`). The sequence is:

1. :func:`prepare_features`: a stateless fit learns a new transformer on the raw
   training rows; a warm start reuses the parent's fitted transformer unchanged
   (frozen), so the continued estimator sees features encoded exactly as before;
2. :func:`fit_estimator`: a new estimator on those features, or the parent's
   estimator continued (:func:`continue_estimator`, ``training.warm_start.method``);
3. :func:`assemble`: transformer + estimator, which predicts from raw rows.

How many threads a LightGBM fit uses is decided per fit (:func:`fit_threads`:
``training.params.num_threads``, a number or ``auto``), and OpenMP's threads are
asked not to spin while they wait (:func:`prepare_openmp`): on a shared host,
spinning threads waiting for a descheduled sibling made the same fit cost 6-9x the
CPU of a one-thread fit (``benchmarks/fit_contention.py``).

:func:`train_model` runs the whole sequence in memory (backtest, freshness); the
DAG runs step 1 in its ``features`` stage and steps 2–3 in ``train`` (they are
separate tasks so that features can be inspected), through the same functions.
:func:`replay_sample` draws a warm start's replay rows.

Every estimator is fitted by :func:`fit` (:func:`fit_estimator`: its estimator alone),
which also decides where (:func:`choose_engine`, ``training.engine``): in this process,
or — a stateless LightGBM fit with ``engine: dask`` — on a Dask cluster
(:mod:`retrainflow.core.dask_engine`), which returns the same kind of booster.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from retrainflow.core.openmp import OPENMP_ENV as OPENMP_ENV
from retrainflow.core.openmp import prepare_openmp as prepare_openmp
from retrainflow.model import TabularModel

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd

    from retrainflow.config import PipelineConfig
    from retrainflow.core.dask_engine import DaskFit, StoredRows
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
        partitions = None
        if config.training.engine == "dask":  # the workers get the rows in groups of days
            from retrainflow.core.dask_engine import partition_sizes

            partitions = partition_sizes(raw[config.time_column])
        estimator = fit_estimator(config, features, y, categorical, partitions=partitions)
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


#: ``training.params.num_threads: auto``: as many threads as there are idle usable CPUs
#: (:func:`choose_threads`).
AUTO = "auto"
#: ``auto`` gives a LightGBM fit one thread per this many rows at most: below it a second
#: thread does not pay for waking up (benchmarks/README.md, ``fit_contention.py``: with
#: OpenMP's PASSIVE wait policy two threads were slower than one even in wall time at every
#: size measured on 2 cores — 20k-150k flights rows on a half-busy machine, and the full
#: year, 337k rows, on an idle one: 6.2 s against 5.0 s). Not measured above that.
MIN_ROWS_PER_THREAD = 400_000


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask; all CPUs where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def busy_cpus(samples: int = 5, interval: float = 0.02) -> tuple[float | None, tuple[float, ...]]:
    """How many CPUs are busy, this process included: the larger of the 1-minute load
    average and the runnable tasks now (Linux ``/proc/loadavg``, mean of ``samples``
    readings); also the load averages (1, 5, 15 minutes), for the record.

    The load average lags a minute behind a burst that just started; the runnable count
    sees it at once but flickers, hence both. ``(None, ())`` where neither is known.
    """
    try:
        load = tuple(round(v, 2) for v in os.getloadavg())
    except (AttributeError, OSError):
        load = ()
    running: list[int] = []
    for i in range(samples):
        try:
            with open("/proc/loadavg") as fh:
                running.append(int(fh.read().split()[3].split("/")[0]))
        except (OSError, ValueError, IndexError):
            break
        if i + 1 < samples:
            time.sleep(interval)
    signals = [*load[:1], *([sum(running) / len(running)] if running else [])]
    return (round(max(signals), 2) if signals else None), load


def choose_threads(
    setting: int | str, *, rows: int, cpus: int, busy: float | None
) -> tuple[int, str]:
    """LightGBM threads for one fit, and why (the pure policy of :func:`fit_threads`).

    An integer is used as configured. ``auto`` is the least of: the usable CPUs;
    the idle ones — ``cpus`` less what other processes keep busy (``busy`` counts this
    process as one, rounded to the nearest CPU); and one thread per
    :data:`MIN_ROWS_PER_THREAD` rows (small fits: a second thread does not pay). At
    least one.

    Args:
        setting: ``training.params.num_threads``: a number (0: OpenMP's default, all
            CPUs) or ``"auto"``.
        rows: Rows of the fit.
        cpus: Usable CPUs (:func:`usable_cpus`).
        busy: Busy CPUs, this process included (:func:`busy_cpus`); None: unknown (idle).

    Returns:
        ``(threads, reason)``.
    """
    if setting != AUTO:
        return int(setting), f"configured (training.params.num_threads: {setting})"
    others = max(0.0, (busy or 0.0) - 1.0)
    idle = max(0, min(cpus, math.floor(cpus - others + 0.5)))
    by_rows = max(1, rows // MIN_ROWS_PER_THREAD)
    threads = max(1, min(cpus, idle, by_rows))
    seen = "unknown load" if busy is None else f"{busy:g} busy (this fit included)"
    why = [f"{cpus} CPUs", seen, f"{idle} idle"]
    if by_rows < min(cpus, idle):
        why.append(f"{rows:,} rows < {MIN_ROWS_PER_THREAD * (by_rows + 1):,} for another thread")
    return threads, f"auto: {', '.join(why)}"


@dataclass(frozen=True)
class ThreadChoice:
    """How a fit was threaded; the train stage records it in the lineage."""

    #: LightGBM threads (``num_threads``); None for another estimator.
    threads: int | None
    #: ``configured (...)`` or ``auto: ...`` (:func:`choose_threads`).
    reason: str
    #: OpenMP's wait policy in this process (:func:`prepare_openmp`).
    omp_wait_policy: str
    cpus: int
    #: Busy CPUs the choice saw, this process included (:func:`busy_cpus`).
    busy: float | None = None
    #: 1-, 5- and 15-minute load averages when the choice was made.
    load_average: tuple[float, ...] = ()


def fit_threads(config: PipelineConfig, rows: int) -> ThreadChoice:
    """The threads of one fit of ``rows`` rows under ``config`` (and OpenMP's wait policy).

    LightGBM only: ``training.params.num_threads`` (default 1) as configured, or
    ``auto`` (:func:`choose_threads`). The load is read only for ``auto``.
    """
    cpus = usable_cpus()
    if config.training.estimator != "lightgbm":
        return ThreadChoice(None, f"not LightGBM ({config.training.estimator})", "", cpus)
    policy = prepare_openmp()
    setting = config.training.params.get("num_threads", 1)
    busy, load = busy_cpus() if setting == AUTO else (None, ())
    assert isinstance(setting, int | str)
    threads, reason = choose_threads(setting, rows=rows, cpus=cpus, busy=busy)
    return ThreadChoice(threads, reason, policy, cpus, busy, load)


def lightgbm_params(
    config: PipelineConfig, threads: int | None = None
) -> tuple[dict[str, Any], int]:
    """LightGBM core params and the number of boosting rounds for a full fit.

    ``threads`` (:func:`fit_threads`) replaces ``num_threads``; without it an ``auto``
    setting becomes 1.
    """
    params: dict[str, Any] = {
        "verbosity": -1,
        "num_threads": 1,
        "seed": config.training.random_seed,
    }
    params.update(config.training.params)
    if threads is not None:
        params["num_threads"] = threads
    elif params["num_threads"] == AUTO:
        params["num_threads"] = 1
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
        prepare_openmp()
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


@dataclass(frozen=True)
class Engine:
    """Where a fit runs (``training.engine``) and why; for Dask, also on what."""

    #: ``local`` (this process) or ``dask``.
    name: str
    #: ``configured (training.engine: ...)``, or why a ``dask`` pipeline fitted locally.
    reason: str
    #: ``dask``: what the fit ran on (set by :func:`fit`).
    dask: DaskFit | None = None


def choose_engine(config: PipelineConfig, *, warm: bool) -> Engine:
    """Where a fit of ``config`` runs: ``training.engine``, except that a warm start always
    continues the champion's booster in this process: ``dask`` fits stateless only (a
    warm start's rows are the few new days, and ``refit`` costs a pass of prediction).
    ``mode: warm_start`` with ``dask`` is refused by the config; ``mode: auto`` (or a run
    requesting a warm start) falls back to ``local`` with this reason recorded."""
    if config.training.engine != "dask":
        return Engine("local", f"configured (training.engine: {config.training.engine})")
    if warm:
        return Engine(
            "local",
            "warm start: the champion's booster is continued in this process "
            "(training.engine: dask fits stateless only)",
        )
    return Engine("dask", "configured (training.engine: dask)")


def fit(
    config: PipelineConfig,
    X: pd.DataFrame | StoredRows,
    y: np.ndarray | None,
    categorical: list[str],
    parent: Any | None = None,
    *,
    threads: ThreadChoice | None = None,
    partitions: Sequence[int] | None = None,
    engine: Engine | None = None,
) -> tuple[Any, Engine]:
    """Fit a new estimator, or continue ``parent`` when given (warm start); and where it ran.

    The one place estimators are fitted. A warm start uses the pipeline's
    ``training.warm_start`` settings (:func:`continue_estimator`), in this process.
    A stateless LightGBM fit with ``training.engine: dask`` runs on the Dask cluster at
    ``$RETRAINFLOW_DASK_ADDRESS`` (:func:`retrainflow.core.dask_engine.fit`).

    Args:
        config: The pipeline.
        X: Features in memory, or stored as Parquet
            (:class:`~retrainflow.core.dask_engine.StoredRows`: on Dask the workers read
            them; a local fit loads them).
        y: The targets of ``X`` in memory; None for stored rows.
        categorical: Categorical feature names.
        parent: The estimator to continue (warm start); None for a stateless fit.
        threads: The choice :func:`fit_threads` made for these rows (made here when not
            given; local fits only: Dask workers use their own threads).
        partitions: Dask, rows in memory: the row counts of their lake partitions
            (:func:`~retrainflow.core.dask_engine.partition_sizes`).
        engine: :func:`choose_engine`'s choice (made here when not given).

    Returns:
        ``(estimator, engine)``; after a Dask fit ``engine.dask`` says what it ran on.

    Raises:
        ConfigError: ``engine: dask`` without a valid ``RETRAINFLOW_DASK_ADDRESS``.
        DaskEngineError: the cluster is not reachable, has no worker, or its workers
            cannot read the stored rows.
    """
    engine = engine or choose_engine(config, warm=parent is not None)
    if engine.name == "dask" and parent is None:
        from retrainflow.core import dask_engine

        booster, ran = dask_engine.fit(config, X, y, categorical, partitions=partitions)
        return booster, Engine(engine.name, engine.reason, ran)
    from retrainflow.core.dask_engine import StoredRows

    if isinstance(X, StoredRows):
        X, y = X.load()
    assert y is not None
    if parent is not None:
        return continue_estimator(config, parent, X, y, categorical, threads=threads), engine
    if config.training.estimator == "lightgbm":
        threads = threads or fit_threads(config, len(X))
        import lightgbm as lgb

        params, rounds = lightgbm_params(config, threads.threads)
        data = lgb.Dataset(
            X, label=y, categorical_feature=categorical or "auto", free_raw_data=True
        )
        return lgb.train(params, data, num_boost_round=rounds), engine
    return sklearn_estimator(config).fit(X, y), engine


def fit_estimator(
    config: PipelineConfig,
    X: pd.DataFrame,
    y: np.ndarray,
    categorical: list[str],
    parent: Any | None = None,
    *,
    threads: ThreadChoice | None = None,
    partitions: Sequence[int] | None = None,
) -> Any:
    """Fit a new estimator, or continue ``parent`` when given (warm start): the estimator
    of :func:`fit`, wherever ``training.engine`` runs it.

    A warm start uses the pipeline's ``training.warm_start`` settings
    (:func:`continue_estimator`). ``threads``: the choice :func:`fit_threads` made for
    these rows (made here when not given). ``partitions``: ``engine: dask``, the row counts
    of the rows' lake partitions (default: one piece per worker).
    """
    return fit(config, X, y, categorical, parent, threads=threads, partitions=partitions)[0]


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
    threads: ThreadChoice | None = None,
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
        threads: LightGBM's threads for these rows (:func:`fit_threads`; made here when
            not given); a refit uses them too, whatever its parent was fitted with.

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
    threads = threads or fit_threads(config, len(X))
    n = threads.threads
    import lightgbm as lgb

    def refit(base: Any) -> Any:
        if n is None:
            return base.refit(X, y, decay_rate=decay)
        # num_threads: the leaf prediction (kwargs) and the new booster (its params).
        return base.refit(X, y, decay_rate=decay, num_threads=n, dataset_params={"num_threads": n})

    def append(base: Any) -> Any:
        params, _ = lightgbm_params(config, n)
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
        return refit(parent)
    if method == "refit_append":
        return append(refit(parent))
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
    return refit(trimmed)


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
