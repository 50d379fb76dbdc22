"""The data contract (:mod:`retrainflow.data.contract`) on the pipeline's real stages.

Set-up as in ``test_bad_input``: the champion (version 1 of the trained base, data
up to 2023-02-10) was established on good data; the lake is then damaged and the
window ending 2023-03-01 is retrained (warm start from the new days
[2023-02-10, 2023-02-24) plus replay; holdout [2023-02-24, 2023-03-01)). Every rule
stops the run at pull — before training — with an error naming the partition (day
and file) and the problem, a saved report, nothing registered and the champion
unchanged. The settings that accept the data instead (``expectations.duplicates:
drop | allow``, ``time_zone``, ``expectations.unlabelled: exclude``) are checked
on ``pull.run`` with the counts they report.
"""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrainflow.data.sources import PART_FILE, days_between, make_source, partition_name
from retrainflow.exceptions import (
    DataError,
    DuplicateRowsError,
    InvalidPartitionError,
    PartitionSchemaError,
    SingleClassError,
    TimestampOutsidePartitionError,
    TimeZoneError,
    UserError,
    ValidationFailedError,
)
from retrainflow.pipeline import run_all
from retrainflow.registry import Registry
from retrainflow.stages import pull, validate
from tests.test_bad_input import WINDOW_END, _assert_stopped_harmlessly, _state

D = date.fromisoformat
NEW_ROWS = 14 * 400  # the new days [2023-02-10, 2023-02-24), 400 rows a day


def _lake(fork: Any) -> Path:
    return fork.paths.lake / "synthetic"


def _refused(
    fork: Any,
    helpers: Any,
    run_id: str,
    error: type[DataError],
    words: list[str],
    config: Any = None,
) -> dict:
    """Run the whole pipeline; it must stop at pull with ``error`` naming ``words``."""
    before = _state()
    with pytest.raises(error) as info:
        run_all(config or fork.config, helpers.context(run_id, WINDOW_END))
    assert type(info.value) is error
    assert isinstance(info.value, UserError)  # not retried, no traceback
    run_dir = fork.run_dir(run_id)
    report = _assert_stopped_harmlessly(info.value, words, run_dir, before)
    assert report["error"]["code"] == error.code
    assert (
        report["contract"]["rules"]["duplicates"] == (config or fork.config).expectations.duplicates
    )
    assert Path(info.value.report_uri) == run_dir / "pull" / "report.json"
    assert not (run_dir / "pull" / "train.parquet").exists()  # stopped before any data moved on
    assert not (run_dir / "validate").exists()
    return report


def _pull(fork: Any, helpers: Any, run_id: str, config: Any = None) -> Any:
    return pull.run(config or fork.config, helpers.context(run_id, WINDOW_END), registry=Registry())


# -- duplicates ---------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["refuse", "allow"])
def test_a_day_written_twice_is_refused(trained_fork, helpers, policy) -> None:
    day = _lake(trained_fork) / partition_name(D("2023-02-20"))
    shutil.copy(day / PART_FILE, day / "part-1.parquet")
    cfg = helpers.config_with({"expectations.duplicates": policy})
    report = _refused(
        trained_fork,
        helpers,
        f"twice-{policy}",
        DuplicateRowsError,
        [
            "date=2023-02-20/part-1.parquet is an identical copy of "
            "date=2023-02-20/part-0.parquet (400 rows)",
            "the day was written twice",
            "expectations.duplicates: drop",
        ],
        cfg,
    )
    assert report["error"]["partition"] == "date=2023-02-20"
    assert report["error"]["file"] == str(day / "part-1.parquet")


def test_duplicated_rows_are_refused(trained_fork, helpers) -> None:
    helpers.rewrite_days(
        _lake(trained_fork), [D("2023-02-15")], lambda f: pd.concat([f, f.iloc[:7]])
    )
    _refused(
        trained_fork,
        helpers,
        "dup-rows",
        DuplicateRowsError,
        [
            "the new window [2023-02-10, 2023-02-24)",
            "7 rows are exact copies of other rows, in date=2023-02-15/part-0.parquet (7)",
            "expectations.duplicates",
        ],
    )


def test_allow_keeps_identical_rows_but_not_a_whole_day_written_twice(
    trained_fork, helpers
) -> None:
    lake = _lake(trained_fork)
    cfg = helpers.config_with({"expectations.duplicates": "allow"})
    helpers.rewrite_days(lake, [D("2023-02-15")], lambda f: pd.concat([f, f.iloc[:7]]))
    p = _pull(trained_fork, helpers, "allow-rows", cfg)
    assert p.new_rows == NEW_ROWS + 7  # identical rows are separate events
    assert p.contract["duplicates_allowed"] == {"new": 7}
    helpers.rewrite_days(lake, [D("2023-02-16")], lambda f: pd.concat([f, f]))
    _refused(
        trained_fork,
        helpers,
        "allow-day",
        DuplicateRowsError,
        ["every row of date=2023-02-16/part-0.parquet has an identical copy", "written twice"],
        cfg,
    )


def test_drop_keeps_one_copy_with_a_warning_and_a_count(trained_fork, helpers) -> None:
    cfg = helpers.config_with({"expectations.duplicates": "drop"})
    clean = _pull(trained_fork, helpers, "before-copies", cfg)
    lake = _lake(trained_fork)
    day = lake / partition_name(D("2023-02-20"))
    shutil.copy(day / PART_FILE, day / "part-1.parquet")
    helpers.rewrite_days(lake, [D("2023-02-15")], lambda f: pd.concat([f, f.iloc[:7]]))
    p = _pull(trained_fork, helpers, "drop", cfg)
    assert p.new_rows == NEW_ROWS and p.mode == "warm_start"
    assert p.train.fingerprint == clean.train.fingerprint  # exactly the rows before the damage
    assert p.holdout.fingerprint == clean.holdout.fingerprint
    assert p.contract["duplicates_dropped"] == {"new": 407}
    warnings = p.contract["warnings"]
    assert any("date=2023-02-20/part-1.parquet is an identical copy" in w for w in warnings)
    assert any("7 rows of the new window" in w and "dropped" in w for w in warnings)
    report = json.loads(Path(p.report_uri).read_text())
    assert report["success"] and report["contract"]["duplicates_dropped"] == {"new": 407}
    assert set(warnings) <= set(validate.run(cfg, p).warnings)  # shown with validation's


# -- timestamps -------------------------------------------------------------------------------


def _shift(rows: int, by: timedelta) -> Any:
    def change(f: pd.DataFrame) -> pd.DataFrame:
        f.loc[f.index[:rows], "ts"] += by
        return f

    return change


def test_timestamps_outside_their_partition_day_are_refused(trained_fork, helpers) -> None:
    helpers.rewrite_days(_lake(trained_fork), [D("2023-02-20")], _shift(5, timedelta(days=1)))
    report = _refused(
        trained_fork,
        helpers,
        "outside-day",
        TimestampOutsidePartitionError,
        [
            "date=2023-02-20/part-0.parquet",
            "5 rows with ts outside the partition's day 2023-02-20 (e.g. ['2023-02-21",
            "sit in the partition of its own day",
        ],
    )
    assert report["error"]["partition"] == "date=2023-02-20"


def test_timestamps_in_the_future_of_the_window_end_are_refused(trained_fork, helpers) -> None:
    helpers.rewrite_days(_lake(trained_fork), [D("2023-02-28")], _shift(3, timedelta(days=2)))
    _refused(
        trained_fork,
        helpers,
        "future",
        TimestampOutsidePartitionError,
        [
            "date=2023-02-28/part-0.parquet",
            "3 rows with ts outside the partition's day 2023-02-28",
            "3 of them at or after the end of the holdout window (2023-03-01), i.e. in its future",
        ],
    )


# -- time zones -------------------------------------------------------------------------------


def test_zone_aware_timestamps_in_a_naive_pipeline_are_refused(trained_fork, helpers) -> None:
    helpers.rewrite_days(
        _lake(trained_fork),
        [D("2023-02-20")],
        lambda f: f.assign(ts=f["ts"].dt.tz_localize("America/New_York")),
    )
    _refused(
        trained_fork,
        helpers,
        "aware",
        TimeZoneError,
        [
            "date=2023-02-20/part-0.parquet",
            "zone-aware timestamps (America/New_York)",
            "is naive (no time_zone)",
            "Set time_zone",
        ],
    )


def test_naive_timestamps_with_a_time_zone_are_refused(trained_fork, helpers) -> None:
    cfg = helpers.config_with(time_zone="Europe/Paris")
    _refused(
        trained_fork,
        helpers,
        "naive",
        TimeZoneError,
        ["date=2023-02-24/part-0.parquet", "naive timestamps", "time_zone 'Europe/Paris'"],
        cfg,
    )


def test_time_zone_converts_aware_timestamps_to_local_days(trained_fork, helpers) -> None:
    """Paris days stored as UTC instants: a 00:30 Paris row is 23:30 UTC the day before, in
    the Paris day's partition. With ``time_zone: Europe/Paris`` the rows read back as the
    naive Paris times they were, each inside its partition."""
    cfg = helpers.config_with(time_zone="Europe/Paris")
    clean = _pull(trained_fork, helpers, "naive-lake", trained_fork.config)
    days = days_between(D("2023-01-01"), D(WINDOW_END))
    helpers.rewrite_days(
        _lake(trained_fork),
        days,
        lambda f: f.assign(ts=f["ts"].dt.tz_localize("Europe/Paris").dt.tz_convert("UTC")),
    )
    stored = make_source(trained_fork.config).read_days([D("2023-02-20")])["ts"]
    assert str(stored.dtype) == "datetime64[ns, UTC]"
    assert (stored.dt.date != D("2023-02-20")).any()  # UTC days differ from the partition's
    p = _pull(trained_fork, helpers, "converted", cfg)
    assert p.contract["converted_from"] == ["UTC"]
    assert p.train.fingerprint == clean.train.fingerprint  # the naive Paris rows, unshifted
    assert p.holdout.fingerprint == clean.holdout.fingerprint
    # monitoring and the backtest read through the source: converted the same way
    read = make_source(cfg).read_window(D("2023-02-20"), D("2023-02-21"))
    assert (
        str(read["ts"].dtype) == "datetime64[ns]" and (read["ts"].dt.date == D("2023-02-20")).all()
    )


# -- schemas ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "change", "words"),
    [
        (
            [D("2023-02-15"), D("2023-02-16")],
            lambda f: f.drop(columns=["x3"]),
            [
                "Schema change between the partitions of the new window [2023-02-10, 2023-02-24)",
                "missing column(s) ['x3'] in date=2023-02-15/part-0.parquet, "
                "date=2023-02-16/part-0.parquet, present in date=2023-02-10/part-0.parquet",
                "not filled with nulls",
            ],
        ),
        (  # the new days only: the schema change forces stateless, whose window mixes both
            days_between(D("2023-02-10"), D(WINDOW_END)),
            lambda f: f.assign(x1=f["x1"].map("{:.4f}".format)),
            [
                "partitions of the training window [2023-01-25, 2023-02-24)",
                "column 'x1' is number in date=2023-01-25/part-0.parquet, ..., "
                "date=2023-02-09/part-0.parquet (16 in all) but str in "
                "date=2023-02-10/part-0.parquet",
            ],
        ),
    ],
    ids=["missing column", "retyped column"],
)
def test_a_schema_change_between_partitions_is_refused(
    trained_fork, helpers, days, change, words
) -> None:
    helpers.rewrite_days(_lake(trained_fork), days, change)
    _refused(trained_fork, helpers, "schema", PartitionSchemaError, words)


def test_an_extra_column_in_some_partitions_is_a_warning(trained_fork, helpers) -> None:
    helpers.rewrite_days(_lake(trained_fork), [D("2023-02-15")], lambda f: f.assign(debug_flag=1))
    cfg = helpers.config_with({"expectations.allow_extra_columns": True})
    p = _pull(trained_fork, helpers, "extra", cfg)
    assert any(
        "schema differs between partitions" in w and "missing column(s) ['debug_flag']" in w
        for w in p.contract["warnings"]
    )


# -- the lake's layout ------------------------------------------------------------------------


def test_a_partition_name_that_is_not_a_date_is_a_clear_user_error(trained_fork, helpers) -> None:
    lake = _lake(trained_fork)
    bad = lake / "date=2023-02-30"
    bad.mkdir()
    shutil.copy(lake / partition_name(D("2023-02-20")) / PART_FILE, bad / PART_FILE)
    report = _refused(
        trained_fork,
        helpers,
        "bad-name",
        InvalidPartitionError,
        ["The partition date=2023-02-30", "is not a valid date", "day is out of range for month"],
    )
    assert report["error"]["partition"] == "date=2023-02-30"


def test_a_user_error_in_pull_fails_the_airflow_task_without_retries(trained_fork) -> None:
    from airflow.exceptions import AirflowFailException

    from retrainflow.airflow.dag_factory import _user_errors_fail_fast

    (_lake(trained_fork) / "date=2023-02-30").mkdir()

    @_user_errors_fail_fast
    def task() -> None:
        make_source(trained_fork.config).partitions()

    with pytest.raises(AirflowFailException, match=r"\[invalid_partition\] The partition date="):
        task()


def test_unknown_entries_and_empty_partitions_are_warnings(trained_fork, helpers) -> None:
    lake = _lake(trained_fork)
    (lake / "notes.txt").write_text("hello")
    (lake / "backup").mkdir()
    (lake / "_ingest").mkdir()  # reserved for tools
    (lake / "_ingest" / "ledger.json").write_text("{}")
    (lake / partition_name(D("2023-02-21")) / "_SUCCESS").write_text("")  # reserved
    (lake / partition_name(D("2023-02-21")) / "readme.md").write_text("?")
    helpers.rewrite_days(lake, [D("2023-02-20")], lambda f: f.iloc[:0])
    p = _pull(trained_fork, helpers, "layout", trained_fork.config)
    assert p.new_rows == NEW_ROWS - 400
    contract = p.contract
    assert contract["unknown_entries"] == ["backup/", "date=2023-02-21/readme.md", "notes.txt"]
    assert contract["empty_partitions"] == ["date=2023-02-20"]
    warnings = validate.run(trained_fork.config, p).warnings
    assert any("3 entries that are not a date=YYYY-MM-DD partition" in w for w in warnings)
    assert any("the partition date=2023-02-20" in w and "holds 0 rows" in w for w in warnings)
    assert not any("_ingest" in w or "_SUCCESS" in w for w in warnings)


# -- labels -----------------------------------------------------------------------------------


def test_training_labels_of_one_class_are_refused(trained_fork, helpers) -> None:
    helpers.rewrite_days(
        _lake(trained_fork),
        days_between(D("2023-01-01"), D("2023-02-24")),
        lambda f: f.assign(label=0),
    )
    _refused(
        trained_fork,
        helpers,
        "one-class",
        SingleClassError,
        [
            "training rows of 'synthetic' in [2023-02-10, 2023-02-24)",
            "to date=2023-02-23",
            "has label = 0",
            "cannot learn from one class",
        ],
    )


def _no_label_yet(f: pd.DataFrame) -> pd.DataFrame:
    return f.assign(label=np.nan)  # labels arrive late: stored as nulls (a float column)


LATE_DAYS = [D("2023-02-23"), D("2023-02-27"), D("2023-02-28")]


def test_unlabelled_rows_are_refused_by_default(trained_fork, helpers) -> None:
    helpers.rewrite_days(_lake(trained_fork), LATE_DAYS, _no_label_yet)
    before = _state()
    with pytest.raises(ValidationFailedError) as info:
        run_all(trained_fork.config, helpers.context("unlabelled", WINDOW_END))
    _assert_stopped_harmlessly(
        info.value,
        ["target 'label': 800 nulls", "expectations.unlabelled: exclude"],
        trained_fork.run_dir("unlabelled"),
        before,
    )
    pulled = json.loads((trained_fork.run_dir("unlabelled") / "pull" / "report.json").read_text())
    # counted at pull (the nulls made the label float: a schema change, so stateless)
    assert pulled["contract"]["unlabelled_found"] == {"holdout": 800, "new": 400, "training": 400}


def test_unlabelled_rows_can_be_excluded_from_training_and_evaluation(
    trained_fork, helpers
) -> None:
    helpers.rewrite_days(_lake(trained_fork), LATE_DAYS, _no_label_yet)
    cfg = helpers.config_with({"expectations.unlabelled": "exclude"})
    result = run_all(cfg, helpers.context("exclude", WINDOW_END))
    p = result.pull
    assert p.contract["unlabelled_excluded"] == {"holdout": 800, "new": 400}
    assert p.mode == "warm_start" and p.schema_change is None  # the label is int64 again
    assert p.new_rows == NEW_ROWS - 400
    assert p.holdout.rows == 5 * 400 - 800 and result.verdict.rows == p.holdout.rows
    for ref in (p.train, p.holdout):
        labels = pd.read_parquet(ref.uri)["label"]
        assert labels.notna().all() and str(labels.dtype) == "int64"
    assert any(
        "800 rows of the holdout rows with no label yet" in w for w in result.validate.warnings
    )
    # the lake keeps them: monitoring reads them for drift
    assert make_source(cfg).read_window(D("2023-02-27"), D("2023-03-01"))["label"].isna().all()
