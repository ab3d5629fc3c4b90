"""Model quality of a window: realised on its labels with intervals, against a baseline, and
estimated without labels (CBPE), every metric asked for either computed or skipped with a reason.

What depends on the reference only (the spec, the reference's own quality, the calibration) is
computed once per reference and kept (keyed by the model's settings and the reference's content).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitor_service.config import ModelConfig
from monitor_service.engine.cbpe import Calibration, calibrate, estimate
from monitor_service.model_quality.intervals import window_seed
from monitor_service.model_quality.realised import Labelled, labelled, point_values, realised
from monitor_service.model_quality.spec import (
    BINARY_METRICS,
    ESTIMATED_METRICS,
    REGRESSION_METRICS,
    QualitySpec,
    quality_enabled,
    resolve,
)
from monitor_service.results import Baseline, ModelQualityResult, QualitySkip, QualityValue

log = logging.getLogger(__name__)
_CACHE_SIZE = 16


@dataclass(frozen=True)
class ReferenceQuality:
    """Everything quality needs from one reference, computed once."""

    spec: QualitySpec | None
    problem: str | None  # a reason from REASONS when the config does not fit this reference
    baseline: dict[str, float]
    calibration: Calibration | str | None  # None: not asked; str: why it cannot be had


_REFERENCES: OrderedDict[tuple[str, str, int], ReferenceQuality] = OrderedDict()


def _reference_key(model: ModelConfig, reference: pd.DataFrame) -> tuple[str, str, int]:
    settings = model.model_dump_json(include={"task", "columns", "metrics", "quality"})
    cols = model.columns
    names = [c for c in (cols.target, cols.prediction, cols.probability) if isinstance(c, str)]
    content = [reference[c].to_numpy() for c in names if c in reference.columns]
    return model.name, settings, window_seed(str(len(reference)), *content)


def reference_quality(model: ModelConfig, reference: pd.DataFrame) -> ReferenceQuality:
    """The cached spec, baseline and calibration of this model and reference."""
    key = _reference_key(model, reference)
    found = _REFERENCES.get(key)
    if found is None:
        found = _build_reference_quality(model, reference, key[2])
        _REFERENCES[key] = found
        while len(_REFERENCES) > _CACHE_SIZE:
            _REFERENCES.popitem(last=False)
    else:
        _REFERENCES.move_to_end(key)
    return found


def _build_reference_quality(model: ModelConfig, reference: pd.DataFrame, seed: int) -> ReferenceQuality:
    resolution = resolve(model, reference)
    spec = resolution.spec
    if spec is None:
        problem = None if resolution.off_because else "reference_mismatch"
        return ReferenceQuality(None, problem, {}, None)
    own = labelled(spec, reference)
    baseline = point_values(own)
    calibration: Calibration | str | None = None
    if spec.kind == "binary" and spec.probability and model.quality.estimate:
        calibration = (
            calibrate(own.scores, own.truth == spec.positive, seed) if own.rows else "no_reference_labels"
        )
    return ReferenceQuality(spec, None, baseline, calibration)


def model_quality(
    model: ModelConfig, reference: pd.DataFrame, current: pd.DataFrame
) -> ModelQualityResult | None:
    """Quality of the window, or None when model quality is off for this model."""
    if quality_enabled(model) is not None:
        return None
    settings = model.quality
    ref = reference_quality(model, reference)
    if ref.spec is None:  # e.g. a reference replaced through the API without the positive class
        if model.task == "regression":
            asked: tuple[str, ...] = REGRESSION_METRICS
        else:
            asked = BINARY_METRICS if model.columns.probability else BINARY_METRICS[:-1]
        reason = ref.problem or "reference_mismatch"
        return ModelQualityResult(
            "regression" if model.task == "regression" else "classification",
            0,
            settings.min_labelled_rows,
            settings.confidence,
            skipped=tuple(QualitySkip(m, reason) for m in settings.metrics or asked),
        )
    spec = ref.spec
    data = labelled(spec, current)
    seed = window_seed(model.name, data.truth, data.predicted, data.scores)
    real = realised(
        data,
        min_rows=settings.min_labelled_rows,
        confidence=settings.confidence,
        resamples=settings.resamples,
        seed=seed,
    )
    baselines, baseline_skipped = _baselines(model, spec, ref)
    estimated, estimated_skipped = _estimates(model, spec, ref, current)
    return ModelQualityResult(
        kind=spec.kind,
        labelled_rows=data.rows,
        min_labelled_rows=settings.min_labelled_rows,
        confidence=settings.confidence,
        metrics=tuple(real.metrics),
        skipped=tuple(real.skipped),
        class_recall=tuple(real.class_recall),
        class_recall_skipped=tuple(real.class_skipped),
        baseline=baselines,
        baseline_skipped=baseline_skipped,
        estimated=estimated,
        estimated_skipped=estimated_skipped,
        mape_zero_targets=real.mape_zero_targets,
    )


def _baselines(
    model: ModelConfig, spec: QualitySpec, ref: ReferenceQuality
) -> tuple[tuple[Baseline, ...], tuple[QualitySkip, ...]]:
    out, skipped = [], []
    configured = model.quality.baseline
    for metric in spec.metrics:
        if metric in configured:
            out.append(Baseline(metric, float(configured[metric]), "config"))
        elif metric in ref.baseline:
            out.append(Baseline(metric, ref.baseline[metric], "reference"))
        else:
            skipped.append(QualitySkip(metric, "no_reference_labels"))
    return tuple(out), tuple(skipped)


def _estimates(
    model: ModelConfig, spec: QualitySpec, ref: ReferenceQuality, current: pd.DataFrame
) -> tuple[tuple[QualityValue, ...], tuple[QualitySkip, ...]]:
    if ref.calibration is None or spec.probability is None:
        return (), ()
    wanted = [m for m in spec.metrics if m in ESTIMATED_METRICS]
    if isinstance(ref.calibration, str):
        return (), tuple(QualitySkip(m, ref.calibration) for m in wanted)
    rows = current[current[spec.prediction].notna()]
    scores = np.asarray(rows[spec.probability].to_numpy(), dtype=np.float64)
    predicted = spec.mapper.codes(rows[spec.prediction].to_numpy()) == spec.positive
    values, skipped = estimate(
        ref.calibration,
        scores,
        predicted,
        metrics=tuple(wanted),
        confidence=model.quality.confidence,
        resamples=model.quality.resamples,
        seed=window_seed(model.name, scores, predicted.astype(np.float64)),
    )
    return tuple(values), tuple(QualitySkip(m, r) for m, r in skipped)


__all__ = ["Labelled", "ReferenceQuality", "model_quality", "reference_quality"]
