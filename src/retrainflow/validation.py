"""Data validation with Great Expectations 1.x.

:func:`build_suite` turns a pipeline's config into a GE ``ExpectationSuite``;
:func:`validate_frame` runs it on a whole :class:`pandas.DataFrame` in one
batch and translates GE's results into a small, JSON-serializable
:class:`ValidationReport` whose messages name the column and the problem::

    column 'distance': 12 values (0.4%) outside [0, 5000], e.g. [-5.0, 99999.0]
    missing column(s) ['temp']

The checks themselves are GE expectations; this module only builds them from
the config and words their results. Great Expectations is imported lazily (the
import takes ~8-10 s), so importing this module is cheap.

The report also lists every expectation with its outcome (``expectations``), and a
failure about row values names the lake partitions (``date=YYYY-MM-DD`` of the time
column) of the offending rows with a few of their values (``observed["partitions"]``),
which the run's validation page shows.

Notes on GE 1.24's pandas backend that shaped this module:

* An expectation on a column that does not exist does not raise: its result
  carries ``exception_info`` ("The column ... does not exist"). Those results
  are folded into the single "missing column(s)" failure of the column-set
  expectation instead of being reported as crashes.
* ``ExpectColumnValuesToBeInTypeList`` compares the column's dtype against
  numpy/pandas dtype names, except for ``object`` columns, where it checks the
  Python type of every non-null value. A numeric column that arrived as strings
  therefore fails with its string values as examples. No type name matches
  tz-aware datetimes, ``string[pyarrow]`` or ``category`` columns, so a
  ``type: datetime`` / ``type: str`` check fails on those dtypes (checks without
  a ``type`` -- e.g. not-null on the time column -- work on them).
* ``suite.add_expectation`` needs an active global data context (else
  ``DataContextRequiredError``); the suite is built with ``expectations=[...]``.
* ``ExpectColumnValuesToBeBetween`` on a column of strings raises inside GE
  (reported through ``exception_info``); it is reported as a dtype problem.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import threading
import warnings
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from retrainflow.config import ColumnExpectation, PipelineConfig
from retrainflow.jsonsafe import json_safe

if TYPE_CHECKING:
    import great_expectations as gx
    import pandas as pd

__all__ = [
    "TYPE_NAMES",
    "Failure",
    "ValidationReport",
    "build_suite",
    "validate_frame",
]

_INT = [
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "Int8Dtype", "Int16Dtype", "Int32Dtype", "Int64Dtype",
    "UInt8Dtype", "UInt16Dtype", "UInt32Dtype", "UInt64Dtype",
    "int",
]  # fmt: skip
_FLOAT = ["float16", "float32", "float64", "Float32Dtype", "Float64Dtype", "float"]

#: Config type name -> the dtype / type names GE's pandas backend compares against.
#: Non-object columns are matched by dtype (``np.dtype(name)`` or the pandas extension
#: dtype class ``name``); ``object`` columns value by value (``int``, ``float``, ``str``,
#: ``Timestamp`` are the Python types). GE 1.24 has no name that matches tz-aware
#: datetimes, ``string[pyarrow]`` or ``category`` (``"CategoricalDtype"`` is accepted by
#: GE but never equals a concrete categorical dtype).
TYPE_NAMES: dict[str, list[str]] = {
    "int": _INT,
    "float": _FLOAT,
    "str": ["str", "StringDtype"],
    "bool": ["bool", "BooleanDtype"],
    "datetime": [
        "datetime64[ns]", "datetime64[us]", "datetime64[ms]", "datetime64[s]", "Timestamp",
    ],
}  # fmt: skip
_NUMERIC = [*_INT, *_FLOAT]

#: Expectation types, as GE names them in results (and in :attr:`Failure.expectation`).
COLUMN_SET = "expect_table_columns_to_match_set"
ROW_COUNT = "expect_table_row_count_to_be_between"
NOT_NULL = "expect_column_values_to_not_be_null"
BETWEEN = "expect_column_values_to_be_between"
IN_SET = "expect_column_values_to_be_in_set"
TYPE_LIST = "expect_column_values_to_be_in_type_list"

_META_KEY = "retrainflow"
_MAX_EXAMPLES = 5
#: Partitions listed per failure (``observed["partitions"]``), and example values per partition.
_MAX_PARTITIONS = 20
_PARTITION_EXAMPLES = 3
_LOCK = threading.Lock()
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failure:
    """One failed expectation, worded for people.

    Attributes:
        expectation: GE expectation type, e.g. ``expect_column_values_to_be_between``.
        column: The column checked, or ``None`` for table-level expectations.
        message: Human-readable description naming the column and the problem.
        observed: JSON-safe details (counts, examples, observed dtype, ...).
    """

    expectation: str
    column: str | None
    message: str
    observed: Any = None


@dataclass(frozen=True)
class ValidationReport:
    """Outcome of validating one data set.

    Attributes:
        dataset: Name of the validated data set (e.g. ``"train_window"``).
        success: True when every expectation passed.
        rows: Number of rows validated.
        failures: One entry per problem; empty when ``success`` is true.
        statistics: GE's statistics (evaluated / successful / unsuccessful counts, ...).
        expectations: Every expectation of the suite with its outcome, in suite order:
            ``{"expectation", "column", "check", "expected", "success"}`` (``expected``
            words what was required, e.g. ``"within [0, 5000]"``).
    """

    dataset: str
    success: bool
    rows: int
    failures: list[Failure] = field(default_factory=list)
    statistics: dict[str, Any] = field(default_factory=dict)
    expectations: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable dict of the report.

        Returns:
            ``{"dataset", "success", "rows", "failures": [...], "statistics"}``.
        """
        return asdict(self)

    def summary(self) -> str:
        """One line per failure (or one line saying that everything passed).

        Returns:
            The text, without a trailing newline, e.g.
            ``"column 'carrier': 3 nulls in a column that must not be null"``.
        """
        if not self.failures:
            state = "all expectations passed" if self.success else "failed"
            return f"{self.dataset}: {self.rows} rows, {state}"
        return "\n".join(f.message for f in self.failures)

    def columns_failed(self) -> set[str]:
        """Columns with at least one failure (table-level failures excluded).

        Returns:
            The set of column names.
        """
        return {f.column for f in self.failures if f.column is not None}


# -- Great Expectations plumbing -----------------------------------------------------


def _import_gx() -> Any:
    """Import GE quietly: its logger at WARNING, no analytics, no import-time warnings."""
    logger = logging.getLogger("great_expectations")
    if logger.level == logging.NOTSET or logger.level < logging.WARNING:
        logger.setLevel(logging.WARNING)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import great_expectations as gx

    return gx


@functools.lru_cache(maxsize=1)
def _batch_definition() -> Any:
    """The whole-dataframe batch definition of one cached ephemeral context.

    Safe to share within a process: suites are not stored in the context, and each
    :func:`validate_frame` call passes its own frame as a batch parameter; calls are
    serialized by a lock anyway.
    """
    gx = _import_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    asset = context.data_sources.add_pandas("retrainflow").add_dataframe_asset("frame")
    return asset.add_batch_definition_whole_dataframe("whole_frame")


def build_suite(config: PipelineConfig) -> gx.ExpectationSuite:
    """Build the expectation suite of a pipeline from its config.

    Expectations, in order: the column set (exact unless
    ``expectations.allow_extra_columns``), the minimum row count, then per column of
    ``expectations.columns`` nulls / range / allowed values / type, the target (not
    null; ``{0, 1}`` or booleans for binary classification; numeric for regression),
    the time column (not null), and a numeric dtype for every ``features.numeric``
    column that has no explicit ``type`` in ``expectations.columns``.

    Args:
        config: The pipeline's config.

    Returns:
        An unsaved ``great_expectations.ExpectationSuite`` named after the pipeline.
        Each expectation's ``meta["retrainflow"]`` holds ``{"check": ..., ...}`` used to
        word failures.
    """
    gx = _import_gx()
    import great_expectations.expectations as gxe

    exp = config.expectations
    expectations: list[Any] = []
    added: set[tuple[str, str | None, str]] = set()

    def add(expectation: Any, check: str, **meta: Any) -> None:
        key = (expectation.expectation_type, getattr(expectation, "column", None), check)
        if key in added:
            return
        added.add(key)
        expectation.meta = {_META_KEY: {"check": check, **meta}}
        expectations.append(expectation)

    required = list(dict.fromkeys([*config.required_columns, *exp.columns]))
    add(
        gxe.ExpectTableColumnsToMatchSet(
            column_set=required, exact_match=not exp.allow_extra_columns
        ),
        "columns",
    )
    add(gxe.ExpectTableRowCountToBeBetween(min_value=exp.min_rows), "row_count")

    for column, spec in exp.columns.items():
        role = "target" if column == config.target else None
        _add_column_expectations(gxe, add, column, spec, role)

    add(gxe.ExpectColumnValuesToNotBeNull(column=config.target), "not_null", role="target")
    if config.task == "binary_classification":
        add(
            gxe.ExpectColumnValuesToBeInSet(column=config.target, value_set=[0, 1, False, True]),
            "binary_target",
            role="target",
        )
    elif exp.columns.get(config.target, ColumnExpectation()).type is None:
        add(
            gxe.ExpectColumnValuesToBeInTypeList(column=config.target, type_list=_NUMERIC),
            "numeric",
            expected="numeric (int or float)",
            role="target",
        )
    add(
        gxe.ExpectColumnValuesToNotBeNull(column=config.time_column),
        "not_null",
        role="time column",
    )
    for column in config.features.numeric:
        if exp.columns.get(column, ColumnExpectation()).type is None:
            add(
                gxe.ExpectColumnValuesToBeInTypeList(column=column, type_list=_NUMERIC),
                "numeric",
                expected="numeric (int or float)",
                role="numeric feature",
            )
    # Passed to the constructor: ``suite.add_expectation`` would need an active
    # (global) data context in GE 1.x, raising DataContextRequiredError without one.
    return gx.ExpectationSuite(name=f"{config.name}_suite", expectations=expectations)


def _add_column_expectations(
    gxe: Any, add: Any, column: str, spec: ColumnExpectation, role: str | None = None
) -> None:
    if not spec.nullable:
        add(gxe.ExpectColumnValuesToNotBeNull(column=column), "not_null", role=role)
    elif spec.max_null_fraction is not None:
        add(
            gxe.ExpectColumnValuesToNotBeNull(column=column, mostly=1 - spec.max_null_fraction),
            "null_fraction",
            max_null_fraction=spec.max_null_fraction,
        )
    if spec.min is not None or spec.max is not None:
        add(
            gxe.ExpectColumnValuesToBeBetween(
                column=column, min_value=spec.min, max_value=spec.max
            ),
            "range",
        )
    if spec.allowed is not None:
        add(gxe.ExpectColumnValuesToBeInSet(column=column, value_set=list(spec.allowed)), "allowed")
    if spec.type is not None:
        add(
            gxe.ExpectColumnValuesToBeInTypeList(column=column, type_list=TYPE_NAMES[spec.type]),
            "type",
            expected=spec.type,
        )


def validate_frame(
    config: PipelineConfig, frame: pd.DataFrame, *, dataset: str
) -> ValidationReport:
    """Validate a whole DataFrame against the pipeline's expectations.

    Runs :func:`build_suite`'s suite on ``frame`` as one batch of a cached ephemeral GE
    context, without progress bars or INFO logs.

    Args:
        config: The pipeline's config.
        frame: The data to check (not modified).
        dataset: A name for the data set, carried into the report.

    Returns:
        The :class:`ValidationReport`; ``success`` is False when any expectation failed.
        Every value in it is JSON-serializable.

    Raises:
        TypeError: ``frame`` is not a pandas DataFrame.
    """
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"validate_frame needs a pandas DataFrame; got {type(frame).__name__}")
    suite = build_suite(config)
    with _LOCK:
        batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
        # BASIC (counts + up to 20 examples) is all the wording needs; the default
        # SUMMARY also counts every unexpected value and was ~35% slower at 300k rows.
        result = batch.validate(suite, result_format="BASIC")
    failures = _failures(result, frame, config)
    if not result.success and not failures:  # defensive: never a silent "failed"
        failures = [Failure("unknown", None, "Great Expectations reported a failure", None)]
    stats = json_safe(dict(result.statistics))
    return ValidationReport(
        dataset=dataset,
        success=bool(result.success) and not failures,
        rows=len(frame),
        failures=failures,
        statistics=stats,
        expectations=[_outcome(r) for r in result.results],
    )


# -- wording GE results ---------------------------------------------------------------


def _failures(result: Any, frame: pd.DataFrame, config: PipelineConfig) -> list[Failure]:
    missing: set[str] = set()
    out: list[Failure] = []
    for r in result.results:
        if r.expectation_config.type == COLUMN_SET and not r.success:
            details = (r.result or {}).get("details", {}).get("mismatched", {})
            missing.update(details.get("missing") or [])
    for r in result.results:
        if r.success:
            continue
        cfg = r.expectation_config
        column = cfg.kwargs.get("column")
        if column is not None and column in missing:
            continue  # reported once, as a missing column
        if column is not None and column not in frame.columns:
            # Not expected to happen (the column set covers every checked column).
            out.append(Failure(cfg.type, column, f"missing column(s) {[column]}", [column]))
            continue
        out.extend(
            _with_partitions(f, cfg.kwargs, frame, config)
            for f in _word(
                cfg.type, column, cfg.kwargs, (cfg.meta or {}).get(_META_KEY, {}), r, frame
            )
        )
    return out


def _outcome(r: Any) -> dict[str, Any]:
    """One expectation's result for the report's ``expectations`` list."""
    cfg = r.expectation_config
    meta = (cfg.meta or {}).get(_META_KEY, {})
    return {
        "expectation": cfg.type,
        "column": cfg.kwargs.get("column"),
        "check": meta.get("check"),
        "expected": _expected(cfg.type, cfg.kwargs, meta),
        "success": bool(r.success),
    }


def _expected(kind: str, kwargs: dict, meta: dict) -> str:
    """What an expectation requires, in words."""
    if kind == COLUMN_SET:
        columns = sorted(str(c) for c in kwargs.get("column_set") or [])
        return f"columns {columns}" + (" and no others" if kwargs.get("exact_match", True) else "")
    if kind == ROW_COUNT:
        return f"at least {kwargs.get('min_value')} rows"
    if kind == NOT_NULL:
        if meta.get("check") == "null_fraction":
            return f"at most {float(meta['max_null_fraction']) * 100:g}% nulls"
        return "no nulls"
    if kind == BETWEEN:
        return f"within {_bounds(kwargs.get('min_value'), kwargs.get('max_value'))}"
    if kind == IN_SET:
        if meta.get("check") == "binary_target":
            return "0/1 (or booleans)"
        allowed = json_safe(list(kwargs.get("value_set") or []))
        more = f" and {len(allowed) - 20} more" if len(allowed) > 20 else ""
        return f"in {allowed[:20]}{more}"
    if kind == TYPE_LIST:
        return f"type {meta.get('expected') or kwargs.get('type_list')}"
    return kind


def _with_partitions(
    failure: Failure, kwargs: dict, frame: pd.DataFrame, config: PipelineConfig
) -> Failure:
    """``failure`` with the partitions of its offending rows in ``observed["partitions"]``:
    ``[{"partition": "date=YYYY-MM-DD", "rows": n, "examples": [...]}]`` (day order; a row
    without a time has ``"partition": None``), at most ``_MAX_PARTITIONS`` of them
    (``observed["partitions_total"]`` counts all). Only failures about row values
    (those with an ``unexpected_count``) get them; the rest are returned unchanged."""
    obs = failure.observed
    if not (isinstance(obs, dict) and obs.get("unexpected_count") and failure.column):
        return failure
    try:
        mask = _offending(failure.expectation, frame[failure.column], kwargs)
        if mask is None or not mask.any():
            return failure
        parts = _partitions(frame, mask, failure, config)
    except Exception:  # noqa: BLE001 - the partitions add to a report; they never break it
        log.debug("no partitions for %s", failure.message, exc_info=True)
        return failure
    if parts is None:
        return failure
    extra: dict[str, Any] = {"partitions": parts[:_MAX_PARTITIONS]}
    if len(parts) > _MAX_PARTITIONS:
        extra["partitions_total"] = len(parts)
    return Failure(failure.expectation, failure.column, failure.message, {**obs, **extra})


def _offending(kind: str, values: pd.Series, kwargs: dict) -> pd.Series | None:
    """The rows of ``values`` that broke the expectation, as GE counts them (None: unknown)."""
    import pandas as pd

    if kind == NOT_NULL:
        return values.isna()
    if kind == BETWEEN:
        numbers = pd.to_numeric(values, errors="coerce")
        mask = pd.Series(False, index=values.index)
        if kwargs.get("min_value") is not None:
            mask |= numbers < kwargs["min_value"]
        if kwargs.get("max_value") is not None:
            mask |= numbers > kwargs["max_value"]
        return mask
    if kind == IN_SET:
        return values.notna() & ~values.isin(list(kwargs.get("value_set") or []))
    if kind == TYPE_LIST and values.dtype == object:
        names = set(kwargs.get("type_list") or [])
        return values.notna() & ~values.map(lambda v: type(v).__name__ in names).astype(bool)
    return None


def _partitions(
    frame: pd.DataFrame, mask: pd.Series, failure: Failure, config: PipelineConfig
) -> list[dict[str, Any]] | None:
    """The day partitions of the rows in ``mask`` (None without a usable time column)."""
    import pandas as pd

    if config.time_column not in frame.columns:
        return None
    times = pd.to_datetime(frame.loc[mask, config.time_column], errors="coerce")
    if isinstance(times.dtype, pd.DatetimeTZDtype):  # days of the pipeline's zone
        times = times.dt.tz_convert(config.time_zone or "UTC").dt.tz_localize(None)
    bad = pd.DataFrame(
        {"day": times.dt.strftime("%Y-%m-%d"), "value": frame.loc[mask, failure.column]}
    )
    out = []
    for day, group in bad.groupby("day", sort=True, dropna=False):
        examples = (
            []
            if failure.expectation == NOT_NULL
            else _examples({"partial_unexpected_list": group["value"].head(50).tolist()})
        )
        out.append(
            {
                "partition": f"date={day}" if isinstance(day, str) else None,
                "rows": len(group),
                "examples": examples[:_PARTITION_EXAMPLES],
            }
        )
    return out


def _word(
    kind: str, column: str | None, kwargs: dict, meta: dict, r: Any, frame: pd.DataFrame
) -> list[Failure]:
    res: dict = r.result or {}
    error = _exception_message(r.exception_info)
    if error is not None:
        return [_word_exception(kind, column, kwargs, error, frame)]
    who = _who(column, meta)

    if kind == COLUMN_SET:
        details = res.get("details", {}).get("mismatched", {})
        found: list[Failure] = []
        if details.get("missing"):
            miss = sorted(details["missing"])
            found.append(Failure(kind, None, f"missing column(s) {miss}", {"missing": miss}))
        # GE drops exact_match from kwargs when it has its default (True).
        if kwargs.get("exact_match", True) and details.get("unexpected"):
            extra = sorted(details["unexpected"])
            found.append(
                Failure(kind, None, f"unexpected column(s) {extra}", {"unexpected": extra})
            )
        return found or [Failure(kind, None, "the column set does not match", json_safe(res))]

    if kind == ROW_COUNT:
        got = json_safe(res.get("observed_value"))
        return [
            Failure(
                kind, None,
                f"{got} rows; at least {kwargs.get('min_value')} required (expectations.min_rows)",
                {"rows": got, "min_rows": kwargs.get("min_value")},
            )
        ]  # fmt: skip

    count = int(res.get("unexpected_count") or 0)
    total = int(res.get("element_count") or len(frame))
    examples = _examples(res)
    observed = {
        "unexpected_count": count,
        "element_count": total,
        "unexpected_percent": _pct_value(count, total),
        "examples": examples,
    }

    if kind == NOT_NULL:
        if meta.get("check") == "null_fraction":
            limit = float(meta["max_null_fraction"])
            msg = (
                f"{who}: {count} nulls ({_pct(count, total)}), "
                f"more than the allowed {limit * 100:g}%"
            )
        else:
            msg = (
                f"{who}: {count} null{'s' if count != 1 else ''} in a column that must not be null"
            )
            if meta.get("role") == "target":  # label delay: the label has not arrived yet
                msg += (
                    " (rows whose label has not arrived yet can be left out of training and "
                    "evaluation with expectations.unlabelled: exclude)"
                )
        return [Failure(kind, column, msg, observed)]

    if kind == BETWEEN:
        lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
        bounds = _bounds(lo, hi)
        msg = f"{who}: {_values(count)} ({_pct(count, total)}) outside {bounds}, e.g. {examples}"
        return [Failure(kind, column, msg, {**observed, "min": lo, "max": hi})]

    if kind == IN_SET:
        allowed = json_safe(kwargs.get("value_set"))
        if meta.get("check") == "binary_target":
            what, allowed = "not 0/1 (or booleans)", [0, 1]
        else:
            what = f"not in the allowed set {allowed}"
        msg = f"{who}: {_values(count)} ({_pct(count, total)}) {what}, e.g. {examples}"
        return [Failure(kind, column, msg, {**observed, "allowed": allowed})]

    if kind == TYPE_LIST:
        dtype = str(frame[column].dtype) if column in frame.columns else None
        expected = meta.get("expected", "one of " + str(kwargs.get("type_list")))
        msg = f"{who} has dtype {dtype}, expected {expected}"
        obs: dict[str, Any] = {"dtype": dtype, "expected": expected}
        if "unexpected_count" in res:  # object column: GE checked each value's type
            msg += f"; {_values(count)} ({_pct(count, total)}) not {expected}, e.g. {examples}"
            obs.update(observed)
        return [Failure(kind, column, msg, obs)]

    return [Failure(kind, column, f"{who}: expectation {kind} failed", json_safe(res))]


def _exception_message(info: Any) -> str | None:
    """The error message in a result's ``exception_info``, or None if nothing raised.

    GE 1.24 stores it flat (``{"raised_exception": True, "exception_message": ...}``) when
    the expectation itself raised, but keyed by metric id
    (``{"MetricConfigurationID(...)": {...}}``) when a metric it needs raised.
    """
    if not isinstance(info, dict):
        return None
    if "raised_exception" in info:
        if info.get("raised_exception"):
            return str(info.get("exception_message") or "unknown error").strip()
        return None
    for value in info.values():
        message = _exception_message(value)
        if message is not None:
            return message
    return None


def _word_exception(
    kind: str, column: str | None, kwargs: dict, text: str, frame: pd.DataFrame
) -> Failure:
    dtype = str(frame[column].dtype) if column is not None and column in frame.columns else None
    observed = {"error": text, "dtype": dtype}
    if kind == BETWEEN and column is not None:
        lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
        bounds = _bounds(lo, hi)
        msg = f"column '{column}' has dtype {dtype}; its values cannot be compared with {bounds}"
    elif column is not None:
        msg = f"column '{column}' (dtype {dtype}) could not be checked by {kind}: {text}"
    else:
        msg = f"{kind} could not be evaluated: {text}"
    return Failure(kind, column, msg, observed)


def _who(column: str | None, meta: dict) -> str:
    role = meta.get("role")
    return f"{role} '{column}'" if role in {"target", "time column"} else f"column '{column}'"


class _NonFinite(str):
    """``inf``, ``-inf`` or ``nan`` as an example value: shown bare in messages, a string
    in JSON (which has no such numbers)."""

    def __repr__(self) -> str:
        return str(self)


def _examples(res: dict) -> list[Any]:
    seen: list[Any] = []
    for value in res.get("partial_unexpected_list") or []:
        number = value if isinstance(value, float) else None
        if number is not None and not math.isfinite(number):
            v: Any = _NonFinite(str(number))  # 'inf', not None: the value that was refused
        else:
            v = json_safe(value)
        if v not in seen:
            seen.append(v)
        if len(seen) >= _MAX_EXAMPLES:
            break
    return seen


def _values(count: int) -> str:
    return f"{count} value{'s' if count != 1 else ''}"


def _pct_value(count: int, total: int) -> float:
    return round(100.0 * count / total, 4) if total else 0.0


def _pct(count: int, total: int) -> str:
    if not total:
        return "0%"
    p = 100.0 * count / total
    if 0 < p < 0.1:
        return "<0.1%"
    return f"{p:.1f}%"


def _bounds(lo: Any, hi: Any) -> str:
    def num(x: Any) -> str:
        return f"{x:g}" if isinstance(x, float) else str(x)

    return f"[{'-inf' if lo is None else num(lo)}, {'inf' if hi is None else num(hi)}]"
