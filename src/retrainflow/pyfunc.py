"""MLflow pyfunc flavour of :class:`~retrainflow.model.TabularModel`.

Kept apart from :mod:`retrainflow.model` because importing MLflow costs
seconds; only the registry and serving paths need it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from retrainflow.model import TabularModel


class PyfuncModel(PythonModel):
    """Serves a :class:`TabularModel` from raw rows: ``models:/<pipeline>@champion``."""

    def __init__(self, model: TabularModel) -> None:
        self.model = model

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        """Scores for raw rows (probability of class 1, or the regression value)."""
        return self.model.predict(pd.DataFrame(model_input))
