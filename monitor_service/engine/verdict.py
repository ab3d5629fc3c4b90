"""The tested mode's verdict as Evidently widgets for the top of the report: the dataset verdict,
the domain classifier and its explanation, and per column the corrected p-values and effect sizes.

Evidently's widgets below them show each column's raw p-value and effect size with the distributions;
Evidently has no widget for a correction across columns or for our combined verdict, and its drift
preset's share-of-columns summary is not our verdict, so it is left out. The verdict is made of
Evidently's own counter and table widgets, so it is stored in the snapshot with the rest of the
report (Evidently UI and MLflow show it too) and the page renders it like every other value: as
escaped data, never as markup (engine/html.py).
"""

from __future__ import annotations

from typing import Any

from evidently.legacy.renderers.html_widgets import CounterData, counter, header_text, table_data

from monitor_service.engine.drift import DriftOutcome
from monitor_service.results import CalculationResult, ColumnDrift

TITLE = "Drift verdict of model {model}"
COLUMN_HEADER = (
    "column",
    "role",
    "test",
    "p-value",
    "corrected p",
    "effect measure",
    "effect size",
    "floor",
    "missing share change",
    "verdict",
)


def outcome_of(result: CalculationResult) -> DriftOutcome:
    """The drift half of a calculation result, as the engine returned it."""
    return DriftOutcome(
        columns=result.columns,
        skipped=result.skipped,
        dataset_drift=result.dataset_drift,
        drifted_columns=result.drifted_columns,
        tested_columns=result.tested_columns,
        alpha=result.alpha,
        classifier=result.classifier,
        untestable=result.untestable_columns,
        drift_share=result.drift_share,
    )


def _number(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}g}"


def _verdict(flag: bool | None) -> str:
    return {True: "drift", False: "no drift", None: "not tested"}[flag]


def column_row(c: ColumnDrift) -> list[str]:
    missing = c.missing
    return [
        c.column,
        c.role,
        c.stattest,
        _number(c.p_value),
        _number(c.corrected_p_value),
        c.effect or "",
        _number(c.effect_size),
        _number(c.min_effect),
        "" if missing is None else f"{missing.change:+.1%} (p {_number(missing.corrected_p_value)})",
        _verdict(c.detected),
    ]


def verdict_widgets(model: str, outcome: DriftOutcome, correction: str) -> list[Any]:
    """The widgets for one calculation of one model (Evidently `BaseWidgetInfo`s)."""
    widgets = [
        counter(
            title=TITLE.format(model=model),
            counters=[
                CounterData("dataset", _verdict(outcome.dataset_drift)),
                CounterData(
                    "drifted feature columns", f"{outcome.drifted_columns} of {outcome.tested_columns}"
                ),
                CounterData("could not be tested (count as drifted)", str(outcome.untestable)),
                CounterData(f"alpha ({correction})", _number(outcome.alpha)),
            ],
        ),
        header_text(
            label=f"Column p-values are corrected across all tests ({correction}) and compared with alpha "
            f"{_number(outcome.alpha)}; a column drifts when its corrected p-value is at or below alpha and "
            "its effect size reaches its floor, or when its missing share changed significantly."
        ),
    ]
    k = outcome.classifier
    if k is not None:
        widgets.append(
            counter(
                title="Domain classifier: can a model tell window rows from reference rows?",
                counters=[
                    CounterData("verdict", _verdict(k.detected)),
                    CounterData("AUC", f"{k.auc:.3f} (needs {k.min_auc:.2f})"),
                    CounterData("p-value", f"{_number(k.p_value)} (alpha {_number(k.alpha)})"),
                    CounterData("rows", f"{k.reference_rows} reference, {k.current_rows} window"),
                    CounterData("explained most by", ", ".join(k.top_columns) or "none"),
                ],
            )
        )
    widgets.append(
        table_data(
            title="Columns: corrected p-values and effect sizes",
            column_names=list(COLUMN_HEADER),
            data=[column_row(c) for c in outcome.columns],
        )
    )
    if outcome.skipped:
        widgets.append(
            table_data(
                title="Not tested",
                column_names=["column", "role", "reason", "detail"],
                data=[[s.column, s.role, s.code, s.reason] for s in outcome.skipped],
            )
        )
    return widgets
