"""Stage 3 — features: fit (or reuse) the transformer and build the training matrix.

Step 1 of the fit sequence of :mod:`retrainflow.core.training`
(:func:`~retrainflow.core.training.prepare_features`): a stateless run fits a new
transformer on the training rows; a warm start reuses the parent model's fitted
transformer unchanged (frozen). The fitted transformer is saved here and packaged
into the model by ``train``.
"""

from __future__ import annotations

import logging
import pickle
from typing import TYPE_CHECKING

from retrainflow.artifacts import ArtifactStore
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
    import pandas as pd

    store = store or ArtifactStore(config.artifact_root_uri())
    out = store.stage(config.name, pulled.context.run_id, STAGE)
    raw = pd.read_parquet(pulled.train.uri)
    parent = None
    if pulled.mode == Mode.WARM_START:
        assert pulled.parent_version is not None
        parent = registry.load_model(config.registered_model_name, pulled.parent_version)
    transformer, features = training.prepare_features(config, raw, parent)
    frozen = parent is not None
    features[TARGET] = training.targets(config, raw)
    out.write_with("transformer.pkl", lambda p: p.write_bytes(pickle.dumps(transformer)))
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
