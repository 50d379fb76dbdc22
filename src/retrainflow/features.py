"""Feature extraction: one definition for training and for serving.

:class:`FeatureTransformer` turns raw rows (the columns a data engineer lists in
``features:``) into the model's input matrix. It is fitted once in a stateless
run, frozen and reused by warm starts, and pickled *inside* the registered
model, so ``models:/<pipeline>@champion`` applies the identical code to raw
rows at serving time: there is no second implementation to drift apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from retrainflow.exceptions import DataError

if TYPE_CHECKING:
    from retrainflow.config import PipelineConfig

MISSING = "__missing__"
TIME_PARTS = {
    "hour": lambda s: s.dt.hour,
    "day_of_week": lambda s: s.dt.dayofweek,
    "month": lambda s: s.dt.month,
    "day_of_year": lambda s: s.dt.dayofyear,
}


class FeatureTransformer:
    """Raw rows → numeric feature frame (scikit-learn style: ``fit`` / ``transform``).

    Args:
        numeric: numeric input columns (kept as float; NaN allowed for trees).
        categorical: categorical input columns.
        time_column: event-time column the calendar parts are derived from.
        time_parts: calendar parts of ``time_column`` to add (``hour``, ``month``...).
        encoding: ``ordinal`` (category codes, for tree models; unseen → NaN) or
            ``onehot`` (with imputation and scaling, for linear models).
    """

    def __init__(
        self,
        numeric: list[str],
        categorical: list[str],
        time_column: str,
        time_parts: list[str] | None = None,
        encoding: Literal["ordinal", "onehot"] = "ordinal",
    ) -> None:
        self.numeric = list(numeric)
        self.categorical = list(categorical)
        self.time_column = time_column
        self.time_parts = list(time_parts or [])
        self.encoding = encoding

    @classmethod
    def from_config(cls, config: PipelineConfig) -> FeatureTransformer:
        """The transformer a pipeline config describes."""
        encoding: Literal["ordinal", "onehot"] = (
            "onehot" if config.training.estimator == "sgd" else "ordinal"
        )
        return cls(
            numeric=config.features.numeric,
            categorical=config.features.categorical,
            time_column=config.time_column,
            time_parts=list(config.features.time_parts),
            encoding=encoding,
        )

    # -- raw-row preparation shared by fit and transform ----------------------------
    @property
    def input_columns(self) -> list[str]:
        cols = [*self.numeric, *self.categorical]
        if self.time_parts:
            cols.append(self.time_column)
        return cols

    def _prepare(self, raw: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.input_columns if c not in raw.columns]
        if missing:
            raise DataError(f"Rows lack the feature column(s) {missing} the model needs.")
        out = pd.DataFrame(index=raw.index)
        for col in self.numeric:
            out[col] = pd.to_numeric(raw[col], errors="coerce").astype("float64")
        if self.time_parts:
            ts = pd.to_datetime(raw[self.time_column])
            for part in self.time_parts:
                out[f"{self.time_column}_{part}"] = TIME_PARTS[part](ts).astype("float64")
        for col in self.categorical:
            out[col] = raw[col].astype("string").fillna(MISSING).astype(object)
        return out

    @property
    def _numeric_out(self) -> list[str]:
        return [*self.numeric, *(f"{self.time_column}_{p}" for p in self.time_parts)]

    def fit(self, raw: pd.DataFrame) -> FeatureTransformer:
        """Learn category sets (and scaling for ``onehot``) from raw rows; returns self."""
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

        prepared = self._prepare(raw)
        if self.encoding == "ordinal":
            cat = OrdinalEncoder(
                handle_unknown="use_encoded_value",
                unknown_value=np.nan,
                encoded_missing_value=np.nan,
                dtype=np.float64,
            )
            num: object = "passthrough"
        else:
            cat = OneHotEncoder(handle_unknown="ignore", min_frequency=20, sparse_output=False)
            num = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
        parts = []
        if self._numeric_out:
            parts.append(("num", num, self._numeric_out))
        if self.categorical:
            parts.append(("cat", cat, self.categorical))
        self.column_transformer_ = ColumnTransformer(
            parts, verbose_feature_names_out=False, remainder="drop"
        ).set_output(transform="pandas")
        self.column_transformer_.fit(prepared)
        self.feature_names_ = list(self.column_transformer_.get_feature_names_out())
        self.categorical_features_ = list(self.categorical) if self.encoding == "ordinal" else []
        return self

    def transform(self, raw: pd.DataFrame) -> pd.DataFrame:
        """Raw rows → feature frame with columns ``feature_names_``."""
        if not hasattr(self, "column_transformer_"):
            raise RuntimeError("FeatureTransformer is not fitted: call fit() first.")
        out = self.column_transformer_.transform(self._prepare(raw))
        return out.astype("float64")

    def fit_transform(self, raw: pd.DataFrame) -> pd.DataFrame:
        return self.fit(raw).transform(raw)
