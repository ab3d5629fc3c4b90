"""Helpers of the model-quality tests: diamonds as binary and multiclass classification data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tests.conftest import DIAMONDS

FEATURES = {"numerical": ["carat", "depth"], "categorical": ["color"]}


def binary_frame(split: str, *, boolean: bool = False) -> pd.DataFrame:
    """Diamonds as the classifier "price >= 5,000": label, predicted label and probability."""
    frame = pd.read_csv(DIAMONDS / f"{split}.csv")
    out = frame[["carat", "depth", "color"]].copy()
    if "request_id" in frame:
        out.insert(0, "request_id", frame["request_id"])
    expensive = frame["price"] >= 5000
    out["expensive"] = expensive if boolean else expensive.astype(int)
    predicted = frame["prediction"] >= 5000
    out["predicted"] = predicted if boolean else predicted.astype(int)
    out["probability"] = (1 / (1 + np.exp(-(frame["prediction"] - 5000) / 1500))).round(6)
    return out


def cut_frame(split: str) -> pd.DataFrame:
    """Diamonds as a multiclass classifier of `cut` from depth and table (a simple, real rule)."""
    frame = pd.read_csv(DIAMONDS / f"{split}.csv")
    out = frame[["carat", "depth", "table", "color"]].copy()
    if "request_id" in frame:
        out.insert(0, "request_id", frame["request_id"])
    out["cut"] = frame["cut"]
    guess = np.select(
        [frame["table"] <= 56.5, frame["table"] >= 59.5, (frame["depth"] - 61.8).abs() < 1.0],
        ["Ideal", "Premium", "Very Good"],
        default="Good",
    )
    out["predicted_cut"] = guess
    return out


def binary_model(reference: Path, **overrides: Any) -> dict[str, Any]:
    columns = {
        "id": "request_id",
        "target": "expensive",
        "prediction": "predicted",
        "probability": "probability",
        **FEATURES,
    }
    return {
        "name": "expensive",
        "task": "classification",
        "reference": str(reference),
        "columns": columns,
        **overrides,
    }


def multiclass_model(reference: Path, **overrides: Any) -> dict[str, Any]:
    return {
        "name": "cut",
        "task": "classification",
        "reference": str(reference),
        "columns": {
            "id": "request_id",
            "target": "cut",
            "prediction": "predicted_cut",
            "numerical": ["carat", "depth", "table"],
            "categorical": ["color"],
        },
        **overrides,
    }


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-like rows: numpy scalars as Python values, booleans as JSON booleans."""
    out: list[dict[str, Any]] = []
    for row in frame.to_dict(orient="records"):
        out.append({k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()})
    return out
