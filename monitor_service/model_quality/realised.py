"""Realised quality: the metrics on the labelled rows of a window, with intervals and skip reasons."""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from monitor_service.model_quality import metrics as formulas
from monitor_service.model_quality.intervals import (
    BLOCK_CELLS,
    bootstrap_weights,
    percentile_interval,
    wilson,
)
from monitor_service.model_quality.spec import QualitySpec
from monitor_service.results import ClassRecall, QualitySkip, QualityValue


@dataclass(frozen=True)
class Labelled:
    """The rows of a window (or reference) that carry a label and a prediction."""

    spec: QualitySpec
    truth: np.ndarray  # float for regression, class index otherwise (-1: outside the classes)
    predicted: np.ndarray
    hits: np.ndarray  # classification: label and prediction spelled the same
    scores: np.ndarray  # binary with a probability column: P(positive), NaN where missing

    @property
    def rows(self) -> int:
        return len(self.truth)

    def confusion(self) -> np.ndarray:
        return formulas.confusion(self.truth, self.predicted, len(self.spec.classes), self.hits)


def labelled(spec: QualitySpec, frame: pd.DataFrame) -> Labelled:
    """Select and encode the labelled rows of `frame`."""
    empty = np.zeros(0)
    if spec.target not in frame.columns or spec.prediction not in frame.columns:
        return Labelled(spec, empty, empty, np.zeros(0, dtype=bool), empty)
    target, prediction = frame[spec.target].to_numpy(), frame[spec.prediction].to_numpy()
    if spec.kind == "regression":
        truth = np.asarray(target, dtype=np.float64)
        predicted = np.asarray(prediction, dtype=np.float64)
        keep = np.isfinite(truth) & np.isfinite(predicted)
        return Labelled(spec, truth[keep], predicted[keep], np.zeros(keep.sum(), dtype=bool), empty)
    keep = pd.notna(target) & pd.notna(prediction)
    target, prediction = target[keep], prediction[keep]
    mapper = spec.mapper
    truth, predicted = mapper.codes(target), mapper.codes(prediction)
    hits = (truth < 0) & (predicted < 0) & (target.astype(str) == prediction.astype(str))
    scores = empty
    if spec.probability and spec.probability in frame.columns:
        scores = np.asarray(frame[spec.probability].to_numpy()[keep], dtype=np.float64)
    return Labelled(spec, truth, predicted, hits, scores)


def point_values(data: Labelled) -> dict[str, float]:
    """Every defined metric of the spec, without intervals (the reference's own quality)."""
    spec = data.spec
    if data.rows == 0:
        return {}
    if spec.kind == "regression":
        values = {k: float(v) for k, v in formulas.regression(data.truth, data.predicted, None).items()}
    else:
        k = len(spec.classes)
        values = {
            name: float(v)
            for name, v in formulas.classification(data.confusion(), spec.kind, spec.positive, k).items()
        }
        if "roc_auc" in spec.metrics and len(data.scores):
            values["roc_auc"] = _auc_point(data)
    return {m: values[m] for m in spec.metrics if m in values and math.isfinite(values[m])}


def _auc_point(data: Labelled) -> float:
    has_score = np.isfinite(data.scores)
    positive = (data.truth == data.spec.positive)[has_score].astype(np.float64)
    return float(formulas.roc_auc(data.scores[has_score], positive, 1 - positive))


@dataclass
class Realised:
    metrics: list[QualityValue] = field(default_factory=list)
    skipped: list[QualitySkip] = field(default_factory=list)
    class_recall: list[ClassRecall] = field(default_factory=list)
    class_skipped: list[QualitySkip] = field(default_factory=list)
    mape_zero_targets: int = 0


def _add(out: Realised, value: QualityValue) -> None:
    """A metric with its interval; one whose resamples are mostly undefined (R² of two rows) has no
    interval, and no number without one: too few labels."""
    if math.isfinite(value.lower) and math.isfinite(value.upper):
        out.metrics.append(value)
    else:
        out.skipped.append(QualitySkip(value.metric, "insufficient_labels"))


def _rng(seed: int, name: str) -> np.random.Generator:
    """One stream per metric: adding or removing a metric does not move the others' draws."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def realised(data: Labelled, *, min_rows: int, confidence: float, resamples: int, seed: int) -> Realised:
    """Each metric of the spec with its interval, or the reason it has none."""
    spec, out = data.spec, Realised()
    wanted = list(spec.metrics) + (["class_recall"] if spec.kind != "regression" else [])
    if data.rows == 0 or data.rows < min_rows:
        reason = "no_labels" if data.rows == 0 else "insufficient_labels"
        out.skipped = [QualitySkip(m, reason) for m in wanted]
        return out
    if spec.kind == "regression":
        _regression(data, out, confidence, resamples, seed)
    else:
        _classification(data, out, confidence, resamples, seed)
    return out


def _regression(data: Labelled, out: Realised, confidence: float, resamples: int, seed: int) -> None:
    spec = data.spec
    point = formulas.regression(data.truth, data.predicted, None)
    out.mape_zero_targets = int(np.count_nonzero(data.truth == 0))
    defined = []
    for metric in spec.metrics:
        reason = formulas.regression_reason(metric, data.truth)
        if reason is None and not math.isfinite(float(point[metric])):
            reason = "constant_target" if metric == "r2" else "zero_targets"
        if reason is not None:
            out.skipped.append(QualitySkip(metric, reason))
        else:
            defined.append(metric)
    if not defined:
        return
    samples: dict[str, list[np.ndarray]] = {m: [] for m in defined}
    for weights in bootstrap_weights(_rng(seed, "regression"), data.rows, resamples):
        drawn = formulas.regression(data.truth, data.predicted, weights)
        for metric in defined:
            samples[metric].append(drawn[metric])
    nonzero = data.rows - out.mape_zero_targets
    for metric in defined:
        low, high = percentile_interval(np.concatenate(samples[metric]), confidence)
        rows = nonzero if metric == "mape" else data.rows
        _add(out, QualityValue(metric, float(point[metric]), low, high, rows, "bootstrap"))


def _classification(data: Labelled, out: Realised, confidence: float, resamples: int, seed: int) -> None:
    spec = data.spec
    k = len(spec.classes)
    matrix = data.confusion()
    point = formulas.classification(matrix, spec.kind, spec.positive, k)
    drawn = _resampled_metrics(matrix, _rng(seed, "confusion"), resamples, spec)
    support = matrix[:k, :].sum(axis=-1)
    predicted = matrix[:, :k].sum(axis=-2)
    for metric in spec.metrics:
        if metric == "roc_auc":
            _auc(data, out, confidence, resamples, seed)
            continue
        reason = formulas.classification_reason(metric, matrix, spec.positive, k)
        value = float(point[metric])
        if reason is not None or not math.isfinite(value):
            out.skipped.append(QualitySkip(metric, reason or "class_absent"))
            continue
        if metric == "accuracy":
            hits = float(np.trace(matrix[: k + 1, : k + 1]))
            out.metrics.append(
                QualityValue(metric, value, *wilson(hits, data.rows, confidence), data.rows, "wilson")
            )
        elif spec.kind == "binary" and metric in ("precision", "recall"):
            assert spec.positive is not None
            tp = float(matrix[spec.positive, spec.positive])
            n = predicted[spec.positive] if metric == "precision" else support[spec.positive]
            out.metrics.append(
                QualityValue(metric, value, *wilson(tp, float(n), confidence), int(n), "wilson")
            )
        else:
            low, high = percentile_interval(drawn[metric], confidence)
            _add(out, QualityValue(metric, value, low, high, data.rows, "bootstrap"))
    _class_recall(data, out, matrix, confidence)


def _class_recall(data: Labelled, out: Realised, matrix: np.ndarray, confidence: float) -> None:
    spec = data.spec
    if not spec.per_class:
        out.skipped.append(QualitySkip("class_recall", "too_many_classes"))
        return
    hits, rows = formulas.class_recall(matrix, len(spec.classes))
    for label, hit, n in zip(spec.classes, hits, rows, strict=True):
        if n == 0:
            out.class_skipped.append(QualitySkip(label, "class_absent"))
        else:
            low, high = wilson(float(hit), float(n), confidence)
            out.class_recall.append(ClassRecall(label, float(hit / n), low, high, int(n)))


def _resampled_metrics(
    matrix: np.ndarray, rng: np.random.Generator, resamples: int, spec: QualitySpec
) -> dict[str, np.ndarray]:
    """Every classification metric on bootstrap resamples of the rows. Drawing n rows with
    replacement is drawing n cells from the observed cell shares (multinomial): the cost does not
    grow with the rows, only with the classes."""
    flat = matrix.ravel()
    n = int(flat.sum())
    cells = np.flatnonzero(flat)
    block = max(1, BLOCK_CELLS // flat.size)
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, resamples, block):
        size = min(block, resamples - start)
        drawn = np.zeros((size, flat.size))
        drawn[:, cells] = rng.multinomial(n, flat[cells] / n, size=size)
        values = formulas.classification(
            drawn.reshape(size, *matrix.shape), spec.kind, spec.positive, len(spec.classes)
        )
        for name, array in values.items():
            parts.setdefault(name, []).append(array)
    return {name: np.concatenate(arrays) for name, arrays in parts.items()}


def _auc(data: Labelled, out: Realised, confidence: float, resamples: int, seed: int) -> None:
    has_score = np.isfinite(data.scores) if len(data.scores) else np.zeros(data.rows, dtype=bool)
    positive = (data.truth == data.spec.positive)[has_score]
    reason = formulas.roc_auc_reason(positive)
    if reason is not None:
        out.skipped.append(QualitySkip("roc_auc", reason))
        return
    ranked = formulas.RankedScores(data.scores[has_score])
    pos = ranked.sort(positive.astype(np.float64))
    neg = 1 - pos
    value = float(ranked.roc_auc_sorted(pos, neg))
    # Poisson counts are independent per row: drawn straight in the sorted order.
    draws = [
        ranked.roc_auc_sorted(weights * pos, weights * neg)
        for weights in bootstrap_weights(_rng(seed, "roc_auc"), len(pos), resamples)
    ]
    low, high = percentile_interval(np.concatenate(draws), confidence)
    _add(out, QualityValue("roc_auc", value, low, high, len(pos), "bootstrap"))
