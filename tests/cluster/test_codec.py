"""Results through the state bucket's JSON and back: equal, NaN and infinities included."""

from __future__ import annotations

import math

import pytest

from monitor_service.cluster import codec
from monitor_service.cluster.entry import ModelEntry
from monitor_service.confirmation import ConfirmationSettings, ConfirmationState, Observation
from monitor_service.results import CalculationResult, ColumnDrift, ColumnQuality, ModelStatus, SkippedColumn


def result() -> CalculationResult:
    return CalculationResult(
        model="m",
        finished_at=1_700_000_000.123456789,
        duration_seconds=0.1 + 0.2,
        current_rows=400,
        reference_rows=1000,
        drift_share=0.5,
        dataset_drift=None,
        drifted_columns=1,
        tested_columns=3,
        columns=(
            ColumnDrift("carat", "feature", "ks", 1e-300, 0.05, True),
            ColumnDrift("cut", "feature", "chisquare", math.nan, 0.05, False),
        ),
        quality=(ColumnQuality("carat", "feature", 0.0588, 0.0, out_of_range=math.inf, new_category=None),),
        skipped=(SkippedColumn("price", "target", "no values"),),
        model_quality={"mae": 12.5, "r2": -math.inf},
        labelled_rows=7,
    )


def test_a_status_with_its_result_survives_the_trip_exactly() -> None:
    status = ModelStatus().succeeded(result()).failed(1_700_000_100.5, "ValueError: boom")
    entry = ModelEntry(status=status, due=1_700_000_000.0, position=42, last_arrival=None, by="m1")
    back = ModelEntry.decode(entry.encode())
    assert back.status.latest is not None and status.latest is not None
    assert back.status.latest.columns[0] == status.latest.columns[0]
    assert math.isnan(back.status.latest.columns[1].score)
    assert back.status.latest.quality[0].out_of_range == math.inf
    assert back.status.latest.model_quality["r2"] == -math.inf
    assert back.status.latest.finished_at == status.latest.finished_at
    assert back.status.latest.duration_seconds == 0.1 + 0.2
    assert back.status.latest.skipped == status.latest.skipped
    assert (back.status.calculations, back.status.errors, back.status.status) == (2, 1, "failed")
    assert (back.due, back.position, back.by, back.last_arrival) == (1_700_000_000.0, 42, "m1", None)
    assert codec.dumps(back) == entry.encode()


def test_the_confirmed_state_survives_the_trip_exactly() -> None:
    settings = ConfirmationSettings(confirm=2, clear=2)
    state = ConfirmationState().update(
        Observation(True, {"carat": True, "cut": False}, 1.5, 1e9 + 0.1), settings
    )
    state = state.update(Observation(True, {"carat": True}, 1e9 + 0.2, 1e9 + 0.3), settings)
    assert state.dataset.confirmed and not state.columns["cut"].confirmed
    back = ModelEntry.decode(ModelEntry(confirmation=state).encode()).confirmation
    assert back == state
    assert back.update(Observation(False, {}, None, None), settings) == state.update(
        Observation(False, {}, None, None), settings
    )


def test_fields_missing_from_an_older_entry_take_their_defaults() -> None:
    assert ModelEntry.decode(b'{"position": 3}') == ModelEntry(position=3)


@pytest.mark.parametrize(
    "data", [b"[]", b'{"status": {"status": "exploded"}}', b'{"position": "3"}', b'{"due": true}', b"{"]
)
def test_what_does_not_fit_is_refused(data: bytes) -> None:
    with pytest.raises(codec.DecodeError):
        ModelEntry.decode(data)
