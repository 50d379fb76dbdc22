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

from dataclasses import dataclass, replace
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from retrainflow.exceptions import RegistryError
from retrainflow.manifest import PromoteManifest, PullManifest
from retrainflow.pipeline import RunResult, run_all
from retrainflow.registry import CHALLENGER, CHAMPION, PERIODS_TAG, Registry, history
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
        runs["v5"] = run_all(
            manual, ctx("chain-5", "2023-03-15", trigger_reason="schedule"), registry=registry
        )
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
        "pipeline": NAME,
        "retrain_run_id": "base-stateless",
        "mode": "stateless",
        "warm_method": "",
        "requested_mode": "stateless",
        "parent_version": "",
        "estimator": "lightgbm",
        "window_start": "2023-01-11",
        "window_end": "2023-02-10",
        "data_start": "2023-01-11",
        "data_end": "2023-02-10",
        "holdout_start": "2023-02-10",
        "holdout_end": "2023-02-15",
        "train_fingerprint": run.pull.train.fingerprint,
        "holdout_fingerprint": run.pull.holdout.fingerprint,
        "dag_run_id": "scheduled__2023-02-15T00:00:00+00:00",
        "trigger_reason": "schedule",
        "rows": "12000",
        "new_rows": "12000",
        "replay_rows": "0",
        "warm_starts_since_full": "0",
        "gate_passed": "true",
        "primary_metric": "roc_auc",
        "config_fingerprint": promote.config_fingerprint(trained.config),
    }
    assert {k: tags.get(k) for k in expected} == expected
    assert float(tags["train_cpu_seconds"]) == run.train.train_cpu_seconds > 0
    assert float(tags["peak_rss_mb"]) == run.train.peak_rss_mb > 0
    assert float(tags["challenger_metric"]) == pytest.approx(run.verdict.challenger["roc_auc"])
    assert tags["champion_metric"] == "" and PERIODS_TAG in tags


def test_lineage_tags_of_a_warm_start(trained) -> None:
    run = trained.warm
    tags = Registry().get_version(NAME, "2").tags
    expected = {
        "retrain_run_id": "base-warm",
        "mode": "warm_start",
        "warm_method": "append",
        "requested_mode": "auto",
        "parent_version": "1",
        "window_start": "2023-02-10",
        "window_end": "2023-02-17",
        # a warm start covers its parent's data too
        "data_start": "2023-01-11",
        "data_end": "2023-02-17",
        "train_fingerprint": run.pull.train.fingerprint,
        "dag_run_id": "manual__2023-02-22T00:00:00+00:00",
        "trigger_reason": "drift",
        "rows": "3360",
        "new_rows": "2800",
        "replay_rows": "560",
        "warm_starts_since_full": "1",
        "champion_at_evaluation": "1",
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
        trained.stateless.verdict.challenger["roc_auc"]
    )
    assert run.data.tags["retrain_run_id"] == "base-stateless"


# -- aliases and the gate -------------------------------------------------------------------


def test_first_version_becomes_champion_and_challenger(trained) -> None:
    p = trained.stateless.promote
    assert (p.version, p.champion, p.champion_version, p.previous_champion) == (
        "1",
        True,
        "1",
        None,
    )
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
    (v1_period,) = Registry().champion_periods(NAME)[:1]
    assert v1_period.version == "1" and v1_period.until is not None


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
    assert (p.version, p.champion, p.awaiting_approval, p.champion_version) == (
        "5",
        False,
        True,
        "4",
    )
    assert chain.states["v5"][CHAMPION] == "4"
    a = chain.approved
    assert (a.version, a.champion, a.awaiting_approval, a.champion_version) == (
        "5",
        True,
        False,
        "5",
    )
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
    again = promote.run(
        chain.configs["strict"], run.pull, run.features, run.train, run.verdict, registry=registry
    )
    assert again.version == run.promote.version == "6"
    assert len(registry.versions(NAME)) == 6
    assert _aliases(registry) == {CHAMPION: "5", CHALLENGER: "6"}
    assert registry.find_by_run(NAME, "chain-6").version == "6"


def test_history_rows(chain) -> None:
    rows = chain.history
    assert [r["version"] for r in rows] == ["1", "2", "3", "4", "5", "6"]
    assert [r["gate_passed"] for r in rows] == [True, False, True, True, True, False]
    assert [r["mode"] for r in rows] == [
        "stateless",
        "warm_start",
        "warm_start",
        "warm_start",
        "stateless",
        "stateless",
    ]
    assert [r["warm_method"] for r in rows] == ["", "append", "append", "append", "", ""]
    assert [r["parent_version"] for r in rows] == ["", "1", "1", "3", "4", "5"]
    assert rows[4]["aliases"] == [CHAMPION] and rows[5]["aliases"] == [CHALLENGER]
    assert [[p["seq"] for p in r["champion_periods"]] for r in rows] == [[1], [], [2], [3], [4], []]
    assert [[p["until"] is None for p in r["champion_periods"]] for r in rows] == [
        [False],
        [],
        [False],
        [False],
        [True],
        [],
    ]
    assert rows[4]["champion_periods"][0]["data_end"] == rows[4]["data_end"] == "2023-03-10"
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
    # every champion period is kept, in order, each since <= until (issue 7, finding 6)
    periods = registry.champion_periods(NAME)
    assert [(p.version, p.reason) for p in periods] == [
        ("1", "gate passed (schedule)"),
        ("3", "gate passed (manual)"),
        ("4", "gate passed (manual)"),
        ("5", "approved by ana"),
        ("4", "rollback from 5"),
        ("1", "rollback from 4"),
    ]
    assert [p.data_end for p in periods] == [
        "2023-02-10",
        "2023-02-24",
        "2023-03-03",
        "2023-03-10",
        "2023-03-03",
        "2023-02-10",
    ]
    for p, following in pairwise(periods):
        assert (
            datetime.fromisoformat(p.since) <= datetime.fromisoformat(p.until)
            and p.until == following.since
        )
    assert periods[-1].until is None


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


# -- identical retrains reuse their version (issue 7, finding 7) --------------------------------------


def _again(run: Any, run_id: str, **pulled: Any) -> Any:
    """``run``'s pull manifest as a later run with the same window would produce it."""
    return replace(run.pull, context=replace(run.pull.context, run_id=run_id), **pulled)


def _mlflow_runs(registry: Registry) -> int:
    experiment = registry.client.get_experiment_by_name(NAME)
    return len(registry.client.search_runs([experiment.experiment_id]))


def test_identical_queued_retrains_reuse_the_version(trained_fork) -> None:
    """Six queued runs with the same window: the first one's version, not six new ones.

    After version 1 was crowned, the next stateless run on the same data has it as
    parent (the champion it is compared with) and ties with it.
    """
    registry = Registry()
    base = trained_fork.stateless
    runs_before = _mlflow_runs(registry)
    tie = replace(base.verdict, champion=dict(base.verdict.challenger), champion_version="1")
    for n in range(6):
        promoted = promote.run(
            trained_fork.config,
            _again(base, f"queued-{n}", parent_version="1"),
            base.features,
            base.train,
            tie,
            registry=registry,
        )
        assert (promoted.version, promoted.run_id) == ("1", base.promote.run_id)
        assert (
            promoted.reused
            and "identical to version 1 (run base-stateless)" in promoted.reused_reason
        )
        assert (promoted.champion_version, promoted.previous_champion) == ("1", None)
    assert len(registry.versions(NAME)) == 2
    assert _mlflow_runs(registry) == runs_before  # no model logged again
    assert _aliases(registry) == {CHAMPION: "1", CHALLENGER: "1"}  # the alias logic ran as usual
    assert [p.version for p in registry.champion_periods(NAME)] == ["1"]
    written = trained_fork.run_dir("queued-5") / "promote" / "manifest.json"
    assert '"reused": true' in written.read_text()


def test_a_warm_start_reuses_only_a_version_with_the_same_parent(trained_fork) -> None:
    registry = Registry()
    warm = trained_fork.warm  # version 2: warm start of 1, gate failed
    same = promote.run(
        trained_fork.config,
        _again(warm, "warm-again"),
        warm.features,
        warm.train,
        warm.verdict,
        registry=registry,
    )
    assert same.version == "2" and same.reused and "and parent 1" in same.reused_reason
    other = promote.run(
        trained_fork.config,
        _again(warm, "warm-other-parent", parent_version="2"),
        warm.features,
        warm.train,
        warm.verdict,
        registry=registry,
    )
    assert (other.version, other.reused, other.reused_reason) == ("3", False, None)
    assert registry.get_version(NAME, "3").tags["parent_version"] == "2"


def test_a_passed_gate_never_reuses_a_version_whose_gate_failed(trained_fork) -> None:
    registry = Registry()
    warm = trained_fork.warm
    passed = replace(warm.verdict, passed=True)
    promoted = promote.run(
        trained_fork.config,
        _again(warm, "warm-passed"),
        warm.features,
        warm.train,
        passed,
        registry=registry,
    )
    assert (promoted.version, promoted.reused, promoted.champion) == ("3", False, True)
    assert registry.champion(NAME).version == "3"


def test_another_model_configuration_registers_a_new_version(trained_fork, helpers) -> None:
    registry = Registry()
    base = trained_fork.stateless
    cfg = helpers.config_with({"training.params.learning_rate": 0.2})
    promoted = promote.run(
        cfg, _again(base, "new-params"), base.features, base.train, base.verdict, registry=registry
    )
    assert (promoted.version, promoted.reused) == ("3", False)
    assert registry.get_version(NAME, "3").tags["config_fingerprint"] == promote.config_fingerprint(
        cfg
    )


def test_config_fingerprint_covers_only_what_changes_the_model(helpers) -> None:
    fp = promote.config_fingerprint
    base = fp(helpers.config_with())
    assert fp(helpers.config_with()) == base  # stable
    same = {
        "description": "edited",
        "schedule": "@weekly",
        "monitoring.schedule": "@hourly",
        "promotion": "manual",
        "tags": {"team": "x"},
        "expectations.min_rows": 1,
    }
    for path, value in same.items():
        assert fp(helpers.config_with({path: value})) == base, path
    other = {
        "features.numeric": ["x1", "x2"],
        "features.time_parts": ["hour"],
        "training.params.num_leaves": 7,
        "training.window_days": 20,
        "training.warm_start.method": "refit",
        "evaluation.holdout_days": 3,
        "evaluation.min_delta": 0.01,
    }
    for path, value in other.items():
        assert fp(helpers.config_with({path: value})) != base, path


# -- a promote killed after its MLflow run started (issue 9) --------------------------------------


def test_a_retried_promote_closes_the_run_a_killed_attempt_left_open(trained_fork) -> None:
    """A SIGKILL inside ``mlflow.start_run`` leaves the run ``RUNNING`` and registers nothing;
    the retry closes it (``KILLED``), logs one run of its own and registers exactly once."""
    registry = Registry()
    base = trained_fork.stateless
    pulled = _again(base, "killed-promote")
    experiment = registry.client.get_experiment_by_name(NAME)
    orphan = registry.client.create_run(
        experiment.experiment_id, tags={"retrain_run_id": "killed-promote"}
    )
    assert registry.client.get_run(orphan.info.run_id).info.status == "RUNNING"
    versions_before = len(registry.versions(NAME))
    other = trained_fork.config.model_copy(update={"description": "changed, not the model"})
    # a different training window, so the version is not reused as identical
    pulled = replace(pulled, train=replace(pulled.train, fingerprint="0" * 16))
    promoted = promote.run(
        other, pulled, base.features, base.train, base.verdict, registry=registry
    )
    assert registry.client.get_run(orphan.info.run_id).info.status == "KILLED"
    runs = registry.client.search_runs(
        [experiment.experiment_id], filter_string="tags.retrain_run_id = 'killed-promote'"
    )
    assert sorted(r.info.status for r in runs) == ["FINISHED", "KILLED"]
    assert len(registry.versions(NAME)) == versions_before + 1
    again = promote.run(other, pulled, base.features, base.train, base.verdict, registry=registry)
    assert again.version == promoted.version  # a second retry registers nothing more
    assert len(registry.versions(NAME)) == versions_before + 1


def _promote_then_hang(home: str, args: tuple, started: str) -> None:
    """A promote that stops inside its MLflow run (after it started, before the model is
    logged) until it is SIGKILLed: the state a killed Airflow task leaves behind."""
    import time

    import mlflow.pyfunc

    from tests.conftest import point_env

    def hang(*_: Any, **__: Any) -> None:
        Path(started).write_text("in the run")
        time.sleep(600)

    with pytest.MonkeyPatch.context() as mp:
        point_env(mp, Path(home))
        mp.setattr(mlflow.pyfunc, "log_model", hang)
        config, pulled, features, train, verdict = args
        promote.run(config, pulled, features, train, verdict, registry=Registry())


@pytest.mark.slow
@pytest.mark.faults
def test_a_promote_sigkilled_inside_its_mlflow_run_is_finished_by_its_retry(
    trained_fork, tmp_path: Path
) -> None:
    """Issue 9, finding 4, with a real SIGKILL: the killed attempt's MLflow run is left
    ``RUNNING`` and nothing is registered; the retry closes that run (``KILLED``), logs its
    own and registers exactly one version; a further retry registers nothing more."""
    import multiprocessing
    import os
    import signal
    import time

    registry = Registry()
    base = trained_fork.stateless
    pulled = _again(base, "sigkilled-promote")
    pulled = replace(pulled, train=replace(pulled.train, fingerprint="1" * 16))  # not a reuse
    args = (trained_fork.config, pulled, base.features, base.train, base.verdict)
    versions_before = len(registry.versions(NAME))
    started = tmp_path / "started"
    ctx = multiprocessing.get_context("spawn")
    child = ctx.Process(
        target=_promote_then_hang, args=(str(trained_fork.root), args, str(started))
    )
    child.start()
    try:
        deadline = time.monotonic() + 240
        while not started.exists() and child.is_alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert started.exists(), f"the promote never reached its MLflow run (exit {child.exitcode})"
        experiment = registry.client.get_experiment_by_name(NAME)
        tagged = "tags.retrain_run_id = 'sigkilled-promote'"
        open_runs = registry.client.search_runs([experiment.experiment_id], filter_string=tagged)
        assert [r.info.status for r in open_runs] == ["RUNNING"]
    finally:
        if child.pid is not None and child.is_alive():
            os.kill(child.pid, signal.SIGKILL)
        child.join(timeout=30)
    assert child.exitcode == -signal.SIGKILL
    assert len(registry.versions(NAME)) == versions_before  # nothing half-registered

    promoted = promote.run(*args, registry=registry)  # Airflow's retry of the task
    runs = registry.client.search_runs([experiment.experiment_id], filter_string=tagged)
    assert sorted(r.info.status for r in runs) == ["FINISHED", "KILLED"]
    assert len(registry.versions(NAME)) == versions_before + 1
    again = promote.run(*args, registry=registry)
    assert again.version == promoted.version
    assert len(registry.versions(NAME)) == versions_before + 1
