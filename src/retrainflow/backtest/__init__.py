"""Backtest: replay a pipeline's data in time order through the library's training code.

``retrainflow backtest PIPELINE`` answers "which retraining strategy would have
served this pipeline best, and at what cost?" without Airflow. The data is read
once through :func:`~retrainflow.data.sources.make_source` (sorted by the time
column) and cut into batches of ``batch_days`` days (weekly by default,
:data:`DEFAULT_BATCH_DAYS`; daily on request). At every step each
strategy first (maybe) trains on rows strictly *before* the batch, then scores
the batch (**test-then-train**, "prequential" evaluation): every metric is a
forward-in-time score of the model a deployment would have served.

Everything a step does goes through the code the DAGs use: the
core modules of :mod:`retrainflow.core`: the mode resolver (``hybrid`` *is*
``auto``), the windows, the fit sequence (transformer fitted on a stateless window,
frozen for warm starts), the metrics and the gate, and the monitoring check with
the trigger policy (sampled, no HTML). The optional data validation is
:func:`~retrainflow.validation.validate_frame`.

Strategies are configurations (:class:`Strategy`), not code paths; the kinds
(``static``, ``stateless``, ``oracle``, ``warm_start``, ``hybrid`` = mode ``auto``,
``policy`` = the monitoring DAG's check and trigger policy) are listed in
:mod:`retrainflow.backtest.strategies`.

Warm-start methods are those of the DAG's train stage (``training.warm_start.method``,
:func:`~retrainflow.core.training.continue_estimator`): ``append`` (trees added on the
new rows; SGD: ``partial_fit``), ``refit`` (LightGBM ``Booster.refit``: leaf values
re-fitted on the new rows with a decay, no tree added), ``refit_append`` and
``bounded`` (append, then keep ``max_trees`` trees — the from-scratch fit's and the
newest — and re-fit). A strategy
names its method; ``hybrid`` and ``policy`` default to the pipeline's own, so they
replay what the DAGs would do.

Replay: a warm start may add ``replay_fraction`` x (new rows) older rows, either
from the ``replay_days`` before the parent's data end (``replay_source:
window``, like the DAG's pull stage) or from a uniform reservoir sample of all
rows seen so far (``reservoir``, ``reservoir_rows`` rows kept in memory).

Costs: ``train_cpu_seconds`` / ``train_wall_seconds`` / ``peak_rss_mb`` are
:func:`~retrainflow.metering.measure` around the feature transform and the fit
(peak RSS is the whole process's, which holds the replayed data set);
``train_mem_mb`` is what a training job of its own would need on top of its
interpreter: the raw training rows it reads (pandas deep size) plus the measured
RSS growth of transform and fit (feature matrix, LightGBM bins, trees) — the
figure to compare strategies by;
``monitor_cpu_seconds`` is the policy's monitoring check; ``rows_read`` the rows
a retrain read (for a warm start: new rows plus the replay sample).

Cost: strategies with the same behaviour (:meth:`Strategy.replay_key`, e.g. the oracle and
``stateless_window`` on weekly batches) are replayed once, and strategies that fit the
same stateless window at a later step (``hybrid``'s full refits and ``stateless_window``)
share that fit (each still records its measured cost).
``progress`` receives a :class:`~retrainflow.backtest.progress.BacktestProgress` per
step with an ETA; ``jobs > 1`` replays strategies in worker processes (same results).

Results: :class:`BacktestResult` (per-step :class:`StepRecord`; ``to_dict`` is the
stable JSON schema ``SCHEMA_VERSION``), :meth:`BacktestResult.summary` (one row per
strategy), :meth:`BacktestResult.comparisons` (ratios against the references; the
project's goals for them are judged in ``benchmarks/backtest_goals.py``, not here: they
are the project's development targets, not a property of a user's pipeline)
and :func:`save` (``backtest.json``, ``metric_over_time.png``,
``cumulative_compute.png``).

Files: :mod:`.strategies` (what a strategy is, the defaults), :mod:`.engine` (the
replay), :mod:`.progress` (progress events, the ETA), :mod:`.result` (records, summary,
comparisons), :mod:`.report` (JSON, plots, MLflow).
"""

from retrainflow.backtest.engine import run_backtest
from retrainflow.backtest.progress import BacktestProgress
from retrainflow.backtest.report import log_to_mlflow, save
from retrainflow.backtest.result import (
    SCHEMA_VERSION,
    STEP_FIELDS,
    SUMMARY_COLUMNS,
    BacktestResult,
    StepRecord,
)
from retrainflow.backtest.strategies import (
    DEFAULT_BATCH_DAYS,
    Strategy,
    default_strategies,
    load_strategies,
    select_strategies,
)
from retrainflow.data.frame import TimeFrame

__all__ = [
    "DEFAULT_BATCH_DAYS",
    "SCHEMA_VERSION",
    "STEP_FIELDS",
    "SUMMARY_COLUMNS",
    "BacktestProgress",
    "BacktestResult",
    "StepRecord",
    "Strategy",
    "TimeFrame",
    "default_strategies",
    "load_strategies",
    "log_to_mlflow",
    "run_backtest",
    "save",
    "select_strategies",
]
