"""Stored reports in cluster mode: every model's reports in the cluster's files bucket, listed by
every member.

A report is the same two files as on one node (reports.py), each an object of the `<prefix>_FILES`
bucket: `report/<model>/<id>.json` (Evidently's snapshot) and `report/<model>/<id>.meta.json` (its
entry, also the object's description). The member that calculates writes both, entry last, in the
task that writes the model's shared entry, and applies the retention; a member that dies between
the two leaves a snapshot without entry, which nothing lists and the next writer's prune removes
once it is older than `ORPHAN_GRACE` (reports.py).

Every member follows the bucket (`FilesWatch`: names and descriptions, never the bytes) and tells
each model's `ReportStore` what appeared and what went, so `GET .../reports`, `GET .../report`
and `drift_monitor_last_report_timestamp_seconds` answer the same on every member without touching
the network; only reading a report's bytes does.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import CancelledError
from typing import TypeVar

from nats.js import api

from monitor_service.journal.jetstream import ClusterUnavailable
from monitor_service.journal.jetstream_journal import ClusterNotConnected, JetStreamConnection
from monitor_service.journal.jetstream_objects import report_object
from monitor_service.reports import ENTRY_SUFFIX, ReportEntry, ReportStore

log = logging.getLogger(__name__)
_T = TypeVar("_T")


class SharedReportBackend:
    """One model's report files as objects of the files bucket. Called from worker threads (the
    store writes and reads off the event loop); errors of the cluster become OSError, which the
    store counts and the API answers with 503."""

    def __init__(self, model: str, connection: JetStreamConnection) -> None:
        self.model = model
        self._connection = connection
        self._names: set[str] = set()  # what the bucket holds, kept by `ReportMirror`
        self._lock = threading.Lock()  # the mirror (event loop) and the store (threads) both change it

    def write(self, name: str, data: bytes) -> None:
        description = data.decode() if name.endswith(ENTRY_SUFFIX) else None
        self._call("store", name, lambda: self._connection.files.put(self._object(name), data, description))
        self.seen(name, True)

    def read(self, name: str) -> bytes:
        found = self._call("read", name, lambda: self._connection.files.get(self._object(name)))
        if found is None:
            raise FileNotFoundError(f"report file {name} is not in the cluster's files bucket")
        return found[0]

    def delete(self, name: str) -> None:
        self._call("delete", name, lambda: self._connection.files.delete(self._object(name)))
        self.seen(name, False)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._names)

    def seen(self, name: str, present: bool) -> None:
        """The bucket holds the file now (`present`) or no longer."""
        with self._lock:
            if present:
                self._names.add(name)
            else:
                self._names.discard(name)

    def _object(self, name: str) -> str:
        return report_object(self.model, name)

    def _call(self, what: str, name: str, call: Callable[[], Awaitable[_T]]) -> _T:
        try:
            return self._connection.run_from_thread(call)
        # RuntimeError, CancelledError: the event loop is stopping (the monitor shuts down)
        except (ClusterUnavailable, ClusterNotConnected, RuntimeError, CancelledError) as exc:
            raise OSError(f"cannot {what} report file {name} of {self.model} in the cluster: {exc}") from exc


class ReportMirror:
    """Listens to the files bucket and keeps every model's `ReportStore` index equal to it."""

    def __init__(self, stores: Mapping[str, ReportStore]) -> None:
        self.stores = stores
        self.learned = 0
        self.forgotten = 0

    def __call__(self, name: str, info: api.ObjectInfo | None) -> None:
        parts = name.split("/")
        if len(parts) != 3 or parts[0] != "report":
            return  # references, and anything else sharing the bucket
        _, model, file_name = parts
        store = self.stores.get(model)
        if store is None:
            return  # a model this member does not monitor
        if isinstance(store.backend, SharedReportBackend):
            store.backend.seen(file_name, info is not None)
        if not file_name.endswith(ENTRY_SUFFIX):
            return
        report_id = file_name[: -len(ENTRY_SUFFIX)]
        if info is None:
            self.forgotten += store.forget(report_id)
            return
        try:
            entry = ReportEntry(**json.loads(info.description or ""))
        except (ValueError, TypeError) as exc:
            log.error("model %s: report entry %s unreadable in the files bucket: %s", model, report_id, exc)
            return
        if entry.id != report_id or entry.model != model:
            log.error(
                "model %s: report entry %s describes %s/%s: ignored", model, report_id, entry.model, entry.id
            )
            return
        self.learned += store.learn(entry)
