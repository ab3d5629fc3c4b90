"""Checks of a model's quality settings against its reference, for check-config and start-up.

Errors stop the monitor (exit 2) like any config error; warnings are printed and logged. Each one
names its config path and line.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from monitor_service.config import MonitorConfig
from monitor_service.model_quality.realised import labelled, point_values
from monitor_service.model_quality.spec import ClassMapper, QualitySpec, natural_sorted, resolve

# The reference's own quality this good means its predictions were most likely made on the rows
# the model was trained on: the baseline would be unreachable and the quality alert would page
# forever. Out-of-fold or holdout predictions are far from these for any real model.
NEAR_PERFECT = {"accuracy": 0.995, "roc_auc": 0.999, "r2": 0.995}
NEAR_ZERO_MAPE = 0.5  # percent
Where = Callable[..., str]  # (*loc) -> "models[0].quality.classes (line 12)"


@dataclass
class QualityCheck:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    summary: str = ""
    baseline: dict[str, float] = field(default_factory=dict)


def check_model_quality(config: MonitorConfig, index: int, reference: pd.DataFrame) -> QualityCheck:
    """Check `config.models[index]` against its loaded (normalised) reference."""
    model = config.models[index]
    out = QualityCheck()

    def where(*loc: str | int) -> str:
        return config.where(("models", index, *loc))

    resolution = resolve(model, reference)
    out.errors += [f"{where(*loc)}: {message}" for loc, message in resolution.errors]
    out.warnings += [f"{where(*loc)}: {message}" for loc, message in resolution.warnings]
    spec = resolution.spec
    if spec is None:
        out.summary = f"model quality off ({resolution.off_because})" if resolution.off_because else ""
        return out
    settings = model.quality
    unknown = sorted(set(settings.baseline) - set(spec.metrics))
    if unknown:
        out.errors.append(f"{where('quality', 'baseline')}: {unknown} are not among the metrics computed")
    if spec.probability and spec.probability in reference.columns:
        scores = reference[spec.probability].to_numpy(dtype=np.float64)
        outside = int(np.count_nonzero((scores < 0) | (scores > 1)))
        if outside:
            out.errors.append(
                f"{where('columns', 'probability')}: {outside} value(s) of {spec.probability} in the "
                "reference are outside [0, 1]: it must hold the probability of positive_label"
            )
    if spec.kind != "regression":
        _check_classes(model.quality.classes, spec, reference, out, where)
    own = labelled(spec, reference)
    out.baseline = point_values(own) if own.rows else {}
    _check_baseline(spec, own.rows, out, where, configured=set(settings.baseline))
    if "estimate" in settings.model_fields_set and settings.estimate and not spec.probability:
        out.warnings.append(f"{where('quality', 'estimate')}: estimates need columns.probability (binary)")
    estimates = bool(settings.estimate and spec.probability)
    out.summary = _summary(spec, set(settings.baseline), out.baseline, estimates)
    return out


def _check_classes(
    configured: list[str] | None, spec: QualitySpec, reference: pd.DataFrame, out: QualityCheck, where: Where
) -> None:
    if configured is None or spec.target not in reference.columns:
        return
    values = [str(v) for v in pd.unique(reference[spec.target].dropna())]
    mapper = ClassMapper(configured)
    outside = natural_sorted(v for v in values if mapper.find(v) is None)
    if outside:
        out.errors.append(
            f"{where('quality', 'classes')}: the reference's {spec.target} holds classes that are not "
            f"configured: {outside[:10]}"
        )
    seen = {mapper.find(v) for v in values}
    unseen = [c for i, c in enumerate(configured) if i not in seen]
    if unseen and values:
        out.warnings.append(
            f"{where('quality', 'classes')}: classes never seen in the reference: {unseen[:10]}"
        )


def _check_baseline(
    spec: QualitySpec, rows: int, out: QualityCheck, where: Where, configured: set[str]
) -> None:
    missing = [m for m in spec.metrics if m not in out.baseline and m not in configured]
    if not rows:
        if missing:
            out.warnings.append(
                f"{where('reference')}: no reference row has both {spec.target} and {spec.prediction}: "
                f"no baseline for {missing} (their quality alert cannot fire; set quality.baseline) "
                "and no estimates without labels"
            )
        return
    if missing:
        out.warnings.append(f"{where('reference')}: the reference's own {missing} are undefined: no baseline")
    suspicious = [
        f"{metric} {out.baseline[metric]:.4g}"
        for metric, limit in NEAR_PERFECT.items()
        if out.baseline.get(metric, 0.0) >= limit
    ]
    if out.baseline.get("mape", NEAR_ZERO_MAPE) < NEAR_ZERO_MAPE:
        suspicious.append(f"mape {out.baseline['mape']:.3g}%")
    if suspicious:
        out.warnings.append(
            f"{where('reference')}: the reference's own quality is near perfect ({', '.join(suspicious)}): "
            "are its predictions made on the model's training rows? Use out-of-fold or holdout "
            "predictions, or the baseline is out of reach and the quality alert pages forever"
        )


def _summary(spec: QualitySpec, configured: Collection[str], own: dict[str, float], estimates: bool) -> str:
    kind: str = spec.kind
    if kind == "binary":
        assert spec.positive is not None
        kind = f"binary, positive class {spec.classes[spec.positive]!r}"
    elif kind == "multiclass":
        kind = f"multiclass, {len(spec.classes)} classes"
    sources = {
        m: "config" if m in configured else "reference" for m in spec.metrics if m in configured or m in own
    }
    baseline = "baseline from " + (" and ".join(sorted(set(sources.values()))) or "nowhere")
    parts = [f"model quality ({kind}): {', '.join(spec.metrics)}", baseline]
    if estimates:
        parts.append("estimates without labels (CBPE)")
    return "; ".join(parts)
