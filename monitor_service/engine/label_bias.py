"""Label-arrival bias: do labels come back at different rates depending on what was predicted?

When the labels of one class arrive sooner (fraud confirmed in hours, legitimate traffic never),
the labelled rows of a window over-represent that class, and target drift on them reports a shift
the population never had. The test: among the window's rows, is 'has a label' independent of the
group (predicted class; for regression, the prediction's quintile in the window)? A chi-square test
of independence on the 2 x groups table, and a difference in labelled share large enough to matter.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency

from monitor_service.config import ModelConfig
from monitor_service.model_quality.spec import ClassMapper, reference_classes
from monitor_service.results import LabelBias, LabelledShare

QUINTILES = 5
MIN_GROUP_ROWS = 30  # groups smaller than this take part in the test, not in the difference


def groups_of(model: ModelConfig, classes: list[str], current: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Group index of each row (-1: no prediction) and the group names (config values only)."""
    prediction = model.columns.prediction
    assert isinstance(prediction, str)
    values = current[prediction].to_numpy()
    if model.task == "regression":
        numbers = np.asarray(values, dtype=np.float64)
        finite = np.isfinite(numbers)
        if finite.sum() < QUINTILES:
            return np.full(len(numbers), -1), []
        edges = np.quantile(numbers[finite], np.linspace(0, 1, QUINTILES + 1)[1:-1])
        index = np.where(finite, np.searchsorted(edges, np.where(finite, numbers, 0), side="right"), -1)
        return index, [f"q{i + 1}" for i in range(QUINTILES)]
    codes = ClassMapper(classes).codes(values)
    other = len(classes)
    index = np.where(codes >= 0, codes, np.where(codes == -1, other, -1))
    return index, [*classes, "other"]


def label_bias(
    model: ModelConfig, classes: list[str], current: pd.DataFrame, *, alpha: float, min_difference: float
) -> LabelBias | None:
    """The test on the window, or None when it cannot tell (no prediction column, no labels, or
    every row labelled)."""
    target, prediction = model.columns.target, model.columns.prediction
    if not target or not isinstance(prediction, str) or current.empty:
        return None
    labelled = current[target].notna().to_numpy()
    group, names = groups_of(model, classes, current)
    usable = group >= 0
    labelled, group = labelled[usable], group[usable]
    if not labelled.any():
        return None
    rows = np.bincount(group, minlength=len(names))
    hits = np.bincount(group, weights=labelled, minlength=len(names)).astype(np.int64)
    shares = tuple(
        LabelledShare(name, int(r), int(h)) for name, r, h in zip(names, rows, hits, strict=True) if r
    )
    if labelled.all() or len(shares) < 2:
        return LabelBias(False, 1.0, 0.0, shares)
    table = np.array([[s.labelled for s in shares], [s.rows - s.labelled for s in shares]])
    pvalue = float(chi2_contingency(table, correction=False).pvalue)
    big = [s.labelled / s.rows for s in shares if s.rows >= MIN_GROUP_ROWS]
    difference = max(big) - min(big) if len(big) >= 2 else 0.0
    return LabelBias(pvalue < alpha and difference >= min_difference, pvalue, difference, shares)


def target_drift_gate(model: ModelConfig, labelled: int, bias: LabelBias | None) -> str | None:
    """Why target drift is not tested on this window (a reason of model_quality.spec.REASONS)."""
    if labelled == 0:
        return "no_labels"
    if labelled < model.quality.min_labelled_rows_target_drift:
        return "insufficient_labels"
    if bias is not None and bias.detected:
        return "label_arrival_bias"
    return None


def window_label_bias(model: ModelConfig, reference: pd.DataFrame, current: pd.DataFrame) -> LabelBias | None:
    """`label_bias` with the model's settings and classes, when target drift or quality needs it."""
    if not {"target_drift", "model_quality"} & set(model.metrics):
        return None
    settings = model.quality
    classes = reference_classes(model, reference) if model.task == "classification" else []
    return label_bias(
        model,
        classes[: settings.max_classes],
        current,
        alpha=settings.label_bias_alpha,
        min_difference=settings.label_bias_min_difference,
    )
