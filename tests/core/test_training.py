"""The fit sequence of retrainflow.core.training on raw rows."""

from __future__ import annotations

import logging
from datetime import date

from retrainflow.core import training
from retrainflow.data.synthetic import make_synthetic


def test_a_warm_start_on_too_few_rows_for_a_leaf_says_it_added_nothing(helpers, caplog) -> None:
    """The issue-8 trial: with one row a day, weekly ``append`` warm starts added no tree,
    silently, and were reported as retrains."""
    cfg = helpers.config_with(
        {
            "training.params": {
                "n_estimators": 5,
                "min_child_samples": 20,
                "num_threads": 1,
                "verbosity": -1,
            }
        }
    )
    rows = make_synthetic(date(2023, 1, 1), days=10, rows_per_day=100, drift_day=None, seed=1)
    parent = training.train_model(cfg, rows)
    few = rows.tail(7)
    with caplog.at_level(logging.WARNING, logger="retrainflow.core.training"):
        child = training.train_model(cfg, few, parent, method="append")
    assert training.trees_added(parent, child) == 0
    assert "added no tree: 7 rows are too few for a leaf" in caplog.text
    enough = training.train_model(cfg, rows.tail(500), parent, method="append")
    assert training.trees_added(parent, enough) == cfg.training.warm_start.num_boost_round
