"""The tested mode's verdict as an HTML section for the top of the report page: the dataset verdict,
the domain classifier and its explanation, and per column the corrected p-values and effect sizes.

Evidently's widgets below it show each column's raw p-value and effect size with the distributions;
Evidently has no widget for a correction across columns or for our combined verdict, and its drift
preset's share-of-columns summary is not our verdict, so it is left out. Every value is escaped.
"""

from __future__ import annotations

from html import escape

from monitor_service.engine.drift import DriftOutcome
from monitor_service.results import ColumnDrift

STYLE = (
    "font-family:sans-serif;margin:16px 24px;border:1px solid #ccc;border-radius:6px;padding:12px 16px;"
    "background:#fafafa"
)


def _number(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}g}"


def _yes(flag: bool | None) -> str:
    return "<b style='color:#c00'>drift</b>" if flag else "no"


def _row(c: ColumnDrift) -> str:
    missing = c.missing
    cells = [
        escape(c.column),
        escape(c.role),
        escape(c.stattest),
        _number(c.p_value),
        _number(c.corrected_p_value),
        escape(c.effect or ""),
        _number(c.effect_size),
        _number(c.min_effect),
        "" if missing is None else f"{missing.change:+.1%} (p {_number(missing.corrected_p_value)})",
        _yes(c.detected),
    ]
    return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def verdict_section(model: str, outcome: DriftOutcome, correction: str) -> str:
    """The section for one calculation of one model."""
    parts = [f"<section id='drift-verdict' style='{STYLE}'>"]
    parts.append(f"<h2>Drift verdict of model {escape(model)}: {_yes(outcome.dataset_drift)}</h2>")
    parts.append(
        f"<p>{outcome.drifted_columns} of {outcome.tested_columns} feature columns drifted "
        f"({outcome.untestable} could not be tested and count as drifted). Column p-values are corrected "
        f"across all tests ({escape(correction)}) and compared with alpha {_number(outcome.alpha)}; a column "
        "drifts when its corrected p-value is at or below alpha and its effect size reaches its floor, or "
        "when its missing share changed significantly.</p>"
    )
    k = outcome.classifier
    if k is not None:
        top = ", ".join(escape(c) for c in k.top_columns) or "none"
        parts.append(
            f"<p>Domain classifier: AUC {k.auc:.3f} (needs {k.min_auc:.2f}), p-value {_number(k.p_value)} "
            f"(alpha {_number(k.alpha)}): {_yes(k.detected)}; {k.reference_rows} reference and "
            f"{k.current_rows} window rows. Explained most by: {top}.</p>"
        )
    head = [
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
    ]
    parts.append("<table border='1' cellpadding='4' style='border-collapse:collapse'><tr>")
    parts.append("".join(f"<th>{h}</th>" for h in head) + "</tr>")
    parts.extend(_row(c) for c in outcome.columns)
    parts.append("</table>")
    if outcome.skipped:
        items = "".join(
            f"<li>{escape(s.column)}: {escape(s.code)} ({escape(s.reason)})</li>" for s in outcome.skipped
        )
        parts.append(f"<p>Not tested:</p><ul>{items}</ul>")
    parts.append("</section>")
    return "".join(parts)


def insert_section(page: str, section: str) -> str:
    """The page with the section at the top of its body."""
    marker = "<body>"
    at = page.find(marker)
    if at < 0:
        return section + page
    at += len(marker)
    return page[:at] + section + page[at:]
