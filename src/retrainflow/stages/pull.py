"""Stage 1 — pull: decide the training mode and materialize the data windows.

For a run whose data ends at ``window_end`` (exclusive) and a holdout of ``h``
days, the held-out *future* data is ``[window_end - h, window_end)``. Training
data comes strictly before it:

* **stateless**: ``[window_end - h - window_days, window_end - h)``;
* **warm start**: only the days after the parent (champion) model's data end,
  ``[parent.data_end, window_end - h)``, plus an optional replay sample of
  older rows from ``[parent.data_end - replay_days, parent.data_end)``.

The mode is resolved here, the one place that knows both the request and the
registry: ``auto`` means stateless when there is no champion, the champion
used another estimator, ``max_warm_starts`` warm starts have passed since the
last full fit, the data's schema differs from the champion's, or the new rows
since the champion are fewer than ``expectations.min_rows`` (a warm start on
them could not pass validation). A schema change forces stateless even when
warm start was asked for.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from retrainflow.artifacts import ArtifactStore, StageDir
from retrainflow.config import WARM_STARTABLE
from retrainflow.data.sources import fingerprint, make_source
from retrainflow.exceptions import CorruptDataError, DataError, EmptyWindowError, ModeError
from retrainflow.manifest import DatasetRef, PullManifest, RunContext

if TYPE_CHECKING:
    import pandas as pd

    from retrainflow.config import PipelineConfig
    from retrainflow.registry import Registry, VersionInfo

log = logging.getLogger(__name__)
STAGE = "pull"


def schema_of(frame: pd.DataFrame) -> dict[str, str]:
    """Column → dtype name; what 'the schema' means for change detection."""
    return {str(c): str(t) for c, t in frame.dtypes.items()}


def schema_diff(old: dict[str, str] | None, new: dict[str, str]) -> dict[str, Any] | None:
    """Added, removed and retyped columns, or None when the schemas match."""
    if old is None:
        return None
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    retyped = {c: [old[c], new[c]] for c in sorted(set(old) & set(new)) if old[c] != new[c]}
    if not (added or removed or retyped):
        return None
    return {"added": added, "removed": removed, "retyped": retyped}


def resolve_mode(config: PipelineConfig, requested: str, champion: VersionInfo | None) -> tuple[str, str]:
    """The mode to train in and why (before looking at the data).

    Raises:
        ModeError: warm start requested without a champion or with an
            estimator that cannot continue training.
    """
    estimator = config.training.estimator
    if requested == "stateless":
        return "stateless", "requested"
    if requested == "warm_start":
        if champion is None:
            raise ModeError(
                f"Warm start of '{config.name}' needs a champion to continue from, and there is "
                "none yet. Run a stateless retrain first (mode=stateless or auto)."
            )
        if estimator not in WARM_STARTABLE:
            raise ModeError(
                f"Estimator '{estimator}' cannot warm start; use one of {sorted(WARM_STARTABLE)}."
            )
        if champion.tags.get("estimator") != estimator:
            raise ModeError(
                f"The champion (version {champion.version}) is a '{champion.tags.get('estimator')}' "
                f"model; it cannot be continued as '{estimator}'. Run stateless."
            )
        return "warm_start", "requested"
    if requested != "auto":
        raise ModeError(f"Unknown mode '{requested}'; use stateless, warm_start or auto.")
    if champion is None:
        return "stateless", "no champion yet"
    if estimator not in WARM_STARTABLE:
        return "stateless", f"estimator '{estimator}' cannot warm start"
    if champion.tags.get("estimator") != estimator:
        return "stateless", "champion used another estimator"
    done = int(champion.tags.get("warm_starts_since_full", "0"))
    if done >= config.training.warm_start.max_warm_starts:
        return "stateless", f"{done} warm starts since the last full fit (max {config.training.warm_start.max_warm_starts})"
    return "warm_start", "champion available"


def _failure(stage_dir: StageDir, exc: DataError, context: dict[str, Any]) -> DataError:
    """Save a report for a data error and return the error carrying its path."""
    path = stage_dir.write_json("report.json", {"success": False, "error": exc.to_dict(), **context})
    return type(exc)(exc.message, report_uri=str(path), **{k: v for k, v in exc.details.items() if k != "report_uri"})


def run(config: PipelineConfig, context: RunContext, *, registry: Registry, store: ArtifactStore | None = None) -> PullManifest:
    """Resolve the mode, read the windows and write them as Parquet.

    Returns:
        A manifest with the URIs, row counts, time ranges and fingerprints.

    Raises:
        ModeError: the requested mode cannot be honoured.
        EmptyWindowError: no training or holdout rows (report saved).
        CorruptDataError: a partition cannot be read (report saved).
    """
    store = store or ArtifactStore(config.artifact_root_uri())
    out = store.stage(config.name, context.run_id, STAGE)
    end = date.fromisoformat(context.window_end)
    holdout_start = end - config.holdout
    champion = registry.champion(config.registered_model_name)
    mode, reason = resolve_mode(config, context.requested_mode, champion)
    source = make_source(config)
    report: dict[str, Any] = {"pipeline": config.name, "run_id": context.run_id,
                              "window_end": context.window_end, "source": source.uri,
                              "requested_mode": context.requested_mode}

    try:
        holdout = source.read_window(holdout_start, end)
        train, train_start, new_rows, replay_rows = _read_training(config, source, mode, champion, holdout_start)
        schema = schema_of(train if len(train) else holdout)
        change = schema_diff(champion.schema if champion else None, schema)
        fallback = None
        if change and mode == "warm_start":
            fallback = f"schema changed vs champion {champion.version}: {change}"  # type: ignore[union-attr]
        elif mode == "warm_start" and context.requested_mode == "auto" \
                and 0 < len(train) < config.expectations.min_rows:
            # auto picks what can work: too few new rows to pass min_rows -> a full refit.
            # (No new rows at all stays an empty-window error: a missing feed must not be hidden.)
            fallback = (f"only {len(train)} rows since the champion's data end "
                        f"(< expectations.min_rows {config.expectations.min_rows})")
        if fallback:
            mode, reason = "stateless", fallback
            train, train_start, new_rows, replay_rows = _read_training(config, source, mode, champion, holdout_start)
            schema = schema_of(train if len(train) else holdout)
        if len(train) == 0:
            raise EmptyWindowError(
                f"The training window [{train_start}, {holdout_start}) of '{config.name}' holds no rows "
                f"in {source.uri} (mode {mode}). Seed or load data for these days, or pick a later date."
            )
        if len(holdout) == 0:
            raise EmptyWindowError(
                f"The holdout window [{holdout_start}, {end}) of '{config.name}' holds no rows in "
                f"{source.uri}: there is no future data to evaluate on. Pick a window end whose "
                f"last {config.evaluation.holdout_days} days have data."
            )
    except (EmptyWindowError, CorruptDataError) as exc:
        raise _failure(out, exc, report) from None

    train, holdout = _storable(train), _storable(holdout)
    train_ref = DatasetRef(
        uri=str(out.write_parquet("train.parquet", train)), rows=len(train),
        start=train_start.isoformat(), end=holdout_start.isoformat(), fingerprint=fingerprint(train),
    )
    holdout_ref = DatasetRef(
        uri=str(out.write_parquet("holdout.parquet", holdout)), rows=len(holdout),
        start=holdout_start.isoformat(), end=end.isoformat(), fingerprint=fingerprint(holdout),
    )
    since_full = 0
    if mode == "warm_start" and champion is not None:
        since_full = int(champion.tags.get("warm_starts_since_full", "0")) + 1
    manifest = PullManifest(
        context=context, mode=mode, mode_reason=reason,
        parent_version=champion.version if champion else None,
        train=train_ref, holdout=holdout_ref, new_rows=new_rows, replay_rows=replay_rows,
        schema=schema, schema_change=change, warm_starts_since_full=since_full,
        source_uri=source.uri, report_uri=str(out.file("report.json")),
    )
    out.write_json("report.json", {"success": True, **report, **manifest.to_dict()})
    out.write_json("manifest.json", manifest.to_dict())
    log.info("pull %s: mode=%s (%s), train=%d rows [%s, %s), holdout=%d rows", config.name, mode,
             reason, len(train), train_start, holdout_start, len(holdout))
    return manifest


def _storable(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with object columns that mix Python types written as strings.

    A column retyped in some partitions (floats in older days, strings in newer
    ones) concatenates into an object column that Parquet cannot store; as
    strings it can be stored, and validation then reports the column's type.
    """
    import pandas as pd

    out = frame
    for col in frame.columns[frame.dtypes == object]:
        if frame[col].dropna().map(type).nunique() > 1:
            if out is frame:
                out = frame.copy()
            out[col] = frame[col].map(lambda v: v if pd.isna(v) else str(v))
    return out


def _read_training(config: PipelineConfig, source: Any, mode: str, champion: VersionInfo | None,
                   holdout_start: date) -> tuple[pd.DataFrame, date, int, int]:
    """(frame, window start, new rows, replay rows) for the resolved mode."""
    import pandas as pd

    if mode == "stateless":
        start = holdout_start - timedelta(days=config.training.window_days)
        frame = source.read_window(start, holdout_start)
        return frame, start, len(frame), 0
    assert champion is not None and champion.data_end
    parent_end = date.fromisoformat(champion.data_end)
    new = source.read_window(parent_end, holdout_start)
    ws = config.training.warm_start
    replay_n = round(len(new) * ws.replay_fraction)
    if replay_n and len(new):
        older = source.read_window(parent_end - timedelta(days=ws.replay_days), parent_end)
        if len(older):
            replay = older.sample(n=min(replay_n, len(older)), random_state=config.training.random_seed)
            frame = pd.concat([replay, new], ignore_index=True)
            return frame, parent_end, len(new), len(replay)
    return new, parent_end, len(new), 0
