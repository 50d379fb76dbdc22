"""Stage 6 — promote: lineage tags, aliases, the gate, manual approval, idempotence, rollback.

The module builds one chain of runs on a private copy of the trained base
(version 1: stateless champion; version 2: its warm start, which failed the gate):

====  ==================================  =====================================
 v3   lenient gate, auto, 2023-03-01      warm start of v1 → champion
 v4   lenient gate, auto, 2023-03-08      warm start of v3 → champion
 --   pull only, auto, 2023-03-15         stateless: max_warm_starts (2) reached
 v5   lenient gate, manual, 2023-03-15    awaiting approval, then approved
 v6   floors roc_auc 0.99, 2023-03-15     gate fails: registered, not champion
====  ==================================  =====================================
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from retrainflow.exceptions import RegistryError
from retrainflow.manifest import PromoteManifest, PullManifest
from retrainflow.pipeline import RunResult, run_all
from retrainflow.registry import CHALLENGER, CHAMPION, Registry, history
from retrainflow.stages import promote, pull

NAME = "synthetic"


def _aliases(registry: Registry) -> dict[str, str | None]:
    out = {}
    for alias in (CHAMPION, CHALLENGER):
        info = registry.by_alias(NAME, alias)
        out[alias] = info.version if info else None
    return out


@dataclass(frozen=True)
class Chain:
    root: Path
    base: Any
    runs: dict[str, RunResult]
    #: aliases and version count after each step
    states: dict[str, dict[str, Any]]
    after_max: PullManifest
    approved: PromoteManifest
    history: list[dict[str, Any]]
    configs: dict[str, Any]


@pytest.fixture(scope="module")
def chain_base(trained_base, fork_factory, helpers) -> Chain:
    lenient = {"evaluation.min_delta": -1.0, "evaluation.guardrails": {}, "evaluation.floors": {}}
    cfg = helpers.config_with(lenient)
    manual = helpers.config_with({**lenient, "promotion": "manual"})
    strict = helpers.config_with({"evaluation.floors": {"roc_auc": 0.99}})
    ctx = helpers.context
    with fork_factory(trained_base) as fork:
        registry = Registry()

        def state() -> dict[str, Any]:
            return {**_aliases(registry), "count": len(registry.versions(NAME))}

        states = {"base": state()}
        runs: dict[str, RunResult] = {}
        runs["v3"] = run_all(cfg, ctx("chain-3", "2023-03-01"), registry=registry)
        states["v3"] = state()
        runs["v4"] = run_all(cfg, ctx("chain-4", "2023-03-08"), registry=registry)
        states["v4"] = state()
        after_max = pull.run(cfg, ctx("chain-pull", "2023-03-15"), registry=registry)
        runs["v5"] = run_all(manual, ctx("chain-5", "2023-03-15", trigger_reason="schedule"),
                             registry=registry)
        states["v5"] = state()
        approved = promote.approve(manual, runs["v5"].promote, registry=registry, approver="ana")
        states["approved"] = state()
        runs["v6"] = run_all(strict, ctx("chain-6", "2023-03-15", "stateless"), registry=registry)
        states["v6"] = state()
        rows = history(registry, NAME)
        configs = {"lenient": cfg, "manual": manual, "strict": strict}
        return Chain(fork.root, trained_base, runs, states, after_max, approved, rows, configs)


@pytest.fixture
def chain(chain_base, monkeypatch, helpers) -> Chain:
    helpers.point_env(monkeypatch, chain_base.root)
    return chain_base


# -- lineage ----------------------------------------------------------------------------------


def test_lineage_tags_of_a_stateless_version(trained) -> None:
    run = trained.stateless
    tags = Registry().get_version(NAME, "1").tags
    expected = {
        "pipeline": NAME, "retrain_run_id": "base-stateless", "mode": "stateless", "warm_method": "",
        "requested_mode": "stateless", "parent_version": "", "estimator": "lightgbm",
        "window_start": "2023-01-11", "window_end": "2023-02-10",
        "data_start": "2023-01-11", "data_end": "2023-02-10",
        "holdout_start": "2023-02-10", "holdout_end": "2023-02-15",
        "train_fingerprint": run.pull.train.fingerprint,
        "holdout_fingerprint": run.pull.holdout.fingerprint,
        "dag_run_id": "scheduled__2023-02-15T00:00:00+00:00", "trigger_reason": "schedule",
        "rows": "12000", "new_rows": "12000", "replay_rows": "0",
        "warm_starts_since_full": "0", "gate_passed": "true", "primary_metric": "roc_auc",
    }
    assert {k: tags.get(k) for k in expected} == expected
    assert float(tags["train_cpu_seconds"]) == run.train.train_cpu_seconds > 0
    assert float(tags["peak_rss_mb"]) == run.train.peak_rss_mb > 0
    assert float(tags["challenger_metric"]) == pytest.approx(run.verdict.challenger["roc_auc"])
    assert tags["champion_metric"] == "" and "champion_since" in tags


def test_lineage_tags_of_a_warm_start(trained) -> None:
    run = trained.warm
    tags = Registry().get_version(NAME, "2").tags
    expected = {
        "retrain_run_id": "base-warm", "mode": "warm_start", "warm_method": "append",
        "requested_mode": "auto",
        "parent_version": "1", "window_start": "2023-02-10", "window_end": "2023-02-17",
        # a warm start covers its parent's data too
        "data_start": "2023-01-11", "data_end": "2023-02-17",
        "train_fingerprint": run.pull.train.fingerprint,
        "dag_run_id": "manual__2023-02-22T00:00:00+00:00", "trigger_reason": "drift",
        "rows": "3360", "new_rows": "2800", "replay_rows": "560",
        "warm_starts_since_full": "1", "champion_at_evaluation": "1",
        "gate_passed": str(run.verdict.passed).lower(),
    }
    assert {k: tags.get(k) for k in expected} == expected
    assert float(tags["train_cpu_seconds"]) > 0 and float(tags["peak_rss_mb"]) > 0
    assert float(tags["champion_metric"]) == pytest.approx(run.verdict.champion["roc_auc"])
    assert tags["schema"] == Registry().get_version(NAME, "1").tags["schema"]


def test_version_points_at_an_mlflow_run_with_the_model(trained) -> None:
    registry = Registry()
    info = registry.get_version(NAME, trained.stateless.promote.version)
    assert info.run_id == trained.stateless.promote.run_id
    run = registry.client.get_run(info.run_id)
    assert run.data.params["mode"] == "stateless"
    assert run.data.metrics["holdout_roc_auc"] == pytest.approx(
        trained.stateless.verdict.challenger["roc_auc"])
    assert run.data.tags["retrain_run_id"] == "base-stateless"


# -- aliases and the gate -------------------------------------------------------------------


def test_first_version_becomes_champion_and_challenger(trained) -> None:
    p = trained.stateless.promote
    assert (p.version, p.champion, p.champion_version, p.previous_champion) == ("1", True, "1", None)
    assert p.model_uri == "models:/synthetic/1" and not p.awaiting_approval


def test_failed_gate_registers_but_does_not_crown(trained) -> None:
    # the base warm start (version 2) did not beat its champion on the holdout
    assert trained.warm.verdict.passed is False
    p = trained.warm.promote
    assert (p.version, p.champion, p.champion_version) == ("2", False, "1")
    assert _aliases(Registry()) == {CHAMPION: "1", CHALLENGER: "2"}


def test_challenger_is_always_the_newest(chain) -> None:
    for step, version in [("base", "2"), ("v3", "3"), ("v4", "4"), ("v5", "5"), ("v6", "6")]:
        assert chain.states[step][CHALLENGER] == version
        assert chain.states[step]["count"] == int(version)


def test_champion_moves_only_when_the_gate_passed(chain) -> None:
    assert [chain.states[s][CHAMPION] for s in ("base", "v3", "v4")] == ["1", "3", "4"]
    v3 = chain.runs["v3"]
    assert (v3.pull.mode, v3.pull.parent_version, v3.verdict.passed) == ("warm_start", "1", True)
    assert (v3.promote.champion, v3.promote.previous_champion) == (True, "1")
    tags = Registry().get_version(NAME, "3").tags
    assert tags["previous_champion"] == "1" and tags["warm_starts_since_full"] == "1"
    assert "champion_until" in Registry().get_version(NAME, "1").tags


def test_auto_goes_stateless_after_max_warm_starts(chain) -> None:
    v4 = chain.runs["v4"].pull
    assert (v4.mode, v4.parent_version, v4.warm_starts_since_full) == ("warm_start", "3", 2)
    p = chain.after_max
    assert p.mode == "stateless" and "max 2" in p.mode_reason
    v5 = chain.runs["v5"].pull
    assert v5.mode == "stateless" and v5.warm_starts_since_full == 0
    assert Registry().get_version(NAME, "5").tags["warm_starts_since_full"] == "0"


def test_failing_floor_registers_a_version_but_keeps_the_champion(chain) -> None:
    v6 = chain.runs["v6"]
    assert not v6.verdict.passed
    assert any("misses the floor 0.99" in r for r in v6.verdict.reasons)
    assert (v6.promote.version, v6.promote.champion) == ("6", False)
    assert chain.states["v6"] == {CHAMPION: "5", CHALLENGER: "6", "count": 6}
    assert Registry().get_version(NAME, "6").tags["gate_passed"] == "false"


def test_manual_promotion_waits_for_approval(chain) -> None:
    p = chain.runs["v5"].promote
    assert chain.runs["v5"].verdict.passed
    assert (p.version, p.champion, p.awaiting_approval, p.champion_version) == ("5", False, True, "4")
    assert chain.states["v5"][CHAMPION] == "4"
    a = chain.approved
    assert (a.version, a.champion, a.awaiting_approval, a.champion_version) == ("5", True, False, "5")
    assert a.previous_champion == "4"
    assert chain.states["approved"][CHAMPION] == "5"
    tags = Registry().get_version(NAME, "5").tags
    assert tags["approved_by"] == "ana" and tags["champion_reason"] == "approved by ana"


def test_set_champion_refuses_a_failed_gate(chain) -> None:
    registry = Registry()
    for version in ("2", "6"):
        with pytest.raises(RegistryError, match=f"Version {version} .* did not pass"):
            registry.set_champion(NAME, version, reason="test")
    assert registry.champion(NAME).version == "5"


def test_promote_is_idempotent(chain) -> None:
    registry = Registry()
    run = chain.runs["v6"]
    again = promote.run(chain.configs["strict"], run.pull, run.features, run.train, run.verdict,
                        registry=registry)
    assert again.version == run.promote.version == "6"
    assert len(registry.versions(NAME)) == 6
    assert _aliases(registry) == {CHAMPION: "5", CHALLENGER: "6"}
    assert registry.find_by_run(NAME, "chain-6").version == "6"


def test_history_rows(chain) -> None:
    rows = chain.history
    assert [r["version"] for r in rows] == ["1", "2", "3", "4", "5", "6"]
    assert [r["gate_passed"] for r in rows] == [True, False, True, True, True, False]
    assert [r["mode"] for r in rows] == ["stateless", "warm_start", "warm_start", "warm_start",
                                         "stateless", "stateless"]
    assert [r["warm_method"] for r in rows] == ["", "append", "append", "append", "", ""]
    assert [r["parent_version"] for r in rows] == ["", "1", "1", "3", "4", "5"]
    assert rows[4]["aliases"] == [CHAMPION] and rows[5]["aliases"] == [CHALLENGER]
    assert [bool(r["champion_since"]) for r in rows] == [True, False, True, True, True, False]
    assert [bool(r["champion_until"]) for r in rows] == [True, False, True, True, False, False]
    assert rows[2]["previous_champion"] == "1" and rows[4]["previous_champion"] == "4"
    for r in rows:
        assert r["created"].startswith("20") and r["train_fingerprint"]
        assert float(r["train_cpu_seconds"]) > 0


def test_rollback(chain) -> None:
    """Last: it moves the champion (5 → 4 → 1)."""
    registry = Registry()
    assert registry.rollback(NAME) == ("5", "4")
    assert registry.champion(NAME).version == "4"
    tags = registry.get_version(NAME, "4").tags
    assert tags["rolled_back_from"] == "5" and tags["champion_reason"] == "rollback from 5"
    assert registry.rollback(NAME, to="1") == ("4", "1")
    assert registry.champion(NAME).version == "1"
    with pytest.raises(RegistryError, match="never passed its gate"):
        registry.rollback(NAME, to="6")
    assert registry.champion(NAME).version == "1"
    assert len(registry.versions(NAME)) == 6  # rollback registers nothing


def test_registry_use_leaves_mlflow_global_tracking_uri_alone(trained_fork, monkeypatch) -> None:
    """Promote and load_model must not redirect the rest of the process to their store."""
    import mlflow

    from retrainflow.registry import Registry

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    registry = Registry()  # the home's store
    mlflow.set_tracking_uri("sqlite:////tmp/somewhere-else.db")
    try:
        registry.load_model("synthetic", "1")
        assert mlflow.get_tracking_uri() == "sqlite:////tmp/somewhere-else.db"
    finally:
        mlflow.set_tracking_uri(None)
