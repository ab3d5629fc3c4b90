"""What a single node's window holds after a sequence of stored requests, for comparisons.

Mirrors the monitor's own replay (monitor.py `_apply_rows` / `_apply_labels`): rows are validated
with their arrival time and appended, pending labels join arriving rows, labels go to the newest
row with their id or wait `labels.pending_ttl`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from monitor_service.config import ModelConfig
from monitor_service.ground_truth import PendingLabels
from monitor_service.payload import parse_items
from monitor_service.schema import RowSchema, validate_labels, validate_rows
from monitor_service.window import SlidingWindow, WindowRows


class StoredRequest(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def arrived(self) -> float: ...
    @property
    def ndjson(self) -> bool: ...
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
        items = parse_items(record.body, record.ndjson, record.kind)
        if record.kind == "rows":
            batch = validate_rows(items, schema, record.arrived)
            window.append(batch, record.arrived)
            ids, targets = pending.take(list(batch.columns[columns.id]), record.arrived)
            if ids:
                window.apply_labels(ids, targets)
        else:
            ids, values = validate_labels(items, schema, columns.target)
            targets = list(values)
            for row_id, target, matched in zip(ids, targets, window.apply_labels(ids, targets), strict=True):
                if not matched:
                    pending.add(row_id, target, record.arrived)
    return window.copy(now)
