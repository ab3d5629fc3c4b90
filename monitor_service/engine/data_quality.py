"""Data quality of one column: missing values, out-of-range numbers, unseen categories."""

from __future__ import annotations

import pandas as pd
from evidently.legacy.core import ColumnType

from monitor_service.engine.columns import NUMERICAL
from monitor_service.results import ColumnQuality, Role


def _missing_ratio(series: pd.Series) -> float:
    return float(series.isna().mean()) if len(series) else 0.0


def column_quality(
    column: str, role: Role, column_type: ColumnType, reference: pd.Series, current: pd.Series
) -> ColumnQuality:
    """Missing values in both datasets; out-of-range share (numbers) or unseen-category share."""
    out_of_range = new_category = None
    present = current.dropna()
    if column_type == NUMERICAL:
        low, high = reference.min(), reference.max()
        outside = (present < low) | (present > high) if pd.notna(low) else present == present
        out_of_range = float(outside.sum() / len(current)) if len(current) else 0.0
    else:
        unseen = ~present.isin(set(reference.dropna().unique()))
        new_category = float(unseen.sum() / len(current)) if len(current) else 0.0
    return ColumnQuality(
        column, role, _missing_ratio(current), _missing_ratio(reference), out_of_range, new_category
    )
