"""Stage 1 — pull: mode resolution, window bounds, warm-start reads, schema changes."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from retrainflow.data.sources import ParquetLakeSource, days_between, fingerprint, make_source
from retrainflow.exceptions import ModeError, PartitionSchemaError, ValidationFailedError
from retrainflow.manifest import PullManifest
from retrainflow.registry import Registry
from retrainflow.stages import pull, validate

D = date.fromisoformat


def _ts(uri: str) -> pd.Series:
    return pd.read_parquet(uri)["ts"]


# -- stateless windows ----------------------------------------------------------------------


def test_stateless_window_bounds(trained) -> None:
    p = trained.stateless.pull
    cfg = trained.config
    end = D(p.context.window_end)
    holdout_start = end - timedelta(days=cfg.evaluation.holdout_days)
    train_start = holdout_start - timedelta(days=cfg.training.window_days)
    assert (p.mode, p.mode_reason, p.parent_version) == ("stateless", "requested", None)
    assert (p.train.start, p.train.end) == (train_start.isoformat(), holdout_start.isoformat())
    assert (p.holdout.start, p.holdout.end) == (holdout_start.isoformat(), end.isoformat())
    assert (p.train.start, p.train.end, p.holdout.end) == ("2023-01-11", "2023-02-10", "2023-02-15")

    train_ts, holdout_ts = _ts(p.train.uri), _ts(p.holdout.uri)
    assert train_ts.min() >= pd.Timestamp(train_start)
    assert train_ts.max() < pd.Timestamp(holdout_start)
    assert holdout_ts.min() >= pd.Timestamp(holdout_start)
    assert holdout_ts.max() < pd.Timestamp(end)
    assert train_ts.max() < holdout_ts.min()  # no overlap: the holdout is the future
    # every row of every day of the windows, 400 a day
    assert p.train.rows == len(train_ts) == 400 * cfg.training.window_days == p.new_rows
    assert p.holdout.rows == len(holdout_ts) == 400 * cfg.evaluation.holdout_days
    assert p.replay_rows == 0 and p.warm_starts_since_full == 0


def test_report_and_manifest_written(trained) -> None:
    p = trained.stateless.pull
    report = json.loads(Path(p.report_uri).read_text())
    assert report["success"] is True
    assert report["mode"] == "stateless"
    on_disk = json.loads((trained.run_dir("base-stateless") / "pull" / "manifest.json").read_text())
    assert PullManifest.from_dict(on_disk) == p


# -- warm start -------------------------------------------------------------------------------


def test_warm_start_reads_only_new_rows_plus_replay(trained) -> None:
    cfg, parent, p = trained.config, trained.stateless, trained.warm.pull
    ws = cfg.training.warm_start
    parent_end = D(parent.pull.train.end)  # the parent's data_end
    holdout_start = D(p.holdout.start)
    assert (p.mode, p.mode_reason, p.parent_version) == (
        "warm_start",
        "champion available (warm start 1 of 2)",
        "1",
    )
    assert (p.train.start, p.train.end) == (parent_end.isoformat(), holdout_start.isoformat())
    assert p.warm_starts_since_full == 1

    lake = make_source(cfg)
    new_days = days_between(parent_end, holdout_start)
    expected_new = lake.read_days(new_days)
    assert p.new_rows == len(expected_new) == 400 * len(new_days)
    assert p.replay_rows == round(p.new_rows * ws.replay_fraction) == 560
    assert p.train.rows == p.new_rows + p.replay_rows

    frame = pd.read_parquet(p.train.uri)
    is_new = frame["ts"] >= pd.Timestamp(parent_end)
    assert is_new.sum() == p.new_rows
    assert frame["ts"].max() < pd.Timestamp(holdout_start)
    # the new rows are exactly the lake's rows of the new days
    new = frame[is_new].sort_values("ts").reset_index(drop=True)
    pd.testing.assert_frame_equal(new, expected_new.sort_values("ts").reset_index(drop=True))
    # the replay rows are older rows from [parent_end - replay_days, parent_end), none repeated
    replay = frame[~is_new]
    assert len(replay) == p.replay_rows
    assert replay["ts"].min() >= pd.Timestamp(parent_end - timedelta(days=ws.replay_days))
    assert not replay.duplicated().any()


def test_explicit_warm_start_without_champion_is_a_mode_error(seeded, helpers) -> None:
    with pytest.raises(ModeError, match="needs a champion"):
        pull.run(
            seeded, helpers.context("ws-none", "2023-02-15", "warm_start"), registry=Registry()
        )


def test_auto_without_champion_is_stateless(seeded, helpers) -> None:
    p = pull.run(seeded, helpers.context("auto-none", "2023-02-15"), registry=Registry())
    assert (p.mode, p.mode_reason, p.parent_version) == ("stateless", "no champion yet", None)
    assert p.train.start == "2023-01-11"


def test_auto_is_stateless_after_max_warm_starts(trained_fork, helpers) -> None:
    cfg = trained_fork.config
    assert cfg.training.warm_start.max_warm_starts == 2
    registry = Registry()
    registry.set_tags("synthetic", "1", {"warm_starts_since_full": "2"})
    p = pull.run(cfg, helpers.context("after-max", "2023-03-01"), registry=registry)
    assert p.mode == "stateless"
    assert "2 warm starts since the last full fit (max 2)" in p.mode_reason
    assert p.warm_starts_since_full == 0
    assert p.parent_version == "1"  # the champion it compared against


# -- schema changes ---------------------------------------------------------------------------

NEW_DAYS = days_between(D("2023-02-10"), D("2023-03-01"))  # after the champion's data end


@pytest.mark.parametrize("requested", ["auto", "warm_start"])
def test_added_column_forces_stateless(trained_fork, helpers, requested) -> None:
    lake = trained_fork.paths.lake / "synthetic"
    helpers.rewrite_days(lake, NEW_DAYS, lambda f: f.assign(x5=f["x1"] * 2))
    cfg = helpers.config_with({"expectations.allow_extra_columns": True})
    p = pull.run(
        cfg, helpers.context(f"schema-{requested}", "2023-03-01", requested), registry=Registry()
    )
    assert p.mode == "stateless"
    assert "schema changed vs champion 1" in p.mode_reason
    assert p.schema_change == {"added": ["x5"], "removed": [], "retyped": {}}
    assert p.train.start == "2023-01-25"  # a full stateless window
    # allow_extra_columns: validation lets the change through, with a warning
    v = validate.run(cfg, p)
    assert v.success
    assert any("schema changed" in w for w in v.warnings)


def test_retyped_column_forces_stateless(trained_fork, helpers) -> None:
    lake = trained_fork.paths.lake / "synthetic"
    as_str = lambda f: f.assign(x1=f["x1"].map("{:.3f}".format))  # noqa: E731
    helpers.rewrite_days(lake, NEW_DAYS, as_str)
    # the stateless window would mix float (older days) and str (newer days) values of x1:
    # a schema change between partitions, refused by the data contract at pull
    with pytest.raises(PartitionSchemaError, match=r"column 'x1' is number in date=2023-01-25"):
        pull.run(trained_fork.config, helpers.context("mixed", "2023-03-01"), registry=Registry())
    # with the whole window retyped, the run is stateless, and validation names the column
    helpers.rewrite_days(lake, days_between(D("2023-01-25"), D("2023-02-10")), as_str)
    p = pull.run(trained_fork.config, helpers.context("retyped", "2023-03-01"), registry=Registry())
    assert p.mode == "stateless"
    assert "schema changed" in p.mode_reason
    assert p.schema_change["retyped"] == {"x1": ["float64", "object"]}
    assert pd.read_parquet(p.train.uri)["x1"].map(type).eq(str).all()
    with pytest.raises(ValidationFailedError, match="column 'x1' has dtype object"):
        validate.run(trained_fork.config, p)


def test_same_schema_keeps_warm_start(trained, helpers) -> None:
    p = pull.run(trained.config, helpers.context("same-schema", "2023-03-01"), registry=Registry())
    assert p.mode == "warm_start" and p.schema_change is None


# -- fingerprints and manifests -------------------------------------------------------------


def test_fingerprint_stable_for_same_data(trained, helpers) -> None:
    again = pull.run(
        trained.config, helpers.context("again", "2023-02-15", "stateless"), registry=Registry()
    )
    base = trained.stateless.pull
    assert again.train.fingerprint == base.train.fingerprint
    assert again.holdout.fingerprint == base.holdout.fingerprint
    assert again.train.fingerprint != base.holdout.fingerprint
    later = pull.run(
        trained.config, helpers.context("later", "2023-02-16", "stateless"), registry=Registry()
    )
    assert later.train.fingerprint != base.train.fingerprint


def test_fingerprint_sees_any_change(trained) -> None:
    frame = pd.read_parquet(trained.stateless.pull.holdout.uri)
    fp = fingerprint(frame)
    assert fingerprint(frame.copy()) == fp
    changed = frame.copy()
    changed.loc[3, "x2"] += 1e-9
    assert fingerprint(changed) != fp
    assert fingerprint(frame.rename(columns={"x2": "x9"})) != fp
    assert fingerprint(frame.astype({"label": "float64"})) != fp
    assert fingerprint(frame.iloc[:-1]) != fp


def test_fingerprint_of_lake_data_is_stable_across_reads(trained) -> None:
    source = ParquetLakeSource(trained.paths.lake / "synthetic", "ts")
    days = [D("2023-02-01"), D("2023-02-02")]
    assert fingerprint(source.read_days(days)) == fingerprint(source.read_days(days))


@pytest.mark.parametrize("which", ["stateless", "warm"])
def test_manifest_round_trips(trained, which) -> None:
    p = getattr(trained, which).pull
    data = p.to_dict()
    assert PullManifest.from_dict(data) == p
    assert PullManifest.from_dict(json.loads(json.dumps(data))) == p
    assert data["context"]["window_end"] == p.context.window_end


def test_auto_falls_back_to_stateless_when_too_few_new_rows_for_a_warm_start(
    trained_fork, helpers
) -> None:
    """One new day (400 rows) is below min_rows once min_rows asks for more: auto refits fully."""
    from retrainflow.registry import Registry
    from retrainflow.stages import pull

    champion = Registry().champion("synthetic")
    data_end = date.fromisoformat(champion.data_end)
    cfg = helpers.config_with({"expectations.min_rows": 1000})
    end = data_end + timedelta(days=1 + cfg.evaluation.holdout_days)  # exactly one new day
    auto = pull.run(cfg, helpers.context("few-new", end.isoformat(), "auto"), registry=Registry())
    assert auto.mode == "stateless" and "min_rows" in auto.mode_reason
    assert (
        auto.train.start
        == (
            end - timedelta(days=cfg.evaluation.holdout_days + cfg.training.window_days)
        ).isoformat()
    )
    explicit = pull.run(
        cfg, helpers.context("few-new-ws", end.isoformat(), "warm_start"), registry=Registry()
    )
    assert (
        explicit.mode == "warm_start" and explicit.new_rows == 400
    )  # asked for: validation will judge


# -- a window that ends before the champion's data (issue 7, finding 2) ------------------------


def test_auto_with_window_before_champion_data_end_falls_back_to_stateless(
    trained, helpers
) -> None:
    """Was: ``[empty_window] The training window [2023-02-17, 2023-02-16) ...`` (inverted)."""
    data_end = D(Registry().champion("synthetic").data_end)
    cfg = trained.config
    end = data_end + timedelta(days=cfg.evaluation.holdout_days - 1)  # holdout starts a day early
    p = pull.run(cfg, helpers.context("before-champ", end.isoformat(), "auto"), registry=Registry())
    assert p.mode == "stateless"
    assert data_end.isoformat() in p.mode_reason and "nothing new" in p.mode_reason
    train_end = data_end - timedelta(days=1)
    start = train_end - timedelta(days=cfg.training.window_days)
    assert (p.train.start, p.train.end) == (start.isoformat(), train_end.isoformat())
    assert p.train.rows > 0


@pytest.mark.parametrize("days_early", [0, 1])
def test_warm_start_with_window_not_after_champion_data_end_is_refused(
    trained, helpers, days_early
) -> None:
    data_end = D(Registry().champion("synthetic").data_end)
    end = data_end + timedelta(days=trained.config.evaluation.holdout_days - days_early)
    with pytest.raises(ModeError, match=rf"trained on data up to {data_end} \(exclusive\)") as info:
        pull.run(
            trained.config,
            helpers.context(f"ws-before-{days_early}", end.isoformat(), "warm_start"),
            registry=Registry(),
        )
    report = json.loads(Path(info.value.details["report_uri"]).read_text())  # a saved report
    assert report["success"] is False and report["error"]["code"] == "invalid_mode"
    assert str(data_end) in report["error"]["message"]
    assert not (trained.run_dir(f"ws-before-{days_early}") / "pull" / "train.parquet").exists()


# -- a run without a window end: up to the newest data ----------------------------------------


def test_newest_window_end_is_the_day_after_the_newest_partition(seeded) -> None:
    days = make_source(seeded).partitions()
    assert pull.newest_window_end(seeded) == days[-1] + timedelta(days=1) == D("2023-05-01")


def test_an_empty_source_is_a_clear_error_naming_pipeline_and_source(synthetic_cfg) -> None:
    from retrainflow.exceptions import EmptyWindowError

    uri = make_source(synthetic_cfg).uri
    with pytest.raises(EmptyWindowError) as err:
        pull.newest_window_end(synthetic_cfg)
    assert f"'synthetic' has no data in its source {uri}" in err.value.message


def _newest() -> date:
    return D("2023-05-01")


def _never() -> date:
    raise AssertionError("the newest data must not be looked up")


@pytest.mark.parametrize(
    ("conf", "run_type", "newest", "expected"),
    [
        ({}, "manual", _newest, ("2023-05-01", "newest_data")),  # the UI's empty form, REST
        ({"window_end": ""}, None, _newest, ("2023-05-01", "newest_data")),  # the CLI
        ({}, "scheduled", _never, ("2026-03-04", "logical_date")),  # the schedule keeps its date
        ({}, "backfill", _never, ("2026-03-04", "logical_date")),
        ({"window_end": "2023-02-15"}, "manual", _never, ("2023-02-15", "request")),
        ({}, "manual", None, ("2026-03-04", "logical_date")),  # no source given: as before
    ],
)
def test_the_window_end_rule(conf, run_type, newest, expected) -> None:
    from datetime import UTC, datetime

    from retrainflow.runs import build_context

    ctx = build_context(
        "synthetic",
        "auto",
        conf,
        run_id="r",
        fallback_end=datetime(2026, 3, 4, 10, 0, tzinfo=UTC),
        run_type=run_type,
        newest_end=newest,
    )
    assert (ctx.window_end, ctx.window_end_from) == expected


def test_the_run_type_of_either_airflow_enum_counts() -> None:
    from datetime import UTC, datetime

    from airflow.sdk.api.datamodels._generated import DagRunType as SdkRunType
    from airflow.utils.types import DagRunType

    from retrainflow.runs import build_context

    for run_type, how in [
        (SdkRunType.SCHEDULED, "logical_date"),
        (DagRunType.SCHEDULED, "logical_date"),
        (SdkRunType.MANUAL, "newest_data"),
        (DagRunType.MANUAL, "newest_data"),
    ]:
        ctx = build_context(
            "synthetic",
            "auto",
            None,
            run_id="r",
            fallback_end=datetime(2026, 3, 4, tzinfo=UTC),
            run_type=run_type,
            newest_end=_newest,
        )
        assert ctx.window_end_from == how, run_type


def test_a_manual_run_without_window_end_pulls_up_to_the_newest_data(seeded) -> None:
    from datetime import UTC, datetime

    from retrainflow.runs import build_context

    ctx = build_context(
        "synthetic",
        "stateless",
        {"reason": "form left empty"},
        run_id="manual-empty",
        fallback_end=datetime(2026, 3, 4, tzinfo=UTC),  # today: the lake has no data there
        run_type="manual",
        newest_end=lambda: pull.newest_window_end(seeded),
    )
    m = pull.run(seeded, ctx, registry=Registry())
    assert (m.context.window_end, m.context.window_end_from) == ("2023-05-01", "newest_data")
    assert m.holdout.end == "2023-05-01" and m.holdout.rows > 0
    report = json.loads(Path(m.report_uri).read_text())
    assert (report["window_end"], report["window_end_from"]) == ("2023-05-01", "newest_data")


def test_lineage_tags_record_how_the_window_end_was_chosen(trained) -> None:
    tags = Registry().get_version("synthetic", "1").tags
    assert tags["window_end_from"] == "request"
    assert tags["holdout_end"] == trained.stateless.pull.context.window_end
