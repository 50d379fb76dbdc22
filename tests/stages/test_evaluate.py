"""Stage 5 — evaluate: the gate, table-driven; metrics and slices of real runs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrainflow.core.metrics import compute_metrics, gate, slice_metrics
from retrainflow.registry import Registry
from retrainflow.stages import evaluate
from retrainflow.stages.train import load_model

CLS = {"roc_auc": 0.80, "log_loss": 0.45, "accuracy": 0.75, "f1": 0.70, "brier": 0.15}


def m(**changes: float) -> dict[str, float]:
    return {**CLS, **changes}


# (evaluation overrides, challenger, champion, passed, a reason fragment)
GATE_CASES: list[
    tuple[str, dict[str, Any], dict[str, float], dict[str, float] | None, bool, str]
] = [
    ("higher-better wins", {}, m(roc_auc=0.81), m(), True, "+0.0100"),
    ("higher-better ties", {}, m(), m(), True, "+0.0000 (>= min_delta 0.0)"),
    ("higher-better loses", {}, m(roc_auc=0.79), m(), False, "-0.0100 (< min_delta"),
    ("min_delta not reached", {"min_delta": 0.02}, m(roc_auc=0.81), m(), False, "< min_delta 0.02"),
    ("min_delta reached", {"min_delta": 0.02}, m(roc_auc=0.83), m(), True, ">= min_delta 0.02"),
    ("negative min_delta tolerates a loss", {"min_delta": -0.05}, m(roc_auc=0.78), m(), True, ""),
    ("lower-better wins", {"primary_metric": "log_loss"}, m(log_loss=0.40), m(), True, "+0.0500"),
    ("lower-better loses", {"primary_metric": "log_loss"}, m(log_loss=0.50), m(), False, "-0.0500"),
    (
        "lower-better min_delta",
        {"primary_metric": "brier", "min_delta": 0.01},
        m(brier=0.145),
        m(),
        False,
        "< min_delta 0.01",
    ),
    (
        "guardrail within tolerance",
        {"guardrails": {"log_loss": 0.02}},
        m(roc_auc=0.81, log_loss=0.46),
        m(),
        True,
        "within tolerance 0.02",
    ),
    (
        "guardrail beyond tolerance",
        {"guardrails": {"log_loss": 0.02}},
        m(roc_auc=0.81, log_loss=0.48),
        m(),
        False,
        "beyond tolerance 0.02",
    ),
    (
        "higher-better guardrail",
        {"guardrails": {"accuracy": 0.01}},
        m(roc_auc=0.81, accuracy=0.73),
        m(),
        False,
        "guardrail accuracy",
    ),
    (
        "guardrail improved",
        {"guardrails": {"log_loss": 0.0}},
        m(roc_auc=0.81, log_loss=0.30),
        m(),
        True,
        "within tolerance 0.0",
    ),
    ("floor met, no champion", {"floors": {"roc_auc": 0.6}}, m(), None, True, "no champion yet"),
    (
        "floor missed, no champion",
        {"floors": {"roc_auc": 0.85}},
        m(),
        None,
        False,
        "misses the floor 0.85",
    ),
    (
        "ceiling missed",
        {"floors": {"roc_auc": 0.6, "brier": 0.1}},
        m(),
        None,
        False,
        "misses the ceiling 0.1",
    ),
    ("ceiling met", {"floors": {"brier": 0.2}}, m(), None, True, "meets the ceiling 0.2"),
    (
        "floor missed despite beating champion",
        {"floors": {"roc_auc": 0.9}},
        m(roc_auc=0.85),
        m(),
        False,
        "misses the floor 0.9",
    ),
    ("no champion, no floors", {"floors": {}}, m(), None, True, "warning: no floors configured"),
    ("NaN primary metric", {}, m(roc_auc=math.nan), m(), False, "undefined"),
    (
        "NaN primary metric, no champion",
        {"floors": {}},
        m(roc_auc=math.nan),
        None,
        False,
        "undefined",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "challenger", "champion", "passed", "reason"),
    [c[1:] for c in GATE_CASES],
    ids=[c[0] for c in GATE_CASES],
)
def test_gate(helpers, overrides, challenger, champion, passed, reason) -> None:
    defaults = {"min_delta": 0.0, "guardrails": {}, "floors": {}, "primary_metric": "roc_auc"}
    cfg = helpers.config_with({f"evaluation.{k}": v for k, v in {**defaults, **overrides}.items()})
    ok, reasons = gate(cfg, challenger, champion)
    assert ok is passed, reasons
    assert any(reason in r for r in reasons), reasons


REG = {"rmse": 2.0, "mae": 1.5, "r2": 0.8}


def _regression(helpers, **evaluation: Any):  # type: ignore[no-untyped-def]
    """The synthetic pipeline as a regression on ``y`` gated on RMSE."""
    columns = helpers.synthetic_dict()["expectations"]["columns"]
    columns.pop("label")
    changes = {
        "task": "regression",
        "target": "y",
        "expectations.columns": columns,
        "evaluation.primary_metric": "rmse",
        "evaluation.guardrails": {},
        "evaluation.floors": {},
    }
    return helpers.config_with({**changes, **{f"evaluation.{k}": v for k, v in evaluation.items()}})


@pytest.mark.parametrize(
    ("challenger", "floors", "passed"),
    [
        ({**REG, "rmse": 1.9}, {}, True),
        ({**REG, "rmse": 2.1}, {}, False),
        ({**REG, "rmse": 1.9}, {"r2": 0.9}, False),
        ({**REG, "rmse": 1.9}, {"mae": 1.0}, False),  # mae is lower-is-better: a ceiling
        ({**REG, "rmse": 1.9}, {"mae": 2.0, "r2": 0.5}, True),
    ],
)
def test_gate_regression(helpers, challenger, floors, passed) -> None:
    cfg = _regression(helpers, floors=floors)
    assert cfg.lower_is_better
    assert gate(cfg, challenger, REG)[0] is passed


@pytest.mark.parametrize(
    ("min_delta", "challenger_rmse", "passed", "reason"),
    [
        ("3%", 1.95, False, "min_delta 3% = 0.06"),  # 0.05 better < 3 % of 2.0
        ("5%", 1.95, False, "min_delta 5% = 0.1"),
        ("2%", 1.90, True, "min_delta 2% = 0.04"),
        (0.2, 1.90, False, "min_delta 0.2"),
    ],
)
def test_gate_relative_min_delta(helpers, min_delta, challenger_rmse, passed, reason) -> None:
    """``min_delta`` as a share of the champion's value (issue 8): one config for any scale."""
    cfg = _regression(helpers, min_delta=min_delta)
    ok, reasons = gate(cfg, {**REG, "rmse": challenger_rmse}, REG)
    assert ok is passed, reasons
    assert any(reason in r for r in reasons), reasons


@pytest.mark.parametrize("bad", ["two percent", "%", "2", True, None])
def test_margins_must_be_a_number_or_a_percentage(helpers, bad) -> None:
    from retrainflow.exceptions import ConfigError

    with pytest.raises(ConfigError, match=r"evaluation.min_delta.*percentage.*got"):
        helpers.config_with({"evaluation.min_delta": bad})
    with pytest.raises(ConfigError, match="monitoring.policy.performance_drop"):
        helpers.config_with({"monitoring.policy.performance_drop": bad})
    with pytest.raises(ConfigError, match=r"performance_drop.*>= 0"):
        helpers.config_with({"monitoring.policy.performance_drop": "-5%"})
    assert helpers.config_with({"evaluation.min_delta": "-1%"}).evaluation.min_delta == "-1%"


def test_compute_metrics() -> None:
    y = np.array([0, 0, 1, 1])
    perfect = compute_metrics("binary_classification", y, np.array([0.1, 0.2, 0.8, 0.9]))
    assert perfect["roc_auc"] == 1.0 and perfect["accuracy"] == 1.0 and perfect["f1"] == 1.0
    assert perfect["brier"] == pytest.approx(np.mean([0.01, 0.04, 0.04, 0.01]))
    one_class = compute_metrics("binary_classification", np.array([1, 1]), np.array([0.3, 0.9]))
    assert math.isnan(one_class["roc_auc"])
    reg = compute_metrics("regression", np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]))
    assert reg["rmse"] == pytest.approx(np.sqrt(4 / 3)) and reg["mae"] == pytest.approx(2 / 3)


# -- real runs ------------------------------------------------------------------------------


def test_first_run_verdict(trained) -> None:
    v = trained.stateless.verdict
    assert v.champion is None and v.champion_version is None
    assert v.passed and any("no champion yet" in r for r in v.reasons)
    assert v.primary_metric == "roc_auc" and v.challenger["roc_auc"] > 0.8
    assert v.thresholds == {
        "min_delta": 0.0,
        "guardrails": {"log_loss": 0.02},
        "floors": {"roc_auc": 0.6},
    }
    assert v.rows == trained.stateless.pull.holdout.rows
    on_disk = json.loads(Path(v.report_uri).read_text())
    assert on_disk["passed"] is True and on_disk["challenger"]["roc_auc"] == v.challenger["roc_auc"]


def test_warm_start_verdict_compares_with_champion(trained) -> None:
    v = trained.warm.verdict
    assert v.champion_version == "1"
    holdout = pd.read_parquet(trained.warm.pull.holdout.uri)
    y = holdout["label"].to_numpy()
    champion = Registry().load_model("synthetic", "1")
    task = "binary_classification"
    assert v.champion == pytest.approx(compute_metrics(task, y, champion.predict(holdout)))
    challenger = load_model(trained.warm.train)
    assert v.challenger == pytest.approx(compute_metrics(task, y, challenger.predict(holdout)))
    assert v.passed == gate(trained.config, v.challenger, v.champion)[0]


def test_slice_metrics_present(trained) -> None:
    v = trained.warm.verdict
    holdout = pd.read_parquet(trained.warm.pull.holdout.uri)
    min_rows = trained.config.evaluation.min_slice_rows
    assert set(v.slices) == {"segment", "channel"}
    for col in ("segment", "channel"):
        counts = holdout[col].value_counts()
        expected = {str(k) for k, n in counts.items() if n >= min_rows}
        assert set(v.slices[col]) == expected and expected
        for value, entry in v.slices[col].items():
            assert entry["rows"] == counts[value]
            assert set(entry) == {"rows", "challenger", "champion"}
            assert 0.5 < entry["challenger"] <= 1.0


def test_small_slices_are_left_out(trained, helpers) -> None:
    holdout = pd.read_parquet(trained.stateless.pull.holdout.uri)
    counts = holdout["segment"].value_counts()
    cut = int(counts.sort_values().iloc[1])  # the second-smallest segment's size
    cfg = helpers.config_with({"evaluation.min_slice_rows": cut})
    y = holdout["label"].to_numpy(dtype=float)
    scores = {"challenger": load_model(trained.stateless.train).predict(holdout)}
    out = slice_metrics(cfg, holdout, y, scores)
    assert set(out["segment"]) == {str(k) for k, n in counts.items() if n >= cut}
    assert len(out["segment"]) == 2
    value = next(iter(out["segment"]))
    mask = (holdout["segment"] == value).to_numpy()
    assert out["segment"][value]["challenger"] == pytest.approx(
        compute_metrics("binary_classification", y[mask], scores["challenger"][mask])["roc_auc"]
    )


def test_evaluate_run_against_current_champion(trained_fork) -> None:
    trained = trained_fork
    again = evaluate.run(
        trained.config, trained.stateless.pull, trained.stateless.train, registry=Registry()
    )
    assert again.report_uri.startswith(str(trained.root))
    # now version 1 is champion: the stateless challenger is compared with itself
    assert again.champion_version == "1"
    assert again.challenger == pytest.approx(trained.stateless.verdict.challenger)
    assert again.challenger["roc_auc"] == pytest.approx(again.champion["roc_auc"])


# -- the champion is never scored on its own training rows (issue 8 trial) ---------------------


def test_holdout_rows_the_champion_was_trained_on_are_left_out(trained_fork, helpers) -> None:
    from datetime import date, timedelta

    from retrainflow.pipeline import run_all
    from retrainflow.registry import Registry

    champion = Registry().champion("synthetic")
    data_end = date.fromisoformat(champion.data_end)
    cfg = trained_fork.config
    # a window ending at the champion's data end: every holdout day is in its training data
    stale = run_all(cfg, helpers.context("all-stale", data_end.isoformat(), "stateless"))
    assert stale.verdict.passed is False and stale.promote.champion is False
    assert any(
        "no holdout row is newer than the champion's data end" in r for r in stale.verdict.reasons
    )
    assert Registry().champion("synthetic").version == champion.version  # still serving
    # two days later: the holdout's first days are the champion's last ones
    end = data_end + timedelta(days=2)
    run = run_all(cfg, helpers.context("overlap", end.isoformat(), "stateless"))
    assert run.verdict.rows == 2 * 400 < run.pull.holdout.rows  # only the two fresh days
    assert any(f"on or after {data_end}" in r for r in run.verdict.reasons)
