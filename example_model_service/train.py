"""Train the diamonds models and write the monitor's reference files.

    python -m example_model_service.train [--model-dir DIR] [--reference-dir DIR] [--no-references]

Both models are fitted on `datasets/diamonds/reference.csv` (fixed seeds, so every run gives the
same models). The monitor's reference files hold that same split with the models' predictions:

  reference_regression.csv       features, price, prediction
  reference_classification.csv   features, expensive, prediction (0/1), prob_expensive
  reference_price_band.csv       features, price_band, prediction (the band)

The predictions in them are out-of-fold (5-fold cross-validation with a fixed split): predictions
of the training rows themselves would be closer to the truth than anything the model says in
production, and the monitor would report prediction drift on traffic that has none.
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, cross_val_predict
from threadpoolctl import threadpool_limits

from example_model_service.models import (
    FEATURES,
    PROBABILITY_COLUMN,
    SEED,
    Predictors,
    build_pipeline,
    expensive,
    fit,
    price_band,
    save,
)
from example_model_service.settings import DEFAULT_MODEL_DIR as SETTINGS_MODEL_DIR

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DIAMONDS = REPO_ROOT / "datasets" / "diamonds"
DEFAULT_TRAINING_DATA = DIAMONDS / "reference.csv"
DEFAULT_MODEL_DIR = SETTINGS_MODEL_DIR
REFERENCE_FILES = {
    "regression": "reference_regression.csv",
    "classification": "reference_classification.csv",
    "price_band": "reference_price_band.csv",
}
FOLDS = 5


def _one_thread() -> threadpool_limits:
    """Train on one OpenMP thread: on 10,000 rows it is as fast as two, and unlike two it does not
    slow down tenfold when other processes (the monitor, a test suite) keep the cores busy."""
    return threadpool_limits(limits=1, user_api="openmp")


def read_training_data(path: Path = DEFAULT_TRAINING_DATA) -> pd.DataFrame:
    frame = pd.read_csv(path)
    missing = sorted({*FEATURES, "price"} - set(frame.columns))
    if missing:
        raise ValueError(f"{path} lacks the columns {missing}")
    return frame


def train_models(model_dir: Path, training_data: Path = DEFAULT_TRAINING_DATA) -> Predictors:
    """Fit the models on `training_data` and save them under `model_dir`."""
    frame = read_training_data(training_data)
    with _one_thread():
        predictors = fit(frame)
    metadata: dict[str, Any] = {
        "training_data": training_data.name,
        "training_rows": len(frame),
        "seed": SEED,
        "features": FEATURES,
        "scikit_learn": version("scikit-learn"),
    }
    save(predictors, model_dir, metadata)
    log.info("trained the models on %d rows of %s -> %s", len(frame), training_data, model_dir)
    return predictors


def reference_frames(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The reference split with out-of-fold predictions of each model, rounded for stable files."""
    features = frame[FEATURES]
    folds = KFold(FOLDS, shuffle=True, random_state=SEED)
    price = frame["price"].to_numpy(dtype=float)
    labels = expensive(price)
    with _one_thread():
        predicted_price = cross_val_predict(build_pipeline("regression"), features, price, cv=folds)
        probability = cross_val_predict(
            build_pipeline("classification"), features, labels, cv=folds, method="predict_proba"
        )[:, 1]
        bands = price_band(price)
        predicted_band = cross_val_predict(build_pipeline("price_band"), features, bands, cv=folds)
    # The features in the order of the source file (carat, cut, color, clarity, depth, ...).
    columns = frame[[c for c in frame.columns if c in FEATURES]]
    regression = columns.assign(price=frame["price"], prediction=np.round(predicted_price, 2))
    classification = columns.assign(
        expensive=labels,
        prediction=(probability >= 0.5).astype(int),
        **{PROBABILITY_COLUMN: np.round(probability, 6)},
    )
    band = columns.assign(price_band=bands, prediction=predicted_band)
    return {"regression": regression, "classification": classification, "price_band": band}


def write_references(out_dir: Path, training_data: Path = DEFAULT_TRAINING_DATA) -> dict[str, Path]:
    """Write the reference file of each model (REFERENCE_FILES) into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, part in reference_frames(read_training_data(training_data)).items():
        path = out_dir / REFERENCE_FILES[name]
        part.to_csv(path, index=False, lineterminator="\n")
        written[name] = path
        log.info("%s reference: %d rows -> %s", name, len(part), path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m example_model_service.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_TRAINING_DATA, help="training CSV")
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR, help="where the models go")
    parser.add_argument("--reference-dir", type=Path, default=DIAMONDS, help="where the reference CSVs go")
    parser.add_argument("--no-references", action="store_true", help="train the models only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    train_models(args.model_dir, args.data)
    if not args.no_references:
        write_references(args.reference_dir, args.data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
