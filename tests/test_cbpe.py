"""CBPE against a synthetic model whose calibration is known: the true chance of a positive label is
the square of the model's score. The estimates must find the quality that this known truth implies,
under covariate shift, and the realised quality must fall inside their intervals."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from monitor_service.engine.cbpe import Calibration, calibrate, estimate
from monitor_service.model_quality.metrics import roc_auc

METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")


def _truth(score: np.ndarray) -> np.ndarray:
    """P(label = 1 | score): the model is overconfident below 1 (a score of 0.5 means 0.25)."""
    return score**2


def _reference(rows: int = 20_000, seed: int = 0) -> Calibration:
    rng = np.random.default_rng(seed)
    score = rng.random(rows)
    labels = rng.random(rows) < _truth(score)
    calibration = calibrate(score, labels, seed=1)
    assert isinstance(calibration, Calibration)
    return calibration


def _expected(score: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """The quality a window's labels show on average, from the known truth."""
    p = _truth(score)
    tp, fp, fn = (p * predicted).sum(), ((1 - p) * predicted).sum(), (p * ~predicted).sum()
    tn = len(p) - tp - fp - fn
    return {
        "accuracy": (tp + tn) / len(p),
        "precision": tp / (tp + fp),
        "recall": tp / (tp + fn),
        "f1": 2 * tp / (2 * tp + fp + fn),
        "roc_auc": float(roc_auc(score, p, 1 - p)),
    }


def _estimate(
    calibration: Calibration, score: np.ndarray, predicted: np.ndarray, seed: int
) -> dict[str, tuple[float, float, float]]:
    values, skipped = estimate(
        calibration, score, predicted, metrics=METRICS, confidence=0.95, resamples=1000, seed=seed
    )
    assert skipped == []
    return {v.metric: (v.value, v.lower, v.upper) for v in values}


@pytest.mark.parametrize(
    ("a", "b"), [(1.0, 1.0), (3.0, 1.5), (1.0, 3.0)], ids=["same", "high-scores", "low-scores"]
)
def test_estimates_find_the_quality_the_known_calibration_implies(a: float, b: float) -> None:
    """On the reference's own distribution and under two covariate shifts (Beta-distributed scores),
    the estimates agree with the truth: within 0.025 (the calibration learnt from 20,000 reference
    rows is coarse where positives are rare), and inside the estimate's own interval."""
    calibration = _reference()
    score = np.random.default_rng(7).beta(a, b, 5000)
    predicted = score >= 0.5
    expected = _expected(score, predicted)
    estimated = _estimate(calibration, score, predicted, seed=3)
    for metric in METRICS:
        value, lower, upper = estimated[metric]
        assert value == pytest.approx(expected[metric], abs=0.025), metric
        assert lower < expected[metric] < upper, metric


def test_realised_quality_falls_in_the_estimates_interval_95_percent_of_windows() -> None:
    calibration = _reference()
    rng = np.random.default_rng(11)
    covered = dict.fromkeys(METRICS, 0)
    windows = 200
    for window in range(windows):
        score = rng.beta(3.0, 1.5, 1000)  # shifted towards high scores
        predicted = score >= 0.5
        labels = rng.random(1000) < _truth(score)
        realised = {
            "accuracy": skm.accuracy_score(labels, predicted),
            "precision": skm.precision_score(labels, predicted),
            "recall": skm.recall_score(labels, predicted),
            "f1": skm.f1_score(labels, predicted),
            "roc_auc": skm.roc_auc_score(labels, score),
        }
        for metric, (_, lower, upper) in _estimate(calibration, score, predicted, seed=window).items():
            covered[metric] += lower <= realised[metric] <= upper
    for metric, count in covered.items():
        assert 0.90 <= count / windows <= 0.99, (metric, count / windows)


def test_a_calibrated_model_estimates_its_own_probabilities() -> None:
    rng = np.random.default_rng(5)
    score = rng.random(10_000)
    calibration = calibrate(score, rng.random(10_000) < score, seed=2)
    assert isinstance(calibration, Calibration)
    grid = np.linspace(0.05, 0.95, 19)
    assert calibration.main(grid) == pytest.approx(grid, abs=0.06)


def test_calibration_needs_both_classes_and_enough_rows() -> None:
    assert calibrate(np.linspace(0, 1, 500), np.ones(500, dtype=bool), seed=0) == "reference_single_class"
    assert calibrate(np.linspace(0, 1, 20), np.arange(20) % 2 == 0, seed=0) == "no_reference_labels"


def test_estimates_without_positive_predictions_skip_precision_with_a_reason() -> None:
    calibration = _reference()
    score = np.random.default_rng(1).random(300) * 0.4
    values, skipped = estimate(
        calibration, score, score >= 0.5, metrics=METRICS, confidence=0.95, resamples=200, seed=0
    )
    assert ("precision", "no_positive_predictions") in skipped
    assert {v.metric for v in values} >= {"accuracy", "roc_auc"}


def test_same_rows_give_the_same_estimates() -> None:
    calibration = _reference()
    score = np.random.default_rng(2).random(800)
    first = _estimate(calibration, score, score >= 0.5, seed=42)
    assert _estimate(calibration, score.copy(), score >= 0.5, seed=42) == first
