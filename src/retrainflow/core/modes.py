"""Which training mode a retrain runs in, and why — decided in this one place.

:func:`resolve_mode` is called by the pull stage (with the data in hand), by the
trigger policy (before any data is read, to tell the retrain what to do) and by
the backtest's strategies (``hybrid`` *is* ``auto``; ``policy`` replays the
monitoring DAG). Its inputs are the request, the champion
(:class:`ChampionFacts`), the new rows since the champion's data end and the
schema verdict; its output is a :class:`ModeDecision` (mode and reason).

The rules, in order:

* ``stateless`` requested: stateless.
* ``warm_start`` requested: continue the champion. Refused (:class:`ModeError`)
  when there is no champion, the estimator cannot continue a fitted model, the
  champion used another estimator, or the champion's data already reaches past
  this run's training window (the message names the champion's data end). A
  schema change vs the champion still forces a stateless fit: continuing a model
  on columns it was not trained on is never right.
* ``auto`` requested: stateless when there is no champion, the estimator cannot
  warm start, the champion used another estimator, the schema changed, the drift
  is severe (``monitoring.drift.severe_share``; the policy passes it),
  ``max_warm_starts`` warm starts have passed since the last full fit, the
  champion's data end is not before this run's training end (nothing new to
  continue on), or the new rows are fewer than ``expectations.min_rows`` (a warm
  start on them could not pass validation). Otherwise a warm start. No new rows
  *at all* stays a warm start, so that the pull's empty-window error reports a
  missing feed instead of hiding it behind a full refit.

Rules that need facts the caller does not have yet are skipped: the trigger
policy knows no training window, so an ``auto`` request that no champion rule
turns into ``stateless`` stays ``auto`` (the retrain's pull decides on the data).
With ``strict=False`` (the policy) a warm-start request that cannot be honoured
becomes stateless instead of an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from retrainflow.exceptions import ModeError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from retrainflow.config import PipelineConfig


class Mode(StrEnum):
    """A training mode: requested (all three) or resolved (``stateless`` / ``warm_start``)."""

    STATELESS = "stateless"
    WARM_START = "warm_start"
    AUTO = "auto"


#: Estimators that can continue a fitted model on new rows.
WARM_STARTABLE = frozenset({"lightgbm", "sgd"})


@dataclass(frozen=True)
class ChampionFacts:
    """What the mode decision needs to know about the model a warm start would continue.

    Attributes:
        version: Its version (registry) or step label (backtest), for messages.
        estimator: The estimator it was trained with (None: not known to the caller).
        data_end: Exclusive end of the data it was trained on.
        warm_starts_since_full: Consecutive warm starts since its last stateless fit.
        schema: Its training data's schema (:func:`~retrainflow.core.schema.schema_of`).
    """

    version: str
    estimator: str | None
    data_end: date | None
    warm_starts_since_full: int = 0
    schema: dict[str, str] | None = None

    @classmethod
    def from_tags(
        cls, version: str, tags: Mapping[str, str], schema: dict[str, str] | None = None
    ) -> ChampionFacts:
        """From a registered version's lineage tags (``estimator``, ``data_end``, ...)."""
        end = tags.get("data_end") or None
        return cls(
            version=str(version),
            estimator=tags.get("estimator") or None,
            data_end=date.fromisoformat(end) if end else None,
            warm_starts_since_full=int(tags.get("warm_starts_since_full") or 0),
            schema=schema,
        )


@dataclass(frozen=True)
class ModeDecision:
    """The mode a retrain runs in and why (the reason is recorded in lineage)."""

    mode: Mode
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"mode": str(self.mode), "reason": self.reason}


def parse_mode(value: str | Mode) -> Mode:
    """``value`` as a :class:`Mode`.

    Raises:
        ModeError: an unknown mode (the message lists the known ones).
    """
    try:
        return Mode(value)
    except ValueError:
        known = ", ".join(m.value for m in Mode)
        raise ModeError(f"Unknown mode '{value}'; use one of {known}.") from None


def resolve_mode(
    config: PipelineConfig,
    requested: str | Mode,
    champion: ChampionFacts | None,
    *,
    train_end: date | None = None,
    new_rows: int | None = None,
    schema_change: Mapping[str, Any] | bool | None = None,
    drift_share: float | None = None,
    max_warm_starts: int | None = None,
    strict: bool = True,
) -> ModeDecision:
    """The mode to train in and why (see the module doc for the rules).

    Args:
        config: The pipeline (estimator, ``training.warm_start``, ``expectations.min_rows``,
            ``monitoring.drift.severe_share``).
        requested: ``stateless``, ``warm_start`` or ``auto``.
        champion: The model a warm start would continue; None when there is none.
        train_end: Exclusive end of this run's training rows (the holdout's start); None
            when not known yet (the trigger policy).
        new_rows: Rows in ``[champion.data_end, train_end)``; None when not read yet.
        schema_change: The schema verdict vs the champion: the difference
            (:func:`~retrainflow.core.schema.schema_diff`) or True; None/False: unchanged.
        drift_share: Share of drifted features measured by a monitoring check.
        max_warm_starts: Overrides ``training.warm_start.max_warm_starts`` (backtest
            strategies with their own full-refit cadence).
        strict: Refuse a warm-start request that cannot be honoured (:class:`ModeError`);
            False falls back to stateless.

    Returns:
        The decision; ``Mode.AUTO`` only when ``train_end`` is None and no rule decided.

    Raises:
        ModeError: an unknown mode, or (``strict``) a warm start that cannot be honoured.
    """
    request = parse_mode(requested)
    if request is Mode.STATELESS:
        return ModeDecision(Mode.STATELESS, "requested")
    cannot = _why_no_warm_start(config, champion, train_end)
    if request is Mode.WARM_START:
        if cannot is not None:
            if strict:
                raise ModeError(cannot.refusal)
            return ModeDecision(Mode.STATELESS, f"warm start impossible: {cannot.reason}")
        if schema_change:
            assert champion is not None
            return ModeDecision(Mode.STATELESS, _schema_reason(champion, schema_change))
        return ModeDecision(Mode.WARM_START, "requested")
    if cannot is not None:
        return ModeDecision(Mode.STATELESS, cannot.reason)
    assert champion is not None
    if schema_change:
        return ModeDecision(Mode.STATELESS, _schema_reason(champion, schema_change))
    severe = config.monitoring.drift.severe_share
    if drift_share is not None and drift_share >= severe:
        return ModeDecision(Mode.STATELESS, f"severe drift (share {drift_share:.2f} >= {severe})")
    limit = (
        config.training.warm_start.max_warm_starts if max_warm_starts is None else max_warm_starts
    )
    done = champion.warm_starts_since_full
    if done >= limit:
        return ModeDecision(
            Mode.STATELESS, f"{done} warm starts since the last full fit (max {limit})"
        )
    if train_end is None:
        return ModeDecision(Mode.AUTO, "decided by the retrain from the new rows")
    if new_rows is not None and 0 < new_rows < config.expectations.min_rows:
        return ModeDecision(
            Mode.STATELESS,
            f"only {new_rows} rows since the champion's data end "
            f"(< expectations.min_rows {config.expectations.min_rows})",
        )
    return ModeDecision(Mode.WARM_START, f"champion available (warm start {done + 1} of {limit})")


def _schema_reason(champion: ChampionFacts, change: Mapping[str, Any] | bool) -> str:
    text = f"schema changed vs champion {champion.version}"
    return f"{text}: {dict(change)}" if not isinstance(change, bool) else text


@dataclass(frozen=True)
class _Cannot:
    reason: str  # short, for an ``auto`` fallback
    refusal: str  # full message, for a refused ``warm_start`` request


def _why_no_warm_start(
    config: PipelineConfig, champion: ChampionFacts | None, train_end: date | None
) -> _Cannot | None:
    """Why the champion cannot be continued at all, or None when it can."""
    estimator = config.training.estimator
    if champion is None:
        return _Cannot(
            "no champion yet",
            f"Warm start of '{config.name}' needs a champion to continue from, and "
            "there is none yet. Run a stateless retrain first (mode stateless or auto).",
        )
    if estimator not in WARM_STARTABLE:
        return _Cannot(
            f"estimator '{estimator}' cannot warm start",
            f"Estimator '{estimator}' cannot warm start; use one of "
            f"{sorted(WARM_STARTABLE)} or mode stateless.",
        )
    if champion.estimator is not None and champion.estimator != estimator:
        return _Cannot(
            "champion used another estimator",
            f"The champion (version {champion.version}) is a '{champion.estimator}' "
            f"model; it cannot be continued as '{estimator}'. Run stateless.",
        )
    if train_end is None:  # the data rules wait for the window (the trigger policy)
        return None
    if champion.data_end is None:
        return _Cannot(
            "the champion's data end is unknown",
            f"The champion (version {champion.version}) records no data end "
            "(lineage tag 'data_end'), so a warm start cannot tell which rows are "
            "new. Run stateless.",
        )
    if champion.data_end >= train_end:
        return _Cannot(
            f"the champion's data ends {champion.data_end}, not before this run's training "
            f"end {train_end}: nothing new to continue on",
            f"The champion (version {champion.version}) was trained on data up to "
            f"{champion.data_end} (exclusive), but this run's training window ends "
            f"{train_end}: there are no newer rows to continue it on. Pick a window end "
            f"later than {champion.data_end} plus the holdout, or run stateless.",
        )
    return None
