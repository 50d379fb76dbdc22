"""The model object that is trained, evaluated, registered and served.

:class:`TabularModel` bundles the fitted :class:`~retrainflow.features.FeatureTransformer`
with the estimator, so ``predict`` takes *raw* rows. The MLflow pyfunc wrapper
(:class:`retrainflow.pyfunc.PyfuncModel`) only delegates to it, which is why the registered model
predicts exactly what the training-time code predicts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from retrainflow.features import FeatureTransformer


class TabularModel:
    """Transformer + estimator; ``predict`` maps raw rows to scores.

    For binary classification the score is the probability of class 1; for
    regression it is the predicted value.
    """

    def __init__(
        self, transformer: FeatureTransformer, estimator: Any, task: str, estimator_name: str
    ) -> None:
        self.transformer = transformer
        self.estimator = estimator
        self.task = task
        self.estimator_name = estimator_name

    def predict_features(self, features: pd.DataFrame) -> np.ndarray:
        """Scores for an already transformed feature frame."""
        est = self.estimator
        if self.estimator_name == "lightgbm":
            return np.asarray(est.predict(features), dtype=np.float64)
        if self.task == "binary_classification":
            return np.asarray(est.predict_proba(features)[:, 1], dtype=np.float64)
        return np.asarray(est.predict(features), dtype=np.float64)

    def predict(self, raw: pd.DataFrame) -> np.ndarray:
        """Scores for raw rows (the columns listed in the pipeline's ``features``)."""
        return self.predict_features(self.transformer.transform(raw))

    @property
    def num_trees(self) -> int | None:
        if self.estimator_name == "lightgbm":
            return int(self.estimator.num_trees())
        return None
