"""The multivariate domain classifier: can a model tell the window's rows from the reference's?

A gradient-boosting classifier (scikit-learn's HistGradientBoostingClassifier, which handles
missing values natively) is trained on half of a sample of reference rows and window rows (at most
`classifier.max_rows` from each side) and scored on the other half. Its held-out AUC says how
separable the two are (0.5: not at all), whatever the shift: one column, a mix of columns, a
change in their joint distribution. The p-value is the one-sided Mann-Whitney U test of the held-out
scores (window above reference); it is exact in the sense that matters: the held-out rows played
no part in training, so with no drift their labels are independent of their scores.

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
# Reference rows per window row: beyond about 4, more reference rows hardly narrow the AUC's
# sampling error (which is dominated by the smaller side) but cost time.
REFERENCE_RATIO = 4
MIN_REFERENCE = 1000
IMPORTANCE_ROWS = 2000  # held-out rows used to explain a detection


def window_seed(model: str, current: pd.DataFrame) -> int:
    """A 64-bit seed from the model name and the window's rows (values and order)."""
    digest = hashlib.blake2b(model.encode(), digest_size=8)
    digest.update(pd.util.hash_pandas_object(current, index=False).to_numpy().tobytes())
    return int.from_bytes(digest.digest(), "little")


def _encode(reference: pd.Series, values: pd.Series, categorical: bool) -> np.ndarray:
    if not categorical:
        out = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        out[~np.isfinite(out)] = np.nan
        return out
    order = reference.dropna().astype(str).value_counts().index[:MAX_CATEGORIES]
    codes = {value: float(i) for i, value in enumerate(order)}
    strings = values.astype(str).where(values.notna())
    mapped = strings.map(codes).to_numpy(dtype=np.float64, na_value=np.nan)
    mapped[np.isnan(mapped) & values.notna().to_numpy()] = OTHER
    return mapped


def _matrix(reference: pd.DataFrame, frame: pd.DataFrame, categorical: list[bool]) -> np.ndarray:
    return np.column_stack(
        [_encode(reference[c], frame[c], cat) for c, cat in zip(reference.columns, categorical, strict=True)]
    )


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
) -> DomainClassifierResult | None:
    """Train and score the domain classifier; None when a side has fewer than 4 rows."""
    if len(reference) < 4 or len(current) < 4 or not features:
        return None
    rng = np.random.default_rng(window_seed(model, current[features]))
    cur_rows = rng.choice(len(current), min(max_rows, len(current)), replace=False)
    wanted = max(MIN_REFERENCE, REFERENCE_RATIO * len(cur_rows))
    ref_rows = rng.choice(len(reference), min(max_rows, len(reference), wanted), replace=False)
    is_categorical = [c in categorical for c in features]
    ref_x = _matrix(reference[features], reference[features].iloc[ref_rows], is_categorical)
    cur_x = _matrix(reference[features], current[features].iloc[cur_rows], is_categorical)
    ref_train, ref_test = _halves(rng, len(ref_x))
    cur_train, cur_test = _halves(rng, len(cur_x))
    x_train = np.vstack([ref_x[ref_train], cur_x[cur_train]])
    y_train = np.r_[np.zeros(len(ref_train)), np.ones(len(cur_train))]
    classifier = HistGradientBoostingClassifier(
        max_iter=MAX_ITER,
        learning_rate=0.1,
        max_leaf_nodes=15,
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
