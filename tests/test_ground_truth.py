from __future__ import annotations

from monitor_service.ground_truth import PendingLabels


def test_pending_labels_are_taken_once_by_id() -> None:
    pending = PendingLabels(max_items=10, ttl=60)
    pending.add("a", 1.0, now=0)
    pending.add("b", 2.0, now=0)
    assert pending.take(["b", "x", None], now=1) == (["b"], [2.0])
    assert pending.take(["b"], now=1) == ([], [])
    assert len(pending) == 1


def test_pending_labels_expire_after_ttl_and_are_counted() -> None:
    pending = PendingLabels(max_items=10, ttl=60)
    pending.add("a", 1.0, now=0)
    pending.add("b", 2.0, now=30)
    assert pending.take(["a", "b"], now=61) == (["b"], [2.0])
    assert pending.expired == 1


def test_pending_labels_drop_oldest_when_full() -> None:
    pending = PendingLabels(max_items=2, ttl=60)
    for i, row_id in enumerate(["a", "b", "c"]):
        pending.add(row_id, float(i), now=0)
    assert pending.expired == 1
    assert pending.take(["a", "b", "c"], now=1) == (["b", "c"], [1.0, 2.0])


def test_pending_labels_duplicate_id_keeps_latest_value() -> None:
    pending = PendingLabels(max_items=10, ttl=60)
    pending.add("a", 1.0, now=0)
    pending.add("a", 5.0, now=10)
    assert pending.take(["a"], now=65) == (["a"], [5.0])
