"""Quality estimated without labels: confidence-based performance estimation (CBPE).

A binary classifier's probability, once calibrated on the reference, is the chance that each row is
positive. The calibration is an isotonic regression of the reference's labels on its probabilities,
centred (Oron & Flournoy 2017): a line through the centre of each of its blocks instead of steps, so
rows of one block keep the order their scores give them (a step function ties them, which biases
the estimated ROC AUC down for windows whose scores fall in few blocks), and each block's share of
positives shrunk as (positives + 1/2) / (rows + 1), so no score is certainly right or wrong. The expected
confusion matrix of a window follows: a row predicted positive is a true positive with probability
p and a false positive with 1 - p, and so on. From it: accuracy, precision, recall, F1, and ROC AUC
(each row a positive with weight p and a negative with weight 1 - p).

The interval is that of the quality the window's labels will show: labels are drawn as
Bernoulli(p) many times (with calibrators fitted on bootstrap resamples of the reference, so the
reference's own finite size counts too) and the metrics computed on each draw.

Valid while the relation between inputs and labels holds (no concept drift) and when the
reference's probabilities are out-of-sample (holdout or out-of-fold); see docs/model-quality.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.isotonic import IsotonicRegression

from monitor_service.model_quality import metrics as formulas
from monitor_service.model_quality.intervals import BLOCK_CELLS, percentile_interval
from monitor_service.model_quality.spec import ESTIMATED_METRICS
from monitor_service.results import QualityValue

MIN_REFERENCE_ROWS = 50
CALIBRATORS = 20  # bootstrap calibrators for the reference's own uncertainty


@dataclass(frozen=True)
class Curve:
    """A fitted isotonic calibration as its breakpoints (light to keep and to send)."""

    x: np.ndarray
    y: np.ndarray

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return np.asarray(np.interp(scores, self.x, self.y), dtype=np.float64)


@dataclass(frozen=True)
class Calibration:
    main: Curve
    resampled: tuple[Curve, ...]


def _fit(scores: np.ndarray, positive: np.ndarray) -> Curve:
    """Centred isotonic regression of `positive` on `scores` (see the module docstring)."""
    fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, positive)
    order = np.argsort(scores, kind="stable")
    ordered, level, hits = scores[order], fitted.predict(scores[order]), positive[order]
    starts = np.flatnonzero(np.r_[True, level[1:] != level[:-1]])
    rows = np.diff(np.r_[starts, len(ordered)])
    centres = np.add.reduceat(ordered, starts) / rows
    shares = np.maximum.accumulate((np.add.reduceat(hits, starts) + 0.5) / (rows + 1.0))
    return Curve(centres, shares)


def calibrate(scores: np.ndarray, positive: np.ndarray, seed: int) -> Calibration | str:
    """Calibration fitted on the reference's probabilities and labels, or the reason it cannot be."""
    keep = np.isfinite(scores)
    scores, positive = scores[keep], positive[keep].astype(np.float64)
    if len(scores) < MIN_REFERENCE_ROWS:
        return "no_reference_labels"
    if positive.min() == positive.max():
        return "reference_single_class"
    rng = np.random.default_rng(seed)
    resampled = []
    for _ in range(CALIBRATORS):
        drawn = rng.integers(0, len(scores), len(scores))
        resampled.append(_fit(scores[drawn], positive[drawn]))
    return Calibration(_fit(scores, positive), tuple(resampled))


def _metrics(positive: np.ndarray, predicted: np.ndarray) -> dict[str, np.ndarray]:
    """The binary metrics for (expected or drawn) positives `positive` (..., rows)."""
    n = positive.shape[-1]
    tp = (positive * predicted).sum(axis=-1)
    fp = ((1 - positive) * predicted).sum(axis=-1)
    fn = (positive * (1 - predicted)).sum(axis=-1)
    tn = n - tp - fp - fn
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "accuracy": (tp + tn) / n,
            "precision": np.where(tp + fp > 0, tp / (tp + fp), np.nan),
            "recall": np.where(tp + fn > 0, tp / (tp + fn), np.nan),
            "f1": np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan),
        }


def estimate(
    calibration: Calibration,
    scores: np.ndarray,
    predicted_positive: np.ndarray,
    *,
    metrics: tuple[str, ...],
    confidence: float,
    resamples: int,
    seed: int,
) -> tuple[list[QualityValue], list[tuple[str, str]]]:
    """Estimated metrics with intervals, and (metric, reason) for those that cannot be estimated."""
    wanted = [m for m in ESTIMATED_METRICS if m in metrics]
    keep = np.isfinite(scores)
    scores, predicted = scores[keep], predicted_positive[keep].astype(np.float64)
    if len(scores) == 0:
        return [], [(m, "no_rows") for m in wanted]
    # Every metric is a sum over rows: work in the order of the scores, which ROC AUC needs.
    ranked = formulas.RankedScores(scores)
    scores, predicted = ranked.sort(scores), ranked.sort(predicted)
    expected = calibration.main(scores)
    point = {k: float(v) for k, v in _metrics(expected, predicted).items()}
    point["roc_auc"] = float(ranked.roc_auc_sorted(expected, 1 - expected))
    draws = _simulate(calibration, ranked, scores, predicted, resamples, seed)
    values, skipped = [], []
    for metric in wanted:
        if not np.isfinite(point[metric]):
            skipped.append((metric, "no_positive_predictions" if metric == "precision" else "single_class"))
            continue
        low, high = percentile_interval(draws[metric], confidence)
        values.append(QualityValue(metric, point[metric], low, high, len(scores), "simulation"))
    return values, skipped


def _simulate(
    calibration: Calibration,
    ranked: formulas.RankedScores,
    scores: np.ndarray,
    predicted: np.ndarray,
    resamples: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """Metrics of `resamples` label draws, each from one of the bootstrap calibrators (rows in the
    order of `ranked`)."""
    rng = np.random.default_rng(seed)
    curves = calibration.resampled or (calibration.main,)
    probabilities = np.stack([curve(scores) for curve in curves])
    n = len(scores)
    block = max(1, BLOCK_CELLS // n)
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, resamples, block):
        size = min(block, resamples - start)
        which = np.arange(start, start + size) % len(curves)
        drawn = (rng.random((size, n)) < probabilities[which]).astype(np.float64)
        values = _metrics(drawn, predicted)
        values["roc_auc"] = ranked.roc_auc_sorted(drawn, 1 - drawn)
        for name, array in values.items():
            parts.setdefault(name, []).append(array)
    return {name: np.concatenate(arrays) for name, arrays in parts.items()}
