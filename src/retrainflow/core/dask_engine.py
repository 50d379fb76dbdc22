"""``training.engine: dask`` — a stateless LightGBM fit on a Dask cluster.

The fit goes through LightGBM's own Dask interface on the cluster whose scheduler is
``$RETRAINFLOW_DASK_ADDRESS`` (:func:`retrainflow.settings.dask_address`), and comes back
as the same kind of object a local fit makes: a plain :class:`lightgbm.Booster`, which
:func:`retrainflow.core.training.assemble` packs with the pipeline's transformer. The
registered model has no Dask in it: ``models:/<name>@champion`` predicts from raw rows as
before, and a later warm start continues it locally like any other champion.

**The rows reach the workers as a Dask DataFrame whose partitions are groups of lake
partitions** (days of the pipeline's time column): at most :data:`CHUNKS_PER_WORKER` per
worker, each holding every k-th day of the window (:func:`strided_groups`), so that each
worker's rows span the whole window;

* in the ``train`` stage the workers read them themselves, in parallel: for engine
  ``dask`` the ``features`` stage writes the training matrix with one Parquet row group
  per lake partition (:func:`write_partitioned`) and each worker reads its groups' row
  groups itself (:func:`read_row_groups`, a local path or any URI pyarrow reads, e.g.
  ``s3://``); the train task reads only the file's footer. *Assumption:* every worker sees the artifact store at the path the train task
  sees (``$RETRAINFLOW_HOME/artifacts``: the shared volume that every Airflow worker
  already mounts, since one stage's task reads what another's wrote). A worker that
  cannot read it fails the fit with a :class:`~retrainflow.exceptions.DaskEngineError`
  naming the file. The workers read the stage's snapshot, not the lake: a model is fitted
  on the rows that ``pull`` read under the data contract (copies dropped, unlabelled rows
  excluded, times made naive) and ``validate`` checked, encoded by the transformer that
  ``features`` fitted on all of them — and the lake may have changed since;
* rows already in memory (backtest, freshness: :func:`~retrainflow.core.training.train_model`)
  are scattered to the workers one group at a time, balanced by rows.

**How LightGBM fits on them.** Data-parallel: each worker builds a LightGBM Dataset of
its own partitions and the histograms are summed over the network, so every tree sees
all rows. Each worker uses its own Dask threads (LightGBM's Dask interface sets
``num_threads`` to them; ``training.params.num_threads`` does not apply). The bins of each
feature are found on one worker's rows, so the model is close to, not identical with, the
local fit's. The estimator is ``DaskLGBMRegressor`` with the local fit's objective
(``binary`` or ``regression``) and parameters (:func:`~retrainflow.core.training.lightgbm_params`):
``DaskLGBMClassifier`` label-encodes each worker's labels separately (scikit-learn API),
which turns a worker's labels to 0 when its rows hold only class 1; on 0/1 labels the
binary objective is exactly what the local ``lightgbm.train`` fits.

**The network settings are removed from the result** (:func:`local_booster`): the fitted
booster remembers ``num_machines``, ``machines`` and ``tree_learner: data``, and a
``Booster.refit`` of it (warm start ``refit``/``bounded``) would try to reach the workers
again and wait for them until LightGBM's ``time_out`` (120 minutes).

**Bounds.** Reaching the scheduler, and its having a worker, each take at most
:data:`CONNECT_TIMEOUT_S`: an unreachable address is an error naming it, never a hang.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from retrainflow import settings
from retrainflow.exceptions import DaskEngineError, EnvironmentSettingError

if TYPE_CHECKING:
    import pandas as pd
    from distributed import Client

    from retrainflow.config import PipelineConfig

log = logging.getLogger(__name__)

#: Seconds to reach the scheduler, and again for it to have at least one worker.
CONNECT_TIMEOUT_S = 15.0
#: The target's column in a Dask frame built from rows in memory.
TARGET = "__target__"
#: Dask partitions per worker, at most. One task per lake partition cost more than the fit
#: (the full year of flights, 357 days: 3.6 s to read and persist against 0.5 s in 16
#: tasks; every task parses the file's footer, which grows with its row groups).
CHUNKS_PER_WORKER = 4
#: LightGBM's network parameters, as a local fit leaves them (:func:`local_booster`).
LOCAL_NETWORK = {
    "num_machines": "1",
    "machines": "",
    "machine_list_filename": "",
    "local_listen_port": "12400",
    "tree_learner": "serial",
}


@dataclass(frozen=True)
class StoredRows:
    """A training matrix in one Parquet file, one row group per lake partition
    (:func:`write_partitioned`): the feature columns and the ``target`` column. ``uri``: a
    local path, or a URI of a file system pyarrow knows (``s3://...``)."""

    uri: str
    target: str

    def footer(self) -> tuple[int, int, list[str]]:
        """``(rows, row groups, feature columns)`` from the Parquet footer (no data read)."""
        import pyarrow.parquet as pq

        with _open(self.uri) as fh:
            meta = pq.ParquetFile(fh).metadata
        names = [n for n in meta.schema.to_arrow_schema().names if n != self.target]
        return meta.num_rows, meta.num_row_groups, names

    def load(self) -> tuple[pd.DataFrame, np.ndarray]:
        """The features and the target, in memory (a local fit)."""
        import pyarrow.parquet as pq

        with _open(self.uri) as fh:
            frame = pq.ParquetFile(fh).read().to_pandas()
        y = frame.pop(self.target).to_numpy()
        return frame, y


def _open(uri: str) -> Any:
    """A pyarrow input file of a local path or a ``scheme://`` URI."""
    import pyarrow.fs as pafs

    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+://", uri):
        fs, path = pafs.FileSystem.from_uri(uri)
    else:
        fs, path = pafs.LocalFileSystem(), uri
    return fs.open_input_file(path)


def read_row_groups(indices: Sequence[int], uri: str) -> pd.DataFrame:
    """Row groups ``indices`` of the Parquet file ``uri``, concatenated (run by a Dask
    worker: one Dask partition)."""
    import pyarrow.parquet as pq

    with _open(uri) as fh:
        return pq.ParquetFile(fh).read_row_groups(list(indices)).to_pandas()


@dataclass(frozen=True)
class DaskFit:
    """What a Dask fit ran on (recorded in the train manifest)."""

    #: The scheduler's address, credentials removed (:func:`redact`).
    address: str
    #: Workers that held training rows and fitted (of ``cluster_workers``).
    workers: int
    cluster_workers: int
    #: Lake partitions of the rows (row groups; pieces of rows in memory) ...
    partitions: int
    #: ... in this many Dask partitions (:func:`strided_groups`).
    chunks: int
    #: LightGBM threads over all fitting workers (each uses its Dask threads).
    threads: int


def redact(address: str) -> str:
    """``address`` without a ``user:password@`` part."""
    return re.sub(r"^([A-Za-z0-9+.-]+://)[^/@]*@", r"\1", address)


def scheduler_address(config: PipelineConfig) -> str:
    """``$RETRAINFLOW_DASK_ADDRESS``, checked to be a Dask address.

    Raises:
        ConfigError: unset, blank or not an address; the message names the variable and
            the pipeline.
    """
    env = settings.DASK_ADDRESS_ENV
    raw = settings.dask_address()
    if raw is None:
        raise EnvironmentSettingError(
            f"The pipeline '{config.name}' fits on Dask (training.engine: dask), but {env} is "
            f"not set. Export the scheduler's address in the train task's environment (e.g. "
            f"{env}=tcp://10.0.0.5:8786), or set training.engine: local."
        )
    from distributed.comm.addressing import get_address_host_port

    try:
        get_address_host_port(raw)
    except ValueError as exc:
        raise EnvironmentSettingError(
            f"{env}={redact(raw)!r} (pipeline '{config.name}', training.engine: dask) is not a "
            f"Dask scheduler address ({exc}); expected e.g. tcp://10.0.0.5:8786."
        ) from None
    return raw


def connect(address: str, timeout: float | None = None) -> Client:
    """A client of the scheduler at ``address`` that has at least one worker.

    Raises:
        DaskEngineError: no answer, or no worker, within ``timeout`` seconds each
            (default :data:`CONNECT_TIMEOUT_S`).
    """
    from distributed import Client

    limit = CONNECT_TIMEOUT_S if timeout is None else timeout
    shown = redact(address)
    try:
        client = Client(address, timeout=limit, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise DaskEngineError(
            f"The Dask scheduler at {shown} ({settings.DASK_ADDRESS_ENV}) did not answer within "
            f"{limit:g} s ({exc}). Start it, or check that this host reaches it.",
            address=shown,
        ) from None
    try:
        client.wait_for_workers(1, timeout=limit)
    except (OSError, TimeoutError):
        client.close()
        raise DaskEngineError(
            f"The Dask scheduler at {shown} ({settings.DASK_ADDRESS_ENV}) has no worker: none "
            f"joined within {limit:g} s. Start workers against it.",
            address=shown,
        ) from None
    return client


# -- the rows ---------------------------------------------------------------------------------


def partition_sizes(times: pd.Series) -> list[int]:
    """Row counts of the runs of consecutive rows on one calendar day of ``times``.

    A window that ``pull`` read holds its lake partitions one after the other, in day
    order, every row on its partition's day (the data contract): the runs are the
    partitions.
    """
    import pandas as pd

    if len(times) == 0:
        return []
    days = pd.to_datetime(times).dt.normalize().to_numpy()
    starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
    return np.diff(np.r_[starts, len(days)]).astype(int).tolist()


def write_partitioned(frame: pd.DataFrame, sizes: Sequence[int], path: Path) -> None:
    """``frame`` as one Parquet file with one row group per entry of ``sizes`` (rows in order).

    ``pandas.read_parquet`` reads it as any other Parquet file; Dask workers read one row
    group each (:class:`StoredRows`).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if sum(sizes) != len(frame):
        raise ValueError(f"partition sizes add up to {sum(sizes)}, the frame has {len(frame)} rows")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with pq.ParquetWriter(path, table.schema) as writer:
        offset = 0
        for n in sizes:
            writer.write_table(table.slice(offset, n), row_group_size=max(n, 1))
            offset += n


def strided_groups(partitions: int, chunks: int) -> list[list[int]]:
    """Partitions ``0 .. partitions-1`` dealt into at most ``chunks`` groups: group ``g``
    holds partitions ``g, g + k, g + 2k...``. Each group, and so each worker's rows, spans
    the whole window: LightGBM finds the bins of a feature on one worker's rows, and a
    worker holding one stretch of the year would bin ``month`` or ``day_of_year`` for that
    stretch only."""
    k = max(1, min(partitions, chunks))
    return [list(range(g, partitions, k)) for g in range(k)] if partitions else []


def _scatter(
    client: Client, X: pd.DataFrame, y: np.ndarray, sizes: Sequence[int], chunks: int
) -> list[Any]:
    """Rows in memory sent to the workers, one group of partitions (``sizes``) at a time
    (:func:`strided_groups`), each to the worker with the fewest rows so far."""
    if sum(sizes) != len(X):
        raise ValueError(f"partition sizes add up to {sum(sizes)}, the rows are {len(X)}")
    starts = np.r_[0, np.cumsum(sizes)[:-1]].astype(int)
    held = dict.fromkeys(sorted(client.scheduler_info()["workers"]), 0)
    futures = []
    for group in strided_groups(len(sizes), chunks):
        rows = np.concatenate([np.arange(starts[i], starts[i] + sizes[i]) for i in group])
        piece = X.iloc[rows].assign(**{TARGET: y[rows]})
        worker = min(held, key=lambda w: held[w])
        futures.append(client.scatter(piece, workers=[worker], hash=False))
        held[worker] += len(rows)
    return futures


def _rows(
    client: Client,
    X: pd.DataFrame | StoredRows,
    y: np.ndarray | None,
    sizes: Sequence[int] | None,
) -> tuple[Any, str, int]:
    """The training rows as a Dask DataFrame (features and target), the target's name and
    the lake partitions in it."""
    import dask.dataframe as dd

    chunks = CHUNKS_PER_WORKER * len(client.scheduler_info()["workers"])
    if isinstance(X, StoredRows):
        import pyarrow.parquet as pq

        with _open(X.uri) as fh:
            stored = pq.ParquetFile(fh)
            groups, meta = stored.num_row_groups, stored.schema_arrow.empty_table().to_pandas()
        parts = strided_groups(groups, chunks)
        return dd.from_map(read_row_groups, parts, uri=X.uri, meta=meta), X.target, groups
    assert y is not None
    if not sizes:  # one piece per worker
        sizes = [len(p) for p in np.array_split(np.arange(len(X)), chunks // CHUNKS_PER_WORKER)]
    futures = _scatter(client, X, y, sizes, chunks)
    meta = X.iloc[:0].assign(**{TARGET: y[:0]})
    return dd.from_delayed(futures, meta=meta, verify_meta=False), TARGET, len(sizes)


def local_booster(booster: Any, params: dict[str, Any]) -> Any:
    """``booster`` as a local fit leaves it: its network settings (``LOCAL_NETWORK``)
    reset in the model text, and as its parameters ``params`` plus the categorical columns
    its Dataset added (what ``lightgbm.train`` records), so that a refit of it runs here
    instead of reaching for the workers."""
    import lightgbm as lgb

    text = booster.model_to_string()
    for name, value in LOCAL_NETWORK.items():
        text = re.sub(rf"^\[{name}: .*\]$", f"[{name}: {value}]", text, flags=re.MULTILINE)
    out = lgb.Booster(model_str=text)
    added = {k: v for k, v in booster.params.items() if k == "categorical_column"}
    out.params = {**params, **added}
    return out


def estimator_params(config: PipelineConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """The keyword arguments of ``DaskLGBMRegressor`` that fit the model ``lightgbm.train``
    fits locally, and the parameters that local booster records.

    The local fit's parameters (:func:`~retrainflow.core.training.lightgbm_params`: the
    objective, the seed, ``training.params``) and ``n_estimators`` rounds; without
    ``num_threads`` (each worker uses its own threads). The scikit-learn API adds its own
    defaults (``min_child_samples=20``, ``subsample=1.0``...): they equal LightGBM's, and
    where ``training.params`` names the main parameter (``min_data_in_leaf``,
    ``bagging_fraction``) LightGBM prefers it to the alias, as ``lightgbm.train`` does.
    """
    from retrainflow.core import training

    params, rounds = training.lightgbm_params(config)
    kwargs = {k: v for k, v in params.items() if k != "num_threads"}
    return {**kwargs, "n_estimators": rounds}, {**params, "num_iterations": rounds}


def fit(
    config: PipelineConfig,
    X: pd.DataFrame | StoredRows,
    y: np.ndarray | None,
    categorical: list[str],
    *,
    partitions: Sequence[int] | None = None,
    address: str | None = None,
) -> tuple[Any, DaskFit]:
    """A new LightGBM booster fitted on the Dask cluster, and what it ran on.

    Args:
        config: The pipeline (LightGBM parameters, task).
        X: Features in memory (``y`` their targets), or stored for the workers to read.
        y: Targets of ``X`` in memory; None for :class:`StoredRows`.
        categorical: Categorical feature names.
        partitions: Rows in memory: the row counts of their lake partitions, in order
            (:func:`partition_sizes`); None: one piece per worker.
            They must add up to the rows.
        address: The scheduler (default ``$RETRAINFLOW_DASK_ADDRESS``, checked).

    Raises:
        ConfigError: no (valid) address.
        DaskEngineError: the scheduler or a worker is not there, or the workers cannot
            read the stored rows.
    """
    import lightgbm as lgb
    from distributed import futures_of, wait

    where = address or scheduler_address(config)
    kwargs, recorded = estimator_params(config)
    with connect(where) as client, client.as_current():
        frame, target, lake_partitions = _rows(client, X, y, partitions)
        features, label = frame.drop(columns=[target]), frame[target]
        features, label = client.persist([features, label])
        held = futures_of(features) + futures_of(label)
        wait(held)
        failed = [f for f in held if f.status == "error"]
        if failed:
            what = X.uri if isinstance(X, StoredRows) else "the scattered rows"
            raise DaskEngineError(
                f"The Dask workers of {redact(where)} could not read {what}: "
                f"{failed[0].exception()!r}. They read the stage's files at the path the train "
                "task sees: mount the artifact store ($RETRAINFLOW_HOME/artifacts) there on "
                "every worker.",
                address=redact(where),
            )
        holders = {w for ws in client.who_has(futures_of(features)).values() for w in ws}
        nthreads = client.nthreads()
        model = lgb.DaskLGBMRegressor(client=client, **kwargs)
        with warnings.catch_warnings():  # n_jobs / num_threads: the workers' threads apply
            warnings.filterwarnings("ignore", message="Parameter .* will be ignored")
            model.fit(features, label, categorical_feature=categorical or "auto")
        booster = local_booster(model.to_local().booster_, recorded)
        info = DaskFit(
            address=redact(where),
            workers=len(holders),
            cluster_workers=len(nthreads),
            partitions=lake_partitions,
            chunks=int(features.npartitions),
            threads=sum(nthreads[w] for w in holders),
        )
    log.info(
        "dask fit of %s on %s: %d of %d workers, %d partitions in %d chunks, %d trees",
        config.name,
        info.address,
        info.workers,
        info.cluster_workers,
        info.partitions,
        info.chunks,
        booster.num_trees(),
    )
    return booster, info
