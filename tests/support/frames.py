"""Reference and current frames exactly as the monitor builds them: validation, window, copy."""

from __future__ import annotations

from typing import Any

import pandas as pd

from monitor_service.config import ModelConfig
from monitor_service.reference import load_reference
from monitor_service.schema import RowSchema, validate_rows
from monitor_service.window import SlidingWindow


def frames(model: ModelConfig, rows: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The model's checked reference, and `rows` validated, windowed and copied as a calculation sees them."""
    schema = RowSchema.from_model(model)
    reference = load_reference(model, schema, "models[0].reference")
    window = SlidingWindow({s.name: s.kind for s in schema.columns}, max_rows=100_000)
    window.append(validate_rows(rows, schema, 1.0), now=1.0)
    return reference, pd.DataFrame(window.copy().columns)
