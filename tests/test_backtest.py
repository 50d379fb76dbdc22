"""The backtest engine (retrainflow.backtest) and ``retrainflow backtest``, on the synthetic
pipeline: 400 rows a day from 2023-01-01, full-strength drift from day 60 (2023-03-02).

One small backtest (tiny LightGBM models, 6-day batches after a 30-day warm-up) is run
once for the module and shared by the tests that only read it.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrainflow import settings
from retrainflow.backtest import (
    DEFAULT_BATCH_DAYS,
    SCHEMA_VERSION,
    STEP_FIELDS,
    SUMMARY_COLUMNS,
    BacktestResult,
    Strategy,
    default_strategies,
    run_backtest,
    save,
    select_strategies,
)
from retrainflow.backtest.progress import BacktestProgress, ProgressTracker, expected_work
from retrainflow.exceptions import UserError

ROWS_PER_DAY = 400
DRIFT_DAY = date(2023, 3, 2)  # day 60 of the generator
START, END = date(2023, 1, 1), date(2023, 5, 1)
BATCH_DAYS, WARMUP_DAYS = 6, 30
REPLAY = 0.25

#: The JSON layout this test pins (SCHEMA_VERSION 3); a change must bump the version.
STEP_KEYS_V3 = (
    "strategy",
    "step",
    "batch_start",
    "batch_end",
    "rows",
    "metric",
    "metrics",
    "retrained",
    "promoted",
    "mode",
    "reason",
    "warm_method",
    "rows_read",
    "new_rows",
    "replay_rows",
    "train_cpu_seconds",
    "train_wall_seconds",
    "peak_rss_mb",
    "train_mem_mb",
    "monitor_cpu_seconds",
    "cumulative_cpu_seconds",
    "model_size_kb",
    "num_trees",
    "data_start",
    "data_end",
    "gate_passed",
    "drift_share",
    "triggered",
)
TOP_KEYS_V3 = {
    "schema_version",
    "pipeline",
    "task",
    "primary_metric",
    "lower_is_better",
    "start",
    "end",
    "first_batch",
    "batch_days",
    "warmup_days",
    "data_rows",
    "last_n",
    "strategies",
    "steps",
    "created_at",
    "seconds",
    "summary",
    "comparisons",
}

SMALL_PARAMS = {
    "n_estimators": 20,
    "learning_rate": 0.2,
    "num_leaves": 7,
    "min_child_samples": 20,
    "num_threads": 1,
    "deterministic": True,
    "verbosity": -1,
}

STRATEGIES = [
    Strategy("static", "static", window_days=30),
    Strategy("stateless_window", "stateless", window_days=30, retrain_every=1),
    Strategy("warm_append", "warm_start", window_days=30, retrain_every=1),
    Strategy(
        "warm_replay",
        "warm_start",
        window_days=30,
        retrain_every=2,
        replay_fraction=REPLAY,
        replay_days=20,
    ),
    Strategy("warm_refit", "warm_start", window_days=30, warm_method="refit", decay_rate=0.5),
    Strategy(
        "warm_reservoir",
        "warm_start",
        window_days=30,
        replay_fraction=0.5,
        replay_source="reservoir",
        reservoir_rows=3000,
    ),
    Strategy("hybrid", "hybrid", window_days=30, full_refit_every=2),
    Strategy("policy", "policy", window_days=30, gate=True),
    # the same policy with a cooldown longer than the run: one retrain at most
    Strategy(
        "policy_once",
        "policy",
        window_days=30,
        gate=True,
        policy={"cooldown_hours": 24 * 365, "max_retrains_per_week": 1},
    ),
    Strategy("stateless_full", "stateless", window_days=None, retrain_every=2),
    Strategy("oracle", "oracle", window_days=30),
]


def small_config(helpers: Any) -> Any:
    return helpers.config_with(
        {"training.params": SMALL_PARAMS, "training.warm_start.num_boost_round": 10}
    )


@pytest.fixture(scope="module")
def bt(
    template_home: Path, helpers: Any, tmp_path_factory: pytest.TempPathFactory
) -> BacktestResult:
    """The shared backtest, on a private copy of the seeded lake (what ``seeded`` gives)."""
    root = tmp_path_factory.mktemp("backtest_home")
    shutil.copytree(settings.Paths(template_home).lake, settings.Paths(root).lake)
    with pytest.MonkeyPatch.context() as mp:
        helpers.point_env(mp, root)
        return run_backtest(
            small_config(helpers),
            start=START,
            end=END,
            batch_days=BATCH_DAYS,
            warmup_days=WARMUP_DAYS,
            strategies=STRATEGIES,
            drift_sample_rows=2000,
        )


def _mean(values: list[float | None]) -> float:
    return float(np.mean([v for v in values if v is not None]))


def test_every_strategy_scores_every_batch_before_training_on_it(bt: BacktestResult) -> None:
    n_batches = -(-((END - START).days - WARMUP_DAYS) // BATCH_DAYS)
    assert bt.first_batch == (START + timedelta(days=WARMUP_DAYS)).isoformat()
    for name in bt.strategy_names:
        steps = bt.steps_of(name)
        assert len(steps) == n_batches
        assert [s.step for s in steps] == list(range(n_batches))
        assert steps[0].retrained and steps[0].mode == "stateless"
        for s in steps:
            # test-then-train: the model that scored the batch never saw a row of it
            assert s.data_end is not None and s.data_end <= s.batch_start
            assert (
                s.rows
                == ROWS_PER_DAY
                * (date.fromisoformat(s.batch_end) - date.fromisoformat(s.batch_start)).days
            )
            assert s.metric is not None and 0.0 <= s.metric <= 1.0
    static = bt.steps_of("static")
    assert sum(s.retrained for s in static) == 1


def test_warm_start_reads_only_new_rows_plus_replay(bt: BacktestResult) -> None:
    for name in ("warm_append", "warm_replay", "warm_refit", "warm_reservoir", "hybrid"):
        steps = bt.steps_of(name)
        warm = [(prev, s) for prev, s in itertools.pairwise(steps) if s.mode == "warm_start"]
        assert warm, name
        for prev, s in warm:
            new_days = (date.fromisoformat(s.batch_start) - date.fromisoformat(prev.data_end)).days
            assert s.new_rows == ROWS_PER_DAY * new_days, (name, s)
            assert s.data_start == prev.data_end  # the new rows start where the parent ends
            assert s.rows_read == s.new_rows + s.replay_rows
            fraction = {"warm_replay": REPLAY, "warm_reservoir": 0.5}.get(name, 0.0)
            assert s.replay_rows == round(s.new_rows * fraction), (name, s)
            assert s.warm_method is not None
    # the replayed warm start reads far less than the stateless window it replaces
    replay = [s for s in bt.steps_of("warm_replay") if s.mode == "warm_start"]
    window = [s for s in bt.steps_of("stateless_window") if s.step > 0]
    assert max(s.rows_read for s in replay) <= min(s.rows_read for s in window) / 2
    assert all(s.rows_read == ROWS_PER_DAY * 30 for s in window)
    # warm_replay retrains every other batch
    assert [s.retrained for s in bt.steps_of("warm_replay")][:4] == [True, False, True, False]
    # hybrid: a full refit after two consecutive warm starts
    modes = [s.mode for s in bt.steps_of("hybrid")]
    assert modes[:7] == [
        "stateless",
        "warm_start",
        "warm_start",
        "stateless",
        "warm_start",
        "warm_start",
        "stateless",
    ]


def test_warm_methods_change_model_size_as_designed(bt: BacktestResult) -> None:
    append, refit = bt.steps_of("warm_append"), bt.steps_of("warm_refit")
    assert append[-1].num_trees == 20 + 10 * (len(append) - 1)
    assert {s.num_trees for s in refit} == {20}  # refit keeps the structure
    assert append[-1].model_size_kb > 3 * refit[-1].model_size_kb


def test_static_degrades_after_drift_while_retraining_recovers(bt: BacktestResult) -> None:
    def window(name: str, lo: date, hi: date) -> float:
        return _mean(
            [s.metric for s in bt.steps_of(name) if lo <= date.fromisoformat(s.batch_start) < hi]
        )

    before = (START, DRIFT_DAY)
    settled = (DRIFT_DAY + timedelta(days=30), END)
    static_before, static_after = window("static", *before), window("static", *settled)
    assert static_before > 0.8
    assert static_after < static_before - 0.2
    for name in ("stateless_window", "warm_append", "hybrid", "policy"):
        recovered = window(name, *settled)
        assert recovered > 0.8, (name, recovered)
        assert recovered > static_after + 0.2, name


def test_policy_triggers_on_the_drift_not_before(bt: BacktestResult) -> None:
    steps = bt.steps_of("policy")
    assert all(s.triggered is False for s in steps[1:] if s.batch_end <= DRIFT_DAY.isoformat())
    fired = [s for s in steps[1:] if s.triggered]
    assert fired and fired[0].batch_start >= DRIFT_DAY.isoformat()
    assert "drift" in fired[0].reason or "performance" in fired[0].reason
    assert all(s.retrained for s in fired)
    assert all(s.gate_passed is not None for s in fired)  # the policy strategy is gated
    assert all(s.monitor_cpu_seconds > 0 for s in steps[1:])
    assert all(s.drift_share is not None for s in steps[1:])
    # the overridden policy sees the same checks but its cooldown holds it to one retrain
    once = bt.steps_of("policy_once")
    assert [s.drift_share for s in once[1 : fired[0].step + 1]] == [
        s.drift_share for s in steps[1 : fired[0].step + 1]
    ]
    assert sum(s.triggered is True for s in once) == 1 < len(fired)
    assert any(
        "cooldown" in s.reason
        for s in once
        if s.triggered is False and s.batch_start > fired[0].batch_start
    )


def test_costs_positive_and_cumulative_compute_monotone(bt: BacktestResult) -> None:
    for name in bt.strategy_names:
        steps = bt.steps_of(name)
        cum = [s.cumulative_cpu_seconds for s in steps]
        assert all(b >= a for a, b in itertools.pairwise(cum)), name
        total = sum(s.train_cpu_seconds + s.monitor_cpu_seconds for s in steps)
        assert cum[-1] == pytest.approx(total, abs=1e-3)
        for s in steps:
            assert s.model_size_kb > 0
            if s.retrained:
                assert s.train_cpu_seconds > 0 and s.train_wall_seconds > 0
                assert s.peak_rss_mb is not None and s.peak_rss_mb > 0
                assert s.train_mem_mb is not None and s.train_mem_mb > 0
                assert s.rows_read > 0
            else:
                assert s.train_cpu_seconds == 0 and s.rows_read == 0 and s.peak_rss_mb is None
                assert s.train_mem_mb is None
    rows = {r["strategy"]: r for r in bt.summary()}
    assert rows["static"]["retrains"] == 1
    assert rows["stateless_window"]["rows_read"] > rows["warm_append"]["rows_read"]
    assert all(r["train_cpu_s"] > 0 for r in rows.values())
    # a warm start holds a week of rows, a full-history refit all of them
    assert rows["warm_refit"]["train_mem_mb"] < rows["stateless_full"]["train_mem_mb"]


def test_comparisons_are_ratios_against_the_references(bt: BacktestResult) -> None:
    rows = {r["strategy"]: r for r in bt.summary()}
    cmp = bt.comparisons()
    refs = cmp["references"]
    assert refs["stateless_full"] == "stateless_full" and refs["static"] == "static"
    assert refs["oracle"] == "oracle"
    assert refs["best_stateless"] == max(
        ("stateless_full", "stateless_window", "oracle"), key=lambda n: rows[n]["mean_metric"]
    )
    warm = {g["strategy"]: g for g in cmp["warm_start"]}
    assert set(warm) == {
        n
        for n, s in zip(bt.strategy_names, bt.strategies, strict=True)
        if s["kind"] in ("warm_start", "hybrid")
    }
    g = warm["warm_refit"]
    assert g["cpu_x_less"] == pytest.approx(
        rows["stateless_full"]["train_cpu_s"] / rows["warm_refit"]["train_cpu_s"], abs=0.06
    )
    gap = rows[refs["best_stateless"]]["mean_metric"] - rows["warm_refit"]["mean_metric"]
    assert g["points_behind_best"] == pytest.approx(100 * gap, abs=0.011)  # ROC AUC: points
    assert g["behind_best"] == pytest.approx(gap, abs=1e-4)
    assert g["pct_behind_best"] == pytest.approx(
        100 * gap / rows[refs["best_stateless"]]["mean_metric"], abs=0.011
    )
    (p,) = (g for g in cmp["policy"] if g["strategy"] == "policy")
    assert {g["strategy"] for g in cmp["policy"]} == {"policy", "policy_once"}
    assert p["retrains"] == rows["policy"]["retrains"] - 1
    assert p["oracle_retrains"] == rows["oracle"]["retrains"] - 1
    assert p["gain_points"] == pytest.approx(
        100 * (rows["policy"]["mean_metric"] - rows["static"]["mean_metric"]), abs=0.011
    )
    # no thresholds in the product: the goals are judged in benchmarks/
    assert not any(k.endswith("_met") for row in cmp["warm_start"] + cmp["policy"] for k in row)
    # without the references there is nothing to compare against
    only = BacktestResult.from_dict({**bt.to_dict(), "strategies": bt.strategies[:1]})
    assert only.comparisons()["warm_start"] == [] and only.comparisons()["policy"] == []


def test_benchmark_judges_the_comparisons_against_the_goals(
    bt: BacktestResult, tmp_path: Path
) -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "backtest_goals.py"
    spec = importlib.util.spec_from_file_location("backtest_goals", path)
    assert spec is not None and spec.loader is not None
    goals = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(goals)
    verdict = goals.judge(bt.comparisons())
    for row in verdict["warm_start"]:
        assert row["metric_met"] == (row["points_behind_best"] <= 0.5)
        assert row["cpu_met"] == (row["cpu_x_less"] is not None and row["cpu_x_less"] >= 45)
    for row in verdict["policy"]:
        assert row["retrains_met"] == (row["retrain_share"] <= 0.2)
    # an error metric has no "points": the goal reads the percent of the best value
    mae_row = {
        "strategy": "w",
        "cpu_x_less": 50.0,
        "mem_x_less": 20.0,
        "behind_best": 1.58,
        "pct_behind_best": 8.0,
        "points_behind_best": None,
    }
    (judged,) = goals.judge({"warm_start": [mae_row]})["warm_start"]
    assert judged["metric_met"] is False and judged["cpu_met"] is True
    (close,) = goals.judge({"warm_start": [{**mae_row, "pct_behind_best": 0.4}]})["warm_start"]
    assert close["metric_met"] is True
    strict = goals.judge(bt.comparisons(), {"points_behind_best": -100.0})
    assert not any(r["metric_met"] for r in strict["warm_start"])
    out = save(bt, tmp_path / "bt")
    assert goals.main([str(out["json"]), "--json", str(tmp_path / "goals.json")]) == 0
    assert json.loads((tmp_path / "goals.json").read_text())["goals"]["cpu_x_less"] == 45.0


def test_json_schema_and_plots(bt: BacktestResult, tmp_path: Path) -> None:
    paths = save(bt, tmp_path / "out")
    assert set(paths) == {"json", "metric_png", "compute_png"}
    for key in ("metric_png", "compute_png"):
        assert paths[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert paths[key].stat().st_size > 10_000
    data = json.loads(paths["json"].read_text())
    assert SCHEMA_VERSION == 3 and data["schema_version"] == 3
    assert set(data) == TOP_KEYS_V3
    assert STEP_FIELDS == STEP_KEYS_V3
    assert all(set(step) == set(STEP_KEYS_V3) for step in data["steps"])
    assert [set(r) for r in data["summary"]] == [set(SUMMARY_COLUMNS)] * len(STRATEGIES)
    assert [s["name"] for s in data["strategies"]] == [s.name for s in STRATEGIES]
    assert set(data["strategies"][0]) == {f.name for f in dataclasses.fields(Strategy)}
    assert BacktestResult.from_dict(data) == bt
    assert json.loads(json.dumps(data)) == data  # plain JSON, no NaN


def test_strategy_specs_and_defaults(helpers: Any) -> None:
    cfg = helpers.config_with()
    s = Strategy.from_spec({"name": "w", "kind": "warm_start", "warm_method": "refit"})
    assert s.warm and s.decay_rate == 0.9
    with pytest.raises(ValueError, match="unknown key"):
        Strategy.from_spec({"name": "w", "kind": "warm_start", "colour": "red"})
    with pytest.raises(ValueError, match="kind must be one of"):
        Strategy("w", "sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="decay_rate"):
        Strategy("w", "warm_start", decay_rate=1.5)
    names = [s.name for s in default_strategies(cfg)]
    assert len(names) == len(set(names))
    assert {
        "static",
        "stateless_full",
        "stateless_window",
        "warm_append",
        "warm_refit",
        "hybrid",
        "policy",
        "oracle",
    } <= set(names)
    # the dominated, costly LightGBM variants only on request (by name or "all")
    everything = [s.name for s in default_strategies(cfg, extras=True)]
    assert not set(names) & {"warm_replay", "warm_reservoir", "warm_refit_append"}
    assert set(everything) - set(names) == {"warm_replay", "warm_reservoir", "warm_refit_append"}
    assert [s.name for s in select_strategies(cfg, ["all"])] == everything
    assert [s.name for s in select_strategies(cfg, None)] == names
    assert select_strategies(cfg, ["warm_reservoir"])[0].replay_source == "reservoir"
    weekly = {s.name: s.retrain_every for s in default_strategies(cfg, batch_days=1)}
    assert weekly["stateless_window"] == 7 and weekly["oracle"] == 1
    assert [s.name for s in select_strategies(cfg, ["oracle", "static"])] == ["oracle", "static"]
    with pytest.raises(UserError, match="known: static"):
        select_strategies(cfg, ["nope"])
    rf = helpers.config_with(
        {"training.estimator": "random_forest", "training.params": {}, "training.mode": "stateless"}
    )
    assert not any(s.warm for s in default_strategies(rf))


def test_cli_backtest(seeded: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from retrainflow.cli.main import main

    out = tmp_path / "bt"
    code = main(
        [
            "backtest",
            "synthetic",
            "--start",
            "2023-02-01",
            "--end",
            "2023-04-01",
            "--batch-days",
            "14",
            "--warmup-days",
            "20",
            "--strategies",
            "static,warm_refit,stateless_window",
            "--out",
            str(out),
        ]
    )
    text = capsys.readouterr().out
    assert code == 0
    for word in ("static", "warm_refit", "stateless_window", "mean_metric", "backtest.json"):
        assert word in text
    data = json.loads((out / "backtest.json").read_text())
    assert [r["strategy"] for r in data["summary"]] == ["static", "warm_refit", "stateless_window"]
    assert (out / "metric_over_time.png").is_file() and (out / "cumulative_compute.png").is_file()

    assert main(["backtest", "synthetic", "--strategies", "nope"]) == 1
    assert "known: static" in capsys.readouterr().err
    assert main(["backtest", "synthetic", "--threads", "-1"]) == 1
    assert "--threads must be >= 0" in capsys.readouterr().err


def test_strategy_file_adds_policies_and_names_bad_specs(
    seeded: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from retrainflow.backtest import load_strategies
    from retrainflow.cli.main import main

    good = tmp_path / "policies.yaml"
    good.write_text(
        "strategies:\n"
        "  - {name: cautious, kind: policy, gate: true,\n"
        "     policy: {cooldown_hours: 336, drift_m: 3, drift_n: 3}}\n"
    )
    (s,) = load_strategies(good)
    assert s.kind == "policy" and s.policy == {"cooldown_hours": 336, "drift_m": 3, "drift_n": 3}
    code = main(
        [
            "backtest",
            "synthetic",
            "--start",
            "2023-02-01",
            "--end",
            "2023-03-20",
            "--batch-days",
            "7",
            "--warmup-days",
            "20",
            "--strategies",
            "static",
            "--strategy-file",
            str(good),
            "--json",
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and [r["strategy"] for r in data["summary"]] == ["static", "cautious"]

    for text, message in (
        ("[1, 2]", "expected a list of strategy mappings"),
        ("- {name: x, kind: policy, colour: red}", "strategy #1: .*unknown key"),
        (
            "- {name: x, kind: static, policy: {cooldown_hours: 1}}",
            "policy overrides need kind 'policy'",
        ),
    ):
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(UserError, match=message):
            load_strategies(bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text("- {name: typo, kind: policy, policy: {cooldown_hour: 1}}")
    assert (
        main(["backtest", "synthetic", "--strategies", "static", "--strategy-file", str(typo)]) == 1
    )
    assert "strategy 'typo': policy override cooldown_hour" in capsys.readouterr().err


def test_parallel_replay_gives_the_sequential_results(
    bt: BacktestResult, template_home: Path, helpers: Any, tmp_path: Path
) -> None:
    """``jobs=2`` forks workers, one strategy each: every step but the timings is identical."""
    shutil.copytree(settings.Paths(template_home).lake, settings.Paths(tmp_path).lake)
    names = ["static", "warm_refit", "policy", "oracle"]
    timing = {
        "train_cpu_seconds",
        "train_wall_seconds",
        "peak_rss_mb",
        "train_mem_mb",
        "monitor_cpu_seconds",
        "cumulative_cpu_seconds",
    }
    events: list[BacktestProgress] = []
    with pytest.MonkeyPatch.context() as mp:
        helpers.point_env(mp, tmp_path)
        par = run_backtest(
            small_config(helpers),
            start=START,
            end=END,
            batch_days=BATCH_DAYS,
            warmup_days=WARMUP_DAYS,
            drift_sample_rows=2000,
            jobs=2,
            strategies=[s for s in STRATEGIES if s.name in names],
            progress=events.append,
        )
    assert par.strategy_names == names  # the given order, whatever order they finished in
    # progress counts the steps finished in the workers, one event per step
    n_steps = len(names) * len(par.steps_of("static"))
    assert [e.done for e in events] == list(range(1, n_steps + 1))
    assert {e.total for e in events} == {n_steps} and events[-1].fraction == 1.0
    assert {e.strategy for e in events} == set(names)
    for name in names:
        ours = [
            {k: v for k, v in r.to_dict().items() if k not in timing} for r in par.steps_of(name)
        ]
        seq = [{k: v for k, v in r.to_dict().items() if k not in timing} for r in bt.steps_of(name)]
        assert ours == seq, name
        assert all(r.train_cpu_seconds > 0 for r in par.steps_of(name) if r.retrained)
    with pytest.raises(ValueError, match="jobs must be >= 1"):
        run_backtest(small_config(helpers), jobs=0)
    with pytest.raises(UserError, match="unique names"):
        run_backtest(small_config(helpers), strategies=[STRATEGIES[0], STRATEGIES[0]])


# -- defaults, progress and the goal line (issue 10) -------------------------------------------


def test_weekly_batches_by_default_and_cadences_keep_their_meaning(helpers: Any) -> None:
    import inspect

    from retrainflow.cli import backtest_cmd
    from retrainflow.cli.main import build_parser

    assert DEFAULT_BATCH_DAYS == 7 == backtest_cmd.DEFAULT_BATCH_DAYS
    assert inspect.signature(run_backtest).parameters["batch_days"].default == 7
    parser = build_parser()
    assert parser.parse_args(["backtest", "flights"]).batch_days == 7
    assert parser.parse_args(["backtest", "flights", "--daily"]).batch_days == 1
    assert parser.parse_args(["backtest", "flights", "--batch-days", "3"]).batch_days == 3
    assert parser.parse_args(["backtest", "flights", "--jobs", "auto"]).jobs is None
    with pytest.raises(SystemExit):  # one cadence or the other
        parser.parse_args(["backtest", "flights", "--daily", "--batch-days", "3"])

    cfg = helpers.config_with()
    weekly = {s.name: s for s in default_strategies(cfg)}
    daily = {s.name: s for s in default_strategies(cfg, batch_days=1)}
    periodic = [n for n, s in weekly.items() if s.kind not in ("static", "policy", "oracle")]
    assert periodic and "stateless_full" in periodic and "warm_refit" in periodic
    for name in periodic:  # "weekly" strategies retrain every 7 days at both batch sizes
        assert weekly[name].retrain_every == 1 and "every 7 days" in weekly[name].description
        assert daily[name].retrain_every == 7 and "every 7 days" in daily[name].description
    # the oracle and the policy run at every batch: they say so, in days
    assert "every batch (7 days)" in weekly["oracle"].description
    assert "every day" in daily["oracle"].description and "every day" in daily["policy"].description
    # weekly, the oracle *is* stateless_window (replayed once); daily it is not
    assert weekly["oracle"].replay_key() == weekly["stateless_window"].replay_key()
    assert daily["oracle"].replay_key() != daily["stateless_window"].replay_key()
    # a name that seeds random draws (a replay sample) keeps twins apart
    w = Strategy("a", "warm_start", replay_fraction=0.2)
    assert w.replay_key() != dataclasses.replace(w, name="b").replay_key()
    s = Strategy("a", "stateless", window_days=30)
    assert s.replay_key() == dataclasses.replace(s, name="b", description="x").replay_key()


def test_twin_strategies_are_replayed_once(
    template_home: Path, helpers: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An oracle on weekly batches is stateless_window: one set of fits serves both; and
    a later stateless fit of the same window is made once for the strategies that ask
    for it (warm-up fits are each strategy's own)."""
    from retrainflow.core import training

    shutil.copytree(settings.Paths(template_home).lake, settings.Paths(tmp_path).lake)
    helpers.point_env(monkeypatch, tmp_path)
    fits: list[int] = []
    real = training.train_model

    def counting(*args: Any, **kwargs: Any) -> Any:
        fits.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "train_model", counting)
    events: list[BacktestProgress] = []
    twins = [
        Strategy("static", "static", window_days=30),
        Strategy("stateless_window", "stateless", window_days=30),
        Strategy("oracle", "oracle", window_days=30),
        Strategy("every_2", "stateless", window_days=30, retrain_every=2),
    ]
    res = run_backtest(
        small_config(helpers),
        start=START,
        end=date(2023, 3, 1),
        warmup_days=WARMUP_DAYS,
        strategies=twins,
        progress=events.append,
    )
    assert res.batch_days == 7
    assert res.strategy_names == ["static", "stateless_window", "oracle", "every_2"]
    window, oracle = res.steps_of("stateless_window"), res.steps_of("oracle")
    static, every_2 = res.steps_of("static"), res.steps_of("every_2")
    assert len(window) == 5 and all(r.retrained for r in oracle)
    assert [r.retrained for r in every_2] == [True, False, True, False, True]
    # 5 (stateless_window = oracle) + static's and every_2's own warm-up fits; every_2's
    # steps 2 and 4 are stateless_window's fits (the same model, the same measured cost)
    assert len(fits) == 5 + 2
    for i in (2, 4):
        assert every_2[i].metric == window[i].metric
        assert every_2[i].train_cpu_seconds == window[i].train_cpu_seconds > 0
    assert static[0].metric == window[0].metric  # a deterministic fit of the same window
    assert [dataclasses.replace(r, strategy="x") for r in window] == [
        dataclasses.replace(r, strategy="x") for r in oracle
    ]
    # the progress counts the steps actually replayed
    assert [e.done for e in events] == list(range(1, 16)) and events[-1].total == 15


def test_progress_tracker_weighs_steps_and_estimates_the_time_left() -> None:
    now = [100.0]
    events: list[BacktestProgress] = []
    tracker = ProgressTracker({"cheap": [1, 1], "dear": [2, 6]}, events.append, lambda: now[0])
    assert tracker.total == 4 and tracker.done == 0
    now[0] = 110.0
    first = tracker.advance("dear", 0, "2023-01-01", 0.75)
    assert first is not None and events == [first]
    assert first.done == 1 and first.fraction == pytest.approx(0.2)
    assert first.eta_seconds == pytest.approx(40.0)  # 10 s for a fifth of the work
    assert "20% 1/4 steps, 0:10 elapsed, ETA 0:40 (dear 2023-01-01 0.750)" in first.line()
    now[0] = 120.0
    tracker.advance("cheap", 1, "2023-01-08", None)  # both steps of "cheap" at once
    assert events[-1].done == 3 and events[-1].fraction == pytest.approx(0.4)
    assert tracker.advance("cheap", 0, "2023-01-01", None) is None  # late message: ignored
    now[0] = 3845.0
    last = tracker.advance("dear", 1, "2023-01-08", 0.5)
    assert last is not None and last.done == 4 and last.fraction == 1.0
    assert last.eta_seconds == 0.0 and "1:02:25 elapsed" in last.line()
    assert len(events) == 3


def test_expected_work_follows_the_rows_a_step_trains_on(helpers: Any) -> None:
    import pandas as pd

    from retrainflow.data.frame import TimeFrame

    cfg = helpers.config_with()
    days = pd.date_range("2023-01-01", periods=70, freq="D")
    frame = pd.DataFrame({cfg.time_column: days.repeat(10), cfg.target: 0})
    data = TimeFrame(cfg, frame)
    start = date(2023, 1, 1)
    batches = [(start + timedelta(days=d), start + timedelta(days=d + 7)) for d in (28, 35, 42)]

    def work(s: Strategy) -> list[float]:
        return expected_work(data, start, s, batches)

    assert work(Strategy("s", "static", window_days=14)) == [70 + 140, 70, 70]
    assert work(Strategy("f", "stateless")) == [70 + 280, 70 + 350, 70 + 420]  # all history
    assert work(Strategy("w", "stateless", window_days=14)) == [210, 210, 210]
    assert work(Strategy("o", "oracle", window_days=14)) == [210, 210, 210]
    assert work(Strategy("a", "warm_start", window_days=14, replay_fraction=0.5)) == [
        210,
        70 + 105,
        70 + 105,
    ]
    every_2 = Strategy("a2", "warm_start", window_days=14, retrain_every=2)
    assert work(every_2) == [210, 70, 70 + 140]
    hybrid = Strategy("h", "hybrid", window_days=14, full_refit_every=1)
    assert work(hybrid) == [210, 70 + 70, 70 + 140]  # a warm start, then a full window


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _events(n: int) -> list[BacktestProgress]:
    tracker = ProgressTracker({"s": [1.0] * n}, None, lambda: 0.0)
    out = [tracker.advance("s", i, f"2023-01-{i + 1:02d}", 0.5) for i in range(n)]
    return [e for e in out if e is not None]


def test_progress_bar_on_a_terminal_and_in_a_log() -> None:
    from retrainflow.cli.backtest_cmd import ProgressBar

    term = _Terminal()
    bar = ProgressBar(term, interval=0.0)
    for event in _events(4):
        bar(event)
    bar.close()
    text = term.getvalue()
    assert text.count("\r\033[K") == 4 and text.endswith("\n") and text.count("\n") == 1
    assert "[" + "#" * 24 + "] 100% 4/4 steps" in text and "ETA 0:00" in text

    throttled = _Terminal()  # a long interval shows the first event and the last
    bar = ProgressBar(throttled, interval=3600.0)
    for event in _events(4):
        bar(event)
    assert throttled.getvalue().count("\r") == 2 and "4/4 steps" in throttled.getvalue()

    log = io.StringIO()  # not a terminal: a line per tenth of the work, and the end
    bar = ProgressBar(log)
    for event in _events(50):
        bar(event)
    bar.close()
    lines = log.getvalue().splitlines()
    assert len(lines) == 10 and "\r" not in log.getvalue()
    assert lines[0].startswith(" 10% 5/50 steps") and lines[-1].startswith("100% 50/50 steps")
    assert all("ETA" in line for line in lines)


def test_cli_backtest_defaults_progress_and_goal_line(
    seeded: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from retrainflow.cli.backtest_cmd import GOALS_SCRIPT
    from retrainflow.cli.main import main

    # the script the goal line names exists (in a source checkout)
    assert (Path(__file__).resolve().parents[1] / GOALS_SCRIPT).is_file()
    args = ["backtest", "synthetic", "--start", "2023-02-01", "--end", "2023-03-08"]
    args += ["--warmup-days", "20", "--strategies", "static,warm_refit", "--out"]
    assert main([*args, str(tmp_path / "w")]) == 0
    out, err = capsys.readouterr()
    data = json.loads((tmp_path / "w" / "backtest.json").read_text())
    assert data["batch_days"] == 7 and len(data["steps"]) == 2 * 3  # 15 days: 3 weeks
    # stderr is not a terminal here: sparse lines with the ETA, the last at 100 %
    progress = err.strip().splitlines()
    assert 1 <= len(progress) <= 11 and progress[-1].startswith("100% 6/6 steps")
    # the goal verdict is not the product's: the line says so and how to get it
    assert "goals: no verdict here" in out
    assert f"python {GOALS_SCRIPT} {tmp_path / 'w' / 'backtest.json'}" in out
    assert "no warm-start comparison: it needs stateless on all history (stateless_full) " in out
    assert "no policy comparison: it needs static, oracle [missing]" in out

    assert main([*args, str(tmp_path / "d"), "--daily", "--jobs", "1", "--json"]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert summary["goal_check"] == f"python {GOALS_SCRIPT} {tmp_path / 'd' / 'backtest.json'}"
    daily = json.loads((tmp_path / "d" / "backtest.json").read_text())
    assert daily["batch_days"] == 1 and len(daily["steps"]) == 2 * 15
    assert err == ""  # --json: progress only on a terminal
    assert main([*args, str(tmp_path / "x"), "--jobs", "0"]) == 1
    assert "--jobs must be >= 1 or 'auto'" in capsys.readouterr().err
