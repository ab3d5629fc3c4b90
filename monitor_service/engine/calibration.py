"""Optional thresholds calibrated from the reference's own variation (`drift.calibration:
reference_chunks`), as NannyML does: the reference is cut into chunks of the window's size in file
order, each chunk is compared with the rest of the reference, and each column's effect floor and the
classifier's AUC floor are raised to the mean + 3 standard deviations of those chunk statistics.

This is for references whose rows come in a natural order (by time, by user): contiguous blocks of
such data differ from each other without any population change, and the tests, which assume a
sample, would call that drift. Computed once per reference and window size, then cached.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from evidently.legacy.calculations.stattests.registry import get_registered_stattest

from monitor_service.config import ModelConfig
from monitor_service.engine.drift import clean
from monitor_service.engine.plan import ColumnPlan

MAX_CHUNKS = 10
MIN_CHUNKS = 4
SPREAD = 3.0


@dataclass(frozen=True)
class Calibration:
    chunk_rows: int
    chunks: int
    min_effect: dict[str, float]  # column -> calibrated floor (before the configured one is applied)
    min_auc: float | None


_CACHE: dict[tuple[str, int, int, int], Calibration] = {}


def chunk_rows(model: ModelConfig, reference: pd.DataFrame) -> int:
    return max(1, min(model.window.max_rows, len(reference) // MIN_CHUNKS))


def _fingerprint(reference: pd.DataFrame) -> int:
    return int(pd.util.hash_pandas_object(reference, index=False).sum())


def _chunks(rows: int, size: int) -> list[np.ndarray]:
    count = min(MAX_CHUNKS, rows // size)
    starts = np.linspace(0, rows - size, count).astype(int) if count > 1 else np.array([0])
    return [np.arange(s, s + size) for s in starts]


def calibrate(model: ModelConfig, reference: pd.DataFrame, plans: list[ColumnPlan]) -> Calibration:
    """Chunk statistics of the reference against its own rest (cached per reference content)."""
    size = chunk_rows(model, reference)
    key = (model.name, _fingerprint(reference), size, hash(tuple(plans)))
    if key in _CACHE:
        return _CACHE[key]
    chunks = _chunks(len(reference), size)
    floors: dict[str, float] = {}
    for plan in plans:
        effect = get_registered_stattest(plan.effect, plan.test_type)
        sizes = []
        for rows in chunks:
            rest = np.setdiff1d(np.arange(len(reference)), rows)
            ref = clean(reference[plan.column].iloc[rest])
            cur = clean(reference[plan.column].iloc[rows])
            if ref.empty or cur.empty:
                continue
            sizes.append(float(effect(ref, cur, plan.test_type, plan.min_effect).drift_score))
        if len(sizes) >= 2:
            floors[plan.column] = float(np.mean(sizes) + SPREAD * np.std(sizes, ddof=1))
    calibration = Calibration(size, len(chunks), floors, _auc_floor(model, reference, chunks))
    if len(_CACHE) >= 32:  # old references of reloaded models
        _CACHE.clear()
    _CACHE[key] = calibration
    return calibration


def _auc_floor(model: ModelConfig, reference: pd.DataFrame, chunks: list[np.ndarray]) -> float | None:
    from monitor_service.engine import domain  # scikit-learn only when calibrating

    settings = model.drift.classifier
    features = model.columns.features
    if not settings.enabled or len(chunks) < 2:
        return None
    aucs = []
    for rows in chunks:
        rest = np.setdiff1d(np.arange(len(reference)), rows)
        result = domain.classify(
            model.name,
            features,
            list(model.columns.categorical),
            reference.iloc[rest].reset_index(drop=True),
            reference.iloc[rows].reset_index(drop=True),
            max_rows=settings.max_rows,
            alpha=1.0,
            min_auc=0.5,
            top=1,
        )
        if result is not None:
            aucs.append(result.auc)
    if len(aucs) < 2:
        return None
    return float(np.mean(aucs) + SPREAD * np.std(aucs, ddof=1))


def calibrated(model: ModelConfig, reference: pd.DataFrame, plans: list[ColumnPlan]) -> list[ColumnPlan]:
    """The plans with effect floors raised to the reference's own spread (when configured)."""
    if model.drift.calibration == "none":
        return plans
    floors = calibrate(model, reference, plans).min_effect
    return [replace(p, min_effect=max(p.min_effect, floors.get(p.column, 0.0))) for p in plans]


def calibrated_min_auc(model: ModelConfig, reference: pd.DataFrame, plans: list[ColumnPlan]) -> float:
    configured = model.drift.classifier.min_auc
    if model.drift.calibration == "none":
        return configured
    floor = calibrate(model, reference, plans).min_auc
    return configured if floor is None else max(configured, min(floor, 0.99))
