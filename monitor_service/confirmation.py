"""The confirmed drift state: hysteresis over the raw verdicts of successive calculations.

A raw verdict (dataset drift, or one column's drift) turns the confirmed state on only after it held
for `confirm` consecutive calculations, and off only after it was absent for `clear` calculations.
Consecutive windows overlap (a window of 2,000 rows recalculated every 200 rows shares 90% of its
rows with the previous one), so one unlucky sample of rows keeps the raw verdict on for many
calculations in a row: counting calculations alone would confirm it. With `turnover` (the default)
the raw verdict must also hold until every row of the window it first appeared in has left the
window: the confirming calculation then looks at rows that were not in the first one. A calculation
that carries no arrival times (`newest`/`oldest` None) is judged by the count alone.

Pure and frozen: `update(state, observation, settings)` returns a new state; `as_dict()` /
`from_dict()` round-trip it through JSON for persistence or a cluster's key-value store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class ConfirmationSettings:
    confirm: int = 3
    clear: int = 3
    turnover: bool = True


@dataclass(frozen=True)
class Observation:
    """The raw verdicts of one calculation and the arrival times bounding its window's rows."""

    dataset: bool | None
    columns: Mapping[str, bool] = field(default_factory=dict)
    oldest: float | None = None
    newest: float | None = None


@dataclass(frozen=True)
class Track:
    """One confirmed flag: its value and the streak of calculations that disagree with it."""

    confirmed: bool = False
    streak: int = 0
    since: float | None = None  # newest arrival in the window of the streak's first calculation

    def step(
        self, raw: bool | None, oldest: float | None, newest: float | None, settings: ConfirmationSettings
    ) -> Track:
        if raw is None:
            return self
        if raw == self.confirmed:
            return Track(self.confirmed)
        streak = self.streak + 1
        since = self.since if self.streak else newest
        needed = settings.confirm if raw else settings.clear
        turned_over = (
            not settings.turnover or needed <= 1 or oldest is None or since is None or oldest > since
        )
        if streak >= needed and turned_over:
            return Track(raw)
        return Track(self.confirmed, streak, since)

    def as_dict(self) -> dict[str, Any]:
        return {"confirmed": self.confirmed, "streak": self.streak, "since": self.since}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Track:
        since = data.get("since")
        return cls(bool(data["confirmed"]), int(data["streak"]), None if since is None else float(since))


@dataclass(frozen=True)
class ConfirmationState:
    """Confirmed dataset drift and confirmed drift per column (by column name)."""

    dataset: Track = field(default_factory=Track)
    columns: Mapping[str, Track] = field(default_factory=dict)
    calculations: int = 0

    def update(self, observation: Observation, settings: ConfirmationSettings) -> ConfirmationState:
        return update(self, observation, settings)

    def summary(self) -> dict[str, Any]:
        """The confirmed flags as the API shows them (null before the first calculation)."""
        return {
            "dataset_drift_confirmed": self.dataset.confirmed if self.calculations else None,
            "columns_drift_confirmed": sorted(n for n, t in self.columns.items() if t.confirmed),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset.as_dict(),
            "columns": {name: track.as_dict() for name, track in sorted(self.columns.items())},
            "calculations": self.calculations,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConfirmationState:
        return cls(
            Track.from_dict(data["dataset"]),
            {name: Track.from_dict(track) for name, track in data["columns"].items()},
            int(data["calculations"]),
        )


def update(
    state: ConfirmationState, observation: Observation, settings: ConfirmationSettings
) -> ConfirmationState:
    """The state after one more calculation. Columns absent from the observation keep their state."""
    oldest, newest = observation.oldest, observation.newest
    columns = dict(state.columns)
    for name, raw in observation.columns.items():
        columns[name] = columns.get(name, Track()).step(raw, oldest, newest, settings)
    return replace(
        state,
        dataset=state.dataset.step(observation.dataset, oldest, newest, settings),
        columns=columns,
        calculations=state.calculations + 1,
    )
