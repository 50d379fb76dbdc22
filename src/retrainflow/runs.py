"""What a retrain run was asked to do: the typed DAG-run conf.

Whoever triggers ``retrain__<pipeline>`` — the Airflow UI's trigger form, the
monitoring DAG over REST, the CLI — passes a conf that is validated here,
before any work, against :class:`RetrainRequest`. Unknown keys, a bad mode or a
malformed date end the run at once with a message that names the field.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from retrainflow.core.modes import Mode
from retrainflow.exceptions import InvalidRequestError
from retrainflow.manifest import RunContext


class RetrainRequest(BaseModel):
    """The conf of a ``retrain__<pipeline>`` run (all fields optional)."""

    model_config = ConfigDict(extra="forbid")

    #: ``auto`` lets the pipeline decide (warm start when it can).
    mode: Mode | None = None
    #: Why the run was started: ``manual``, ``schedule``, ``drift``, ``performance``...
    reason: str = Field(default="manual", max_length=200)
    #: Exclusive end of the data window (``YYYY-MM-DD``); default: see :func:`build_context`.
    window_end: date | None = None
    #: Machine-readable reason codes from the trigger policy.
    reason_codes: list[str] = Field(default_factory=list)
    #: Anything the trigger wants recorded with the run (drift summary, report URI...).
    details: dict[str, Any] = Field(default_factory=dict)

    @field_validator("window_end", mode="before")
    @classmethod
    def _empty_is_none(cls, v: Any) -> Any:
        return None if v in ("", "null") else v


def parse_request(conf: dict[str, Any] | None, *, pipeline: str) -> RetrainRequest:
    """Validate a DAG-run conf.

    Raises:
        InvalidRequestError: naming the offending field.
    """
    try:
        return RetrainRequest.model_validate(
            {k: v for k, v in (conf or {}).items() if v is not None}
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "conf"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        raise InvalidRequestError(
            f"Invalid conf for retrain__{pipeline}: field '{field}': {msg} "
            f"(got {err.get('input')!r}). Allowed keys: {sorted(RetrainRequest.model_fields)}.",
            field=field,
        ) from None


#: Run types whose logical date is their window end when the conf names none: the runs of
#: the DAG's schedule (and backfills of it).
SCHEDULED_RUN_TYPES = frozenset({"scheduled", "backfill"})

#: How a run's window end was chosen (``RunContext.window_end_from``).
FROM_REQUEST, FROM_LOGICAL_DATE, FROM_NEWEST_DATA = "request", "logical_date", "newest_data"


def _run_type(value: Any) -> str | None:
    """``DagRunType.MANUAL`` (either Airflow enum) / ``"manual"`` -> ``"manual"``."""
    if value is None:
        return None
    return str(getattr(value, "value", value)).lower()


def build_context(
    pipeline: str,
    default_mode: str,
    conf: dict[str, Any] | None,
    *,
    run_id: str,
    fallback_end: date | datetime | None,
    run_type: Any = None,
    newest_end: Callable[[], date] | None = None,
) -> RunContext:
    """The :class:`RunContext` of a run from its conf and dates.

    The one place a retrain's window end is resolved — whoever started the run (the
    UI's trigger form, the REST API, the CLI, the monitor):

    1. ``window_end`` of the conf, when given;
    2. else, for a run of the schedule (``run_type`` scheduled or backfill): its logical
       date, ``fallback_end``;
    3. else (a manual run: the form left empty, ``retrainflow retrain`` without ``--date``):
       up to the newest data in the source, ``newest_end()`` — the day after its newest
       day, as the end is exclusive;
    4. else ``fallback_end`` (no ``newest_end`` given).

    The context records which it was (``window_end_from``).

    Args:
        run_type: The DAG run's type (``DagRunType`` or its value); None counts as manual.
        newest_end: The exclusive end of the newest data in the pipeline's source
            (:func:`retrainflow.stages.pull.newest_window_end`); called only when needed.

    Raises:
        InvalidRequestError: a bad conf, or no window end at all.
        EmptyWindowError: from ``newest_end``: the source holds no data.
    """
    req = parse_request(conf, pipeline=pipeline)
    end, how = req.window_end, FROM_REQUEST
    if end is None:
        scheduled = _run_type(run_type) in SCHEDULED_RUN_TYPES
        if newest_end is not None and not scheduled:
            end, how = newest_end(), FROM_NEWEST_DATA
        elif fallback_end is None:
            raise InvalidRequestError(
                f"retrain__{pipeline} has no window end: pass window_end (YYYY-MM-DD) in the conf."
            )
        else:
            end = fallback_end.date() if isinstance(fallback_end, datetime) else fallback_end
            how = FROM_LOGICAL_DATE
    return RunContext(
        pipeline=pipeline,
        run_id=run_id,
        window_end=end.isoformat(),
        requested_mode=str(req.mode or default_mode),
        trigger_reason=req.reason,
        dag_run_id=run_id,
        trigger_details={"reason_codes": req.reason_codes, **req.details},
        window_end_from=how,
    )
