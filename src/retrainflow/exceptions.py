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


class EnvironmentSettingError(ConfigError):
    """An environment variable that configures the deployment (``RETRAINFLOW_LAKE_URI``,
    ``RETRAINFLOW_DASK_ADDRESS``…) is unset where needed or invalid. Names the variable."""

    code = "invalid_environment"


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


class DataContractError(DataError):
    """The rows of a window break the data contract (:mod:`retrainflow.data.contract`).

    Raised by the pull stage before anything is trained; the message names the
    partition (day and file) and the problem, and ``details`` carry them
    (``partition``, ``file``, ``columns``...). Subclasses say which rule.
    """

    code = "data_contract"


class InvalidPartitionError(DataContractError):
    """A ``date=...`` partition's name is not a valid date (e.g. ``date=2013-02-30``)."""

    code = "invalid_partition"


class DuplicateRowsError(DataContractError):
    """Rows of a window are exact copies of other rows (e.g. a day written twice)."""

    code = "duplicate_rows"


class TimestampOutsidePartitionError(DataContractError):
    """Rows whose timestamp lies outside their partition's day or the window."""

    code = "timestamp_outside_partition"


class TimeZoneError(DataContractError):
    """Time-zone-aware timestamps where the pipeline is naive, or the reverse."""

    code = "time_zone_mismatch"


class PartitionSchemaError(DataContractError):
    """Partitions of one window differ in the columns the pipeline reads (a schema change)."""

    code = "partition_schema_change"


class SingleClassError(DataContractError):
    """The training labels of a binary task are all one class."""

    code = "single_class"


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


class RunInProgressError(UserError):
    """Another live ``retrainflow`` process is running the same pipeline DAG in this home."""

    code = "run_in_progress"


class RunTimeoutError(RetrainflowError):
    """A DAG run started through the stack did not finish in time; it goes on in the stack."""

    code = "run_timeout"


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


class IngestError(UserError):
    """``retrainflow ingest`` cannot take an input: the file's type, a missing time column, a
    source that cannot be written (a SQL table), a file or query that cannot be read."""

    code = "ingest_refused"


class PartitionExistsError(IngestError):
    """The input holds days the source already has, and ``--replace`` was not given.
    ``days`` lists them (ISO dates)."""

    code = "partition_exists"

    def __init__(self, message: str, *, days: list[str], **details: Any) -> None:
        super().__init__(message, days=days, **details)
        self.days = days


class TimeColumnError(DataError):
    """A value of the time column is missing or is not a time. Names the input, the row
    (``row``, 1-based) and the value."""

    code = "bad_time"


class ProfileError(UserError):
    """A data file cannot be profiled into a pipeline config (``retrainflow init``).

    ``file`` is the data file; ``column`` the column at fault, if one is.
    """

    code = "profile_failed"

    def __init__(
        self, message: str, *, file: Path | str | None = None, column: str | None = None
    ) -> None:
        super().__init__(message, file=file, column=column)
        self.file = file
        self.column = column


class TaskMismatchError(ProfileError):
    """The target's values do not fit the requested (or inferred) task. ``task`` names it."""

    code = "task_mismatch"

    def __init__(
        self,
        message: str,
        *,
        task: str,
        file: Path | str | None = None,
        column: str | None = None,
    ) -> None:
        super().__init__(message, file=file, column=column)
        self.details["task"] = task
        self.task = task


class ConfigExistsError(UserError):
    """``retrainflow init`` would overwrite an existing pipeline config (without ``--force``)."""

    code = "config_exists"

    def __init__(self, message: str, *, file: Path | str) -> None:
        super().__init__(message, file=file)
        self.file = file


class InvalidPipelineNameError(UserError):
    """A pipeline name that is not a name (a path, or not ``[a-z][a-z0-9_]*``)."""

    code = "invalid_pipeline_name"

    def __init__(self, message: str, *, name: str) -> None:
        super().__init__(message, name=name)
        self.name = name


class DaskEngineError(RetrainflowError):
    """``training.engine: dask`` could not fit: the scheduler did not answer in time, it has no
    workers, or its workers could not read the training rows. The message names the address
    (``RETRAINFLOW_DASK_ADDRESS``). Retryable: nothing is wrong with the pipeline's input."""

    code = "dask_unavailable"
