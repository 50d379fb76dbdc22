"""Backtest results: one record per strategy and step, the summary and the comparisons."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from retrainflow.backtest.strategies import WARM_KINDS
from retrainflow.jsonsafe import finite_or_none
from retrainflow.manifest import Manifest

#: Version of the JSON layout of :meth:`BacktestResult.to_dict`; bump on any change.
#: 3: ``goals`` (with the project's thresholds) became ``comparisons`` (ratios only).
SCHEMA_VERSION = 3


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
SUMMARY_COLUMNS = (
    "strategy",
    "kind",
    "mean_metric",
    "last_metric",
    "retrains",
    "train_cpu_s",
    "monitor_cpu_s",
    "train_mem_mb",
    "peak_rss_mb",
    "rows_read",
    "model_kb",
)


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
            values = [v for s in steps if (v := finite_or_none(s.metric)) is not None]
            last = [v for s in steps[-n:] if (v := finite_or_none(s.metric)) is not None]
            peaks = [s.peak_rss_mb for s in steps if s.peak_rss_mb is not None]
            mems = [s.train_mem_mb for s in steps if s.train_mem_mb is not None]
            rows.append(
                {
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
                }
            )
        return rows

    def comparisons(self) -> dict[str, Any]:
        """Ratios against the reference strategies (no thresholds: ``benchmarks/`` judges them).

        *Warm start*: for each ``warm_start``/``hybrid`` strategy, how many times less
        training CPU and training memory (``train_mem_mb``) it used than stateless on full
        history (the ``stateless`` strategy without a window), and how many points
        (x 0.01) of mean metric it is behind the best stateless one (``stateless`` and
        ``oracle`` kinds). *Policy*: for each ``policy`` strategy, its mean-metric gain over
        ``static`` as a share of the oracle's, and its retrains as a share of the oracle's
        (warm-up fits not counted). "Better" is :func:`retrainflow.core.metrics.improvement`.

        Returns:
            ``{"warm_start": [...], "policy": [...], "references": {...}}``: one row per
            candidate, sorted best first; empty lists when the run lacks the references.
        """
        from retrainflow.core.metrics import POINT_SCALE_METRICS, improvement

        rows = {r["strategy"]: r for r in self.summary()}
        kinds = {s["name"]: s for s in self.strategies}
        primary = self.primary_metric

        def better(a: float, b: float) -> float:  # > 0 when a is better than b
            return improvement(primary, a, b)

        scored = {n: r for n, r in rows.items() if r["mean_metric"] is not None}
        full = next(
            (
                n
                for n, s in kinds.items()
                if s["kind"] == "stateless" and s.get("window_days") is None and n in scored
            ),
            None,
        )
        stateless = [
            n for n, s in kinds.items() if s["kind"] in ("stateless", "oracle") and n in scored
        ]
        best = max(stateless, key=lambda n: better(scored[n]["mean_metric"], 0.0), default=None)
        static = next((n for n, s in kinds.items() if s["kind"] == "static" and n in scored), None)
        oracle = next((n for n, s in kinds.items() if s["kind"] == "oracle" and n in scored), None)
        out: dict[str, Any] = {
            "references": {
                "stateless_full": full,
                "best_stateless": best,
                "static": static,
                "oracle": oracle,
            },
            "warm_start": [],
            "policy": [],
        }

        def ratio(a: float | None, b: float | None) -> float | None:
            return None if not a or not b else round(a / b, 1)

        if full and best:
            ref, top = scored[full], scored[best]["mean_metric"]
            for n, s in kinds.items():
                if s["kind"] not in WARM_KINDS or n not in scored:
                    continue
                r = scored[n]
                gap = better(top, r["mean_metric"])
                out["warm_start"].append(
                    {
                        "strategy": n,
                        "cpu_x_less": ratio(ref["train_cpu_s"], r["train_cpu_s"]),
                        "mem_x_less": ratio(ref["train_mem_mb"], r["train_mem_mb"]),
                        "behind_best": round(gap, 6),
                        "pct_behind_best": round(100 * gap / abs(top), 2) if top else None,
                        # percentage points, for metrics on a 0-1 scale only (not an MAE)
                        "points_behind_best": round(100 * gap, 2)
                        if primary in POINT_SCALE_METRICS
                        else None,
                    }
                )
            out["warm_start"].sort(key=lambda g: g["behind_best"])
        if static and oracle:
            base = scored[static]["mean_metric"]
            oracle_gain = better(scored[oracle]["mean_metric"], base)
            oracle_retrains = max(1, scored[oracle]["retrains"] - 1)
            for n, s in kinds.items():
                if s["kind"] != "policy" or n not in scored:
                    continue
                gain = better(scored[n]["mean_metric"], base)
                out["policy"].append(
                    {
                        "strategy": n,
                        "gain_points": round(100 * gain, 2),
                        "oracle_gain_points": round(100 * oracle_gain, 2),
                        "gain_share": None if oracle_gain <= 0 else round(gain / oracle_gain, 3),
                        "retrains": scored[n]["retrains"] - 1,
                        "oracle_retrains": oracle_retrains,
                        "retrain_share": round((scored[n]["retrains"] - 1) / oracle_retrains, 3),
                    }
                )
            out["policy"].sort(key=lambda g: -(g["gain_share"] or 0.0))
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: the fields plus the derived ``summary`` and ``comparisons``."""
        out = super().to_dict()
        out["summary"] = self.summary()
        out["comparisons"] = self.comparisons()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BacktestResult:
        """Inverse of :meth:`to_dict` (the derived keys are dropped)."""
        return super().from_dict(
            {k: v for k, v in data.items() if k not in ("summary", "comparisons")}
        )


def _finite(x: float | None) -> bool:
    return finite_or_none(x) is not None
