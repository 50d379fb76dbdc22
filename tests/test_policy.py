"""The retraining trigger policy: one table row per rule, guard and mode choice.

Every row is (id, config overrides, check, champion, state, on_demand) -> expected
(trigger, reasons, blocked_by, mode). Overrides are partial: each row states only what
differs from the baseline below (a calm check, a fresh champion, an empty history).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

from retrainflow.config import PipelineConfig, parse_config
from retrainflow.policy import (
    ChampionInfo,
    CheckResult,
    Decision,
    PolicyState,
    decide,
)

SYNTHETIC_YAML = Path(__file__).resolve().parent / "fixtures" / "pipelines" / "synthetic.yaml"
NOW = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)
ALL_TRIGGERS = ["drift", "performance", "volume", "staleness"]

#: Baseline ``monitoring:`` section; rows override parts of it.
BASE_POLICY: dict[str, Any] = {
    "triggers": ALL_TRIGGERS,
    "performance_drop": 0.02,
    "min_new_rows": 50_000,
    "max_staleness_days": 30,
    "cooldown_hours": 24,
    "drift_m": 1,
    "drift_n": 1,
    "max_retrains_per_week": 7,
    "min_samples": 500,
    "mode": "auto",
}
BASE_DRIFT: dict[str, Any] = {"share_threshold": 0.5, "key_features": ["x1"], "severe_share": 0.8}

#: A calm check: enough rows, no drift, metric equal to the champion's gate metric.
CALM: dict[str, Any] = {
    "checked_at": "2024-03-15T12:00:00+00:00",
    "current_rows": 1000,
    "labelled_rows": 1000,
    "drift_share": 0.1,
    "drifted_columns": [],
    "dataset_drift": False,
    "prediction_drift": False,
    "metric": 0.80,
    "schema_changed": False,
}
#: A check with dataset drift (not severe, no key feature).
DRIFT: dict[str, Any] = {
    "drift_share": 0.6,
    "drifted_columns": ["x2", "x3", "x4", "segment"],
    "dataset_drift": True,
    "prediction_drift": True,
}
BASE_CHAMPION: dict[str, Any] = {"version": "3", "gate_metric": 0.80, "data_end": "2024-03-10"}
NO_CHAMPION: dict[str, Any] = {"version": None, "gate_metric": None, "data_end": None}


def ago(**delta: float) -> str:
    """ISO datetime ``delta`` before NOW."""
    return (NOW - timedelta(**delta)).isoformat()


def checks(*kinds: str) -> list[dict[str, Any]]:
    """Previous checks, oldest first: 'd' drifting, 'c' calm."""
    return [{**CALM, **(DRIFT if k == "d" else {})} for k in kinds]


def cfg(
    *,
    triggers: list[str] | None = None,
    drift: dict[str, Any] | None = None,
    enabled: bool = True,
    top: dict[str, Any] | None = None,
    **policy: Any,
) -> dict[str, Any]:
    """Config overrides of one row: policy fields, drift fields, top-level replacements."""
    out: dict[str, Any] = {
        "policy": policy,
        "drift": drift or {},
        "enabled": enabled,
        "top": top or {},
    }
    if triggers is not None:
        out["policy"]["triggers"] = triggers
    return out


def build_config(overrides: dict[str, Any]) -> PipelineConfig:
    data = yaml.safe_load(SYNTHETIC_YAML.read_text())
    data.update(copy.deepcopy(overrides.get("top", {})))
    data["monitoring"] = {
        "enabled": overrides.get("enabled", True),
        "policy": {**BASE_POLICY, **overrides.get("policy", {})},
        "drift": {**BASE_DRIFT, **overrides.get("drift", {})},
    }
    return parse_config(data, file="synthetic.yaml")


def build_inputs(
    overrides: dict[str, Any],
    check: dict[str, Any],
    champion: dict[str, Any],
    state: dict[str, Any],
) -> tuple[PipelineConfig, CheckResult, ChampionInfo, PolicyState]:
    config = build_config(overrides)
    st = dict(state)
    st["previous_checks"] = [CheckResult(**c) for c in st.get("previous_checks", [])]
    return (
        config,
        CheckResult(**{**CALM, **check}),
        ChampionInfo(**{**BASE_CHAMPION, **champion}),
        PolicyState(**st),
    )


class Expect(NamedTuple):
    trigger: bool
    reasons: list[str]
    blocked_by: list[str]
    mode: str = "auto"


# Regression pipeline (rmse, lower is better) and log_loss as the primary metric.
RMSE = {"task": "regression", "evaluation": {"primary_metric": "rmse"}}
LOG_LOSS = {"evaluation": {"primary_metric": "log_loss"}}
M3N5 = {"drift_m": 3, "drift_n": 5}

CASES = [
    # -- nothing fires ------------------------------------------------------------------------
    pytest.param(cfg(), {}, {}, {}, False, Expect(False, [], []), id="calm-no-rule-fires"),
    # -- drift ---------------------------------------------------------------------------------
    pytest.param(cfg(), DRIFT, {}, {}, False, Expect(True, ["drift"], []), id="drift-dataset"),
    pytest.param(
        cfg(**M3N5),
        DRIFT,
        {},
        {"previous_checks": checks("c", "c", "c", "c")},
        False,
        Expect(False, [], ["m_of_n"]),
        id="drift-1-of-5-no-trigger-with-3-of-5",
    ),
    pytest.param(
        cfg(**M3N5),
        DRIFT,
        {},
        {"previous_checks": checks("c", "d", "c", "d")},
        False,
        Expect(True, ["drift"], []),
        id="drift-3-of-5-triggers",
    ),
    pytest.param(
        cfg(**M3N5),
        DRIFT,
        {},
        {"previous_checks": checks("d", "d", "c", "c", "c", "c")},
        False,
        Expect(False, [], ["m_of_n"]),
        id="drift-m-of-n-older-than-window-ignored",
    ),
    pytest.param(
        cfg(**M3N5),
        DRIFT,
        {},
        {"previous_checks": checks("d", "d")},
        False,
        Expect(True, ["drift"], []),
        id="drift-3-of-5-short-history",
    ),
    pytest.param(
        cfg(**M3N5),
        {},
        {},
        {"previous_checks": checks("c", "d", "d", "d")},
        False,
        Expect(False, [], []),
        id="drift-past-only-current-calm-no-trigger-no-block",
    ),
    pytest.param(
        cfg(**M3N5),
        DRIFT,
        {},
        {"previous_checks": [{**c, "current_rows": 10} for c in checks("d", "d", "d", "d")]},
        False,
        Expect(False, [], ["m_of_n"]),
        id="drift-m-of-n-small-past-checks-do-not-count",
    ),
    pytest.param(
        cfg(),
        {"drift_share": 0.1, "drifted_columns": ["x1"], "dataset_drift": False},
        {},
        {},
        False,
        Expect(True, ["drift_key_feature"], []),
        id="drift-key-feature-low-share",
    ),
    pytest.param(
        cfg(),
        {**DRIFT, "drifted_columns": ["x1", "x2", "x3", "x4"]},
        {},
        {},
        False,
        Expect(True, ["drift", "drift_key_feature"], []),
        id="drift-dataset-and-key-feature",
    ),
    pytest.param(
        cfg(),
        {"drift_share": 0.1, "drifted_columns": ["x2"], "dataset_drift": False},
        {},
        {},
        False,
        Expect(False, [], []),
        id="drift-non-key-feature-low-share-no-trigger",
    ),
    pytest.param(
        cfg(),
        {"drift_share": 0.6, "dataset_drift": None},
        {},
        {},
        False,
        Expect(True, ["drift"], []),
        id="drift-verdict-missing-falls-back-to-share",
    ),
    pytest.param(
        cfg(triggers=["performance", "volume", "staleness"]),
        DRIFT,
        {},
        {},
        False,
        Expect(False, [], []),
        id="drift-not-in-triggers-never-fires",
    ),
    # -- performance ---------------------------------------------------------------------------
    pytest.param(
        cfg(),
        {"metric": 0.75},
        {"gate_metric": 0.80},
        {},
        False,
        Expect(True, ["performance"], []),
        id="performance-roc_auc-drop",
    ),
    pytest.param(
        cfg(),
        {"metric": 0.785},
        {"gate_metric": 0.80},
        {},
        False,
        Expect(False, [], []),
        id="performance-roc_auc-within-tolerance",
    ),
    pytest.param(
        cfg(),
        {"metric": 0.90},
        {"gate_metric": 0.80},
        {},
        False,
        Expect(False, [], []),
        id="performance-roc_auc-improved",
    ),
    pytest.param(
        cfg(top=LOG_LOSS),
        {"metric": 0.45},
        {"gate_metric": 0.40},
        {},
        False,
        Expect(True, ["performance"], []),
        id="performance-log_loss-rise",
    ),
    pytest.param(
        cfg(top=LOG_LOSS),
        {"metric": 0.41},
        {"gate_metric": 0.40},
        {},
        False,
        Expect(False, [], []),
        id="performance-log_loss-within-tolerance",
    ),
    pytest.param(
        cfg(top=LOG_LOSS),
        {"metric": 0.30},
        {"gate_metric": 0.40},
        {},
        False,
        Expect(False, [], []),
        id="performance-log_loss-fell-is-better",
    ),
    pytest.param(
        cfg(top=RMSE, performance_drop=0.5),
        {"metric": 12.0},
        {"gate_metric": 10.0},
        {},
        False,
        Expect(True, ["performance"], []),
        id="performance-rmse-rise",
    ),
    pytest.param(
        cfg(top=RMSE, performance_drop=0.5),
        {"metric": 10.4},
        {"gate_metric": 10.0},
        {},
        False,
        Expect(False, [], []),
        id="performance-rmse-within-tolerance",
    ),
    # relative: 10 % of the gate-time value (issue 8): an MAE of 200 -> 215 is a 7.5 % drop
    pytest.param(
        cfg(top=RMSE, performance_drop="10%"),
        {"metric": 215.0},
        {"gate_metric": 200.0},
        {},
        False,
        Expect(False, [], []),
        id="performance-relative-within-tolerance",
    ),
    pytest.param(
        cfg(top=RMSE, performance_drop="10%"),
        {"metric": 225.0},
        {"gate_metric": 200.0},
        {},
        False,
        Expect(True, ["performance"], []),
        id="performance-relative-rise",
    ),
    pytest.param(
        cfg(performance_drop="5%"),
        {"metric": 0.75},
        {"gate_metric": 0.80},
        {},
        False,
        Expect(True, ["performance"], []),
        id="performance-relative-auc-drop",
    ),
    pytest.param(
        cfg(top=RMSE, performance_drop=0.5),
        {"metric": 8.0},
        {"gate_metric": 10.0},
        {},
        False,
        Expect(False, [], []),
        id="performance-rmse-fell-is-better",
    ),
    pytest.param(
        cfg(),
        {"metric": None},
        {"gate_metric": 0.80},
        {},
        False,
        Expect(False, [], []),
        id="performance-no-current-metric",
    ),
    pytest.param(
        cfg(),
        {"metric": 0.5},
        {"gate_metric": None},
        {},
        False,
        Expect(False, [], []),
        id="performance-no-gate-metric",
    ),
    pytest.param(
        cfg(),
        {"metric": 0.5, "labelled_rows": 100},
        {},
        {},
        False,
        Expect(False, [], ["min_samples"]),
        id="performance-too-few-labelled-rows",
    ),
    pytest.param(
        cfg(triggers=["drift"]),
        {"metric": 0.5},
        {},
        {},
        False,
        Expect(False, [], []),
        id="performance-not-in-triggers-never-fires",
    ),
    # -- volume --------------------------------------------------------------------------------
    pytest.param(
        cfg(),
        {},
        {},
        {"new_labelled_rows_since_champion": 60_000},
        False,
        Expect(True, ["volume"], []),
        id="volume-above",
    ),
    pytest.param(
        cfg(),
        {},
        {},
        {"new_labelled_rows_since_champion": 50_000},
        False,
        Expect(True, ["volume"], []),
        id="volume-exactly-at-threshold",
    ),
    pytest.param(
        cfg(),
        {},
        {},
        {"new_labelled_rows_since_champion": 49_999},
        False,
        Expect(False, [], []),
        id="volume-below",
    ),
    pytest.param(
        cfg(triggers=["drift"]),
        {},
        {},
        {"new_labelled_rows_since_champion": 60_000},
        False,
        Expect(False, [], []),
        id="volume-not-in-triggers-never-fires",
    ),
    # -- staleness -----------------------------------------------------------------------------
    pytest.param(
        cfg(),
        {},
        {"data_end": "2024-02-01"},
        {},
        False,
        Expect(True, ["staleness"], []),
        id="staleness-43-days",
    ),
    pytest.param(
        cfg(),
        {},
        {"data_end": "2024-02-14"},
        {},
        False,
        Expect(True, ["staleness"], []),
        id="staleness-exactly-30-days",
    ),
    pytest.param(
        cfg(),
        {},
        {"data_end": "2024-02-15"},
        {},
        False,
        Expect(False, [], []),
        id="staleness-29-days",
    ),
    pytest.param(
        cfg(),
        {},
        {"data_end": None},
        {},
        False,
        Expect(False, [], []),
        id="staleness-unknown-data-end",
    ),
    pytest.param(
        cfg(triggers=["drift"]),
        {},
        {"data_end": "2023-01-01"},
        {},
        False,
        Expect(False, [], []),
        id="staleness-not-in-triggers-never-fires",
    ),
    # -- rules off -----------------------------------------------------------------------------
    pytest.param(
        cfg(triggers=[]),
        {**DRIFT, "metric": 0.5},
        {"data_end": "2023-01-01"},
        {"new_labelled_rows_since_champion": 10**6},
        False,
        Expect(False, [], []),
        id="empty-triggers-nothing-fires",
    ),
    pytest.param(
        cfg(enabled=False),
        {**DRIFT, "metric": 0.5},
        {"data_end": "2023-01-01"},
        {"new_labelled_rows_since_champion": 10**6},
        False,
        Expect(False, [], []),
        id="monitoring-disabled-nothing-fires",
    ),
    pytest.param(
        cfg(),
        {**DRIFT, "drifted_columns": ["x1", "x2"], "metric": 0.5},
        {"data_end": "2023-01-01"},
        {"new_labelled_rows_since_champion": 10**6},
        False,
        Expect(True, ["drift", "drift_key_feature", "performance", "volume", "staleness"], []),
        id="every-rule-fires-reasons-in-order",
    ),
    # -- on demand -----------------------------------------------------------------------------
    pytest.param(
        cfg(triggers=[]),
        {},
        {},
        {},
        True,
        Expect(True, ["on_demand"], []),
        id="on-demand-with-no-triggers",
    ),
    pytest.param(
        cfg(triggers=[]),
        {"current_rows": 5},
        {},
        {},
        True,
        Expect(True, ["on_demand"], []),
        id="on-demand-ignores-min-samples-when-no-rules",
    ),
    pytest.param(
        cfg(),
        {},
        {},
        {"trigger_times": [ago(hours=1)]},
        True,
        Expect(True, ["on_demand"], []),
        id="on-demand-bypasses-cooldown",
    ),
    pytest.param(
        cfg(max_retrains_per_week=1, cooldown_hours=0),
        {},
        {},
        {"trigger_times": [ago(days=2)]},
        True,
        Expect(True, ["on_demand"], []),
        id="on-demand-bypasses-weekly-cap",
    ),
    pytest.param(
        cfg(),
        {},
        {},
        {"retrain_active": True, "trigger_times": [ago(hours=1)]},
        True,
        Expect(False, ["on_demand"], ["single_flight"]),
        id="on-demand-blocked-by-single-flight",
    ),
    pytest.param(
        cfg(),
        DRIFT,
        {},
        {"trigger_times": [ago(hours=1)]},
        True,
        Expect(True, ["on_demand", "drift"], []),
        id="on-demand-plus-drift-bypasses-cooldown",
    ),
    # -- hygiene -------------------------------------------------------------------------------
    pytest.param(
        cfg(),
        DRIFT,
        {},
        {"retrain_active": True},
        False,
        Expect(False, ["drift"], ["single_flight"]),
        id="single-flight",
    ),
    pytest.param(
        cfg(),
        DRIFT,
        {},
        {"trigger_times": [ago(hours=2)]},
        False,
        Expect(False, ["drift"], ["cooldown"]),
        id="cooldown-blocks",
    ),
    pytest.param(
        cfg(),
        DRIFT,
        {},
        {"trigger_times": [ago(hours=25), ago(days=3)]},
        False,
        Expect(True, ["drift"], []),
        id="cooldown-expired",
    ),
    pytest.param(
        cfg(),
        DRIFT,
        {},
        {"trigger_times": [ago(days=3), ago(hours=23), ago(days=2)]},
        False,
        Expect(False, ["drift"], ["cooldown"]),
        id="cooldown-uses-latest-of-unordered-times",
    ),
    pytest.param(
        cfg(cooldown_hours=0),
        DRIFT,
        {},
        {"trigger_times": [ago(minutes=1)]},
        False,
        Expect(True, ["drift"], []),
        id="cooldown-zero-disabled",
    ),
    pytest.param(
        cfg(max_retrains_per_week=2),
        DRIFT,
        {},
        {"trigger_times": [ago(days=2), ago(days=3)]},
        False,
        Expect(False, ["drift"], ["max_retrains_per_week"]),
        id="max-per-week-reached",
    ),
    pytest.param(
        cfg(max_retrains_per_week=2),
        DRIFT,
        {},
        {"trigger_times": [ago(days=8), ago(days=9), ago(days=2)]},
        False,
        Expect(True, ["drift"], []),
        id="max-per-week-8-days-ago-does-not-count",
    ),
    pytest.param(
        cfg(max_retrains_per_week=0),
        DRIFT,
        {},
        {},
        False,
        Expect(False, ["drift"], ["max_retrains_per_week"]),
        id="max-per-week-zero-stops-all",
    ),
    pytest.param(
        cfg(max_retrains_per_week=1),
        DRIFT,
        {},
        {"retrain_active": True, "trigger_times": [ago(hours=1)]},
        False,
        Expect(False, ["drift"], ["single_flight", "cooldown", "max_retrains_per_week"]),
        id="all-hygiene-guards-reported",
    ),
    pytest.param(
        cfg(),
        {},
        {},
        {"retrain_active": True, "trigger_times": [ago(hours=1)]},
        False,
        Expect(False, [], []),
        id="hygiene-silent-when-nothing-fired",
    ),
    # -- min_samples ---------------------------------------------------------------------------
    pytest.param(
        cfg(),
        {**DRIFT, "current_rows": 100, "labelled_rows": 100, "metric": 0.5},
        {},
        {},
        False,
        Expect(False, [], ["min_samples"]),
        id="min-samples-stops-drift-and-performance",
    ),
    pytest.param(
        cfg(),
        {**DRIFT, "current_rows": 100},
        {},
        {"new_labelled_rows_since_champion": 60_000},
        False,
        Expect(True, ["volume"], ["min_samples"]),
        id="min-samples-volume-still-fires",
    ),
    pytest.param(
        cfg(),
        {"current_rows": 100},
        {"data_end": "2024-01-01"},
        {},
        False,
        Expect(True, ["staleness"], ["min_samples"]),
        id="min-samples-staleness-still-fires",
    ),
    pytest.param(
        cfg(triggers=["volume", "staleness"]),
        {**DRIFT, "current_rows": 100},
        {},
        {},
        False,
        Expect(False, [], []),
        id="min-samples-not-reported-when-not-considered",
    ),
    # -- no champion ---------------------------------------------------------------------------
    pytest.param(
        cfg(),
        {},
        NO_CHAMPION,
        {},
        False,
        Expect(True, ["no_champion"], [], "stateless"),
        id="no-champion",
    ),
    pytest.param(
        cfg(triggers=[]),
        {"current_rows": 3, "labelled_rows": 0},
        NO_CHAMPION,
        {},
        False,
        Expect(True, ["no_champion"], [], "stateless"),
        id="no-champion-ignores-min-samples",
    ),
    pytest.param(
        cfg(),
        {},
        NO_CHAMPION,
        {"retrain_active": True},
        False,
        Expect(False, ["no_champion"], ["single_flight"], "stateless"),
        id="no-champion-single-flight",
    ),
    pytest.param(
        cfg(),
        {},
        NO_CHAMPION,
        {"trigger_times": [ago(hours=3)]},
        False,
        Expect(False, ["no_champion"], ["cooldown"], "stateless"),
        id="no-champion-cooldown",
    ),
    # -- mode ----------------------------------------------------------------------------------
    pytest.param(
        cfg(),
        {**DRIFT, "drift_share": 0.9},
        {},
        {},
        False,
        Expect(True, ["drift"], [], "stateless"),
        id="severe-drift-stateless",
    ),
    pytest.param(
        cfg(),
        {**DRIFT, "drift_share": 0.8},
        {},
        {},
        False,
        Expect(True, ["drift"], [], "stateless"),
        id="severe-drift-at-threshold-stateless",
    ),
    pytest.param(
        cfg(),
        {**DRIFT, "drift_share": 0.9, "current_rows": 100},
        {},
        {"new_labelled_rows_since_champion": 60_000},
        False,
        Expect(True, ["volume"], ["min_samples"], "auto"),
        id="severe-share-on-too-few-rows-not-trusted",
    ),
    pytest.param(
        cfg(),
        {**DRIFT, "schema_changed": True},
        {},
        {},
        False,
        Expect(True, ["drift"], [], "stateless"),
        id="schema-change-stateless",
    ),
    pytest.param(
        cfg(mode="warm_start"),
        {"schema_changed": True},
        {},
        {"new_labelled_rows_since_champion": 60_000},
        False,
        Expect(True, ["volume"], [], "stateless"),
        id="schema-change-overrides-policy-mode",
    ),
    pytest.param(
        cfg(mode="warm_start"),
        DRIFT,
        {},
        {},
        False,
        Expect(True, ["drift"], [], "warm_start"),
        id="policy-mode-warm-start",
    ),
    pytest.param(
        cfg(mode="stateless"),
        DRIFT,
        {},
        {},
        False,
        Expect(True, ["drift"], [], "stateless"),
        id="policy-mode-stateless",
    ),
    pytest.param(
        cfg(top={"training": {"estimator": "random_forest"}}),
        DRIFT,
        {},
        {},
        False,
        Expect(True, ["drift"], [], "stateless"),
        id="estimator-cannot-warm-start-stateless",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "check", "champion", "state", "on_demand", "expected"), CASES
)
def test_decision_table(
    overrides: dict[str, Any],
    check: dict[str, Any],
    champion: dict[str, Any],
    state: dict[str, Any],
    on_demand: bool,
    expected: Expect,
) -> None:
    config, chk, champ, st = build_inputs(overrides, check, champion, state)
    decision = decide(config, chk, champ, st, now=NOW, on_demand=on_demand)

    got = Expect(decision.trigger, decision.reasons, decision.blocked_by, decision.mode)
    assert got == expected, decision.explain()
    # Every decision is JSON-safe and round-trips.
    assert Decision.from_dict(json.loads(json.dumps(decision.to_dict()))) == decision
    # Pure: the same inputs give the same decision.
    assert decide(config, chk, champ, st, now=NOW, on_demand=on_demand) == decision


@pytest.mark.parametrize(
    ("check", "champion", "reason"),
    [
        ({}, NO_CHAMPION, "no champion"),
        ({"schema_changed": True}, {}, "schema changed vs champion 3"),
        ({**DRIFT, "drift_share": 0.95}, {}, "severe drift"),
        (DRIFT, {}, "policy.mode"),
    ],
)
def test_mode_reason(check: dict[str, Any], champion: dict[str, Any], reason: str) -> None:
    config, chk, champ, st = build_inputs(cfg(), check, champion, {})
    decision = decide(config, chk, champ, st, now=NOW)
    assert reason in decision.mode_reason  # the resolver's reason, or where the request came from
    assert decision.mode_reason in decision.explain()


def test_m_of_n_details_count_the_window() -> None:
    config, chk, champ, st = build_inputs(
        cfg(**M3N5),
        DRIFT,
        {},
        {"previous_checks": checks("d", "d", "c", "d", "c", "d")},
    )
    drift = decide(config, chk, champ, st, now=NOW).details["drift"]
    # Window = the last 4 previous checks (c, d, c, d) + the current one (d).
    assert (drift["drifting_checks"], drift["window_checks"]) == (3, 5)
    assert drift["status"] == "fired"


def test_explain_mentions_every_evaluated_rule() -> None:
    config, chk, champ, st = build_inputs(
        cfg(),
        {**DRIFT, "metric": 0.7},
        {"data_end": "2024-01-01"},
        {"new_labelled_rows_since_champion": 60_000, "trigger_times": [ago(hours=2)]},
    )
    decision = decide(config, chk, champ, st, now=NOW)
    text = decision.explain()
    lines = text.splitlines()
    assert lines[0].startswith("NO TRIGGER")
    for name in (
        "min_samples",
        "drift",
        "performance",
        "volume",
        "staleness",
        "single_flight",
        "cooldown",
        "max_retrains_per_week",
        "mode",
    ):
        assert any(line.strip().startswith(f"{name}:") for line in lines), (name, text)
    # The numbers are in the text, not just the names.
    assert "roc_auc 0.7 vs gate 0.8" in text
    assert "60000 new labelled rows" in text
    assert "2.0 h ago" in text


def test_explain_lists_rules_that_are_off() -> None:
    config, chk, champ, st = build_inputs(cfg(triggers=["drift"]), DRIFT, {}, {})
    decision = decide(config, chk, champ, st, now=NOW)
    text = decision.explain()
    assert text.splitlines()[0].startswith("TRIGGER retrain (drift)")
    assert "not in policy.triggers: performance, volume, staleness" in text
    assert "performance:" not in text


def test_explain_no_champion_and_on_demand() -> None:
    config, chk, champ, st = build_inputs(cfg(), {}, NO_CHAMPION, {})
    text = decide(config, chk, champ, st, now=NOW, on_demand=True).explain()
    assert "no_champion:" in text and "on_demand:" in text and "stateless" in text


def test_dataclasses_round_trip_through_json() -> None:
    config, chk, champ, st = build_inputs(
        cfg(**M3N5),
        DRIFT,
        {},
        {"previous_checks": checks("c", "d"), "trigger_times": [ago(days=2)]},
    )
    for obj in (chk, champ, st):
        again = type(obj).from_dict(json.loads(json.dumps(obj.to_dict())))
        assert again == obj
    decision = decide(config, chk, champ, st, now=NOW)
    payload = json.dumps(decision.to_dict())
    assert Decision.from_dict(json.loads(payload)) == decision
    assert json.loads(payload)["details"]["drift"]["drift_m"] == 3


def test_from_dict_refuses_unknown_keys() -> None:
    with pytest.raises(ValueError, match="unknown key"):
        CheckResult.from_dict({**CALM, "drift_sahre": 0.3})
    with pytest.raises(ValueError, match="unknown key"):
        Decision.from_dict(
            {
                "trigger": True,
                "reasons": [],
                "blocked_by": [],
                "mode": "auto",
                "mode_reason": "",
                "details": {},
                "extra": 1,
            }
        )


def test_check_result_validates_ranges() -> None:
    with pytest.raises(ValueError, match="drift_share"):
        CheckResult(**{**CALM, "drift_share": 1.5})
    with pytest.raises(ValueError, match="rows"):
        CheckResult(**{**CALM, "current_rows": -1})


def test_naive_now_and_z_suffix_times_are_utc() -> None:
    config, chk, champ, st = build_inputs(
        cfg(),
        DRIFT,
        {},
        {"trigger_times": ["2024-03-15T10:00:00Z"]},
    )
    naive = NOW.replace(tzinfo=None)
    decision = decide(config, chk, champ, st, now=naive)
    assert decision.blocked_by == ["cooldown"]
    assert decision.details["cooldown"]["hours_since_last_trigger"] == 2.0
    # Another zone: 12:00+02:00 is 10:00 UTC, two hours before NOW as well.
    st2 = PolicyState(trigger_times=["2024-03-15T12:00:00+02:00"])
    assert (
        decide(config, chk, champ, st2, now=NOW).details["cooldown"]["hours_since_last_trigger"]
        == 2.0
    )


# -- the four schedules and adoption stages are config only ---------------------------------------
def _stage_config(
    schedule: str | None, monitoring: dict[str, Any], training_mode: str
) -> PipelineConfig:
    data = yaml.safe_load(SYNTHETIC_YAML.read_text())
    data["schedule"] = schedule
    data["monitoring"] = monitoring
    data["training"]["mode"] = training_mode
    return parse_config(data, file="synthetic.yaml")


#: Everything that could fire at once: drift, a metric drop, volume, staleness.
_STORM = {**CALM, **DRIFT, "metric": 0.5}


@pytest.mark.parametrize(
    ("schedule", "monitoring", "training_mode", "fires"),
    [
        pytest.param(None, {"enabled": False}, "stateless", [], id="stage1-manual-stateless"),
        pytest.param(
            "@weekly", {"enabled": False}, "stateless", [], id="stage2-interval-scheduled-stateless"
        ),
        pytest.param("@daily", {"enabled": False}, "auto", [], id="stage3-scheduled-stateful"),
        pytest.param(
            None,
            {"policy": {"triggers": ["drift", "performance"], "mode": "auto"}},
            "auto",
            ["drift", "performance"],
            id="stage4-event-driven-stateful",
        ),
        pytest.param(
            None,
            {"policy": {"triggers": ["performance"]}},
            "auto",
            ["performance"],
            id="schedule-performance",
        ),
        pytest.param(
            None,
            {"policy": {"triggers": ["drift", "volume"]}},
            "auto",
            ["drift", "volume"],
            id="schedule-data-change",
        ),
        pytest.param(None, {"policy": {"triggers": []}}, "auto", [], id="schedule-on-demand"),
    ],
)
def test_schedules_are_expressible_by_config(
    schedule: str | None, monitoring: dict[str, Any], training_mode: str, fires: list[str]
) -> None:
    config = _stage_config(schedule, monitoring, training_mode)
    assert config.schedule == schedule
    chk = CheckResult(**_STORM)
    champ = ChampionInfo(version="1", gate_metric=0.8, data_end="2023-01-01")
    st = PolicyState(new_labelled_rows_since_champion=10**6)
    decision = decide(config, chk, champ, st, now=NOW)
    assert decision.reasons == fires
    assert decision.trigger == bool(fires)
    # On demand works in every stage.
    manual = decide(config, chk, champ, st, now=NOW, on_demand=True)
    assert manual.trigger and "on_demand" in manual.reasons
