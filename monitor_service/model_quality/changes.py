"""Log lines for what changed in a model's quality between two calculations: a metric skipped
(and why), computed again, label-arrival bias found or gone. Logged once per change, not per
calculation, so a model waiting for labels does not fill the log."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from monitor_service.model_quality.spec import REASONS

if TYPE_CHECKING:
    from monitor_service.results import CalculationResult

# Reasons that point at the configuration or the reference, not at a window still filling up.
_WARN = frozenset({"reference_mismatch", "no_reference_labels", "reference_single_class"})
_KINDS = ("realised", "baseline", "estimated", "class recall")


def _skips(result: CalculationResult | None) -> dict[tuple[str, str], str]:
    detail = result.model_quality_detail if result is not None else None
    if detail is None:
        return {}
    groups = (detail.skipped, detail.baseline_skipped, detail.estimated_skipped, detail.class_recall_skipped)
    return {(kind, s.metric): s.reason for kind, skips in zip(_KINDS, groups, strict=True) for s in skips}


def _name(kind: str, metric: str) -> str:
    if kind == "realised":
        return metric
    if kind == "class recall":
        return f"recall of class {metric!r}"
    return f"{kind} {metric}"


def quality_changes(old: CalculationResult | None, new: CalculationResult) -> list[tuple[int, str]]:
    """(log level, message) for each change from `old` to `new`."""
    before, after = _skips(old), _skips(new)
    lines = []
    for key, reason in after.items():
        if before.get(key) != reason:
            level = logging.WARNING if reason in _WARN else logging.INFO
            text = REASONS.get(reason, reason)
            lines.append((level, f"model {new.model}: {_name(*key)} not computed: {reason} ({text})"))
    lines.extend(
        (logging.INFO, f"model {new.model}: {_name(*key)} computed again")
        for key in before
        if key not in after and new.model_quality_detail is not None
    )
    was = old is not None and old.label_bias is not None and old.label_bias.detected
    now = new.label_bias is not None and new.label_bias.detected
    if now and not was:
        assert new.label_bias is not None
        lines.append(
            (
                logging.WARNING,
                f"model {new.model}: label-arrival bias: labelled shares per predicted group differ by "
                f"{new.label_bias.difference:.0%} (chi-square p={new.label_bias.pvalue:.2g}); "
                "target drift is not reported while it lasts",
            )
        )
    elif was and not now:
        lines.append((logging.INFO, f"model {new.model}: label-arrival bias no longer detected"))
    return lines
