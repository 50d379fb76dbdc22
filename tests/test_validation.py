"""Tests of :mod:`retrainflow.validation` (Great Expectations 1.x suites and reports).

One small valid frame and one config built in code; each test breaks one thing and
checks that exactly that column / expectation is reported. Great Expectations is
imported once for the module (~8-10 s); each validation then takes ~0.1 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrainflow.config import PipelineConfig, parse_config
from retrainflow.validation import (
    BETWEEN,
    COLUMN_SET,
    IN_SET,
    NOT_NULL,
    ROW_COUNT,
    TYPE_LIST,
    Failure,
    ValidationReport,
    build_suite,
    validate_frame,
)

N = 20


def make_config(**expectations: Any) -> PipelineConfig:
    """A binary-classification pipeline with three features and column expectations."""
    exp: dict[str, Any] = {
        "min_rows": 5,
        "columns": {
            "distance": {"nullable": False, "min": 0, "max": 5000, "type": "float"},
            "carrier": {"nullable": False, "allowed": ["AA", "UA", "DL"], "type": "str"},
            "temp": {"max_null_fraction": 0.2},
        },
    }
    exp.update(expectations)
    return parse_config(
        {
            "name": "flights",
            "task": "binary_classification",
            "target": "delayed",
            "time_column": "ts",
            "source": {"kind": "parquet", "path": "flights"},
            "features": {"numeric": ["distance", "temp"], "categorical": ["carrier"]},
            "expectations": exp,
        }
    )


@pytest.fixture(scope="module")
def config() -> PipelineConfig:
    return make_config()


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": pd.date_range("2024-01-01", periods=N, freq="h"),
            "delayed": [0, 1] * (N // 2),
            "distance": np.linspace(10.0, 4000.0, N),
            "temp": np.linspace(-5.0, 30.0, N),
            "carrier": (["AA", "UA", "DL"] * N)[:N],
        }
    )


def only_failure(report: ValidationReport) -> Failure:
    """The report failed with exactly one failure; return it."""
    assert report.success is False
    assert len(report.failures) == 1, report.summary()
    return report.failures[0]


def assert_json(report: ValidationReport) -> None:
    text = json.dumps(report.to_dict(), allow_nan=False)
    assert json.loads(text)["dataset"] == report.dataset


# -- the valid frame ------------------------------------------------------------------


def test_valid_frame_passes(config: PipelineConfig, frame: pd.DataFrame) -> None:
    report = validate_frame(config, frame, dataset="train")

    assert report.success is True, report.summary()
    assert report.failures == []
    assert report.rows == N
    assert report.dataset == "train"
    assert report.statistics["unsuccessful_expectations"] == 0
    assert report.statistics["evaluated_expectations"] == len(build_suite(config).expectations)
    assert_json(report)


def test_valid_frame_is_quiet(
    config: PipelineConfig, frame: pd.DataFrame, capfd: pytest.CaptureFixture[str]
) -> None:
    validate_frame(config, frame, dataset="train")
    out, err = capfd.readouterr()
    assert out == ""
    assert "Calculating Metrics" not in err  # GE's tqdm progress bars are off
    assert err == ""


def test_bool_and_float_binary_targets_pass(config: PipelineConfig, frame: pd.DataFrame) -> None:
    for dtype in (bool, float):
        f = frame.assign(delayed=frame["delayed"].astype(dtype))
        assert validate_frame(config, f, dataset="t").success, dtype


# -- one bad input per test ---------------------------------------------------------


def test_missing_column(config: PipelineConfig, frame: pd.DataFrame) -> None:
    report = validate_frame(config, frame.drop(columns="temp"), dataset="train")

    # One clear failure; the null / dtype checks of 'temp' do not surface as crashes.
    failure = only_failure(report)
    assert failure.expectation == COLUMN_SET
    assert failure.observed == {"missing": ["temp"]}
    assert failure.message == "missing column(s) ['temp']"
    assert_json(report)


def test_extra_column(config: PipelineConfig, frame: pd.DataFrame) -> None:
    report = validate_frame(config, frame.assign(foo=1), dataset="train")

    failure = only_failure(report)
    assert failure.expectation == COLUMN_SET
    assert failure.observed == {"unexpected": ["foo"]}
    assert failure.message == "unexpected column(s) ['foo']"


def test_extra_column_allowed(frame: pd.DataFrame) -> None:
    config = make_config(allow_extra_columns=True)
    assert validate_frame(config, frame.assign(foo=1), dataset="train").success

    # ... but required columns are still required.
    failure = only_failure(validate_frame(config, frame.drop(columns="ts"), dataset="train"))
    assert failure.observed == {"missing": ["ts"]}


def test_numeric_feature_as_strings(config: PipelineConfig, frame: pd.DataFrame) -> None:
    # 'temp' has no explicit type: the default numeric check of numeric features catches it.
    report = validate_frame(config, frame.assign(temp=frame["temp"].astype(str)), dataset="t")

    failure = only_failure(report)
    assert failure.expectation == TYPE_LIST
    assert failure.column == "temp"
    assert failure.message.startswith("column 'temp' has dtype object, expected numeric")
    assert failure.observed["dtype"] == "object"
    assert failure.observed["unexpected_count"] == N
    assert_json(report)


def test_typed_column_as_strings_also_breaks_range(
    config: PipelineConfig, frame: pd.DataFrame
) -> None:
    # GE's range check raises on strings (exception_info); it is worded, not a crash.
    f = frame.assign(distance=frame["distance"].astype(str))
    report = validate_frame(config, f, dataset="t")

    assert report.success is False
    by_kind = {(x.expectation, x.column): x for x in report.failures}
    assert set(by_kind) == {(TYPE_LIST, "distance"), (BETWEEN, "distance")}
    assert by_kind[TYPE_LIST, "distance"].message.startswith(
        "column 'distance' has dtype object, expected float"
    )
    assert "cannot be compared with [0, 5000]" in by_kind[BETWEEN, "distance"].message
    assert "Traceback" not in json.dumps(report.to_dict())


def test_nulls_in_required_column(config: PipelineConfig, frame: pd.DataFrame) -> None:
    frame.loc[[1, 2, 3], "carrier"] = None
    report = validate_frame(config, frame, dataset="train")

    failure = only_failure(report)
    assert failure.expectation == NOT_NULL
    assert failure.column == "carrier"
    assert failure.observed["unexpected_count"] == 3
    assert failure.message == "column 'carrier': 3 nulls in a column that must not be null"


def test_null_fraction(config: PipelineConfig, frame: pd.DataFrame) -> None:
    frame.loc[[0, 1], "temp"] = np.nan  # 10% <= 20%: fine
    assert validate_frame(config, frame, dataset="t").success

    frame.loc[[2, 3, 4, 5, 6], "temp"] = np.nan  # 35% > 20%
    failure = only_failure(validate_frame(config, frame, dataset="t"))
    assert (failure.expectation, failure.column) == (NOT_NULL, "temp")
    assert failure.message == "column 'temp': 7 nulls (35.0%), more than the allowed 20%"


def test_values_out_of_range(config: PipelineConfig, frame: pd.DataFrame) -> None:
    frame.loc[[1, 2], "distance"] = [-5.0, 99999.0]
    report = validate_frame(config, frame, dataset="train")

    failure = only_failure(report)
    assert failure.expectation == BETWEEN
    assert failure.column == "distance"
    assert failure.observed["unexpected_count"] == 2
    assert failure.observed["examples"] == [-5.0, 99999.0]
    assert failure.message == (
        "column 'distance': 2 values (10.0%) outside [0, 5000], e.g. [-5.0, 99999.0]"
    )
    assert_json(report)


def test_values_outside_allowed_set(config: PipelineConfig, frame: pd.DataFrame) -> None:
    frame.loc[4, "carrier"] = "ZZ"
    report = validate_frame(config, frame, dataset="train")

    failure = only_failure(report)
    assert failure.expectation == IN_SET
    assert failure.column == "carrier"
    assert failure.observed["examples"] == ["ZZ"]
    assert "not in the allowed set ['AA', 'UA', 'DL']" in failure.message


def test_empty_frame_fails_on_row_count(config: PipelineConfig, frame: pd.DataFrame) -> None:
    report = validate_frame(config, frame.iloc[:0], dataset="train")

    failure = only_failure(report)
    assert failure.expectation == ROW_COUNT
    assert failure.column is None
    assert failure.observed == {"rows": 0, "min_rows": 5}
    assert failure.message.startswith("0 rows; at least 5 required")
    assert report.rows == 0


def test_frame_without_columns(config: PipelineConfig) -> None:
    # What an empty window of the lake reads as: no columns, no rows.
    report = validate_frame(config, pd.DataFrame(), dataset="train")

    assert report.success is False
    assert [f.expectation for f in report.failures] == [COLUMN_SET, ROW_COUNT]
    assert report.failures[0].observed == {
        "missing": ["carrier", "delayed", "distance", "temp", "ts"]
    }
    assert_json(report)


def test_binary_target_with_value_2(config: PipelineConfig, frame: pd.DataFrame) -> None:
    frame.loc[3, "delayed"] = 2
    report = validate_frame(config, frame, dataset="train")

    failure = only_failure(report)
    assert failure.expectation == IN_SET
    assert failure.column == "delayed"
    assert failure.observed["examples"] == [2]
    assert failure.message.startswith("target 'delayed': 1 value (5.0%) not 0/1")


def test_null_time_column(config: PipelineConfig, frame: pd.DataFrame) -> None:
    frame.loc[0, "ts"] = pd.NaT
    failure = only_failure(validate_frame(config, frame, dataset="train"))
    assert (failure.expectation, failure.column) == (NOT_NULL, "ts")


# -- the report and the suite --------------------------------------------------------


def test_report_summary_and_dict(config: PipelineConfig, frame: pd.DataFrame) -> None:
    frame.loc[1, "distance"] = -1.0
    frame.loc[2, "carrier"] = None
    report = validate_frame(config, frame.assign(foo=np.float32(1.5)), dataset="holdout")

    lines = report.summary().splitlines()
    assert len(lines) == len(report.failures) == 3
    assert report.columns_failed() == {"distance", "carrier"}
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["success"] is False
    assert {f["expectation"] for f in data["failures"]} == {COLUMN_SET, BETWEEN, NOT_NULL}


def test_build_suite_from_config(config: PipelineConfig) -> None:
    suite = build_suite(config)
    got = {(e.expectation_type, getattr(e, "column", None)) for e in suite.expectations}

    assert got == {
        (COLUMN_SET, None),
        (ROW_COUNT, None),
        (NOT_NULL, "distance"),
        (BETWEEN, "distance"),
        (TYPE_LIST, "distance"),
        (NOT_NULL, "carrier"),
        (IN_SET, "carrier"),
        (TYPE_LIST, "carrier"),
        (NOT_NULL, "temp"),  # mostly = 0.8
        (NOT_NULL, "delayed"),
        (IN_SET, "delayed"),
        (NOT_NULL, "ts"),
        (TYPE_LIST, "temp"),  # numeric feature without an explicit type
    }
    (columns,) = [e for e in suite.expectations if e.expectation_type == COLUMN_SET]
    assert set(columns.column_set) == {"ts", "delayed", "distance", "temp", "carrier"}
    assert columns.exact_match is True
    (temp_nulls,) = [
        e
        for e in suite.expectations
        if e.expectation_type == NOT_NULL and getattr(e, "column", None) == "temp"
    ]
    assert temp_nulls.mostly == pytest.approx(0.8)


def test_module_import_is_cheap() -> None:
    code = "import sys, retrainflow.validation; assert 'great_expectations' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_infinite_values_are_named_as_inf(config: PipelineConfig, frame: pd.DataFrame) -> None:
    """Issue 8: the message showed ``e.g. [None]`` for an infinite value."""
    frame.loc[[0, 1], "distance"] = np.inf
    frame.loc[2, "distance"] = -np.inf
    report = validate_frame(config, frame, dataset="train")
    failure = only_failure(report)
    assert "e.g. [inf, -inf]" in failure.message
    assert json.loads(json.dumps(report.to_dict(), allow_nan=False))  # still strict JSON
