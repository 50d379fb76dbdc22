"""run_all end to end: a stateless run, its warm start, and retraining after the drift."""

from __future__ import annotations

import json

import pandas as pd

from retrainflow.core.metrics import compute_metrics
from retrainflow.manifest import (
    FeaturesManifest,
    PromoteManifest,
    PullManifest,
    TrainManifest,
    ValidateManifest,
)
from retrainflow.pipeline import run_all
from retrainflow.registry import Registry
from retrainflow.stages.train import load_model

STAGES = ("pull", "validate", "features", "train", "evaluate", "promote")


def test_stateless_then_warm_start(trained) -> None:
    first, second = trained.stateless, trained.warm
    assert first.summary() == {
        "version": "1",
        "mode": "stateless",
        "parent": None,
        "rows": 12000,
        "roc_auc": first.verdict.challenger["roc_auc"],
        "champion_roc_auc": None,
        "gate_passed": True,
        "promoted": True,
        "champion": "1",
    }
    assert first.verdict.challenger["roc_auc"] > 0.8
    s = second.summary()
    assert (s["version"], s["mode"], s["parent"], s["rows"]) == ("2", "warm_start", "1", 3360)
    assert s["champion_roc_auc"] == second.verdict.champion["roc_auc"] > 0.8
    assert s["champion"] == ("2" if s["gate_passed"] else "1")
    for result in (first, second):
        assert set(result.seconds) == set(STAGES)
        assert all(v >= 0 for v in result.seconds.values())
    assert second.validate.success and second.validate.warnings == []


def test_every_stage_leaves_its_artifacts(trained) -> None:
    run_dir = trained.run_dir("base-warm")
    manifests = {
        "pull": PullManifest,
        "validate": ValidateManifest,
        "features": FeaturesManifest,
        "train": TrainManifest,
        "promote": PromoteManifest,
    }
    for stage, cls in manifests.items():
        data = json.loads((run_dir / stage / "manifest.json").read_text())
        assert cls.from_dict(data) == getattr(trained.warm, stage), stage
    assert json.loads((run_dir / "evaluate" / "verdict.json").read_text())["rows"] == 2000
    for name in (
        "pull/train.parquet",
        "pull/holdout.parquet",
        "pull/report.json",
        "validate/report.json",
        "features/transformer.pkl",
        "features/train.parquet",
        "train/model.pkl",
    ):
        assert (run_dir / name).is_file(), name
    assert json.loads((run_dir / "validate" / "report.json").read_text())["success"] is True


def test_retraining_after_drift_beats_the_static_model(trained_fork, helpers) -> None:
    """Drift at day 60 (2023-03-02): a stateless model on the newest 30 days wins on the
    post-drift holdout against version 1, fitted on January data and never retrained."""
    run = run_all(trained_fork.config, helpers.context("post-drift", "2023-03-20", "stateless"))
    assert run.pull.holdout.start == "2023-03-15"  # entirely after the drift
    v = run.verdict
    assert v.champion_version == "1"  # the static pre-drift model
    static = Registry().load_model("synthetic", "1")
    holdout = pd.read_parquet(run.pull.holdout.uri)
    y = holdout["label"].to_numpy()
    static_auc = compute_metrics("binary_classification", y, static.predict(holdout))["roc_auc"]
    fresh_auc = compute_metrics("binary_classification", y, load_model(run.train).predict(holdout))[
        "roc_auc"
    ]
    assert v.champion["roc_auc"] == static_auc and v.challenger["roc_auc"] == fresh_auc
    # the static model has degraded a lot; retraining recovers
    assert static_auc < trained_fork.stateless.verdict.challenger["roc_auc"] - 0.1
    assert fresh_auc > static_auc + 0.1
    assert v.passed and run.promote.champion
    assert Registry().champion("synthetic").version == run.promote.version
