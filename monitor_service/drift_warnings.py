"""Warnings about a model's drift settings and its reference: things that work but mislead.

Printed by `check-config` and logged at start; never a reason to refuse the file. Plain pandas
(no Evidently), so the server process can run them without importing the engine.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import pandas as pd

from monitor_service.config import ModelConfig

SMALL_REFERENCE = 1000
AD_P_FLOOR = 0.001  # scipy's anderson_ksamp p-values are capped to [0.001, 0.25]


def drift_columns(model: ModelConfig) -> list[tuple[str, str]]:
    """(column, role) of every drift-tested column, as engine.columns.drift_columns lists them."""
    cols = model.columns
    out: list[tuple[str, str]] = []
    if "data_drift" in model.metrics:
        out += [(name, "feature") for name in cols.features]
    if "target_drift" in model.metrics and cols.target:
        out.append((cols.target, "target"))
    if "prediction_drift" in model.metrics:
        out += [(name, "prediction") for name in cols.prediction_columns]
    return out


def columns_alpha(model: ModelConfig) -> float:
    drift = model.drift
    if drift.classifier.enabled and "data_drift" in model.metrics:
        return drift.alpha * (1 - drift.classifier.alpha_share)
    return drift.alpha


def family_size(model: ModelConfig) -> int:
    columns = drift_columns(model)
    missing = sum(role != "target" for _, role in columns) if model.drift.missing else 0
    return len(columns) + missing


def smallest_shift(reference_rows: int, window_rows: int, alpha: float) -> float:
    """The mean shift (in standard deviations, normal data) a K-S test at `alpha` detects half of the
    time between samples of these sizes: its critical distance D_c equals 2 Phi(shift / 2) - 1."""
    critical = math.sqrt(-math.log(alpha / 2) / 2) * math.sqrt(1 / reference_rows + 1 / window_rows)
    if critical >= 1:
        return math.inf
    return 2 * NormalDist().inv_cdf((1 + critical) / 2)


def drift_warnings(model: ModelConfig, reference: pd.DataFrame, where: str) -> list[str]:
    """Every warning for one model (`where` is its path in the file, e.g. models[0])."""
    if model.drift.mode == "legacy":
        return _legacy(model, where)
    out = []
    legacy_keys = model.drift.legacy_keys_set()
    if legacy_keys:
        out.append(
            f"{where}: {', '.join(legacy_keys)} only apply with drift.mode: legacy and are ignored in "
            "tested mode (set drift.mode: legacy to keep the old behaviour; they will be refused in a "
            "later release)"
        )
    if model.moving_reference:
        out.append(
            f"{where}.moving_reference is ignored in tested mode: each window would be compared with the "
            "previous one, which shares most of its rows, so a step change is never seen. Replace the "
            "reference with PUT /v1/models/{model}/reference after review instead"
        )
    out += _reference(model, reference, where)
    family = family_size(model)
    alpha = columns_alpha(model)
    goodness = [c for c, own in model.drift.per_column.items() if own.test == "chisquare"]
    if goodness:
        out.append(
            f"{where}.drift.per_column: chisquare (columns {', '.join(goodness)}) is Evidently's "
            "goodness-of-fit test: it takes the reference's proportions as exact, so its false alarms grow "
            "with the window (and one row of a new category gives p = 0). chi2_homogeneity is the "
            "two-sample test"
        )
    anderson = [c for c, own in model.drift.per_column.items() if own.test == "anderson"]
    if anderson and model.drift.correction == "holm" and AD_P_FLOOR * family > alpha:
        out.append(
            f"{where}.drift.per_column: anderson (columns {', '.join(anderson)}) returns p-values of at "
            f"least {AD_P_FLOOR} (scipy): corrected by holm over {family} tests they can never reach "
            f"alpha {alpha:g}, so those columns never drift. Use ks_2samp, or correction: bh"
        )
    return out


def _reference(model: ModelConfig, reference: pd.DataFrame, where: str) -> list[str]:
    out = []
    rows = len(reference)
    alpha = columns_alpha(model) / max(1, family_size(model))
    if rows < SMALL_REFERENCE:
        window = model.window.max_rows
        shift = smallest_shift(max(rows, 1), window, alpha)
        out.append(
            f"{where}.reference: {rows} rows. The tests compare the window with the reference, so the "
            f"smallest shift they see stays large however full the window is: a one-column mean shift "
            f"of about {shift:.2f} standard deviations is detected half of the time with a full window of "
            f"{window} rows ({smallest_shift(max(rows, 1), 10**9, alpha):.2f} with an endless one). "
            f"Use at least {SMALL_REFERENCE} rows"
        )
    for column, _role in drift_columns(model):
        if column not in reference:
            continue
        values = int(reference[column].notna().sum())
        if values == 0:
            out.append(
                f"{where}.reference: column {column!r} has no values; it cannot be tested and counts as "
                "drifted in every calculation"
            )
        elif values < 100 and rows >= 100:
            out.append(
                f"{where}.reference: column {column!r} has only {values} non-null values; its test "
                "can only see large changes"
            )
    return out


def _legacy(model: ModelConfig, where: str) -> list[str]:
    out = []
    drift = model.drift
    if drift.threshold is not None and drift.stattest is None:
        out.append(
            f"{where}.drift.threshold {drift.threshold:g} without drift.stattest: Evidently chooses the "
            "test per column and window, so the one number is read as a p-value for ks/chisquare/z and "
            "as a distance for wasserstein/jensenshannon. Name the stat test, or use drift.mode: tested"
        )
    named = [c for c, own in drift.per_column.items() if own.stattest == "g_test"]
    if drift.stattest == "g_test" or named:
        out.append(
            f"{where}.drift: g_test raises unless the window and the reference have the same size; "
            "its columns will be skipped in most calculations"
        )
    return out
