"""Ground truth that arrived before its rows: kept for a bounded time and count, joined when rows come."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any


def last_wins(ids: Sequence[str], targets: Sequence[Any]) -> tuple[list[str], list[Any], int]:
    """One label per id, the last one sent for it (in order of first mention), and how many were dropped."""
    latest = dict(zip(ids, targets, strict=True))
    return list(latest), list(latest.values()), len(ids) - len(latest)


class PendingLabels:
    """Bounded, time-limited store of id -> target; the oldest entries go first when it is full."""

    def __init__(self, max_items: int, ttl: float) -> None:
        self.max_items = max_items
        self.ttl = ttl
        self._items: OrderedDict[str, tuple[Any, float]] = OrderedDict()
        self.expired = 0

    def __len__(self) -> int:
        return len(self._items)

    def add(self, row_id: str, target: Any, now: float) -> None:
        self._items.pop(row_id, None)
        self._items[row_id] = (target, now + self.ttl)
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)
            self.expired += 1

    def take(self, ids: list[Any], now: float) -> tuple[list[str], list[Any]]:
        """Remove and return the pending labels of `ids` (those not expired)."""
        self.expire(now)
        found_ids: list[str] = []
        targets: list[Any] = []
        if not self._items:
            return found_ids, targets
        for row_id in ids:
            item = self._items.pop(row_id, None) if row_id is not None else None
            if item is not None:
                found_ids.append(row_id)
                targets.append(item[0])
        return found_ids, targets

    def expire(self, now: float) -> None:
        while self._items:
            row_id, (_, expires_at) = next(iter(self._items.items()))
            if expires_at > now:
                break
            del self._items[row_id]
            self.expired += 1

    def export(self) -> list[tuple[str, Any, float]]:
        return [(row_id, target, expires_at) for row_id, (target, expires_at) in self._items.items()]

    def restore(self, items: list[tuple[str, Any, float]], expired: int) -> None:
        self._items = OrderedDict((row_id, (target, expires_at)) for row_id, target, expires_at in items)
        self.expired = expired
