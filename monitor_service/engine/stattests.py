"""Stat tests the tested mode adds to Evidently's registry, and what every registered test means.

Registered with `StatTest` + `register_stattest`, so a direct
`Report([ValueDrift(column=..., method="chi2_homogeneity")])` computes exactly what the monitor
exports (importing this module registers them):

- `chi2_homogeneity`: a two-sample chi-square test of homogeneity on the 2 x k contingency table
  (reference and window counts per category), `scipy.stats.chi2_contingency`. Unlike Evidently's
  `chisquare` (goodness of fit against the reference proportions taken as exact), it accounts for
  the reference's own sampling noise, so its false-alarm rate does not grow with the window.
  Categories whose smallest expected count is below 5 are pooled into one "other" cell (Cochran's
  rule), so one row of a never-seen category cannot give p = 0; a table left with two cells is
  tested exactly with Fisher's test, one cell means nothing to compare (p = 1).
- `ks_2samp`: the two-sample Kolmogorov-Smirnov test as Evidently's `ks`, but with scipy's exact
  p-value only up to 10^6 pairs of rows (n x m) and the asymptotic one above: scipy's own `auto`
  computes the exact distribution whenever both samples have at most 10,000 rows, which costs about
  a second per column for a 10,000-row window against a 10,000-row reference.
- `fisher_homogeneity`: Fisher's exact test on the 2 x 2 table of a two-valued column (used for
  the missing share: null vs present).
- `wasserstein_clipped`, `jensenshannon_clipped`, `psi_clipped`: Evidently's effect sizes with
  the window's numbers first clipped to the reference's observed [min, max], so one row of 999999
  or 1e308 cannot dominate the effect size (the p-value tests are rank based and need no clip).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from evidently.legacy.calculations.stattests import (
    jensenshannon_stat_test,
    psi_stat_test,
    wasserstein_stat_test,
)
from evidently.legacy.calculations.stattests.registry import StatTest, register_stattest
from evidently.legacy.core import ColumnType
from scipy import stats

MIN_EXPECTED = 5.0
Meaning = Literal["p_value", "distance"]


@dataclass(frozen=True)
class TestMeaning:
    """What a registered test's score is: a p-value (drift when small) or a distance (when large)."""

    meaning: Meaning
    upper: float = math.inf  # largest possible value (1 for p-values)
    p_floor: float = 0.0  # smallest p-value the test can return (Anderson-Darling: 0.001 in scipy)


_P = TestMeaning("p_value", 1.0)
# Every Evidently 0.7.23 test for tabular columns, and ours. Jensen-Shannon uses the natural
# logarithm: at most sqrt(ln 2).
MEANINGS: dict[str, TestMeaning] = {
    "ks": _P,
    "chisquare": _P,
    "z": _P,
    "anderson": TestMeaning("p_value", 1.0, p_floor=0.001),
    "cramer_von_mises": _P,
    "es": _P,
    "fisher_exact": _P,
    "g_test": _P,
    "mannw": _P,
    "empirical_mmd": _P,
    "t_test": _P,
    "TVD": _P,
    "ks_2samp": _P,
    "chi2_homogeneity": _P,
    "fisher_homogeneity": _P,
    "wasserstein": TestMeaning("distance"),
    "wasserstein_clipped": TestMeaning("distance"),
    "jensenshannon": TestMeaning("distance", math.sqrt(math.log(2))),
    "jensenshannon_clipped": TestMeaning("distance", math.sqrt(math.log(2))),
    "psi": TestMeaning("distance"),
    "psi_clipped": TestMeaning("distance"),
    "kl_div": TestMeaning("distance"),
    "hellinger": TestMeaning("distance", 1.0),
    "ed": TestMeaning("distance"),
}


def _counts(reference: pd.Series, current: pd.Series) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Counts per category in both samples, ordered by total count then name (order-independent)."""
    ref_counts = reference.value_counts()
    cur_counts = current.value_counts()
    totals: dict[str, list[float]] = {}
    for key, count in ref_counts.items():
        totals.setdefault(str(key), [0.0, 0.0])[0] += float(count)
    for key, count in cur_counts.items():
        totals.setdefault(str(key), [0.0, 0.0])[1] += float(count)
    keys = sorted((k for k, (r, c) in totals.items() if r + c > 0), key=lambda k: (sum(totals[k]), k))
    ref = np.array([totals[k][0] for k in keys])
    cur = np.array([totals[k][1] for k in keys])
    return ref, cur, keys


def pool_sparse(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pool the categories (sorted by ascending total) whose smallest expected count is below 5."""
    smaller = min(ref.sum(), cur.sum()) / (ref.sum() + cur.sum())
    expected = (ref + cur) * smaller
    sparse = expected < MIN_EXPECTED
    if not sparse.any():
        return ref, cur
    pooled_ref, pooled_cur = float(ref[sparse].sum()), float(cur[sparse].sum())
    keep = ~sparse
    for index in np.flatnonzero(keep):  # ascending totals: absorb the smallest until large enough
        if (pooled_ref + pooled_cur) * smaller >= MIN_EXPECTED:
            break
        pooled_ref, pooled_cur = pooled_ref + ref[index], pooled_cur + cur[index]
        keep[index] = False
    return np.append(ref[keep], pooled_ref), np.append(cur[keep], pooled_cur)


def fisher_2x2(ref: np.ndarray, cur: np.ndarray) -> float:
    """Two-sided p-value of Fisher's exact test on [[ref_a, ref_b], [cur_a, cur_b]]."""
    table = np.array([ref, cur], dtype=np.int64)
    if (table.sum(axis=0) == 0).any():
        return 1.0  # one value only: both samples agree
    return float(stats.fisher_exact(table)[1])


def homogeneity_p_value(ref: np.ndarray, cur: np.ndarray) -> float:
    """Chi-square test of homogeneity on the pooled 2 x k table (Fisher's exact test for 2 x 2)."""
    ref, cur = pool_sparse(ref, cur)
    if len(ref) < 2:
        return 1.0
    if len(ref) == 2:
        return fisher_2x2(ref, cur)
    return float(stats.chi2_contingency(np.array([ref, cur]), correction=False)[1])


def _chi2_homogeneity(
    reference: pd.Series, current: pd.Series, _feature_type: ColumnType, threshold: float
) -> tuple[float, bool]:
    ref, cur, _ = _counts(reference, current)
    p_value = homogeneity_p_value(ref, cur)
    return p_value, p_value <= threshold


EXACT_KS_PAIRS = 1_000_000


def _ks_2samp(
    reference: pd.Series, current: pd.Series, _feature_type: ColumnType, threshold: float
) -> tuple[float, bool]:
    method = "exact" if len(reference) * len(current) <= EXACT_KS_PAIRS else "asymp"
    p_value = float(stats.ks_2samp(reference, current, method=method)[1])
    return p_value, p_value <= threshold


def _fisher_homogeneity(
    reference: pd.Series, current: pd.Series, _feature_type: ColumnType, threshold: float
) -> tuple[float, bool]:
    ref, cur, keys = _counts(reference, current)
    if len(keys) > 2:
        raise ValueError(f"fisher_homogeneity needs at most two distinct values, got {len(keys)}")
    if len(keys) < 2:
        return 1.0, False
    p_value = fisher_2x2(ref, cur)
    return p_value, p_value <= threshold


# The noise allowance is this many times the effect size expected with no change at all: about the
# 95th percentile of that effect between two samples of the sizes at hand.
NOISE_FACTOR = 2.0


def null_effect(
    measure: str,
    reference: pd.Series,
    current_rows: int,
    numerical: bool,
    sorted_reference: np.ndarray | None = None,
) -> float:
    """The effect size expected between two samples of one population of these sizes (its mean
    sampling noise), from large-sample approximations, for the effect measure `measure`:

    - wasserstein (normed by the reference's standard deviation, as Evidently): the two empirical
      CDFs differ at x by about N(0, F(x)(1 - F(x))(1/n + 1/m)), so the expected distance is
      sqrt(2/pi) sqrt(1/n + 1/m) * integral sqrt(F(1 - F)) dx / sd (F: the reference's CDF);
    - jensenshannon (distance, natural log): the divergence is about chi2 / 8, whose expectation is
      (k - 1)(1/n + 1/m) / 8 over k categories or bins; its square root;
    - psi: about chi2, expectation (k - 1)(1/n + 1/m).

    `sorted_reference`: the (cleaned) reference already sorted, when the caller has it.
    """
    m, n = len(reference), max(current_rows, 1)
    scale = 1 / n + 1 / m
    if measure == "wasserstein":
        values = (
            np.sort(reference.to_numpy(dtype=np.float64)) if sorted_reference is None else sorted_reference
        )
        cdf = np.arange(1, len(values)) / len(values)
        area = float(np.sum(np.diff(values) * np.sqrt(cdf * (1 - cdf))))
        return math.sqrt(2 / math.pi * scale) * area / max(float(np.std(values)), 0.001)
    distinct = int(reference.nunique())
    if numerical and distinct > 20:  # Evidently bins such columns (Sturges) over both samples
        categories = math.ceil(math.log2(m + n)) + 1
    else:
        categories = max(distinct, 2)
    if measure == "psi":
        return (categories - 1) * scale
    return math.sqrt((categories - 1) * scale / 8)


def effective_floor(measure: str, floor: float, null: float) -> float:
    """The floor a measured effect must reach: the configured one raised by the noise allowance
    (in quadrature for distances, whose squares add; added for PSI, itself a divergence)."""
    allowance = NOISE_FACTOR * null
    if measure == "psi":
        return floor + allowance
    return math.sqrt(floor * floor + allowance * allowance)


def clip_to_reference(reference: pd.Series, current: pd.Series) -> pd.Series:
    """The window's numbers clipped to the reference's observed [min, max]."""
    return current.clip(reference.min(), reference.max())


def _clipped(test: StatTest) -> Callable[[pd.Series, pd.Series, ColumnType, float], tuple[float, bool]]:
    def effect(
        reference: pd.Series, current: pd.Series, feature_type: ColumnType, threshold: float
    ) -> tuple[float, bool]:
        if feature_type == ColumnType.Numerical:
            current = clip_to_reference(reference, current)
        result = test(reference, current, feature_type, threshold)
        return float(result.drift_score), bool(result.drifted)

    effect.__name__ = f"_{test.name}_clipped"
    return effect


ks_2samp_test = StatTest(
    name="ks_2samp",
    display_name="K-S p_value (exact up to 10^6 pairs, asymptotic above)",
    allowed_feature_types=[ColumnType.Numerical],
    default_threshold=0.05,
)
chi2_homogeneity_test = StatTest(
    name="chi2_homogeneity",
    display_name="chi-square homogeneity p_value",
    allowed_feature_types=[ColumnType.Categorical, ColumnType.Numerical],
    default_threshold=0.05,
)
fisher_homogeneity_test = StatTest(
    name="fisher_homogeneity",
    display_name="Fisher exact homogeneity p_value",
    allowed_feature_types=[ColumnType.Categorical, ColumnType.Numerical],
    default_threshold=0.05,
)
wasserstein_clipped_test = StatTest(
    name="wasserstein_clipped",
    display_name="Wasserstein distance (normed, window clipped to the reference range)",
    allowed_feature_types=[ColumnType.Numerical],
    default_threshold=0.1,
)
jensenshannon_clipped_test = StatTest(
    name="jensenshannon_clipped",
    display_name="Jensen-Shannon distance (window clipped to the reference range)",
    allowed_feature_types=[ColumnType.Categorical, ColumnType.Numerical],
    default_threshold=0.1,
)
psi_clipped_test = StatTest(
    name="psi_clipped",
    display_name="PSI (window clipped to the reference range)",
    allowed_feature_types=[ColumnType.Categorical, ColumnType.Numerical],
    default_threshold=0.1,
)

register_stattest(ks_2samp_test, default_impl=_ks_2samp)
register_stattest(chi2_homogeneity_test, default_impl=_chi2_homogeneity)
register_stattest(fisher_homogeneity_test, default_impl=_fisher_homogeneity)
register_stattest(wasserstein_clipped_test, default_impl=_clipped(wasserstein_stat_test))
register_stattest(jensenshannon_clipped_test, default_impl=_clipped(jensenshannon_stat_test))
register_stattest(psi_clipped_test, default_impl=_clipped(psi_stat_test))
