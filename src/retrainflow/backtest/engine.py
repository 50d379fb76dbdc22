"""The backtest's engine: every strategy replayed batch by batch through the core.

At every step each strategy first (maybe) trains on rows strictly *before* the
batch, then scores it (test-then-train). What a step does is the DAG's code:

* *when* (``policy``): :func:`retrainflow.core.monitoring.run_check` and
  :func:`~retrainflow.core.monitoring.decide_retrain`, the monitoring DAG's check;
* *which mode*: :func:`retrainflow.core.modes.resolve_mode`, the pull stage's rule
  (``hybrid`` asks for ``auto``, exactly as ``training.mode: auto`` does);
* *which rows*: :mod:`retrainflow.core.windows` and the replay sample of
  :func:`retrainflow.core.training.replay_sample` (or a reservoir, backtest only);
* *how to fit*: :func:`retrainflow.core.training.train_model`;
* *the gate* and every score: :mod:`retrainflow.core.metrics`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import pickle
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from retrainflow.backtest.progress import BacktestProgress, ProgressTracker, expected_work
from retrainflow.backtest.result import SCHEMA_VERSION, BacktestResult, StepRecord
from retrainflow.backtest.strategies import (
    DEFAULT_BATCH_DAYS,
    Strategy,
    check_strategies,
    default_strategies,
    strategy_config,
)
from retrainflow.core import metrics, training, windows
from retrainflow.core.modes import ChampionFacts, Mode, resolve_mode
from retrainflow.core.schema import schema_diff, schema_of
from retrainflow.data.frame import TimeFrame
from retrainflow.exceptions import DataError, EmptyWindowError, ModeError

if TYPE_CHECKING:
    import pandas as pd

    from retrainflow.config import PipelineConfig
    from retrainflow.model import TabularModel
    from retrainflow.policy import CheckResult

log = logging.getLogger(__name__)

#: Reference rows a policy check samples from the champion's training data (at most).
REFERENCE_CAP = 5_000


@dataclass
class _State:
    """Mutable per-strategy state while replaying."""

    model: TabularModel | None = None
    data_start: date | None = None
    data_end: date | None = None
    schema: dict[str, str] | None = None
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

    def facts(self, config: PipelineConfig) -> ChampionFacts | None:
        """The serving model, as the mode resolver sees a champion."""
        if self.model is None:
            return None
        return ChampionFacts(
            version=f"#{self.version}",
            estimator=config.training.estimator,
            data_end=self.data_end,
            warm_starts_since_full=self.warm_since_full,
            schema=self.schema,
        )


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
    schema: dict[str, str] | None = None
    gate_passed: bool | None = None
    promoted: bool = False
    skipped: str | None = None
    gate_metric: float | None = None


@dataclass(frozen=True)
class _SharedFit:
    """A trained model and what training it cost (see :meth:`_Engine._fit`)."""

    model: TabularModel
    cpu: float
    wall: float
    peak: float
    mem: float


def run_backtest(
    config: PipelineConfig,
    *,
    start: date | None = None,
    end: date | None = None,
    batch_days: int = DEFAULT_BATCH_DAYS,
    strategies: Sequence[Strategy | Mapping[str, Any]] | None = None,
    warmup_days: int | None = None,
    last_n: int | None = None,
    validate: bool = False,
    drift_sample_rows: int = 5_000,
    progress: Callable[[BacktestProgress], None] | None = None,
    jobs: int = 1,
) -> BacktestResult:
    """Replay ``[start, end)`` batch by batch through every strategy (test-then-train).

    Args:
        config: The pipeline.
        start: First day of data used (default: the first partition).
        end: Exclusive last day (default: the day after the last partition).
        batch_days: Days per batch (default weekly, :data:`DEFAULT_BATCH_DAYS`).
        strategies: Strategies or their specs (default :func:`default_strategies`).
            Strategies with the same :meth:`Strategy.replay_key` (the default ``oracle``
            and ``stateless_window`` with weekly batches) are replayed once; each gets
            the steps under its own name, with the measured costs of that one replay.
        warmup_days: Days before the first scored batch (default ``training.window_days``).
        last_n: Batches in the summary's ``last_metric`` (default: a quarter of the batches).
        validate: Validate every training frame with the pipeline's expectations
            (Great Expectations; slow) and skip retrains whose data fails.
        drift_sample_rows: Rows per side of the policy's drift tests.
        progress: Called with a :class:`~retrainflow.backtest.progress.BacktestProgress`
            (steps done, share of the expected work, ETA) each time a strategy finishes a
            step, in this process or in a worker.
        jobs: Worker processes; ``> 1`` replays the strategies in parallel (same results;
            each worker spawns, imports the libraries and reads its own copy of the data,
            a few seconds and one data set's memory each, so it pays only with idle cores).

    Returns:
        The :class:`BacktestResult`.

    Raises:
        ValueError: ``batch_days`` or ``jobs`` below 1 (a caller's bug; the CLI checks them).
        UserError: strategies that cannot run on this pipeline, or an invalid policy override.
        EmptyWindowError: no data in the range, or none after the warm-up.
    """
    from retrainflow.data.sources import make_source

    t0 = time.perf_counter()
    if batch_days < 1:
        raise ValueError(f"batch_days must be >= 1; got {batch_days}")
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1; got {jobs}")
    strats = [
        Strategy.from_spec(s)
        for s in (
            strategies
            if strategies is not None
            else default_strategies(config, batch_days=batch_days)
        )
    ]
    check_strategies(config, strats)

    source = make_source(config)
    days = source.partitions()
    start = start or (days[0] if days else None)
    end = end or (days[-1] + timedelta(days=1) if days else None)
    if start is None or end is None or not any(start <= d < end for d in days):
        raise EmptyWindowError(
            f"No data for '{config.name}' in [{start}, {end}) in {source.uri}. "
            f"Seed it first (`retrainflow seed {config.name} --until DATE`)."
        )
    warmup = warmup_days if warmup_days is not None else config.training.window_days
    first_batch = start + timedelta(days=warmup)
    if first_batch >= end:
        raise EmptyWindowError(
            f"The warm-up of {warmup} days from {start} leaves no batch "
            f"before {end}; pick an earlier start or a shorter warm-up."
        )
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
    log.info(
        "backtest %s: %d rows, %d batches of %d days, %d strategies",
        config.name,
        len(data.frame),
        len(batches),
        batch_days,
        len(strats),
    )

    # One replay per distinct behaviour: the others copy its steps under their names.
    canonical: dict[tuple[Any, ...], Strategy] = {}
    same_as = {s.name: canonical.setdefault(s.replay_key(), s).name for s in strats}
    replayed = [s for s in strats if same_as[s.name] == s.name]
    for name, twin in same_as.items():
        if name != twin:
            log.info("backtest %s: strategy %s replays as %s (same fits)", config.name, name, twin)
    engine_kwargs: dict[str, Any] = {
        "validate": validate,
        "drift_sample_rows": drift_sample_rows,
        "configs": {s.name: strategy_config(config, s) for s in replayed},
    }
    tracker = ProgressTracker(
        {s.name: expected_work(data, start, s, batches) for s in replayed} if progress else {},
        progress,
    )
    if jobs > 1 and len(replayed) > 1:
        per = _run_parallel(
            config,
            start,
            end,
            engine_kwargs,
            replayed,
            batches,
            jobs,
            tracker if progress else None,
        )
    else:
        engine = _Engine(config, data, start, **engine_kwargs)
        if any(s.kind == "policy" for s in replayed):
            engine.warm_up_monitoring()
        states = {s.name: _State() for s in replayed}
        per = {s.name: [] for s in replayed}
        for i, (b0, b1) in enumerate(batches):
            for s in replayed:
                record = engine.step(s, states[s.name], i, b0, b1)
                per[s.name].append(record)
                if progress:
                    tracker.advance(s.name, i, record.batch_start, record.metric)
    for name, twin in same_as.items():
        if name != twin:
            per[name] = [dataclasses.replace(r, strategy=name) for r in per[twin]]
    n_last = last_n or max(1, len(batches) // 4)
    return BacktestResult(
        schema_version=SCHEMA_VERSION,
        pipeline=config.name,
        task=config.task,
        primary_metric=config.evaluation.primary_metric,
        lower_is_better=config.lower_is_better,
        start=start.isoformat(),
        end=end.isoformat(),
        first_batch=first_batch.isoformat(),
        batch_days=batch_days,
        warmup_days=warmup,
        data_rows=len(data.frame),
        last_n=n_last,
        strategies=[s.to_dict() for s in strats],
        steps=[r for s in strats for r in per[s.name]],
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        seconds=round(time.perf_counter() - t0, 2),
    )


#: The engine of a worker process of :func:`_run_parallel` (built by :func:`_init_worker`).
_WORKER_ENGINE: _Engine | None = None
#: Where a worker reports each finished step (``(strategy, step, batch_start, metric)``).
_WORKER_QUEUE: Any = None


def _init_worker(
    config: PipelineConfig, start: date, end: date, kwargs: dict[str, Any], queue: Any = None
) -> None:
    """Worker start-up: read the same rows as the parent and build the engine once."""
    from retrainflow.data.sources import make_source
    from retrainflow.settings import quiet_third_party

    quiet_third_party()
    global _WORKER_ENGINE, _WORKER_QUEUE
    data = TimeFrame(config, make_source(config).read_window(start, end))
    _WORKER_ENGINE = _Engine(config, data, start, **kwargs)
    _WORKER_QUEUE = queue


def _replay_one(strategy: Strategy, batches: list[tuple[date, date]]) -> list[StepRecord]:
    """One strategy through every batch, in a worker process (see :func:`_run_parallel`)."""
    engine = _WORKER_ENGINE
    assert engine is not None
    if strategy.kind == "policy":
        engine.warm_up_monitoring()
    state = _State()
    out = []
    for i, (b0, b1) in enumerate(batches):
        record = engine.step(strategy, state, i, b0, b1)
        out.append(record)
        if _WORKER_QUEUE is not None:
            _WORKER_QUEUE.put((strategy.name, i, record.batch_start, record.metric))
    return out


def _run_parallel(
    config: PipelineConfig,
    start: date,
    end: date,
    engine_kwargs: dict[str, Any],
    strats: Sequence[Strategy],
    batches: list[tuple[date, date]],
    jobs: int,
    tracker: ProgressTracker | None,
) -> dict[str, list[StepRecord]]:
    """Replay the strategies in ``jobs`` worker processes, one strategy per task.

    Strategies share nothing but the data, so each one's steps are the same as in a
    sequential run; only the wall time changes (CPU and memory are measured in each
    worker). Workers are *spawned*, not forked: a fork after LightGBM's OpenMP pool or
    a logging/MLflow thread exists in the parent can hang the child. Each worker reads
    the rows itself once (:func:`_init_worker`) and reports every finished step on a
    queue, which this process turns into progress events while it waits.
    """
    import multiprocessing
    import queue as queue_module
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = multiprocessing.get_context("spawn")
    steps = ctx.Queue() if tracker is not None else None

    def drain() -> None:
        """Report the steps the workers finished since the last call."""
        assert steps is not None and tracker is not None
        while True:
            try:
                tracker.advance(*steps.get_nowait())
            except queue_module.Empty:
                return

    # The costliest first, so the pool does not end on one long strategy.
    cost = {"oracle": 0, "policy": 1, "stateless": 2, "hybrid": 3, "warm_start": 4, "static": 5}
    order = sorted(strats, key=lambda s: (cost[s.kind], s.window_days is not None))
    per: dict[str, list[StepRecord]] = {}
    with ProcessPoolExecutor(
        max_workers=min(jobs, len(strats)),
        mp_context=ctx,
        initializer=_init_worker,
        initargs=(config, start, end, engine_kwargs, steps),
    ) as pool:
        futures = {pool.submit(_replay_one, s, batches): s for s in order}
        pending = set(futures)
        while pending:
            if steps is None:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            else:
                finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                drain()
            for future in finished:
                s = futures[future]
                records = per[s.name] = future.result()
                if tracker is not None and records:
                    # Steps whose queue message is still in flight count now; late
                    # messages are then ignored by the tracker.
                    last = records[-1]
                    tracker.advance(s.name, last.step, last.batch_start, last.metric)
    return {s.name: per[s.name] for s in strats}


class _Engine:
    """The step logic shared by every strategy."""

    #: Stateless fits kept for sharing.
    SHARED_FITS = 4

    def __init__(
        self,
        config: PipelineConfig,
        data: TimeFrame,
        start: date,
        *,
        validate: bool,
        drift_sample_rows: int,
        configs: Mapping[str, PipelineConfig],
    ) -> None:
        self.config = config
        self.configs = configs  # the config each strategy runs with (strategy_config)
        self.data = data
        self.start = start
        self.validate = validate
        self.drift_sample_rows = drift_sample_rows
        self.primary = config.evaluation.primary_metric
        #: Stateless fits by (window, training settings): strategies that fit the same
        #: window share one fit and its measured cost (see :meth:`_fit`).
        self._fits: dict[tuple[Any, ...], _SharedFit] = {}
        training.import_fitting_libraries(config)

    def warm_up_monitoring(self) -> None:
        """One unmeasured tiny drift check, so no step pays Evidently's import time."""
        from retrainflow.monitoring.drift import compute_drift

        head = self.data.frame.iloc[:200]
        compute_drift(self.config, head, head, render_html=False, sample_rows=200)

    # -- one step ------------------------------------------------------------------------
    def step(self, s: Strategy, st: _State, i: int, b0: date, b1: date) -> StepRecord:
        monitor_cpu, drift_share, triggered, note = 0.0, None, None, "not scheduled"
        request: tuple[Mode, str] | None
        if st.model is None:
            request = (Mode.STATELESS, "initial fit")
        elif s.kind == "policy":
            request, monitor_cpu, drift_share, triggered, note = self._policy(s, st, b0)
        else:
            request = self._schedule(s, i)
        fit = self._train(s, st, i, request, b0) if request is not None else None
        if fit is not None and fit.promoted:
            assert fit.model is not None
            st.model, st.data_start, st.data_end = fit.model, fit.data_start, fit.data_end
            st.schema = fit.schema if fit.mode == Mode.STATELESS else st.schema
            st.version += 1
            st.warm_since_full = st.warm_since_full + 1 if fit.mode == Mode.WARM_START else 0
            st.size_kb = round(len(pickle.dumps(fit.model)) / 1024, 1)
            # The policy's reference value: the gate's holdout metric, else (no gate) the
            # first batch the model scores.
            st.gate_metric = fit.gate_metric
        assert st.model is not None
        batch = self.data.rows(b0, b1)
        y = self.data.y[self.data.pos(b0) : self.data.pos(b1)]
        scores = metrics.compute_metrics(self.config.task, y, st.model.predict(batch))
        metric = scores[self.primary]
        if st.gate_metric is None and math.isfinite(metric):
            st.gate_metric = metric
        cpu = fit.cpu if fit else 0.0
        st.cum_cpu += cpu + monitor_cpu
        trained = fit is not None and fit.model is not None
        return StepRecord(
            strategy=s.name,
            step=i,
            batch_start=b0.isoformat(),
            batch_end=b1.isoformat(),
            rows=len(batch),
            metric=metrics.finite_or_none(metric),
            metrics={k: metrics.finite_or_none(v) for k, v in scores.items()},
            retrained=trained,
            promoted=bool(fit and fit.promoted),
            mode=str(fit.mode) if fit and trained else None,
            reason=note if fit is None else (fit.skipped or fit.reason),
            warm_method=s.warm_method if fit and fit.mode == Mode.WARM_START and trained else None,
            rows_read=fit.rows_read if fit else 0,
            new_rows=fit.new_rows if fit else 0,
            replay_rows=fit.replay_rows if fit else 0,
            train_cpu_seconds=round(cpu, 4),
            train_wall_seconds=round(fit.wall if fit else 0.0, 4),
            peak_rss_mb=None if not fit or fit.peak is None else round(fit.peak, 1),
            train_mem_mb=None if not fit or fit.mem is None else round(fit.mem, 2),
            monitor_cpu_seconds=round(monitor_cpu, 4),
            cumulative_cpu_seconds=round(st.cum_cpu, 4),
            model_size_kb=st.size_kb,
            num_trees=st.model.num_trees,
            data_start=st.data_start.isoformat() if st.data_start else None,
            data_end=st.data_end.isoformat() if st.data_end else None,
            gate_passed=fit.gate_passed if fit else None,
            drift_share=drift_share,
            triggered=triggered,
        )

    # -- when ----------------------------------------------------------------------------
    def _schedule(self, s: Strategy, i: int) -> tuple[Mode, str] | None:
        """The mode a periodic strategy asks for at step ``i`` (None: not its turn)."""
        if s.kind == "static":
            return None
        every = 1 if s.kind == "oracle" else s.retrain_every
        if i % every:
            return None
        why = f"scheduled (every {every} batches)"
        if s.kind in ("stateless", "oracle"):
            return Mode.STATELESS, why
        if s.kind == "warm_start":
            return Mode.WARM_START, why
        return Mode.AUTO, why  # hybrid: the DAG's ``training.mode: auto``

    def _policy(
        self, s: Strategy, st: _State, b0: date
    ) -> tuple[tuple[Mode, str] | None, float, float | None, bool, str]:
        """The monitoring DAG's check on the rows before ``b0`` and the policy's decision
        (the request, the check's CPU seconds, its drift share, whether it triggered, and
        why not)."""
        from retrainflow.core.monitoring import decide_retrain, run_check
        from retrainflow.metering import measure

        cfg = self.configs[s.name]
        mon = cfg.monitoring
        assert st.model is not None and st.data_start is not None and st.data_end is not None
        now = datetime.combine(b0, datetime.min.time(), tzinfo=UTC)
        win = windows.monitoring(b0, mon.current_days, mon.label_delay_days)
        with measure() as cost:
            measured = run_check(
                cfg,
                model=st.model,
                reference=self.data.rows(st.data_start, st.data_end),
                current=self.data.rows(win.current.start, win.current.end),
                label_cutoff=win.label_cutoff,
                checked_at=now,
                champion_schema=st.schema,
                reference_cap=REFERENCE_CAP,
                render_html=False,
                drift_sample_rows=self.drift_sample_rows,
            )
            check = measured.check
            decision = decide_retrain(
                cfg,
                check,
                st.facts(cfg),
                gate_metric=st.gate_metric,
                previous_checks=st.checks,
                trigger_times=st.trigger_times,
                retrain_active=False,
                new_labelled_rows=self.data.count(st.data_end, win.label_cutoff),
                now=now,
            )
        st.checks.append(check)
        if not decision.trigger:
            note = "policy: no trigger"
            if decision.reasons:
                note += (
                    f" ({','.join(decision.reasons)} blocked by {','.join(decision.blocked_by)})"
                )
            return None, cost.cpu_seconds, check.drift_share, False, note
        st.trigger_times.append(check.checked_at)
        why = f"policy: {','.join(decision.reasons)} ({decision.mode}: {decision.mode_reason})"
        return (Mode(decision.mode), why), cost.cpu_seconds, check.drift_share, True, ""

    # -- how -----------------------------------------------------------------------------
    def _train(self, s: Strategy, st: _State, i: int, request: tuple[Mode, str], b0: date) -> _Fit:
        """Resolve the mode as the pull stage does, read the rows, fit, and gate."""
        import pandas as pd

        cfg = self.configs[s.name]
        requested, why = request
        first = st.model is None
        train_end = (
            windows.holdout(b0, cfg.evaluation.holdout_days).start if s.gate and not first else b0
        )
        rng = np.random.default_rng([cfg.training.random_seed, i, zlib.crc32(s.name.encode())])
        if s.replay_source == "reservoir" and s.warm:
            self._offer(s, st, self.data.pos(train_end), rng)
        facts = st.facts(cfg)
        new = None
        if (
            requested != Mode.STATELESS
            and facts is not None
            and facts.data_end is not None
            and facts.data_end < train_end
        ):
            new = self.data.rows(facts.data_end, train_end)
        change = schema_diff(st.schema, schema_of(new)) if new is not None and len(new) else None
        try:
            decision = resolve_mode(
                cfg,
                requested,
                facts,
                train_end=train_end,
                new_rows=None if new is None else len(new),
                schema_change=change,
            )
        except ModeError as exc:
            fit = _Fit(mode=requested, reason=why, data_end=train_end)
            fit.skipped = f"{why}: {exc.message}"
            return fit
        fit = _Fit(
            mode=decision.mode,
            reason=f"{why}: {decision.reason}"
            if requested == Mode.AUTO or decision.mode != requested
            else why,
            data_end=train_end,
        )
        if decision.mode == Mode.WARM_START:
            assert facts is not None and facts.data_end is not None and new is not None
            if len(new) == 0:
                fit.skipped = f"{fit.reason}: no new rows since {facts.data_end}"
                return fit
            replay = self._replay(s, st, len(new), rng)
            raw = pd.concat([replay, new], ignore_index=True) if len(replay) else new
            fit.new_rows, fit.replay_rows, fit.data_start = len(new), len(replay), facts.data_end
        else:
            window = windows.stateless(train_end, s.window_days, first_day=self.start)
            raw = self.data.rows(window.start, window.end)
            fit.new_rows, fit.data_start = len(raw), window.start
            fit.schema = schema_of(raw)
            if len(raw) == 0:
                fit.skipped = f"{fit.reason}: no rows in {window}"
                if first:
                    raise EmptyWindowError(
                        f"No rows to train on before {b0} for strategy "
                        f"'{s.name}'; use a longer warm-up."
                    )
                return fit
        fit.rows_read = len(raw)
        if self.validate:
            from retrainflow.validation import validate_frame

            report = validate_frame(cfg, raw, dataset=f"{s.name}@{b0}")
            if not report.success:
                if first:
                    raise DataError(
                        f"The warm-up window of '{s.name}' fails validation: {report.summary()}"
                    )
                fit.skipped = f"{fit.reason}; validation failed: {report.summary().splitlines()[0]}"
                return fit
        parent = st.model if decision.mode == Mode.WARM_START else None
        shared = self._fit(s, cfg, raw, parent, first=first, window=(fit.data_start, train_end))
        fit.model = shared.model
        if (
            parent is not None
            and s.warm_method in ("append", "refit_append")
            and training.trees_added(parent, fit.model) == 0
        ):
            fit.reason += f"; no tree added ({len(raw)} rows are too few for a leaf)"
        fit.cpu, fit.wall, fit.peak, fit.mem = shared.cpu, shared.wall, shared.peak, shared.mem
        fit.promoted = True
        if s.gate and not first:
            self._gate(cfg, fit, st, train_end, b0)
        return fit

    def _fit(
        self,
        s: Strategy,
        cfg: PipelineConfig,
        raw: pd.DataFrame,
        parent: TabularModel | None,
        *,
        first: bool,
        window: tuple[date | None, date],
    ) -> _SharedFit:
        """Train (measured), or reuse the same stateless fit another strategy just made.

        A stateless fit depends only on its rows and the training settings (a warm
        start's do not count), so strategies that fit one window at one step
        (``hybrid``'s full refits and ``stateless_window``) share the model and its
        measured cost: each records what the fit cost, as if it had been its own. Fits
        are deterministic, so results do not depend on who fitted first. Warm-up fits
        are not shared: the first fits of a process measure its allocator's growth, and
        sharing them would give every strategy the first one's memory figure (each
        costs ~1 s on flights). The :attr:`SHARED_FITS` newest fits are kept (a step
        has at most a few distinct windows).
        """
        from retrainflow.metering import measure

        key = None
        if parent is None and not first:
            settings = cfg.training.model_dump(mode="json", exclude={"warm_start"})
            key = (window, len(raw), repr(sorted(settings.items())))
            if key in self._fits:
                return self._fits[key]
        with measure() as cost:
            model = training.train_model(
                cfg,
                raw,
                parent,
                method=s.warm_method,
                decay_rate=s.decay_rate,
                num_boost_round=s.num_boost_round,
                max_trees=s.max_trees,
            )
        mem = float(raw.memory_usage(deep=True).sum()) / 2**20 + max(
            0.0, cost.peak_rss_mb - cost.start_rss_mb
        )
        out = _SharedFit(model, cost.cpu_seconds, cost.wall_seconds, cost.peak_rss_mb, mem)
        if key is not None:
            self._fits[key] = out
            for old in list(self._fits)[: -self.SHARED_FITS]:
                del self._fits[old]
        return out

    def _gate(
        self, cfg: PipelineConfig, fit: _Fit, st: _State, holdout_start: date, b0: date
    ) -> None:
        """Challenger vs the current model on the holdout days; promote only on a pass."""
        assert fit.model is not None and st.model is not None
        holdout = self.data.rows(holdout_start, b0)
        if not len(holdout):
            fit.gate_passed, fit.promoted = False, False
            fit.reason += "; gate: no holdout rows"
            return
        result = metrics.challenge(cfg, holdout, fit.model, st.model, champion_data_end=st.data_end)
        fit.gate_passed, fit.promoted = result.passed, result.passed
        fit.reason += f"; gate {'passed' if result.passed else 'failed'}: {result.reasons[0]}"
        fit.gate_metric = result.challenger[self.primary]

    def _replay(
        self, s: Strategy, st: _State, n_new: int, rng: np.random.Generator
    ) -> pd.DataFrame:
        """Older rows mixed into a warm start (none when ``replay_fraction`` is 0)."""
        n = training.replay_size(n_new, s.replay_fraction)
        assert st.data_end is not None
        if s.replay_source == "reservoir":
            if n == 0:
                return self.data.frame.iloc[0:0]
            assert st.reservoir is not None
            pool = st.reservoir[st.reservoir < self.data.pos(st.data_end)]
            if len(pool) == 0:
                return self.data.frame.iloc[0:0]
            pick = np.sort(rng.choice(pool, size=min(n, len(pool)), replace=False))
            return self.data.frame.iloc[pick]
        older = windows.replay(st.data_end, s.replay_days, first_day=self.start)
        return training.replay_sample(self.data.rows(older.start, older.end), n, rng)

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
            keep = np.argpartition(keys, s.reservoir_rows)[: s.reservoir_rows]
            pos, keys = pos[keep], keys[keep]
        st.reservoir, st.reservoir_keys, st.offered = pos, keys, upto
