"""Which columns each check looks at, with their role and Evidently type, as a model's config says."""

from __future__ import annotations

from collections.abc import Iterator

from evidently import DataDefinition
from evidently.legacy.core import ColumnType

from monitor_service.config import ModelConfig
from monitor_service.results import Role

NUMERICAL = ColumnType.Numerical
CATEGORICAL = ColumnType.Categorical


def drift_columns(model: ModelConfig) -> Iterator[tuple[str, Role, ColumnType]]:
    """Every column drift is measured on, with its role and Evidently type, as the config enables."""
    cols = model.columns
    if "data_drift" in model.metrics:
        yield from ((name, "feature", NUMERICAL) for name in cols.numerical)
        yield from ((name, "feature", CATEGORICAL) for name in cols.categorical)
    if "target_drift" in model.metrics and cols.target:
        yield cols.target, "target", _label_type(model)
    if "prediction_drift" in model.metrics:
        yield from _prediction_columns(model)


def _label_type(model: ModelConfig) -> ColumnType:
    """Targets and single prediction columns: numbers for regression, classes for classification."""
    return NUMERICAL if model.task == "regression" else CATEGORICAL


def _prediction_columns(model: ModelConfig) -> Iterator[tuple[str, Role, ColumnType]]:
    cols = model.columns
    for name in cols.prediction_columns:
        yield name, "prediction", _label_type(model) if name == cols.prediction else NUMERICAL


def column_options(model: ModelConfig, column: str) -> tuple[str | None, float | None]:
    """The configured stat test and threshold of a column: per-column settings win over global ones."""
    own = model.drift.per_column.get(column)
    stattest = own.stattest if own and own.stattest else model.drift.stattest
    threshold = own.threshold if own and own.threshold is not None else model.drift.threshold
    return stattest, threshold


def quality_columns(model: ModelConfig) -> Iterator[tuple[str, Role, ColumnType]]:
    cols = model.columns
    yield from ((name, "feature", NUMERICAL) for name in cols.numerical)
    yield from ((name, "feature", CATEGORICAL) for name in cols.categorical)
    yield from _prediction_columns(model)


def data_definition(model: ModelConfig) -> DataDefinition:
    """Evidently's view of the model's columns (categories and labels as in `drift_columns`)."""
    numerical = [name for name, _, t in drift_columns(model) if t == NUMERICAL]
    categorical = [name for name, _, t in drift_columns(model) if t == CATEGORICAL]
    return DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
