"""Stage 1 — pull: decide the training mode and materialize the data windows.

The windows are those of :mod:`retrainflow.core.windows`: for a run whose data
ends at ``window_end`` (exclusive), the held-out *future* data is the last
``evaluation.holdout_days`` days and the training rows end where it starts —
stateless: the ``training.window_days`` before; warm start: the days after the
champion's data end, plus an optional replay sample of older rows.

The mode is resolved by :func:`retrainflow.core.modes.resolve_mode` (the same
function the trigger policy and the backtest call), here with everything it can
know: the request, the champion, the rows since the champion's data end and the
schema verdict.

Every read goes through the data contract (:mod:`retrainflow.data.contract`):
a window that breaks it stops the run here, before training, with a saved report.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from retrainflow.artifacts import ArtifactStore, StageDir
from retrainflow.core import training, windows
from retrainflow.core.modes import ChampionFacts, Mode, resolve_mode
from retrainflow.core.schema import schema_diff, schema_of
from retrainflow.data.contract import ContractReader
from retrainflow.data.sources import fingerprint, make_source
from retrainflow.exceptions import (
    CorruptDataError,
    DataContractError,
    DataError,
    EmptyWindowError,
    ModeError,
    UserError,
)
from retrainflow.manifest import DatasetRef, PullManifest, RunContext

if TYPE_CHECKING:
    import pandas as pd

    from retrainflow.config import PipelineConfig
    from retrainflow.registry import Registry, VersionInfo

log = logging.getLogger(__name__)
STAGE = "pull"


def champion_facts(champion: VersionInfo | None) -> ChampionFacts | None:
    """What the mode decision needs from a registered champion."""
    if champion is None:
        return None
    return ChampionFacts.from_tags(champion.version, champion.tags, champion.schema)


def _failure(stage_dir: StageDir, exc: UserError, context: dict[str, Any]) -> UserError:
    """Save a report for a data or mode error and return the error carrying its path."""
    path = stage_dir.write_json(
        "report.json", {"success": False, "error": exc.to_dict(), **context}
    )
    details = {k: v for k, v in exc.details.items() if k != "report_uri"}
    if isinstance(exc, DataError):
        return type(exc)(exc.message, report_uri=str(path), **details)
    return type(exc)(f"{exc.message} (report: {path})", report_uri=str(path), **details)


def newest_window_end(config: PipelineConfig) -> date:
    """The exclusive window end of a run "up to the newest data": the day after the newest
    day (partition) in the pipeline's source.

    Raises:
        EmptyWindowError: the source holds no data, naming the pipeline and the source.
    """
    source = make_source(config)
    days = source.partitions()
    if not days:
        raise EmptyWindowError(
            f"'{config.name}' has no data in its source {source.uri}: a run without a window "
            "end trains up to the newest data, and there is none. Load data first, or pass a "
            "window end."
        )
    return days[-1] + timedelta(days=1)


def run(
    config: PipelineConfig,
    context: RunContext,
    *,
    registry: Registry,
    store: ArtifactStore | None = None,
) -> PullManifest:
    """Resolve the mode, read the windows and write them as Parquet.

    Returns:
        A manifest with the URIs, row counts, time ranges and fingerprints.

    Raises:
        ModeError: the requested mode cannot be honoured.
        EmptyWindowError: no training or holdout rows (report saved).
        CorruptDataError: a partition cannot be read (report saved).
        DataContractError: the data breaks the contract (report saved).
    """
    store = store or ArtifactStore(config.artifact_root_uri())
    out = store.stage(config.name, context.run_id, STAGE)
    held = windows.holdout(date.fromisoformat(context.window_end), config.evaluation.holdout_days)
    champion = registry.champion(config.registered_model_name)
    facts = champion_facts(champion)
    source = make_source(config)
    reader = ContractReader(source, config)
    report: dict[str, Any] = {
        "pipeline": config.name,
        "run_id": context.run_id,
        "window_end": context.window_end,
        "window_end_from": context.window_end_from,
        "source": source.uri,
        "requested_mode": context.requested_mode,
    }

    try:
        holdout = reader.read_window(held.start, held.end, "holdout")
        new = None
        if (
            context.requested_mode != Mode.STATELESS
            and facts is not None
            and facts.data_end is not None
            and facts.data_end < held.start
        ):
            new = reader.read_window(facts.data_end, held.start, "new")
        change = schema_diff(
            facts.schema if facts else None,
            schema_of(new if new is not None and len(new) else holdout),
        )
        decision = resolve_mode(
            config,
            context.requested_mode,
            facts,
            train_end=held.start,
            new_rows=None if new is None else len(new),
            schema_change=change,
        )
        if decision.mode == Mode.WARM_START:
            assert facts is not None and facts.data_end is not None and new is not None
            window = windows.warm_start(facts.data_end, held.start)
            train, replay_rows = _with_replay(config, reader, new, facts.data_end)
            new_rows = len(new)
        else:
            window = windows.stateless(held.start, config.training.window_days)
            train = reader.read_window(window.start, window.end, "training")
            new_rows, replay_rows = len(train), 0
        schema = schema_of(train if len(train) else holdout)
        if len(train) == 0:
            raise EmptyWindowError(
                f"The training window {window} of '{config.name}' holds no rows "
                f"in {source.uri} (mode {decision.mode}). Seed or load data for these days, "
                "or pick a later date."
            )
        if len(holdout) == 0:
            raise EmptyWindowError(
                f"The holdout window {held} of '{config.name}' holds no rows in "
                f"{source.uri}: there is no future data to evaluate on. Pick a window end whose "
                f"last {config.evaluation.holdout_days} days have data."
            )
        reader.check_training_labels(train, window)
    except (EmptyWindowError, CorruptDataError, DataContractError, ModeError) as exc:
        raise _failure(out, exc, {**report, "contract": reader.report()}) from None

    train, holdout = _storable(train), _storable(holdout)
    train_ref = DatasetRef(
        uri=str(out.write_parquet("train.parquet", train)),
        rows=len(train),
        start=window.start.isoformat(),
        end=window.end.isoformat(),
        fingerprint=fingerprint(train),
    )
    holdout_ref = DatasetRef(
        uri=str(out.write_parquet("holdout.parquet", holdout)),
        rows=len(holdout),
        start=held.start.isoformat(),
        end=held.end.isoformat(),
        fingerprint=fingerprint(holdout),
    )
    since_full = 0
    if decision.mode == Mode.WARM_START and facts is not None:
        since_full = facts.warm_starts_since_full + 1
    manifest = PullManifest(
        context=context,
        mode=str(decision.mode),
        mode_reason=decision.reason,
        parent_version=champion.version if champion else None,
        train=train_ref,
        holdout=holdout_ref,
        new_rows=new_rows,
        replay_rows=replay_rows,
        schema=schema,
        schema_change=change,
        warm_starts_since_full=since_full,
        source_uri=source.uri,
        report_uri=str(out.file("report.json")),
        contract=reader.report(),
    )
    out.write_json("report.json", {"success": True, **report, **manifest.to_dict()})
    out.write_json("manifest.json", manifest.to_dict())
    log.info(
        "pull %s: mode=%s (%s), train=%d rows %s, holdout=%d rows",
        config.name,
        decision.mode,
        decision.reason,
        len(train),
        window,
        len(holdout),
    )
    return manifest


def _storable(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with object columns that mix Python types written as strings.

    A column retyped in some partitions (floats in older days, strings in newer
    ones) concatenates into an object column that Parquet cannot store; as
    strings it can be stored, and validation then reports the column's type.
    """
    import pandas as pd

    out = frame
    for col in frame.select_dtypes(include="object").columns:
        if frame[col].dropna().map(type).nunique() > 1:
            if out is frame:
                out = frame.copy()
            out[col] = frame[col].map(lambda v: v if pd.isna(v) else str(v))
    return out


def _with_replay(
    config: PipelineConfig, reader: ContractReader, new: pd.DataFrame, parent_end: date
) -> tuple[pd.DataFrame, int]:
    """The new rows plus the replay sample of older rows; returns (frame, replay rows)."""
    import pandas as pd

    ws = config.training.warm_start
    n = training.replay_size(len(new), ws.replay_fraction)
    if not n:
        return new, 0
    older_days = windows.replay(parent_end, ws.replay_days)
    older = reader.read_window(older_days.start, older_days.end, "replay")
    replay = training.replay_sample(older, n, config.training.random_seed)
    if not len(replay):
        return new, 0
    return pd.concat([replay, new], ignore_index=True), len(replay)
