from __future__ import annotations

from dataclasses import replace

from prometheus_client import CollectorRegistry

from monitor_service.collector import DriftCollector
from monitor_service.confirmation import ConfirmationSettings
from monitor_service.model_state import ModelStats
from monitor_service.results import (
    CalculationResult,
    ColumnDrift,
    ColumnImportance,
    ColumnQuality,
    DomainClassifierResult,
    MissingDrift,
    ModelStatus,
    SkippedColumn,
)


class _Model:
    """What the collector reads, held by the test: one model's stats, replaced as things happen."""

    def __init__(self) -> None:
        self.stats = ModelStats(
            name="diamonds",
            task="regression",
            window_rows=0,
            window_max_rows=5000,
            reference_rows=10_000,
            schedule_every=3600.0,
            min_rows=10,
            last_arrival=None,
            labels_pending=0,
            labels_expired=0,
            labels_received=0,
            labels_matched=0,
            durable=False,
            journal_bytes=0,
            replayed_records=0,
            corrupt_records=0,
            invalid_records=0,
            status=ModelStatus(),
        )

    def update(self, status: ModelStatus) -> None:
        self.stats = replace(self.stats, status=status)

    def publish(self, result: CalculationResult, settings: ConfirmationSettings | None = None) -> None:
        """A successful calculation as ModelState records it: status and confirmed drift state."""
        self.stats = replace(
            self.stats,
            status=self.stats.status.succeeded(result),
            confirmation=self.stats.confirmation.update(
                result.observation(), settings or ConfirmationSettings()
            ),
        )


def _registry() -> tuple[CollectorRegistry, _Model]:
    registry = CollectorRegistry()
    model = _Model()
    registry.register(DriftCollector(lambda: [model.stats], "0.7.test"))
    return registry, model


def _result(**overrides: object) -> CalculationResult:
    values: dict[str, object] = {
        "model": "diamonds",
        "finished_at": 1_700_000_000.0,
        "duration_seconds": 0.5,
        "current_rows": 400,
        "reference_rows": 10_000,
        "drift_share": 0.5,
        "dataset_drift": True,
        "drifted_columns": 2,
        "tested_columns": 3,
        "columns": (
            ColumnDrift("carat", "feature", "wasserstein", 0.4, 0.1, True),
            ColumnDrift("cut", "feature", "jensenshannon", 0.01, 0.1, False),
            ColumnDrift("prediction", "prediction", "ks", 0.001, 0.05, True),
        ),
        "quality": (
            ColumnQuality("carat", "feature", 0.25, 0.0, 0.125, None),
            ColumnQuality("cut", "feature", 0.0, 0.0, None, 0.5),
        ),
    }
    return CalculationResult(**{**values, **overrides})  # type: ignore[arg-type]


def test_collector_exports_nothing_of_results_before_first_calculation() -> None:
    registry, _ = _registry()
    assert registry.get_sample_value("drift_monitor_dataset_drift", {"model": "diamonds"}) is None
    assert (
        registry.get_sample_value("drift_monitor_last_success_timestamp_seconds", {"model": "diamonds"})
        is None
    )
    assert registry.get_sample_value("drift_monitor_window_rows", {"model": "diamonds"}) == 0
    assert registry.get_sample_value("drift_monitor_window_max_rows", {"model": "diamonds"}) == 5000
    assert registry.get_sample_value("drift_monitor_calculations_total", {"model": "diamonds"}) == 0
    info = {"version": "0.1.0", "evidently_version": "0.7.test"}
    assert any(
        s.labels.items() >= info.items()
        for m in registry.collect()
        for s in m.samples
        if s.name == "drift_monitor_build_info"
    )


def test_collector_maps_result_fields_to_samples() -> None:
    registry, model_state = _registry()
    model_state.update(ModelStatus().succeeded(_result()))
    get = registry.get_sample_value
    model = {"model": "diamonds"}
    assert get("drift_monitor_dataset_drift", model) == 1
    assert get("drift_monitor_drifted_columns", model) == 2
    assert get("drift_monitor_drifted_columns_ratio", model) == 2 / 3
    assert get("drift_monitor_dataset_drift_share_threshold", model) == 0.5
    carat = {**model, "column": "carat", "role": "feature"}
    assert get("drift_monitor_column_drift_score", {**carat, "stattest": "wasserstein"}) == 0.4
    assert get("drift_monitor_column_drift_detected", carat) == 1
    assert get("drift_monitor_column_drift_threshold", carat) == 0.1
    prediction = {**model, "column": "prediction", "role": "prediction"}
    assert get("drift_monitor_column_drift_detected", prediction) == 1
    assert (
        get("drift_monitor_column_missing_values_ratio", {**model, "column": "carat", "dataset": "current"})
        == 0.25
    )
    assert get("drift_monitor_column_out_of_range_ratio", {**model, "column": "carat"}) == 0.125
    assert get("drift_monitor_column_out_of_range_ratio", {**model, "column": "cut"}) is None
    assert get("drift_monitor_column_new_category_ratio", {**model, "column": "cut"}) == 0.5
    assert get("drift_monitor_dataset_rows", {**model, "dataset": "current"}) == 400
    assert get("drift_monitor_last_success_timestamp_seconds", model) == 1_700_000_000.0


def test_collector_keeps_last_good_result_after_failure() -> None:
    registry, model_state = _registry()
    model_state.update(ModelStatus().succeeded(_result()).failed(1_700_000_100.0, "boom"))
    model = {"model": "diamonds"}
    assert registry.get_sample_value("drift_monitor_dataset_drift", model) == 1
    assert registry.get_sample_value("drift_monitor_calculation_errors_total", model) == 1
    assert registry.get_sample_value("drift_monitor_calculations_total", model) == 2
    assert registry.get_sample_value("drift_monitor_last_success_timestamp_seconds", model) == 1_700_000_000.0


def test_collector_omits_dataset_drift_when_no_feature_was_tested() -> None:
    registry, model_state = _registry()
    model_state.update(
        ModelStatus().succeeded(_result(dataset_drift=None, drifted_columns=0, tested_columns=0, columns=()))
    )
    assert registry.get_sample_value("drift_monitor_dataset_drift", {"model": "diamonds"}) is None
    assert (
        registry.get_sample_value("drift_monitor_dataset_rows", {"model": "diamonds", "dataset": "current"})
        == 400
    )


def _tested_result(**overrides: object) -> CalculationResult:
    missing = MissingDrift("fisher_homogeneity", 1e-6, 2e-5, 0.0, 0.3, 0.05, True)
    values: dict[str, object] = {  # the run of _result, in tested mode, without quality values
        "drift_share": None,
        "quality": (),
        "mode": "tested",
        "alpha": 0.025,
        "correction": "holm",
        "untestable_columns": 1,
        "columns": (
            ColumnDrift(
                "carat", "feature", "ks_2samp", 0.001, 0.025, True,
                p_value=0.001, corrected_p_value=0.004, effect="wasserstein_clipped",
                effect_size=0.4, min_effect=0.1, distribution_detected=True, missing=missing,
            ),
            ColumnDrift(
                "cut", "feature", "chi2_homogeneity", 0.3, 0.025, False,
                p_value=0.3, corrected_p_value=0.9, effect="jensenshannon",
                effect_size=0.01, min_effect=0.05, distribution_detected=False,
            ),
        ),
        "skipped": (SkippedColumn("depth", "feature", "no values in the window", "no_current_values"),),
        "classifier": DomainClassifierResult(
            auc=0.71, p_value=1e-9, alpha=0.025, min_auc=0.55, detected=True, reference_rows=5000,
            current_rows=400, importances=(ColumnImportance("carat", 0.2), ColumnImportance("cut", 0.0)),
            top_columns=("carat",),
        ),
    }  # fmt: skip
    return _result(**{**values, **overrides})


def test_collector_exports_tested_mode_results() -> None:
    registry, model_state = _registry()
    model_state.stats = replace(model_state.stats, drift_share=None)  # as ModelState says in tested mode
    model_state.publish(_tested_result())
    get = registry.get_sample_value
    model = {"model": "diamonds"}
    carat = {**model, "column": "carat", "role": "feature"}
    assert get("drift_monitor_dataset_drift", model) == 1
    assert get("drift_monitor_dataset_drift_share_threshold", model) is None  # no share rule
    assert get("drift_monitor_column_drift_p_value", {**carat, "signal": "distribution"}) == 0.001
    assert get("drift_monitor_column_drift_corrected_p_value", {**carat, "signal": "distribution"}) == 0.004
    effect = {**carat, "signal": "distribution", "measure": "wasserstein_clipped"}
    assert get("drift_monitor_column_drift_effect_size", effect) == 0.4
    assert get("drift_monitor_column_drift_min_effect", {**carat, "signal": "distribution"}) == 0.1
    assert get("drift_monitor_column_drift_corrected_p_value", {**carat, "signal": "missing"}) == 2e-5
    missing = {**carat, "signal": "missing", "measure": "missing_share_change"}
    assert get("drift_monitor_column_drift_effect_size", missing) == 0.3
    assert get("drift_monitor_column_drift_threshold", carat) == 0.025
    depth = {**model, "column": "depth", "role": "feature", "reason": "no_current_values"}
    assert get("drift_monitor_column_untestable", depth) == 1
    assert get("drift_monitor_untestable_columns", model) == 1
    assert get("drift_monitor_drift_alpha", {**model, "family": "columns"}) == 0.025
    assert get("drift_monitor_drift_alpha", {**model, "family": "classifier"}) == 0.025
    assert get("drift_monitor_domain_classifier_auc", model) == 0.71
    assert get("drift_monitor_domain_classifier_p_value", model) == 1e-9
    assert get("drift_monitor_domain_classifier_detected", model) == 1
    assert get("drift_monitor_domain_classifier_column_importance", {**model, "column": "carat"}) == 0.2
    # one calculation: raw drift, not confirmed yet (confirm: 3 by default)
    assert get("drift_monitor_dataset_drift_confirmed", model) == 0
    assert get("drift_monitor_column_drift_confirmed", carat) == 0


def test_collector_exports_the_confirmed_state_after_enough_calculations() -> None:
    registry, model_state = _registry()
    settings = ConfirmationSettings(confirm=2, clear=2, turnover=False)
    get = registry.get_sample_value
    model = {"model": "diamonds"}
    for confirmed in (0, 1):
        model_state.publish(_tested_result(), settings)
        assert get("drift_monitor_dataset_drift_confirmed", model) == confirmed
        assert get(
            "drift_monitor_column_drift_confirmed", {**model, "column": "carat", "role": "feature"}
        ) == (confirmed)
        # the untestable column counts as drifted for its confirmation too
        assert get(
            "drift_monitor_column_drift_confirmed", {**model, "column": "depth", "role": "feature"}
        ) == (confirmed)
    assert get("drift_monitor_column_drift_confirmed", {**model, "column": "cut", "role": "feature"}) == 0
    calm = _tested_result(dataset_drift=False, skipped=(), classifier=None)
    model_state.publish(calm, settings)
    assert get("drift_monitor_dataset_drift_confirmed", model) == 1  # one calm calculation: still confirmed
    model_state.publish(calm, settings)
    assert get("drift_monitor_dataset_drift_confirmed", model) == 0
    status = model_state.stats.confirmation.summary()  # as /v1/models shows it
    assert status["dataset_drift_confirmed"] is False
    assert status["columns_drift_confirmed"] == ["carat", "depth"]
