"""One rule, one place (issue 7, findings 1, 3 and 4).

Two kinds of test: *structural* ones read the source (the AST, not the text, so
docstrings do not count) and fail when a rule's implementation appears outside
its core module; *behavioural* ones show that the DAG's stages and the backtest
reach the same decision on the same facts, including the rules the backtest's
own copy used to skip (estimator and schema changes).
"""

from __future__ import annotations

import ast
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from retrainflow.core.modes import ChampionFacts, Mode, resolve_mode
from retrainflow.data.synthetic import make_synthetic

SRC = Path(__file__).resolve().parents[2] / "src" / "retrainflow"


def _modules() -> dict[str, ast.Module]:
    return {str(p.relative_to(SRC)): ast.parse(p.read_text()) for p in SRC.rglob("*.py")}


def _where(predicate) -> set[str]:  # type: ignore[no-untyped-def]
    return {
        name for name, tree in _modules().items() if any(predicate(node) for node in ast.walk(tree))
    }


def _attribute(attr: str):  # type: ignore[no-untyped-def]
    return lambda n: isinstance(n, ast.Attribute) and n.attr == attr


def _name(name: str):  # type: ignore[no-untyped-def]
    return lambda n: (
        (isinstance(n, ast.Name) and n.id == name)
        or (isinstance(n, ast.Attribute) and n.attr == name)
    )


def _defines(name: str):  # type: ignore[no-untyped-def]
    return lambda n: isinstance(n, ast.FunctionDef | ast.ClassDef) and n.name == name


@pytest.mark.parametrize(
    ("what", "predicate", "allowed"),
    [
        # the mode decision
        ("the severe-drift rule", _attribute("severe_share"), {"core/modes.py"}),
        (
            "the full-refit limit",
            _attribute("max_warm_starts"),
            # strategies: a description string; config: validate-config's warning about append
            {"core/modes.py", "backtest/strategies.py", "config.py"},
        ),
        ("a mode resolver", _defines("resolve_mode"), {"core/modes.py"}),
        ("a mode enum", _defines("Mode"), {"core/modes.py"}),
        # fitting and continuing
        ("a transformer fit", _attribute("from_config"), {"core/training.py"}),
        (
            "a LightGBM fit",
            lambda n: (
                isinstance(n, ast.Attribute)
                and n.attr == "train"
                and isinstance(n.value, ast.Name)
                and n.value.id == "lgb"
            ),
            {"core/training.py"},
        ),
        ("a LightGBM refit", _attribute("refit"), {"core/training.py"}),
        ("partial_fit", _attribute("partial_fit"), {"core/training.py"}),
        # metrics, direction and the gate
        ("the metric direction table", _name("LOWER_IS_BETTER"), {"core/metrics.py", "config.py"}),
        ("scikit-learn's metrics", _attribute("roc_auc_score"), {"core/metrics.py"}),
        ("a gate", _defines("gate"), {"core/metrics.py"}),
        ("compute_metrics", _defines("compute_metrics"), {"core/metrics.py"}),
        # the monitoring check
        (
            "a check result",
            _name("CheckResult"),
            {
                "policy.py",
                "core/monitoring.py",
                "monitoring/ledger.py",
                "backtest/engine.py",
                "stages/monitor.py",
            },
        ),
        (
            "a label cutoff",
            _name("label_delay_days"),
            {
                "config.py",
                "core/windows.py",
                "stages/monitor.py",
                "backtest/engine.py",
                "freshness.py",
                "cli/freshness_cmd.py",
            },
        ),
        # the schema verdict
        ("schema_diff", _defines("schema_diff"), {"core/schema.py"}),
    ],
)
def test_each_rule_is_implemented_in_one_module(what: str, predicate, allowed: set[str]) -> None:  # type: ignore[no-untyped-def]
    found = _where(predicate)
    assert found, f"{what}: not found at all (the test is stale)"
    assert found <= allowed, f"{what} appears outside its module: {sorted(found - allowed)}"


def test_the_drift_check_runs_only_through_the_core() -> None:
    calls = _where(
        lambda n: (
            isinstance(n, ast.Call)
            and isinstance(n.func, ast.Name | ast.Attribute)
            and (getattr(n.func, "id", None) or getattr(n.func, "attr", None)) == "compute_drift"
        )
    )
    # the backtest engine's only direct call is its unmeasured import warm-up
    assert calls <= {"core/monitoring.py", "backtest/engine.py"}, calls


def test_stages_policy_and_backtest_all_call_the_one_resolver() -> None:
    callers = _where(
        lambda n: isinstance(n, ast.Call) and getattr(n.func, "id", None) == "resolve_mode"
    )
    assert callers == {"stages/pull.py", "policy.py", "backtest/engine.py"}


def test_analyses_no_longer_import_stages_as_a_library() -> None:
    importers = _where(
        lambda n: (
            isinstance(n, ast.ImportFrom)
            and (n.module or "").startswith(
                (
                    "retrainflow.stages.train",
                    "retrainflow.stages.evaluate",
                    "retrainflow.stages.pull",
                )
            )
        )
    )
    assert importers <= {
        "stages/evaluate.py",
        "stages/promote.py",
        "stages/monitor.py",
        "pipeline.py",
        "airflow/dag_factory.py",
    }, importers


# -- behaviour: the backtest's hybrid *is* auto, rules included ---------------------------------


def _engine(helpers, **overrides):  # type: ignore[no-untyped-def]
    from retrainflow.backtest.engine import _Engine, _State
    from retrainflow.backtest.strategies import Strategy, strategy_config
    from retrainflow.core import training
    from retrainflow.data.frame import TimeFrame

    cfg = helpers.config_with(
        {
            "training.params": {
                "n_estimators": 10,
                "num_leaves": 7,
                "num_threads": 1,
                "verbosity": -1,
            },
            **overrides,
        }
    )
    frame = make_synthetic(
        start=date(2023, 1, 1), days=50, rows_per_day=200, drift_day=None, seed=3
    )
    data = TimeFrame(cfg, frame)
    hybrid = Strategy("hybrid", "hybrid", window_days=20, retrain_every=1)
    engine = _Engine(
        cfg,
        data,
        date(2023, 1, 1),
        validate=False,
        drift_sample_rows=500,
        configs={"hybrid": strategy_config(cfg, hybrid)},
    )
    raw = data.rows(date(2023, 1, 1), date(2023, 1, 21))
    state = _State(
        model=training.train_model(cfg, raw),
        data_start=date(2023, 1, 1),
        data_end=date(2023, 1, 21),
        schema=dict(raw.dtypes.astype(str)),
    )
    return cfg, engine, hybrid, state


def test_backtest_hybrid_goes_stateless_on_a_schema_change(helpers) -> None:  # type: ignore[no-untyped-def]
    """The backtest's old ``_auto`` copy ignored schema changes: it warm-started anyway."""
    cfg, engine, hybrid, state = _engine(helpers)
    fit = engine._train(hybrid, state, 1, (Mode.AUTO, "scheduled"), date(2023, 1, 28))
    assert fit.mode == Mode.WARM_START and fit.model is not None
    state.schema = {**state.schema, "x1": "object"}  # the champion saw x1 as strings
    fit = engine._train(hybrid, state, 2, (Mode.AUTO, "scheduled"), date(2023, 1, 28))
    assert fit.mode == Mode.STATELESS and "schema changed" in fit.reason
    # the same facts through the resolver the pull stage calls
    facts = state.facts(cfg)
    assert (
        resolve_mode(
            cfg,
            "auto",
            facts,
            train_end=date(2023, 1, 28),
            new_rows=1400,
            schema_change={"retyped": {"x1": ["object", "float64"]}},
        ).mode
        == Mode.STATELESS
    )


def test_backtest_hybrid_goes_stateless_when_too_few_new_rows_or_window_before_data_end(
    helpers,
) -> None:  # type: ignore[no-untyped-def]
    cfg, engine, hybrid, state = _engine(helpers, **{"expectations.min_rows": 1000})
    fit = engine._train(hybrid, state, 1, (Mode.AUTO, "scheduled"), date(2023, 1, 23))
    assert fit.mode == Mode.STATELESS and "only 400 rows" in fit.reason  # 2 days x 200
    fit = engine._train(hybrid, state, 1, (Mode.AUTO, "scheduled"), date(2023, 1, 20))
    assert fit.mode == Mode.STATELESS and "nothing new" in fit.reason
    # a full window, clipped to the first day of data
    assert fit.model is not None and fit.data_start == date(2023, 1, 1)


def test_champion_facts_from_registry_tags_match_the_backtest_state() -> None:
    facts = ChampionFacts.from_tags(
        "4", {"estimator": "lightgbm", "data_end": "2023-02-10", "warm_starts_since_full": "3"}
    )
    assert facts == ChampionFacts("4", "lightgbm", date(2023, 2, 10), 3, None)
    assert ChampionFacts.from_tags("1", {}).data_end is None
    assert pd.Timestamp(facts.data_end) == pd.Timestamp("2023-02-10")
