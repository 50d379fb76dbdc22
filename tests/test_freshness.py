"""The value-of-freshness measurement (retrainflow.freshness) and ``retrainflow freshness``,
on the synthetic pipeline: 400 rows a day from 2023-01-01 to 2023-04-30, full-strength
drift from day 60 (2023-03-02).

One small measurement (tiny LightGBM models, 14-day windows, three anchors) is run once for
the module and shared by the tests that only read it.
"""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrainflow import settings
from retrainflow.exceptions import EmptyWindowError, UserError
from retrainflow.freshness import (
    AGE_COLUMNS,
    INTERVAL_COLUMNS,
    RECORD_FIELDS,
    SCHEMA_VERSION,
    FreshnessRecord,
    FreshnessResult,
    default_anchors,
    expected_metric,
    run_freshness,
    save,
)

ROWS_PER_DAY = 400
DRIFT_DAY = date(2023, 3, 2)  # day 60 of the generator
DATA_START, DATA_END = date(2023, 1, 1), date(2023, 5, 1)
WINDOW, EVAL_DAYS = 14, 7
AGES = [0, 3, 7, 14, 21, 28, 35]
#: Before the drift (its oldest windows start before the data), and two after it.
PRE, POST_1, POST_2 = date(2023, 2, 5), date(2023, 3, 16), date(2023, 4, 6)

SMALL_PARAMS = {
    "n_estimators": 20,
    "learning_rate": 0.2,
    "num_leaves": 7,
    "min_child_samples": 20,
    "num_threads": 1,
    "deterministic": True,
    "verbosity": -1,
}

#: The JSON layout this test pins (SCHEMA_VERSION 1); a change must bump the version.
RECORD_KEYS_V1 = (
    "anchor",
    "age_days",
    "train_start",
    "train_end",
    "eval_end",
    "rows",
    "eval_rows",
    "metric",
    "metrics",
    "train_cpu_seconds",
    "skipped",
)
TOP_KEYS_V1 = {
    "schema_version",
    "pipeline",
    "task",
    "primary_metric",
    "lower_is_better",
    "start",
    "end",
    "data_rows",
    "window_days",
    "eval_days",
    "delay_days",
    "min_rows",
    "ages",
    "dropped_ages",
    "intervals",
    "anchors",
    "records",
    "created_at",
    "seconds",
    "by_age",
    "by_interval",
}


def small_config(helpers: Any, **changes: Any) -> Any:
    return helpers.config_with({"training.params": SMALL_PARAMS, **changes})


@pytest.fixture(scope="module")
def fr(
    template_home: Path, helpers: Any, tmp_path_factory: pytest.TempPathFactory
) -> FreshnessResult:
    """The shared measurement, on a private copy of the seeded lake (what ``seeded`` gives)."""
    root = tmp_path_factory.mktemp("freshness_home")
    shutil.copytree(settings.Paths(template_home).lake, settings.Paths(root).lake)
    with pytest.MonkeyPatch.context() as mp:
        helpers.point_env(mp, root)
        return run_freshness(
            small_config(helpers),
            ages=AGES,
            window_days=WINDOW,
            eval_days=EVAL_DAYS,
            eval_starts=[POST_2, PRE, POST_1],
        )


def test_setup_and_every_window_ends_before_its_evaluation(fr: FreshnessResult) -> None:
    assert fr.anchors == [PRE.isoformat(), POST_1.isoformat(), POST_2.isoformat()]
    assert fr.ages == AGES and fr.dropped_ages == []
    assert (fr.start, fr.end) == (DATA_START.isoformat(), DATA_END.isoformat())
    assert fr.data_rows == ROWS_PER_DAY * 120
    assert fr.primary_metric == "roc_auc" and not fr.lower_is_better
    assert [(r.anchor, r.age_days) for r in fr.records] == [
        (a, age) for a in fr.anchors for age in AGES
    ]
    for r in fr.records:
        anchor = date.fromisoformat(r.anchor)
        train_end = date.fromisoformat(r.train_end)
        # no leakage: the newest training day is `age` days before the first scored day
        assert train_end == anchor - timedelta(days=r.age_days) and train_end <= anchor
        assert date.fromisoformat(r.train_start) == train_end - timedelta(days=WINDOW)
        assert r.eval_end == (anchor + timedelta(days=EVAL_DAYS)).isoformat()
        assert r.eval_rows == ROWS_PER_DAY * EVAL_DAYS
        if r.skipped is None:
            assert r.rows == ROWS_PER_DAY * WINDOW
            assert r.metric is not None and 0.0 <= r.metric <= 1.0
            assert r.metrics["roc_auc"] == r.metric and set(r.metrics) >= {"log_loss", "brier"}
            assert r.train_cpu_seconds > 0
    fresh = [r for r in fr.records if r.age_days == 0]
    assert all(r.train_end == r.anchor for r in fresh)


def test_windows_trained_before_the_drift_score_clearly_worse_after_it(fr: FreshnessResult) -> None:
    for anchor in (POST_1, POST_2):
        fresh = fr.record(anchor, 0)
        assert fresh.metric is not None and fresh.metric > 0.8
        stale = [
            r
            for r in fr.records
            if r.anchor == anchor.isoformat() and date.fromisoformat(r.train_end) <= DRIFT_DAY
        ]
        assert stale, anchor  # windows wholly before the drift
        for r in stale:
            # the concept flipped: a pre-drift model is near chance on post-drift rows
            assert r.metric is not None and r.metric < fresh.metric - 0.25, (anchor, r.age_days)
            assert r.metric < 0.6
    # Before the drift, staleness costs (almost) nothing.
    pre = [r.metric for r in fr.records if r.anchor == PRE.isoformat() and r.metric is not None]
    assert len(pre) == 5 and max(pre) - min(pre) < 0.03  # ages 28, 35 skipped

    by_age = {r.age_days: r for r in fr.by_age()}
    assert [r.age_days for r in fr.by_age()] == AGES
    assert by_age[0].delta_vs_fresh == 0.0 and by_age[0].n_anchors == 3
    assert by_age[3].delta_vs_fresh is not None and by_age[3].delta_vs_fresh > -0.02
    assert by_age[14].delta_vs_fresh is not None and by_age[14].delta_vs_fresh < -0.1
    assert by_age[28].delta_vs_fresh is not None and by_age[28].delta_vs_fresh < -0.2
    # delta is paired by anchor: at age 14 it is the mean over the three anchors
    pairs = [
        fr.record(a, 14).metric - fr.record(a, 0).metric  # type: ignore[operator]
        for a in (PRE, POST_1, POST_2)
    ]
    assert by_age[14].delta_vs_fresh == pytest.approx(np.mean(pairs), abs=1e-6)
    assert by_age[14].mean_metric == pytest.approx(
        np.mean([fr.record(a, 14).metric for a in (PRE, POST_1, POST_2)]), abs=1e-6
    )
    assert by_age[14].std_metric is not None and by_age[14].std_metric > 0.1
    assert by_age[14].delta_se == pytest.approx(np.std(pairs, ddof=1) / np.sqrt(3), abs=1e-6)
    assert by_age[0].delta_se == 0.0 and by_age[28].delta_se is not None


def test_intervals_translate_the_age_curve(fr: FreshnessResult) -> None:
    rows = {r.interval_days: r for r in fr.by_interval()}
    assert list(rows) == [1, 7, 14, 28]  # 28 fits: ages measured up to 35 >= 27
    assert rows[1].expected_metric == fr.by_age()[0].mean_metric
    assert rows[1].delta_vs_daily == 0.0
    e = {k: r.expected_metric for k, r in rows.items()}
    assert all(v is not None for v in e.values())
    assert e[1] >= e[7] >= e[14] >= e[28]  # type: ignore[operator]
    assert rows[28].delta_vs_daily is not None and rows[28].delta_vs_daily < -0.05
    assert rows[7].mean_age_days == 3.0 and rows[28].mean_age_days == 13.5
    ages, means = fr.age_curve()
    assert rows[14].expected_metric == pytest.approx(
        np.mean(np.interp(np.arange(14), ages, means)), abs=1e-6
    )
    # not reached by ages up to 35: left out
    assert [r.interval_days for r in fr.by_interval([1, 36, 37])] == [1, 36]


def test_expected_metric_and_the_sign_of_lower_is_better_metrics() -> None:
    assert expected_metric([0, 10], [1.0, 0.0], 1) == 1.0
    assert expected_metric([0, 10], [1.0, 0.0], 11) == pytest.approx(0.5)
    assert expected_metric([0, 10], [1.0, 0.0], 1, delay_days=2) == pytest.approx(0.8)
    assert expected_metric([0, 10], [1.0, 0.0], 12) is None
    assert expected_metric([0, 10], [1.0, 0.0], 10, delay_days=2) is None
    with pytest.raises(ValueError):
        expected_metric([0, 10], [1.0, 0.0], 0)

    def rec(anchor: str, age: int, loss: float) -> FreshnessRecord:
        return FreshnessRecord(
            anchor=anchor,
            age_days=age,
            train_start="",
            train_end="",
            eval_end="",
            rows=1,
            eval_rows=1,
            metric=loss,
            metrics={"log_loss": loss},
            train_cpu_seconds=0.1,
            skipped=None,
        )

    result = FreshnessResult(
        schema_version=SCHEMA_VERSION,
        pipeline="p",
        task="binary_classification",
        primary_metric="log_loss",
        lower_is_better=True,
        start="2023-01-01",
        end="2023-02-01",
        data_rows=1,
        window_days=7,
        eval_days=7,
        delay_days=0,
        min_rows=1,
        ages=[0, 4],
        dropped_ages=[],
        intervals=[1, 5, 9],
        anchors=["a", "b"],
        records=[rec("a", 0, 0.40), rec("a", 4, 0.50), rec("b", 0, 0.30), rec("b", 4, 0.36)],
        created_at="",
        seconds=0.0,
    )
    by_age = {r.age_days: r for r in result.by_age()}
    assert by_age[4].mean_metric == pytest.approx(0.43)
    assert by_age[4].delta_vs_fresh == pytest.approx(-0.08)  # higher loss = worse = negative
    assert by_age[4].delta_se == pytest.approx(0.02)  # pairs -0.10, -0.06
    rows = result.by_interval()
    assert [r.interval_days for r in rows] == [1, 5]
    assert rows[1].expected_metric == pytest.approx(0.39)  # mean of 0.35 .. 0.43
    assert rows[1].delta_vs_daily == pytest.approx(-0.04)


def test_json_round_trip_and_files(fr: FreshnessResult, tmp_path: Path) -> None:
    paths = save(fr, tmp_path / "out")
    assert set(paths) == {"json", "png"}
    assert paths["json"] == tmp_path / "out" / "freshness.json"
    assert paths["png"] == tmp_path / "out" / "freshness.png"
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths["png"].stat().st_size > 10_000
    assert sorted(p.name for p in paths["json"].parent.iterdir()) == [
        "freshness.json",
        "freshness.png",
    ]
    data = json.loads(paths["json"].read_text())
    assert SCHEMA_VERSION == 1 and data["schema_version"] == 1
    assert set(data) == TOP_KEYS_V1
    assert RECORD_FIELDS == RECORD_KEYS_V1
    assert all(set(r) == set(RECORD_KEYS_V1) for r in data["records"])
    assert [set(r) for r in data["by_age"]] == [set(AGE_COLUMNS)] * len(AGES)
    assert [set(r) for r in data["by_interval"]] == [set(INTERVAL_COLUMNS)] * 4
    assert FreshnessResult.from_dict(data) == fr
    assert FreshnessResult.from_dict(fr.to_dict()) == fr
    assert json.loads(json.dumps(data)) == data  # plain JSON, no NaN


def test_skipped_combinations_are_reported(fr: FreshnessResult, seeded: Any, helpers: Any) -> None:
    # Windows that start before the data (the pre-drift anchor, age 28).
    assert [(r.anchor, r.age_days) for r in fr.skipped] == [
        (PRE.isoformat(), 28),
        (PRE.isoformat(), 35),
    ]
    skipped = fr.record(PRE, 28)
    assert skipped.metric is None and skipped.metrics == {} and skipped.train_cpu_seconds == 0
    assert "starts before the data (2023-01-01)" in (skipped.skipped or "")
    assert [r.n_anchors for r in fr.by_age()] == [3, 3, 3, 3, 3, 2, 2]

    # Windows with fewer than expectations.min_rows rows (days missing from the lake), and an
    # age that fits before no anchor.
    lake = settings.paths().lake / "synthetic"
    for k in range(10):  # 2023-02-16 .. 2023-02-25
        shutil.rmtree(lake / f"date={date(2023, 2, 16) + timedelta(days=k)}")
    cfg = small_config(helpers, **{"expectations.min_rows": 3000})
    result = run_freshness(cfg, ages=[14, 7, 200], window_days=WINDOW, eval_starts=[POST_1])
    assert result.ages == [0, 7, 14] and result.dropped_ages == [200]
    assert [(r.age_days, r.skipped is None) for r in result.records] == [
        (0, True),
        (7, True),
        (14, False),
    ]
    reason = result.record(POST_1, 14).skipped or ""
    assert "only 1600 rows in [2023-02-16, 2023-03-02)" in reason
    assert "expectations.min_rows 3000" in reason
    assert result.record(POST_1, 7).rows == 11 * ROWS_PER_DAY  # 2023-02-23..25 missing
    assert [r.age_days for r in result.by_age() if r.n_anchors == 0] == [14]


def test_default_anchors() -> None:
    anchors = default_anchors(DATA_START, DATA_END, window_days=30, eval_days=7, n=4)
    assert anchors == [date(2023, 3, 2), date(2023, 3, 20), date(2023, 4, 6), date(2023, 4, 24)]
    assert anchors[-1] + timedelta(days=7) == DATA_END
    # a long window pushes the first anchor later; one anchor is the first
    assert default_anchors(DATA_START, DATA_END, window_days=80, eval_days=7, n=2) == [
        date(2023, 3, 22),
        date(2023, 4, 24),
    ]
    assert default_anchors(DATA_START, DATA_END, window_days=30, eval_days=7, n=1) == [
        date(2023, 3, 2)
    ]
    with pytest.raises(UserError, match="too short.*--window-days"):
        default_anchors(DATA_START, date(2023, 1, 20), window_days=30, eval_days=7)
    with pytest.raises(UserError, match="--anchors"):
        default_anchors(DATA_START, DATA_END, window_days=30, eval_days=7, n=0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ages": []}, "--ages is empty"),
        ({"ages": [0, -1]}, "--ages.*>= 0; got -1"),
        ({"ages": [1.5]}, "--ages.*whole number"),
        ({"window_days": 0}, "--window-days must be >= 1"),
        ({"eval_days": 0}, "--eval-days must be >= 1"),
        ({"delay_days": -2}, "--delay-days must be >= 0"),
        ({"intervals": [0, 7]}, "--intervals"),
        ({"anchors": 2, "eval_starts": [POST_1]}, "not both"),
        ({"eval_starts": []}, "--eval-start is empty"),
        (
            {"eval_starts": [date(2023, 4, 28)]},
            (
                r"--eval-start 2023-04-28: the evaluation period \[2023-04-28, 2023-05-05\) goes "
                r"beyond the data, whose last day is 2023-04-30"
            ),
        ),
        ({"eval_starts": [date(2023, 1, 20)]}, "--eval-start 2023-01-20.*starts before the data"),
        ({"start": date(2023, 1, 1), "end": date(2023, 1, 20)}, "too short"),
        ({"start": date(2023, 3, 1), "end": date(2023, 2, 1)}, "--start 2023-03-01 must be before"),
    ],
)
def test_bad_arguments(seeded: Any, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(UserError, match=match):
        run_freshness(seeded, **kwargs)


def test_no_data(synthetic_cfg: Any) -> None:
    with pytest.raises(EmptyWindowError, match="retrainflow seed synthetic"):
        run_freshness(synthetic_cfg)


def test_cli_json_end_to_end(seeded: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from retrainflow.cli.main import main

    lake = settings.paths().lake / "synthetic"
    for k in range(7):  # 2023-02-16 .. 2023-02-22: the age-21 window below is empty
        shutil.rmtree(lake / f"date={date(2023, 2, 16) + timedelta(days=k)}")
    code = main(
        [
            "freshness",
            "synthetic",
            "--ages",
            "21,3",
            "--window-days",
            "7",
            "--eval-start",
            "2023-03-16",
            "--eval-days",
            "5",
            "--intervals",
            "1,4,30",
            "--json",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    data = json.loads(out)  # JSON only on stdout
    assert data["ages"] == [0, 3, 21] and data["anchors"] == ["2023-03-16"]
    assert [r["age_days"] for r in data["by_age"]] == [0, 3, 21]
    assert [r["n_anchors"] for r in data["by_age"]] == [1, 1, 0]
    assert [r["interval_days"] for r in data["by_interval"]] == [1, 4]
    assert data["skipped"] == [
        {
            "anchor": "2023-03-16",
            "age_days": 21,
            "reason": "only 0 rows in [2023-02-16, 2023-02-23) (< expectations.min_rows 400)",
        }
    ]
    json_path, png = Path(data["paths"]["json"]), Path(data["paths"]["png"])
    # default folder: $RETRAINFLOW_HOME/artifacts/synthetic/freshness__<time>/freshness
    assert json_path.parent.parent.parent == settings.paths().artifacts / "synthetic"
    assert json_path.parent.parent.name.startswith("freshness__")
    assert json_path.parent.name == "freshness" and png.is_file()
    saved = FreshnessResult.from_dict(json.loads(json_path.read_text()))
    assert saved.eval_days == 5 and saved.window_days == 7 and len(saved.records) == 3
    assert data["mlflow_run_id"] is None


def test_cli_table_and_errors(
    seeded: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from retrainflow.cli.main import main

    out = tmp_path / "fresh"
    code = main(
        [
            "freshness",
            "synthetic",
            "--ages",
            "0,7",
            "--window-days",
            "7",
            "--eval-start",
            "2023-03-16",
            "--out",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    for word in (
        "delta_vs_fresh",
        "expected_metric",
        "delta_vs_daily",
        "freshness.json",
        "not reached by the measured ages (up to 7 days): 14, 28",
    ):
        assert word in captured.out, word
    assert "anchor 2023-03-16 age   7d: roc_auc=" in captured.err  # progress on stderr
    assert (out / "freshness.json").is_file() and (out / "freshness.png").is_file()

    for argv, words in [
        (["--ages", ""], "--ages is empty"),
        (["--ages", "0,x"], "--ages: expected comma-separated whole days"),
        (["--ages", "-3"], "--ages: every age"),
        (["--eval-start", "2023-04-28"], "goes beyond the data"),
        (["--eval-start", "28/04/2023"], "--eval-start: expected comma-separated YYYY-MM-DD"),
        (["--eval-days", "0"], "--eval-days must be >= 1"),
    ]:
        assert main(["freshness", "synthetic", *argv]) == 1, argv
        err = capsys.readouterr().err
        assert words in err and "error:" in err, (argv, err)
    with pytest.raises(SystemExit) as exc:  # argparse: mutually exclusive options
        main(["freshness", "synthetic", "--anchors", "2", "--eval-start", "2023-03-16"])
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_log_to_mlflow(fr: FreshnessResult, home: Any, helpers: Any, tmp_path: Path) -> None:
    import mlflow

    from retrainflow.freshness import log_to_mlflow
    from retrainflow.registry import Registry

    paths = save(fr, tmp_path / "out")
    run_id = log_to_mlflow(small_config(helpers), fr, paths)
    with Registry().tracking():
        run = mlflow.get_run(run_id)
        artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id, "freshness")}
        experiment = mlflow.get_experiment(run.info.experiment_id)
    assert experiment.name == "synthetic-freshness"
    assert artifacts == {"freshness/freshness.json", "freshness/freshness.png"}
    assert run.data.metrics["age_14.delta_vs_fresh"] < -0.1
    assert run.data.metrics["interval_1.delta_vs_daily"] == 0.0
    assert run.data.params["window_days"] == str(WINDOW)
