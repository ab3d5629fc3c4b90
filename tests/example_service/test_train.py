"""Training: artefacts that load to the same models, reference files equal to the committed ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from example_model_service.models import (
    ARTIFACT_FILES,
    FEATURES,
    METADATA_FILE,
    MODEL_NAMES,
    PRICE_BANDS,
    PROBABILITY_COLUMN,
    Predictors,
    artifacts_exist,
    feature_frame,
    price_band,
)
from example_model_service.service import load_or_train
from example_model_service.train import DIAMONDS, REFERENCE_FILES, write_references

PRODUCTION = pd.read_csv(DIAMONDS / "production.csv").head(500)


def _outputs(predictors: Predictors) -> dict[str, list[tuple[float | int | str, float | None]]]:
    features = feature_frame(PRODUCTION[FEATURES].to_dict(orient="records"))
    return {
        model: [(p.value, p.probability) for p in predictors.predict(model, features)]
        for model in MODEL_NAMES
    }


def test_train_writes_artefacts_and_metadata(model_dir: Path) -> None:
    assert artifacts_exist(model_dir)
    for name in ARTIFACT_FILES.values():
        assert (model_dir / name).stat().st_size > 10_000
    metadata = json.loads((model_dir / METADATA_FILE).read_text())
    assert metadata["training_rows"] == 10_000
    assert metadata["features"] == FEATURES


def test_load_or_train_trains_when_missing_and_gives_the_same_models(
    tmp_path: Path, predictors: Predictors
) -> None:
    fresh = load_or_train(tmp_path / "fresh")
    assert artifacts_exist(tmp_path / "fresh")
    assert _outputs(fresh) == _outputs(predictors)
    assert _outputs(load_or_train(tmp_path / "fresh", train_if_missing=False)) == _outputs(predictors)


def test_models_are_useful_on_production_rows(predictors: Predictors) -> None:
    outputs = _outputs(predictors)
    price = PRODUCTION["price"].to_numpy(dtype=float)
    predicted = np.array([value for value, _ in outputs["regression"]])
    assert np.mean(np.abs(predicted - price)) < 500
    labels = np.array([value for value, _ in outputs["classification"]])
    assert np.mean(labels == (price >= 5000)) > 0.95
    bands = np.array([value for value, _ in outputs["price_band"]])
    assert set(bands) <= {name for name, _ in PRICE_BANDS}
    assert np.mean(bands == price_band(price)) > 0.85


def test_write_references_reproduces_the_committed_files(tmp_path: Path) -> None:
    written = write_references(tmp_path)
    for model, path in written.items():
        committed = DIAMONDS / REFERENCE_FILES[model]
        assert path.read_bytes() == committed.read_bytes(), (
            f"{committed.name} differs from a fresh training run: "
            "regenerate it with `python -m example_model_service.train`"
        )


def test_reference_files_hold_what_the_monitor_needs() -> None:
    source = pd.read_csv(DIAMONDS / "reference.csv")
    regression = pd.read_csv(DIAMONDS / REFERENCE_FILES["regression"])
    classification = pd.read_csv(DIAMONDS / REFERENCE_FILES["classification"])
    assert list(regression.columns) == [*source.columns[:9], "price", "prediction"]
    assert list(classification.columns) == [
        *source.columns[:9],
        "expensive",
        "prediction",
        PROBABILITY_COLUMN,
    ]
    pd.testing.assert_frame_equal(regression[source.columns[:9]], source[source.columns[:9]])
    assert (classification["expensive"] == (source["price"] >= 5000)).all()
    assert (classification["prediction"] == (classification[PROBABILITY_COLUMN] >= 0.5)).all()
    # Out-of-fold predictions: good, but not the training prices themselves.
    error = (regression["prediction"] - regression["price"]).abs()
    assert 100 < error.mean() < 600
    bands = pd.read_csv(DIAMONDS / REFERENCE_FILES["price_band"])
    assert list(bands.columns) == [*source.columns[:9], "price_band", "prediction"]
    assert (bands["price_band"] == price_band(source["price"])).all()
    assert 0.8 < (bands["prediction"] == bands["price_band"]).mean() < 0.97
