"""The model streams on a real 3-node cluster: publish and ack, de-duplication, windows of rows."""

from __future__ import annotations

import gzip
import json
from typing import Any

import numpy as np
import pytest

from monitor_service import bodies
from monitor_service.config import ClusterConfig, ModelConfig
from monitor_service.errors import BadRequest, PayloadTooLarge
from monitor_service.journal.jetstream import JetStreamCluster, StreamRecord
from monitor_service.journal.records import Record
from tests.cluster.conftest import run
from tests.cluster.replay import window_after
from tests.conftest import diamonds_model, rows_of
from tests.support.nats import NatsCluster

pytestmark = pytest.mark.integration

MODEL = "diamonds"
T0 = 1_700_000_000.0
ROWS = rows_of("production", 3000)


def rows_body(start: int, count: int, prefix: str = "r") -> bytes:
    rows = [
        {**row, "request_id": f"{prefix}-{start + i}"} for i, row in enumerate(ROWS[start : start + count])
    ]
    for row in rows:
        row.pop("price")  # the target arrives later, as labels
    return json.dumps({"rows": rows}).encode()


def labels_body(ids: list[str]) -> bytes:
    return json.dumps(
        {"labels": [{"id": row_id, "target": 100.0 + i} for i, row_id in enumerate(ids)]}
    ).encode()


def model_config(**window: Any) -> ModelConfig:
    return ModelConfig.model_validate(
        diamonds_model(window=window, labels={"pending_ttl": 30}, schedule={"every": "1h"})
    )


async def connected(config: ClusterConfig, max_rows: int, max_age: float | None = None) -> JetStreamCluster:
    journal = await JetStreamCluster.connect(config)
    await journal.ensure_model(MODEL, max_rows=max_rows, max_age=max_age)
    return journal


def test_publish_returns_the_sequence_once_replicated(config: ClusterConfig, cluster: NatsCluster) -> None:
    body = rows_body(0, 3)

    async def scenario() -> tuple[Any, list[StreamRecord], Any]:
        journal = await connected(config, 100)
        try:
            ack = await journal.publish(MODEL, "rows", body, msg_id="b-1", rows=3, arrived=T0)
            info = await journal.jetstream.stream_info(journal.names.window_stream(MODEL))
            return ack, await journal.read_window(MODEL, max_rows=100, now=T0), info
        finally:
            await journal.close()

    ack, records, info = run(scenario())
    assert (ack.seq, ack.duplicate) == (1, False)
    assert info.config.num_replicas == 3
    assert str(getattr(info.config.storage, "value", info.config.storage)) == "file"
    [record] = records
    assert (record.seq, record.kind, record.arrived, record.rows, record.msg_id) == (1, "rows", T0, 3, "b-1")
    assert record.body == body and record.body_format == 0
    replicas = cluster.stream_replicas(journal_stream(config))
    assert len(replicas) == 3


def test_labels_keep_their_body_format_and_old_ndjson_messages_still_read(config: ClusterConfig) -> None:
    """The format byte (bodies.py) travels with a body; a message written before it existed says
    NDJSON with `Dm-Ndjson: 1`, and reads back as format 1."""
    ids = ["r-0", "r-1"]
    ndjson = b"\n".join(json.dumps({"id": i, "target": 1.0}).encode() for i in ids)
    gzipped = gzip.compress(ndjson)

    async def scenario() -> list[StreamRecord]:
        journal = await connected(config, 100)
        try:
            await journal.publish(MODEL, "rows", rows_body(0, 2), msg_id="rows-1", rows=2, arrived=T0)
            fmt = bodies.NDJSON | bodies.GZIP
            await journal.publish(MODEL, "labels", gzipped, msg_id="l-1", rows=2, body_format=fmt, arrived=T0)
            legacy = {"Nats-Msg-Id": "labels:l-0", "Dm-Rows": "2", "Dm-Arrived": repr(T0), "Dm-Ndjson": "1"}
            subject = journal.names.subject(MODEL, "labels")
            await journal.publish_message(subject, ndjson, legacy, stream=journal.names.window_stream(MODEL))
            return await journal.read_window(MODEL, max_rows=100, now=T0, labels_lookback=60)
        finally:
            await journal.close()

    rows, compressed, legacy = run(scenario())
    assert rows.kind == "rows" and compressed.kind == legacy.kind == "labels"
    assert (compressed.body_format, legacy.body_format) == (bodies.NDJSON | bodies.GZIP, bodies.NDJSON)
    for record in (compressed, legacy):
        assert [item["id"] for item in bodies.labels_of(record.body, record.body_format)] == ids


def journal_stream(config: ClusterConfig) -> str:
    return f"{config.stream_prefix}_W_{MODEL}"


def test_retried_batch_is_stored_once(config: ClusterConfig) -> None:
    async def scenario() -> tuple[list[Any], list[StreamRecord]]:
        journal = await connected(config, 100)
        try:
            acks = [
                await journal.publish(MODEL, "rows", rows_body(0, 2), msg_id="same", rows=2, arrived=T0),
                await journal.publish(MODEL, "rows", rows_body(0, 2), msg_id="same", rows=2, arrived=T0 + 5),
                # the same id for labels is another batch: ids are per kind
                await journal.publish(
                    MODEL, "labels", labels_body(["r-0"]), msg_id="same", rows=1, arrived=T0
                ),
                await journal.publish(MODEL, "rows", rows_body(2, 2), msg_id="other", rows=2, arrived=T0 + 6),
            ]
            return acks, await journal.read_window(MODEL, max_rows=100, now=T0 + 10)
        finally:
            await journal.close()

    acks, records = run(scenario())
    assert [(a.seq, a.duplicate) for a in acks] == [(1, False), (1, True), (2, False), (3, False)]
    assert [(r.seq, r.kind, r.msg_id, r.arrived) for r in records] == [
        (1, "rows", "same", T0),  # the first copy's arrival time: the retry changed nothing
        (2, "labels", "same", T0),
        (3, "rows", "other", T0 + 6),
    ]
    assert journal_stats_duplicates(acks) == 1


def journal_stats_duplicates(acks: list[Any]) -> int:
    return sum(1 for ack in acks if ack.duplicate)


def test_window_keeps_rows_whatever_the_batch_sizes(config: ClusterConfig) -> None:
    """Batches of 1 to 1,000 rows, labels in between (some before their rows): the window read back
    holds at least max_rows rows in whole messages, and replaying it gives exactly the window a
    single node fed with everything holds."""
    sizes = [1, 7, 300, 2, 1000, 50, 1, 640, 3, 250]
    max_rows = 1000
    model = model_config(max_rows=max_rows)
    plan: list[tuple[str, bytes, int]] = []
    start = 0
    for number, size in enumerate(sizes):
        ids = [f"r-{i}" for i in range(start, start + size)]
        if number % 3 == 1:  # labels that come before their rows (joined from pending)
            plan.append(("labels", labels_body(ids[:2]), 2))
        plan.append(("rows", rows_body(start, size), size))
        plan.append(("labels", labels_body(ids[-3:]), min(3, size)))
        start += size
    local = [Record(kind, T0 + i, False, body) for i, (kind, body, _) in enumerate(plan)]  # type: ignore[arg-type]
    now = T0 + len(plan)

    async def scenario() -> list[StreamRecord]:
        journal = await connected(config, max_rows)
        try:
            for i, (kind, body, count) in enumerate(plan):
                await journal.publish(MODEL, kind, body, msg_id=f"m{i}", rows=count, arrived=T0 + i)  # type: ignore[arg-type]
            return await journal.read_window(MODEL, max_rows=max_rows, now=now, labels_lookback=30)
        finally:
            await journal.close()

    records = run(scenario())
    kept_rows = [r.rows for r in records if r.kind == "rows"]
    assert kept_rows == [1000, 50, 1, 640, 3, 250]  # the fewest newest messages holding >= 1000 rows
    assert sum(kept_rows) - kept_rows[0] < max_rows <= sum(kept_rows)
    assert [r.seq for r in records] == sorted(r.seq for r in records)
    assert_same_window(window_after(model, records, now), window_after(model, local, now))


def assert_same_window(got: Any, expected: Any) -> None:
    assert got.rows == expected.rows > 0
    np.testing.assert_array_equal(got.arrival, expected.arrival)
    assert sorted(got.columns) == sorted(expected.columns)
    for name, values in expected.columns.items():
        assert list(got.columns[name]) == pytest.approx(list(values), nan_ok=True), name


def test_window_is_cut_by_age(config: ClusterConfig) -> None:
    model = model_config(max_rows=10_000, max_age=100)
    arrivals = [T0, T0 + 50, T0 + 120, T0 + 160, T0 + 200]
    plan = [("rows", rows_body(i * 10, 10), 10, at) for i, at in enumerate(arrivals)]
    plan.insert(3, ("labels", labels_body(["r-20", "r-0"]), 2, T0 + 130))
    now = T0 + 230  # the cut is at T0 + 130: rows of T0 and T0 + 50 and T0 + 120 are out
    local = [Record(kind, at, False, body) for kind, body, _, at in plan]  # type: ignore[arg-type]

    async def scenario() -> tuple[list[StreamRecord], list[StreamRecord]]:
        journal = await connected(config, 10_000, max_age=1000)
        try:
            for i, (kind, body, count, at) in enumerate(plan):
                await journal.publish(MODEL, kind, body, msg_id=f"a{i}", rows=count, arrived=at)  # type: ignore[arg-type]
            early = await journal.read_window(MODEL, max_rows=10_000, max_age=100, now=T0 + 100)
            late = await journal.read_window(MODEL, max_rows=10_000, max_age=100, now=now, labels_lookback=30)
            return early, late
        finally:
            await journal.close()

    early, late = run(scenario())
    assert [r.arrived for r in early if r.kind == "rows"] == arrivals  # T0 + 0 is exactly at the cut: kept
    assert [(r.kind, r.arrived) for r in late] == [
        ("labels", T0 + 130),
        ("rows", T0 + 160),
        ("rows", T0 + 200),
    ]
    assert_same_window(window_after(model, late, now), window_after(model, local, now))


def test_reads_are_incremental(config: ClusterConfig) -> None:
    async def scenario() -> list[tuple[int, int, int]]:
        journal = await connected(config, 500)
        seen = []
        try:
            for round_number in range(3):
                for i in range(4):
                    number = round_number * 4 + i
                    await journal.publish(
                        MODEL, "rows", rows_body(number * 100, 100), msg_id=f"i{number}", rows=100, arrived=T0
                    )
                before = journal.stats.messages_fetched
                records = await journal.read_window(MODEL, max_rows=500, now=T0)
                seen.append(
                    (journal.stats.messages_fetched - before, len(records), journal.cached_messages(MODEL))
                )
            before = journal.stats.messages_fetched
            await journal.read_window(MODEL, max_rows=500, now=T0)
            seen.append((journal.stats.messages_fetched - before, 0, journal.cached_messages(MODEL)))
        finally:
            await journal.close()
        return seen

    # each read fetches the 4 new messages only; the cache keeps the 5 newest (500 rows)
    assert run(scenario()) == [(4, 4, 4), (4, 5, 5), (4, 5, 5), (0, 0, 5)]


def test_labels_never_push_rows_out(config: ClusterConfig) -> None:
    async def scenario() -> tuple[dict[str, int], list[StreamRecord]]:
        journal = await connected(config, 5)  # max_msgs_per_subject = 5
        try:
            for i in range(3):
                await journal.publish(MODEL, "rows", rows_body(i, 1), msg_id=f"r{i}", rows=1, arrived=T0)
            for i in range(20):
                await journal.publish(
                    MODEL, "labels", labels_body([f"r-{i}"]), msg_id=f"l{i}", rows=1, arrived=T0
                )
            stream = journal.names.window_stream(MODEL)
            info = await journal.jetstream.stream_info(stream, subjects_filter=">")
            records = await journal.read_window(MODEL, max_rows=5, now=T0, labels_lookback=60)
            return dict(info.state.subjects or {}), records
        finally:
            await journal.close()

    subjects, records = run(scenario())
    prefix = f"{config.stream_prefix}.w.{MODEL}"
    assert subjects == {f"{prefix}.rows": 3, f"{prefix}.labels": 5}
    assert [r.msg_id for r in records if r.kind == "rows"] == ["r0", "r1", "r2"]


def test_trim_shrinks_the_stream_to_the_window(config: ClusterConfig) -> None:
    async def scenario() -> tuple[int, int, list[StreamRecord], list[StreamRecord]]:
        journal = await connected(config, 250)
        try:
            for i in range(10):
                await journal.publish(
                    MODEL, "rows", rows_body(i * 100, 100), msg_id=f"t{i}", rows=100, arrived=T0 + 100 * i
                )
                await journal.publish(
                    MODEL,
                    "labels",
                    labels_body([f"r-{i * 100}"]),
                    msg_id=f"t{i}",
                    rows=1,
                    arrived=T0 + 100 * i + 50,
                )
            window = await journal.read_window(MODEL, max_rows=250, now=T0 + 1000, labels_lookback=1)
            purged = await journal.trim(MODEL)
            info = await journal.jetstream.stream_info(journal.names.window_stream(MODEL))
        finally:
            await journal.close()
        fresh = await connected(config, 250)  # a monitor that never read: sees the same window
        try:
            again = await fresh.read_window(MODEL, max_rows=250, now=T0 + 1000, labels_lookback=1)
        finally:
            await fresh.close()
        return purged, info.state.messages, window, again

    purged, left, window, again = run(scenario())
    assert [r.msg_id for r in window if r.kind == "rows"] == ["t7", "t8", "t9"]
    # labels: from the first kept row (T0 + 700) on, and those at most 1 s + the 60 s margin
    # older (t6 at T0 + 650)
    assert [r.msg_id for r in window if r.kind == "labels"] == ["t6", "t7", "t8", "t9"]
    assert (purged, left) == (13, 7)
    assert [(r.seq, r.body) for r in again] == [(r.seq, r.body) for r in window]


def test_trim_keeps_everything_when_the_window_starts_at_the_first_message(config: ClusterConfig) -> None:
    """The server reads a purge `seq` of 0 or 1 as "no limit": a window from sequence 1 must not
    become a request to purge the whole subject."""

    async def scenario() -> tuple[int, int, list[int]]:
        journal = await connected(config, 1000)
        try:
            for i in range(4):
                await journal.publish(
                    MODEL, "rows", rows_body(i * 5, 5), msg_id=f"k{i}", rows=5, arrived=T0 + i
                )
            await journal.publish(MODEL, "labels", labels_body(["r-0"]), msg_id="k", rows=1, arrived=T0 + 5)
            read = await journal.read_since(MODEL, 0, max_rows=1000, now=T0 + 10, labels_lookback=60)
            purged = await journal.trim(MODEL)
            info = await journal.jetstream.stream_info(journal.names.window_stream(MODEL))
        finally:
            await journal.close()
        return purged, info.state.messages, [r.seq for r in read.records]

    purged, left, seqs = run(scenario())
    assert seqs == [1, 2, 3, 4, 5]
    assert (purged, left) == (0, 5)


def test_read_since_goes_on_from_a_sequence_and_resets_over_a_hole(config: ClusterConfig) -> None:
    """A reader gets every record after the sequence it gives; when records after it are gone (a
    trim by a monitor further ahead), it gets a reset: the window the stream still holds."""

    async def scenario() -> list[tuple[bool, list[int], int]]:
        reader, trimmer = await connected(config, 10), await connected(config, 10)
        seen = []
        try:
            for i in range(3):
                await reader.publish(
                    MODEL, "rows", rows_body(i * 5, 5), msg_id=f"h{i}", rows=5, arrived=T0 + i
                )
            first = await reader.read_since(MODEL, 0, max_rows=10, now=T0 + 5)
            seen.append((first.reset, [r.seq for r in first.records], first.last_seq))
            await reader.publish(MODEL, "rows", rows_body(15, 5), msg_id="h3", rows=5, arrived=T0 + 6)
            more = await reader.read_since(MODEL, first.last_seq, max_rows=10, now=T0 + 7)
            seen.append((more.reset, [r.seq for r in more.records], more.last_seq))
            for i in range(4, 8):  # the trimmer reads these and trims the stream to its window
                await reader.publish(
                    MODEL, "rows", rows_body(i * 5, 5), msg_id=f"h{i}", rows=5, arrived=T0 + i + 4
                )
            await trimmer.read_since(MODEL, 0, max_rows=10, now=T0 + 12)
            await trimmer.trim(MODEL)
            late = await reader.read_since(MODEL, more.last_seq, max_rows=10, now=T0 + 13)
            seen.append((late.reset, [r.seq for r in late.records], late.last_seq))
        finally:
            await reader.close()
            await trimmer.close()
        return seen

    first, more, late = run(scenario())
    assert first == (True, [2, 3], 3)  # the first read rebuilds: the newest messages holding 10 rows
    assert more == (False, [4], 4)
    assert late == (True, [7, 8], 8)  # 5 and 6 were trimmed: a reset with the window


def test_a_reader_that_saw_only_the_end_of_the_window_never_trims(config: ClusterConfig) -> None:
    """A reader going on from a sequence (its earlier reads lost, e.g. a full read that failed
    midway) knows only the end of the window: trimming on that would purge rows still needed."""

    async def scenario() -> tuple[list[int], int, int]:
        journal = await connected(config, 1000)
        try:
            for i in range(5):
                await journal.publish(
                    MODEL, "rows", rows_body(i * 5, 5), msg_id=f"e{i}", rows=5, arrived=T0 + i
                )
            read = await journal.read_since(MODEL, 3, max_rows=1000, now=T0 + 10)
            purged = await journal.trim(MODEL)
            info = await journal.jetstream.stream_info(journal.names.window_stream(MODEL))
        finally:
            await journal.close()
        return [r.seq for r in read.records], purged, info.state.messages

    seqs, purged, left = run(scenario())
    assert seqs == [4, 5]
    assert (purged, left) == (0, 5)


def test_body_over_the_servers_max_payload_is_refused(config: ClusterConfig) -> None:
    async def scenario() -> int:
        journal = await connected(config, 10)
        try:
            with pytest.raises(PayloadTooLarge, match="max_payload"):
                await journal.publish(MODEL, "rows", b"x" * journal.max_payload, msg_id="big", rows=1)
            return journal.max_payload
        finally:
            await journal.close()

    assert run(scenario()) == 8 * 1024 * 1024  # what the test servers allow


def test_a_recreated_stream_is_read_from_scratch(config: ClusterConfig) -> None:
    async def scenario() -> tuple[list[StreamRecord], list[StreamRecord]]:
        journal = await connected(config, 100)
        try:
            for i in range(3):
                await journal.publish(MODEL, "rows", rows_body(i, 1), msg_id=f"old{i}", rows=1, arrived=T0)
            before = await journal.read_window(MODEL, max_rows=100, now=T0)
            await journal.jetstream.delete_stream(journal.names.window_stream(MODEL))
            await journal.ensure_model(MODEL, max_rows=100, max_age=None)
            await journal.publish(MODEL, "rows", rows_body(9, 1), msg_id="new", rows=1, arrived=T0)
            return before, await journal.read_window(MODEL, max_rows=100, now=T0)
        finally:
            await journal.close()

    before, after = run(scenario())
    assert [r.msg_id for r in before] == ["old0", "old1", "old2"]
    assert [(r.seq, r.msg_id) for r in after] == [(1, "new")]


def test_model_names_with_dots_get_their_own_stream(config: ClusterConfig) -> None:
    async def scenario() -> tuple[list[StreamRecord], list[StreamRecord]]:
        journal = await JetStreamCluster.connect(config)
        try:
            for name in ("a.b", "a"):
                await journal.ensure_model(name, max_rows=10, max_age=None)
                await journal.publish(name, "rows", rows_body(0, 1, name), msg_id="x", rows=1, arrived=T0)
            return (
                await journal.read_window("a.b", max_rows=10, now=T0),
                await journal.read_window("a", max_rows=10, now=T0),
            )
        finally:
            await journal.close()

    dotted, plain = run(scenario())
    assert b'"a.b-0"' in dotted[0].body and len(dotted) == 1
    assert b'"a-0"' in plain[0].body and len(plain) == 1


def test_a_changed_window_updates_the_stream(config: ClusterConfig) -> None:
    async def scenario() -> list[tuple[int, float]]:
        journal = await connected(config, 10)
        try:
            stream = journal.names.window_stream(MODEL)
            seen = []
            for max_rows, max_age in ((10, None), (20, 3600.0)):
                await journal.ensure_model(MODEL, max_rows=max_rows, max_age=max_age)
                info = await journal.jetstream.stream_info(stream)
                seen.append((info.config.max_msgs_per_subject, info.config.max_age or 0.0))
            return seen
        finally:
            await journal.close()

    assert run(scenario()) == [(10, 0.0), (20, 3600.0)]


@pytest.mark.parametrize("msg_id", ["", "has space", "line\r\nNats-Msg-Id: x", "x" * 201, "é"])
def test_batch_ids_that_would_break_the_protocol_are_refused(config: ClusterConfig, msg_id: str) -> None:
    async def scenario() -> int:
        journal = await connected(config, 10)
        try:
            with pytest.raises(BadRequest, match="Idempotency-Key"):
                await journal.publish(MODEL, "rows", rows_body(0, 1), msg_id=msg_id, rows=1)
            info = await journal.jetstream.stream_info(journal.names.window_stream(MODEL))
            return int(info.state.messages)
        finally:
            await journal.close()

    assert run(scenario()) == 0
