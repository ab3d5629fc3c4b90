"""The multivariate domain classifier: can a model tell the window's rows from the reference's?

A gradient-boosting classifier (scikit-learn's HistGradientBoostingClassifier, which handles
missing values natively) is trained on half of a sample of reference rows and window rows (at most
`classifier.max_rows` from each side) and scored on the other half. Its held-out AUC says how
separable the two are (0.5: not at all). The p-value is the one-sided Mann-Whitney U test of the
held-out scores (window above reference); it is exact in the sense that matters: the held-out rows
played no part in training, so with no drift their labels are independent of their scores.

What it sees, by design: numbers enter as the decile of the reference they fall in, categories as
their frequency rank, and the trees are stumps (one split each), so the model is additive: it adds
up the evidence of every column (a subgroup that grew moves many columns a little) but does not
model relations between columns. Measured on diamonds, where carat and x, y, z are nearly
functions of each other, deeper trees on exact values call a +0.05 sd shift of one column drift
(AUC 0.65-0.99: the shifted rows break the relation, and values off the column's lattice or point
masses are separable by themselves), where this model gives 0.50-0.55; a +0.5 sd shift still gives
0.74-0.91. Relations that change while no column moves are therefore out of its reach.

Every random choice (the samples, the split, the permutations of the explanation) comes from one
seed derived from the model name and the window's content, so the same rows give the same AUC on
every node; the classifier runs on one thread for the same reason (and to stay a good sidecar).

The explanation, computed when the classifier detects (otherwise there is nothing to explain), is
the permutation importance of each feature on the held-out half: how much the AUC drops when that
column's values are shuffled among the held-out rows.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from monitor_service.results import ColumnImportance, DomainClassifierResult

# Categories become their rank by frequency in the reference (0 = most frequent), values beyond the
# 254 most frequent and values the reference never had share one code. The trees split on those
# ranks like on numbers (two splits isolate any category): scikit-learn's own categorical support
# re-encodes the matrix through a ColumnTransformer on every predict, which made the explanation
# (one predict per column) several times slower than the classifier itself.
MAX_CATEGORIES = 254
OTHER = MAX_CATEGORIES
MAX_ITER = 60
MAX_BINS = 255
MAX_LEAVES = 2  # stumps: an additive model, see the module docstring
QUANTILES = 10  # numbers enter as the decile of the reference they fall in
# Reference rows per window row: beyond about 4, more reference rows hardly narrow the AUC's
# sampling error (which is dominated by the smaller side) but cost time.
REFERENCE_RATIO = 4
MIN_REFERENCE = 1000
IMPORTANCE_ROWS = 2000  # held-out rows used to explain a detection
# Fewer window rows than this and the held-out half is too small for the Mann-Whitney p-value's
# normal approximation: the classifier does not run (the columns' tests still do).
MIN_ROWS = 20


def window_seed(model: str, current: pd.DataFrame) -> int:
    """A 64-bit seed from the model name and the window's rows (values and order)."""
    digest = hashlib.blake2b(model.encode(), digest_size=8)
    digest.update(pd.util.hash_pandas_object(current, index=False).to_numpy().tobytes())
    return int.from_bytes(digest.digest(), "little")


class _Encoder:
    """One column as the classifier sees it, fitted on the whole reference.

    Numbers become the decile of the reference they fall in (through the reference's
    right-continuous empirical CDF): the classifier sees where rows fall relative to the reference's
    values, not shifts smaller than the gaps between them. On exact values, a shift of 0.05 standard
    deviations of a column with a point mass (60 % zeros becoming 0.03) or on a lattice (integers,
    carats in hundredths) separates window from reference (AUC 0.6-0.94 measured): a change of
    support no one would call drift. The decile also bounds extreme values (999999, 1e308).
    Categories become their frequency rank in the reference; rare and unseen ones share a code.
    """

    def __init__(
        self, reference: pd.Series, categorical: bool, sorted_values: np.ndarray | None = None
    ) -> None:
        self.categorical = categorical
        if categorical:
            order = reference.dropna().astype(str).value_counts().index[:MAX_CATEGORIES]
            self.codes = {value: float(i) for i, value in enumerate(order)}
        elif sorted_values is not None:
            self.sorted = sorted_values
        else:
            values = pd.to_numeric(reference, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            self.sorted = np.sort(values[np.isfinite(values)])

    def __call__(self, values: pd.Series) -> np.ndarray:
        if self.categorical:
            strings = values.astype(str).where(values.notna())
            mapped = strings.map(self.codes).to_numpy(dtype=np.float64, na_value=np.nan)
            mapped[np.isnan(mapped) & values.notna().to_numpy()] = OTHER
            return mapped
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        ranks = np.searchsorted(self.sorted, numbers, side="right") / max(len(self.sorted), 1)
        coarse = np.minimum(np.floor(ranks * QUANTILES), QUANTILES - 1)
        coarse[np.isnan(numbers)] = np.nan
        return coarse


def _auc_p(current_scores: np.ndarray, reference_scores: np.ndarray) -> tuple[float, float]:
    result = stats.mannwhitneyu(current_scores, reference_scores, alternative="greater", method="asymptotic")
    auc = float(result.statistic) / (len(current_scores) * len(reference_scores))
    return auc, float(result.pvalue)


def _halves(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(rows)
    return order[: rows // 2], order[rows // 2 :]


def classify(
    model: str,
    features: list[str],
    categorical: list[str],
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    max_rows: int,
    alpha: float,
    min_auc: float,
    top: int,
    sorted_references: dict[str, np.ndarray] | None = None,
) -> DomainClassifierResult | None:
    """Train and score the domain classifier; None when a side has fewer than MIN_ROWS rows.
    `sorted_references`: numerical columns' finite reference values, sorted, when the caller has them."""
    if len(reference) < MIN_ROWS or len(current) < MIN_ROWS or not features:
        return None
    rng = np.random.default_rng(window_seed(model, current[features]))
    cur_rows = rng.choice(len(current), min(max_rows, len(current)), replace=False)
    wanted = max(MIN_REFERENCE, REFERENCE_RATIO * len(cur_rows))
    ref_rows = rng.choice(len(reference), min(max_rows, len(reference), wanted), replace=False)
    known = sorted_references or {}
    encoders = [_Encoder(reference[c], c in categorical, known.get(c)) for c in features]
    ref_sample, cur_sample = reference.iloc[ref_rows], current.iloc[cur_rows]
    ref_x = np.column_stack([encode(ref_sample[c]) for encode, c in zip(encoders, features, strict=True)])
    cur_x = np.column_stack([encode(cur_sample[c]) for encode, c in zip(encoders, features, strict=True)])
    ref_train, ref_test = _halves(rng, len(ref_x))
    cur_train, cur_test = _halves(rng, len(cur_x))
    x_train = np.vstack([ref_x[ref_train], cur_x[cur_train]])
    y_train = np.r_[np.zeros(len(ref_train)), np.ones(len(cur_train))]
    classifier = HistGradientBoostingClassifier(
        max_iter=MAX_ITER,
        learning_rate=0.1,
        max_leaf_nodes=MAX_LEAVES,
        max_bins=MAX_BINS,
        min_samples_leaf=20,
        early_stopping=False,
        class_weight=None,
        categorical_features=None,
        random_state=int(rng.integers(2**31 - 1)),
    )
    x_test = np.vstack([ref_x[ref_test], cur_x[cur_test]])
    n_ref_test = len(ref_test)
    with threadpool_limits(limits=1):
        classifier.fit(x_train, y_train)
        scores = classifier.predict_proba(x_test)[:, 1]
        auc, p_value = _auc_p(scores[n_ref_test:], scores[:n_ref_test])
        detected = p_value <= alpha and auc >= min_auc
        importances = _importances(classifier, x_test, n_ref_test, rng, features) if detected else []
    ranked = sorted(importances, key=lambda i: (-i.importance, i.column))
    return DomainClassifierResult(
        auc=auc,
        p_value=p_value,
        alpha=alpha,
        min_auc=min_auc,
        detected=detected,
        reference_rows=len(ref_rows),
        current_rows=len(cur_rows),
        importances=tuple(ranked),
        top_columns=tuple(i.column for i in ranked[:top] if i.importance > 0),
    )


def _importances(
    classifier: HistGradientBoostingClassifier,
    x_test: np.ndarray,
    n_ref_test: int,
    rng: np.random.Generator,
    features: list[str],
) -> list[ColumnImportance]:
    """AUC lost when one column is shuffled among (at most IMPORTANCE_ROWS of) the held-out rows."""
    n_cur_test = len(x_test) - n_ref_test
    keep_ref = min(n_ref_test, max(IMPORTANCE_ROWS // 2, IMPORTANCE_ROWS - n_cur_test))
    keep_cur = min(n_cur_test, IMPORTANCE_ROWS - keep_ref)
    x_test = np.vstack(
        [
            x_test[rng.choice(n_ref_test, keep_ref, replace=False)],
            x_test[n_ref_test + rng.choice(n_cur_test, keep_cur, replace=False)],
        ]
    )
    n_ref_test = keep_ref
    scores = classifier.predict_proba(x_test)[:, 1]
    auc, _ = _auc_p(scores[n_ref_test:], scores[:n_ref_test])
    out = []
    for index, column in enumerate(features):
        shuffled = x_test.copy()
        shuffled[:, index] = shuffled[rng.permutation(len(shuffled)), index]
        scores = classifier.predict_proba(shuffled)[:, 1]
        permuted, _ = _auc_p(scores[n_ref_test:], scores[:n_ref_test])
        out.append(ColumnImportance(column, max(0.0, auc - permuted)))
    return out
