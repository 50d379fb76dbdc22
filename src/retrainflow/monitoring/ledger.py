"""The history of monitoring checks of one pipeline (what the trigger policy remembers).

One JSON line per check in ``<artifact_root>/<pipeline>/monitoring/checks.jsonl``:
the :class:`~retrainflow.policy.CheckResult`, the decision, and the retrain run
it triggered, if any. M-of-N drift confirmation, cooldown and the weekly cap are
computed from it. Entries are keyed by the monitoring run id, so a retried
check replaces its own line instead of counting twice. Every MLflow run of the
``<pipeline>-monitoring`` experiment carries the same data for people; this
file is the compact, append-only copy the policy reads.

The artifact root may be local or ``s3://`` (:mod:`retrainflow.artifacts`): the file
is read whole and replaced whole, atomically (a local temporary file and
``os.replace``; one object put on S3).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrainflow import artifacts
from retrainflow.jsonsafe import json_safe
from retrainflow.policy import CheckResult


@dataclass(frozen=True)
class LedgerEntry:
    """One monitoring check as remembered."""

    run_id: str
    check: CheckResult
    decision: dict[str, Any]
    #: Run id of the retrain this check started, if any.
    triggered_run_id: str | None
    #: ISO datetime of the trigger (None when nothing was triggered).
    triggered_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "check": self.check.to_dict(),
            "decision": self.decision,
            "triggered_run_id": self.triggered_run_id,
            "triggered_at": self.triggered_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LedgerEntry:
        return cls(
            run_id=data["run_id"],
            check=CheckResult.from_dict(data["check"]),
            decision=data.get("decision", {}),
            triggered_run_id=data.get("triggered_run_id"),
            triggered_at=data.get("triggered_at"),
        )


class CheckLedger:
    """Append-only (per run id) JSON-lines file of a pipeline's checks."""

    def __init__(self, artifact_root: str | Path, pipeline: str) -> None:
        root = artifacts.ArtifactStore(artifact_root)
        #: ``<artifact_root>/<pipeline>/monitoring/checks.jsonl`` (a Path, or a URI).
        self.path = root.location(pipeline, "monitoring", "checks.jsonl")

    def entries(self) -> list[LedgerEntry]:
        """All checks, oldest first (in the order they were recorded)."""
        try:
            text = artifacts.read_text(self.path)
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            if line.strip():
                out.append(LedgerEntry.from_dict(json.loads(line)))
        return out

    def record(self, entry: LedgerEntry) -> None:
        """Add ``entry``, replacing an earlier entry of the same run id (retries)."""
        kept = [e for e in self.entries() if e.run_id != entry.run_id]
        kept.append(entry)
        lines = [json.dumps(json_safe(e.to_dict()), allow_nan=False) + "\n" for e in kept]
        artifacts.write_bytes(self.path, "".join(lines).encode("utf-8"))
