"""The preloading scheduler leaves its forked task processes nothing to import or warm up."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

_PROBE = """
import json, sys
from retrainflow.airflow import preload
preload.preload()
from mlflow.utils import requirements_utils
print(json.dumps({
    "missing": [m for m in preload.MODULES if m not in sys.modules],
    "package_map": requirements_utils._PACKAGES_TO_MODULES is not None,
    "sql_store": "mlflow.store.tracking.sqlalchemy_store" in sys.modules,
}))
"""


def test_preload_imports_and_warms_what_tasks_would_pay_for() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=600, check=True
    )
    state = json.loads(out.stdout.strip().splitlines()[-1])
    assert state == {
        "missing": [],
        "package_map": True,
        "sql_store": True,
    }


def test_a_failing_warm_up_is_a_warning_not_a_crash(caplog: pytest.LogCaptureFixture) -> None:
    from retrainflow.airflow import preload

    def boom(*_: object) -> None:
        raise RuntimeError("MLflow moved things")

    import mlflow.utils.requirements_utils as requirements

    monkey = pytest.MonkeyPatch()
    monkey.setattr(requirements, "warn_dependency_requirement_mismatches", boom)
    try:
        with caplog.at_level("WARNING", logger="retrainflow.airflow.preload"):
            preload.warm()
    finally:
        monkey.undo()
    assert "cannot warm MLflow: MLflow moved things" in caplog.text
