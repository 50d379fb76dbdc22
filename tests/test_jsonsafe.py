"""The one JSON sanitiser: plain, strict JSON from numpy, pandas, NaN, dates and paths."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrainflow.artifacts import StageDir
from retrainflow.jsonsafe import finite_or_none, json_safe
from retrainflow.manifest import Verdict


def _strict(text: str) -> object:
    def refuse(name: str) -> None:
        raise AssertionError(f"not strict JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_json_safe_gives_plain_types() -> None:
    value = {
        "nan": float("nan"),
        "inf": -math.inf,
        "np_nan": np.float64("nan"),
        "f32": np.float32(1.5),
        "i64": np.int64(3),
        "flag": np.bool_(True),
        "array": np.array([1.0, np.nan]),
        "pair": (1, "a"),
        "set": {2},
        "day": date(2024, 1, 2),
        "when": pd.Timestamp("2024-01-02T03:04:05", tz="UTC"),
        "nat": pd.NaT,
        "na": pd.NA,
        "dt64": np.datetime64("2024-01-02"),
        "path": Path("/tmp/x"),
        7: "int key",
    }
    out = json_safe(value)
    assert out == {
        "nan": None,
        "inf": None,
        "np_nan": None,
        "f32": 1.5,
        "i64": 3,
        "flag": True,
        "array": [1.0, None],
        "pair": [1, "a"],
        "set": [2],
        "day": "2024-01-02",
        "when": "2024-01-02T03:04:05+00:00",
        "nat": None,
        "na": None,
        "dt64": "2024-01-02",
        "path": "/tmp/x",
        "7": "int key",
    }
    assert type(out["i64"]) is int and type(out["flag"]) is bool and type(out["f32"]) is float
    assert _strict(json.dumps(out, allow_nan=False)) == out


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (math.nan, None),
        (math.inf, None),
        (np.float64(0.25), 0.25),
        (np.int64(2), 2.0),
    ],
)
def test_finite_or_none(value: object, expected: float | None) -> None:
    got = finite_or_none(value)
    assert got == expected and (got is None or type(got) is float)


def test_stage_dir_writes_strict_json(tmp_path: Path) -> None:
    """NaN metrics used to be written as ``NaN``, which strict JSON readers refuse."""
    path = StageDir(tmp_path).write_json(
        "m.json", {"auc": float("nan"), "n": np.int64(2), "at": datetime(2024, 1, 1, tzinfo=UTC)}
    )
    assert _strict(path.read_text()) == {"auc": None, "n": 2, "at": "2024-01-01T00:00:00+00:00"}


def test_manifest_to_dict_is_plain_json() -> None:
    """numpy values in a manifest used to stay numpy values in ``to_dict``."""
    verdict = Verdict(
        passed=True,
        reasons=[],
        primary_metric="roc_auc",
        challenger={"roc_auc": np.float64(0.7), "log_loss": np.float32("nan")},
        champion=None,
        champion_version=None,
        thresholds={},
        slices={},
        rows=np.int64(10),
        report_uri="x",
    )
    data = verdict.to_dict()
    assert data["challenger"] == {"roc_auc": 0.7, "log_loss": None}
    assert type(data["rows"]) is int and type(data["challenger"]["roc_auc"]) is float
    assert _strict(json.dumps(data, allow_nan=False)) == data
