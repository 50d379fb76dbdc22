"""Typed pipeline configuration: ``config/pipelines/<name>.yaml``.

One YAML file is one pipeline. It loads into :class:`PipelineConfig`; every
field states its constraint next to it, unknown keys are refused, and every
error names the file and the dotted field path, e.g.::

    The field 'evaluation.primary_metric' in config/pipelines/flights.yaml:
    must be one of ['accuracy', 'f1', 'log_loss', 'roc_auc']; got 'acc'.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from retrainflow import settings
from retrainflow.core.metrics import (
    CLASSIFICATION_METRICS,
    LOWER_IS_BETTER,
    REGRESSION_METRICS,
    lower_is_better,
)
from retrainflow.core.modes import WARM_STARTABLE, Mode
from retrainflow.exceptions import ConfigError, PipelineNotFoundError

__all__ = [
    "CLASSIFICATION_METRICS",
    "LOWER_IS_BETTER",
    "REGRESSION_METRICS",
    "WARM_STARTABLE",
    "Mode",
    "PipelineConfig",
    "load_config",
    "parse_config",
]

TaskType = Literal["binary_classification", "regression"]

_NAME_RE = r"^[a-z][a-z0-9_]{0,62}$"


def _valid_schedule(v: str | None) -> str | None:
    """A cron expression, an Airflow preset, or None."""
    if v is None:
        return v
    presets = {"@once", "@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@continuous"}
    if v in presets or len(v.split()) == 5:
        return v
    raise ValueError(f"must be a cron expression or one of {sorted(presets)}; got {v!r}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParquetSourceConfig(_Strict):
    """Local Parquet lake partitioned by ``date=YYYY-MM-DD``."""

    kind: Literal["parquet"] = "parquet"
    #: Directory of the partitions: a relative path is under the lake root and must stay
    #: inside it; a location elsewhere must be written as an absolute path. The lake root is
    #: ``RETRAINFLOW_LAKE_URI`` (default ``$RETRAINFLOW_HOME/lake``); when it is
    #: ``s3://bucket/prefix``, a relative path is read from S3 at ``<prefix>/<path>``.
    path: str

    @field_validator("path")
    @classmethod
    def _inside_the_lake(cls, v: str) -> str:
        p = Path(v).expanduser()
        if not v.strip():
            raise ValueError("must not be empty")
        if not p.is_absolute() and ".." in p.parts:
            raise ValueError(
                f"{v!r} climbs out of the lake ($RETRAINFLOW_HOME/lake) with '..'; give a "
                "path inside it, or an absolute path for a location outside it"
            )
        return v

    def resolved_path(self) -> Path:
        """The partitions' directory on this machine (see :func:`settings.lake_root`).

        Raises:
            ConfigError: the path is relative and the lake is on S3 (``make_source`` reads
                it from there).
        """
        p = Path(self.path).expanduser()
        if p.is_absolute():
            return p
        lake = settings.lake_root()
        if isinstance(lake, settings.S3Location):
            raise ConfigError(
                f"source.path {self.path!r} is in the S3 lake {lake.uri} "
                "(RETRAINFLOW_LAKE_URI), not on this machine."
            )
        return lake / p


class S3SourceConfig(_Strict):
    """Parquet partitions ``<prefix>/date=YYYY-MM-DD/*.parquet`` in an S3 bucket."""

    kind: Literal["s3"]
    bucket: str = Field(min_length=3)
    prefix: str = ""
    #: For S3-compatible stores (MinIO, a local endpoint); ``None`` means AWS.
    endpoint_url: str | None = None
    region: str = "us-east-1"


class SqlSourceConfig(_Strict):
    """A SQL table (any SQLAlchemy URL); the window is a ``WHERE`` on the time column."""

    kind: Literal["sql"]
    #: SQLAlchemy URL; ``${VAR}`` is expanded from the environment (see :data:`ENV_FIELDS`).
    url: str
    table: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$")


SourceConfig = Annotated[
    ParquetSourceConfig | S3SourceConfig | SqlSourceConfig, Field(discriminator="kind")
]


class FeaturesConfig(_Strict):
    """Model inputs. Derived calendar features come from the time column."""

    numeric: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    #: Calendar parts of the time column to add as numeric features.
    time_parts: list[Literal["hour", "day_of_week", "month", "day_of_year"]] = Field(
        default_factory=list
    )

    @model_validator(mode="after")
    def _not_empty_no_overlap(self) -> FeaturesConfig:
        if not (self.numeric or self.categorical or self.time_parts):
            raise ValueError("at least one numeric, categorical or time_parts feature is required")
        both = set(self.numeric) & set(self.categorical)
        if both:
            raise ValueError(f"columns listed as both numeric and categorical: {sorted(both)}")
        for group in (self.numeric, self.categorical):
            dup = {c for c in group if group.count(c) > 1}
            if dup:
                raise ValueError(f"columns listed twice: {sorted(dup)}")
        return self

    @property
    def raw_columns(self) -> list[str]:
        """Columns the model reads from a raw row."""
        return [*self.numeric, *self.categorical]


class ColumnExpectation(_Strict):
    """Expectations on one column (checked with Great Expectations)."""

    nullable: bool = True
    min: float | None = None
    max: float | None = None
    allowed: list[str | int] | None = None
    #: ``int``, ``float``, ``str``, ``bool`` or ``datetime``; checked against the data's dtype.
    type: Literal["int", "float", "str", "bool", "datetime"] | None = None
    #: When this many percent of rows may be null before it is a failure (nullable columns only).
    max_null_fraction: float | None = Field(default=None, ge=0, le=1)

    @model_validator(mode="after")
    def _range(self) -> ColumnExpectation:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class ExpectationsConfig(_Strict):
    """What a valid data window looks like."""

    min_rows: int = Field(default=1, ge=1)
    #: Columns other than features, target and time column that may appear.
    allow_extra_columns: bool = False
    columns: dict[str, ColumnExpectation] = Field(default_factory=dict)
    #: Rows of a window that are exact copies of other rows: ``refuse`` stops the run;
    #: ``drop`` keeps one copy (a warning and the count in the pull report); ``allow`` keeps
    #: them (identical rows are separate events, e.g. two flights on one route at one
    #: minute). A day written twice (an identical second file, or a partition whose every
    #: row has a copy) is refused unless ``drop``.
    duplicates: Literal["refuse", "drop", "allow"] = "refuse"
    #: Rows whose target is null (the label has not arrived yet): ``refuse`` fails
    #: validation; ``exclude`` leaves them out of training and evaluation (counted in the
    #: pull report; monitoring still sees them).
    unlabelled: Literal["refuse", "exclude"] = "refuse"


class WarmStartConfig(_Strict):
    """How a warm start continues the champion."""

    #: Fraction of the new rows' count to sample from older data (against forgetting).
    replay_fraction: float = Field(default=0.0, ge=0, le=10)
    #: How many days of data before the parent's window end the replay sample comes from.
    replay_days: int = Field(default=60, ge=1)
    #: ``auto`` mode: a full stateless fit after this many consecutive warm starts.
    max_warm_starts: int = Field(default=4, ge=0)
    #: LightGBM: boosting rounds added per warm start (methods ``append``,
    #: ``refit_append``, ``bounded``).
    num_boost_round: int = Field(default=50, ge=1)
    #: How the champion is continued (see :func:`retrainflow.core.training.continue_estimator`):
    #: ``append`` adds trees fitted on the new rows (SGD: ``partial_fit``); ``refit`` keeps the
    #: trees and re-fits their leaf values on the new rows (LightGBM ``Booster.refit``);
    #: ``refit_append`` does both; ``bounded`` appends, keeps ``max_trees`` trees (the oldest,
    #: from the from-scratch fit, and the newest) and re-fits the leaves. The last three need
    #: LightGBM. LightGBM ``append`` falls ever further behind a from-scratch fit as warm
    #: starts chain: bound it (``mode: auto``, see :func:`config_warnings`) or use another.
    method: Literal["append", "refit", "refit_append", "bounded"] = "append"
    #: ``refit`` family: weight of the old leaf value (``new = d * old + (1 - d) * fitted``).
    decay_rate: float = Field(default=0.8, ge=0, le=1)
    #: ``bounded``: trees kept after a warm start (default: ``params.n_estimators``): the
    #: oldest (up to ``n_estimators``, at most ``max_trees - num_boost_round``) and the newest.
    max_trees: int | None = Field(default=None, ge=1)


LIGHTGBM_PARAMS = frozenset(
    {
        "n_estimators",
        "learning_rate",
        "num_leaves",
        "max_depth",
        "min_child_samples",
        "min_data_in_leaf",
        "feature_fraction",
        "bagging_fraction",
        "bagging_freq",
        "lambda_l1",
        "lambda_l2",
        "min_gain_to_split",
        "max_bin",
        "seed",
        "num_threads",
        "colsample_bytree",
        "subsample",
        "reg_alpha",
        "reg_lambda",
        "cat_smooth",
        "max_cat_to_onehot",
        "is_unbalance",
        "scale_pos_weight",
        "verbosity",
        "deterministic",
        "force_col_wise",
    }
)

#: Warm-start methods that re-fit LightGBM leaf values (``Booster.refit``).
LIGHTGBM_WARM_METHODS = frozenset({"refit", "refit_append", "bounded"})


class TrainingConfig(_Strict):
    """What is trained and how."""

    estimator: Literal["lightgbm", "sgd", "random_forest", "hist_gradient_boosting"] = "lightgbm"
    #: Hyperparameters of the estimator (checked against the estimator's own names).
    #: LightGBM's ``num_threads`` (default 1) is a number (0: OpenMP's default, every CPU) or
    #: ``auto``: per fit, as many as the CPUs other processes leave idle, and at most one
    #: per ``MIN_ROWS_PER_THREAD`` rows (:func:`retrainflow.core.training.choose_threads`);
    #: the lineage records the choice (tags ``fit_threads``, ``fit_threads_reason``).
    params: dict[str, int | float | str | bool] = Field(default_factory=dict)
    mode: Mode = Mode.AUTO
    #: Days of data in a stateless training window.
    window_days: int = Field(default=60, ge=1)
    warm_start: WarmStartConfig = Field(default_factory=WarmStartConfig)
    random_seed: int = 42
    #: Where a stateless fit runs: ``local`` (the train task's process) or ``dask``: LightGBM's
    #: Dask interface on the cluster at ``$RETRAINFLOW_DASK_ADDRESS``, whose workers read the
    #: window's partitions themselves (:mod:`retrainflow.core.dask_engine`). LightGBM only. A
    #: warm start continues the champion's booster in the train task's process whatever the
    #: engine (``mode: auto`` records why); ``mode: warm_start`` with ``dask`` is refused.
    engine: Literal["local", "dask"] = "local"

    @model_validator(mode="after")
    def _check(self) -> TrainingConfig:
        if self.engine == "dask" and self.estimator != "lightgbm":
            raise _FieldError(
                "training.engine",
                f"'dask' fits LightGBM only (LightGBM's own Dask interface); the estimator is "
                f"'{self.estimator}': use engine 'local'",
            )
        if self.engine == "dask" and self.mode == Mode.WARM_START:
            raise _FieldError(
                "training.engine",
                "'dask' fits stateless only, and mode 'warm_start' would never fit stateless: a "
                "warm start continues the champion's booster in the train task's process. Use "
                "mode 'auto' (stateless fits on Dask, warm starts locally) or 'stateless'",
            )
        if self.warm_start.method in LIGHTGBM_WARM_METHODS and self.estimator != "lightgbm":
            raise ValueError(
                f"warm_start.method '{self.warm_start.method}' needs estimator 'lightgbm'; "
                f"'{self.estimator}' can only 'append'"
            )
        if self.mode == Mode.WARM_START and self.estimator not in WARM_STARTABLE:
            raise ValueError(
                f"mode 'warm_start' needs an estimator that can continue training "
                f"({sorted(WARM_STARTABLE)}); '{self.estimator}' cannot"
            )
        known = _estimator_param_names(self.estimator)
        unknown = sorted(set(self.params) - known)
        if unknown:
            raise ValueError(
                f"unknown hyperparameter(s) {unknown} for estimator '{self.estimator}'"
            )
        threads = self.params.get("num_threads")
        if self.estimator == "lightgbm" and threads is not None and not _valid_threads(threads):
            raise _FieldError(
                "training.params.num_threads",
                "must be 'auto' (as many threads as idle CPUs, per fit) or a whole number "
                f">= 0 (0: every CPU); got {threads!r}",
            )
        return self


def _valid_threads(value: object) -> bool:
    """``training.params.num_threads`` of LightGBM: ``"auto"`` or an int >= 0."""
    if value == "auto":
        return True
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _estimator_param_names(estimator: str) -> frozenset[str]:
    if estimator == "lightgbm":
        return LIGHTGBM_PARAMS
    # scikit-learn's own parameter names, without importing sklearn at config time.
    common = {"random_state"}
    names = {
        "sgd": {
            "alpha",
            "l1_ratio",
            "penalty",
            "max_iter",
            "tol",
            "eta0",
            "learning_rate",
            "average",
            "class_weight",
            "epsilon",
            "power_t",
        },
        "random_forest": {
            "n_estimators",
            "max_depth",
            "min_samples_leaf",
            "min_samples_split",
            "max_features",
            "class_weight",
            "n_jobs",
            "max_samples",
            "bootstrap",
        },
        "hist_gradient_boosting": {
            "max_iter",
            "learning_rate",
            "max_leaf_nodes",
            "max_depth",
            "min_samples_leaf",
            "l2_regularization",
            "max_bins",
            "early_stopping",
            "class_weight",
        },
    }[estimator]
    return frozenset(names | common)


def _margin(value: Any, *, signed: bool = True) -> float | str:
    """A number (absolute) or a percentage string such as ``"2%"`` (relative)."""
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str) and value.strip().endswith("%"):
        try:
            number = float(value.strip()[:-1])
        except ValueError:
            number = None
    if number is None:
        raise ValueError(
            "must be a number (an absolute amount of the metric) or a percentage of the "
            f"champion's value such as '2%'; got {value!r}"
        )
    if not signed and number < 0:
        raise ValueError(f"must be >= 0; got {value!r}")
    return f"{number:g}%" if isinstance(value, str) else number


#: An amount of a metric: absolute (``0.02``) or relative to the champion's value (``"2%"``,
#: see :func:`retrainflow.core.metrics.margin`); negative allowed (a tolerated loss).
Margin = Annotated[float | str, BeforeValidator(_margin)]
#: The same, at least 0.
NonNegativeMargin = Annotated[float | str, BeforeValidator(lambda v: _margin(v, signed=False))]


class EvaluationConfig(_Strict):
    """The gate a challenger must pass before it becomes champion."""

    primary_metric: str = "roc_auc"
    #: The challenger must beat the champion's primary metric by at least this much: an
    #: absolute amount (``0.005``) or a percentage of the champion's value (``"1%"``).
    min_delta: Margin = 0.0
    #: Metric -> tolerance: the challenger may be worse than the champion by at most this.
    guardrails: dict[str, float] = Field(default_factory=dict)
    #: Metric -> absolute floor (ceiling for lower-is-better metrics) the challenger must meet.
    floors: dict[str, float] = Field(default_factory=dict)
    #: Categorical columns whose per-value metrics are reported.
    slices: list[str] = Field(default_factory=list)
    #: The newest days of the window, held out from training for the comparison.
    holdout_days: int = Field(default=7, ge=1)
    #: Slices with fewer rows are not reported.
    min_slice_rows: int = Field(default=200, ge=1)


STAT_TESTS = (
    "ks",
    "psi",
    "wasserstein",
    "jensenshannon",
    "kl_div",
    "chisquare",
    "z",
    "anderson",
    "cramer_von_mises",
    "hellinger",
    "energy",
    "mannw",
    "t_test",
    "TVD",
    "empirical_mmd",
)
_NUMERIC = frozenset({"numeric"})
_CATEGORICAL = frozenset({"categorical"})
_BOTH = _NUMERIC | _CATEGORICAL
#: The column types each test supports: the ``allowed_feature_types`` of Evidently 0.7's
#: registered stat tests (``evidently.legacy.calculations.stattests``; ``energy`` is
#: registered there as ``ed``). Written out so that loading a config does not import
#: Evidently; ``tests/test_config.py`` checks the table against the installed Evidently.
STAT_TEST_COLUMN_TYPES: dict[str, frozenset[str]] = {
    "ks": _NUMERIC,
    "wasserstein": _NUMERIC,
    "anderson": _NUMERIC,
    "cramer_von_mises": _NUMERIC,
    "energy": _NUMERIC,
    "mannw": _NUMERIC,
    "t_test": _NUMERIC,
    "empirical_mmd": _NUMERIC,
    "chisquare": _CATEGORICAL,
    "z": _CATEGORICAL,
    "TVD": _CATEGORICAL,
    "psi": _BOTH,
    "jensenshannon": _BOTH,
    "kl_div": _BOTH,
    "hellinger": _BOTH,
}


def _stat_tests_for(kind: str) -> list[str]:
    """The tests that support ``kind``: ``numeric``, ``categorical`` or both, joined by "and"."""
    wanted = set(kind.split(" and "))
    fit = (m for m, kinds in STAT_TEST_COLUMN_TYPES.items() if wanted <= kinds)
    return sorted(fit, key=str.lower)


class DriftTestConfig(_Strict):
    """One Evidently statistical test and its threshold (None = Evidently's default)."""

    method: Literal[STAT_TESTS] | None = None  # type: ignore[valid-type]
    threshold: float | None = Field(default=None, gt=0)


class DriftConfig(_Strict):
    """How feature drift is measured (with Evidently)."""

    #: Test for every feature without its own method; it must support the type of each of
    #: them (``STAT_TEST_COLUMN_TYPES``). The prediction and target columns get it when it
    #: supports their type. None lets Evidently pick by type and size.
    method: Literal[STAT_TESTS] | None = None  # type: ignore[valid-type]
    threshold: float | None = Field(default=None, gt=0)
    #: Per-column overrides.
    columns: dict[str, DriftTestConfig] = Field(default_factory=dict)
    #: The data set drifts when at least this share of columns drift.
    share_threshold: float = Field(default=0.5, gt=0, le=1)
    #: Any of these drifting counts as drift, whatever the share.
    key_features: list[str] = Field(default_factory=list)
    #: Drift share at or above which the retrain is stateless instead of a warm start.
    severe_share: float = Field(default=0.8, gt=0, le=1)


TriggerRule = Literal["drift", "performance", "volume", "staleness"]
_DEFAULT_TRIGGERS: list[TriggerRule] = ["drift", "performance"]


class PolicyConfig(_Strict):
    """When the monitoring DAG triggers a retrain, and the hygiene around it."""

    #: Rules that may trigger: drift, performance, volume, staleness (on demand is always allowed).
    triggers: list[TriggerRule] = Field(default_factory=lambda: _DEFAULT_TRIGGERS.copy())
    #: performance: drop of the primary metric vs the champion's gate-time value that fires:
    #: absolute (``0.02``) or a percentage of the gate-time value (``"10%"``).
    performance_drop: NonNegativeMargin = 0.02
    #: volume: new labelled rows since the champion's data end.
    min_new_rows: int = Field(default=50_000, ge=1)
    #: staleness: days since the champion's data end.
    max_staleness_days: int = Field(default=30, ge=1)
    #: No new trigger within this many hours of the last one.
    cooldown_hours: float = Field(default=24, ge=0)
    #: Drift must be seen in M of the last N checks (this one included).
    drift_m: int = Field(default=1, ge=1)
    drift_n: int = Field(default=1, ge=1)
    max_retrains_per_week: int = Field(default=7, ge=0)
    #: Fewer current rows than this: no drift or performance decision.
    min_samples: int = Field(default=500, ge=1)
    #: Mode of a triggered retrain; None = ``training.mode`` (a schema change or severe
    #: drift makes it stateless either way).
    mode: Mode | None = None

    @model_validator(mode="after")
    def _m_of_n(self) -> PolicyConfig:
        if self.drift_m > self.drift_n:
            raise ValueError(f"drift_m ({self.drift_m}) cannot exceed drift_n ({self.drift_n})")
        return self


class MonitoringConfig(_Strict):
    """The ``monitor__<pipeline>`` DAG: drift, performance, and the trigger policy."""

    enabled: bool = True
    #: Airflow schedule of the monitoring DAG.
    schedule: str | None = "@daily"
    #: Days of newest data in one check: ``[date - current_days, date)``.
    current_days: int = Field(default=1, ge=1)
    #: Rows sampled from the champion's training data as the reference.
    reference_rows: int = Field(default=20_000, ge=100)
    #: Rows sampled from the current window (None = all).
    current_rows: int | None = Field(default=None, ge=100)
    #: Labels arrive this many days after the event: newer rows have no label yet.
    label_delay_days: int = Field(default=0, ge=0)
    #: When a check renders Evidently's HTML report (seconds of work, megabytes of page):
    #: ``on_drift`` (a column, the scores or the target drifted), ``always`` or ``never``.
    #: The JSON summary is always written.
    html_report: Literal["on_drift", "always", "never"] = "on_drift"
    drift: DriftConfig = Field(default_factory=DriftConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)

    _check_schedule = field_validator("schedule")(lambda cls, v: _valid_schedule(v))


class PipelineConfig(_Strict):
    """One pipeline: data source, features, training, gate and promotion."""

    name: str = Field(pattern=_NAME_RE)
    description: str = ""
    task: TaskType
    #: Label column; binary targets hold 0/1 (or booleans).
    target: str = Field(min_length=1)
    #: Event-time column; windows and partitions are by this column's date.
    time_column: str = Field(min_length=1)
    #: IANA time zone (``Europe/Paris``) whose local days partition the rows. Unset: the
    #: time column must hold naive timestamps. Set: it must hold zone-aware timestamps,
    #: which are converted to this zone's local time and made naive. Never guessed.
    time_zone: str | None = None
    source: SourceConfig
    features: FeaturesConfig
    expectations: ExpectationsConfig = Field(default_factory=ExpectationsConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    promotion: Literal["auto", "manual"] = "auto"
    #: Airflow schedule of the retraining DAG (cron, preset such as ``@weekly``, or null).
    schedule: str | None = None
    #: Where stage artifacts and the monitoring ledger go: a local path, ``file:///...`` or
    #: ``s3://bucket/prefix``; unset: ``RETRAINFLOW_ARTIFACT_ROOT``, else
    #: ``$RETRAINFLOW_HOME/artifacts``.
    artifact_root: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, v: str | None) -> str | None:
        return _valid_schedule(v)

    @field_validator("time_zone")
    @classmethod
    def _time_zone(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"must be an IANA time zone name such as 'UTC' or 'Europe/Paris'; got {v!r}"
            ) from None
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> PipelineConfig:
        allowed = (
            CLASSIFICATION_METRICS if self.task == "binary_classification" else REGRESSION_METRICS
        )
        ev = self.evaluation
        if ev.primary_metric not in allowed:
            raise _FieldError(
                "evaluation.primary_metric",
                f"must be one of {sorted(allowed)} for task '{self.task}'; got '{ev.primary_metric}'",
            )
        for section in ("guardrails", "floors"):
            for metric in getattr(ev, section):
                if metric not in allowed:
                    raise _FieldError(
                        f"evaluation.{section}.{metric}",
                        f"unknown metric for task '{self.task}'; use one of {sorted(allowed)}",
                    )
        roles = {self.target: "target", self.time_column: "time_column"}
        for col in self.features.raw_columns:
            if col in roles:
                raise _FieldError(
                    "features", f"'{col}' is the {roles[col]}; it cannot be a feature"
                )
        for i, col in enumerate(ev.slices):
            if col not in self.features.categorical:
                raise _FieldError(
                    f"evaluation.slices[{i}]", f"'{col}' must be one of features.categorical"
                )
        known = set(self.features.raw_columns)
        drift = self.monitoring.drift
        for i, col in enumerate(drift.key_features):
            if col not in known:
                raise _FieldError(
                    f"monitoring.drift.key_features[{i}]", f"'{col}' is not a feature"
                )
        for col in drift.columns:
            if col not in known:
                raise _FieldError(f"monitoring.drift.columns.{col}", f"'{col}' is not a feature")
        kinds = {
            **dict.fromkeys(self.features.numeric, "numeric"),
            **dict.fromkeys(self.features.categorical, "categorical"),
        }
        for col, test in drift.columns.items():
            if test.method is not None and kinds[col] not in STAT_TEST_COLUMN_TYPES[test.method]:
                raise _FieldError(
                    f"monitoring.drift.columns.{col}.method",
                    f"'{test.method}' does not support {kinds[col]} columns such as '{col}'; "
                    f"use one of {_stat_tests_for(kinds[col])}",
                )
        if drift.method is not None:
            own = {col for col, test in drift.columns.items() if test.method is not None}
            unfit = [
                col
                for col, kind in kinds.items()
                if col not in own and kind not in STAT_TEST_COLUMN_TYPES[drift.method]
            ]
            if unfit:
                kind, one = kinds[unfit[0]], len(unfit) == 1
                raise _FieldError(
                    "monitoring.drift.method",
                    f"'{drift.method}' does not support {kind} columns, and {unfit} "
                    f"{'has' if one else 'have'} no method of {'its' if one else 'their'} own; set "
                    f"monitoring.drift.columns.<column>.method to one of {_stat_tests_for(kind)}, "
                    f"or use a method for both types: {_stat_tests_for('numeric and categorical')}",
                )
        return self

    # -- helpers used across stages -------------------------------------------------
    @property
    def lower_is_better(self) -> bool:
        """Direction of the primary metric (:func:`retrainflow.core.metrics.lower_is_better`)."""
        return lower_is_better(self.evaluation.primary_metric)

    @property
    def required_columns(self) -> list[str]:
        """Columns every window must carry."""
        return [self.time_column, self.target, *self.features.raw_columns]

    @property
    def holdout(self) -> timedelta:
        return timedelta(days=self.evaluation.holdout_days)

    def artifact_root_uri(self) -> str:
        """``artifact_root``, else :func:`settings.artifact_root` (``RETRAINFLOW_ARTIFACT_ROOT``)."""
        if self.artifact_root:
            return self.artifact_root
        return settings.artifact_root()

    @property
    def registered_model_name(self) -> str:
        return self.name

    @property
    def retrain_dag_id(self) -> str:
        return f"retrain__{self.name}"

    @property
    def monitor_dag_id(self) -> str:
        return f"monitor__{self.name}"


class _FieldError(ValueError):
    """A cross-field error that knows its own field path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

#: The only fields whose ``${VAR}`` is expanded: where a deployment's address or credentials
#: are meant to come from the environment. Everything else (``description``, ``tags``, column
#: names...) is shown in the Airflow UI, REST answers and the metadata DB, so an expanded
#: variable there would publish it (``description: "${AIRFLOW__API_AUTH__JWT_SECRET}"``).
ENV_FIELDS: frozenset[str] = frozenset(
    {
        "source.url",  # sql: SQLAlchemy URL, often with a password
        "source.path",  # parquet: the lake's location on this machine
        "source.bucket",  # s3
        "source.prefix",  # s3
        "source.endpoint_url",  # s3: MinIO / S3-compatible endpoint
        "source.region",  # s3
        "artifact_root",  # a local folder or an s3:// location per deployment
    }
)


def _expand_env(value: Any, field: str = "") -> Any:
    """``value`` with every ``${VAR}`` in its strings replaced by the variable's value.

    Only the fields in :data:`ENV_FIELDS` are expanded.

    Raises:
        _FieldError: a ``${VAR}`` is used outside :data:`ENV_FIELDS`, or names a variable
            that is not set (naming the field).
    """
    import os

    if isinstance(value, str):
        used = sorted({m.group(1) for m in _ENV_RE.finditer(value)})
        if used and field not in ENV_FIELDS:
            refs = " and ".join(f"${{{name}}}" for name in used)
            raise _FieldError(
                field,
                f"uses {refs}, but environment variables are expanded only in "
                f"{', '.join(sorted(ENV_FIELDS))} (a value anywhere else would be shown in the "
                "Airflow UI and stored in its database); write the value into the file",
            )
        unset = sorted(set(used) - set(os.environ))
        if unset:
            refs = " and ".join(f"${{{name}}}" for name in unset)
            names = " and ".join(unset)
            many = len(unset) > 1
            raise _FieldError(
                field,
                f"uses {refs}, but the environment variable{'s' if many else ''} {names} "
                f"{'are' if many else 'is'} not set; set {'them' if many else 'it'} or write "
                "the value into the file",
            )
        return _ENV_RE.sub(lambda m: os.environ[m.group(1)], value)
    if isinstance(value, dict):
        return {k: _expand_env(v, f"{field}.{k}" if field else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, f"{field}[{i}]") for i, v in enumerate(value)]
    return value


#: Pydantic's names of union members in an error location.
_TYPE_TAGS = frozenset({"int", "float", "str", "bool", "none", "dict", "list"})


def _loc_to_field(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in {"parquet", "s3", "sql"} and out == "source":
            continue  # discriminated-union tag, not a user-visible field
        elif part in _TYPE_TAGS or str(part).startswith(("function-", "literal[", "list[")):
            continue  # a union member's tag (``int``, ``float``...), not a field
        else:
            out += ("." if out else "") + str(part)
    return out


def parse_config(data: Any, *, file: Path | str = "<config>") -> PipelineConfig:
    """Validate an already-parsed YAML mapping.

    Raises:
        ConfigError: naming ``file`` and the first offending field.
    """
    if not isinstance(data, dict):
        raise ConfigError("must be a YAML mapping of pipeline settings", file=file)
    try:
        expanded = _expand_env(data)
    except _FieldError as exc:
        raise ConfigError(exc.message + ".", file=file, field=exc.field) from None
    try:
        return PipelineConfig.model_validate(expanded)
    except ValidationError as exc:
        err = exc.errors()[0]
        ctx_err = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_err, _FieldError):
            raise ConfigError(ctx_err.message + ".", file=file, field=ctx_err.field) from None
        field = _loc_to_field(tuple(err["loc"]))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling against the documented schema)"
        elif err["type"] == "missing":
            msg = "is required but missing"
        msg = msg.removeprefix("Value error, ").rstrip(".")
        shown = repr(err.get("input"))
        if err["type"] not in ("extra_forbidden", "missing") and f"got {shown}" not in msg:
            msg = f"{msg}; got {shown}"  # echo the value that was refused
        more = len(exc.errors()) - 1
        if more:
            msg += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise ConfigError(
            msg + ("" if msg.endswith(".") else "."), file=file, field=field or None
        ) from None


def load_config(path: Path | str) -> PipelineConfig:
    """Load and validate one pipeline YAML file; its ``name`` must equal the file stem."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot be read: {exc.strerror}", file=path) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"is not valid YAML: {exc}", file=path) from None
    cfg = parse_config(data, file=path)
    if cfg.name != path.stem:
        raise ConfigError(
            f"must equal the file name '{path.stem}'; got '{cfg.name}'", file=path, field="name"
        )
    return cfg


def config_paths(directory: Path | None = None) -> list[Path]:
    """All pipeline YAML files, sorted by name."""
    directory = directory or settings.config_dir()
    if not directory.is_dir():
        return []
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])


def load_all(directory: Path | None = None) -> list[PipelineConfig]:
    """Load every pipeline config; the first invalid one raises :class:`ConfigError`."""
    return [load_config(p) for p in config_paths(directory)]


def with_fit_threads(config: PipelineConfig, threads: int) -> PipelineConfig:
    """``config`` with LightGBM's ``num_threads`` set to ``threads`` (other estimators as is).

    The offline analyses (backtest, freshness) default to one thread per fit: their CPU
    seconds are then comparable between fits, where OpenMP threads that spin while they
    wait for a busy core inflate the CPU time of multi-threaded fits.
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1; got {threads}")
    if config.training.estimator != "lightgbm":
        return config
    params = {**config.training.params, "num_threads": threads}
    return config.model_copy(
        update={"training": config.training.model_copy(update={"params": params})}
    )


def find_config(name: str, directory: Path | None = None) -> PipelineConfig:
    """The config of pipeline ``name``.

    Raises:
        PipelineNotFoundError: listing the pipelines that do exist.
    """
    directory = directory or settings.config_dir()
    if not re.fullmatch(_NAME_RE, name):
        raise PipelineNotFoundError(
            f"'{name}' is not a pipeline name: a name is lower-case letters, digits and '_' "
            f"(starting with a letter), never a path. Known pipelines: "
            f"{[p.stem for p in config_paths(directory)] or 'none'}.",
            pipeline=name,
        )
    for suffix in (".yaml", ".yml"):
        path = directory / f"{name}{suffix}"
        if path.is_file():
            return load_config(path)
    known = [p.stem for p in config_paths(directory)]
    raise PipelineNotFoundError(
        f"No pipeline named '{name}' in {directory}; known pipelines: {known or 'none'}. "
        f"Add {directory / (name + '.yaml')} to create it.",
        pipeline=name,
    )


def config_warnings(config: PipelineConfig) -> list[str]:
    """Settings that are valid but known to go wrong, each saying what to do instead.

    ``retrainflow validate-config`` prints them as ``warning: ...`` and does not fail.

    * LightGBM ``warm_start.method: append`` without a bound. Every ``append`` adds
      ``num_boost_round`` trees fitted on the new rows only and never revisits the old
      ones, so on a long stream the error grows with the number of chained warm starts
      (README, "Warm start append runs away"). ``mode: auto`` counts as a bound: after
      ``max_warm_starts`` consecutive warm starts it refits from scratch, which discards
      every appended tree — but only while the appended trees stay a minority, i.e.
      ``max_warm_starts × num_boost_round <= n_estimators``. An explicit ``warm_start``
      mode (``training.mode`` or ``monitoring.policy.mode``) has no bound. SGD's ``append``
      (``partial_fit`` of a fixed-size linear model) piles nothing up and is not warned about.
    """
    out: list[str] = []
    tr, ws = config.training, config.training.warm_start
    if tr.estimator == "lightgbm" and ws.method == "append":
        # n_estimators: the rounds of a from-scratch fit (core.training.lightgbm_params).
        full_fit_trees = int(tr.params.get("n_estimators", 200))
        modes: list[tuple[str, Mode | None]] = [("training.mode", tr.mode)]
        if config.monitoring.enabled:
            modes.append(("monitoring.policy.mode", config.monitoring.policy.mode))
        explicit = [field for field, mode in modes if mode == Mode.WARM_START]
        appended = ws.max_warm_starts * ws.num_boost_round
        fix = (
            "use training.warm_start.method refit, refit_append or bounded, which re-fit "
            "the old trees' leaves on the new rows"
        )
        if explicit:
            out.append(
                f"training.warm_start.method 'append' with {' and '.join(explicit)} "
                f"'warm_start' has no bound: every warm start adds {ws.num_boost_round} trees "
                f"fitted on the new rows only, and the error grows with every one (an hourly "
                f"stream: next-week MAE 53 -> 4,033 over ~130 weekly warm starts, while a "
                f"from-scratch fit stayed at 27-74); {fix}, or mode 'auto' with "
                f"max_warm_starts as the bound"
            )
        elif any(mode == Mode.AUTO for _, mode in modes) and appended > full_fit_trees:
            out.append(
                f"training.warm_start.method 'append' with mode 'auto' appends up to "
                f"{ws.max_warm_starts} x {ws.num_boost_round} = {appended} trees before a full "
                f"refit, more than the {full_fit_trees} of a from-scratch fit: by then the "
                f"model is mostly trees fitted on one batch each, and its error grows with "
                f"every warm start; keep max_warm_starts x num_boost_round at most "
                f"{full_fit_trees}, or {fix}"
            )
    return out
