"""The three diamonds models: feature lists, scikit-learn pipelines, loading and predicting. No HTTP.

- regression: the price;
- classification: is the diamond expensive (price >= 5,000)? 0 or 1, with its probability;
- price_band: multiclass, the price band (budget, mid, upper, premium, luxury).

All are histogram gradient boosting pipelines over the same nine features. Categories are
encoded with a fixed vocabulary; an unseen category or a missing value becomes NaN, which the
boosting trees route like a missing value, so `bad_data` traffic is still scored instead of
failing the request.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

log = logging.getLogger(__name__)

ModelName = Literal["regression", "classification", "price_band"]
MODEL_NAMES: tuple[ModelName, ...] = ("regression", "classification", "price_band")
# The names of the models in the monitor's configuration (config/stack.yaml), and their task there.
MONITOR_MODELS: dict[ModelName, str] = {
    "regression": "diamonds_regression",
    "classification": "diamonds_classification",
    "price_band": "diamonds_price_band",
}
TASKS: dict[ModelName, Literal["regression", "classification"]] = {
    "regression": "regression",
    "classification": "classification",
    "price_band": "classification",
}

SEED = 20261124
EXPENSIVE_PRICE = 5_000.0
# Upper bounds of the price bands (the last one has none).
PRICE_BANDS: tuple[tuple[str, float], ...] = (
    ("budget", 1_000.0),
    ("mid", 2_500.0),
    ("upper", 5_000.0),
    ("premium", 10_000.0),
    ("luxury", float("inf")),
)
CATEGORIES: dict[str, list[str]] = {
    "cut": ["Fair", "Good", "Very Good", "Premium", "Ideal"],
    "color": ["D", "E", "F", "G", "H", "I", "J"],
    "clarity": ["I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"],
}
NUMERICAL = ["carat", "depth", "table", "x", "y", "z"]
CATEGORICAL = list(CATEGORIES)
FEATURES = [*NUMERICAL, *CATEGORICAL]
TARGETS: dict[ModelName, str] = {
    "regression": "price",
    "classification": "expensive",
    "price_band": "price_band",
}
PROBABILITY_COLUMN = "prob_expensive"

ARTIFACT_FILES: dict[ModelName, str] = {
    "regression": "regression.joblib",
    "classification": "classification.joblib",
    "price_band": "price_band.joblib",
}
METADATA_FILE = "metadata.json"


def expensive(price: Any) -> Any:
    """The classification target: 1 when the price is at least 5,000, else 0 (scalars or arrays)."""
    return (np.asarray(price) >= EXPENSIVE_PRICE).astype(int)


def price_band(price: Any) -> Any:
    """The multiclass target: the band of each price (an array of names, or one name)."""
    bounds = [bound for _, bound in PRICE_BANDS[:-1]]
    names = np.array([name for name, _ in PRICE_BANDS], dtype=object)
    bands = names[np.searchsorted(bounds, np.asarray(price, dtype=float), side="right")]
    return str(bands) if np.ndim(price) == 0 else bands


def _preprocessor() -> ColumnTransformer:
    encoder = OrdinalEncoder(
        categories=[CATEGORIES[c] for c in CATEGORICAL],
        handle_unknown="use_encoded_value",
        unknown_value=np.nan,
        encoded_missing_value=np.nan,
        dtype=np.float64,
    )
    # Categorical columns first, so the model's categorical_features are the first three.
    return ColumnTransformer(
        [("categories", encoder, CATEGORICAL), ("numbers", "passthrough", NUMERICAL)],
        verbose_feature_names_out=False,
    )


def build_pipeline(model: ModelName) -> Pipeline:
    """An unfitted pipeline for `model`, with every random state fixed."""
    settings: dict[str, Any] = {
        "max_iter": 150,
        "learning_rate": 0.1,
        "categorical_features": list(range(len(CATEGORICAL))),
        "early_stopping": False,
        "random_state": SEED,
    }
    estimator: HistGradientBoostingRegressor | HistGradientBoostingClassifier
    if model == "regression":
        estimator = HistGradientBoostingRegressor(**settings)
    else:
        estimator = HistGradientBoostingClassifier(**settings)
    return Pipeline([("prepare", _preprocessor()), ("model", estimator)])


def feature_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The model input for rows of features: missing keys and None become NaN, categories strings."""
    data: dict[str, Any] = {}
    for name in NUMERICAL:
        data[name] = np.array([_number(row.get(name)) for row in rows], dtype=np.float64)
    for name in CATEGORICAL:
        values = np.empty(len(rows), dtype=object)
        values[:] = [_category(row.get(name)) for row in rows]
        data[name] = values
    return pd.DataFrame(data, columns=FEATURES)


def _number(value: Any) -> float:
    return np.nan if value is None else float(value)


def _category(value: Any) -> Any:
    return np.nan if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


@dataclass(frozen=True)
class Prediction:
    """One model output: the predicted value or label, and for the binary classifier P(expensive)."""

    value: float | int | str
    probability: float | None = None


@dataclass(frozen=True)
class Predictors:
    """The fitted pipelines of the three models."""

    regression: Pipeline
    classification: Pipeline
    price_band: Pipeline

    def predict(self, model: ModelName, features: pd.DataFrame) -> list[Prediction]:
        if model == "regression":
            values = self.regression.predict(features)
            return [Prediction(round(float(v), 2)) for v in values]
        if model == "price_band":
            return [Prediction(str(label)) for label in self.price_band.predict(features)]
        probabilities = self.classification.predict_proba(features)[:, 1]
        return [Prediction(int(p >= 0.5), round(float(p), 6)) for p in probabilities]


def fit(reference: pd.DataFrame) -> Predictors:
    """Fit the models on the reference split (features plus `price`)."""
    features = reference[FEATURES]
    regression = build_pipeline("regression").fit(features, reference["price"].to_numpy(dtype=float))
    classification = build_pipeline("classification").fit(features, expensive(reference["price"]))
    bands = build_pipeline("price_band").fit(features, price_band(reference["price"]))
    return Predictors(regression, classification, bands)


def save(predictors: Predictors, model_dir: Path, metadata: Mapping[str, Any]) -> None:
    """Write the pipelines and a metadata file; each file appears atomically (tmp + os.replace)."""
    model_dir.mkdir(parents=True, exist_ok=True)
    for name in MODEL_NAMES:
        buffer = io.BytesIO()
        joblib.dump(getattr(predictors, name), buffer)
        _atomic_write(model_dir / ARTIFACT_FILES[name], buffer.getvalue())
    text = json.dumps(dict(metadata), indent=2, sort_keys=True) + "\n"
    _atomic_write(model_dir / METADATA_FILE, text.encode())


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def artifacts_exist(model_dir: Path) -> bool:
    return all((model_dir / ARTIFACT_FILES[name]).is_file() for name in MODEL_NAMES)


def load(model_dir: Path) -> Predictors:
    """Read the pipelines from `model_dir` (written by `save`)."""
    loaded = {name: joblib.load(model_dir / ARTIFACT_FILES[name]) for name in MODEL_NAMES}
    for name, pipeline in loaded.items():
        if not isinstance(pipeline, Pipeline):
            path = model_dir / ARTIFACT_FILES[name]
            raise TypeError(f"{path} holds a {type(pipeline).__name__}, not a Pipeline")
    return Predictors(loaded["regression"], loaded["classification"], loaded["price_band"])
