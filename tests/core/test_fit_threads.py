"""Threads per LightGBM fit (``training.params.num_threads``: a number or ``auto``) and
OpenMP's wait policy (issue 10: fits that do not slow down under contention)."""

from __future__ import annotations

import os
import sys
from datetime import date
from pathlib import Path

import pytest

from retrainflow.core import training
from retrainflow.core.training import MIN_ROWS_PER_THREAD, choose_threads
from retrainflow.data.synthetic import make_synthetic
from retrainflow.exceptions import ConfigError

BIG = 10 * MIN_ROWS_PER_THREAD

# -- the pure policy ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "cpus", "busy", "threads"),
    [
        (BIG, 2, 1.0, 2),  # only this fit runs: both CPUs
        (BIG, 2, None, 2),  # load unknown: taken as idle
        (BIG, 2, 1.4, 2),  # a daemon's 0.4 of a CPU rounds away
        (BIG, 2, 1.6, 1),  # 0.6 of a CPU taken: one idle
        (BIG, 2, 3.0, 1),  # both CPUs busy elsewhere: never fewer than one
        (BIG, 2, 12.0, 1),
        (BIG, 8, 3.4, 6),  # 2.4 CPUs busy elsewhere
        (BIG, 8, 0.0, 8),  # busy below this fit's own CPU: not more than the CPUs
        (BIG, 1, 1.0, 1),
        (MIN_ROWS_PER_THREAD - 1, 8, 1.0, 1),  # small fit: one thread
        (2 * MIN_ROWS_PER_THREAD, 8, 1.0, 2),
        (3 * MIN_ROWS_PER_THREAD + 7, 8, 1.0, 3),
        (3 * MIN_ROWS_PER_THREAD, 8, 7.0, 2),  # the fewer of idle CPUs and rows
        (0, 2, 1.0, 1),
    ],
)
def test_auto_takes_the_idle_cpus_and_one_thread_per_slice_of_rows(
    rows: int, cpus: int, busy: float | None, threads: int
) -> None:
    chosen, reason = choose_threads("auto", rows=rows, cpus=cpus, busy=busy)
    assert chosen == threads
    assert reason.startswith(f"auto: {cpus} CPUs, ")


def test_the_reason_says_what_was_seen_and_what_limited_the_threads() -> None:
    _, reason = choose_threads("auto", rows=BIG, cpus=2, busy=2.7)
    assert reason == "auto: 2 CPUs, 2.7 busy (this fit included), 0 idle"
    _, reason = choose_threads("auto", rows=30_000, cpus=2, busy=None)
    assert reason == (
        f"auto: 2 CPUs, unknown load, 2 idle, 30,000 rows < {2 * MIN_ROWS_PER_THREAD:,} "
        "for another thread"
    )


@pytest.mark.parametrize("setting", [1, 2, 4, 0])
def test_a_configured_number_is_used_whatever_the_load(setting: int) -> None:
    assert choose_threads(setting, rows=10, cpus=2, busy=9.0) == (
        setting,
        f"configured (training.params.num_threads: {setting})",
    )


# -- the choice for a config, and what LightGBM gets ------------------------------------------------


def _lgb(helpers, threads):  # type: ignore[no-untyped-def]
    params = {"n_estimators": 5, "num_leaves": 7, "verbosity": -1}
    if threads is not None:
        params["num_threads"] = threads
    return helpers.config_with({"training.params": params})


def test_fit_threads_reads_the_load_only_for_auto(helpers, monkeypatch) -> None:
    seen = []

    def busy() -> tuple[float, tuple[float, ...]]:
        seen.append(1)
        return 1.7, (1.2, 0.9, 0.5)

    monkeypatch.setattr(training, "busy_cpus", busy)
    monkeypatch.setattr(training, "usable_cpus", lambda: 4)
    choice = training.fit_threads(_lgb(helpers, "auto"), BIG)
    assert (choice.threads, choice.cpus, choice.busy, choice.load_average) == (
        3,
        4,
        1.7,
        (1.2, 0.9, 0.5),
    )
    assert choice.reason.startswith("auto: 4 CPUs, 1.7 busy") and seen == [1]
    assert choice.omp_wait_policy  # PASSIVE, or whatever LightGBM was loaded with
    fixed = training.fit_threads(_lgb(helpers, 2), BIG)
    assert (fixed.threads, fixed.busy, fixed.load_average) == (2, None, ())
    assert fixed.reason == "configured (training.params.num_threads: 2)" and seen == [1]
    default = training.fit_threads(_lgb(helpers, None), BIG)
    assert default.threads == 1  # LightGBM's default here is one thread, as before
    sgd = training.fit_threads(
        helpers.config_with({"training.estimator": "sgd", "training.params": {}}), BIG
    )
    assert sgd.threads is None and sgd.reason == "not LightGBM (sgd)"


def test_busy_cpus_counts_this_process() -> None:
    busy, load = training.busy_cpus(samples=2, interval=0.001)
    if sys.platform.startswith("linux"):
        assert busy is not None and busy >= 1  # this process is running
        assert len(load) == 3


def test_lightgbm_params_take_the_chosen_threads(helpers) -> None:
    params, rounds = training.lightgbm_params(_lgb(helpers, "auto"), 3)
    assert params["num_threads"] == 3 and rounds == 5
    # without a choice, "auto" never reaches LightGBM
    assert training.lightgbm_params(_lgb(helpers, "auto"))[0]["num_threads"] == 1
    assert training.lightgbm_params(_lgb(helpers, 2))[0]["num_threads"] == 2


def test_fits_and_refits_use_the_choice(helpers) -> None:
    cfg = _lgb(helpers, "auto")
    raw = make_synthetic(date(2023, 1, 1), days=5, rows_per_day=200, drift_day=None, seed=1)
    tf, X = training.prepare_features(cfg, raw)
    y = training.targets(cfg, raw)
    cat = list(tf.categorical_features_)
    two = training.ThreadChoice(2, "test", "PASSIVE", 2)
    booster = training.fit_estimator(cfg, X, y, cat, threads=two)
    assert booster.params["num_threads"] == 2
    one = training.ThreadChoice(1, "test", "PASSIVE", 2)
    for method in ("refit", "refit_append", "append", "bounded"):
        child = training.continue_estimator(
            cfg, booster, X, y, cat, method=method, threads=one, max_trees=6
        )
        assert child.params["num_threads"] == 1, method
    assert booster.params["num_threads"] == 2  # the parent is untouched
    # no choice given: made for these 1,000 rows (auto: one thread, whatever the load)
    assert training.fit_estimator(cfg, X, y, cat).params["num_threads"] == 1


# -- OpenMP's wait policy -------------------------------------------------------------------------


def test_prepare_openmp_sets_passive_only_before_lightgbm_loads(monkeypatch) -> None:
    monkeypatch.setenv("OMP_WAIT_POLICY", "recorded-for-undo")
    monkeypatch.delenv("OMP_WAIT_POLICY")
    import lightgbm  # noqa: F401

    # loaded already: too late to change anything, and the record says what it runs with
    assert training.prepare_openmp() == "default"
    assert "OMP_WAIT_POLICY" not in os.environ
    monkeypatch.setenv("OMP_WAIT_POLICY", "active")
    assert training.prepare_openmp() == "ACTIVE"
    # not loaded yet: PASSIVE goes into the environment, an operator's value wins
    monkeypatch.delitem(sys.modules, "lightgbm")
    assert training.prepare_openmp() == "ACTIVE"
    monkeypatch.delenv("OMP_WAIT_POLICY")
    assert training.prepare_openmp() == "PASSIVE"
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"


# -- the setting in YAML ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["auto", 1, 2, 0])
def test_num_threads_accepts_auto_and_whole_numbers(helpers, value) -> None:  # type: ignore[no-untyped-def]
    assert _lgb(helpers, value).training.params["num_threads"] == value


@pytest.mark.parametrize("value", ["two", "Auto", -1, 1.5, True])
def test_a_wrong_num_threads_names_the_field_and_the_choices(helpers, value) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as err:
        _lgb(helpers, value)
    assert err.value.field == "training.params.num_threads"
    assert "must be 'auto' (as many threads as idle CPUs, per fit) or a whole number" in str(
        err.value
    )
    assert f"got {value!r}" in str(err.value)


def test_the_shipped_pipelines_load_with_their_thread_settings() -> None:
    from retrainflow.config import load_config, with_fit_threads

    repo = Path(__file__).resolve().parents[2]
    for name in ("flights", "flights3m"):
        cfg = load_config(repo / "config" / "pipelines" / f"{name}.yaml")
        assert cfg.training.params["num_threads"] in ("auto", 1, 2)
        # the analyses still force one thread per fit
        assert training.fit_threads(with_fit_threads(cfg, 1), BIG).threads == 1
