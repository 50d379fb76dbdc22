"""One hierarchy of errors for the whole library.

Callers branch on the type (or the ``code`` attribute), never on message text.
``UserError`` subclasses are problems with input the user controls (config,
data, CLI arguments): they are reported without a traceback and are never
retried. Everything else is an internal error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class RetrainflowError(Exception):
    """Base class of every error raised by retrainflow."""

    code: str = "internal_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly description, used in saved reports and CLI ``--json`` output."""
        return {
            "code": self.code,
            "message": self.message,
            **{k: str(v) for k, v in self.details.items()},
        }


class UserError(RetrainflowError):
    """A problem with input the user controls. Not retryable."""

    code = "user_error"


class ConfigError(UserError):
    """A pipeline config is invalid. Names the file and the field."""

    code = "invalid_config"

    def __init__(
        self, message: str, *, file: Path | str | None = None, field: str | None = None
    ) -> None:
        prefix = ""
        if field:
            prefix = f"The field '{field}'"
            prefix += f" in {file}" if file else ""
            prefix += ": "
        elif file:
            prefix = f"{file}: "
        super().__init__(prefix + message, file=file, field=field)
        self.file = file
        self.field = field


class PipelineNotFoundError(UserError):
    """No config file defines the requested pipeline."""

    code = "pipeline_not_found"


class DataError(UserError):
    """The data window cannot be used. Carries the path of the saved report, if any."""

    code = "bad_data"

    def __init__(self, message: str, *, report_uri: str | None = None, **details: Any) -> None:
        if report_uri:
            message = f"{message} (report: {report_uri})"
        super().__init__(message, report_uri=report_uri, **details)
        self.report_uri = report_uri


class EmptyWindowError(DataError):
    """The requested window holds no rows."""

    code = "empty_window"


class CorruptDataError(DataError):
    """A data file could not be read."""

    code = "corrupt_data"


class ValidationFailedError(DataError):
    """Great Expectations found critical failures in the window."""

    code = "validation_failed"


class ModeError(UserError):
    """A training mode cannot be honoured (e.g. warm start without a champion)."""

    code = "invalid_mode"


class InvalidRequestError(UserError):
    """The conf given to a retrain run is invalid (:mod:`retrainflow.runs`)."""

    code = "invalid_request"


class UnknownDatasetError(UserError):
    """No demo data set is registered for the pipeline (:mod:`retrainflow.data.seed`)."""

    code = "unknown_dataset"


class FetchError(UserError):
    """The flights3m file could not be downloaded, found or verified."""

    code = "fetch_failed"


class DatasetNotFetchedError(UserError):
    """The flights3m file is not on this machine (or is not the pinned one)."""

    code = "dataset_not_fetched"


class RegistryError(RetrainflowError):
    """The model registry is in a state that forbids the operation."""

    code = "registry_error"


class StackError(RetrainflowError):
    """The local stack could not be started or stopped. The message names the log file."""

    code = "stack_error"


class AirflowApiError(RetrainflowError):
    """Airflow's REST API answered with an error. ``status`` is the HTTP status."""

    code = "airflow_api_error"

    def __init__(self, message: str, *, status: int | None = None, **details: Any) -> None:
        super().__init__(message, status=status, **details)
        self.status = status


class RegistryUnavailableError(RetrainflowError):
    """The MLflow registry could not answer (outage, timeout, server error). Retryable.

    Not a :class:`RegistryError`: nothing is wrong with the registry's content,
    so the task that met it should be retried rather than read an answer such
    as "no champion" into it. ``mlflow_code`` is MLflow's error code (e.g.
    ``INTERNAL_ERROR``, ``TEMPORARILY_UNAVAILABLE``).
    """

    code = "registry_unavailable"

    def __init__(self, message: str, *, mlflow_code: str | None = None, **details: Any) -> None:
        super().__init__(message, mlflow_code=mlflow_code, **details)
        self.mlflow_code = mlflow_code
