"""The check ledger on a local disk and on S3 (moto's server): the same file, replaced whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrainflow.monitoring.ledger import CheckLedger, LedgerEntry
from retrainflow.policy import CheckResult
from tests.data.test_sources import aws_env, s3_endpoint  # noqa: F401 (fixtures)
from tests.test_artifacts import bucket  # noqa: F401 (fixture: a fresh bucket on moto)
from tests.test_artifacts import s3_client as _client


@pytest.fixture(params=["local", "s3"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "artifacts")
    return f"s3://{request.getfixturevalue('bucket')}/art"


def entry(run_id: str, *, drift: float = 0.1, triggered: str | None = None) -> LedgerEntry:
    check = CheckResult(
        checked_at="2024-03-01T00:00:00+00:00",
        current_rows=100,
        labelled_rows=80,
        drift_share=drift,
        drifted_columns=["x1"] if drift > 0.5 else [],
        dataset_drift=drift > 0.5,
        prediction_drift=False,
        metric=float("nan"),  # stored as null
    )
    return LedgerEntry(
        run_id=run_id,
        check=check,
        decision={"trigger": triggered is not None, "reasons": []},
        triggered_run_id=triggered,
        triggered_at=check.checked_at if triggered else None,
    )


def test_record_replace_and_order(root: str) -> None:
    ledger = CheckLedger(root, "synthetic")
    assert str(ledger.path) == f"{root}/synthetic/monitoring/checks.jsonl"
    assert ledger.entries() == []

    ledger.record(entry("check-1"))
    ledger.record(entry("check-2", drift=0.9, triggered="retrain-1"))
    ledger.record(entry("check-3"))
    # a retried check replaces its own line (and moves to the end: recorded last)
    ledger.record(entry("check-2", drift=0.7))
    again = CheckLedger(root, "synthetic").entries()
    assert [e.run_id for e in again] == ["check-1", "check-3", "check-2"]
    assert again[-1].check.drift_share == 0.7 and again[-1].triggered_run_id is None
    assert again[0].check.metric is None
    assert CheckLedger(root, "other").entries() == []


def test_s3_ledger_is_one_object(
    bucket: str,  # noqa: F811 (fixture)
    s3_endpoint: str,  # noqa: F811 (fixture)
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    ledger = CheckLedger(f"s3://{bucket}/art", "synthetic")
    for n in range(3):
        ledger.record(entry(f"check-{n}"))
    listing = _client(s3_endpoint).list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in listing["Contents"]] == ["art/synthetic/monitoring/checks.jsonl"]
    body = _client(s3_endpoint).get_object(Bucket=bucket, Key=listing["Contents"][0]["Key"])
    lines = body["Body"].read().decode().splitlines()
    assert [line.count('"run_id"') for line in lines] == [1, 1, 1]
    assert list(tmp_path.iterdir()) == []  # no local "s3:" folder


def test_local_ledger_leaves_no_temporary_file(tmp_path: Path) -> None:
    ledger = CheckLedger(tmp_path, "synthetic")
    ledger.record(entry("a"))
    ledger.record(entry("a"))
    folder = tmp_path / "synthetic" / "monitoring"
    assert ledger.path == folder / "checks.jsonl"
    assert [p.name for p in folder.iterdir()] == ["checks.jsonl"]
    assert len(ledger.entries()) == 1
