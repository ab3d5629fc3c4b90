"""Model quality on the labelled rows of a window, with Evidently's metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
from evidently import BinaryClassification, DataDefinition, Dataset, Regression, Report
from evidently.metrics import MAE, MAPE, RMSE, Accuracy, F1Score, Precision, R2Score, Recall, RocAuc

from monitor_service.config import ModelConfig

REGRESSION_METRICS = {"mae": MAE, "rmse": RMSE, "mape": MAPE, "r2": R2Score}
CLASSIFICATION_METRICS = {"accuracy": Accuracy, "precision": Precision, "recall": Recall, "f1": F1Score}


def labelled_rows(model: ModelConfig, current: pd.DataFrame) -> pd.DataFrame:
    """Rows of the window that carry both a label and the model's output."""
    cols = model.columns
    if not cols.target or not cols.prediction_columns:
        return current.iloc[0:0]
    mask = current[cols.target].notna()
    for name in cols.prediction_columns:
        mask &= current[name].notna()
    return current[mask]


def model_quality(model: ModelConfig, current: pd.DataFrame) -> tuple[dict[str, float], int, str | None]:
    """Evidently's quality metrics on the labelled rows (regression errors, or binary
    classification), the number of those rows, and why there are none when they cannot be had."""
    if "model_quality" not in model.metrics:
        return {}, 0, None
    rows = labelled_rows(model, current)
    if rows.empty:
        return {}, 0, None
    cols = model.columns
    if model.task == "classification" and rows[cols.target].nunique() < 2:
        return (
            {},
            len(rows),
            "the labelled rows hold a single class: precision, recall and ROC AUC are undefined",
        )
    try:
        return _quality_values(model, rows), len(rows), None
    except Exception as exc:  # Evidently refuses this data; drift results must not be lost with it
        return {}, len(rows), f"Evidently could not compute model quality: {type(exc).__name__}: {exc}"


def _quality_values(model: ModelConfig, rows: pd.DataFrame) -> dict[str, float]:
    cols = model.columns
    if model.task == "regression":
        assert isinstance(cols.prediction, str)
        task = Regression(target=cols.target, prediction=cols.prediction)
        definition = DataDefinition(numerical_columns=[cols.target, cols.prediction], regression=[task])
        metrics = dict(REGRESSION_METRICS)
    else:
        labels = cols.prediction if isinstance(cols.prediction, str) else None
        binary = BinaryClassification(
            target=cols.target,
            prediction_labels=labels,
            prediction_probas=cols.probability,
            pos_label=cols.positive_label,
        )
        definition = DataDefinition(
            categorical_columns=[c for c in (cols.target, labels) if c],
            numerical_columns=[cols.probability] if cols.probability else [],
            classification=[binary],
        )
        metrics = {**CLASSIFICATION_METRICS, **({"roc_auc": RocAuc} if cols.probability else {})}
    snapshot = Report([metric() for metric in metrics.values()]).run(
        Dataset.from_pandas(rows.reset_index(drop=True), data_definition=definition), None
    )
    values = {}
    for name, result in zip(metrics, snapshot.dict()["metrics"], strict=True):
        value = result["value"]
        number = float(value["mean"] if isinstance(value, dict) else value)
        if np.isfinite(number):  # undefined on this window (R² of one row): left out, not NaN
            values[name] = number
    return values
