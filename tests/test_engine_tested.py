"""Tested mode against known answers: direct Evidently runs with the same registered tests,
statsmodels' multipletests, scipy, and the classifier's determinism."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest
from evidently import DataDefinition, Dataset, Report
from evidently.metrics import ValueDrift
from scipy import stats
from statsmodels.stats.multitest import multipletests

from monitor_service import engine
from monitor_service.config import ModelConfig
from monitor_service.engine import domain
from monitor_service.engine.stattests import homogeneity_p_value, pool_sparse
from monitor_service.engine.tested import correct
from tests.conftest import DIAMONDS, ROOT, diamonds_model

NUMERICAL = ["carat", "depth", "table", "x", "y", "z"]
CATEGORICAL = ["cut", "color", "clarity"]
FEATURES = NUMERICAL + CATEGORICAL


def _model(**drift: Any) -> ModelConfig:
    """Diamonds in tested mode with `drift` settings; target drift tested on any number of labels
    (its minimum evidence is tested in tests/test_quality_engine.py)."""
    quality = {"min_labelled_rows_target_drift": 1}
    return ModelConfig.model_validate(diamonds_model(drift=drift, quality=quality))


def _reference() -> pd.DataFrame:
    return pd.read_csv(DIAMONDS / "reference.csv")


def _window(split: str, rows: int, start: int = 0) -> pd.DataFrame:
    return pd.read_csv(DIAMONDS / f"{split}.csv").iloc[start : start + rows].reset_index(drop=True)


def _evidently_values(
    reference: pd.DataFrame, current: pd.DataFrame, methods: list[tuple[str, str]], categorical: list[str]
) -> dict[tuple[str, str], float]:
    """`Report([ValueDrift(column, method)])` run directly on the frames."""
    numerical = [c for c in current.columns if c not in categorical and c != "request_id"]
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    snapshot = Report([ValueDrift(column=c, method=m) for c, m in methods]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    values = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        values[(config["column"], config["method"])] = float(metric["value"])
    return values


def _missing_indicator(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame[column].isna().map({True: "missing", False: "present"})


@pytest.mark.parametrize(("split", "rows"), [("production", 300), ("drifted", 700), ("production", 4000)])
def test_tested_p_values_and_effects_equal_direct_evidently(split: str, rows: int) -> None:
    model = _model()
    reference, current = _reference(), _window(split, rows)
    current.loc[:40, "depth"] = np.nan  # a missing-share signal
    current.loc[3, "carat"] = 999999.0  # a sentinel: clipped for the effect size
    result = engine.compute(model, reference, current)
    assert {c.column for c in result.columns} == {*FEATURES, "price", "prediction"}
    methods = [(c.column, c.stattest) for c in result.columns] + [
        (c.column, c.effect or "") for c in result.columns
    ]
    indicator = "depth__missing"
    expected = _evidently_values(
        reference.assign(**{indicator: _missing_indicator(reference, "depth")}),
        current.assign(**{indicator: _missing_indicator(current, "depth")}),
        [*methods, (indicator, "fisher_homogeneity")],
        [*CATEGORICAL, indicator],
    )
    for c in result.columns:
        assert c.p_value == expected[(c.column, c.stattest)], c.column
        assert c.effect_size == expected[(c.column, c.effect or "")], c.column
    depth = next(c for c in result.columns if c.column == "depth")
    assert depth.missing is not None
    assert depth.missing.p_value == expected[(indicator, "fisher_homogeneity")]
    assert depth.missing.current_share == pytest.approx(41 / rows)
    chosen = {c.column: (c.stattest, c.effect) for c in result.columns}
    assert chosen["carat"] == ("ks_2samp", "wasserstein_clipped")
    assert chosen["cut"] == ("chi2_homogeneity", "jensenshannon")


@pytest.mark.parametrize("correction", ["holm", "bh"])
def test_tested_corrected_p_values_equal_statsmodels(correction: str) -> None:
    model = _model(correction=correction)
    current = _window("drifted", 400)
    current.loc[:60, "cut"] = None
    result = engine.compute(model, _reference(), current)
    family = [c.p_value for c in result.columns]
    corrected = [c.corrected_p_value for c in result.columns]
    missing = [c.missing for c in result.columns if c.missing is not None]
    assert len(missing) == 1
    family += [missing[0].p_value]
    corrected += [missing[0].corrected_p_value]
    method = {"holm": "holm", "bh": "fdr_bh"}[correction]
    expected = multipletests(np.array(family, dtype=float), method=method)[1]
    assert corrected == list(expected)  # each p-value's correction does not depend on the order


def test_correct_equals_multipletests_on_random_families() -> None:
    rng = np.random.default_rng(7)
    for size in (1, 2, 3, 8, 40):
        for _ in range(4):  # statsmodels' holm costs 50-100 ms a call
            p = rng.random(size) ** 4
            p[rng.random(size) < 0.3] = p[0]  # ties
            assert correct(list(p), "holm") == list(multipletests(p, method="holm")[1])
            assert correct(list(p), "bh") == list(multipletests(p, method="fdr_bh")[1])


def test_alpha_is_split_between_columns_and_classifier() -> None:
    result = engine.compute(_model(alpha=0.02), _reference(), _window("production", 500))
    assert result.alpha == pytest.approx(0.01)
    assert result.classifier is not None and result.classifier.alpha == pytest.approx(0.01)
    alone = engine.compute(
        _model(alpha=0.02, classifier={"enabled": False}), _reference(), _window("production", 500)
    )
    assert (alone.alpha, alone.classifier) == (0.02, None)
    assert all(c.threshold == 0.02 for c in alone.columns)


def test_chi2_homogeneity_is_scipy_contingency_test_without_sparse_cells() -> None:
    ref = np.array([300.0, 500.0, 200.0])
    cur = np.array([40.0, 70.0, 40.0])
    expected = stats.chi2_contingency(np.array([ref, cur]), correction=False)[1]
    assert homogeneity_p_value(ref, cur) == expected


def test_chi2_homogeneity_pools_sparse_categories_so_one_new_row_is_no_evidence() -> None:
    """Evidently's chisquare gives p = 0 for one row of a category the reference never had."""
    reference = pd.Series(["a"] * 6000 + ["b"] * 3000 + ["c"] * 1000)
    current = pd.Series(["a"] * 599 + ["b"] * 300 + ["c"] * 100 + ["never-seen"])
    definition = DataDefinition(categorical_columns=["v"])
    snapshot = Report([ValueDrift(column="v", method=m) for m in ("chisquare", "chi2_homogeneity")]).run(
        Dataset.from_pandas(pd.DataFrame({"v": current}), data_definition=definition),
        Dataset.from_pandas(pd.DataFrame({"v": reference}), data_definition=definition),
    )
    goodness_of_fit, homogeneity = (float(m["value"]) for m in snapshot.dict()["metrics"])
    assert goodness_of_fit == 0.0
    assert homogeneity > 0.5
    pooled_ref, pooled_cur = pool_sparse(np.array([0.0, 1000, 3000, 6000]), np.array([1.0, 100, 300, 599]))
    assert list(pooled_ref) == [3000, 6000, 1000] and list(pooled_cur) == [300, 599, 101]


def test_one_sentinel_row_does_not_flip_the_verdict_or_dominate_the_effect() -> None:
    model = _model()
    reference, current = _reference(), _window("production", 2000)
    calm = engine.compute(model, reference, current)
    numbers = ["carat", "depth", "table", "x", "y", "z"]
    for sentinel in (999999.0, 1e308, -1e308):
        bad = current.copy()
        bad.loc[17, numbers] = sentinel
        bad.loc[17, "cut"] = "UNKNOWN"
        result = engine.compute(model, reference, bad)
        assert result.dataset_drift == calm.dataset_drift is False
        for column in result.columns:
            assert column.effect_size is not None and column.effect_size < 0.1, (sentinel, column)


def test_a_shift_below_the_effect_floor_is_significant_but_no_drift() -> None:
    """At 40,000 rows a 0.05 standard deviation shift of one column is significant, and tiny."""
    model = _model(classifier={"enabled": False})
    reference = _reference()
    current = pd.concat([_window("production", 2500)] * 16, ignore_index=True)
    current["depth"] = current["depth"] + 0.05 * reference["depth"].std()
    result = engine.compute(model, reference, current)
    depth = next(c for c in result.columns if c.column == "depth")
    assert result.alpha is not None
    assert depth.corrected_p_value is not None and depth.corrected_p_value < result.alpha / 10
    assert depth.effect_size is not None and depth.effect_size < depth.min_effect  # type: ignore[operator]
    assert not depth.detected


def test_missing_share_is_a_signal_of_its_own() -> None:
    model = _model()
    current = _window("production", 1000)
    current.loc[current.sample(frac=0.3, random_state=1).index, "table"] = np.nan
    result = engine.compute(model, _reference(), current)
    table = next(c for c in result.columns if c.column == "table")
    assert table.missing is not None and table.missing.detected
    assert table.detected and not table.distribution_detected
    assert result.dataset_drift is True
    assert table.missing.change == pytest.approx(0.3)


def test_classifier_sees_a_covariate_mix_the_columns_call_small() -> None:
    """Half of the window from the expensive diamonds: each column moves, the classifier sees it."""
    reference = _reference()
    mixed = pd.concat([_window("production", 500), _window("drifted", 500)], ignore_index=True)
    result = engine.compute(_model(), reference, mixed)
    assert result.classifier is not None
    assert result.classifier.detected and result.classifier.auc > 0.6
    assert result.classifier.top_columns[0] in {"carat", "x", "y", "z"}
    assert len(result.classifier.importances) == len(FEATURES)


def _classifier_auc(model: str, rows: int = 600) -> tuple[float, float]:
    result = domain.classify(
        model,
        FEATURES,
        CATEGORICAL,
        _reference(),
        _window("production", rows),
        max_rows=2000,
        alpha=0.025,
        min_auc=0.55,
        top=3,
    )
    assert result is not None
    return result.auc, result.p_value


def test_classifier_is_deterministic_for_the_same_rows_in_any_process() -> None:
    here = _classifier_auc("diamonds")
    assert _classifier_auc("diamonds") == here
    script = (
        "import json; from tests.test_engine_tested import _classifier_auc; "
        "print(json.dumps(_classifier_auc('diamonds')))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True, cwd=ROOT
    )
    assert tuple(json.loads(done.stdout.strip().splitlines()[-1])) == here
    assert _classifier_auc("another-model") != here  # the seed depends on the model name
    assert _classifier_auc("diamonds", rows=601) != here  # and on the rows


def test_test_choice_comes_from_the_reference_not_the_window(tmp_path: Any) -> None:
    """A numerical column with at most 5 values in the reference is tested as categories, whatever
    the window holds; the choice does not change between windows."""
    reference = _reference().assign(table=lambda f: (f["table"] > 57).astype(float))
    path = tmp_path / "reference.csv"
    reference.to_csv(path, index=False)
    model = ModelConfig.model_validate(diamonds_model(reference=str(path)))
    choices = set()
    for start in (0, 500):
        window = _window("production", 500, start)
        window.loc[:3, "table"] = [2.0, 3.0, 4.0, 5.0]  # new values in this window only
        result = engine.compute(model, reference, window)
        table = next(c for c in result.columns if c.column == "table")
        choices.add((table.stattest, table.effect))
    assert choices == {("chi2_homogeneity", "jensenshannon_clipped")}


def _widgets(snapshot: Any) -> list[dict[str, Any]]:
    """The top-level widgets of an Evidently snapshot, as plain dicts."""
    return [w.dict() for w in snapshot.to_snapshot_model().widgets]


def test_tested_report_shows_our_verdict_and_not_the_share_rule_widget() -> None:
    from monitor_service.engine.report import build_report, with_verdict
    from monitor_service.engine.verdict import outcome_of

    model = _model()
    reference, current = _reference(), _window("drifted", 300)
    result = engine.compute(model, reference, current)
    outcome = outcome_of(result)
    widgets = _widgets(with_verdict(build_report(model, reference, current, outcome), model, outcome))
    verdict, explanation, classifier, table = widgets[:4]
    assert verdict["title"] == "Drift verdict of model diamonds"
    counters = {c["label"]: c["value"] for c in verdict["params"]["counters"]}
    assert counters["dataset"] == "drift"
    assert counters["drifted feature columns"] == f"{result.drifted_columns} of {result.tested_columns}"
    assert "corrected across all tests (holm)" in explanation["params"]["counters"][0]["label"]
    rows = {row[0]: row for row in table["params"]["data"]}
    for column in result.columns:  # the same corrected p-values as the calculation
        assert rows[column.column][4] == f"{column.corrected_p_value:.3g}"
    assert result.classifier is not None
    auc = {c["label"]: c["value"] for c in classifier["params"]["counters"]}["AUC"]
    assert auc.startswith(f"{result.classifier.auc:.3f}")
    page = engine.report_html(model, reference, current)  # on demand: the same verdict, rendered
    assert "Drift verdict of model diamonds" in page.html
    assert "Share of Drifted Columns" not in page.html  # Evidently's share-rule widget is not our verdict
    legacy = engine.report_html(_model(mode="legacy"), reference, current)
    assert "Share of Drifted Columns" in legacy.html and "Drift verdict" not in legacy.html


def test_verdict_widgets_reach_the_page_only_as_escaped_data() -> None:
    from evidently.core.report import Snapshot

    from monitor_service.engine.drift import DriftOutcome
    from monitor_service.engine.report import snapshot_html, with_verdict
    from monitor_service.results import ColumnDrift, SkippedColumn

    hostile = "<img src=x onerror=alert(1)></script><script>alert(2)</script>"
    outcome = DriftOutcome(
        columns=(
            ColumnDrift(
                hostile, "feature", "ks_2samp", 0.5, 0.025, False, 0.5, 0.9, "wasserstein", 0.01, 0.1
            ),
        ),
        skipped=(SkippedColumn(hostile, "feature", hostile, "no_current_values"),),
        dataset_drift=True,
        drifted_columns=1,
        tested_columns=2,
        alpha=0.025,
        untestable=1,
    )
    empty = Report([]).run(Dataset.from_pandas(pd.DataFrame({"value": [0.0]})), None)
    snapshot = with_verdict(empty, ModelConfig.model_validate(diamonds_model()), outcome)
    stored = Snapshot.load_dict(json.loads(snapshot.dumps()))  # as the report store keeps it
    assert any(hostile in json.dumps(w) for w in _widgets(stored))
    page = snapshot_html(stored)
    assert hostile not in page.html
    assert "\\u003cimg src=x onerror=alert(1)\\u003e\\u003c/script\\u003e" in page.html
    # no script element of its own: the same as the page of an empty report, all pinned by the policy
    assert page.html.count("<script") == snapshot_html(empty).html.count("<script")
    assert len(_script_hashes(page.content_security_policy)) == 4


def _script_hashes(policy: str) -> list[str]:
    """The hashes a policy's script-src allows."""
    source = next(part for part in policy.split("; ") if part.startswith("script-src "))
    return source.split()[1:]


def test_reference_chunk_calibration_raises_floors_for_ordered_references() -> None:
    """A reference in a natural order (here: by table): contiguous blocks of it differ from the rest
    with no population change. Calibrated from chunks in file order, the floors absorb that spread."""
    from monitor_service.engine.calibration import calibrate, calibrated_min_auc
    from monitor_service.engine.plan import plan_columns

    reference = _reference().sort_values("table", kind="mergesort").reset_index(drop=True)
    block = reference.iloc[6000:7000].reset_index(drop=True)  # a contiguous block, nothing changed
    plain = ModelConfig.model_validate(diamonds_model(window={"max_rows": 1000}))
    calibrated = ModelConfig.model_validate(
        diamonds_model(window={"max_rows": 1000}, drift={"calibration": "reference_chunks"})
    )
    plans = plan_columns(calibrated, reference)
    calibration = calibrate(calibrated, reference, plans)
    assert (calibration.chunk_rows, calibration.chunks) == (1000, 10)
    assert calibration.min_effect["table"] > 1.0  # chunks sorted by table are far apart on it
    assert calibrated_min_auc(calibrated, reference, plans) > 0.9
    assert calibrate(calibrated, reference, plans) is calibration  # cached per reference content
    assert engine.compute(plain, reference, block).dataset_drift is True
    result = engine.compute(calibrated, reference, block)
    assert result.dataset_drift is False
    table = next(c for c in result.columns if c.column == "table")
    # the calibrated floor, raised (a little, at 1,000 rows against 10,000) by the noise allowance
    assert table.min_effect is not None
    assert calibration.min_effect["table"] < table.min_effect < 1.01 * calibration.min_effect["table"]
    # calibration never lowers a floor below the configured one
    assert all(c.min_effect is not None and c.min_effect >= 0.05 for c in result.columns)


def test_effect_floor_is_raised_by_the_noise_of_small_samples() -> None:
    """The same configured floor; the exported floor is higher for 200 rows than for 5,000, and a
    window drawn from the reference's own population stays below it."""
    from monitor_service.engine.stattests import effective_floor, null_effect

    reference = _reference()
    model = _model()
    small = engine.compute(model, reference, _window("production", 200))
    large = engine.compute(model, reference, _window("production", 5000))
    for column in ("carat", "depth", "cut"):
        floor_small = next(c.min_effect for c in small.columns if c.column == column)
        floor_large = next(c.min_effect for c in large.columns if c.column == column)
        assert floor_small is not None and floor_large is not None
        assert floor_small > floor_large > (0.1 if column != "cut" else 0.05)
    depth = next(c for c in small.columns if c.column == "depth")
    null = null_effect("wasserstein", reference["depth"], 200, True)
    assert depth.min_effect == pytest.approx(effective_floor("wasserstein", 0.1, null))
    assert null == pytest.approx(0.1 * 0.8, rel=0.5)  # about 0.08 sd of noise at 200 rows
    assert not any(c.distribution_detected for c in small.columns)
