"""Prometheus families of model quality, built from calculation results (never computed here).

Label values come from the configuration (model names, the fixed metric names, the model's classes
from its config or reference) and the fixed vocabulary of reasons: bounded cardinality, no data.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.core import GaugeMetricFamily, Metric

from monitor_service.results import CalculationResult, QualitySkip, QualityValue

P = "drift_monitor_"
INTERVAL = (
    "Wilson score interval for proportions (accuracy, binary precision and recall), "
    "percentile bootstrap otherwise"
)


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(P + name, doc, labels=labels)


class _Triple:
    """A value and the two ends of its interval, as three families."""

    def __init__(self, name: str, doc: str, interval_doc: str, labels: list[str]) -> None:
        self.value = _gauge(name, doc, labels)
        self.lower = _gauge(
            f"{name}_lower", f"Lower end of the interval of {P}{name}: {interval_doc}.", labels
        )
        self.upper = _gauge(
            f"{name}_upper", f"Upper end of the interval of {P}{name}: {interval_doc}.", labels
        )

    def add(self, labels: list[str], value: float, lower: float, upper: float) -> None:
        self.value.add_metric(labels, value)
        self.lower.add_metric(labels, lower)
        self.upper.add_metric(labels, upper)

    def families(self) -> tuple[GaugeMetricFamily, ...]:
        return self.value, self.lower, self.upper


def _add_values(triple: _Triple, model: str, values: Sequence[QualityValue]) -> None:
    for v in values:
        triple.add([model, v.metric], v.value, v.lower, v.upper)


def _add_skips(family: GaugeMetricFamily, model: str, skips: Sequence[QualitySkip]) -> None:
    for skip in skips:
        family.add_metric([model, skip.metric, skip.reason], 1.0)


def model_quality_families(results: list[CalculationResult]) -> Iterator[Metric]:
    realised = _Triple(
        "model_quality",
        "Model quality on the labelled rows of the window. Regression: mae, rmse (target units), mape "
        "(percent, over the rows whose target is not zero), r2; classification: accuracy, precision, "
        "recall, f1, roc_auc (binary), precision/recall/f1 _macro and _weighted (multiclass). Absent "
        "when not computed: see drift_monitor_model_quality_skipped.",
        f"{INTERVAL}; level quality.confidence (0.95 by default)",
        ["model", "metric"],
    )
    rows = _gauge(
        "model_quality_rows",
        "Rows a quality metric rests on: the labelled rows; predicted positives for binary precision, "
        "positive labels for binary recall, rows with a non-zero target for mape.",
        ["model", "metric"],
    )
    skipped = _gauge(
        "model_quality_skipped",
        "1 for each quality metric asked for and not computed, with the reason (no_labels, "
        "insufficient_labels, single_class, no_positive_labels, ...: docs/model-quality.md).",
        ["model", "metric", "reason"],
    )
    baseline = _gauge(
        "model_quality_baseline",
        "The quality the alert compares with: the reference's own quality on its labels and "
        "predictions, or the configured quality.baseline.",
        ["model", "metric"],
    )
    baseline_skipped = _gauge(
        "model_quality_baseline_skipped",
        "1 for each quality metric without a baseline, with the reason: its quality alert cannot fire.",
        ["model", "metric", "reason"],
    )
    estimated = _Triple(
        "model_quality_estimated",
        "Quality estimated without labels (CBPE) on every row of the window: the expected value from the "
        "probabilities calibrated on the reference. Binary classification with a probability column.",
        "where the realised value will fall, from label draws of the calibrated probabilities",
        ["model", "metric"],
    )
    estimated_skipped = _gauge(
        "model_quality_estimated_skipped",
        "1 for each quality metric that cannot be estimated without labels, with the reason.",
        ["model", "metric", "reason"],
    )
    recall = _Triple(
        "model_class_recall",
        "Recall of one class: the share of its labelled rows predicted as that class.",
        "Wilson score interval",
        ["model", "class"],
    )
    recall_skipped = _gauge(
        "model_class_recall_skipped",
        "1 for each class without recall in the window, with the reason (class_absent).",
        ["model", "class", "reason"],
    )
    zero_targets = _gauge(
        "model_quality_mape_zero_targets",
        "Labelled rows whose target is zero: mape leaves them out (it divides by the target).",
        ["model"],
    )
    bias = _gauge(
        "label_arrival_bias",
        "1 when labels arrive at different rates depending on the prediction (chi-square test and "
        "quality.label_bias_min_difference); target drift is then not reported.",
        ["model"],
    )
    bias_pvalue = _gauge(
        "label_arrival_bias_pvalue",
        "p-value of the chi-square test of independence between 'has a label' and the predicted class "
        "(regression: the prediction's quintile in the window).",
        ["model"],
    )
    shares = _gauge(
        "labelled_ratio",
        "Share of the window's rows of a group that carry a label; group is a predicted class (or "
        "other) or a prediction quintile q1..q5.",
        ["model", "group"],
    )
    for r in results:
        m = r.model
        if r.label_bias is not None:
            bias.add_metric([m], float(r.label_bias.detected))
            bias_pvalue.add_metric([m], r.label_bias.pvalue)
            for g in r.label_bias.groups:
                shares.add_metric([m, g.group], g.labelled / g.rows)
        detail = r.model_quality_detail
        if detail is None:
            continue
        _add_values(realised, m, detail.metrics)
        for v in detail.metrics:
            rows.add_metric([m, v.metric], v.rows)
        _add_skips(skipped, m, detail.skipped)
        for b in detail.baseline:
            baseline.add_metric([m, b.metric], b.value)
        _add_skips(baseline_skipped, m, detail.baseline_skipped)
        _add_values(estimated, m, detail.estimated)
        _add_skips(estimated_skipped, m, detail.estimated_skipped)
        for c in detail.class_recall:
            recall.add([m, c.label], c.value, c.lower, c.upper)
        _add_skips(recall_skipped, m, detail.class_recall_skipped)
        if detail.kind == "regression":
            zero_targets.add_metric([m], detail.mape_zero_targets)
    yield from realised.families()
    yield from (rows, skipped, baseline, baseline_skipped)
    yield from estimated.families()
    yield estimated_skipped
    yield from recall.families()
    yield from (recall_skipped, zero_targets, bias, bias_pvalue, shares)
