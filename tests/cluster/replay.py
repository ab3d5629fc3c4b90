"""What a single node's window holds after a sequence of stored requests, for comparisons.

Mirrors the monitor's own replay (monitor.py `_apply_rows` / `_apply_labels`): rows are validated
with their arrival time and appended, pending labels join arriving rows, labels go to the newest
row with their id or wait `labels.pending_ttl`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from monitor_service.bodies import decode_rows, labels_of
from monitor_service.config import ModelConfig
from monitor_service.ground_truth import PendingLabels
from monitor_service.schema import RowSchema, validate_labels
from monitor_service.window import SlidingWindow, WindowRows


class StoredRequest(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def arrived(self) -> float: ...
    @property
    def body_format(self) -> int: ...
    @property
    def body(self) -> bytes: ...


def window_after(model: ModelConfig, records: Iterable[StoredRequest], now: float) -> WindowRows:
    schema = RowSchema.from_model(model)
    columns = model.columns
    assert columns.id is not None and columns.target is not None
    window = SlidingWindow(
        {spec.name: spec.kind for spec in schema.columns},
        model.window.max_rows,
        model.window.max_age,
        id_column=columns.id,
        target_column=columns.target,
    )
    pending = PendingLabels(model.labels.pending_max, model.labels.pending_ttl)
    for record in records:
        if record.kind == "rows":
            batch = decode_rows(record.body, record.body_format, schema, record.arrived)
            window.append(batch, record.arrived)
            ids, targets = pending.take(list(batch.columns[columns.id]), record.arrived)
            if ids:
                window.apply_labels(ids, targets)
        else:
            ids, values = validate_labels(labels_of(record.body, record.body_format), schema, columns.target)
            targets = list(values)
            for row_id, target, matched in zip(ids, targets, window.apply_labels(ids, targets), strict=True):
                if not matched:
                    pending.add(row_id, target, record.arrived)
    return window.copy(now)
