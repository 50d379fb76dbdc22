"""The typed DAG-run conf of ``retrain__<pipeline>``: parse_request and build_context."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from retrainflow.exceptions import UserError
from retrainflow.manifest import RunContext
from retrainflow.runs import InvalidRequestError, RetrainRequest, build_context, parse_request


@pytest.mark.parametrize("conf", [None, {}], ids=["none", "empty"])
def test_empty_conf_gives_defaults(conf: dict | None) -> None:
    req = parse_request(conf, pipeline="synthetic")
    assert isinstance(req, RetrainRequest)
    assert req.mode is None
    assert req.reason == "manual"
    assert req.window_end is None
    assert req.reason_codes == []
    assert req.details == {}


def test_full_conf() -> None:
    req = parse_request(
        {
            "mode": "warm_start",
            "reason": "drift",
            "window_end": "2023-02-15",
            "reason_codes": ["psi:x1"],
            "details": {"report": "s3://r.json"},
        },
        pipeline="synthetic",
    )
    assert req.mode == "warm_start"
    assert req.reason == "drift"
    assert req.window_end == date(2023, 2, 15)
    assert req.reason_codes == ["psi:x1"]
    assert req.details == {"report": "s3://r.json"}


def test_none_values_are_dropped() -> None:
    """The Airflow trigger form sends every param, unset ones as null."""
    req = parse_request({"mode": None, "window_end": None, "reason": None}, pipeline="p")
    assert req.mode is None and req.window_end is None and req.reason == "manual"


def test_unknown_key_is_named() -> None:
    with pytest.raises(InvalidRequestError, match=r"field 'windowend': unknown key") as info:
        parse_request({"windowend": "2023-02-15"}, pipeline="synthetic")
    err = info.value
    assert isinstance(err, UserError)
    assert err.code == "invalid_request"
    assert err.details["field"] == "windowend"
    assert "retrain__synthetic" in err.message
    assert (
        "Allowed keys: ['details', 'mode', 'reason', 'reason_codes', 'window_end']" in err.message
    )


def test_bad_mode() -> None:
    with pytest.raises(InvalidRequestError, match=r"field 'mode'.*'fast'") as info:
        parse_request({"mode": "fast"}, pipeline="synthetic")
    assert info.value.details["field"] == "mode"
    assert "stateless" in info.value.message


@pytest.mark.parametrize("value", ["2023-13-01", "yesterday", "15/02/2023"])
def test_bad_date(value: str) -> None:
    with pytest.raises(InvalidRequestError, match=r"field 'window_end'") as info:
        parse_request({"window_end": value}, pipeline="synthetic")
    assert info.value.details["field"] == "window_end"
    assert repr(value) in info.value.message


@pytest.mark.parametrize("value", ["", "null"])
def test_empty_window_end_is_none(value: str) -> None:
    assert parse_request({"window_end": value}, pipeline="p").window_end is None


def test_reason_too_long() -> None:
    with pytest.raises(InvalidRequestError, match=r"field 'reason'"):
        parse_request({"reason": "x" * 201}, pipeline="p")


def test_build_context_from_conf() -> None:
    ctx = build_context(
        "synthetic",
        "auto",
        {
            "window_end": "2023-02-15",
            "mode": "stateless",
            "reason": "drift",
            "reason_codes": ["a"],
            "details": {"k": 1},
        },
        run_id="manual__1",
        fallback_end=date(2023, 1, 1),
    )
    assert isinstance(ctx, RunContext)
    assert ctx.pipeline == "synthetic"
    assert ctx.run_id == ctx.dag_run_id == "manual__1"
    assert ctx.window_end == "2023-02-15"  # conf wins over the logical date
    assert ctx.requested_mode == "stateless"
    assert ctx.trigger_reason == "drift"
    assert ctx.trigger_details == {"reason_codes": ["a"], "k": 1}


@pytest.mark.parametrize(
    "fallback",
    [datetime(2023, 2, 22, 13, 30, tzinfo=UTC), date(2023, 2, 22)],
    ids=["logical_datetime", "date"],
)
def test_build_context_falls_back_to_logical_date(fallback: date) -> None:
    ctx = build_context(
        "synthetic", "warm_start", {"window_end": ""}, run_id="scheduled__x", fallback_end=fallback
    )
    assert ctx.window_end == "2023-02-22"
    assert ctx.requested_mode == "warm_start"  # the pipeline's default mode
    assert ctx.trigger_reason == "manual"


def test_build_context_without_any_date_fails_clearly() -> None:
    with pytest.raises(
        InvalidRequestError, match=r"retrain__synthetic has no window end: pass window_end"
    ):
        build_context("synthetic", "auto", None, run_id="r", fallback_end=None)


def test_build_context_rejects_bad_conf_before_dates() -> None:
    with pytest.raises(InvalidRequestError, match=r"field 'bogus'"):
        build_context("synthetic", "auto", {"bogus": 1}, run_id="r", fallback_end=date(2023, 1, 1))


def test_context_round_trips_through_dict() -> None:
    ctx = build_context(
        "synthetic", "auto", {"details": {"psi": 0.3}}, run_id="r", fallback_end=date(2023, 3, 1)
    )
    assert RunContext.from_dict(ctx.to_dict()) == ctx
