"""Quality formulas on labelled rows, vectorised over resamples (numpy only).

Every function takes per-row counts (`weights`, shape (resamples, rows)) or confusion matrices with
leading resample dimensions, so a point value and a thousand bootstrap resamples are the same code.
Undefined values are NaN; `undefined_reason` says why for the observed rows.

Classification rows are class indices: 0..K-1 the model's classes, OTHER_HIT for a label outside
them that the prediction spells the same way (a hit), OTHER for any other label outside them.
The confusion matrix is (K+2) x (K+2), truth by row and prediction by column.
"""

from __future__ import annotations

import numpy as np

from monitor_service.model_quality.spec import Kind

# Offsets past the K classes, see the module docstring.
OTHER_HIT = 0
OTHER = 1


def confusion(truth: np.ndarray, predicted: np.ndarray, k: int, hits: np.ndarray) -> np.ndarray:
    """(K+2) x (K+2) counts. `truth`/`predicted` are class indices, -1 outside the classes;
    `hits` marks rows whose label and prediction are spelled the same."""
    t = np.where(truth >= 0, truth, np.where(hits, k + OTHER_HIT, k + OTHER))
    p = np.where(predicted >= 0, predicted, np.where(hits, k + OTHER_HIT, k + OTHER))
    size = k + 2
    return np.bincount(t * size + p, minlength=size * size).reshape(size, size).astype(np.float64)


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan)


def classification(matrices: np.ndarray, kind: Kind, positive: int | None, k: int) -> dict[str, np.ndarray]:
    """Every classification metric from confusion matrices of shape (..., K+2, K+2)."""
    n = matrices.sum(axis=(-2, -1))
    diagonal = np.diagonal(matrices, axis1=-2, axis2=-1)
    out = {"accuracy": _divide(diagonal[..., : k + 1].sum(axis=-1), n)}
    tp = diagonal[..., :k]
    support = matrices[..., :k, :].sum(axis=-1)
    predicted = matrices[..., :, :k].sum(axis=-2)
    if kind == "binary":
        assert positive is not None
        tp_p, sup_p, pred_p = tp[..., positive], support[..., positive], predicted[..., positive]
        out["precision"] = _divide(tp_p, pred_p)
        out["recall"] = _divide(tp_p, sup_p)
        out["f1"] = _divide(2 * tp_p, sup_p + pred_p)
        return out
    present = support > 0  # macro averages run over the classes present among the labels
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / np.where(predicted > 0, predicted, 1), 0.0)
        recall = np.where(present, tp / np.where(present, support, 1), 0.0)
        f1 = np.where(present, 2 * tp / np.where(present, support + predicted, 1), 0.0)
    classes_present = present.sum(axis=-1)
    total = support.sum(axis=-1)
    for name, per_class in (("precision", precision), ("recall", recall), ("f1", f1)):
        out[f"{name}_macro"] = _divide((per_class * present).sum(axis=-1), classes_present)
        out[f"{name}_weighted"] = _divide((per_class * support).sum(axis=-1), total)
    return out


def class_recall(matrices: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Hits and labelled rows of each class (..., K)."""
    diagonal = np.diagonal(matrices, axis1=-2, axis2=-1)[..., :k]
    return diagonal, matrices[..., :k, :].sum(axis=-1)


def classification_reason(metric: str, matrix: np.ndarray, positive: int | None, k: int) -> str | None:
    """Why `metric` is undefined on this confusion matrix (None when it is defined)."""
    if matrix.sum() == 0:
        return "no_rows"
    support = matrix[:k, :].sum(axis=-1)
    predicted = matrix[:, :k].sum(axis=-2)
    if positive is not None:
        if metric == "precision" and predicted[positive] == 0:
            return "no_positive_predictions"
        if metric == "recall" and support[positive] == 0:
            return "no_positive_labels"
        if metric == "f1" and support[positive] + predicted[positive] == 0:
            return "no_positive_rows"
    elif metric != "accuracy" and support.sum() == 0:
        return "class_absent"
    return None


def regression(truth: np.ndarray, predicted: np.ndarray, weights: np.ndarray | None) -> dict[str, np.ndarray]:
    """MAE, RMSE, MAPE (percent, over the rows whose target is not zero) and R², per resample.

    `weights` (resamples, rows) are how often each row is drawn; None is the rows themselves.
    """
    error = truth - predicted
    nonzero = truth != 0
    ape = np.where(nonzero, np.abs(error) / np.where(nonzero, np.abs(truth), 1.0), 0.0)
    centred = truth - truth.mean() if len(truth) else truth  # R² without cancellation
    columns = np.stack(
        [np.ones_like(error), np.abs(error), error**2, ape, nonzero.astype(np.float64), centred, centred**2],
        axis=1,
    )
    sums = columns.sum(axis=0) if weights is None else weights @ columns
    n, abs_sum, sq_sum, ape_sum, ape_n, y_sum, y_sq_sum = (sums[..., i] for i in range(7))
    with np.errstate(divide="ignore", invalid="ignore"):
        total = np.where(n > 0, y_sq_sum - y_sum**2 / np.where(n > 0, n, 1), 0.0)
        # Relative to the scale of the targets: a constant target leaves only rounding error here.
        constant = total <= 1e-12 * np.maximum(y_sq_sum, 1e-300)
        return {
            "mae": _divide(abs_sum, n),
            "rmse": np.sqrt(_divide(sq_sum, n)),
            "mape": _divide(100.0 * ape_sum, ape_n),
            "r2": np.where(constant | (n < 2), np.nan, 1.0 - sq_sum / np.where(constant, 1.0, total)),
        }


def regression_reason(metric: str, truth: np.ndarray) -> str | None:
    if len(truth) == 0:
        return "no_rows"
    if metric == "mape" and not np.any(truth != 0):
        return "zero_targets"
    if metric == "r2" and (len(truth) < 2 or np.all(truth == truth[0])):
        return "constant_target"
    return None


class RankedScores:
    """Scores sorted once and grouped by equal value: the ROC AUC of any weighting of the rows.

    Weights given to `roc_auc_sorted` are in the order of `order` (use `sort` on per-row arrays):
    bootstrap counts and simulated labels are drawn directly in that order, which saves a gather
    per resample.
    """

    def __init__(self, scores: np.ndarray) -> None:
        self.order = np.argsort(scores, kind="stable")
        ordered = scores[self.order]
        self.starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(scores) else self.order

    def sort(self, values: np.ndarray) -> np.ndarray:
        return values[..., self.order]

    def roc_auc_sorted(self, positive_weights: np.ndarray, negative_weights: np.ndarray) -> np.ndarray:
        """Area under the ROC curve with weighted rows: each row counts `positive_weights` times as
        a positive and `negative_weights` times as a negative (0/1 for labelled rows; counts for
        bootstrap resamples; calibrated probabilities for estimates). Ties count one half.
        Weights are (rows,) or (resamples, rows), in sorted order."""
        if len(self.starts) == positive_weights.shape[-1]:  # no ties: no grouping needed
            positives, negatives = positive_weights, negative_weights
        else:
            positives = np.add.reduceat(positive_weights, self.starts, axis=-1)
            negatives = np.add.reduceat(negative_weights, self.starts, axis=-1)
        below = np.cumsum(negatives, axis=-1) - negatives
        pairs = positives.sum(axis=-1) * negatives.sum(axis=-1)
        return _divide((positives * (below + 0.5 * negatives)).sum(axis=-1), pairs)


def roc_auc(scores: np.ndarray, positive_weights: np.ndarray, negative_weights: np.ndarray) -> np.ndarray:
    """ROC AUC of weighted rows in their own order (see `RankedScores.roc_auc_sorted`)."""
    ranked = RankedScores(scores)
    return ranked.roc_auc_sorted(
        ranked.sort(np.asarray(positive_weights)), ranked.sort(np.asarray(negative_weights))
    )


def roc_auc_reason(truth_positive: np.ndarray) -> str | None:
    if len(truth_positive) == 0:
        return "no_probabilities"
    if truth_positive.all() or not truth_positive.any():
        return "single_class"
    return None
