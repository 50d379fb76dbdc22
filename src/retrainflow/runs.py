"""What a retrain run was asked to do: the typed DAG-run conf.

Whoever triggers ``retrain__<pipeline>`` — the Airflow UI's trigger form, the
monitoring DAG over REST, the CLI — passes a conf that is validated here,
before any work, against :class:`RetrainRequest`. Unknown keys, a bad mode or a
malformed date end the run at once with a message that names the field.
"""

from __future__ import annotations

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
    #: Exclusive end of the data window (``YYYY-MM-DD``); default: the run's logical date.
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


def build_context(
    pipeline: str,
    default_mode: str,
    conf: dict[str, Any] | None,
    *,
    run_id: str,
    fallback_end: date | datetime | None,
) -> RunContext:
    """The :class:`RunContext` of a run from its conf and dates."""
    req = parse_request(conf, pipeline=pipeline)
    end = req.window_end
    if end is None:
        if fallback_end is None:
            raise InvalidRequestError(
                f"retrain__{pipeline} has no window end: pass window_end (YYYY-MM-DD) in the conf."
            )
        end = fallback_end.date() if isinstance(fallback_end, datetime) else fallback_end
    return RunContext(
        pipeline=pipeline,
        run_id=run_id,
        window_end=end.isoformat(),
        requested_mode=str(req.mode or default_mode),
        trigger_reason=req.reason,
        dag_run_id=run_id,
        trigger_details={"reason_codes": req.reason_codes, **req.details},
    )
