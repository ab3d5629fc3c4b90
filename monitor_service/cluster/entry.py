"""`ModelEntry`: what the cluster knows of one model, the value of `result.<model>` in the state bucket.

One entry per model holds everything a calculation carries to the next, whichever monitor runs it:
the status (counters, last error, latest result), the confirmed drift state (the hysteresis over
successive calculations, confirmation.py), the label counters, the last schedule slot handled (so a
tick published twice is calculated once), and the window as the last monitor saw it (for `/metrics`
on every monitor). One key means one compare-and-set per task: a writer reads the entry and its revision,
builds the next entry from it, and writes with `update(last=revision)`; a writer that lost the
race reads again and rebases its outcome on the winner's entry (see member.py). An outcome maps
the status and the confirmed state read to the next ones, so a calculation advances the confirmed
state exactly once, on the entry it is written on, whichever member ran it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from monitor_service.cluster import codec
from monitor_service.config import ModelConfig
from monitor_service.confirmation import ConfirmationState
from monitor_service.model_state import ModelState, ModelStats
from monitor_service.results import ModelStatus

Shared = tuple[ModelStatus, ConfirmationState]
Outcome = Callable[[ModelStatus, ConfirmationState], Shared]


def unchanged(status: ModelStatus, confirmation: ConfirmationState) -> Shared:
    """The outcome of a task that did not calculate (too few rows)."""
    return status, confirmation


@dataclass(frozen=True)
class ModelEntry:
    """The cluster's view of one model (see the module's docstring)."""

    status: ModelStatus = field(default_factory=ModelStatus)
    confirmation: ConfirmationState = field(default_factory=ConfirmationState)
    due: float | None = None  # start of the last schedule slot handled (tick x every)
    position: int = 0  # the last stream record the label counters cover
    window_rows: int = 0
    last_arrival: float | None = None
    reference_rows: int = 0
    labels_pending: int = 0
    labels_received: int = 0
    labels_matched: int = 0
    labels_expired: int = 0
    invalid_records: int = 0
    by: str = ""  # the monitor that wrote it
    deliveries: int = 0  # the task's delivery (2 or more: a worker before this one died)
    written_at: float = 0.0

    def encode(self) -> bytes:
        return codec.dumps(self)

    @classmethod
    def decode(cls, data: bytes) -> ModelEntry:
        return codec.loads(cls, data)

    def stats(self, model: ModelConfig) -> ModelStats:
        """The frozen view the collector and /v1/models read, as every monitor serves it."""
        return ModelStats(
            name=model.name,
            task=model.task,
            window_rows=self.window_rows,
            window_max_rows=model.window.max_rows,
            reference_rows=self.reference_rows,
            schedule_every=model.schedule.every,
            min_rows=model.schedule.min_rows,
            last_arrival=self.last_arrival,
            labels_pending=self.labels_pending,
            labels_expired=self.labels_expired,
            labels_received=self.labels_received,
            labels_matched=self.labels_matched,
            durable=False,  # no local log to report on: the stream is the log
            journal_bytes=0,
            replayed_records=0,
            corrupt_records=0,
            invalid_records=self.invalid_records,
            status=self.status,
            confirmation=self.confirmation,
            drift_share=model.drift.share if model.drift.mode == "legacy" else None,
        )


def next_entry(
    base: ModelEntry | None,
    state: ModelState,
    outcome: Outcome,
    *,
    now: float,
    by: str,
    due: float | None = None,
    deliveries: int = 0,
) -> ModelEntry:
    """The entry after this monitor's work on `state`, built on `base` (the entry read, or None)."""
    base = base or ModelEntry()
    stats = state.stats(now)
    received, matched, expired = state.label_tally(base.position)
    status, confirmation = outcome(base.status, base.confirmation)
    return ModelEntry(
        status=status,
        confirmation=confirmation,
        due=due if due is not None else base.due,
        position=max(base.position, state.position),
        window_rows=stats.window_rows,
        last_arrival=stats.last_arrival,
        reference_rows=stats.reference_rows,
        labels_pending=stats.labels_pending,
        labels_received=base.labels_received + received,
        labels_matched=base.labels_matched + matched,
        labels_expired=base.labels_expired + expired,
        invalid_records=stats.invalid_records,
        by=by,
        deliveries=deliveries,
        written_at=now,
    )
