"""Stage 3 — features: fit (or reuse) the transformer and build the training matrix.

Step 1 of the fit sequence of :mod:`retrainflow.core.training`
(:func:`~retrainflow.core.training.prepare_features`): a stateless run fits a new
transformer on the training rows; a warm start reuses the parent model's fitted
transformer unchanged (frozen). The fitted transformer is saved here and packaged
into the model by ``train``. For a fit on Dask (``training.engine: dask``) the
training matrix is written with one Parquet row group per lake partition, which
the workers read in parallel (:mod:`retrainflow.core.dask_engine`).
"""

from __future__ import annotations

import logging
import pickle
from typing import TYPE_CHECKING

from retrainflow.artifacts import ArtifactStore, read_parquet
from retrainflow.core import training
from retrainflow.core.modes import Mode
from retrainflow.manifest import FeaturesManifest, PullManifest

if TYPE_CHECKING:
    from retrainflow.config import PipelineConfig
    from retrainflow.registry import Registry

log = logging.getLogger(__name__)
STAGE = "features"
TARGET = "__target__"


def run(
    config: PipelineConfig,
    pulled: PullManifest,
    *,
    registry: Registry,
    store: ArtifactStore | None = None,
) -> FeaturesManifest:
    """Fit or load the transformer; write ``transformer.pkl`` and ``train.parquet``."""

    store = store or ArtifactStore(config.artifact_root_uri())
    out = store.stage(config.name, pulled.context.run_id, STAGE)
    raw = read_parquet(pulled.train.uri)
    parent = None
    if pulled.mode == Mode.WARM_START:
        assert pulled.parent_version is not None
        parent = registry.load_model(config.registered_model_name, pulled.parent_version)
    transformer, features = training.prepare_features(config, raw, parent)
    frozen = parent is not None
    features[TARGET] = training.targets(config, raw)
    out.write_with("transformer.pkl", lambda p: p.write_bytes(pickle.dumps(transformer)))
    if training.choose_engine(config, warm=frozen).name == "dask":
        # one row group per lake partition: the Dask workers read them in parallel
        from retrainflow.core.dask_engine import partition_sizes, write_partitioned

        sizes = partition_sizes(raw[config.time_column])
        train_path = out.write_with(
            "train.parquet", lambda p: write_partitioned(features, sizes, p)
        )
    else:
        train_path = out.write_parquet("train.parquet", features)
    manifest = FeaturesManifest(
        transformer_uri=str(out.file("transformer.pkl")),
        train_uri=str(train_path),
        feature_names=list(transformer.feature_names_),
        categorical_features=list(transformer.categorical_features_),
        frozen=frozen,
        rows=len(features),
    )
    out.write_json("manifest.json", manifest.to_dict())
    log.info(
        "features %s: %d rows x %d features (%s transformer)",
        config.name,
        len(features),
        len(manifest.feature_names),
        "frozen parent" if frozen else "new",
    )
    return manifest
