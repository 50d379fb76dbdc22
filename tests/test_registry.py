"""The registry seam: champion periods across rollbacks, lookups by tag, MLflow errors.

Versions here are registered straight through :class:`Registry` with a dummy
source (no training), in a private MLflow SQLite store per test (``home``).
"""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from retrainflow import registry as registry_module
from retrainflow.exceptions import RegistryError, RegistryUnavailableError, UserError
from retrainflow.registry import CHAMPION, PERIODS_TAG, ChampionPeriod, Registry, history

NAME = "m"


def _add(registry: Registry, tmp_path: Path, n: int, **tags: str) -> str:
    """Register version ``n`` (a passed gate, data up to 2023-03-n) with a dummy source."""
    info = registry.register(
        NAME,
        str(tmp_path / f"model-{n}"),
        None,
        {
            "gate_passed": "true",
            "data_end": f"2023-03-{n:02d}",
            "retrain_run_id": f"run-{n}",
            **tags,
        },
    )
    return info.version


@pytest.fixture
def registry(home: Any) -> Registry:
    return Registry()


@pytest.fixture
def six(registry: Registry, tmp_path: Path) -> Registry:
    """Versions 1..6, each crowned in turn (6 is the champion)."""
    for n in range(1, 7):
        registry.set_champion(NAME, _add(registry, tmp_path, n), reason=f"gate passed {n}")
    return registry


def _check_sequence(periods: list[ChampionPeriod]) -> None:
    """Numbered 1..n, each since <= until, each change at one instant, only the last one open."""
    assert [p.seq for p in periods] == list(range(1, len(periods) + 1))
    for before, after in pairwise(periods):
        assert before.until == after.since
        assert after.previous == before.version
    for p in periods[:-1]:
        assert p.until is not None
        assert datetime.fromisoformat(p.since) <= datetime.fromisoformat(p.until)
    assert periods[-1].until is None


# -- champion periods (issue 7, finding 6) ----------------------------------------------------------


def test_every_champion_period_survives_any_number_of_rollbacks(six: Registry) -> None:
    registry = six
    assert registry.rollback(NAME) == ("6", "5")
    assert registry.rollback(NAME, to="3") == ("5", "3")
    assert registry.rollback(NAME) == ("3", "5")
    assert registry.rollback(NAME, to="6") == ("5", "6")
    periods = registry.champion_periods(NAME)
    assert [p.version for p in periods] == ["1", "2", "3", "4", "5", "6", "5", "3", "5", "6"]
    assert [p.reason for p in periods[6:]] == [
        "rollback from 6",
        "rollback from 5",
        "rollback from 3",
        "rollback from 5",
    ]
    _check_sequence(periods)
    assert periods[-1].version == registry.champion(NAME).version == "6"
    # data time: what each champion was trained on
    assert [p.data_end for p in periods[-3:]] == ["2023-03-03", "2023-03-05", "2023-03-06"]

    rows = {r["version"]: r for r in history(registry, NAME)}
    assert [p["seq"] for p in rows["5"]["champion_periods"]] == [5, 7, 9]
    assert [p["seq"] for p in rows["3"]["champion_periods"]] == [3, 8]
    assert rows["6"]["champion_periods"][-1]["until"] is None
    for row in rows.values():
        for p in row["champion_periods"]:
            assert p["until"] is None or p["since"] <= p["until"]


def test_order_holds_when_changes_share_a_second(
    six: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Order comes from the sequence, not the timestamps (second resolution)."""
    monkeypatch.setattr(registry_module, "now_iso", lambda: "2030-01-01T00:00:00+00:00")
    six.rollback(NAME)
    six.rollback(NAME, to="2")
    six.rollback(NAME, to="4")
    periods = six.champion_periods(NAME)
    assert [p.version for p in periods[-4:]] == ["6", "5", "2", "4"]
    assert {p.since for p in periods[-3:]} == {"2030-01-01T00:00:00+00:00"}
    _check_sequence(periods)


def test_a_clock_behind_the_last_change_cannot_invert_a_period(
    six: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CLI on a machine whose clock is behind the scheduler's: until is never before since."""
    behind = (datetime.now(UTC) - timedelta(minutes=2)).isoformat(timespec="seconds")
    monkeypatch.setattr(registry_module, "now_iso", lambda: behind)
    six.rollback(NAME)
    periods = six.champion_periods(NAME)
    _check_sequence(periods)
    assert periods[-1].since == periods[-2].until >= periods[-2].since


def test_periods_are_kept_in_a_json_tag_per_version(six: Registry) -> None:
    six.rollback(NAME)
    tags = six.get_version(NAME, "5").tags
    stored = json.loads(tags[PERIODS_TAG])
    assert [(p["seq"], p["until"] is None) for p in stored] == [(5, False), (7, True)]
    assert stored[1]["previous"] == "6" and stored[1]["reason"] == "rollback from 6"
    assert "champion_since" not in tags and "champion_until" not in tags
    assert tags["previous_champion"] == "6" and tags["champion_reason"] == "rollback from 6"


def _legacy(registry: Registry, version: str, **tags: str) -> None:
    """Tags as retrainflow wrote them before ``champion_periods``."""
    registry.set_tags(NAME, version, tags)


def test_a_registry_with_the_old_single_tags_is_read_and_migrated(
    registry: Registry, tmp_path: Path
) -> None:
    """The state the issue found: 1, 2 champions, then ``rollback`` (to 1) and ``rollback --to 2``.

    The old tags kept one since/until per version and were overwritten: version 2
    reads "since 03:35:15 until 03:33:13".
    """
    for n in (1, 2, 3):
        _add(registry, tmp_path, n)
    _legacy(
        registry,
        "1",
        champion_since="2026-11-20T03:30:00+00:00",
        champion_reason="gate passed",
        champion_until="2026-11-20T03:35:15+00:00",
        rolled_back_from="2",
    )
    _legacy(
        registry,
        "2",
        champion_since="2026-11-20T03:35:15+00:00",
        champion_reason="rollback from 1",
        champion_until="2026-11-20T03:33:13+00:00",
        previous_champion="1",
    )
    registry.client.set_registered_model_alias(NAME, CHAMPION, "2")

    periods = registry.champion_periods(NAME)
    assert [(p.version, p.since, p.until) for p in periods] == [
        ("1", "2026-11-20T03:30:00+00:00", "2026-11-20T03:35:15+00:00"),
        ("2", "2026-11-20T03:35:15+00:00", None),  # the champion: open, not "until 03:33:13"
    ]
    assert history(registry, NAME)[1]["champion_periods"][0]["until"] is None

    # the next change writes champion_periods for every version and drops the old tags
    registry.set_champion(NAME, "3", reason="gate passed")
    for version in ("1", "2", "3"):
        tags = registry.get_version(NAME, version).tags
        assert PERIODS_TAG in tags and "champion_since" not in tags and "champion_until" not in tags
    periods = registry.champion_periods(NAME)
    assert [p.version for p in periods] == ["1", "2", "3"]
    _check_sequence(periods)
    assert periods[0].until == "2026-11-20T03:35:15+00:00"


def test_set_champion_of_the_champion_changes_nothing(six: Registry) -> None:
    before = six.champion_periods(NAME)
    assert six.set_champion(NAME, "6", reason="again") == "6"
    assert six.champion_periods(NAME) == before


def test_rollback_to_the_champion_itself_is_refused(six: Registry) -> None:
    before = six.champion_periods(NAME)
    with pytest.raises(RegistryError, match="Version 6 of 'm' is the champion already"):
        six.rollback(NAME, to="6")
    assert six.champion_periods(NAME) == before
    assert "rolled_back_from" not in six.get_version(NAME, "6").tags


def test_rollback_refuses_a_version_that_never_served_nor_passed(
    registry: Registry, tmp_path: Path
) -> None:
    registry.set_champion(NAME, _add(registry, tmp_path, 1), reason="first")
    _add(registry, tmp_path, 2, gate_passed="false")
    with pytest.raises(RegistryError, match="never passed its gate nor served"):
        registry.rollback(NAME, to="2")
    assert [p.version for p in registry.champion_periods(NAME)] == ["1"]


# -- lookups by tag (finding 8) --------------------------------------------------------------------------


def test_find_by_run_asks_the_registry_with_a_tag_filter(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in (1, 2, 3):
        _add(registry, tmp_path, n)
    _add(registry, tmp_path, 4, retrain_run_id="it's manual__2023-02-15T00:00:00+00:00")
    queries: list[str] = []
    search = registry.client.search_model_versions

    def spy(filter_string: str, **kwargs: Any) -> Any:
        queries.append(filter_string)
        return search(filter_string, **kwargs)

    monkeypatch.setattr(registry.client, "search_model_versions", spy)
    found = registry.find_by_run(NAME, "run-2")
    assert found is not None and found.version == "2" and found.tags["data_end"] == "2023-03-02"
    assert queries == ["name = 'm' AND tags.`retrain_run_id` = 'run-2'"]
    assert registry.find_by_run(NAME, "it's manual__2023-02-15T00:00:00+00:00").version == "4"
    assert registry.find_by_run(NAME, "run-9") is None
    assert registry.find_by_run("no_such_model", "run-1") is None
    assert [
        v.version for v in registry.find(NAME, {"gate_passed": "true", "data_end": "2023-03-03"})
    ] == ["3"]


def test_found_versions_carry_their_aliases(six: Registry) -> None:
    assert six.find_by_run(NAME, "run-6").aliases == [CHAMPION]


# -- "missing" versus "could not ask" (finding 8) ----------------------------------------------------------


def test_missing_model_version_or_alias_still_reads_as_missing(
    registry: Registry, tmp_path: Path
) -> None:
    assert registry.exists(NAME) is False
    assert registry.champion(NAME) is None
    assert registry.versions(NAME) == []
    _add(registry, tmp_path, 1)
    assert registry.exists(NAME) is True
    assert registry.champion(NAME) is None  # model exists, alias does not
    for version in ("7", "abc"):
        with pytest.raises(UserError, match=f"Model 'm' has no version {version}"):
            registry.get_version(NAME, version)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def unreachable(monkeypatch: pytest.MonkeyPatch) -> Registry:
    """A registry whose tracking server does not answer (MLflow retries turned down)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    return Registry(f"http://127.0.0.1:{_closed_port()}")


@pytest.mark.parametrize(
    "call",
    [
        lambda r: r.champion(NAME),
        lambda r: r.by_alias(NAME, "challenger"),
        lambda r: r.exists(NAME),
        lambda r: r.get_version(NAME, "1"),
        lambda r: r.versions(NAME),
        lambda r: r.find_by_run(NAME, "run-1"),
        lambda r: r.champion_periods(NAME),
        lambda r: r.rollback(NAME),
    ],
    ids=[
        "champion",
        "by_alias",
        "exists",
        "get_version",
        "versions",
        "find_by_run",
        "periods",
        "rollback",
    ],
)
def test_an_unreachable_registry_raises_instead_of_answering_no_champion(
    unreachable: Registry, call: Any
) -> None:
    with pytest.raises(
        RegistryUnavailableError, match="could not .* Check that the tracking server"
    ) as info:
        call(unreachable)
    assert info.value.mlflow_code == "INTERNAL_ERROR"
    assert not isinstance(info.value, (UserError, RegistryError))  # retryable, not "fix your input"


def test_registry_errors_branch_on_the_mlflow_code(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, TEMPORARILY_UNAVAILABLE

    _add(registry, tmp_path, 1)
    registry.set_challenger(NAME, "1")

    def fail(code: int) -> Any:
        def raise_(*args: Any, **kwargs: Any) -> Any:
            raise MlflowException("the store said no", error_code=code)

        return raise_

    monkeypatch.setattr(
        registry.client, "get_model_version_by_alias", fail(TEMPORARILY_UNAVAILABLE)
    )
    with pytest.raises(RegistryUnavailableError) as info:
        registry.champion(NAME)
    assert info.value.mlflow_code == "TEMPORARILY_UNAVAILABLE"
    assert info.value.to_dict()["code"] == "registry_unavailable"
    # INVALID_PARAMETER_VALUE is what a missing alias gets: "missing" only if the alias is absent
    monkeypatch.setattr(
        registry.client, "get_model_version_by_alias", fail(INVALID_PARAMETER_VALUE)
    )
    assert registry.champion(NAME) is None
    with pytest.raises(RegistryUnavailableError, match="INVALID_PARAMETER_VALUE"):
        registry.by_alias(NAME, "challenger")


# -- the fluent API's tracking URI (finding 8: no private MLflow API) -------------------------------------


@pytest.fixture
def clean_mlflow_uri(monkeypatch: pytest.MonkeyPatch) -> Any:
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    mlflow.set_tracking_uri(None)
    yield mlflow
    mlflow.set_tracking_uri(None)


def test_tracking_block_leaves_an_unset_uri_unset(
    registry: Registry, clean_mlflow_uri: Any
) -> None:
    mlflow = clean_mlflow_uri
    with registry.tracking():
        assert mlflow.get_tracking_uri() == registry.tracking_uri
    assert not mlflow.tracking.is_tracking_uri_set()
    assert "MLFLOW_TRACKING_URI" not in os.environ


def test_tracking_block_restores_a_uri_from_the_environment(
    registry: Registry, clean_mlflow_uri: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlflow = clean_mlflow_uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////tmp/from-env.db")
    with registry.tracking():
        assert mlflow.get_tracking_uri() == registry.tracking_uri
    assert os.environ["MLFLOW_TRACKING_URI"] == "sqlite:////tmp/from-env.db"
    assert mlflow.get_tracking_uri() == "sqlite:////tmp/from-env.db"
    monkeypatch.setenv(
        "MLFLOW_TRACKING_URI", "sqlite:////tmp/changed.db"
    )  # still follows the variable
    assert mlflow.get_tracking_uri() == "sqlite:////tmp/changed.db"


def test_tracking_block_restores_a_uri_set_by_the_caller(
    registry: Registry, clean_mlflow_uri: Any
) -> None:
    mlflow = clean_mlflow_uri
    mlflow.set_tracking_uri("sqlite:////tmp/caller.db")
    os.environ.pop("MLFLOW_TRACKING_URI")  # set by the call, dropped by someone else
    with registry.tracking():
        assert mlflow.get_tracking_uri() == registry.tracking_uri
    assert mlflow.get_tracking_uri() == "sqlite:////tmp/caller.db"
    assert "MLFLOW_TRACKING_URI" not in os.environ
