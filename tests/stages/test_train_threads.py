"""The train stage records how its fit was threaded, and promote puts it in the lineage
(issue 10: threads per fit and OpenMP's wait policy)."""

from __future__ import annotations

from retrainflow.core import training
from retrainflow.manifest import TrainManifest
from retrainflow.pipeline import run_all
from retrainflow.registry import Registry
from retrainflow.stages.train import load_model

NAME = "synthetic"


def test_a_configured_number_is_recorded_in_manifest_tags_and_run_params(trained) -> None:
    t = trained.stateless.train
    assert (t.fit_threads, t.fit_threads_reason) == (
        1,
        "configured (training.params.num_threads: 1)",
    )
    assert t.omp_wait_policy  # PASSIVE, or what LightGBM was loaded with in this process
    assert (t.busy_cpus, t.load_average) == (None, [])  # the load is read only for auto
    assert t.cpus is not None and t.cpus >= 1
    registry = Registry()
    info = registry.get_version(NAME, trained.stateless.promote.version)
    tags = info.tags
    assert tags["fit_threads"] == "1"
    assert tags["fit_threads_reason"] == t.fit_threads_reason
    assert tags["omp_wait_policy"] == t.omp_wait_policy
    assert (tags["fit_busy_cpus"], tags["fit_load_average"]) == ("", "")
    params = registry.client.get_run(info.run_id).data.params
    assert (params["fit_threads"], params["omp_wait_policy"]) == ("1", t.omp_wait_policy)
    assert params["param_num_threads"] == "1"


def test_auto_threads_are_chosen_per_fit_and_recorded_in_the_lineage(
    trained_fork, helpers, monkeypatch
) -> None:
    monkeypatch.setattr(training, "busy_cpus", lambda: (1.2, (1.2, 0.8, 0.4)))
    monkeypatch.setattr(training, "usable_cpus", lambda: 2)
    monkeypatch.setattr(training, "MIN_ROWS_PER_THREAD", 1_000)  # the synthetic window is small
    cfg = helpers.config_with(
        {
            "training.params.num_threads": "auto",
            "evaluation.min_delta": -1.0,
            "evaluation.guardrails": {},
            "evaluation.floors": {},
        }
    )
    result = run_all(cfg, helpers.context("threads-auto", "2023-03-01", "stateless"))
    t = result.train
    assert t.fit_threads == 2
    assert t.fit_threads_reason == "auto: 2 CPUs, 1.2 busy (this fit included), 2 idle"
    assert (t.cpus, t.busy_cpus, t.load_average) == (2, 1.2, [1.2, 0.8, 0.4])
    assert load_model(t).estimator.params["num_threads"] == 2  # what LightGBM really got
    assert t.params["num_threads"] == "auto"  # the setting, beside the choice
    tags = Registry().get_version(NAME, result.promote.version).tags
    assert (tags["fit_threads"], tags["fit_busy_cpus"], tags["fit_load_average"]) == (
        "2",
        "1.2",
        "1.2 0.8 0.4",
    )
    assert tags["fit_threads_reason"] == t.fit_threads_reason
    assert tags["omp_wait_policy"] == t.omp_wait_policy


def test_the_manifest_round_trips_and_reads_older_manifests(trained) -> None:
    t = trained.stateless.train
    assert TrainManifest.from_dict(t.to_dict()) == t
    old = {k: v for k, v in t.to_dict().items() if "thread" not in k and "load" not in k}
    older = TrainManifest.from_dict(old)
    assert (older.fit_threads, older.fit_threads_reason, older.load_average) == (None, "", [])
