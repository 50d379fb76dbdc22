"""``retrainflow init``: a commented pipeline config profiled from a CSV or Parquet file.

Files are made by each test with pandas in ``tmp_path``; the configs are written into a
temporary ``RETRAINFLOW_CONFIG_DIR`` and must load with :func:`load_config` and pass
``retrainflow validate-config``. Nothing here trains a model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from retrainflow.cli.main import main
from retrainflow.config import load_config
from retrainflow.data.profile import (
    binary_labels,
    check_pipeline_name,
    init_pipeline,
    profile_file,
    target_problem,
)
from retrainflow.data.sources import ParquetLakeSource
from retrainflow.data.synthetic import make_synthetic
from retrainflow.exceptions import (
    ConfigExistsError,
    InvalidPipelineNameError,
    ProfileError,
    TaskMismatchError,
)

START = date(2023, 1, 1)


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


Cli = Callable[..., Result]


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty config directory and home, as a new user starts."""
    directory = tmp_path / "config"
    monkeypatch.setenv("RETRAINFLOW_CONFIG_DIR", str(directory))
    monkeypatch.setenv("RETRAINFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RETRAINFLOW_DEBUG", raising=False)
    return directory


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    def run(*argv: str) -> Result:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def _binary_csv(tmp_path: Path, days: int = 60, rows_per_day: int = 200) -> Path:
    frame = make_synthetic(START, days, rows_per_day, drift_day=None, seed=1)
    path = tmp_path / "events.csv"
    frame.to_csv(path, index=False)
    return path


def _trending_regression(days: int = 240, stores: int = 8) -> pd.DataFrame:
    """Daily sales of a few stores (dates at midnight) that grow over time."""
    rng = np.random.default_rng(7)
    day = np.repeat(pd.date_range(START, periods=days, freq="D"), stores)
    n = len(day)
    store = np.tile(np.arange(1, stores + 1), days)
    promo = rng.random(n) < 0.2
    temperature = rng.normal(15, 8, n)
    trend = np.repeat(np.linspace(100, 400, days), stores)
    sales = trend * (1 + 0.1 * store / stores) + 30 * promo + rng.normal(0, 10, n)
    return pd.DataFrame(
        {
            "day": day,
            "store": store,
            "promo": promo,
            "temperature": temperature,
            "sales": sales,
        }
    )


def _parquet(frame: pd.DataFrame, path: Path, row_group_size: int = 500) -> Path:
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=row_group_size
    )
    return path


# -- a binary CSV ---------------------------------------------------------------------------


def test_binary_csv_writes_a_config_that_loads_and_validates(
    tmp_path: Path, config_dir: Path, cli: Cli
) -> None:
    data = _binary_csv(tmp_path)
    res = cli("init", "events", "--from", str(data), "--time-column", "ts", "--target", "label")
    assert res.code == 0, res.err
    path = config_dir / "events.yaml"
    cfg = load_config(path)

    assert cfg.task == "binary_classification"
    assert (cfg.target, cfg.time_column) == ("label", "ts")
    assert cfg.features.numeric == ["x1", "x2", "x3", "x4"]
    assert cfg.features.categorical == ["segment", "channel"]
    assert cfg.features.time_parts == ["hour", "day_of_week"]  # timestamps within the day
    assert cfg.source.kind == "parquet" and cfg.source.path == "events"
    assert cfg.schedule is None
    assert (cfg.training.estimator, cfg.training.mode) == ("lightgbm", "auto")
    assert cfg.training.warm_start.method == "refit"
    assert cfg.training.window_days == 20  # a third of 60 days
    assert cfg.evaluation.primary_metric == "roc_auc"
    assert cfg.evaluation.holdout_days == 7
    assert cfg.evaluation.floors == {"roc_auc": 0.5}
    cols = cfg.expectations.columns
    assert cols["label"].allowed == [0, 1] and not cols["label"].nullable
    assert cols["segment"].allowed == ["a", "b", "c"]
    assert cols["ts"].type == "datetime"
    frame = pd.read_csv(data)
    for col in ("x1", "x2", "x3"):  # the observed range lies inside the widened one
        low, high = frame[col].min(), frame[col].max()
        assert cols[col].min < low and cols[col].max > high
        assert cols[col].max - cols[col].min >= 1.9 * (high - low)
    assert cols["x4"].min == 0  # never negative: the margin stops at 0
    # 200 rows a day: min_rows is half a week, min_new_rows about four weeks.
    assert cfg.expectations.min_rows == 700
    assert cfg.monitoring.policy.min_new_rows == 5600
    assert cfg.monitoring.drift.columns["segment"].method == "jensenshannon"

    text = path.read_text()
    assert "all 12,000 rows" in text  # says how many rows were profiled
    assert "# inferred from the values of label: 0, 1" in text

    assert "retrainflow ingest events" in res.out
    assert "retrainflow retrain events --date 2023-03-02" in res.out  # the day after 2023-03-01
    assert "retrainflow monitor events --date 2023-03-02 --no-trigger" in res.out

    checked = cli("validate-config", "--no-data", str(path))
    assert checked.code == 0, checked.out
    row = next(line for line in checked.out.splitlines() if str(path) in line)
    assert row.split()[1:3] == ["events", "ok"] and "--no-data" in row


def test_init_refuses_to_overwrite_without_force(
    tmp_path: Path, config_dir: Path, cli: Cli
) -> None:
    data = _binary_csv(tmp_path, days=30)
    args = ("init", "events", "--from", str(data), "--time-column", "ts", "--target", "label")
    assert cli(*args).code == 0
    path = config_dir / "events.yaml"
    path.write_text(path.read_text() + "# my own edit\n")

    again = cli(*args)
    assert again.code == 1
    assert f"{path} already exists" in again.err
    assert "--force" in again.err
    assert path.read_text().endswith("# my own edit\n")  # untouched

    forced = cli(*args, "--force")
    assert forced.code == 0, forced.err
    assert forced.out.startswith(f"overwrote {path}")
    assert "# my own edit" not in path.read_text()
    with pytest.raises(ConfigExistsError):
        init_pipeline("events", data, time_column="ts", target="label")


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../evil", "looks like a path"),
        ("/tmp/evil", "looks like a path"),
        ("sub/evil", "looks like a path"),
        ("evil.yaml", "looks like a path"),
        ("My-Sales", "not a valid pipeline name"),
        ("9lives", "not a valid pipeline name"),
        ("", "not a valid pipeline name"),
    ],
)
def test_init_refuses_names_that_are_not_names(
    name: str, why: str, tmp_path: Path, config_dir: Path, cli: Cli
) -> None:
    with pytest.raises(InvalidPipelineNameError, match=why):
        check_pipeline_name(name)
    data = _binary_csv(tmp_path, days=30)
    res = cli("init", name, "--from", str(data), "--time-column", "ts", "--target", "label")
    assert res.code == 1
    assert why in res.err
    assert not config_dir.exists() or not list(config_dir.iterdir())
    assert not list(tmp_path.glob("*.yaml"))


def test_wrong_column_names_are_refused_with_the_columns_listed(
    tmp_path: Path, config_dir: Path, cli: Cli
) -> None:
    data = _binary_csv(tmp_path, days=30)
    res = cli("init", "events", "--from", str(data), "--time-column", "time", "--target", "label")
    assert res.code == 1
    assert "has no column 'time' (given as --time-column)" in res.err
    assert "'ts'" in res.err and "'x1'" in res.err  # the columns it does have
    assert "next: Check the file and the columns" in res.err

    with pytest.raises(ProfileError, match=r"no column 'late' \(given as --target\)"):
        profile_file(data, time_column="ts", target="late")
    with pytest.raises(ProfileError, match="holds numbers"):
        profile_file(data, time_column="x1", target="label")
    with pytest.raises(ProfileError, match="both the time column and the target"):
        profile_file(data, time_column="ts", target="ts")
    assert not config_dir.exists()


# -- a regression Parquet -------------------------------------------------------------------


def test_regression_parquet_daily_dates(tmp_path: Path, config_dir: Path, cli: Cli) -> None:
    data = _parquet(_trending_regression(), tmp_path / "sales.parquet")
    res = cli("init", "sales", "--from", str(data), "--time-column", "day", "--target", "sales")
    assert res.code == 0, res.err
    cfg = load_config(config_dir / "sales.yaml")

    assert cfg.task == "regression"
    assert cfg.features.numeric == ["temperature"]
    assert cfg.features.categorical == ["store", "promo"]  # 8 whole-number values, a boolean
    assert cfg.features.time_parts == ["day_of_week", "month"]  # one date a day
    assert cfg.evaluation.primary_metric == "mae"
    assert cfg.evaluation.guardrails == {"r2": 0.02}
    assert set(cfg.evaluation.floors) == {"mae"}  # a ceiling: the target's std
    frame = pd.read_parquet(data)
    assert cfg.evaluation.floors["mae"] >= frame["sales"].std()
    assert cfg.monitoring.policy.performance_drop == "10%"  # MAE is in the target's units
    # min(60, 240 / 3) = 60 days x 8 rows = 480 < 1,000 rows: widened to 125 days, under
    # the cap of half the span (120): 120 days
    assert cfg.training.window_days == 120
    cols = cfg.expectations.columns
    assert cols["sales"].type == "float" and cols["sales"].min == 0
    assert cols["sales"].max > frame["sales"].max()
    assert cols["store"].allowed == list(range(1, 9)) and cols["store"].type == "int"
    assert cols["promo"].type == "bool"
    # 8 rows a day: half a week (28) is raised to 100, half of the 200-row holdout (25 days)
    assert cfg.expectations.min_rows == 100
    assert cfg.evaluation.holdout_days == 25
    assert "retrainflow retrain sales --date 2023-08-29" in res.out  # 240 days from Jan 1st
    assert cli("validate-config", "--no-data", str(config_dir / "sales.yaml")).code == 0


def test_large_files_are_sampled_but_the_time_column_is_read_in_full(tmp_path: Path) -> None:
    frame = _trending_regression(days=300, stores=20)  # 6,000 rows in 12 row groups
    data = _parquet(frame, tmp_path / "sales.parquet")
    profile = profile_file(data, time_column="day", target="sales", max_rows=1000)
    assert profile.total_rows == 6000
    assert 0 < profile.sampled_rows <= 1000
    assert "of 6,000 rows" in profile.sampling and "row groups" in profile.sampling
    assert profile.time.rows == 6000
    assert (profile.time.first_day, profile.time.last_day) == (START, START + timedelta(299))
    assert profile.time.median_day_rows == 20

    csv = tmp_path / "events.csv"
    make_synthetic(START, 50, 100, drift_day=None, seed=2).to_csv(csv, index=False)
    sampled = profile_file(csv, time_column="ts", target="label", max_rows=700)
    assert 350 <= sampled.sampled_rows <= 700
    assert "every 8th row" in sampled.sampling  # 5,000 rows: the stride doubled to 8
    assert sampled.time.rows == 5000 and sampled.time.span_days == 50
    text_cfg = init_pipeline(
        "sampled", csv, time_column="ts", target="label", directory=tmp_path / "c", max_rows=700
    )
    assert f"{sampled.sampled_rows} of 5,000 rows" in text_cfg.path.read_text()


# -- the task: inferred, checked, refused ---------------------------------------------------


def _frame_with_target(target: list | np.ndarray, days: int = 40) -> pd.DataFrame:
    n = len(target)
    rng = np.random.default_rng(3)
    ts = pd.Timestamp(START) + pd.to_timedelta(np.sort(rng.integers(0, days * 86400, n)), "s")
    return pd.DataFrame({"ts": ts, "x": rng.normal(size=n), "target": target})


def test_count_target_refuses_binary_and_infers_regression(tmp_path: Path) -> None:
    counts = np.arange(4000) % 38  # 0 .. 37
    data = tmp_path / "counts.csv"
    _frame_with_target(counts).to_csv(data, index=False)
    with pytest.raises(TaskMismatchError, match=r"0, 1, 2, 3, 4, 5, 6, …, 37") as info:
        profile_file(data, time_column="ts", target="target", task="binary_classification")
    assert "38 distinct values" in info.value.message and "'regression'" in info.value.message
    assert info.value.task == "binary_classification"
    assert profile_file(data, time_column="ts", target="target").target.task == "regression"


def test_string_target_refuses_regression(tmp_path: Path, config_dir: Path, cli: Cli) -> None:
    data = tmp_path / "colours.csv"
    _frame_with_target(np.resize(["red", "green", "blue"], 3000)).to_csv(data, index=False)
    res = cli(
        "init", "colours", "--from", str(data), "--time-column", "ts", "--target", "target",
        "--task", "regression",
    )  # fmt: skip
    assert res.code == 1
    assert "'regression' needs a numeric target" in res.err
    assert "'blue', 'green', 'red'" in res.err
    assert "next: Pass the --task that fits" in res.err
    # and no task fits three labels
    with pytest.raises(TaskMismatchError, match="3 labels"):
        profile_file(data, time_column="ts", target="target")
    assert not config_dir.exists()


def test_two_labels_are_binary_and_the_mapping_is_said(
    tmp_path: Path, config_dir: Path, cli: Cli
) -> None:
    rng = np.random.default_rng(0)
    data = tmp_path / "churn.csv"
    _frame_with_target(np.where(rng.random(3000) < 0.2, "yes", "no")).to_csv(data, index=False)
    res = cli("init", "churn", "--from", str(data), "--time-column", "ts", "--target", "target")
    assert res.code == 0, res.err
    cfg = load_config(config_dir / "churn.yaml")
    assert cfg.task == "binary_classification"
    assert cfg.expectations.columns["target"].allowed == [0, 1]
    text = (config_dir / "churn.yaml").read_text()
    prose = " ".join(line.lstrip("# ") for line in text.splitlines())
    assert "store 'yes' as 1 (the positive class) and 'no' as 0 before ingesting" in prose
    assert "1. in churn.csv, store 'target' 'yes' as 1 and 'no' as 0" in res.out
    assert res.out.index("1. in churn.csv") < res.out.index("2. retrainflow ingest")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["no", "yes", "no"], ("no", "yes")),
        (["True", "False"], ("False", "True")),
        (["churned", "stayed", "stayed", "stayed"], ("stayed", "churned")),  # the rarer one
        ([1, 2, 2], (1, 2)),
        ([0, 1, 1], None),  # already 0/1
        ([True, False], None),
        (["a", "b", "c"], None),
    ],
)
def test_binary_labels(values: list, expected: tuple | None) -> None:
    assert binary_labels(pd.Series(values)) == expected


@pytest.mark.parametrize(
    ("task", "values", "problem"),
    [
        ("binary_classification", [0, 1, 1, None], None),
        ("binary_classification", [0.0, 1.0], None),
        ("binary_classification", [True, False], None),
        ("binary_classification", [0, 0], None),  # one class in a sample is the contract's job
        ("binary_classification", [0, 1, 2, 3], "4 distinct values: 0, 1, 2, 3"),
        ("binary_classification", ["no", "yes"], "store 'yes' as 1 and 'no' as 0"),
        ("binary_classification", ["0", "1"], "store '1' as 1 and '0' as 0"),
        ("binary_classification", ["a", "b", "c"], "not more classes"),
        ("regression", [1.5, 2.0, 7], None),
        ("regression", [0, 1], None),
        ("regression", ["1.5", "x", "y"], "needs a numeric target; 'y' holds text"),
        ("regression", [True, False], "holds booleans"),
        ("regression", [None, None], "holds no values"),
    ],
)
def test_target_problem(task: str, values: list, problem: str | None) -> None:
    found = target_problem(task, "y", pd.Series(values))
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_given_task_that_fits_is_kept(tmp_path: Path) -> None:
    data = tmp_path / "flags.csv"
    _frame_with_target(np.arange(2000) % 2).to_csv(data, index=False)
    profile = profile_file(data, time_column="ts", target="target", task="regression")
    assert profile.target.task == "regression" and not profile.target.inferred


# -- awkward columns --------------------------------------------------------------------------


def test_awkward_columns(tmp_path: Path, config_dir: Path) -> None:
    rng = np.random.default_rng(5)
    n = 3000
    frame = _frame_with_target(rng.integers(0, 2, n))
    frame["user_id"] = rng.permutation(n) + 10_000
    frame["session"] = [f"s-{i:06d}" for i in rng.permutation(n)]
    frame["comment"] = [f"the parcel came {w} and the box was fine, thanks" for w in range(n)]
    frame["country"] = "FR"
    frame["signup"] = (
        pd.Timestamp("2022-01-01") + pd.to_timedelta(np.arange(n) % 300, "D")
    ).astype(str)
    frame["score:raw"] = rng.normal(size=n)
    frame["rating"] = np.where(rng.random(n) < 0.1, np.nan, rng.integers(1, 6, n))  # gaps
    frame["income"] = np.where(rng.random(n) < 0.7, np.nan, rng.normal(50, 10, n))
    frame["empty"] = np.nan
    frame["visits"] = rng.poisson(30, n)
    data = tmp_path / "awkward.csv"
    frame.to_csv(data)  # with the index as "Unnamed: 0"

    result = init_pipeline("awkward", data, time_column="ts", target="target")
    cfg = load_config(result.path)
    reasons = {c.name: c.reason for c in result.profile.role("left_out")}
    assert reasons["Unnamed: 0"].startswith("an ID")  # a row counter
    assert reasons["user_id"].startswith("an ID")
    assert reasons["session"].startswith("an ID or code")
    assert reasons["comment"].startswith("free text")
    assert reasons["country"].startswith("constant")
    assert reasons["signup"].startswith("dates as text")
    assert "LightGBM refuses" in reasons["score:raw"]
    assert reasons["empty"] == "always null in the profiled rows"
    assert cfg.features.numeric == ["x", "income", "visits"]
    assert cfg.features.categorical == ["rating"]  # five whole-number values, with gaps
    cols = cfg.expectations.columns
    assert cols["rating"].type is None  # int or float by day: nulls make pandas floats
    assert cols["rating"].allowed == [1, 2, 3, 4, 5]
    assert cols["rating"].max_null_fraction == 0.2  # ~10 % seen: max(2 x, + 5 %) up to 5 %
    assert cols["income"].nullable and cols["income"].max_null_fraction is None  # mostly null
    assert cols["visits"].type == "int" and not cols["visits"].nullable
    assert set(reasons) <= set(cols)  # left out, but still part of the checked column set
    text = result.path.read_text()
    assert "'Unnamed: 0': {type: int, nullable: false}" in text
    assert "'score:raw':" in text
    assert not cfg.expectations.allow_extra_columns


def test_zone_aware_times_and_missing_labels(tmp_path: Path, config_dir: Path) -> None:
    frame = _frame_with_target(np.resize([0.0, 1.0, np.nan], 3000), days=30)
    frame["ts"] = frame["ts"].dt.tz_localize("Europe/Paris")
    data = _parquet(frame, tmp_path / "zoned.parquet")
    result = init_pipeline("zoned", data, time_column="ts", target="target")
    assert result.config.time_zone == "Europe/Paris"
    assert result.config.expectations.unlabelled == "exclude"
    assert result.config.expectations.columns["target"].type is None  # floats: 0.0 / 1.0
    assert "days are cut in Europe/Paris" in result.path.read_text()


# -- validate-config: does the stored target fit the task? ----------------------------------


def test_validate_config_catches_a_task_that_does_not_fit_the_data(
    tmp_path: Path, config_dir: Path, cli: Cli
) -> None:
    data = _binary_csv(tmp_path, days=30)
    assert (
        cli("init", "events", "--from", str(data), "--time-column", "ts", "--target", "label").code
        == 0
    )
    path = config_dir / "events.yaml"
    lake = ParquetLakeSource(tmp_path / "home" / "lake" / "events", "ts")
    frame = pd.read_csv(data, parse_dates=["ts"])
    lake.write_frame(frame)
    assert cli("validate-config", str(path)).code == 0

    counts = frame.assign(label=np.arange(len(frame)) % 6)  # a count, not two classes
    lake.write_frame(counts[counts["ts"].dt.date == date(2023, 1, 30)])
    res = cli("validate-config", str(path))
    assert res.code == 1
    assert f"The field 'task' in {path}" in res.out
    assert "6 distinct values: 0, 1, 2, 3, 4, 5" in res.out
    assert "newest partition 2023-01-30" in res.out
    assert cli("validate-config", "--no-data", str(path)).code == 0

    labels = frame.assign(label=np.where(frame["label"] == 1, "yes", "no"))
    lake.write_frame(labels[labels["ts"].dt.date == date(2023, 1, 30)])
    res = cli("validate-config", str(path))
    assert res.code == 1 and "store 'yes' as 1 and 'no' as 0" in res.out

    as_regression = yaml.safe_load(path.read_text())
    as_regression.update(task="regression", name="events_reg")
    as_regression["evaluation"].update(primary_metric="mae", guardrails={}, floors={}, slices=[])
    as_regression["source"]["path"] = "events"
    reg_path = config_dir / "events_reg.yaml"
    reg_path.write_text(yaml.safe_dump(as_regression, sort_keys=False))
    res = cli("validate-config", str(reg_path))
    assert res.code == 1
    assert "'regression' needs a numeric target; 'label' holds text" in res.out


@pytest.mark.parametrize(
    ("freq", "periods", "resolution", "time_parts", "holdout"),
    [
        # the holdout holds >= 200 rows where the span allows (at most a sixth of it):
        ("h", 24 * 90, "hourly", ["hour", "day_of_week"], 9),  # 7 days = 168 rows: 9 days
        ("D", 365, "daily", ["day_of_week", "month"], 60),  # one row a day: capped at 365 // 6
        ("W", 200, "weekly", ["month"], 232),  # one row a week: capped at 1,393 // 6
    ],
)
def test_calendar_parts_follow_the_time_resolution(
    freq: str,
    periods: int,
    resolution: str,
    time_parts: list[str],
    holdout: int,
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "when": pd.date_range(START, periods=periods, freq=freq),
            "x": rng.normal(size=periods),
            "y": rng.normal(size=periods),
        }
    )
    data = tmp_path / "series.csv"
    frame.to_csv(data, index=False)
    result = init_pipeline("series", data, time_column="when", target="y", directory=tmp_path)
    assert result.profile.time.resolution == resolution
    assert result.config.features.time_parts == time_parts
    assert result.config.evaluation.holdout_days == holdout
    assert f"{periods:,} distinct numbers" in result.path.read_text()  # not every value listed


def test_a_file_without_rows_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "empty.csv"
    data.write_text("ts,x,label\n")
    with pytest.raises(ProfileError, match=r"holds no rows \(only a header\)"):
        profile_file(data, time_column="ts", target="label")
    with pytest.raises(ProfileError, match="neither a CSV file"):
        profile_file(data.rename(tmp_path / "rows.json"), time_column="ts", target="label")
