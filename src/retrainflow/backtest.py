"""Backtest: replay a pipeline's data in time order through the library's training code.

``retrainflow backtest PIPELINE`` answers "which retraining strategy would have
served this pipeline best, and at what cost?" without Airflow. The data is read
once through :func:`~retrainflow.data.sources.make_source` (sorted by the time
column) and cut into batches of ``batch_days`` days. At every step each
strategy first (maybe) trains on rows strictly *before* the batch, then scores
the batch (**test-then-train**, "prequential" evaluation): every metric is a
forward-in-time score of the model a deployment would have served.

Everything a step does goes through the code the DAGs use: the
:class:`~retrainflow.features.FeatureTransformer` (fitted on a stateless window,
frozen for warm starts), :func:`~retrainflow.stages.train.fit_estimator`,
:func:`~retrainflow.stages.evaluate.compute_metrics` and
:func:`~retrainflow.stages.evaluate.gate`, :func:`~retrainflow.monitoring.drift.compute_drift`
(sampled, no HTML) and the trigger policy :func:`~retrainflow.policy.decide`. The
optional data validation is :func:`~retrainflow.validation.validate_frame`.

Strategies are configurations (:class:`Strategy`), not code paths:

==============  ===============================================================
kind            what happens at a retrain step
==============  ===============================================================
``static``      trained once (warm-up window), never again
``stateless``   a new model on the last ``window_days`` (``None`` = all history)
``oracle``      ``stateless`` at every batch: the expensive upper reference
``warm_start``  the strategy's model continued on the rows since its data end
                (plus a replay sample), with ``warm_method``
``hybrid``      ``warm_start``, and a full stateless refit after
                ``full_refit_every`` consecutive warm starts (``training.mode: auto``)
``policy``      a monitoring check at every batch; :func:`~retrainflow.policy.decide`
                says when to retrain and in which mode (as configured)
==============  ===============================================================

Warm-start methods are those of the DAG's train stage (``training.warm_start.method``,
:func:`~retrainflow.stages.train.continue_estimator`): ``append`` (trees added on the
new rows; SGD: ``partial_fit``), ``refit`` (LightGBM ``Booster.refit``: leaf values
re-fitted on the new rows with a decay, no tree added), ``refit_append`` and
``bounded`` (append, drop the oldest trees beyond ``max_trees``, re-fit). A strategy
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

Results: :class:`BacktestResult` (per-step :class:`StepRecord`; ``to_dict`` is the
stable JSON schema ``SCHEMA_VERSION``), :meth:`BacktestResult.summary` (one row per
strategy) and :func:`save` (``backtest.json``, ``metric_over_time.png``,
``cumulative_compute.png``).
"""

from __future__ import annotations

import logging
import math
import pickle
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args

import numpy as np

from retrainflow.config import LIGHTGBM_WARM_METHODS, LOWER_IS_BETTER, WARM_STARTABLE
from retrainflow.exceptions import DataError, EmptyWindowError, UserError
from retrainflow.manifest import Manifest

if TYPE_CHECKING:
    import pandas as pd

    from retrainflow.config import PipelineConfig
    from retrainflow.model import TabularModel
    from retrainflow.policy import CheckResult

__all__ = [
    "SCHEMA_VERSION",
    "STEP_FIELDS",
    "SUMMARY_COLUMNS",
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

log = logging.getLogger(__name__)

#: Version of the JSON layout of :meth:`BacktestResult.to_dict`; bump on any change.
SCHEMA_VERSION = 2

Kind = Literal["static", "stateless", "warm_start", "hybrid", "policy", "oracle"]
WarmMethod = Literal["append", "refit", "refit_append", "bounded"]  # config.WarmStartConfig.method
ReplaySource = Literal["window", "reservoir"]
Mode = Literal["stateless", "warm_start"]

#: Kinds that continue a fitted model (need a warm-startable estimator).
_WARM_KINDS = frozenset({"warm_start", "hybrid"})
#: Reference rows a policy check samples from the champion's training data (at most).
_REFERENCE_CAP = 5_000


# -- strategies --------------------------------------------------------------------------


@dataclass(frozen=True)
class Strategy(Manifest):
    """One retraining strategy: a configuration of the shared step logic.

    Attributes:
        name: Unique name (a column of the summary and a line in the plots).
        kind: ``static``, ``stateless``, ``warm_start``, ``hybrid``, ``policy`` or ``oracle``.
        window_days: Days of a stateless fit (the warm-up fit too); ``None`` = all history.
        retrain_every: Retrain at every this many batches (``oracle``: always 1; ``static``
            and ``policy`` ignore it).
        warm_method: ``append``, ``refit``, ``refit_append`` or ``bounded`` (see module doc).
        replay_fraction: Older rows added to a warm start, as a fraction of its new rows.
        replay_days: ``replay_source: window``: days before the parent's data end to sample.
        replay_source: ``window`` (the pull stage's replay) or ``reservoir``.
        reservoir_rows: Size of the reservoir sample of all rows seen so far.
        decay_rate: ``refit``: weight of the old leaf values (0 = new rows only).
        num_boost_round: Trees added per ``append``; ``None`` = ``training.warm_start``'s.
        max_trees: ``bounded``: trees kept after a warm start; ``None`` = ``n_estimators``.
        full_refit_every: ``hybrid`` and ``policy`` in ``auto`` mode: a stateless fit after
            this many consecutive warm starts; ``None`` = ``training.warm_start.max_warm_starts``.
        gate: Hold out ``evaluation.holdout_days`` before each retrain and promote the new
            model only when it passes :func:`~retrainflow.stages.evaluate.gate` against the
            current one (as the retrain DAG does). The first model is always kept.
        policy: ``policy`` kind: overrides of the pipeline's ``monitoring.policy`` (e.g.
            ``{"cooldown_hours": 168}``), so several trigger policies compare in one run.
        description: One line for people.
    """

    name: str
    kind: Kind
    window_days: int | None = None
    retrain_every: int = 1
    warm_method: WarmMethod = "append"
    replay_fraction: float = 0.0
    replay_days: int = 60
    replay_source: ReplaySource = "window"
    reservoir_rows: int = 20_000
    decay_rate: float = 0.9
    num_boost_round: int | None = None
    max_trees: int | None = None
    full_refit_every: int | None = None
    gate: bool = False
    policy: dict[str, Any] | None = None
    description: str = ""

    strict: ClassVar[bool] = True

    def __post_init__(self) -> None:
        def bad(msg: str) -> ValueError:
            return ValueError(f"strategy {self.name!r}: {msg}")

        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise bad("name must be letters, digits, '_' or '-'")
        for attr, typ in (("kind", Kind), ("warm_method", WarmMethod),
                          ("replay_source", ReplaySource)):
            if getattr(self, attr) not in get_args(typ):
                raise bad(f"{attr} must be one of {list(get_args(typ))}; got {getattr(self, attr)!r}")
        if self.window_days is not None and self.window_days < 1:
            raise bad("window_days must be >= 1 or None")
        if self.retrain_every < 1:
            raise bad("retrain_every must be >= 1")
        if not 0 <= self.replay_fraction <= 10:
            raise bad("replay_fraction must be within [0, 10]")
        if self.replay_days < 1 or self.reservoir_rows < 1:
            raise bad("replay_days and reservoir_rows must be >= 1")
        if not 0 <= self.decay_rate <= 1:
            raise bad("decay_rate must be within [0, 1]")
        if self.policy is not None and self.kind != "policy":
            raise bad("policy overrides need kind 'policy'")
        for attr in ("num_boost_round", "max_trees", "full_refit_every"):
            value = getattr(self, attr)
            if value is not None and value < (0 if attr == "full_refit_every" else 1):
                raise bad(f"{attr} must be positive")

    @classmethod
    def from_spec(cls, spec: Strategy | Mapping[str, Any]) -> Strategy:
        """A strategy from a mapping of its fields (unknown keys refused), or itself.

        Raises:
            ValueError: unknown keys or invalid values.
        """
        if isinstance(spec, Strategy):
            return spec
        try:
            return cls.from_dict(dict(spec))
        except TypeError as exc:  # a required field is missing
            raise ValueError(f"strategy spec {dict(spec)!r}: {exc}") from None

    @property
    def warm(self) -> bool:
        """Whether this strategy continues fitted models (``warm_start``/``hybrid``)."""
        return self.kind in _WARM_KINDS


def default_strategies(config: PipelineConfig, *, batch_days: int = 1) -> list[Strategy]:
    """The strategies compared by default, sized from the pipeline's config.

    Periodic strategies retrain weekly (every ``7 // batch_days`` batches, at least 1);
    the oracle retrains at every batch; ``policy`` checks at every batch. Warm-start
    strategies are left out for estimators that cannot continue a fitted model, and the
    LightGBM-only methods for other estimators.

    Args:
        config: The pipeline.
        batch_days: Days per batch (sets the weekly cadence in batches).

    Returns:
        The strategies, in a stable order.
    """
    tr, ws = config.training, config.training.warm_start
    window = tr.window_days
    weekly = max(1, round(7 / batch_days))
    replay = ws.replay_fraction or 0.2
    every = f"every {weekly * batch_days} days"
    # hybrid and policy replay what the DAGs do: the pipeline's own warm-start method.
    as_configured: dict[str, Any] = {"warm_method": ws.method, "decay_rate": ws.decay_rate,
                                     "max_trees": ws.max_trees}
    out = [
        Strategy("static", "static", window_days=window,
                 description=f"one fit on the first {window} days, never retrained"),
        Strategy("stateless_full", "stateless", window_days=None, retrain_every=weekly,
                 description=f"stateless on all history, {every}"),
        Strategy("stateless_window", "stateless", window_days=window, retrain_every=weekly,
                 description=f"stateless on the last {window} days, {every}"),
    ]
    if tr.estimator in WARM_STARTABLE:
        out += [
            Strategy("warm_append", "warm_start", window_days=window, retrain_every=weekly,
                     description=f"naive warm start: trees appended on new rows only, {every}"),
            Strategy("warm_replay", "warm_start", window_days=window, retrain_every=weekly,
                     replay_fraction=replay, replay_days=ws.replay_days,
                     description=f"append on new rows + {replay:.0%} replay of the last "
                                 f"{ws.replay_days} days, {every}"),
        ]
        if tr.estimator == "lightgbm":
            out += [
                Strategy("warm_reservoir", "warm_start", window_days=window,
                         retrain_every=weekly, replay_fraction=max(replay, 0.5),
                         replay_source="reservoir",
                         description=f"append on new rows + replay from a reservoir sample, {every}"),
                # decay 0.8: best of 0.2/0.5/0.8 on flights (weekly), where it matched the
                # 60-day stateless refit's ROC AUC at ~1/9 of its CPU.
                Strategy("warm_refit", "warm_start", window_days=window, retrain_every=weekly,
                         warm_method="refit", decay_rate=0.8,
                         description=f"leaf values refitted on new rows (decay 0.8), {every}"),
                Strategy("warm_refit_append", "warm_start", window_days=window,
                         retrain_every=weekly, warm_method="refit_append", decay_rate=0.5,
                         replay_fraction=replay, replay_days=ws.replay_days,
                         description=f"refit leaves (decay 0.5) + append on new rows with "
                                     f"replay, {every}"),
                Strategy("warm_bounded", "warm_start", window_days=window, retrain_every=weekly,
                         warm_method="bounded", decay_rate=0.5, replay_fraction=replay,
                         replay_days=ws.replay_days,
                         description=f"append + drop the oldest trees beyond n_estimators, "
                                     f"refit leaves, {every}"),
            ]
        out.append(
            Strategy("hybrid", "hybrid", window_days=window, retrain_every=weekly,
                     replay_fraction=replay, replay_days=ws.replay_days, **as_configured,
                     description=f"warm start with replay, full refit after "
                                 f"{ws.max_warm_starts} warm starts, {every} (mode auto)"))
    out += [
        Strategy("policy", "policy", window_days=window, gate=True,
                 replay_fraction=ws.replay_fraction, replay_days=ws.replay_days,
                 **as_configured,
                 description="monitoring check every batch; the trigger policy decides "
                             "(mode as configured, gated)"),
        Strategy("oracle", "oracle", window_days=window, retrain_every=1,
                 description=f"stateless on the last {window} days at every batch"),
    ]
    return out


def select_strategies(config: PipelineConfig, names: Iterable[str] | None, *,
                      batch_days: int = 1) -> list[Strategy]:
    """The default strategies called ``names`` (all of them for ``None``), in the given order.

    Raises:
        UserError: an unknown name (the message lists the known ones).
    """
    defaults = {s.name: s for s in default_strategies(config, batch_days=batch_days)}
    if names is None:
        return list(defaults.values())
    out = []
    for name in names:
        if name not in defaults:
            raise UserError(f"Unknown backtest strategy '{name}' for '{config.name}'; "
                            f"known: {', '.join(defaults)}.")
        out.append(defaults[name])
    return out


def load_strategies(path: Path | str) -> list[Strategy]:
    """Strategies from a YAML (or JSON) file: a list of specs, or ``{strategies: [...]}``.

    Each spec holds :class:`Strategy` fields, e.g. a second trigger policy::

        - {name: policy_weekly_cap, kind: policy, gate: true, policy: {max_retrains_per_week: 1}}

    Raises:
        UserError: unreadable file, wrong layout or an invalid spec (named).
    """
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"Cannot read the strategy file {path}: {exc}") from None
    if isinstance(data, dict) and set(data) == {"strategies"}:
        data = data["strategies"]
    if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
        raise UserError(f"{path}: expected a list of strategy mappings "
                        f"(or {{strategies: [...]}}); got {type(data).__name__}")
    out = []
    for i, spec in enumerate(data):
        try:
            out.append(Strategy.from_spec(spec))
        except ValueError as exc:
            raise UserError(f"{path}: strategy #{i + 1}: {exc}") from None
    return out


# -- records -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StepRecord(Manifest):
    """What one strategy did at one step, and how its model scored the batch.

    Attributes:
        strategy: The strategy's name.
        step: 0-based step index (step 0 holds the warm-up fit).
        batch_start: First day of the scored batch (ISO date).
        batch_end: Exclusive end of the batch.
        rows: Rows scored.
        metric: Primary metric of the model on the batch (None when undefined).
        metrics: Every metric of the task on the batch.
        retrained: A model was trained at this step (before scoring).
        promoted: The trained model replaced the strategy's model (False when gated out).
        mode: ``stateless`` or ``warm_start`` when retrained, else None.
        reason: Why it retrained, or why not.
        warm_method: The warm-start method used (warm starts only).
        rows_read: Rows read for training (warm start: new + replay).
        new_rows: Rows after the parent's data end (warm start) or in the window (stateless).
        replay_rows: Older rows replayed (warm start).
        train_cpu_seconds: CPU seconds of transform + fit.
        train_wall_seconds: Wall seconds of transform + fit.
        peak_rss_mb: Peak resident memory of the process during the fit (None: no fit).
        train_mem_mb: Memory a training job of its own would need above its interpreter:
            the raw rows read (deep size) plus the RSS growth during transform and fit.
        monitor_cpu_seconds: CPU seconds of the policy's monitoring check.
        cumulative_cpu_seconds: Train + monitor CPU seconds of this strategy so far.
        model_size_kb: Pickled size of the serving model.
        num_trees: Trees in the model (LightGBM), else None.
        data_start: First day of the serving model's latest training rows.
        data_end: Exclusive end of the serving model's training rows.
        gate_passed: The gate's verdict (gated retrains only).
        drift_share: Share of drifted features in the policy's check.
        triggered: The policy decided to retrain (policy only; None otherwise).
    """

    strategy: str
    step: int
    batch_start: str
    batch_end: str
    rows: int
    metric: float | None
    metrics: dict[str, float | None]
    retrained: bool
    promoted: bool
    mode: str | None
    reason: str
    warm_method: str | None
    rows_read: int
    new_rows: int
    replay_rows: int
    train_cpu_seconds: float
    train_wall_seconds: float
    peak_rss_mb: float | None
    train_mem_mb: float | None
    monitor_cpu_seconds: float
    cumulative_cpu_seconds: float
    model_size_kb: float
    num_trees: int | None
    data_start: str | None
    data_end: str | None
    gate_passed: bool | None
    drift_share: float | None
    triggered: bool | None

    strict: ClassVar[bool] = True


#: The keys of one step in ``backtest.json`` (the schema the tests pin).
STEP_FIELDS = tuple(f.name for f in fields(StepRecord))
#: Columns of :meth:`BacktestResult.summary`.
SUMMARY_COLUMNS = ("strategy", "kind", "mean_metric", "last_metric", "retrains",
                   "train_cpu_s", "monitor_cpu_s", "train_mem_mb", "peak_rss_mb", "rows_read",
                   "model_kb")


@dataclass(frozen=True)
class BacktestResult(Manifest):
    """A whole backtest: its setup, the strategies and every step of each.

    Attributes:
        schema_version: :data:`SCHEMA_VERSION`.
        pipeline: Pipeline name.
        task: The pipeline's task.
        primary_metric: ``evaluation.primary_metric``.
        lower_is_better: Direction of the primary metric.
        start: First day of the replayed data (ISO).
        end: Exclusive end of the replayed data.
        first_batch: First scored day (``start + warmup_days``).
        batch_days: Days per batch.
        warmup_days: Days before the first batch.
        data_rows: Rows replayed.
        last_n: Batches in the ``last_metric`` column of the summary.
        strategies: The strategies, as dicts.
        steps: Per-step records, strategy by strategy, in time order.
        created_at: ISO datetime of the run.
        seconds: Wall seconds of the whole backtest.
    """

    schema_version: int
    pipeline: str
    task: str
    primary_metric: str
    lower_is_better: bool
    start: str
    end: str
    first_batch: str
    batch_days: int
    warmup_days: int
    data_rows: int
    last_n: int
    strategies: list[dict[str, Any]]
    steps: list[StepRecord]
    created_at: str
    seconds: float

    nested: ClassVar[dict[str, type[Manifest]]] = {"steps": StepRecord}

    def steps_of(self, strategy: str) -> list[StepRecord]:
        """The steps of one strategy, in time order."""
        return [s for s in self.steps if s.strategy == strategy]

    @property
    def strategy_names(self) -> list[str]:
        return [s["name"] for s in self.strategies]

    def summary(self, last_n: int | None = None) -> list[dict[str, Any]]:
        """One row per strategy (columns :data:`SUMMARY_COLUMNS`).

        ``mean_metric`` is the mean of the per-batch primary metric, ``last_metric`` its
        mean over the last ``last_n`` batches, ``retrains`` the number of fits (the warm-up
        fit included), ``train_mem_mb`` the most memory any of its fits needed (see the
        module doc), ``peak_rss_mb`` the process's highest peak during a fit, ``rows_read``
        the rows read for training in total, ``model_kb`` the final model's size.
        """
        n = last_n or self.last_n
        rows = []
        kinds = {s["name"]: s["kind"] for s in self.strategies}
        for name in self.strategy_names:
            steps = self.steps_of(name)
            values = [s.metric for s in steps if _finite(s.metric)]
            last = [s.metric for s in steps[-n:] if _finite(s.metric)]
            peaks = [s.peak_rss_mb for s in steps if s.peak_rss_mb is not None]
            mems = [s.train_mem_mb for s in steps if s.train_mem_mb is not None]
            rows.append({
                "strategy": name,
                "kind": kinds[name],
                "mean_metric": round(float(np.mean(values)), 4) if values else None,
                "last_metric": round(float(np.mean(last)), 4) if last else None,
                "retrains": sum(s.retrained for s in steps),
                "train_cpu_s": round(sum(s.train_cpu_seconds for s in steps), 2),
                "monitor_cpu_s": round(sum(s.monitor_cpu_seconds for s in steps), 2),
                "peak_rss_mb": round(max(peaks), 1) if peaks else None,
                "train_mem_mb": round(max(mems), 1) if mems else None,
                "rows_read": sum(s.rows_read for s in steps),
                "model_kb": steps[-1].model_size_kb if steps else None,
            })
        return rows

    def goals(self, *, cpu_factor: float = 45.0, mem_factor: float = 10.0,
              metric_points: float = 0.5, gain_share: float = 0.95,
              retrain_share: float = 0.2) -> dict[str, Any]:
        """The continual-training goals, checked on this run (defaults: issue 4's targets).

        *Warm start*: a ``warm_start``/``hybrid`` strategy uses ``cpu_factor`` x less
        training CPU and ``mem_factor`` x less training memory (``train_mem_mb``) than
        stateless on full history (the ``stateless`` strategy without a window), with a
        mean metric within ``metric_points`` points (x 0.01) of the best stateless one
        (``stateless`` and ``oracle`` kinds). *Policy*: a ``policy`` strategy gets
        ``gain_share`` of the oracle's mean-metric gain over ``static`` with at most
        ``retrain_share`` of the oracle's retrains (warm-up fits not counted).

        Returns:
            ``{"warm_start": [...], "policy": [...], "references": {...}}``, one row per
            candidate with its ratios, gaps and a ``met`` flag per goal; rows are sorted
            best first. Empty lists when the run lacks the references.
        """
        rows = {r["strategy"]: r for r in self.summary()}
        kinds = {s["name"]: s for s in self.strategies}
        sign = -1.0 if self.lower_is_better else 1.0

        def better(a: float, b: float) -> float:  # > 0 when a is better than b
            return sign * (a - b)

        scored = {n: r for n, r in rows.items() if r["mean_metric"] is not None}
        full = next((n for n, s in kinds.items() if s["kind"] == "stateless"
                     and s.get("window_days") is None and n in scored), None)
        stateless = [n for n, s in kinds.items() if s["kind"] in ("stateless", "oracle")
                     and n in scored]
        best = max(stateless, key=lambda n: sign * scored[n]["mean_metric"], default=None)
        static = next((n for n, s in kinds.items() if s["kind"] == "static" and n in scored), None)
        oracle = next((n for n, s in kinds.items() if s["kind"] == "oracle" and n in scored), None)
        out: dict[str, Any] = {"references": {"stateless_full": full, "best_stateless": best,
                                              "static": static, "oracle": oracle},
                               "warm_start": [], "policy": []}

        def ratio(a: float | None, b: float | None) -> float | None:
            return None if not a or not b else round(a / b, 1)

        if full and best:
            ref, top = scored[full], scored[best]["mean_metric"]
            for n, s in kinds.items():
                if s["kind"] not in _WARM_KINDS or n not in scored:
                    continue
                r = scored[n]
                cpu = ratio(ref["train_cpu_s"], r["train_cpu_s"])
                mem = ratio(ref["train_mem_mb"], r["train_mem_mb"])
                gap = round(100 * better(top, r["mean_metric"]), 2)
                out["warm_start"].append({
                    "strategy": n, "cpu_x_less": cpu, "mem_x_less": mem, "points_behind_best": gap,
                    "cpu_met": cpu is not None and cpu >= cpu_factor,
                    "mem_met": mem is not None and mem >= mem_factor,
                    "metric_met": gap <= metric_points})
            out["warm_start"].sort(key=lambda g: (-(g["cpu_met"] + g["mem_met"] + g["metric_met"]),
                                                  g["points_behind_best"]))
        if static and oracle:
            base = scored[static]["mean_metric"]
            oracle_gain = better(scored[oracle]["mean_metric"], base)
            oracle_retrains = max(1, scored[oracle]["retrains"] - 1)
            for n, s in kinds.items():
                if s["kind"] != "policy" or n not in scored:
                    continue
                gain = better(scored[n]["mean_metric"], base)
                share = None if oracle_gain <= 0 else round(gain / oracle_gain, 3)
                retrains = round((scored[n]["retrains"] - 1) / oracle_retrains, 3)
                out["policy"].append({
                    "strategy": n, "gain_points": round(100 * gain, 2),
                    "oracle_gain_points": round(100 * oracle_gain, 2), "gain_share": share,
                    "retrains": scored[n]["retrains"] - 1, "oracle_retrains": oracle_retrains,
                    "retrain_share": retrains,
                    "gain_met": share is not None and share >= gain_share,
                    "retrains_met": retrains <= retrain_share})
            out["policy"].sort(key=lambda g: -(g["gain_share"] or 0.0))
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: the fields plus ``summary`` and ``goals`` (ignored by :meth:`from_dict`)."""
        out = super().to_dict()
        out["summary"] = self.summary()
        out["goals"] = self.goals()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BacktestResult:
        """Inverse of :meth:`to_dict` (the derived ``summary`` key is dropped)."""
        return super().from_dict({k: v for k, v in data.items() if k not in ("summary", "goals")})


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


# -- warm starts -------------------------------------------------------------------------


# -- the engine --------------------------------------------------------------------------


@dataclass
class _State:
    """Mutable per-strategy state while replaying."""

    model: TabularModel | None = None
    data_start: date | None = None
    data_end: date | None = None
    warm_since_full: int = 0
    gate_metric: float | None = None
    version: int = 0
    size_kb: float = 0.0
    cum_cpu: float = 0.0
    checks: list[CheckResult] = field(default_factory=list)
    trigger_times: list[str] = field(default_factory=list)
    reservoir: np.ndarray | None = None  # row positions
    reservoir_keys: np.ndarray | None = None
    offered: int = 0  # rows [0, offered) were offered to the reservoir


@dataclass
class _Fit:
    """Outcome of one training at one step."""

    mode: Mode
    reason: str
    model: TabularModel | None = None
    rows_read: int = 0
    new_rows: int = 0
    replay_rows: int = 0
    cpu: float = 0.0
    wall: float = 0.0
    peak: float | None = None
    mem: float | None = None
    data_start: date | None = None
    data_end: date | None = None
    gate_passed: bool | None = None
    promoted: bool = False
    skipped: str | None = None
    gate_metric: float | None = None


class TimeFrame:
    """A pipeline's rows in memory, sorted by the time column, sliced by day.

    Shared by the backtest and :mod:`retrainflow.freshness`: ``rows(start, end)``
    is the ``[start, end)`` window a pull of those days would return (a positional
    slice), ``y`` the target as floats.
    """

    def __init__(self, config: PipelineConfig, frame: pd.DataFrame) -> None:
        import pandas as pd

        ts = pd.to_datetime(frame[config.time_column])
        order = np.argsort(ts.to_numpy(), kind="stable")
        self.frame = frame.iloc[order].reset_index(drop=True)
        self.days = ts.to_numpy()[order].astype("datetime64[D]")
        self.y = pd.to_numeric(self.frame[config.target]).to_numpy(dtype=np.float64)

    def pos(self, day: date) -> int:
        """Row position of the first row on or after ``day``."""
        return int(np.searchsorted(self.days, np.datetime64(day, "D"), side="left"))

    def rows(self, start: date, end: date) -> pd.DataFrame:
        return self.frame.iloc[self.pos(start):self.pos(end)]

    def count(self, start: date, end: date) -> int:
        return max(0, self.pos(end) - self.pos(start))


def run_backtest(
    config: PipelineConfig,
    *,
    start: date | None = None,
    end: date | None = None,
    batch_days: int = 1,
    strategies: Sequence[Strategy | Mapping[str, Any]] | None = None,
    warmup_days: int | None = None,
    last_n: int | None = None,
    validate: bool = False,
    drift_sample_rows: int = 5_000,
    progress: Callable[[str], None] | None = None,
    jobs: int = 1,
) -> BacktestResult:
    """Replay ``[start, end)`` batch by batch through every strategy (test-then-train).

    Args:
        config: The pipeline.
        start: First day of data used (default: the first partition).
        end: Exclusive last day (default: the day after the last partition).
        batch_days: Days per batch.
        strategies: Strategies or their specs (default :func:`default_strategies`).
        warmup_days: Days before the first scored batch (default ``training.window_days``).
        last_n: Batches in the summary's ``last_metric`` (default: a quarter of the batches).
        validate: Validate every training frame with the pipeline's expectations
            (Great Expectations; slow) and skip retrains whose data fails.
        drift_sample_rows: Rows per side of the policy's drift tests.
        progress: Called with a line of text after each step (``jobs > 1``: after each
            strategy).
        jobs: Worker processes; ``> 1`` replays the strategies in parallel (same results,
            shorter wall time on several cores; each worker holds its own copy of the data).

    Returns:
        The :class:`BacktestResult`.

    Raises:
        ValueError: bad arguments or duplicate strategy names.
        EmptyWindowError: no data in the range, or none after the warm-up.
    """
    from retrainflow.data.sources import make_source

    t0 = time.perf_counter()
    if batch_days < 1:
        raise ValueError(f"batch_days must be >= 1; got {batch_days}")
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1; got {jobs}")
    strats = [Strategy.from_spec(s) for s in
              (strategies if strategies is not None else default_strategies(config,
                                                                           batch_days=batch_days))]
    names = [s.name for s in strats]
    if not strats or len(set(names)) != len(names):
        raise ValueError(f"strategies must be non-empty with unique names; got {names}")
    for s in strats:
        if s.warm and config.training.estimator not in WARM_STARTABLE:
            raise ValueError(f"strategy '{s.name}' warm-starts, which estimator "
                             f"'{config.training.estimator}' cannot")
        if s.warm and s.warm_method in LIGHTGBM_WARM_METHODS and config.training.estimator != "lightgbm":
            raise ValueError(f"strategy '{s.name}': warm method '{s.warm_method}' needs lightgbm")

    source = make_source(config)
    days = source.partitions()
    start = start or (days[0] if days else None)
    end = end or (days[-1] + timedelta(days=1) if days else None)
    if start is None or end is None or not any(start <= d < end for d in days):
        raise EmptyWindowError(f"No data for '{config.name}' in [{start}, {end}) in {source.uri}. "
                               f"Seed it first (`retrainflow seed {config.name} --until DATE`).")
    warmup = warmup_days if warmup_days is not None else config.training.window_days
    first_batch = start + timedelta(days=warmup)
    if first_batch >= end:
        raise EmptyWindowError(f"The warm-up of {warmup} days from {start} leaves no batch "
                               f"before {end}; pick an earlier start or a shorter warm-up.")
    data = TimeFrame(config, source.read_window(start, end))
    batches = []
    b0 = first_batch
    while b0 < end:
        b1 = min(b0 + timedelta(days=batch_days), end)
        if data.count(b0, b1):
            batches.append((b0, b1))
        b0 = b1
    if not batches:
        raise EmptyWindowError(f"No rows after the warm-up ({first_batch} to {end}).")
    log.info("backtest %s: %d rows, %d batches of %d days, %d strategies", config.name,
             len(data.frame), len(batches), batch_days, len(strats))

    engine_kwargs: dict[str, Any] = {
        "validate": validate, "drift_sample_rows": drift_sample_rows,
        "policies": {s.name: _with_policy(config, s) for s in strats if s.kind == "policy"}}
    if jobs > 1 and len(strats) > 1:
        per = _run_parallel(config, start, end, engine_kwargs, strats, batches, jobs, progress)
    else:
        engine = _Engine(config, data, start, **engine_kwargs)
        if any(s.kind == "policy" for s in strats):
            engine.warm_up_monitoring()
        states = {s.name: _State() for s in strats}
        per = {s.name: [] for s in strats}
        for i, (b0, b1) in enumerate(batches):
            for s in strats:
                per[s.name].append(engine.step(s, states[s.name], i, b0, b1))
            if progress:
                bits = ", ".join(f"{s.name}={_fmt(per[s.name][-1].metric)}" for s in strats)
                progress(f"step {i + 1}/{len(batches)} {b0}: {bits}")
    n_last = last_n or max(1, len(batches) // 4)
    return BacktestResult(
        schema_version=SCHEMA_VERSION, pipeline=config.name, task=config.task,
        primary_metric=config.evaluation.primary_metric,
        lower_is_better=config.evaluation.primary_metric in LOWER_IS_BETTER,
        start=start.isoformat(), end=end.isoformat(), first_batch=first_batch.isoformat(),
        batch_days=batch_days, warmup_days=warmup, data_rows=len(data.frame), last_n=n_last,
        strategies=[s.to_dict() for s in strats],
        steps=[r for s in strats for r in per[s.name]],
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        seconds=round(time.perf_counter() - t0, 2),
    )


#: The engine of a worker process of :func:`_run_parallel` (built by :func:`_init_worker`).
_WORKER_ENGINE: _Engine | None = None


def _init_worker(config: PipelineConfig, start: date, end: date, kwargs: dict[str, Any]) -> None:
    """Worker start-up: read the same rows as the parent and build the engine once."""
    from retrainflow.data.sources import make_source
    from retrainflow.settings import quiet_third_party

    quiet_third_party()
    global _WORKER_ENGINE
    data = TimeFrame(config, make_source(config).read_window(start, end))
    _WORKER_ENGINE = _Engine(config, data, start, **kwargs)


def _replay_one(strategy: Strategy, batches: list[tuple[date, date]]) -> list[StepRecord]:
    """One strategy through every batch, in a worker process (see :func:`_run_parallel`)."""
    engine = _WORKER_ENGINE
    assert engine is not None
    if strategy.kind == "policy":
        engine.warm_up_monitoring()
    state = _State()
    return [engine.step(strategy, state, i, b0, b1) for i, (b0, b1) in enumerate(batches)]


def _run_parallel(config: PipelineConfig, start: date, end: date, engine_kwargs: dict[str, Any],
                  strats: Sequence[Strategy], batches: list[tuple[date, date]], jobs: int,
                  progress: Callable[[str], None] | None) -> dict[str, list[StepRecord]]:
    """Replay the strategies in ``jobs`` worker processes, one strategy per task.

    Strategies share nothing but the data, so each one's steps are the same as in a
    sequential run; only the wall time changes (CPU and memory are measured in each
    worker). Workers are *spawned*, not forked: a fork after LightGBM's OpenMP pool or
    a logging/MLflow thread exists in the parent can hang the child. Each worker reads
    the rows itself once (:func:`_init_worker`).
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # The costliest first, so the pool does not end on one long strategy.
    cost = {"oracle": 0, "policy": 1, "stateless": 2, "hybrid": 3, "warm_start": 4, "static": 5}
    order = sorted(strats, key=lambda s: (cost[s.kind], s.window_days is not None))
    per: dict[str, list[StepRecord]] = {}
    with ProcessPoolExecutor(max_workers=min(jobs, len(strats)),
                             mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init_worker,
                             initargs=(config, start, end, engine_kwargs)) as pool:
        futures = {pool.submit(_replay_one, s, batches): s for s in order}
        for future in as_completed(futures):
            s = futures[future]
            per[s.name] = future.result()
            if progress:
                values = [r.metric for r in per[s.name] if _finite(r.metric)]
                progress(f"{s.name}: {len(per[s.name])} batches done ({len(per)}/{len(strats)}), "
                         f"mean {_fmt(float(np.mean(values)) if values else None)}")
    return {s.name: per[s.name] for s in strats}


def _with_policy(config: PipelineConfig, s: Strategy) -> PipelineConfig:
    """``config`` with the strategy's ``monitoring.policy`` overrides, validated."""
    if not s.policy:
        return config
    from pydantic import ValidationError

    base = config.monitoring.policy
    try:
        policy = type(base).model_validate({**base.model_dump(), **s.policy})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise ValueError(f"strategy '{s.name}': policy override {where}: {first['msg']}") from None
    return config.model_copy(update={"monitoring": config.monitoring.model_copy(
        update={"policy": policy})})


def _fmt(x: float | None) -> str:
    return "-" if not _finite(x) else f"{x:.3f}"


class _Engine:
    """The step logic shared by every strategy."""

    def __init__(self, config: PipelineConfig, data: TimeFrame, start: date, *, validate: bool,
                 drift_sample_rows: int, policies: Mapping[str, PipelineConfig]) -> None:
        self.config = config
        self.policies = policies  # the config each policy strategy decides with
        self.data = data
        self.start = start
        self.validate = validate
        self.drift_sample_rows = drift_sample_rows
        self.primary = config.evaluation.primary_metric
        from retrainflow.stages.train import import_fitting_libraries

        import_fitting_libraries(config)

    def warm_up_monitoring(self) -> None:
        """One unmeasured tiny drift check, so no step pays Evidently's import time."""
        from retrainflow.monitoring.drift import compute_drift

        head = self.data.frame.iloc[:200]
        compute_drift(self.config, head, head, render_html=False, sample_rows=200)

    # -- one step ------------------------------------------------------------------------
    def step(self, s: Strategy, st: _State, i: int, b0: date, b1: date) -> StepRecord:
        monitor_cpu, drift_share, triggered, note = 0.0, None, None, "not scheduled"
        plan: tuple[Mode, str] | None
        if st.model is None:
            plan = ("stateless", "initial fit")
        elif s.kind == "policy":
            plan, monitor_cpu, drift_share, triggered, note = self._policy(s, st, b0)
        else:
            plan = self._schedule(s, st, i)
        fit = self._train(s, st, i, plan, b0) if plan is not None else None
        if fit is not None and fit.promoted:
            assert fit.model is not None
            st.model, st.data_start, st.data_end = fit.model, fit.data_start, fit.data_end
            st.version += 1
            st.warm_since_full = st.warm_since_full + 1 if fit.mode == "warm_start" else 0
            st.size_kb = round(len(pickle.dumps(fit.model)) / 1024, 1)
            # The policy's reference value: the gate's holdout metric, else (no gate) the
            # first batch the model scores.
            st.gate_metric = fit.gate_metric
        assert st.model is not None
        batch = self.data.rows(b0, b1)
        y = self.data.y[self.data.pos(b0):self.data.pos(b1)]
        from retrainflow.stages.evaluate import compute_metrics

        metrics = compute_metrics(self.config.task, y, st.model.predict(batch))
        metric = metrics[self.primary]
        if st.gate_metric is None and math.isfinite(metric):
            st.gate_metric = metric
        cpu = fit.cpu if fit else 0.0
        st.cum_cpu += cpu + monitor_cpu
        if fit is None:
            reason = note
        else:
            reason = fit.skipped or fit.reason
        return StepRecord(
            strategy=s.name, step=i, batch_start=b0.isoformat(), batch_end=b1.isoformat(),
            rows=len(batch), metric=metric if math.isfinite(metric) else None,
            metrics={k: (v if math.isfinite(v) else None) for k, v in metrics.items()},
            retrained=bool(fit and fit.model is not None),
            promoted=bool(fit and fit.promoted),
            mode=fit.mode if fit and fit.model is not None else None,
            reason=reason,
            warm_method=s.warm_method if fit and fit.mode == "warm_start" and fit.model else None,
            rows_read=fit.rows_read if fit else 0, new_rows=fit.new_rows if fit else 0,
            replay_rows=fit.replay_rows if fit else 0,
            train_cpu_seconds=round(cpu, 4), train_wall_seconds=round(fit.wall if fit else 0.0, 4),
            peak_rss_mb=None if not fit or fit.peak is None else round(fit.peak, 1),
            train_mem_mb=None if not fit or fit.mem is None else round(fit.mem, 2),
            monitor_cpu_seconds=round(monitor_cpu, 4),
            cumulative_cpu_seconds=round(st.cum_cpu, 4), model_size_kb=st.size_kb,
            num_trees=st.model.num_trees,
            data_start=st.data_start.isoformat() if st.data_start else None,
            data_end=st.data_end.isoformat() if st.data_end else None,
            gate_passed=fit.gate_passed if fit else None,
            drift_share=drift_share, triggered=triggered,
        )

    # -- when ----------------------------------------------------------------------------
    def _schedule(self, s: Strategy, st: _State, i: int) -> tuple[Mode, str] | None:
        if s.kind == "static":
            return None
        every = 1 if s.kind == "oracle" else s.retrain_every
        if i % every:
            return None
        if s.kind in ("stateless", "oracle"):
            return "stateless", f"scheduled (every {every} batches)"
        if s.kind == "warm_start":
            return "warm_start", f"scheduled (every {every} batches)"
        return self._auto(s, st, "scheduled")

    def _auto(self, s: Strategy, st: _State, why: str) -> tuple[Mode, str]:
        """``training.mode: auto``: warm start until the full-refit limit is reached."""
        limit = (s.full_refit_every if s.full_refit_every is not None
                 else self.config.training.warm_start.max_warm_starts)
        if st.warm_since_full >= limit:
            return "stateless", f"{why}: full refit after {st.warm_since_full} warm starts"
        return "warm_start", f"{why}: warm start {st.warm_since_full + 1} of {limit}"

    def _policy(self, s: Strategy, st: _State, b0: date
                ) -> tuple[tuple[Mode, str] | None, float, float | None, bool, str]:
        """A monitoring check on the rows before ``b0`` and the policy's decision (the plan,
        the check's CPU seconds, its drift share, whether it triggered, and why not)."""
        import pandas as pd

        from retrainflow.metering import measure
        from retrainflow.monitoring.drift import compute_drift
        from retrainflow.policy import ChampionInfo, CheckResult, PolicyState, decide

        cfg = self.policies[s.name]
        mon = cfg.monitoring
        assert st.model is not None and st.data_start is not None and st.data_end is not None
        now = datetime.combine(b0, datetime.min.time(), tzinfo=UTC)
        label_cutoff = b0 - timedelta(days=mon.label_delay_days)
        with measure() as cost:
            current = self.data.rows(b0 - timedelta(days=mon.current_days), b0)
            if mon.current_rows and len(current) > mon.current_rows:
                current = current.sample(n=mon.current_rows, random_state=cfg.training.random_seed)
            reference = self.data.rows(st.data_start, st.data_end)
            cap = min(mon.reference_rows, _REFERENCE_CAP)
            if len(reference) > cap:
                reference = reference.sample(n=cap, random_state=cfg.training.random_seed)
            drift_share = dataset_drift = prediction_drift = metric = None
            drifted: list[str] = []
            labelled = 0
            if len(current) and len(reference):
                ts = pd.to_datetime(current[cfg.time_column])
                mask = (ts < pd.Timestamp(label_cutoff)).to_numpy()
                labelled = int(mask.sum())
                cur = current
                if not mask.all():
                    cur = current.copy()
                    cur.loc[~mask, cfg.target] = np.nan
                result = compute_drift(
                    cfg, reference, cur, reference_scores=st.model.predict(reference),
                    current_scores=st.model.predict(current), labelled=labelled > 0,
                    render_html=False, sample_rows=self.drift_sample_rows,
                    seed=cfg.training.random_seed)
                drift_share, drifted = result.drift_share, list(result.drifted_columns)
                dataset_drift = result.dataset_drift
                prediction_drift = (None if result.prediction_drift is None
                                    else bool(result.prediction_drift.drifted))
                metric = (result.performance or {}).get(self.primary)
            check = CheckResult(
                checked_at=now.isoformat(timespec="seconds"), current_rows=len(current),
                labelled_rows=labelled, drift_share=drift_share, drifted_columns=drifted,
                dataset_drift=dataset_drift, prediction_drift=prediction_drift,
                metric=None if metric is None or not math.isfinite(metric) else float(metric))
            champion = ChampionInfo(version=str(st.version), gate_metric=st.gate_metric,
                                    data_end=st.data_end.isoformat(),
                                    lower_is_better=cfg.lower_is_better)
            state = PolicyState(previous_checks=list(st.checks),
                                trigger_times=list(st.trigger_times),
                                new_labelled_rows_since_champion=self.data.count(st.data_end,
                                                                                 label_cutoff))
            decision = decide(cfg, check, champion, state, now=now)
        st.checks.append(check)
        if not decision.trigger:
            note = "policy: no trigger"
            if decision.reasons:
                note += f" ({','.join(decision.reasons)} blocked by {','.join(decision.blocked_by)})"
            return None, cost.cpu_seconds, drift_share, False, note
        st.trigger_times.append(check.checked_at)
        why = "policy: " + ",".join(decision.reasons)
        if decision.mode == "auto":
            plan = self._auto(s, st, why)
        else:
            plan = (decision.mode, f"{why} ({decision.mode_reason})")  # type: ignore[assignment]
        return plan, cost.cpu_seconds, drift_share, True, ""

    # -- how -----------------------------------------------------------------------------
    def _train(self, s: Strategy, st: _State, i: int, plan: tuple[Mode, str], b0: date) -> _Fit:
        import pandas as pd

        from retrainflow.features import FeatureTransformer
        from retrainflow.metering import measure
        from retrainflow.model import TabularModel
        from retrainflow.stages.train import continue_estimator, fit_estimator

        cfg = self.config
        mode, reason = plan
        first = st.model is None
        train_end = b0 - cfg.holdout if s.gate and not first else b0
        rng = np.random.default_rng([cfg.training.random_seed, i, zlib.crc32(s.name.encode())])
        if s.replay_source == "reservoir" and s.warm:
            self._offer(s, st, self.data.pos(train_end), rng)
        fit = _Fit(mode=mode, reason=reason, data_end=train_end)
        if mode == "warm_start":
            assert st.data_end is not None
            new_start = st.data_end
            new = self.data.rows(new_start, train_end)
            if s.kind in ("hybrid", "policy") and 0 < len(new) < cfg.expectations.min_rows:
                mode, fit.mode = "stateless", "stateless"
                fit.reason = (f"{reason}; only {len(new)} new rows (< expectations.min_rows "
                              f"{cfg.expectations.min_rows}): full refit")
            elif len(new) == 0:
                fit.skipped = f"{reason}: no new rows since {st.data_end}"
                return fit
            else:
                replay = self._replay(s, st, len(new), rng)
                raw = pd.concat([replay, new], ignore_index=True) if len(replay) else new
                fit.new_rows, fit.replay_rows, fit.data_start = len(new), len(replay), new_start
        if mode == "stateless":
            win_start = self.start if s.window_days is None else max(
                self.start, train_end - timedelta(days=s.window_days))
            raw = self.data.rows(win_start, train_end)
            fit.new_rows, fit.data_start = len(raw), win_start
            if len(raw) == 0:
                fit.skipped = f"{reason}: no rows in [{win_start}, {train_end})"
                if first:
                    raise EmptyWindowError(f"No rows to train on before {b0} for strategy "
                                           f"'{s.name}'; use a longer warm-up.")
                return fit
        fit.rows_read = len(raw)
        if self.validate:
            from retrainflow.validation import validate_frame

            report = validate_frame(cfg, raw, dataset=f"{s.name}@{b0}")
            if not report.success:
                if first:
                    raise DataError(f"The warm-up window of '{s.name}' fails validation: "
                                    f"{report.summary()}")
                fit.skipped = f"{reason}; validation failed: {report.summary().splitlines()[0]}"
                return fit
        y = pd.to_numeric(raw[cfg.target]).to_numpy(dtype=np.float64)
        with measure() as cost:
            if mode == "stateless":
                transformer = FeatureTransformer.from_config(cfg).fit(raw)
                estimator = fit_estimator(cfg, transformer.transform(raw), y,
                                          transformer.categorical_features_)
            else:
                assert st.model is not None
                transformer = st.model.transformer
                estimator = continue_estimator(
                    cfg, st.model.estimator, transformer.transform(raw), y,
                    transformer.categorical_features_, method=s.warm_method,
                    decay_rate=s.decay_rate, num_boost_round=s.num_boost_round,
                    max_trees=s.max_trees)
        fit.model = TabularModel(transformer, estimator, cfg.task, cfg.training.estimator)
        fit.cpu, fit.wall, fit.peak = cost.cpu_seconds, cost.wall_seconds, cost.peak_rss_mb
        fit.mem = (float(raw.memory_usage(deep=True).sum()) / 2**20
                   + max(0.0, cost.peak_rss_mb - cost.start_rss_mb))
        fit.promoted = True
        if s.gate and not first:
            self._gate(fit, st, train_end, b0)
        return fit

    def _gate(self, fit: _Fit, st: _State, holdout_start: date, b0: date) -> None:
        """Challenger vs the current model on the holdout days; promote only on a pass."""
        from retrainflow.stages.evaluate import compute_metrics, gate

        assert fit.model is not None and st.model is not None
        holdout = self.data.rows(holdout_start, b0)
        y = self.data.y[self.data.pos(holdout_start):self.data.pos(b0)]
        if not len(holdout):
            fit.gate_passed, fit.promoted = False, False
            fit.reason += "; gate: no holdout rows"
            return
        chal = compute_metrics(self.config.task, y, fit.model.predict(holdout))
        champ = compute_metrics(self.config.task, y, st.model.predict(holdout))
        passed, reasons = gate(self.config, chal, champ)
        fit.gate_passed, fit.promoted = passed, passed
        fit.reason += f"; gate {'passed' if passed else 'failed'}: {reasons[0]}"
        fit.gate_metric = chal[self.primary]

    def _replay(self, s: Strategy, st: _State, n_new: int, rng: np.random.Generator
                ) -> pd.DataFrame:
        """Older rows mixed into a warm start (none when ``replay_fraction`` is 0)."""
        n = round(n_new * s.replay_fraction)
        assert st.data_end is not None
        if n == 0:
            return self.data.frame.iloc[0:0]
        if s.replay_source == "reservoir":
            assert st.reservoir is not None
            pool = st.reservoir[st.reservoir < self.data.pos(st.data_end)]
        else:
            lo = self.data.pos(max(self.start, st.data_end - timedelta(days=s.replay_days)))
            pool = np.arange(lo, self.data.pos(st.data_end))
        if len(pool) == 0:
            return self.data.frame.iloc[0:0]
        pick = np.sort(rng.choice(pool, size=min(n, len(pool)), replace=False))
        return self.data.frame.iloc[pick]

    def _offer(self, s: Strategy, st: _State, upto: int, rng: np.random.Generator) -> None:
        """Add rows ``[offered, upto)`` to the uniform reservoir (smallest random keys win)."""
        if upto <= st.offered:
            return
        pos = np.arange(st.offered, upto)
        keys = rng.random(len(pos))
        if st.reservoir is not None and st.reservoir_keys is not None:
            pos = np.concatenate([st.reservoir, pos])
            keys = np.concatenate([st.reservoir_keys, keys])
        if len(pos) > s.reservoir_rows:
            keep = np.argpartition(keys, s.reservoir_rows)[:s.reservoir_rows]
            pos, keys = pos[keep], keys[keep]
        st.reservoir, st.reservoir_keys, st.offered = pos, keys, upto


# -- output ------------------------------------------------------------------------------


def save(result: BacktestResult, out_dir: Path | str) -> dict[str, Path]:
    """Write ``backtest.json``, ``metric_over_time.png`` and ``cumulative_compute.png``.

    Returns:
        ``{"json": ..., "metric_png": ..., "compute_png": ...}``.
    """
    from retrainflow.artifacts import StageDir

    out = StageDir(Path(out_dir))
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    paths = {"json": out.write_json("backtest.json", result.to_dict())}
    paths["metric_png"] = out.write_with("metric_over_time.png",
                                         lambda p: _plot(result, p, "metric"))
    paths["compute_png"] = out.write_with("cumulative_compute.png",
                                          lambda p: _plot(result, p, "compute"))
    return paths


def _plot(result: BacktestResult, path: Path, what: Literal["metric", "compute"]) -> None:
    """One line per strategy: the batch metric, or cumulative train + monitor CPU seconds.

    With many batches the metric is drawn as a centred rolling mean over about a
    twentieth of the run (said in the title): single days of real data are too noisy
    to tell fifteen lines apart.
    """
    from matplotlib import colormaps
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    from retrainflow.reports import agg_figure

    fig = agg_figure()
    ax = fig.add_subplot()
    colors = colormaps["tab20"].colors  # type: ignore[attr-defined]
    n_batches = len(result.steps_of(result.strategy_names[0])) if result.strategy_names else 0
    smooth = max(1, n_batches // 20) if n_batches > 60 else 1
    for k, name in enumerate(result.strategy_names):
        steps = result.steps_of(name)
        x = [date.fromisoformat(s.batch_start) for s in steps]
        if what == "metric":
            y = [np.nan if s.metric is None else s.metric for s in steps]
            if smooth > 1:
                import pandas as pd

                y = pd.Series(y).rolling(smooth, center=True, min_periods=1).mean().tolist()
        else:
            y = [s.cumulative_cpu_seconds for s in steps]
        style = "--" if name in ("static", "oracle") else "-"
        ax.plot(x, y, style, label=name, linewidth=1.2, color=colors[(2 * k) % 20 + (k // 10) % 2],
                marker="." if len(x) < 60 else None)
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    if what == "metric":
        ax.set_ylabel(f"{result.primary_metric} on the next batch")
        ax.set_title(f"{result.pipeline}: forward-in-time {result.primary_metric} "
                     f"({result.batch_days}-day batches"
                     + (f"; rolling mean of {smooth} batches)" if smooth > 1 else ")"))
    else:
        ax.set_ylabel("cumulative CPU seconds (train + monitor)")
        ax.set_yscale("log")
        ax.set_title(f"{result.pipeline}: cumulative compute per strategy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2, loc="best")
    fig.tight_layout()
    fig.savefig(path, format="png")


def log_to_mlflow(config: PipelineConfig, result: BacktestResult, paths: Mapping[str, Path]
                  ) -> str:
    """One run in experiment ``<pipeline>-backtest``: summary metrics and the saved files.

    Returns:
        The MLflow run id.
    """
    from retrainflow.reports import log_report_to_mlflow

    metrics = {f"{row['strategy']}.{key}": row[key] for row in result.summary()
               for key in ("mean_metric", "last_metric", "train_cpu_s", "train_mem_mb", "retrains")}
    return log_report_to_mlflow(
        f"{config.name}-backtest", f"backtest {result.start}..{result.end}", paths.values(),
        metrics=metrics, artifact_path="backtest",
        tags={"batch_days": str(result.batch_days), "strategies": ",".join(result.strategy_names)})
