"""What model quality measures for one model: its kind, classes and positive class, the metrics
asked for, and the fixed vocabulary of reasons a metric is not computed.

Class labels are compared as the data spells them first, then without regard to case, then as
booleans when every class is a boolean in some spelling (`true`/`TRUE`/`True`/`1`/`yes`): a
reference read from a CSV with TRUE/FALSE and live rows sending `true` agree, and the default
`positive_label: "1"` finds the class `true`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from monitor_service.config import REGRESSION_QUALITY, ModelConfig

Kind = Literal["regression", "binary", "multiclass"]

REGRESSION_METRICS: tuple[str, ...] = REGRESSION_QUALITY
BINARY_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
MULTICLASS_METRICS = (
    "accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
)
LOWER_IS_BETTER = frozenset({"mae", "rmse", "mape"})
MAX_CLASSES = 1000  # a classification target with more classes is no classification
# Estimated without labels (CBPE): binary classification with a probability column.
ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")

# Why a metric asked for has no value. Fixed: these are label values on /metrics, and they never
# carry data values (the detail a person needs is in the docs and in /results' numbers).
REASONS: dict[str, str] = {
    "no_labels": "no row of the window carries a label yet",
    "insufficient_labels": "fewer labelled rows than quality.min_labelled_rows",
    "single_class": "the labelled rows hold a single class, the metric needs both",
    "no_positive_labels": "no labelled row is of the positive class: recall is undefined",
    "no_positive_predictions": "no labelled row was predicted positive: precision is undefined",
    "no_positive_rows": "no labelled row is or was predicted positive: F1 is undefined",
    "no_probabilities": "no labelled row carries a probability",
    "zero_targets": "every labelled target is zero: MAPE divides by the target",
    "constant_target": "every labelled target is equal: R² divides by their variance",
    "class_absent": "no labelled row of this class in the window",
    "too_many_classes": "more classes than quality.max_classes: per-class recall is not exported",
    "no_reference_labels": "the reference has no rows with a label and a prediction",
    "reference_single_class": "the reference's labels hold a single class: no calibration",
    "no_rows": "no row of the window carries a prediction",
    "label_arrival_bias": "labels arrive at different rates per predicted class: target drift would lie",
    "reference_mismatch": "the configuration does not fit the reference (check-config says why)",
}

_TRUE = frozenset({"true", "t", "yes", "y", "1", "1.0"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "0.0"})


def _boolean(text: str) -> bool | None:
    folded = text.strip().casefold()
    return True if folded in _TRUE else False if folded in _FALSE else None


def natural_sorted(values: Iterable[str]) -> list[str]:
    """Numbers in numeric order ("2" before "10"), then text."""

    def key(value: str) -> tuple[int, float, str]:
        try:
            return (0, float(value), value)
        except ValueError:
            return (1, 0.0, value)

    return sorted(set(values), key=key)


class ClassMapper:
    """Maps label spellings to the index of a class: exact, case-insensitive, then as booleans."""

    def __init__(self, classes: Sequence[str]) -> None:
        self.classes = tuple(classes)
        self._exact = {c: i for i, c in enumerate(self.classes)}
        self._folded: dict[str, int] = {}
        for i, c in enumerate(self.classes):
            self._folded.setdefault(c.strip().casefold(), i)
        booleans = [_boolean(c) for c in self.classes]
        self._bools: dict[bool, int] = {}
        if booleans and None not in booleans and len(set(booleans)) == len(booleans):
            self._bools = {b: i for i, b in enumerate(booleans) if b is not None}

    def find(self, value: str) -> int | None:
        found = self._exact.get(value)
        if found is None:
            found = self._folded.get(value.strip().casefold())
        if found is None and self._bools and (as_bool := _boolean(value)) is not None:
            found = self._bools.get(as_bool)
        return found

    def codes(self, values: np.ndarray) -> np.ndarray:
        """Class index per value; -1 for values that are no class, -2 for missing ones."""
        series = pd.Series(values, dtype=object)
        missing = series.isna().to_numpy()
        lookup = {}
        for value in pd.unique(series[~missing]):
            found = self.find(str(value))
            lookup[value] = -1 if found is None else found
        out = series.map(lookup).to_numpy(dtype=np.float64, na_value=-2.0).astype(np.int64)
        out[missing] = -2
        return out


@dataclass(frozen=True)
class QualitySpec:
    """Model quality of one model as its config and reference decide it."""

    kind: Kind
    metrics: tuple[str, ...]
    target: str
    prediction: str
    probability: str | None = None
    classes: tuple[str, ...] = ()
    positive: int | None = None  # binary: index of the positive class in `classes`
    per_class: bool = False

    @property
    def mapper(self) -> ClassMapper:
        return ClassMapper(self.classes)


@dataclass
class Resolution:
    """The spec (None when quality is off or cannot work) and the problems found on the way."""

    spec: QualitySpec | None = None
    errors: list[tuple[tuple[str | int, ...], str]] = field(default_factory=list)
    warnings: list[tuple[tuple[str | int, ...], str]] = field(default_factory=list)
    off_because: str | None = None


def quality_enabled(model: ModelConfig) -> str | None:
    """None when model quality runs for this model; else why not."""
    cols = model.columns
    if "model_quality" not in model.metrics:
        return "model_quality is not in metrics"
    if not cols.target:
        return "no target column"
    if not isinstance(cols.prediction, str):
        return "no single prediction column"
    return None


def _present(reference: pd.DataFrame, column: str | None) -> pd.Series:
    if column is None or column not in reference.columns:
        return pd.Series([], dtype=object)
    return reference[column].dropna()


def reference_classes(model: ModelConfig, reference: pd.DataFrame) -> list[str]:
    """The configured classes, else the target's classes, then predicted labels that match none."""
    if model.quality.classes is not None:
        return list(model.quality.classes)
    cols = model.columns
    classes = natural_sorted(str(v) for v in pd.unique(_present(reference, cols.target)))
    mapper = ClassMapper(classes)
    prediction = cols.prediction if isinstance(cols.prediction, str) else None
    extra = [str(v) for v in pd.unique(_present(reference, prediction)) if mapper.find(str(v)) is None]
    return classes + natural_sorted(extra)


def resolve(model: ModelConfig, reference: pd.DataFrame) -> Resolution:
    """Decide how quality is measured for `model`; errors and warnings carry their config path."""
    out = Resolution()
    off = quality_enabled(model)
    if off is not None:
        out.off_because = off
        return out
    cols = model.columns
    assert cols.target is not None and isinstance(cols.prediction, str)
    if model.task == "regression":
        metrics = tuple(model.quality.metrics or REGRESSION_METRICS)
        out.spec = QualitySpec("regression", metrics, cols.target, cols.prediction)
        return out
    classes = reference_classes(model, reference)
    if len(classes) > MAX_CLASSES:
        out.errors.append(
            (
                ("columns", "target"),
                f"{len(classes)} classes in the reference: at most {MAX_CLASSES} are measured",
            )
        )
        return out
    if not classes:
        out.errors.append((("reference",), "the reference holds no predicted label: no classes to measure"))
        return out
    if len(classes) > 2 and cols.probability:
        out.errors.append(
            (
                ("columns", "probability"),
                f"probability is for binary classification; the reference has {len(classes)} classes",
            )
        )
        return out
    if len(classes) > 2:
        return _multiclass(model, classes, out)
    return _binary(model, classes, out)


def _multiclass(model: ModelConfig, classes: list[str], out: Resolution) -> Resolution:
    cols = model.columns
    assert cols.target is not None and isinstance(cols.prediction, str)
    if "positive_label" in cols.model_fields_set:
        out.errors.append(
            (
                ("columns", "positive_label"),
                f"positive_label is for binary classification; the target has {len(classes)} classes",
            )
        )
    wrong = [m for m in model.quality.metrics or () if m not in MULTICLASS_METRICS]
    if wrong:
        out.errors.append(
            (("quality", "metrics"), f"{wrong} are not multiclass metrics; choose from {MULTICLASS_METRICS}")
        )
    if out.errors:
        return out
    per_class = len(classes) <= model.quality.max_classes
    if not per_class:
        out.warnings.append(
            (
                ("quality", "max_classes"),
                f"{len(classes)} classes, more than max_classes: per-class recall is not exported",
            )
        )
    metrics = tuple(model.quality.metrics or MULTICLASS_METRICS)
    out.spec = QualitySpec(
        "multiclass", metrics, cols.target, cols.prediction, classes=tuple(classes), per_class=per_class
    )
    return out


def _binary(model: ModelConfig, classes: list[str], out: Resolution) -> Resolution:
    cols = model.columns
    assert cols.target is not None and isinstance(cols.prediction, str)
    positive = ClassMapper(classes).find(cols.positive_label)
    if positive is None and len(classes) == 2:
        shown = ", ".join(repr(c) for c in classes)
        out.errors.append(
            (
                ("columns", "positive_label"),
                f"{cols.positive_label!r} is not among the classes of {cols.target} in the reference "
                f"({shown})",
            )
        )
        return out
    if positive is None:  # the reference shows one class only; the positive one may be the other
        out.warnings.append(
            (("reference",), f"the reference holds the single class {classes[0]!r}: quality has no baseline")
        )
        classes = [*classes, cols.positive_label]
        positive = len(classes) - 1
    wrong = [m for m in model.quality.metrics or () if m not in BINARY_METRICS]
    if wrong:
        out.errors.append(
            (("quality", "metrics"), f"{wrong} are not binary metrics; choose from {BINARY_METRICS}")
        )
        return out
    default = BINARY_METRICS if cols.probability else BINARY_METRICS[:-1]
    out.spec = QualitySpec(
        "binary",
        tuple(model.quality.metrics or default),
        cols.target,
        cols.prediction,
        probability=cols.probability,
        classes=tuple(classes),
        positive=positive,
        per_class=len(classes) <= model.quality.max_classes,
    )
    return out
