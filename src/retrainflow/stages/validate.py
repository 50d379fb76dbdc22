"""Stage 2 — validate: Great Expectations on the pulled windows.

Both the training rows and the held-out rows are checked with the suite built
from the config (:mod:`retrainflow.validation`). Any failure stops the run
with :class:`~retrainflow.exceptions.ValidationFailedError` (not retryable) and
a saved report; nothing is trained, nothing is registered, the champion keeps
serving. A schema change against the champion (found by ``pull``) is reported
here too.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from retrainflow.artifacts import ArtifactStore, read_parquet
from retrainflow.exceptions import ValidationFailedError
from retrainflow.manifest import PullManifest, ValidateManifest

if TYPE_CHECKING:
    from retrainflow.config import PipelineConfig

log = logging.getLogger(__name__)
STAGE = "validate"


def run(
    config: PipelineConfig, pulled: PullManifest, *, store: ArtifactStore | None = None
) -> ValidateManifest:
    """Validate the training and holdout data of a run.

    Raises:
        ValidationFailedError: naming each failing column and expectation; the
            report path is in its ``report_uri``.
    """

    from retrainflow.validation import validate_frame

    store = store or ArtifactStore(config.artifact_root_uri())
    out = store.stage(config.name, pulled.context.run_id, STAGE)
    reports = []
    for name, ref in (("train", pulled.train), ("holdout", pulled.holdout)):
        reports.append(validate_frame(config, read_parquet(ref.uri), dataset=name))
    warnings = list(pulled.contract.get("warnings", []))  # the data contract's, from pull
    if pulled.schema_change:
        warnings.append(
            f"schema changed vs champion {pulled.parent_version}: {pulled.schema_change}; "
            f"mode {pulled.mode} ({pulled.mode_reason})"
        )
    success = all(r.success for r in reports)
    failures = [
        f"{r.dataset}: {line}"
        for r in reports
        for line in r.summary().splitlines()
        if not r.success
    ]
    error = None
    if not success:
        error = ValidationFailedError(
            f"Data validation of '{config.name}' failed; training was not started and the champion "
            "is unchanged:\n  " + "\n  ".join(failures)
        )
    path = out.write_json(
        "report.json",
        {
            "success": success,
            "pipeline": config.name,
            "run_id": pulled.context.run_id,
            "error": None if error is None else error.to_dict(),
            "datasets": [r.to_dict() for r in reports],
            "schema_change": pulled.schema_change,
            "warnings": warnings,
        },
    )
    if error is not None:
        raise ValidationFailedError(error.message, report_uri=str(path))
    manifest = ValidateManifest(success=True, report_uri=str(path), failures=0, warnings=warnings)
    out.write_json("manifest.json", manifest.to_dict())
    log.info("validate %s: %d datasets passed", config.name, len(reports))
    return manifest
