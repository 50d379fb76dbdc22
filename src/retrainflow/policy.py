"""The retraining trigger policy: should this monitoring check start a retrain, and how?

Plain, typed, pure Python: no I/O and no clock reads (``now`` is an argument), so
every decision can be replayed from the JSON of its inputs. The monitoring DAG
(``monitor__<pipeline>``) gathers a :class:`CheckResult`, the champion's
:class:`ChampionInfo` and the :class:`PolicyState` history, calls :func:`decide`,
and starts ``retrain__<pipeline>`` with ``mode``/``reason_codes``/``details`` of the
:class:`Decision` when ``trigger`` is true.

Schedules: which config does what
=================================

Every retraining schedule is expressed by config alone (``schedule`` is the retrain
DAG's own Airflow schedule; ``monitoring`` drives :func:`decide`):

====================  ====================  =============================================
Schedule              ``schedule``          ``monitoring`` (what starts a retrain)
====================  ====================  =============================================
interval              ``"@weekly"``/cron    ``enabled: false`` or ``policy.triggers: []``
                                            (only the retrain DAG's own schedule)
performance           ``null``              ``policy.triggers: [performance]``
                                            (primary metric dropped vs the gate)
data change           ``null``              ``policy.triggers: [drift]`` and/or
                                            ``[volume]`` (features drifted / enough new
                                            labelled rows arrived)
staleness             ``null``              ``policy.triggers: [staleness]``
                                            (champion's data is too old)
on demand             ``null``              ``policy.triggers: []`` (only
                                            ``decide(..., on_demand=True)``)
====================  ====================  =============================================

Schedules combine: ``schedule: "@monthly"`` plus ``triggers: [drift]`` retrains monthly
*and* on drift (the hygiene guards below only govern monitoring-driven triggers).

Adoption stages
---------------

========================  ============  ==========================  =================  ===========
Stage                     ``schedule``  ``monitoring``              ``training.mode``  policy.mode
========================  ============  ==========================  =================  ===========
1 manual, stateless       ``null``      ``enabled: false``          ``stateless``      --
2 scheduled, stateless    ``@weekly``   ``enabled: false``          ``stateless``      --
3 scheduled, stateful     ``@daily``    ``enabled: false``          ``auto`` or        --
                                                                    ``warm_start``
4 event-driven, stateful  ``null``      ``enabled: true``,          ``auto``           ``auto``
                                        ``triggers: [drift, ...]``
========================  ============  ==========================  =================  ===========

Stage 1 retrains only when someone runs the retrain DAG (``retrainflow retrain``); stage 4
retrains when :func:`decide` says so, in the mode it picks.

Rules (each only when listed in ``monitoring.policy.triggers``)
---------------------------------------------------------------

* ``drift`` / ``drift_key_feature``: the check drifts when Evidently's dataset verdict is
  true (reason ``drift``) or any of ``drift.key_features`` drifted (reason
  ``drift_key_feature``). With M-of-N (``policy.drift_m`` of the last ``policy.drift_n``
  checks, the current one included), the current check must drift *and* at least M checks
  of the window must drift; otherwise ``blocked_by`` gets ``m_of_n`` (only when the current
  check drifted). History only confirms current evidence: a calm check never fires on past
  drift. Past checks with fewer than ``min_samples`` rows do not count as drifting.
* ``performance``: the champion's primary metric on the current labelled rows is worse
  than its gate-time value by more than ``policy.performance_drop`` (direction:
  :func:`retrainflow.core.metrics.improvement`, as in the gate).
* ``volume``: at least ``policy.min_new_rows`` new labelled rows since the champion.
* ``staleness``: at least ``policy.max_staleness_days`` calendar days between the
  champion's ``data_end`` and ``now``.
* ``no_champion``: nothing is registered yet: always a (stateless) trigger, whatever the
  triggers list; the other rules are not evaluated (there is nothing to compare against).
* ``on_demand``: always allowed (``decide(..., on_demand=True)``).

``monitoring.enabled: false`` makes every automatic rule inactive (only ``on_demand`` and
``no_champion`` remain).

Guards
------

* ``min_samples``: fewer than ``policy.min_samples`` current rows -> drift and
  performance are not evaluated (``blocked_by: min_samples`` when one of them is in
  ``triggers``). Performance additionally needs that many *labelled* rows, since the
  metric is measured on those. Volume, staleness, on demand and no-champion still work.
* Hygiene, applied only when some reason fired; each sets ``trigger`` false and adds its
  code to ``blocked_by``:

  - ``single_flight``: a retrain is already queued or running (applies to on demand too:
    two retrains of one pipeline would race for the registry).
  - ``cooldown``: the latest trigger is less than ``policy.cooldown_hours`` before ``now``.
  - ``max_retrains_per_week``: the number of triggers in the 7 days before ``now`` is at
    least the cap.

  An on-demand request **bypasses cooldown and the weekly cap**: a human asked for this
  retrain explicitly, and the guards exist to stop automatic triggers from flapping, not
  to overrule an operator.

``reasons`` lists every rule that fired even when hygiene blocked the trigger, so a
blocked decision still says what it would have done. ``blocked_by`` lists every guard
that withheld a rule or the trigger, so it may be non-empty while ``trigger`` is true
(e.g. drift withheld by ``min_samples`` while volume fired).

Mode
----

Decided by :func:`retrainflow.core.modes.resolve_mode` (the rule the retrain's pull and
the backtest use too), before any data is read: ``policy.mode`` (else ``training.mode``)
by default; ``stateless`` when there is no champion, the schema changed, the drift share
is at least ``drift.severe_share`` (only trusted with ``min_samples`` rows), the
estimator cannot continue a fitted model or the champion reached ``max_warm_starts``;
``auto`` stays ``auto`` and the pull decides on the new rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

from retrainflow.config import PipelineConfig
from retrainflow.core.metrics import finite_or_none, improvement, lower_is_better, margin
from retrainflow.core.modes import ChampionFacts, resolve_mode
from retrainflow.manifest import Manifest

__all__ = [
    "BLOCK_CODES",
    "REASON_CODES",
    "ChampionInfo",
    "CheckResult",
    "Decision",
    "PolicyState",
    "decide",
]

#: Reason codes, in the order they appear in :attr:`Decision.reasons`.
REASON_CODES = (
    "no_champion",
    "on_demand",
    "drift",
    "drift_key_feature",
    "performance",
    "volume",
    "staleness",
)
#: Guard codes, in the order they appear in :attr:`Decision.blocked_by`.
BLOCK_CODES = ("min_samples", "m_of_n", "single_flight", "cooldown", "max_retrains_per_week")
#: Guards that stop a trigger after some rule fired (the others withhold a single rule).
_HYGIENE_CODES = frozenset({"single_flight", "cooldown", "max_retrains_per_week"})


_WEEK = timedelta(days=7)


@dataclass(frozen=True)
class CheckResult(Manifest):
    """What one monitoring check measured.

    Attributes:
        checked_at: ISO datetime of the check.
        current_rows: Rows in the current window.
        labelled_rows: Rows of the current window whose labels have arrived.
        drift_share: Share of drifted feature columns (0..1), None when not measured.
        drifted_columns: Names of the drifted feature columns.
        dataset_drift: Evidently's dataset-drift verdict at ``drift.share_threshold``.
        prediction_drift: Whether the champion's predictions drifted.
        metric: Champion's primary metric on the current labelled rows.
        schema_changed: The current data's columns or types differ from the reference.
    """

    checked_at: str
    current_rows: int
    labelled_rows: int
    drift_share: float | None
    drifted_columns: list[str]
    dataset_drift: bool | None
    prediction_drift: bool | None
    metric: float | None
    schema_changed: bool = False

    strict = True

    def __post_init__(self) -> None:
        if self.current_rows < 0 or self.labelled_rows < 0:
            raise ValueError("current_rows and labelled_rows must be >= 0")
        if self.drift_share is not None and not 0 <= self.drift_share <= 1:
            raise ValueError(f"drift_share must be within [0, 1]; got {self.drift_share}")
        object.__setattr__(self, "drifted_columns", list(self.drifted_columns))


@dataclass(frozen=True)
class ChampionInfo(Manifest):
    """The current champion, as far as the policy needs it.

    Attributes:
        version: Registered model version; None when there is no champion.
        gate_metric: The champion's primary metric measured at its gate.
        data_end: ISO date of the end of the champion's training data.
        estimator: The champion's estimator (None: unknown; the mode rule is then skipped).
        warm_starts_since_full: Its consecutive warm starts since the last full fit.
    """

    version: str | None
    gate_metric: float | None
    data_end: str | None
    estimator: str | None = None
    warm_starts_since_full: int = 0

    strict = True


@dataclass(frozen=True)
class PolicyState(Manifest):
    """History the caller assembles for one decision.

    Attributes:
        previous_checks: Earlier checks, oldest first, *not* including the current one.
        trigger_times: ISO datetimes of past retrain triggers (any order).
        retrain_active: A retrain run of this pipeline is queued or running.
        new_labelled_rows_since_champion: Labelled rows after the champion's data end.
    """

    previous_checks: list[CheckResult] = field(default_factory=list)
    trigger_times: list[str] = field(default_factory=list)
    retrain_active: bool = False
    new_labelled_rows_since_champion: int = 0

    strict = True
    nested: ClassVar[dict[str, type[Manifest]]] = {"previous_checks": CheckResult}

    def __post_init__(self) -> None:
        object.__setattr__(self, "previous_checks", list(self.previous_checks))
        object.__setattr__(self, "trigger_times", list(self.trigger_times))


@dataclass(frozen=True)
class Decision(Manifest):
    """The outcome of :func:`decide`.

    Attributes:
        trigger: Start a retrain now.
        reasons: Reason codes that fired (also when hygiene blocked the trigger).
        blocked_by: Guard codes that withheld a rule or the trigger.
        mode: Mode for the retrain: ``stateless``, ``warm_start`` or ``auto``.
        mode_reason: Why that mode.
        details: The numbers behind each rule and guard (JSON-safe), keyed by name.
    """

    trigger: bool
    reasons: list[str]
    blocked_by: list[str]
    mode: str
    mode_reason: str
    details: dict[str, Any] = field(default_factory=dict)

    strict = True

    def explain(self) -> str:
        """Human-readable account: a verdict line, then one line per rule and guard.

        Returns:
            Newline-separated text.
        """
        if self.trigger:
            head = (
                f"TRIGGER retrain ({', '.join(self.reasons)}), "
                f"mode {self.mode} ({self.mode_reason})"
            )
        elif self.reasons:
            hygiene = [b for b in self.blocked_by if b in _HYGIENE_CODES]
            head = (
                f"NO TRIGGER: {', '.join(self.reasons)} fired but blocked by {', '.join(hygiene)}"
            )
        else:
            head = "NO TRIGGER: no rule fired"
            if self.blocked_by:
                head += f" (withheld by {', '.join(self.blocked_by)})"
        lines = [head]
        for name, info in self.details.items():
            if isinstance(info, dict) and "note" in info:
                lines.append(f"  {name}: [{info.get('status', '?')}] {info['note']}")
        return "\n".join(lines)


def _utc(value: datetime) -> datetime:
    """Aware UTC datetime; a naive one is taken to be UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _parse_dt(value: str) -> datetime:
    """Parse an ISO datetime (or date) string to aware UTC."""
    return _utc(datetime.fromisoformat(value))


def _parse_date(value: str) -> date:
    """Parse an ISO date (or datetime, whose UTC date is used)."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        return _parse_dt(value).date()


def _num(x: float | None) -> float | None:
    """Round for display; None, NaN and infinities become None (JSON-safe)."""
    value = finite_or_none(x)
    return None if value is None else round(value, 6)


def _drifting(
    check: CheckResult, key_features: list[str], share_threshold: float
) -> tuple[bool, bool]:
    """(dataset drift, key-feature drift) of one check.

    Falls back to ``drift_share >= share_threshold`` when Evidently's verdict is missing.
    """
    dataset = check.dataset_drift
    if dataset is None:
        dataset = check.drift_share is not None and check.drift_share >= share_threshold
    key = any(c in check.drifted_columns for c in key_features)
    return bool(dataset), key


# -- the decision -------------------------------------------------------------------------------
def decide(
    config: PipelineConfig,
    check: CheckResult,
    champion: ChampionInfo,
    state: PolicyState,
    *,
    now: datetime,
    on_demand: bool = False,
) -> Decision:
    """Decide whether to retrain, and in which mode.

    Args:
        config: The pipeline config (``monitoring`` section and ``training.estimator``).
        check: The current monitoring check.
        champion: The current champion (``version=None`` when there is none).
        state: History: earlier checks, past trigger times, whether a retrain is active.
        now: The decision time (naive datetimes are taken as UTC).
        on_demand: A human asked for a retrain; bypasses cooldown and the weekly cap,
            not single flight.

    Returns:
        The decision, with reasons, guards, mode and the numbers behind each rule.
    """
    mon = config.monitoring
    pol = mon.policy
    now = _utc(now)
    active = set(pol.triggers) if mon.enabled else set()
    reasons: set[str] = set()
    blocked: set[str] = set()
    details: dict[str, Any] = {}
    enough_rows = check.current_rows >= pol.min_samples

    if on_demand:
        reasons.add("on_demand")
        details["on_demand"] = {"status": "fired", "note": "requested by an operator"}

    has_champion = champion.version is not None
    if not has_champion:
        reasons.add("no_champion")
        details["no_champion"] = {
            "status": "fired",
            "note": "no champion is registered: train a first model (other rules skipped)",
        }
    else:
        if not mon.enabled:
            details["monitoring"] = {
                "status": "off",
                "note": "monitoring.enabled is false: automatic rules are inactive",
            }
        # min_samples guard ------------------------------------------------------------------
        guarded = sorted(active & {"drift", "performance"})
        if guarded:
            if enough_rows:
                status, note = "ok", f"{check.current_rows} current rows >= {pol.min_samples}"
            else:
                status = "blocked"
                note = (
                    f"{check.current_rows} current rows < {pol.min_samples}: "
                    f"{' and '.join(guarded)} not evaluated"
                )
                blocked.add("min_samples")
            details["min_samples"] = {
                "status": status,
                "current_rows": check.current_rows,
                "labelled_rows": check.labelled_rows,
                "min_samples": pol.min_samples,
                "note": note,
            }

        if "drift" in active and enough_rows:
            details["drift"] = _drift_rule(config, check, state, reasons, blocked)
        if "performance" in active and enough_rows:
            details["performance"] = _performance_rule(config, check, champion, reasons, blocked)
        if "volume" in active:
            n = state.new_labelled_rows_since_champion
            fired = n >= pol.min_new_rows
            if fired:
                reasons.add("volume")
            details["volume"] = {
                "status": "fired" if fired else "not fired",
                "new_labelled_rows": n,
                "min_new_rows": pol.min_new_rows,
                "note": f"{n} new labelled rows since the champion "
                f"({'>=' if fired else '<'} {pol.min_new_rows})",
            }
        if "staleness" in active:
            details["staleness"] = _staleness_rule(config, champion, now, reasons)
        off = [r for r in ("drift", "performance", "volume", "staleness") if r not in active]
        if off and mon.enabled:
            details["disabled"] = {
                "status": "off",
                "rules": off,
                "note": f"not in policy.triggers: {', '.join(off)}",
            }

    if reasons:
        _hygiene(config, state, now, on_demand, blocked, details)
    hygiene_blocked = bool(blocked & _HYGIENE_CODES)
    trigger = bool(reasons) and not hygiene_blocked

    mode, mode_reason = _mode(config, check, champion, enough_rows)
    details["mode"] = {
        "status": mode,
        "mode_reason": mode_reason,
        "note": f"{mode} ({mode_reason})",
    }

    return Decision(
        trigger=trigger,
        reasons=[r for r in REASON_CODES if r in reasons],
        blocked_by=[b for b in BLOCK_CODES if b in blocked],
        mode=mode,
        mode_reason=mode_reason,
        details=details,
    )


def _drift_rule(
    config: PipelineConfig,
    check: CheckResult,
    state: PolicyState,
    reasons: set[str],
    blocked: set[str],
) -> dict[str, Any]:
    """Evaluate the drift rule (with M-of-N); mutates ``reasons``/``blocked``."""
    pol = config.monitoring.policy
    dcfg = config.monitoring.drift
    dataset, key = _drifting(check, dcfg.key_features, dcfg.share_threshold)
    current = dataset or key
    history = state.previous_checks[-(pol.drift_n - 1) :] if pol.drift_n > 1 else []
    count = int(current) + sum(
        1
        for c in history
        if c.current_rows >= pol.min_samples
        and any(_drifting(c, dcfg.key_features, dcfg.share_threshold))
    )
    window = len(history) + 1
    key_hit = sorted(c for c in check.drifted_columns if c in dcfg.key_features)
    confirmed = current and count >= pol.drift_m
    if confirmed:
        if dataset:
            reasons.add("drift")
        if key:
            reasons.add("drift_key_feature")
        status = "fired"
    elif current:
        blocked.add("m_of_n")
        status = "blocked"
    else:
        status = "not fired"
    share = _num(check.drift_share)
    what = []
    if dataset:
        what.append(f"dataset drift (share {share} vs threshold {dcfg.share_threshold})")
    if key:
        what.append(f"key feature(s) {key_hit} drifted")
    now_text = "; ".join(what) if what else f"no drift (share {share})"
    return {
        "status": status,
        "dataset_drift": dataset,
        "key_features_drifted": key_hit,
        "drift_share": share,
        "share_threshold": dcfg.share_threshold,
        "drifted_columns": list(check.drifted_columns),
        "prediction_drift": check.prediction_drift,
        "drifting_checks": count,
        "window_checks": window,
        "drift_m": pol.drift_m,
        "drift_n": pol.drift_n,
        "note": f"{now_text}; {count} of the last {window} checks drifted "
        f"(need {pol.drift_m} of {pol.drift_n})",
    }


def _performance_rule(
    config: PipelineConfig,
    check: CheckResult,
    champion: ChampionInfo,
    reasons: set[str],
    blocked: set[str],
) -> dict[str, Any]:
    """Evaluate the performance rule; mutates ``reasons``/``blocked``."""
    pol = config.monitoring.policy
    metric_name = config.evaluation.primary_metric
    base: dict[str, Any] = {
        "metric_name": metric_name,
        "metric": _num(check.metric),
        "gate_metric": _num(champion.gate_metric),
        "lower_is_better": lower_is_better(metric_name),
        "performance_drop": pol.performance_drop,
        "labelled_rows": check.labelled_rows,
    }
    metric = _num(check.metric)
    gate = _num(champion.gate_metric)
    if metric is None or gate is None:
        missing = "current metric" if metric is None else "champion gate metric"
        return {**base, "status": "no data", "drop": None, "note": f"no {missing}: not evaluated"}
    if check.labelled_rows < pol.min_samples:
        blocked.add("min_samples")
        return {
            **base,
            "status": "blocked",
            "drop": None,
            "note": f"{check.labelled_rows} labelled rows < {pol.min_samples}: not evaluated",
        }
    drop = improvement(metric_name, gate, metric)  # how much better the gate-time value was
    tolerance = margin(pol.performance_drop, gate)
    fired = drop > tolerance
    if fired:
        reasons.add("performance")
    direction = "lower" if lower_is_better(metric_name) else "higher"
    what = (
        f"{pol.performance_drop} = {_num(tolerance)}"
        if isinstance(pol.performance_drop, str)
        else f"{pol.performance_drop}"
    )
    return {
        **base,
        "status": "fired" if fired else "not fired",
        "drop": _num(drop),
        "tolerance": _num(tolerance),
        "note": f"{metric_name} {metric} vs gate {gate} ({direction} is better): "
        f"worse by {_num(drop)} ({'>' if fired else '<='} tolerance {what})",
    }


def _staleness_rule(
    config: PipelineConfig, champion: ChampionInfo, now: datetime, reasons: set[str]
) -> dict[str, Any]:
    """Evaluate the staleness rule; mutates ``reasons``."""
    limit = config.monitoring.policy.max_staleness_days
    if champion.data_end is None:
        return {
            "status": "no data",
            "age_days": None,
            "max_staleness_days": limit,
            "note": "champion has no data_end: not evaluated",
        }
    age = (now.date() - _parse_date(champion.data_end)).days
    fired = age >= limit
    if fired:
        reasons.add("staleness")
    return {
        "status": "fired" if fired else "not fired",
        "data_end": champion.data_end,
        "age_days": age,
        "max_staleness_days": limit,
        "note": f"champion data ends {champion.data_end}, {age} days ago "
        f"({'>=' if fired else '<'} {limit})",
    }


def _hygiene(
    config: PipelineConfig,
    state: PolicyState,
    now: datetime,
    on_demand: bool,
    blocked: set[str],
    details: dict[str, Any],
) -> None:
    """Apply single flight, cooldown and the weekly cap; mutates ``blocked``/``details``."""
    pol = config.monitoring.policy
    if state.retrain_active:
        blocked.add("single_flight")
        details["single_flight"] = {
            "status": "blocked",
            "note": "a retrain is already queued or running",
        }
    else:
        details["single_flight"] = {"status": "ok", "note": "no retrain is queued or running"}

    times = sorted(_parse_dt(t) for t in state.trigger_times)
    bypass = " (bypassed: on demand)" if on_demand else ""

    if times:
        hours = (now - times[-1]).total_seconds() / 3600
        cooling = hours < pol.cooldown_hours
        note = f"last trigger {_num(hours)} h ago (cooldown {pol.cooldown_hours} h)"
    else:
        hours, cooling = None, False
        note = f"no earlier trigger (cooldown {pol.cooldown_hours} h)"
    status = "ok"
    if cooling:
        status = "bypassed" if on_demand else "blocked"
        if not on_demand:
            blocked.add("cooldown")
    details["cooldown"] = {
        "status": status,
        "hours_since_last_trigger": _num(hours),
        "cooldown_hours": pol.cooldown_hours,
        "note": note + (bypass if cooling else ""),
    }

    recent = sum(1 for t in times if t > now - _WEEK)
    capped = recent >= pol.max_retrains_per_week
    status = "ok"
    if capped:
        status = "bypassed" if on_demand else "blocked"
        if not on_demand:
            blocked.add("max_retrains_per_week")
    details["max_retrains_per_week"] = {
        "status": status,
        "triggers_last_7_days": recent,
        "max_retrains_per_week": pol.max_retrains_per_week,
        "note": f"{recent} triggers in the last 7 days (cap {pol.max_retrains_per_week})"
        + (bypass if capped else ""),
    }


def _mode(
    config: PipelineConfig, check: CheckResult, champion: ChampionInfo, enough_rows: bool
) -> tuple[str, str]:
    """The mode the triggered retrain is asked to run in, and why.

    :func:`retrainflow.core.modes.resolve_mode`, before any data is read: the request is
    ``policy.mode`` (else ``training.mode``); a champion rule (no champion, schema change,
    severe drift on enough rows, an estimator that cannot warm start, the full-refit
    limit) may turn it into ``stateless``; ``auto`` otherwise stays ``auto`` for the
    retrain's pull to decide on the data.
    """
    request, why = (config.monitoring.policy.mode, "policy.mode")
    if request is None:
        request, why = config.training.mode, "training.mode"
    facts = None
    if champion.version is not None:
        facts = ChampionFacts(
            version=champion.version,
            estimator=champion.estimator,
            data_end=_parse_date(champion.data_end) if champion.data_end else None,
            warm_starts_since_full=champion.warm_starts_since_full,
        )
    decision = resolve_mode(
        config,
        request,
        facts,
        schema_change=check.schema_changed,
        drift_share=check.drift_share if enough_rows else None,
        strict=False,
    )
    return decision.mode.value, (why if decision.mode == request else decision.reason)
