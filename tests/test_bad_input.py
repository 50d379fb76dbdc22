"""Bad input stops a run early, loudly and harmlessly.

For every kind of bad data: the champion (version 1 of the trained base) was
established on good data; then the NEW days of the lake (after its data end,
2023-02-10) are corrupted and a later window (end 2023-03-01: warm start from
[2023-02-10, 2023-02-24), holdout [2023-02-24, 2023-03-01)) is retrained. The
run must raise the right error naming the problem, save a report saying so,
train nothing, register nothing, and leave the champion alone.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from retrainflow.config import find_config, load_config
from retrainflow.core import metrics, training
from retrainflow.data.sources import PART_FILE, days_between, partition_name
from retrainflow.exceptions import (
    ConfigError,
    CorruptDataError,
    DataError,
    EmptyWindowError,
    PipelineNotFoundError,
    ValidationFailedError,
)
from retrainflow.pipeline import run_all
from retrainflow.registry import Registry

WINDOW_END = "2023-03-01"
NEW_DAYS = days_between(date(2023, 2, 10), date(2023, 3, 1))  # train (new rows) + holdout
HOLDOUT_DAYS = days_between(date(2023, 2, 24), date(2023, 3, 1))
TRAIN_NEW_DAYS = days_between(date(2023, 2, 10), date(2023, 2, 24))


def _every_tenth(frame: pd.DataFrame, column: str, value: object) -> pd.DataFrame:
    frame.loc[frame.index[::10], column] = value
    return frame


# name -> (change applied to each new day, error type, words the message and report must name).
# A column dropped or retyped in the new days only is a schema change between the partitions
# of a window, refused at pull: see tests/test_data_contract.py.
DATA_CASES: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], type[DataError], list[str]]] = {
    "extra column": (
        lambda f: f.assign(debug_flag=1),
        ValidationFailedError,
        ["unexpected column(s) ['debug_flag']"],
    ),
    "nulls in a required column": (
        lambda f: _every_tenth(f, "x2", np.nan),
        ValidationFailedError,
        ["column 'x2'", "nulls in a column that must not be null"],
    ),
    "values out of range": (
        lambda f: _every_tenth(f, "x4", 99.0),
        ValidationFailedError,
        ["column 'x4'", "outside [0, 60]", "99"],
    ),
    "unknown category": (
        lambda f: _every_tenth(f, "segment", "zzz"),
        ValidationFailedError,
        ["column 'segment'", "not in the allowed set", "zzz"],
    ),
    "target not 0/1": (
        lambda f: _every_tenth(f, "label", 2),
        ValidationFailedError,
        ["target 'label'", "not 0/1"],
    ),
}


def _state() -> tuple[str | None, int]:
    registry = Registry()
    champion = registry.champion("synthetic")
    return (champion.version if champion else None), len(registry.versions("synthetic"))


def _assert_stopped_harmlessly(
    exc: DataError, words: list[str], run_dir: Path, before: tuple[str | None, int]
) -> dict:
    for word in words:
        assert word in str(exc), (word, str(exc))
    assert exc.report_uri and Path(exc.report_uri).is_file()
    assert Path(exc.report_uri).is_relative_to(run_dir)
    text = Path(exc.report_uri).read_text()
    report = json.loads(text)
    assert report["success"] is False
    for word in words:
        assert word in text or json.dumps(word)[1:-1] in text, (word, text[:2000])
    assert not (run_dir / "train" / "model.pkl").exists()  # nothing was trained
    assert not (run_dir / "promote").exists()
    assert _state() == before == ("1", 2)  # champion unchanged, nothing registered
    return report


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_bad_data_stops_the_run(trained_fork, helpers, case) -> None:
    change, error, words = DATA_CASES[case]
    before = _state()
    helpers.rewrite_days(trained_fork.paths.lake / "synthetic", NEW_DAYS, change)
    run_id = f"bad-{case.replace(' ', '-').replace('/', '-')}"
    with pytest.raises(error) as info:
        run_all(trained_fork.config, helpers.context(run_id, WINDOW_END))
    assert type(info.value) is error
    report = _assert_stopped_harmlessly(info.value, words, trained_fork.run_dir(run_id), before)
    failures = [f for d in report["datasets"] for f in d["failures"]]
    assert failures and all(f["message"] for f in failures)


@pytest.mark.parametrize(
    ("days", "which"), [(HOLDOUT_DAYS, "holdout"), (TRAIN_NEW_DAYS, "training")]
)
def test_empty_window(trained_fork, helpers, days, which) -> None:
    before = _state()
    for day in days:
        shutil.rmtree(trained_fork.paths.lake / "synthetic" / partition_name(day))
    run_id = f"empty-{which}"
    with pytest.raises(EmptyWindowError) as info:
        run_all(trained_fork.config, helpers.context(run_id, WINDOW_END))
    window = f"[{days[0]}, {days[-1] + timedelta(days=1)})"
    report = _assert_stopped_harmlessly(
        info.value,
        [f"The {which} window {window}", "no rows"],
        trained_fork.run_dir(run_id),
        before,
    )
    assert report["error"]["code"] == "empty_window"
    assert report["window_end"] == WINDOW_END


def test_unreadable_parquet_file(trained_fork, helpers) -> None:
    before = _state()
    bad = trained_fork.paths.lake / "synthetic" / partition_name(date(2023, 2, 20)) / PART_FILE
    bad.write_bytes(b"this is not parquet at all \x00\x01\x02" * 10)
    with pytest.raises(CorruptDataError) as info:
        run_all(trained_fork.config, helpers.context("corrupt", WINDOW_END))
    report = _assert_stopped_harmlessly(
        info.value, [str(bad), "cannot be read"], trained_fork.run_dir("corrupt"), before
    )
    assert report["error"]["code"] == "corrupt_data"
    assert report["error"]["file"] == str(bad)


@pytest.mark.parametrize(("target", "stage"), [(training, "fit"), (metrics, "compute_metrics")])
def test_crash_in_training_or_evaluation_registers_nothing(
    trained_fork, helpers, monkeypatch, target, stage
) -> None:
    before = _state()

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"simulated crash in {stage}")

    monkeypatch.setattr(target, stage, boom)
    with pytest.raises(RuntimeError, match=f"simulated crash in {stage}"):
        run_all(trained_fork.config, helpers.context(f"crash-{stage}", WINDOW_END))
    assert _state() == before == ("1", 2)
    run_dir = trained_fork.run_dir(f"crash-{stage}")
    assert (run_dir / "train" / "model.pkl").exists() is (stage == "compute_metrics")
    assert not (run_dir / "promote").exists()
    assert Registry().find_by_run("synthetic", f"crash-{stage}") is None


# -- configs ----------------------------------------------------------------------------------


def test_unknown_pipeline_lists_the_known_ones(home) -> None:
    with pytest.raises(PipelineNotFoundError) as info:
        find_config("no_such_pipeline")
    message = str(info.value)
    assert "No pipeline named 'no_such_pipeline'" in message
    assert "known pipelines: ['synthetic']" in message
    assert info.value.code == "pipeline_not_found"


def _edit(data: dict, path: str, value: object) -> None:
    *parents, leaf = path.split(".")
    for key in parents:
        data = data[key]
    if value is _DELETE:
        del data[leaf]
    else:
        data[leaf] = value


_DELETE = object()

CONFIG_CASES = [
    ("evaluation.primary_metric", "acc", "evaluation.primary_metric", "must be one of"),
    ("evaluation.floors", {"rmse": 1.0}, "evaluation.floors.rmse", "unknown metric"),
    ("training.params", {"bogus": 1}, "training", "unknown hyperparameter(s) ['bogus']"),
    ("training.window_days", 0, "training.window_days", "greater than or equal to 1"),
    ("training.estimator", "xgboost", "training.estimator", "got 'xgboost'"),
    ("trainig", {}, "trainig", "unknown key"),
    ("target", _DELETE, "target", "is required but missing"),
    ("evaluation.slices", ["x1"], "evaluation.slices[0]", "features.categorical"),
    ("features.numeric", ["label", "x1"], "features", "'label' is the target"),
    ("source.kind", "ftp", "source", "kind"),
    ("name", "other", "name", "must equal the file name 'synthetic'"),
    ("schedule", "every day", "schedule", "cron expression"),
]


@pytest.mark.parametrize(
    ("path", "value", "field", "words"), CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES]
)
def test_invalid_config_names_file_and_field(tmp_path, helpers, path, value, field, words) -> None:
    data = helpers.synthetic_dict()
    _edit(data, path, value)
    file = tmp_path / "synthetic.yaml"
    file.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        find_config("synthetic", directory=tmp_path)
    exc = info.value
    assert Path(exc.file) == file and exc.field == field
    assert f"The field '{field}' in {file}" in str(exc)
    assert words in str(exc)


def test_unparsable_yaml_names_the_file(tmp_path) -> None:
    file = tmp_path / "synthetic.yaml"
    file.write_text("name: synthetic\nfeatures: [x1\n")
    with pytest.raises(ConfigError, match="is not valid YAML") as info:
        load_config(file)
    assert str(file) in str(info.value)
