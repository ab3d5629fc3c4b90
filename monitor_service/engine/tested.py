"""Tested mode: per-column two-sample tests corrected across the model's columns, effect floors, the
missing share as a signal of its own, and the domain classifier, combined into one verdict.

The effect floor a column must reach is `min_effect` raised by a noise allowance: twice the effect
size two samples of these sizes show with no change at all (stattests.null_effect). With 200 rows a
window's normed Wasserstein distance from its own population is about 0.08, so without it a 0.05 sd
change on a column with a point mass (significant at once) would pass a 0.1 floor on noise alone.

The chance of any false alarm per model and calculation is held at `drift.alpha`: the classifier's
p-value gets `alpha * classifier.alpha_share`, and the p-values of all columns (distribution and
missing share; features, target and predictions) are corrected together (Holm, or
Benjamini-Hochberg) at the rest. A column drifts when its corrected p-value is at or below its alpha
AND its effect size reaches its floor (so a tiny but certain difference at 100k rows is not drift),
or when its missing share changed significantly by at least `min_missing_change`. The dataset
drifts when the classifier detects, or any feature column drifts, or a feature column could not be
tested at all (counted as a failure, never dropped from the denominator).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from evidently.legacy.calculations.stattests.registry import get_registered_stattest

from monitor_service.config import ModelConfig
from monitor_service.engine import domain
from monitor_service.engine.calibration import calibrated, calibrated_min_auc
from monitor_service.engine.columns import NUMERICAL
from monitor_service.engine.drift import DriftOutcome, clean
from monitor_service.engine.plan import ColumnPlan, plan_columns
from monitor_service.engine.stattests import effective_floor, fisher_2x2, null_effect
from monitor_service.results import ColumnDrift, DomainClassifierResult, MissingDrift, SkippedColumn


@dataclass
class _Raw:
    plan: ColumnPlan
    p_value: float
    effect_size: float
    floor: float  # the configured floor raised by the noise allowance of these sample sizes
    missing: tuple[float, float, float] | None = None  # p-value, reference share, current share


@dataclass
class _Family:
    """The p-values corrected together, in order."""

    p_values: list[float] = field(default_factory=list)

    def add(self, p_value: float) -> int:
        self.p_values.append(p_value)
        return len(self.p_values) - 1


def correct(p_values: list[float], method: str) -> list[float]:
    """Corrected p-values, Holm (step-down) or Benjamini-Hochberg (step-up).

    The same numbers as statsmodels' `multipletests(p, method="holm" | "fdr_bh")[1]` (the tests
    check it), computed here because statsmodels' Holm branch runs a full `gc.collect()` on every
    call, which costs up to a second in a worker holding a large window of Python strings.
    """
    if not p_values:
        return []
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    order = np.argsort(p, kind="mergesort")
    ranked = p[order]
    if method == "holm":
        adjusted = np.maximum.accumulate(ranked * np.arange(m, 0, -1))
    elif method == "bh":
        adjusted = np.minimum.accumulate((ranked / (np.arange(1, m + 1) / float(m)))[::-1])[::-1]
    else:
        raise ValueError(f"unknown correction {method!r}")
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return [float(v) for v in out]


def split_alpha(model: ModelConfig) -> tuple[float, float]:
    """(alpha of the columns' family, alpha of the classifier; 0 when it is off)."""
    drift = model.drift
    if not drift.classifier.enabled or "data_drift" not in model.metrics:
        return drift.alpha, 0.0
    classifier = drift.alpha * drift.classifier.alpha_share
    return drift.alpha - classifier, classifier


def _missing(
    model: ModelConfig, plan: ColumnPlan, reference: pd.Series, current: pd.Series
) -> tuple[float, float, float] | None:
    """Fisher's exact test of the null share (p-value, reference share, window share), or None when
    neither side has a null (or the column is the target, null until labels arrive)."""
    if not model.drift.missing or plan.role == "target":
        return None
    ref_null, cur_null = int(reference.isna().sum()), int(current.isna().sum())
    if ref_null == 0 and cur_null == 0:
        return None
    ref = np.array([ref_null, len(reference) - ref_null])
    cur = np.array([cur_null, len(current) - cur_null])
    return fisher_2x2(ref, cur), ref_null / len(reference), cur_null / len(current)


def _test(plan: ColumnPlan, alpha: float, reference: pd.Series, current: pd.Series) -> tuple[float, float]:
    """Raw p-value and effect size, each from its registered StatTest (as ValueDrift calls it)."""
    test = get_registered_stattest(plan.test, plan.test_type)
    p_value = float(test(reference, current, plan.test_type, alpha).drift_score)
    effect = get_registered_stattest(plan.effect, plan.test_type)
    size = float(effect(reference, current, plan.test_type, plan.min_effect).drift_score)
    if not (np.isfinite(p_value) and np.isfinite(size)):
        raise ValueError(f"{plan.test} gave p-value {p_value}, {plan.effect} gave {size}")
    return p_value, size


def tested_drift(
    model: ModelConfig, reference: pd.DataFrame, current: pd.DataFrame, target_gate: str | None = None
) -> DriftOutcome:
    """The tested mode's drift. `target_gate`: why the target is not tested on this window
    (label_bias.target_drift_gate); it is then reported as skipped, never as untestable."""
    alpha_columns, alpha_classifier = split_alpha(model)
    planned = plan_columns(model, reference)
    plans = calibrated(model, reference, planned)
    raws: list[_Raw] = []
    skipped: list[SkippedColumn] = []
    sorted_refs: dict[str, np.ndarray] = {}  # each numerical column's reference, sorted once
    for plan in plans:
        if plan.role == "target" and target_gate:
            skipped.append(SkippedColumn(plan.column, plan.role, target_gate, target_gate))
            continue
        missing = _missing(model, plan, reference[plan.column], current[plan.column])
        ref, cur = clean(reference[plan.column]), clean(current[plan.column])
        if ref.empty or cur.empty:
            code = "no_reference_values" if ref.empty else "no_current_values"
            side = "reference" if ref.empty else "current window"
            skipped.append(SkippedColumn(plan.column, plan.role, f"no non-null values in the {side}", code))
            continue
        try:
            p_value, size = _test(plan, alpha_columns, ref, cur)
        except Exception as exc:  # a configured test that cannot work on this data
            reason = f"{plan.test}/{plan.effect} failed: {type(exc).__name__}: {exc}"
            skipped.append(SkippedColumn(plan.column, plan.role, reason, "test_failed"))
            continue
        numerical = plan.test_type == NUMERICAL
        if plan.column_type == NUMERICAL:
            sorted_refs[plan.column] = np.sort(ref.to_numpy(dtype=np.float64))
        null = null_effect(plan.measure, ref, len(cur), numerical, sorted_refs.get(plan.column))
        floor = effective_floor(plan.measure, plan.min_effect, null)
        raws.append(_Raw(plan, p_value, size, floor, missing))
    family = _Family()
    slots = [(family.add(r.p_value), family.add(r.missing[0]) if r.missing else None) for r in raws]
    corrected = correct(family.p_values, model.drift.correction)
    columns = tuple(
        _column(model, raw, corrected[value], None if missing is None else corrected[missing], alpha_columns)
        for raw, (value, missing) in zip(raws, slots, strict=True)
    )
    features = [name for name, role in ((p.column, p.role) for p in plans) if role == "feature"]
    classifier = None
    if alpha_classifier > 0 and features:
        min_auc = calibrated_min_auc(model, reference, planned)
        classifier = _classifier(model, reference, current, features, alpha_classifier, min_auc, sorted_refs)
    feature_results = [c for c in columns if c.role == "feature"]
    untestable = [s for s in skipped if s.role == "feature"]
    drifted = sum(c.detected for c in feature_results) + len(untestable)
    dataset = None
    if features:
        dataset = drifted > 0 or bool(classifier and classifier.detected)
    return DriftOutcome(
        columns=columns,
        skipped=tuple(skipped),
        dataset_drift=dataset,
        drifted_columns=drifted,
        tested_columns=len(features),
        alpha=alpha_columns,
        classifier=classifier,
        untestable=len(untestable),
    )


def _column(
    model: ModelConfig, raw: _Raw, corrected: float, missing_corrected: float | None, alpha: float
) -> ColumnDrift:
    plan = raw.plan
    distribution = corrected <= alpha and raw.effect_size >= raw.floor
    missing = None
    if raw.missing is not None and missing_corrected is not None:
        p_value, ref_share, cur_share = raw.missing
        min_change = model.drift.min_missing_change
        missing = MissingDrift(
            test="fisher_homogeneity",
            p_value=p_value,
            corrected_p_value=missing_corrected,
            reference_share=ref_share,
            current_share=cur_share,
            min_change=min_change,
            detected=missing_corrected <= alpha and abs(cur_share - ref_share) >= min_change,
        )
    return ColumnDrift(
        column=plan.column,
        role=plan.role,
        stattest=plan.test,
        score=raw.p_value,
        threshold=alpha,
        detected=distribution or bool(missing and missing.detected),
        p_value=raw.p_value,
        corrected_p_value=corrected,
        effect=plan.effect,
        effect_size=raw.effect_size,
        min_effect=raw.floor,
        distribution_detected=distribution,
        missing=missing,
    )


def _classifier(
    model: ModelConfig,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: list[str],
    alpha: float,
    min_auc: float,
    sorted_refs: dict[str, np.ndarray],
) -> DomainClassifierResult | None:
    settings = model.drift.classifier
    categorical = [c for c in features if c in model.columns.categorical]
    return domain.classify(
        model.name,
        features,
        categorical,
        reference,
        current,
        max_rows=settings.max_rows,
        alpha=alpha,
        min_auc=min_auc,
        top=settings.top_columns,
        sorted_references=sorted_refs,
    )
