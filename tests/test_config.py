"""The typed pipeline config: every shipped YAML honours the contract, and every
bad config fails with a ConfigError that names the file and the field."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from retrainflow.config import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    PipelineConfig,
    S3SourceConfig,
    SqlSourceConfig,
    find_config,
    load_all,
    load_config,
    parse_config,
)
from retrainflow.exceptions import ConfigError, PipelineNotFoundError

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIRS = (REPO / "config" / "pipelines", REPO / "tests" / "fixtures" / "pipelines")
ALL_YAMLS = sorted(p for d in CONFIG_DIRS for p in (*d.glob("*.yaml"), *d.glob("*.yml")))
SYNTHETIC_YAML = REPO / "tests" / "fixtures" / "pipelines" / "synthetic.yaml"


def test_there_are_configs_to_check() -> None:
    names = {p.stem for p in ALL_YAMLS}
    assert {"flights", "synthetic"} <= names


# -- contract of every shipped config -----------------------------------------------------------
@pytest.mark.parametrize("path", ALL_YAMLS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_config_honours_the_contract(path: Path) -> None:
    cfg = load_config(path)
    assert isinstance(cfg, PipelineConfig)
    assert cfg.name == path.stem

    required = cfg.required_columns
    assert cfg.target in required
    assert cfg.time_column in required
    for col in cfg.features.raw_columns:
        assert col in required
    assert len(required) == len(set(required)), "a column plays two roles"
    assert cfg.target not in cfg.features.raw_columns
    assert cfg.time_column not in cfg.features.raw_columns

    allowed = CLASSIFICATION_METRICS if cfg.task == "binary_classification" else REGRESSION_METRICS
    ev = cfg.evaluation
    assert ev.primary_metric in allowed
    assert set(ev.guardrails) <= set(allowed)
    assert set(ev.floors) <= set(allowed)
    assert set(ev.slices) <= set(cfg.features.categorical)

    # Expectations only talk about columns the pipeline reads (unless extras are allowed).
    if not cfg.expectations.allow_extra_columns:
        assert set(cfg.expectations.columns) <= set(required)


@pytest.mark.parametrize("directory", CONFIG_DIRS, ids=lambda d: d.parent.name)
def test_load_all_loads_each_directory(directory: Path) -> None:
    names = [c.name for c in load_all(directory)]
    assert names == sorted(names)
    assert names


# -- bad configs --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    data = yaml.safe_load(SYNTHETIC_YAML.read_text())
    assert isinstance(data, dict)
    return data


def _write(tmp_path: Path, data: Any, name: str = "synthetic") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _set(*keys: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(d: dict[str, Any]) -> None:
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value

    return mutate


def _pop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda d: d.pop(key)


def _rf_warm_start(d: dict[str, Any]) -> None:
    d["training"].update(estimator="random_forest", mode="warm_start", params={})


BAD_CASES: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    # id, mutation, expected field, regex on the message
    ("unknown_top_level_key", _set("bogus", value=1), "bogus", r"unknown key"),
    ("unknown_nested_key", _set("source", "bogus", value="x"), "source.bogus", r"unknown key"),
    (
        "wrong_type",
        _set("training", "window_days", value="sixty"),
        "training.window_days",
        r"valid integer",
    ),
    ("missing_target", _pop("target"), "target", r"required but missing"),
    (
        "invalid_primary_metric",
        _set("evaluation", "primary_metric", value="acc"),
        "evaluation.primary_metric",
        r"must be one of .*'roc_auc'.*; got 'acc'",
    ),
    (
        "guardrail_metric_for_other_task",
        _set("evaluation", "guardrails", value={"rmse": 0.1}),
        "evaluation.guardrails.rmse",
        r"unknown metric for task 'binary_classification'",
    ),
    (
        "regression_metric_on_classification",
        _set("evaluation", "primary_metric", value="rmse"),
        "evaluation.primary_metric",
        r"for task 'binary_classification'; got 'rmse'",
    ),
    (
        "regression_floor_on_classification",
        _set("evaluation", "floors", value={"r2": 0.5}),
        "evaluation.floors.r2",
        r"unknown metric",
    ),
    (
        "slice_not_categorical",
        _set("evaluation", "slices", value=["segment", "x1"]),
        "evaluation.slices[1]",
        r"'x1' must be one of features.categorical",
    ),
    (
        "feature_is_target",
        _set("features", "numeric", value=["x1", "label"]),
        "features",
        r"'label' is the target; it cannot be a feature",
    ),
    (
        "feature_is_time_column",
        _set("features", "categorical", value=["ts"]),
        "features",
        r"'ts' is the time_column",
    ),
    (
        "unknown_hyperparameter",
        _set("training", "params", "bogus_param", value=1),
        "training",
        r"unknown hyperparameter\(s\) \['bogus_param'\] for estimator 'lightgbm'",
    ),
    (
        "warm_start_random_forest",
        _rf_warm_start,
        "training",
        r"mode 'warm_start' needs an estimator that can continue training.*'random_forest' cannot",
    ),
    (
        "schedule_neither_preset_nor_cron",
        _set("schedule", value="weekly"),
        "schedule",
        r"must be a cron expression or one of .*; got 'weekly'",
    ),
    (
        "expectation_min_above_max",
        _set("expectations", "columns", "x1", value={"min": 5, "max": 1}),
        "expectations.columns.x1",
        r"min \(5\.0\) is greater than max \(1\.0\)",
    ),
    ("bad_task", _set("task", value="multiclass"), "task", r"got 'multiclass'"),
    ("bad_source_kind", _set("source", "kind", value="ftp"), "source", r"ftp"),
    ("empty_features", _set("features", value={}), "features", r"at least one"),
    (
        "drift_test_for_categories_on_a_numeric_column",
        _set("monitoring", "drift", "columns", value={"x1": {"method": "chisquare"}}),
        "monitoring.drift.columns.x1.method",
        r"'chisquare' does not support numeric columns such as 'x1'; use one of \[.*'ks'.*\]",
    ),
    (
        "drift_test_for_numbers_on_a_categorical_column",
        _set("monitoring", "drift", "columns", value={"segment": {"method": "wasserstein"}}),
        "monitoring.drift.columns.segment.method",
        (
            r"'wasserstein' does not support categorical columns such as 'segment'; "
            r"use one of \['chisquare', 'hellinger', 'jensenshannon', 'kl_div', 'psi', 'TVD', 'z'\]"
        ),
    ),
    (
        "global_numeric_drift_test_with_categorical_features",
        _set("monitoring", "drift", "method", value="ks"),
        "monitoring.drift.method",
        (
            r"'ks' does not support categorical columns, and \['segment', 'channel'\] have no method "
            r"of their own; set monitoring.drift.columns.<column>.method to one of \['chisquare', .*\], "
            r"or use a method for both types: \['hellinger', 'jensenshannon', 'kl_div', 'psi'\]"
        ),
    ),
    (
        "global_categorical_drift_test_with_numeric_features",
        _set("monitoring", "drift", "method", value="TVD"),
        "monitoring.drift.method",
        r"'TVD' does not support numeric columns, and \['x1', 'x2', 'x3', 'x4'\] have no method",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "field", "match"), [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES]
)
def test_bad_config_names_file_and_field(
    tmp_path: Path,
    base: dict[str, Any],
    mutate: Callable[[dict[str, Any]], None],
    field: str,
    match: str,
) -> None:
    data = copy.deepcopy(base)
    mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError, match=match) as info:
        load_config(path)
    err = info.value
    assert err.field == field
    assert Path(err.file) == path
    # The message a user sees starts with the field and the file.
    assert err.message.startswith(f"The field '{field}' in {path}: ")
    assert err.code == "invalid_config"


def test_base_fixture_is_valid(tmp_path: Path, base: dict[str, Any]) -> None:
    """The mutations above fail because of the mutation, not the base."""
    assert load_config(_write(tmp_path, copy.deepcopy(base))).name == "synthetic"


def test_name_must_equal_file_stem(tmp_path: Path, base: dict[str, Any]) -> None:
    path = _write(tmp_path, copy.deepcopy(base), name="other")
    with pytest.raises(
        ConfigError, match=r"must equal the file name 'other'; got 'synthetic'"
    ) as info:
        load_config(path)
    assert info.value.field == "name"
    assert Path(info.value.file) == path


def test_invalid_yaml_syntax(tmp_path: Path) -> None:
    path = tmp_path / "synthetic.yaml"
    path.write_text("name: synthetic\nfeatures: [x1, x2\n")
    with pytest.raises(ConfigError, match=r"is not valid YAML") as info:
        load_config(path)
    assert info.value.field is None
    assert Path(info.value.file) == path
    assert str(path) in info.value.message


@pytest.mark.parametrize(
    "text", ["- a\n- b\n", "just a string\n", ""], ids=["list", "scalar", "empty"]
)
def test_not_a_mapping(tmp_path: Path, text: str) -> None:
    path = tmp_path / "synthetic.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"must be a YAML mapping") as info:
        load_config(path)
    assert info.value.field is None
    assert Path(info.value.file) == path


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError, match=r"cannot be read") as info:
        load_config(path)
    assert Path(info.value.file) == path


def test_several_problems_are_counted(tmp_path: Path, base: dict[str, Any]) -> None:
    data = copy.deepcopy(base)
    data["bogus"] = 1
    data["training"]["window_days"] = "sixty"
    with pytest.raises(ConfigError, match=r"\(and 1 more problem\)"):
        load_config(_write(tmp_path, data))


def test_valid_cron_and_preset_schedules(tmp_path: Path, base: dict[str, Any]) -> None:
    for schedule in ("0 3 * * 1", "@weekly", None):
        data = copy.deepcopy(base)
        data["schedule"] = schedule
        assert load_config(_write(tmp_path, data)).schedule == schedule


def test_regression_task_with_regression_metrics(tmp_path: Path, base: dict[str, Any]) -> None:
    data = copy.deepcopy(base)
    data["task"] = "regression"
    data["evaluation"].update(primary_metric="rmse", guardrails={"mae": 0.1}, floors={"r2": 0.0})
    cfg = load_config(_write(tmp_path, data))
    assert cfg.lower_is_better


# -- drift methods and column types --------------------------------------------------------------
@pytest.mark.parametrize(
    "drift",
    [
        {"method": "psi"},  # supports both types
        {
            "method": "ks",
            "columns": {
                "segment": {"method": "chisquare"},
                "channel": {"method": "jensenshannon", "threshold": 0.2},
            },
        },
        {
            "method": "chisquare",
            "columns": {c: {"method": "wasserstein"} for c in ("x1", "x2", "x3", "x4")},
        },
        {"columns": {"x1": {"method": "ks"}, "segment": {"method": "z"}}},
    ],
    ids=[
        "both_types",
        "numeric_global_categorical_own",
        "categorical_global_numeric_own",
        "own_only",
    ],
)
def test_drift_methods_that_fit_every_column_are_valid(
    base: dict[str, Any], drift: dict[str, Any]
) -> None:
    data = copy.deepcopy(base)
    data["monitoring"]["drift"] = drift
    assert parse_config(data).monitoring.drift.method == drift.get("method")


def test_drift_column_types_match_evidently() -> None:
    """``STAT_TEST_COLUMN_TYPES`` is Evidently's own ``allowed_feature_types`` of each test."""
    from evidently.legacy.calculations.stattests.registry import _registered_stat_tests
    from evidently.legacy.core import ColumnType

    from retrainflow.config import STAT_TEST_COLUMN_TYPES, STAT_TESTS

    assert set(STAT_TEST_COLUMN_TYPES) == set(STAT_TESTS)
    names = {ColumnType.Numerical: "numeric", ColumnType.Categorical: "categorical"}
    for method, kinds in STAT_TEST_COLUMN_TYPES.items():
        registered = _registered_stat_tests[{"energy": "ed"}.get(method, method)]
        assert kinds == {names[t] for t in registered if t in names}, method


# -- find_config ----------------------------------------------------------------------------------
def test_find_config_by_name() -> None:
    cfg = find_config("synthetic", SYNTHETIC_YAML.parent)
    assert cfg.name == "synthetic"
    assert cfg.retrain_dag_id == "retrain__synthetic"


def test_find_config_unknown_lists_known_pipelines(tmp_path: Path, base: dict[str, Any]) -> None:
    _write(tmp_path, copy.deepcopy(base))
    with pytest.raises(PipelineNotFoundError, match=r"No pipeline named 'nope'") as info:
        find_config("nope", tmp_path)
    assert "known pipelines: ['synthetic']" in info.value.message
    assert info.value.code == "pipeline_not_found"
    assert info.value.details["pipeline"] == "nope"


def test_find_config_uses_env_config_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRAINFLOW_CONFIG_DIR", str(SYNTHETIC_YAML.parent))
    assert find_config("synthetic").name == "synthetic"
    with pytest.raises(PipelineNotFoundError, match=r"known pipelines: \[.*'synthetic'"):
        find_config("no_such_pipeline")


def test_find_config_empty_dir(tmp_path: Path) -> None:
    with pytest.raises(PipelineNotFoundError, match=r"known pipelines: none"):
        find_config("anything", tmp_path)


# -- ${VAR} expansion ----------------------------------------------------------------------------
def test_env_vars_expanded_in_source(monkeypatch: pytest.MonkeyPatch, base: dict[str, Any]) -> None:
    monkeypatch.setenv("RF_TEST_DB_USER", "alice")
    monkeypatch.setenv("RF_TEST_DB_PASS", "s3cret")
    data = copy.deepcopy(base)
    data["source"] = {
        "kind": "sql",
        "url": "postgresql://${RF_TEST_DB_USER}:${RF_TEST_DB_PASS}@db:5432/features",
        "table": "events",
    }
    cfg = parse_config(data, file="x.yaml")
    assert isinstance(cfg.source, SqlSourceConfig)
    assert cfg.source.url == "postgresql://alice:s3cret@db:5432/features"


def test_unset_env_var_is_an_error_naming_field_and_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, base: dict[str, Any]
) -> None:
    """An unset ``${VAR}`` used to stay in the value silently (a path named '${VAR}')."""
    monkeypatch.delenv("RF_TEST_UNSET_VAR", raising=False)
    monkeypatch.setenv("RF_TEST_LAKE", "lake_dir")
    data = copy.deepcopy(base)
    data["source"] = {"kind": "parquet", "path": "${RF_TEST_LAKE}/${RF_TEST_UNSET_VAR}"}
    path = _write(tmp_path, data)
    with pytest.raises(
        ConfigError,
        match=r"uses \$\{RF_TEST_UNSET_VAR\}, but the environment "
        r"variable RF_TEST_UNSET_VAR is not set",
    ) as info:
        load_config(path)
    assert info.value.field == "source.path"
    assert info.value.message.startswith(f"The field 'source.path' in {path}: ")
    assert "RF_TEST_LAKE" not in info.value.message  # set variables are not blamed


def test_unset_env_vars_are_all_named(
    monkeypatch: pytest.MonkeyPatch, base: dict[str, Any]
) -> None:
    monkeypatch.delenv("RF_TEST_UNSET_A", raising=False)
    monkeypatch.delenv("RF_TEST_UNSET_B", raising=False)
    data = copy.deepcopy(base)
    data["source"] = {"kind": "sql", "url": "${RF_TEST_UNSET_B}_${RF_TEST_UNSET_A}", "table": "t"}
    with pytest.raises(
        ConfigError, match=r"variables RF_TEST_UNSET_A and RF_TEST_UNSET_B are not set"
    ) as info:
        parse_config(data, file="x.yaml")
    assert info.value.field == "source.url"


def test_env_var_in_description_is_refused_and_never_expanded(
    monkeypatch: pytest.MonkeyPatch, base: dict[str, Any]
) -> None:
    """``description: "${JWT_SECRET}"`` used to publish the secret in the DAG docs."""
    monkeypatch.setenv("RF_TEST_JWT_SECRET", "jwt-s3cret-value")
    data = copy.deepcopy(base)
    data["description"] = "Sales model ${RF_TEST_JWT_SECRET}"
    with pytest.raises(
        ConfigError,
        match=r"The field 'description' in x.yaml: uses \$\{RF_TEST_JWT_SECRET\}, but "
        r"environment variables are expanded only in artifact_root, source.bucket, .*source.url",
    ) as info:
        parse_config(data, file="x.yaml")
    assert info.value.field == "description"
    assert "jwt-s3cret-value" not in str(info.value)


@pytest.mark.parametrize(
    ("where", "field"),
    [
        (("tags", "team"), "tags.team"),
        (("evaluation", "slices"), "evaluation.slices[0]"),
        (("training", "params", "learning_rate"), "training.params.learning_rate"),
        (("features", "numeric"), "features.numeric[0]"),
    ],
)
def test_env_var_outside_the_allow_list_is_refused(
    monkeypatch: pytest.MonkeyPatch, base: dict[str, Any], where: tuple[str, ...], field: str
) -> None:
    monkeypatch.setenv("RF_TEST_SECRET", "s3cret")
    data = copy.deepcopy(base)
    node = data
    for key in where[:-1]:
        node = node.setdefault(key, {})
    ref = "${RF_TEST_SECRET}"
    node[where[-1]] = [ref] if field.endswith("[0]") else ref
    with pytest.raises(ConfigError, match=r"expanded only in") as info:
        parse_config(data, file="x.yaml")
    assert info.value.field == field
    assert "s3cret" not in str(info.value)


def test_allowed_fields_are_expanded_and_nothing_else_holds_the_value(
    monkeypatch: pytest.MonkeyPatch, base: dict[str, Any]
) -> None:
    env = {
        "RF_TEST_BUCKET": "my-lake",
        "RF_TEST_PREFIX": "sales",
        "RF_TEST_ENDPOINT": "http://minio:9000",
        "RF_TEST_REGION": "eu-west-1",
        "RF_TEST_ARTIFACTS": "s3://my-artifacts/rf",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    data = copy.deepcopy(base)
    data["source"] = {
        "kind": "s3",
        "bucket": "${RF_TEST_BUCKET}",
        "prefix": "${RF_TEST_PREFIX}/v1",
        "endpoint_url": "${RF_TEST_ENDPOINT}",
        "region": "${RF_TEST_REGION}",
    }
    data["artifact_root"] = "${RF_TEST_ARTIFACTS}"
    cfg = parse_config(data, file="x.yaml")
    assert isinstance(cfg.source, S3SourceConfig)
    assert (cfg.source.bucket, cfg.source.prefix) == ("my-lake", "sales/v1")
    assert (cfg.source.endpoint_url, cfg.source.region) == ("http://minio:9000", "eu-west-1")
    assert cfg.artifact_root == "s3://my-artifacts/rf"

    monkeypatch.setenv("RF_TEST_LAKE", "/data/lake")
    data["source"] = {"kind": "parquet", "path": "${RF_TEST_LAKE}/sales"}
    assert parse_config(data, file="x.yaml").source.path == "/data/lake/sales"


def test_sql_password_stays_in_source_url_only(
    monkeypatch: pytest.MonkeyPatch, base: dict[str, Any]
) -> None:
    """The parsed config's dump holds the expanded secret only in ``source.url``."""
    monkeypatch.setenv("RF_TEST_DB_URL", "postgresql://u:pw-9f3k2@db/x")
    data = copy.deepcopy(base)
    data["source"] = {"kind": "sql", "url": "${RF_TEST_DB_URL}", "table": "t"}
    data["description"] = "reads ${RF_TEST_DB_URL} from the warehouse"
    with pytest.raises(ConfigError, match="expanded only in"):
        parse_config(data, file="x.yaml")
    data["description"] = "reads the warehouse"
    cfg = parse_config(data, file="x.yaml")
    dump = cfg.model_dump(mode="json")
    assert dump["source"].pop("url") == "postgresql://u:pw-9f3k2@db/x"
    assert "pw-9f3k2" not in json.dumps(dump)


def test_relative_parquet_path_is_under_home_lake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, base: dict[str, Any]
) -> None:
    monkeypatch.setenv("RETRAINFLOW_HOME", str(tmp_path))
    cfg = parse_config(copy.deepcopy(base))
    assert cfg.source.resolved_path() == tmp_path.resolve() / "lake" / "synthetic"


def test_with_fit_threads_sets_lightgbm_threads_only(helpers) -> None:
    from retrainflow.config import with_fit_threads

    cfg = helpers.config_with({"training.params": {"num_threads": 2, "n_estimators": 10}})
    one = with_fit_threads(cfg, 1)
    assert one.training.params == {"num_threads": 1, "n_estimators": 10}
    assert cfg.training.params["num_threads"] == 2  # the original is not changed
    sgd = helpers.config_with({"training.estimator": "sgd", "training.params": {}})
    assert with_fit_threads(sgd, 1) is sgd
    with pytest.raises(ValueError, match="threads must be >= 1"):
        with_fit_threads(cfg, 0)


# -- warnings: valid settings known to go wrong ----------------------------------------------------
def _with(base: dict[str, Any], **changes: Any) -> PipelineConfig:
    """``base`` with dotted-path fields replaced (``training__mode`` → ``training.mode``)."""
    data = copy.deepcopy(base)
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return parse_config(data)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        # auto mode: max_warm_starts bounds the chain; 2 x 20 = 40 appended trees <= 50
        ({}, None),
        ({"training__mode": "warm_start"}, r"with training.mode 'warm_start' has no bound"),
        (
            {"monitoring__policy__mode": "warm_start"},
            r"with monitoring.policy.mode 'warm_start' has no bound",
        ),
        ({"monitoring__policy__mode": "warm_start", "monitoring__enabled": False}, None),
        # auto, but 6 x 20 = 120 appended trees outnumber the 50 of a from-scratch fit
        (
            {"training__warm_start__max_warm_starts": 6},
            r"appends up to 6 x 20 = 120 trees before a full refit, more than the 50 .*"
            r"keep max_warm_starts x num_boost_round at most 50",
        ),
        ({"training__mode": "stateless"}, None),  # never warm-starts
        ({"training__mode": "warm_start", "training__warm_start__method": "refit"}, None),
        ({"training__mode": "warm_start", "training__warm_start__method": "bounded"}, None),
        # SGD: partial_fit of a fixed-size model piles nothing up
        (
            {"training__mode": "warm_start", "training__estimator": "sgd", "training__params": {}},
            None,
        ),
    ],
    ids=[
        "auto_bounded",
        "warm_start",
        "policy_warm_start",
        "policy_off",
        "auto_too_many",
        "stateless",
        "refit",
        "bounded",
        "sgd",
    ],
)
def test_append_without_a_bound_is_warned_about(
    base: dict[str, Any], changes: dict[str, Any], expected: str | None
) -> None:
    import re

    from retrainflow.config import config_warnings

    warnings = config_warnings(_with(base, **changes))
    if expected is None:
        assert warnings == []
    else:
        assert len(warnings) == 1
        assert re.search(expected, warnings[0]), warnings[0]
        # says what to do instead
        assert "refit, refit_append or bounded" in warnings[0]


def test_validate_config_prints_warnings_without_failing(
    tmp_path: Path, base: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from retrainflow.cli.data_cmds import validate_config_cmd

    data = copy.deepcopy(base)
    data["training"]["mode"] = "warm_start"
    path = _write(tmp_path, data)
    code = validate_config_cmd(argparse.Namespace(paths=[path, SYNTHETIC_YAML], no_data=True))
    out = capsys.readouterr().out
    assert code == 0
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1  # the shipped synthetic config (auto, bounded) is not warned about
    assert warnings[0].startswith(f"warning: {path}: training.warm_start.method 'append' ")
    assert "mode 'auto' with max_warm_starts as the bound" in warnings[0]


# -- paths stay confined (issue 8, item 7) ------------------------------------------------------


@pytest.mark.parametrize("name", ["../synthetic", "/etc/passwd", "a/b", "Synthetic", "x y", ""])
def test_a_pipeline_name_is_a_name_not_a_path(home, name: str) -> None:
    from retrainflow.config import find_config
    from retrainflow.exceptions import PipelineNotFoundError

    with pytest.raises(PipelineNotFoundError, match="is not a pipeline name.*never a path"):
        find_config(name)


@pytest.mark.parametrize("path", ["../elsewhere", "synthetic/../../x", "a/../../b", " "])
def test_a_lake_path_cannot_climb_out_of_the_lake(helpers, path: str) -> None:
    from retrainflow.exceptions import ConfigError

    with pytest.raises(ConfigError, match=r"source.path"):
        helpers.config_with({"source.path": path})


def test_an_absolute_lake_path_is_an_explicit_location(helpers, tmp_path) -> None:
    cfg = helpers.config_with({"source.path": str(tmp_path / "lake")})
    assert cfg.source.resolved_path() == tmp_path / "lake"
    inside = helpers.config_with({"source.path": "team/synthetic"})
    assert inside.source.resolved_path().parts[-2:] == ("team", "synthetic")


@pytest.mark.parametrize(
    ("change", "field", "echo"),
    [
        ({"training.window_days": "abc"}, "training.window_days", "got 'abc'"),
        ({"evaluation.holdout_days": 2.5}, "evaluation.holdout_days", "got 2.5"),
        ({"training.params": {"learning_rate": [1]}}, "training.params.learning_rate", "got [1]"),
        ({"task": "clasify"}, "task", "got 'clasify'"),
    ],
)
def test_a_wrong_value_is_echoed_in_the_message(helpers, change, field, echo) -> None:
    from retrainflow.exceptions import ConfigError

    with pytest.raises(ConfigError) as info:
        helpers.config_with(change)
    assert f"The field '{field}'" in str(info.value)
    assert echo in str(info.value)
