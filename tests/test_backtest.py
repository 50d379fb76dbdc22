"""The backtest engine (retrainflow.backtest) and ``retrainflow backtest``, on the synthetic
pipeline: 400 rows a day from 2023-01-01, full-strength drift from day 60 (2023-03-02).

One small backtest (tiny LightGBM models, 6-day batches after a 30-day warm-up) is run
once for the module and shared by the tests that only read it.
"""

from __future__ import annotations

import dataclasses
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
        "warm_replay",
        "warm_refit",
        "hybrid",
        "policy",
        "oracle",
    } <= set(names)
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
    lines: list[str] = []
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
            progress=lines.append,
        )
    assert par.strategy_names == names  # the given order, whatever order they finished in
    assert len(lines) == len(names) and all("batches done" in line for line in lines)
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
