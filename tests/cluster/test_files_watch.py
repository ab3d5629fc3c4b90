"""FilesWatch's bookkeeping when a watch fails midway (the cluster test of the real bucket is in
test_cluster_reports.py): a stand-in JetStream that answers, then fails, then answers again."""

from __future__ import annotations

import asyncio
import json
import types
from typing import Any

import nats.errors
import pytest

from monitor_service.journal.jetstream_objects import FilesWatch


class _Message:
    def __init__(self, name: str, seq: int, pending: int) -> None:
        self.data = json.dumps({"name": name, "bucket": "B", "nuid": "n"}).encode()
        self.metadata = types.SimpleNamespace(sequence=types.SimpleNamespace(stream=seq), num_pending=pending)


class _Subscription:
    async def unsubscribe(self) -> None:
        return None


class _JetStream:
    """Delivers the current objects to each new subscription, as LAST_PER_SUBJECT does."""

    def __init__(self, objects: dict[str, int]) -> None:
        self.objects = objects
        self.failing = False

    async def get_last_msg(self, _stream: str, _subject: str) -> Any:
        if self.failing:
            raise nats.errors.NoRespondersError
        return types.SimpleNamespace(seq=max(self.objects.values(), default=0))

    async def subscribe(self, _subject: str, cb: Any, **_options: Any) -> _Subscription:
        ordered = sorted(self.objects.items(), key=lambda item: item[1])
        for index, (name, seq) in enumerate(ordered):
            await cb(_Message(name, seq, len(ordered) - 1 - index))
        return _Subscription()


def test_a_watch_that_fails_midway_still_reports_what_went_meanwhile() -> None:
    js = _JetStream({"report/m/a.json": 1, "report/m/b.json": 2})
    files = types.SimpleNamespace(bucket="B", stream="OBJ_B", _js=js)
    told: list[tuple[str, bool]] = []

    async def scenario() -> list[str]:
        watch = FilesWatch(files, lambda name, info: told.append((name, info is not None)), 60.0)  # type: ignore[arg-type]
        await watch._watch()
        js.failing = True  # the cluster is away: the next watch fails before loading anything
        with pytest.raises(nats.errors.Error):
            await watch._watch()
        assert watch.names() == ["report/m/a.json", "report/m/b.json"]  # still what it knew
        del js.objects["report/m/a.json"]  # deleted meanwhile, its marker purged
        js.failing = False
        told.clear()
        await watch._watch()
        return watch.names()

    assert asyncio.run(scenario()) == ["report/m/b.json"]
    assert ("report/m/a.json", False) in told
