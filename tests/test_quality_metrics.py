"""Known answers for the quality formulas and intervals: scikit-learn for the metrics, statsmodels
for Wilson intervals, scipy's bootstrap for the percentile intervals, and coverage by simulation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn import metrics as skm
from statsmodels.stats.proportion import proportion_confint

from monitor_service.model_quality import metrics as formulas
from monitor_service.model_quality.intervals import wilson, window_seed
from monitor_service.model_quality.realised import labelled, realised
from monitor_service.model_quality.spec import QualitySpec

CLASSES = ("ant", "bee", "cat", "dog")


def _multiclass(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels of three of the four classes (dog never labelled) and noisy predictions of all four."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(CLASSES[:3], size=rows, p=[0.6, 0.3, 0.1])
    predicted = np.where(rng.random(rows) < 0.7, truth, rng.choice(CLASSES, size=rows))
    return truth.astype(object), predicted.astype(object)


def _spec(kind: str, metrics: tuple[str, ...], **extra: Any) -> QualitySpec:
    return QualitySpec(kind, metrics, "y", "p", **extra)  # type: ignore[arg-type]


def _realised(spec: QualitySpec, frame: pd.DataFrame, resamples: int = 1000, seed: int = 7) -> Any:
    return realised(labelled(spec, frame), min_rows=1, confidence=0.95, resamples=resamples, seed=seed)


def test_multiclass_metrics_equal_scikit_learn() -> None:
    truth, predicted = _multiclass(700, seed=1)
    spec = _spec(
        "multiclass",
        (
            "accuracy",
            "precision_macro",
            "recall_macro",
            "f1_macro",
            "precision_weighted",
            "recall_weighted",
            "f1_weighted",
        ),
        classes=CLASSES,
        per_class=True,
    )
    result = _realised(spec, pd.DataFrame({"y": truth, "p": predicted}))
    values = {m.metric: m.value for m in result.metrics}
    present = sorted(set(truth))  # macro averages run over the classes among the labels
    assert values["accuracy"] == pytest.approx(skm.accuracy_score(truth, predicted))
    for name, function in (
        ("precision", skm.precision_score),
        ("recall", skm.recall_score),
        ("f1", skm.f1_score),
    ):
        macro = function(truth, predicted, labels=present, average="macro", zero_division=0)
        weighted = function(truth, predicted, labels=list(CLASSES), average="weighted", zero_division=0)
        assert values[f"{name}_macro"] == pytest.approx(macro), name
        assert values[f"{name}_weighted"] == pytest.approx(weighted), name
    per_class = skm.recall_score(truth, predicted, labels=present, average=None)
    assert [c.label for c in result.class_recall] == present
    assert [c.value for c in result.class_recall] == pytest.approx(per_class)
    assert [(s.metric, s.reason) for s in result.class_skipped] == [("dog", "class_absent")]


def test_binary_metrics_equal_scikit_learn_with_boolean_spellings() -> None:
    rng = np.random.default_rng(3)
    truth = rng.random(500) < 0.3
    score = np.clip(truth * 0.35 + rng.random(500) * 0.65, 0, 1)
    predicted = score >= 0.5
    # The reference's classes are "false"/"true"; the window spells them in other usual ways.
    frame = pd.DataFrame(
        {
            "y": np.where(truth, "TRUE", "False").astype(object),
            "p": np.where(predicted, "1", "0").astype(object),
            "s": score,
        }
    )
    spec = _spec(
        "binary",
        ("accuracy", "precision", "recall", "f1", "roc_auc"),
        probability="s",
        classes=("false", "true"),
        positive=1,
        per_class=True,
    )
    values = {m.metric: m.value for m in _realised(spec, frame).metrics}
    assert values == pytest.approx(
        {
            "accuracy": skm.accuracy_score(truth, predicted),
            "precision": skm.precision_score(truth, predicted),
            "recall": skm.recall_score(truth, predicted),
            "f1": skm.f1_score(truth, predicted),
            "roc_auc": skm.roc_auc_score(truth, score),
        }
    )


def test_regression_metrics_equal_scikit_learn_and_mape_leaves_out_zero_targets() -> None:
    rng = np.random.default_rng(5)
    truth = rng.gamma(2.0, 100.0, 400)
    truth[:40] = 0.0
    predicted = truth + rng.normal(0, 30, 400)
    spec = _spec("regression", ("mae", "rmse", "mape", "r2"))
    result = _realised(spec, pd.DataFrame({"y": truth, "p": predicted}))
    values = {m.metric: m.value for m in result.metrics}
    nonzero = truth != 0
    assert values["mae"] == pytest.approx(skm.mean_absolute_error(truth, predicted))
    assert values["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(truth, predicted)))
    assert values["r2"] == pytest.approx(skm.r2_score(truth, predicted))
    assert values["mape"] == pytest.approx(
        100 * skm.mean_absolute_percentage_error(truth[nonzero], predicted[nonzero])
    )
    assert result.mape_zero_targets == 40
    assert {m.metric: m.rows for m in result.metrics}["mape"] == 360


@pytest.mark.parametrize(("successes", "n"), [(0, 10), (3, 10), (97, 100), (500, 1000), (1, 1)])
def test_wilson_interval_equals_statsmodels(successes: int, n: int) -> None:
    expected = proportion_confint(successes, n, alpha=0.05, method="wilson")
    assert wilson(successes, n, 0.95) == pytest.approx(expected)
    expected_90 = proportion_confint(successes, n, alpha=0.10, method="wilson")
    assert wilson(successes, n, 0.90) == pytest.approx(expected_90)


def _scipy_percentile(data: tuple[np.ndarray, ...], statistic: Any) -> tuple[float, float]:
    result = stats.bootstrap(
        data,
        statistic,
        paired=True,
        vectorized=False,
        n_resamples=4000,
        method="percentile",
        random_state=np.random.default_rng(11),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _close(ours: tuple[float, float], theirs: tuple[float, float]) -> None:
    """Two Monte Carlo estimates of the same interval: ends agree within a tenth of its width."""
    width = theirs[1] - theirs[0]
    assert width > 0
    assert ours == pytest.approx(theirs, abs=0.1 * width)


def test_regression_bootstrap_intervals_agree_with_scipy() -> None:
    rng = np.random.default_rng(21)
    truth = rng.lognormal(7, 1, 300)
    predicted = truth * rng.lognormal(0, 0.3, 300)
    spec = _spec("regression", ("mae", "rmse", "mape", "r2"))
    result = {m.metric: m for m in _realised(spec, pd.DataFrame({"y": truth, "p": predicted}), 4000).metrics}
    statistics = {
        "mae": lambda y, p: np.mean(np.abs(y - p)),
        "rmse": lambda y, p: np.sqrt(np.mean((y - p) ** 2)),
        "mape": lambda y, p: 100 * np.mean(np.abs(y - p) / np.abs(y)),
        "r2": lambda y, p: 1 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2),
    }
    for metric, statistic in statistics.items():
        ours = (result[metric].lower, result[metric].upper)
        _close(ours, _scipy_percentile((truth, predicted), statistic))
        assert result[metric].method == "bootstrap"


def test_f1_and_roc_auc_bootstrap_intervals_agree_with_scipy() -> None:
    rng = np.random.default_rng(8)
    truth = rng.random(300) < 0.4
    score = np.clip(truth * 0.3 + rng.random(300) * 0.7, 0, 1)
    predicted = score >= 0.5
    frame = pd.DataFrame(
        {
            "y": np.where(truth, "1", "0").astype(object),
            "p": np.where(predicted, "1", "0").astype(object),
            "s": score,
        }
    )
    spec = _spec("binary", ("f1", "roc_auc"), probability="s", classes=("0", "1"), positive=1)
    result = {m.metric: m for m in _realised(spec, frame, 4000).metrics}

    def f1(y: np.ndarray, p: np.ndarray) -> float:
        return float(2 * np.sum(y.astype(bool) & p.astype(bool)) / (np.sum(y) + np.sum(p)))

    def auc(y: np.ndarray, s: np.ndarray) -> float:  # Mann-Whitney U / (n1 n0), ties halved by ranks
        ranks = stats.rankdata(s)
        positives = int(np.sum(y))
        return float(
            (ranks[y.astype(bool)].sum() - positives * (positives + 1) / 2)
            / (positives * (len(y) - positives))
        )

    assert f1(truth, predicted) == pytest.approx(skm.f1_score(truth, predicted))
    assert auc(truth, score) == pytest.approx(skm.roc_auc_score(truth, score))
    _close((result["f1"].lower, result["f1"].upper), _scipy_percentile((truth, predicted), f1))
    _close((result["roc_auc"].lower, result["roc_auc"].upper), _scipy_percentile((truth, score), auc))


def test_intervals_cover_the_true_value_about_95_percent_of_windows() -> None:
    """300 windows of 200 rows from known distributions; the 95 % intervals must cover the true
    values in 90-99 % of them (a binomial tolerance around 95 % for 300 trials)."""
    rng = np.random.default_rng(2024)
    regression = _spec("regression", ("mae", "rmse"))
    binary = _spec("binary", ("accuracy", "f1"), classes=("0", "1"), positive=1)
    # Errors ~ N(0, 100): MAE = 100 * sqrt(2/pi), RMSE = 100. Labels: 30 % positive, the model is
    # right 80 % of the time on each class: accuracy 0.8, precision 0.6316, recall 0.8, F1 0.7059.
    # F1 = 2 TP / (2 TP + FP + FN) with TP 0.24, FP 0.14, FN 0.06.
    truth_values = {"mae": 100 * np.sqrt(2 / np.pi), "rmse": 100.0, "accuracy": 0.8, "f1": 0.48 / 0.68}
    covered = dict.fromkeys(truth_values, 0)
    windows = 300
    for window in range(windows):
        y = rng.normal(1000, 200, 200)
        frame = pd.DataFrame({"y": y, "p": y + rng.normal(0, 100, 200)})
        labels = rng.random(200) < 0.3
        right = rng.random(200) < 0.8
        guessed = np.where(right, labels, ~labels)
        classes = pd.DataFrame(
            {"y": np.where(labels, "1", "0").astype(object), "p": np.where(guessed, "1", "0").astype(object)}
        )
        for spec, data in ((regression, frame), (binary, classes)):
            for m in _realised(spec, data, 1000, seed=window).metrics:
                covered[m.metric] += m.lower <= truth_values[m.metric] <= m.upper
    for metric, count in covered.items():
        assert 0.90 <= count / windows <= 0.99, (metric, count / windows)


def test_seed_depends_on_model_and_content_only() -> None:
    values = np.array([1.0, 2.0, 3.0])
    labels = np.array(["a", "b", None], dtype=object)
    assert window_seed("m", values, labels) == window_seed("m", values.copy(), labels.copy())
    assert window_seed("m", values, labels) != window_seed("n", values, labels)
    assert window_seed("m", values, labels) != window_seed("m", values + 1e-9, labels)
    assert window_seed("m", values, labels) != window_seed(
        "m", values, np.array(["a", "b", "c"], dtype=object)
    )


def test_same_rows_give_the_same_intervals_and_other_rows_other_draws() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(1000, 200, 500)
    frame = pd.DataFrame({"y": y, "p": y + rng.normal(0, 50, 500)})
    spec = _spec("regression", ("mae", "r2"))
    seed = window_seed("diamonds", frame["y"].to_numpy(), frame["p"].to_numpy())
    first = _realised(spec, frame, seed=seed).metrics
    again = _realised(
        spec, frame.copy(), seed=window_seed("diamonds", y.copy(), frame["p"].to_numpy())
    ).metrics
    assert first == again
    other = _realised(spec, frame, seed=seed + 1).metrics
    assert [m.value for m in other] == [m.value for m in first]
    assert [m.lower for m in other] != [m.lower for m in first]


def test_roc_auc_with_weights_equals_scikit_learn_sample_weights() -> None:
    rng = np.random.default_rng(4)
    scores = np.round(rng.random(300), 1)  # many ties
    truth = rng.random(300) < scores
    weights = rng.integers(0, 4, 300).astype(float)
    ours = formulas.roc_auc(scores, weights * truth, weights * ~truth)
    assert ours == pytest.approx(skm.roc_auc_score(truth, scores, sample_weight=weights))
