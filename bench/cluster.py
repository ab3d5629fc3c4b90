"""Cluster mode, stream part: what storing batches in NATS JetStream costs next to the local log.

A real 3-node `nats-server` cluster (Debian's package, authentication on, every node on this
machine, tests/support/nats.py) and the local durable log run side by side, interleaved round by
round, on the same 1,000-row bodies the ingest benchmark posts (the 20-column model of common.py,
`{"rows": [...]}` JSON with full float precision, about 0.5 KB a row):

  publish     JetStreamCluster.publish of --batches bodies to an R3 file stream, --in-flight
              publishes waiting for their ack at once (each returns only after the replicated ack)
  local       journal.local.LocalJournal.write of the same bodies, fsync every 200 ms (`fsync: interval`,
              the default) and, as a second line, fsync before each append returns (`fsync: batch`)

It prints rows/s and the p50/p99 of one publish (ack latency) or one append, per round and as the
median over rounds, and the ratio publish/local within each round.

Then the read side: --window-rows rows (1,000-row messages) in a model's stream, read back

  ordered     read_window through a fresh connection (no cache): one ordered consumer
  by message  the same messages one direct get at a time (what a client without a consumer does)
  increment   read_window on a warm cache after one more batch (what each calculation pays)

and the stream's bytes per row (sizing: x replicas on disk). The servers, the client and the
local log share this machine's cores: the numbers are a ratio on one machine, not a capacity.

    python bench/cluster.py [--rounds 3] [--batches 300] [--in-flight 16] [--window-rows 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import frame, records  # noqa: E402

from monitor_service.config import ClusterConfig  # noqa: E402
from monitor_service.journal.jetstream import JetStreamCluster  # noqa: E402
from monitor_service.journal.local import LocalJournal  # noqa: E402
from monitor_service.journal.records import Record  # noqa: E402
from tests.support.nats import CLIENT_USER, NatsCluster, nats_server_binary  # noqa: E402

BATCH = 1000
MODEL = "bench"


@dataclass
class Phase:
    rows_per_second: float
    p50_ms: float
    p99_ms: float


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def phase(rows: int, elapsed: float, latencies: list[float]) -> Phase:
    return Phase(rows / elapsed, percentile(latencies, 0.5) * 1e3, percentile(latencies, 0.99) * 1e3)


async def publish_phase(
    journal: JetStreamCluster, bodies: list[bytes], batches: int, in_flight: int, tag: str
) -> Phase:
    latencies: list[float] = []
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < batches:
            index = next_index
            next_index += 1
            started = time.perf_counter()
            await journal.publish(
                MODEL, "rows", bodies[index % len(bodies)], msg_id=f"{tag}-{index}", rows=BATCH
            )
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    elapsed = time.perf_counter() - started
    await journal.jetstream.purge_stream(journal.names.window_stream(MODEL))  # keep the disk small
    return phase(batches * BATCH, elapsed, latencies)


def local_phase(directory: Path, bodies: list[bytes], batches: int, fsync_each: bool) -> Phase:
    shutil.rmtree(directory, ignore_errors=True)
    model_log = LocalJournal(directory, fsync_every_record=fsync_each, compact_bytes=1 << 40)
    model_log.recover()
    model_log.open_new_segment()
    latencies = []
    last_sync = started = time.perf_counter()
    for index in range(batches):
        began = time.perf_counter()
        model_log.write(Record("rows", time.time(), False, bodies[index % len(bodies)]))
        latencies.append(time.perf_counter() - began)
        if not fsync_each and began - last_sync >= 0.2:  # the server's maintenance loop does this
            model_log.sync()
            last_sync = began
    model_log.sync()
    elapsed = time.perf_counter() - started
    model_log.close()
    shutil.rmtree(directory, ignore_errors=True)
    return phase(batches * BATCH, elapsed, latencies)


def row(name: str, p: Phase) -> str:
    return (
        f"  {name:<22} {p.rows_per_second:>12,.0f} rows/s   p50 {p.p50_ms:8.2f} ms   p99 {p.p99_ms:8.2f} ms"
    )


def median_phase(phases: list[Phase]) -> Phase:
    return Phase(
        statistics.median(p.rows_per_second for p in phases),
        statistics.median(p.p50_ms for p in phases),
        statistics.median(p.p99_ms for p in phases),
    )


async def ingest(config: ClusterConfig, bodies: list[bytes], args: argparse.Namespace, work: Path) -> None:
    print(
        f"\n== publish: {args.batches} batches of {BATCH} rows per phase, "
        f"{len(bodies[0]) / 1e3:.0f} KB each, {args.in_flight} publishes in flight =="
    )
    journal = await JetStreamCluster.connect(config)
    await journal.ensure_model(MODEL, max_rows=10_000_000, max_age=None)
    await publish_phase(journal, bodies, 50, args.in_flight, "warmup")
    results: dict[str, list[Phase]] = {"publish R3": [], "local fsync 200ms": [], "local fsync each": []}
    ratios: dict[str, list[float]] = {"publish / local 200ms": [], "publish / local each": []}
    try:
        for number in range(args.rounds):
            cluster_run = await publish_phase(journal, bodies, args.batches, args.in_flight, f"r{number}")
            interval = local_phase(work / "log", bodies, args.batches, fsync_each=False)
            each = local_phase(work / "log", bodies, args.batches, fsync_each=True)
            for name, result in zip(results, (cluster_run, interval, each), strict=True):
                results[name].append(result)
            ratios["publish / local 200ms"].append(cluster_run.rows_per_second / interval.rows_per_second)
            ratios["publish / local each"].append(cluster_run.rows_per_second / each.rows_per_second)
            print(f"round {number + 1}")
            for name, result in zip(results, (cluster_run, interval, each), strict=True):
                print(row(name, result))
    finally:
        await journal.close()
    print("median over rounds")
    for name, phases in results.items():
        print(row(name, median_phase(phases)))
    for name, values in ratios.items():
        per_round = ", ".join(f"{v:.3f}" for v in values)
        print(f"  {name:<22} {statistics.median(values):.3f} (per round: {per_round})")


async def read_back(config: ClusterConfig, bodies: list[bytes], args: argparse.Namespace) -> None:
    messages = args.window_rows // BATCH
    print(f"\n== reading a {args.window_rows:,}-row window ({messages} messages of {BATCH} rows) ==")
    writer = await JetStreamCluster.connect(config)
    model = "window"
    await writer.ensure_model(model, max_rows=args.window_rows, max_age=None)
    for index in range(messages):
        await writer.publish(model, "rows", bodies[index % len(bodies)], msg_id=f"w{index}", rows=BATCH)
    stream = writer.names.window_stream(model)
    info = await writer.jetstream.stream_info(stream)
    print(
        f"stream {stream}: {info.state.messages} messages, {info.state.bytes / 1e6:.1f} MB "
        f"({info.state.bytes / args.window_rows:.0f} bytes per row, x {config.replicas} replicas on disk)"
    )
    warm = await JetStreamCluster.connect(config)
    await warm.ensure_model(model, max_rows=args.window_rows, max_age=None)
    await warm.read_window(model, max_rows=args.window_rows)
    timings: dict[str, list[float]] = {"ordered consumer": [], "message by message": [], "increment": []}
    try:
        for number in range(args.rounds):
            fresh = await JetStreamCluster.connect(config)
            await fresh.ensure_model(model, max_rows=args.window_rows, max_age=None)
            started = time.perf_counter()
            window = await fresh.read_window(model, max_rows=args.window_rows)
            timings["ordered consumer"].append(time.perf_counter() - started)
            await fresh.close()
            assert sum(r.rows for r in window) >= args.window_rows

            first, last = info.state.first_seq, info.state.last_seq
            started = time.perf_counter()
            fetched = 0
            for seq in range(first, last + 1):
                msg = await writer.jetstream.get_msg(stream, seq=seq, direct=True)
                fetched += len(msg.data or b"")
            timings["message by message"].append(time.perf_counter() - started)
            assert fetched > 0

            await writer.publish(model, "rows", bodies[number], msg_id=f"inc{number}", rows=BATCH)
            started = time.perf_counter()
            await warm.read_window(model, max_rows=args.window_rows)
            timings["increment"].append(time.perf_counter() - started)
            info = await writer.jetstream.stream_info(stream)
            print(f"round {number + 1}: " + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in timings.items()))
    finally:
        await warm.close()
        await writer.close()
    medians = {name: statistics.median(values) for name, values in timings.items()}
    print("median over rounds: " + ", ".join(f"{k} {v:.3f} s" for k, v in medians.items()))
    ordered, by_message = medians["ordered consumer"], medians["message by message"]
    print(
        f"  message by message / ordered consumer: {by_message / ordered:.2f}; "
        f"ordered consumer: {args.window_rows / ordered:,.0f} rows/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--window-rows", type=int, default=100_000)
    args = parser.parse_args()
    pool = records(frame(100 * BATCH, seed=7, shifted=True))
    bodies = [orjson.dumps({"rows": pool[i * BATCH : (i + 1) * BATCH]}) for i in range(100)]
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        work = Path(tmp)
        cluster = NatsCluster.create(work / "nats")
        cluster.start()
        try:
            config = ClusterConfig(
                servers=cluster.urls,
                user=CLIENT_USER,
                password=cluster.password,  # type: ignore[arg-type]
                stream_prefix="BENCH",
                replicas=3,
                publish_timeout=30.0,
            )
            version = subprocess.run([nats_server_binary(), "--version"], capture_output=True, text=True)
            print(f"{version.stdout.strip()}: 3 nodes on 127.0.0.1, R3 file streams, store under {work}")
            asyncio.run(ingest(config, bodies, args, work))
            asyncio.run(read_back(config, bodies, args))
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
