"""Fixtures of the plugin's page tests: the plugin app behind a real Airflow auth manager."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import Trained

UNIT_JWT_SECRET = "unit-test-jwt-secret-" + "0123456789abcdef" * 4


@dataclass
class Authed:
    client: Any  # TestClient of the plugin app mounted under /retrainflow
    token: Callable[..., str]  # token(username, role) -> a JWT the auth manager accepts
    denied: dict[str, set[str]]  # username -> dag ids the auth manager refuses


@pytest.fixture
def authed(trained: Trained, monkeypatch: pytest.MonkeyPatch) -> Iterator[Authed]:
    """The plugin app mounted like the API server does, with a real simple auth manager
    (real JWTs signed with a test secret) that may refuse chosen DAGs to chosen users.
    Airflow's two metadata-DB lookups (revoked tokens, a DAG's team) are stubbed."""
    from airflow.api_fastapi import app as af_app
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.models.dag import DagModel
    from airflow.models.revoked_token import RevokedToken
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from retrainflow.airflow.ui import create_app

    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", UNIT_JWT_SECRET)
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
    monkeypatch.setattr(RevokedToken, "is_revoked", classmethod(lambda cls, jti: False))
    monkeypatch.setattr(DagModel, "get_team_name", staticmethod(lambda dag_id: None))
    denied: dict[str, set[str]] = {}

    class Manager(SimpleAuthManager):  # a fresh class: its JWT signer/validator caches are its own
        def is_authorized_dag(self, *, method, user, access_entity=None, details=None):  # type: ignore[no-untyped-def]
            if details is not None and details.id in denied.get(user.username, set()):
                return False
            return super().is_authorized_dag(
                method=method, user=user, access_entity=access_entity, details=details
            )

    manager = Manager()
    monkeypatch.setattr(af_app._AuthManagerState, "instance", manager)
    root = FastAPI()
    root.mount("/retrainflow", create_app())

    def token(username: str = "admin", role: str = "admin") -> str:
        return manager.generate_jwt(SimpleAuthManagerUser(username=username, role=role))

    with TestClient(root) as client:
        yield Authed(client, token, denied)
