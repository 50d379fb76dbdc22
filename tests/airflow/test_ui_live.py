"""Live: the plugin's pages behind the real API server's auth manager (``slow``).

Anonymous requests are refused, the admin's bearer token and the UI's session
cookie are accepted, an unknown pipeline is a 404, and no response carries the
home's admin password, JWT secret, API secret key or Fernet key.
"""

from __future__ import annotations

import json

import pytest
import requests

from tests.airflow.live import running_stack
from tests.conftest import Trained

pytestmark = pytest.mark.slow

ROUTES = [
    "/retrainflow/timeline/retrain__synthetic",
    "/retrainflow/timeline/monitor__synthetic",
    "/retrainflow/run/retrain__synthetic/base-warm",
    "/retrainflow/docs",
    "/retrainflow/openapi.json",
]


def test_plugin_pages_need_an_airflow_login(trained_fork: Trained) -> None:

    with running_stack([]) as live:
        base = live.info.airflow_url.rstrip("/")
        secrets = {live.info.password, *json.loads(live.stack.secrets_file.read_text()).values()}
        assert all(len(s) >= 16 for s in secrets)
        token = requests.post(
            f"{base}/auth/token",
            json={"username": live.info.username, "password": live.info.password},
            timeout=30,
        ).json()["access_token"]
        bodies = []
        for route in ROUTES:
            anonymous = requests.get(base + route, timeout=60)
            assert anonymous.status_code in (401, 403), (route, anonymous.text)
            bearer = requests.get(
                base + route, headers={"Authorization": f"Bearer {token}"}, timeout=60
            )
            assert bearer.status_code == 200, (route, bearer.text)
            cookie = requests.get(base + route, cookies={"_token": token}, timeout=60)
            assert cookie.status_code == 200, (route, cookie.text)
            bodies += [anonymous.text, bearer.text, cookie.text]
        assert ">v2<" in bodies[1]  # the timeline, as before
        unknown = requests.get(
            f"{base}/retrainflow/timeline/retrain__no_such_pipeline",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        assert unknown.status_code == 404, unknown.text
        assert unknown.json() == {"detail": "Unknown pipeline 'no_such_pipeline'."}
        bodies.append(unknown.text)
        for body in bodies:
            for secret in secrets:
                assert secret not in body
