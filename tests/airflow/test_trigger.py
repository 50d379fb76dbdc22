"""RetrainTrigger over the REST client, against the fake API server of test_rest_client.

The live path (real API server, JWT, scheduler) is in test_monitor_live.py; this
covers the branches a live stack makes awkward to reach.
"""

from __future__ import annotations

import pytest

from retrainflow.airflow.trigger import RetrainTrigger
from retrainflow.exceptions import AirflowApiError
from tests.airflow.test_rest_client import FakeAirflow, client, fake  # noqa: F401 - fixtures


def test_a_paused_retrain_dag_is_a_clear_error_and_no_run(fake: FakeAirflow, client) -> None:  # noqa: F811
    fake.dags["etl"] = True  # paused
    with pytest.raises(AirflowApiError, match="etl is paused"):
        RetrainTrigger(client, "etl").trigger("monitor__x", {"mode": "auto"})
    assert fake.runs == {}


def test_trigger_is_idempotent_per_run_id(fake: FakeAirflow, client) -> None:  # noqa: F811
    fake.dags["etl"] = False
    trig = RetrainTrigger(client, "etl")
    assert trig.trigger("monitor__x", {"mode": "auto"}) == "created"
    assert trig.trigger("monitor__x", {"mode": "auto"}) == "exists"
    assert list(fake.runs) == [("etl", "monitor__x")]
    assert trig.active_runs() == ["monitor__x"]  # queued counts as active


def test_missing_dag_and_forbidden_are_errors(fake: FakeAirflow, client) -> None:  # noqa: F811
    with pytest.raises(AirflowApiError) as missing:
        RetrainTrigger(client, "nope").trigger("r", {})
    assert missing.value.status == 404
    fake.dags["locked"] = False
    with pytest.raises(AirflowApiError) as forbidden:
        RetrainTrigger(client, "locked").trigger("r", {})
    assert forbidden.value.status == 403
