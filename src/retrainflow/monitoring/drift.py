"""Feature, prediction and target drift, and live performance, with Evidently 0.7.

:func:`compute_drift` compares a *reference* frame (rows the champion was
trained on) with a *current* frame (the newest rows) column by column with
Evidently's statistical tests — no test is implemented here — and returns a
:class:`DriftResult`; :meth:`DriftResult.summary` is the small JSON-safe dict
that goes into XCom / a DAG run's ``conf``, :func:`save` writes it (and the HTML
report, when one was rendered) into a stage directory.

Two engines compute the same quantities:

``fast=True`` (default)
    Both frames are sampled to at most ``sample_rows`` rows (default 50,000,
    seeded, the same rows for features and scores), and every column goes
    through Evidently's registered stat test directly
    (``evidently.legacy.calculations.stattests`` — the functions
    ``ValueDrift``/``DataDriftPreset`` call), with the same method selection as
    ``ValueDrift``: the configured test, or Evidently's default for the column
    type and reference size. No plots are built. The HTML report, only when
    asked for, is a ``Report`` of one ``ValueDrift`` per column on the same
    samples with the methods and thresholds already resolved, so it shows the
    same numbers. 1M x 20 columns: ~2 s on one core (see
    ``benchmarks/drift_check.py``).
``fast=False``
    ``Report([DataDriftPreset(...), ValueDrift(prediction), ValueDrift(target)],
    include_tests=True)`` on the full frames: Evidently's reference path; about
    ~100 s for 1M x 20 on one core, because every ``ValueDrift`` builds plotly
    widgets, copies the frame, and the default Wasserstein test sorts 1M values.

Why sampling is safe with Evidently's defaults: above 1,000 reference rows
Evidently picks *distance* tests (normed Wasserstein for numeric columns,
Jensen-Shannon for categorical ones) whose value does not grow with the number
of rows, so a 50k sample estimates the full-data distance to about ±0.01 while
the threshold is 0.1. With a p-value test (``ks``, ``chisquare``, …) sampling
lowers the power, which at these sizes is wanted: on 1M rows every p-value test
flags shifts far too small to matter.

Score direction: a p-value test drifts when ``score < threshold`` and a
distance test when ``score >= threshold``. :class:`ColumnDrift` records which
one applied (``drift_when``), read off Evidently's own verdict (``drifted``)
against the score and threshold it returned; only an exact tie falls back to
the test's known kind.

Method names are Evidently's registered names (``ks``, ``psi``,
``wasserstein``, ``jensenshannon``, …) — the ones ``monitoring.drift.method``
accepts — except ``energy``, which Evidently registers as ``ed``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from retrainflow import settings
from retrainflow.jsonsafe import finite_or_none

if TYPE_CHECKING:
    import pandas as pd

    from retrainflow.artifacts import StageDir
    from retrainflow.config import PipelineConfig

log = logging.getLogger(__name__)

#: Rows each side is sampled to on the fast path (``None`` = all rows).
DEFAULT_SAMPLE_ROWS = 50_000
#: Name of the champion-score column in Evidently's frames and in the summary.
PREDICTION = "prediction"
#: Config names that Evidently registers under another name.
_METHOD_ALIASES = {"energy": "ed"}
#: Tests whose score is a p-value (drift when score < threshold). Used only to break an
#: exact score == threshold tie; otherwise the direction is read off Evidently's verdict.
_P_VALUE_TESTS = frozenset(
    {
        "ks",
        "chisquare",
        "z",
        "anderson",
        "cramer_von_mises",
        "mannw",
        "t_test",
        "TVD",
        "empirical_mmd",
        "fisher_exact",
        "g_test",
        "es",
    }
)

DriftWhen = Literal["below", "at_or_above"]


@dataclass(frozen=True)
class ColumnDrift:
    """Evidently's drift verdict on one column.

    Attributes:
        method: Evidently's registered test name (``wasserstein``, ``ks``, ``psi``, …).
        score: The test's value: a p-value or a distance (see ``drift_when``).
        threshold: The threshold Evidently applied.
        drifted: Evidently's verdict.
        drift_when: ``"below"`` — drift when ``score < threshold`` (p-value tests);
            ``"at_or_above"`` — drift when ``score >= threshold`` (distances).
    """

    method: str
    score: float
    threshold: float
    drifted: bool
    drift_when: DriftWhen

    @property
    def is_p_value(self) -> bool:
        """Whether the score is a p-value (small = drift)."""
        return self.drift_when == "below"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe fields (NaN becomes ``None``)."""
        return {
            "method": self.method,
            "score": finite_or_none(self.score),
            "threshold": float(self.threshold),
            "drifted": bool(self.drifted),
            "drift_when": self.drift_when,
        }


@dataclass(frozen=True)
class DriftResult:
    """Drift of every feature, of the champion's scores and of the target; live performance.

    Attributes:
        columns: Feature name -> its :class:`ColumnDrift`.
        drift_share: Drifted features / tested features.
        drifted_columns: Names of the drifted features, in config order.
        dataset_drift: ``drift_share >= monitoring.drift.share_threshold``.
        prediction_drift: Drift of the champion's scores (``None`` without scores).
        target_drift: Drift of the target (``None`` unless ``labelled``).
        performance: The task's metrics (:func:`retrainflow.core.metrics.compute_metrics`)
            of the champion's scores on the labelled current rows (``None`` unless
            ``labelled`` and scored).
        reference_rows: Rows in the reference frame given.
        current_rows: Rows in the current frame given.
        seconds: Wall time of the computation.
        html: Evidently's HTML report, when rendered.
        share_threshold: The configured share threshold.
        key_features_drifted: The drifted ones among ``monitoring.drift.key_features``.
        engine: ``"stattest"`` (fast path) or ``"preset"`` (``DataDriftPreset``).
        sample_rows: Rows each side was sampled to (``None`` = not sampled).
        labelled_rows: Current rows with a target and a score (``performance``'s rows).
        skipped_columns: Features not tested (no finite value on one side).
    """

    columns: dict[str, ColumnDrift]
    drift_share: float
    drifted_columns: list[str]
    dataset_drift: bool
    prediction_drift: ColumnDrift | None
    target_drift: ColumnDrift | None
    performance: dict[str, float] | None
    reference_rows: int
    current_rows: int
    seconds: float
    html: str | None = field(default=None, repr=False)
    share_threshold: float = 0.5
    key_features_drifted: list[str] = field(default_factory=list)
    engine: str = "stattest"
    sample_rows: int | None = None
    labelled_rows: int | None = None
    skipped_columns: list[str] = field(default_factory=list)

    @property
    def drift_detected(self) -> bool:
        """Dataset drift, or drift of any key feature (``monitoring.drift.key_features``)."""
        return self.dataset_drift or bool(self.key_features_drifted)

    def summary(self) -> dict[str, Any]:
        """A small JSON-safe dict (plain floats/bools/strings, no HTML) for XCom and REST conf."""
        return {
            "dataset_drift": bool(self.dataset_drift),
            "drift_detected": bool(self.drift_detected),
            "drift_share": float(self.drift_share),
            "share_threshold": float(self.share_threshold),
            "drifted_columns": list(self.drifted_columns),
            "key_features_drifted": list(self.key_features_drifted),
            "columns": {name: c.to_dict() for name, c in self.columns.items()},
            "prediction_drift": None
            if self.prediction_drift is None
            else self.prediction_drift.to_dict(),
            "target_drift": None if self.target_drift is None else self.target_drift.to_dict(),
            "performance": None
            if self.performance is None
            else {k: finite_or_none(v) for k, v in self.performance.items()},
            "labelled_rows": None if self.labelled_rows is None else int(self.labelled_rows),
            "reference_rows": int(self.reference_rows),
            "current_rows": int(self.current_rows),
            "sample_rows": None if self.sample_rows is None else int(self.sample_rows),
            "skipped_columns": list(self.skipped_columns),
            "engine": self.engine,
            "seconds": round(float(self.seconds), 3),
            "html_rendered": self.html is not None,
        }


# -- Evidently plumbing ------------------------------------------------------------------


def _evidently() -> None:
    """Silence Evidently (and its telemetry) before it is imported."""
    settings.quiet_third_party()


def _column_type(kind: str) -> Any:
    from evidently.legacy.core import ColumnType

    return ColumnType.Numerical if kind == "num" else ColumnType.Categorical


def _registered_name(method: str | None) -> str | None:
    if method is None:
        return None
    return _METHOD_ALIASES.get(method, method)


def _supports(method: str, kind: str) -> bool:
    """Whether Evidently's test ``method`` is registered for columns of ``kind``."""
    from evidently.legacy.calculations.stattests.registry import (
        StatTestInvalidFeatureTypeError,
        StatTestNotFoundError,
        get_registered_stattest,
    )

    try:
        get_registered_stattest(method, _column_type(kind))
    except (StatTestNotFoundError, StatTestInvalidFeatureTypeError):
        return False
    return True


def _display_to_name() -> dict[str, str]:
    """Evidently's display names (``"K-S p_value"``) -> registered names (``"ks"``)."""
    from evidently.legacy.calculations.stattests.registry import _registered_stat_tests

    out: dict[str, str] = {}
    for name, by_type in _registered_stat_tests.items():
        for test in by_type.values():
            out[test.display_name] = name
    return out


def _drift_when(method: str, score: float, threshold: float, drifted: bool) -> DriftWhen:
    """Which side of the threshold Evidently called drift, read off its own verdict."""
    if math.isfinite(score) and score != threshold:
        return "below" if bool(drifted) == (score < threshold) else "at_or_above"
    return "below" if method in _P_VALUE_TESTS else "at_or_above"


@dataclass(frozen=True)
class _Plan:
    """One column to test: where its values come from and the test requested."""

    name: str
    kind: str  # "num" | "cat"
    method: str | None
    threshold: float | None


def _plans(config: PipelineConfig, *, with_prediction: bool, with_target: bool) -> list[_Plan]:
    """Resolve ``monitoring.drift`` into one request per column (None = Evidently's default).

    For the features, the config has already refused a test that does not support a
    column's type (``PipelineConfig`` checks ``monitoring.drift``): the global ``method``
    applies to every feature without a method of its own. The prediction and target
    columns get the global method when it supports their type, else Evidently's default.
    The global ``threshold`` goes with the global method (or with Evidently's default
    when no method is set). A per-column test of the wrong type raises ``ValueError``
    here too, for configs built without validation.
    """
    drift = config.monitoring.drift
    glob = _registered_name(drift.method)
    kinds = [(c, "num") for c in config.features.numeric] + [
        (c, "cat") for c in config.features.categorical
    ]
    if with_prediction:
        kinds.append((PREDICTION, "num"))
    if with_target:
        kinds.append((config.target, "cat" if config.task == "binary_classification" else "num"))
    plans: list[_Plan] = []
    for name, kind in kinds:
        method: str | None = glob if glob is not None and _supports(glob, kind) else None
        threshold = drift.threshold if method == glob else None
        override = drift.columns.get(name)
        if override is not None:
            if override.method is not None:
                wanted = _registered_name(override.method)
                if wanted is None or not _supports(wanted, kind):
                    raise ValueError(
                        f"monitoring.drift.columns.{name}.method: Evidently's '{override.method}' "
                        f"test does not support {'numeric' if kind == 'num' else 'categorical'} columns"
                    )
                if wanted != method:
                    method, threshold = wanted, None
            if override.threshold is not None:
                threshold = override.threshold
        plans.append(_Plan(name, kind, method, threshold))
    return plans


def _sample_positions(n: int, limit: int | None, seed: int) -> np.ndarray | None:
    """Sorted row positions of a sample of ``limit`` rows (``None`` = keep all)."""
    if limit is None or n <= limit:
        return None
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=limit, replace=False))


def _values(
    frame: pd.DataFrame | None,
    column: str,
    kind: str,
    pos: np.ndarray | None,
    scores: np.ndarray | None = None,
) -> pd.Series:
    """A column (or the scores) at ``pos``, cleaned like Evidently does (no inf/NaN)."""
    import pandas as pd

    if scores is not None:
        raw: Any = np.asarray(scores)
    else:
        assert frame is not None
        if column not in frame.columns:
            raise ValueError(f"column '{column}' is missing from the data")
        raw = frame[column].to_numpy()
    if pos is not None:
        raw = raw[pos]
    if kind == "num":
        try:
            values = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"column '{column}' is numeric in the config but holds non-numbers"
            ) from None
        return pd.Series(values[np.isfinite(values)], name=column)
    series = pd.Series(raw, name=column, dtype=object)
    return series[series.notna()].reset_index(drop=True)


def _run_stattest(plan: _Plan, ref: pd.Series, cur: pd.Series) -> ColumnDrift:
    """Evidently's test for one column — exactly what ``ValueDrift`` calls."""
    from evidently.legacy.calculations.stattests import get_stattest

    ctype = _column_type(plan.kind)
    test = get_stattest(ref, cur, ctype, plan.method)
    res = test(ref, cur, ctype, plan.threshold)
    score, threshold, drifted = (
        float(res.drift_score),
        float(res.actual_threshold),
        bool(res.drifted),
    )
    return ColumnDrift(
        test.name, score, threshold, drifted, _drift_when(test.name, score, threshold, drifted)
    )


def _evidently_frames(
    plans: list[_Plan], cols: dict[str, tuple[pd.Series, pd.Series]]
) -> tuple[Any, Any]:
    """Reference and current Evidently ``Dataset`` of the given columns, with explicit types."""
    import pandas as pd
    from evidently import DataDefinition, Dataset

    definition = DataDefinition(
        numerical_columns=[p.name for p in plans if p.kind == "num"],
        categorical_columns=[p.name for p in plans if p.kind == "cat"],
        datetime_columns=[],
        text_columns=[],
        unknown_columns=[],
        list_columns=[],
    )
    ref = pd.DataFrame({name: pair[0] for name, pair in cols.items()})
    cur = pd.DataFrame({name: pair[1] for name, pair in cols.items()})
    return (
        Dataset.from_pandas(ref, data_definition=definition),
        Dataset.from_pandas(cur, data_definition=definition),
    )


def _render_html(
    plans: list[_Plan],
    cols: dict[str, tuple[pd.Series, pd.Series]],
    results: dict[str, ColumnDrift],
) -> str:
    """Evidently's HTML: one ``ValueDrift`` per column with the already-resolved test."""
    from evidently import Report
    from evidently.metrics import ValueDrift

    metrics = [
        ValueDrift(
            column=p.name, method=results[p.name].method, threshold=results[p.name].threshold
        )
        for p in plans
        if p.name in results
    ]
    kept = [p for p in plans if p.name in results]
    ref, cur = _evidently_frames(kept, {p.name: cols[p.name] for p in kept})
    snapshot = Report(metrics, include_tests=True).run(cur, ref)
    return snapshot.get_html_str(as_iframe=False)


def _run_preset(
    config: PipelineConfig,
    plans: list[_Plan],
    reference: pd.DataFrame,
    current: pd.DataFrame,
    ref_scores: np.ndarray | None,
    cur_scores: np.ndarray | None,
    labelled: bool,
    render_html: bool,
) -> tuple[dict[str, ColumnDrift], str | None]:
    """``DataDriftPreset`` (+ ``ValueDrift`` of scores and target) on the full frames."""
    from evidently import Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    drift = config.monitoring.drift
    features = config.features.raw_columns
    glob = _registered_name(drift.method)
    cols: dict[str, tuple[pd.Series, pd.Series]] = {}
    for p in plans:
        is_pred = p.name == PREDICTION
        cols[p.name] = (
            _values(reference, p.name, p.kind, None, ref_scores if is_pred else None),
            _values(current, p.name, p.kind, None, cur_scores if is_pred else None),
        )
    per_method = {
        p.name: p.method for p in plans if p.name in drift.columns and p.method is not None
    }
    per_threshold = {
        p.name: p.threshold for p in plans if p.name in drift.columns and p.threshold is not None
    }
    num_ok = glob is not None and _supports(glob, "num")
    cat_ok = glob is not None and _supports(glob, "cat")
    preset = DataDriftPreset(
        columns=features,
        drift_share=drift.share_threshold,
        num_method=glob if num_ok else None,
        cat_method=glob if cat_ok else None,
        threshold=drift.threshold if glob is None else None,
        num_threshold=drift.threshold if num_ok else None,
        cat_threshold=drift.threshold if cat_ok else None,
        per_column_method=per_method or None,
        per_column_threshold=per_threshold or None,
    )
    extra = [
        ValueDrift(column=p.name, method=p.method, threshold=p.threshold)
        for p in plans
        if p.name not in features
    ]
    ref, cur = _evidently_frames(plans, cols)
    snapshot = Report([preset, *extra], include_tests=True).run(cur, ref)
    names = _display_to_name()
    results: dict[str, ColumnDrift] = {}
    for res in snapshot.metric_results.values():
        cfg = res.to_dict().get("config", {})
        if not cfg.get("type", "").endswith(":ValueDrift"):
            continue
        method = names.get(cfg["method"], cfg["method"])
        score, threshold = float(res.value), float(cfg["threshold"])
        drifted = any(str(getattr(t.status, "value", t.status)) == "FAIL" for t in res.tests)
        results[cfg["column"]] = ColumnDrift(
            method, score, threshold, drifted, _drift_when(method, score, threshold, drifted)
        )
    html = snapshot.get_html_str(as_iframe=False) if render_html else None
    return results, html


# -- public API -------------------------------------------------------------------------


def compute_drift(
    config: PipelineConfig,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    reference_scores: np.ndarray | None = None,
    current_scores: np.ndarray | None = None,
    labelled: bool = False,
    render_html: bool | Literal["on_drift"] = True,
    fast: bool = True,
    sample_rows: int | None = DEFAULT_SAMPLE_ROWS,
    seed: int = 0,
) -> DriftResult:
    """Drift of the features, the champion's scores and the target; performance on labels.

    Args:
        config: The pipeline; ``features.numeric``/``categorical`` are tested, with
            ``monitoring.drift`` (method, threshold, per-column overrides, share threshold,
            key features); ``task`` and ``target`` for target drift and performance.
        reference: Reference rows (e.g. a sample of the champion's training window).
        current: The newest rows.
        reference_scores: The champion's scores on ``reference`` (same order and length).
        current_scores: The champion's scores on ``current``; with both, prediction drift
            is tested as a numeric column ``prediction``.
        labelled: ``current`` holds the target: adds target drift and, with
            ``current_scores``, the task's metrics on the rows whose target is known.
        render_html: Also render Evidently's HTML report (costs seconds; off for checks
            that only need the decision). ``"on_drift"``: only when a column, the scores or
            the target drifted (fast path; the preset renders in the same pass, so it
            renders whenever this is not ``False``).
        fast: Sampled Evidently stat tests (default); ``False`` runs Evidently's
            ``DataDriftPreset`` on the full frames (slow; Evidently's reference behaviour).
        sample_rows: Fast path: rows each side is sampled to (``None`` = all rows).
        seed: Seed of the sampling.

    Returns:
        A :class:`DriftResult`.

    Raises:
        ValueError: a configured column is missing or mistyped, scores do not match their
            frame's length, or a per-column test does not support its column's type.
    """
    start = time.perf_counter()
    _evidently()
    if (reference_scores is None) != (current_scores is None):
        log.info("prediction drift needs both reference_scores and current_scores; not tested")
    for frame, scores, side in (
        (reference, reference_scores, "reference"),
        (current, current_scores, "current"),
    ):
        if scores is not None and len(scores) != len(frame):
            raise ValueError(f"{side}_scores has {len(scores)} values for {len(frame)} {side} rows")
    with_prediction = reference_scores is not None and current_scores is not None
    with_target = (
        labelled and config.target in current.columns and config.target in reference.columns
    )
    if labelled and not with_target:
        log.warning("labelled=True but '%s' is not in both frames: no target drift", config.target)
    plans = _plans(config, with_prediction=with_prediction, with_target=with_target)
    drift = config.monitoring.drift

    skipped: list[str] = []
    if fast:
        ref_pos = _sample_positions(len(reference), sample_rows, seed)
        cur_pos = _sample_positions(len(current), sample_rows, seed + 1)
        cols: dict[str, tuple[pd.Series, pd.Series]] = {}
        results: dict[str, ColumnDrift] = {}
        for p in plans:
            is_pred = p.name == PREDICTION
            ref = _values(reference, p.name, p.kind, ref_pos, reference_scores if is_pred else None)
            cur = _values(current, p.name, p.kind, cur_pos, current_scores if is_pred else None)
            if ref.empty or cur.empty:
                skipped.append(p.name)
                continue
            cols[p.name] = (ref, cur)
            results[p.name] = _run_stattest(p, ref, cur)
        wanted = render_html is True or (
            render_html == "on_drift" and any(r.drifted for r in results.values())
        )
        html = _render_html(plans, cols, results) if wanted else None
        engine = "stattest"
        sampled = (
            sample_rows
            if sample_rows is not None and max(len(reference), len(current)) > sample_rows
            else None
        )
    else:
        results, html = _run_preset(
            config,
            plans,
            reference,
            current,
            reference_scores,
            current_scores,
            with_target,
            render_html is not False,
        )
        engine, sampled = "preset", None

    features = [c for c in config.features.raw_columns if c in results]
    skipped += [c for c in config.features.raw_columns if c not in results and c not in skipped]
    feature_results = {c: results[c] for c in features}
    drifted = [c for c in features if feature_results[c].drifted]
    share = len(drifted) / len(features) if features else 0.0

    performance: dict[str, float] | None = None
    labelled_rows: int | None = None
    if labelled and current_scores is not None and config.target in current.columns:
        performance, labelled_rows = _performance(config, current, current_scores)

    return DriftResult(
        columns=feature_results,
        drift_share=share,
        drifted_columns=drifted,
        dataset_drift=bool(features) and share >= drift.share_threshold,
        prediction_drift=results.get(PREDICTION) if with_prediction else None,
        target_drift=results.get(config.target) if with_target else None,
        performance=performance,
        reference_rows=len(reference),
        current_rows=len(current),
        seconds=time.perf_counter() - start,
        html=html,
        share_threshold=drift.share_threshold,
        key_features_drifted=[c for c in drift.key_features if c in drifted],
        engine=engine,
        sample_rows=sampled,
        labelled_rows=labelled_rows,
        skipped_columns=skipped,
    )


def _performance(
    config: PipelineConfig, current: pd.DataFrame, scores: np.ndarray
) -> tuple[dict[str, float] | None, int]:
    """The task's metrics on the current rows whose target is known.

    These are the evaluation stage's own metrics (:func:`compute_metrics`), not
    Evidently's classification/regression metrics, so that the policy compares a live
    value with the champion's gate-time value computed the same way.
    """
    import pandas as pd

    from retrainflow.core.metrics import compute_metrics

    y = pd.to_numeric(current[config.target], errors="coerce").to_numpy(dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    known = np.isfinite(y) & np.isfinite(s)
    rows = int(known.sum())
    if rows < 2:
        return None, rows
    return compute_metrics(config.task, y[known], s[known]), rows


def save(result: DriftResult, stage_dir: StageDir) -> dict[str, str]:
    """Write ``drift_summary.json`` (and ``drift_report.html`` if rendered) atomically.

    Returns:
        ``{"summary": path}`` plus ``{"html": path}`` when the report was rendered.
    """
    paths = {"summary": str(stage_dir.write_json("drift_summary.json", result.summary()))}
    if result.html is not None:
        paths["html"] = str(stage_dir.write_text("drift_report.html", result.html))
    return paths
