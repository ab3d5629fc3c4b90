"""Cluster mode against one node on the same machine: what storing batches in NATS JetStream costs.

A real 3-node `nats-server` cluster (Debian's package, authentication on, every node on this machine,
tests/support/nats.py), R3 file streams, and the 20-column model of common.py (15 numerical, 5
categorical; 1,000-row bodies of `{"rows": [...]}` JSON with full float precision, about 0.5 KB a
row). Four parts, each interleaved round by round, each printing its rounds, medians and ratios:

  encoding    what a 1,000-row batch costs as the body received (JSON) and as the validated batch
              in Arrow (what cluster mode publishes): bytes, the accepting monitor's encoding time,
              the replaying monitor's time to turn it back into columns (JSON: parse + validate;
              Arrow: decode), and publish rows/s and ack p50/p99 of each through R3 with 16 in flight
  ingest      HTTP end to end, `wrk` posting 1,000-row JSON bodies: one durable single-node monitor
              (`storage.data_dir`, fsync interval, the default) with --connections, against a cluster
              of 3 NATS nodes and 2 monitors, half the connections to each (the 202 waits for the
              replicated ack); rows/s, p50/p99 per request, ratio cluster / single node
  window      reading a --window-rows window from the stream into a fresh monitor's window
              (ModelState.catch_up: fetch, decode, append), then one more batch (what each
              calculation pays on a warm member)
  calculate   --models models, each with a 20,000-row window and `schedule.every: 1s` (more work than
              one member does), calculations per second with 1 member, then 2 (process executor)
  reports     the report of a --window-rows calculation (Evidently's snapshot) stored and read back
              through ReportStore: on this machine's disk (one node) against the cluster's files
              bucket (R3), and how long until another member's listing shows it (its bucket watch)

The servers, the monitors, the load generator and this script share the machine's cores: the
numbers are ratios on one machine, not capacities. The load average is printed with each part.

    python bench/cluster.py [--rounds 3] [--duration 5] [--connections 8] [--window-rows 100000]
                            [--models 6] [--calc-seconds 20]
                            [--parts encoding,ingest,window,calculate,reports]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import MODEL, frame, model_config, records  # noqa: E402
from wrkload import WrkResult, finish_wrk, start_wrk  # noqa: E402

from monitor_service import engine  # noqa: E402
from monitor_service.cluster.reports import ReportMirror, SharedReportBackend  # noqa: E402
from monitor_service.config import ClusterConfig, ModelConfig, ReportsConfig, load_config  # noqa: E402
from monitor_service.engine.snapshot import build_snapshot  # noqa: E402
from monitor_service.journal.columnar import decode_batch, encode_batch  # noqa: E402
from monitor_service.journal.jetstream import JetStreamCluster  # noqa: E402
from monitor_service.journal.jetstream_journal import H_FORMAT, JetStreamConnection  # noqa: E402
from monitor_service.journal.jetstream_objects import SharedFiles  # noqa: E402
from monitor_service.payload import parse_items  # noqa: E402
from monitor_service.reference import load_reference  # noqa: E402
from monitor_service.reports import ReportStore  # noqa: E402
from monitor_service.schema import RowSchema, validate_rows  # noqa: E402
from monitor_service.service import MonitorService  # noqa: E402
from monitor_service.window import SlidingWindow  # noqa: E402
from tests.support.nats import CLIENT_USER, NatsCluster, nats_server_binary  # noqa: E402
from tests.support.processes import RunningProcess, free_port, start_monitor  # noqa: E402

BATCH = 1000


@dataclass
class Phase:
    rows_per_second: float
    p50_ms: float
    p99_ms: float


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def machine_busy_seconds() -> float:
    """CPU seconds every process of the machine has used so far (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def median_phase(phases: list[Phase]) -> Phase:
    return Phase(
        statistics.median(p.rows_per_second for p in phases),
        statistics.median(p.p50_ms for p in phases),
        statistics.median(p.p99_ms for p in phases),
    )


def row(name: str, p: Phase) -> str:
    return (
        f"  {name:<26} {p.rows_per_second:>10,.0f} rows/s   p50 {p.p50_ms:8.2f} ms   p99 {p.p99_ms:8.2f} ms"
    )


def listed(values: list[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in values)


def best(fn: Callable[[], Any], repeat: int = 20) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


# ----------------------------------------------------------------------------- encoding


async def publish_phase(
    journal: JetStreamCluster,
    model: str,
    bodies: list[bytes],
    arrow: bool,
    batches: int,
    in_flight: int,
    tag: str,
) -> Phase:
    latencies: list[float] = []
    next_index = 0
    headers = {H_FORMAT: "arrow"} if arrow else None

    async def worker() -> None:
        nonlocal next_index
        while next_index < batches:
            index = next_index
            next_index += 1
            started = time.perf_counter()
            await journal.publish(
                model,
                "rows",
                bodies[index % len(bodies)],
                msg_id=f"{tag}-{index}",
                rows=BATCH,
                headers=headers,
            )
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    elapsed = time.perf_counter() - started
    await journal.jetstream.purge_stream(journal.names.window_stream(model))
    return Phase(
        batches * BATCH / elapsed, percentile(latencies, 0.5) * 1e3, percentile(latencies, 0.99) * 1e3
    )


async def encoding(config: ClusterConfig, reference: Path, args: argparse.Namespace) -> None:
    print(f"\n== encoding: 1,000-row batches, JSON body vs validated Arrow batch (load {load_average()}) ==")
    monitor = load_config(write_monitor_config(reference.parent / "enc.yaml", reference, 100_000))
    schema = RowSchema.from_model(monitor.models[0])
    pool = records(frame(20 * BATCH, seed=7, shifted=True))
    json_bodies = [orjson.dumps({"rows": pool[i * BATCH : (i + 1) * BATCH]}) for i in range(20)]
    batches = [validate_rows(parse_items(body, False, "rows"), schema, time.time()) for body in json_bodies]
    arrow_bodies = [encode_batch(batch) for batch in batches]
    body, batch, arrow = json_bodies[0], batches[0], arrow_bodies[0]
    print(
        f"  bytes per row: JSON {len(body) / BATCH:.0f}, Arrow {len(arrow) / BATCH:.0f} "
        f"({len(arrow) / len(body):.2f} x)"
    )
    encode = best(lambda: encode_batch(batch))
    replay_json = best(lambda: validate_rows(parse_items(body, False, "rows"), schema, time.time()))
    replay_arrow = best(lambda: decode_batch(arrow, schema))
    print(f"  accepting monitor: Arrow encoding {encode * 1e3:.2f} ms per batch (on top of parse + validate)")
    print(
        f"  replaying monitor: JSON parse + validate {replay_json * 1e3:.2f} ms, Arrow decode "
        f"{replay_arrow * 1e3:.2f} ms per batch ({replay_json / replay_arrow:.1f} x faster)"
    )
    journal = await JetStreamCluster.connect(config)
    await journal.ensure_model("enc", max_rows=10_000_000, max_age=None)
    await publish_phase(journal, "enc", arrow_bodies, True, 50, args.in_flight, "warm")
    results: dict[str, list[Phase]] = {"publish JSON body": [], "publish Arrow batch": []}
    try:
        for number in range(args.rounds):
            for name, bodies, arrow_flag in (
                ("publish JSON body", json_bodies, False),
                ("publish Arrow batch", arrow_bodies, True),
            ):
                results[name].append(
                    await publish_phase(
                        journal, "enc", bodies, arrow_flag, args.batches, args.in_flight, f"{name[8]}{number}"
                    )
                )
            print(
                f"round {number + 1}: "
                + ", ".join(f"{k} {v[-1].rows_per_second:,.0f} rows/s" for k, v in results.items())
            )
    finally:
        await journal.close()
    print("median over rounds")
    for name, phases in results.items():
        print(row(name, median_phase(phases)))
    ratios = [
        a.rows_per_second / j.rows_per_second
        for a, j in zip(results["publish Arrow batch"], results["publish JSON body"], strict=True)
    ]
    print(f"  Arrow / JSON rows/s: {statistics.median(ratios):.2f} (per round: {listed(ratios)})")


# ----------------------------------------------------------------------------- monitors


def write_monitor_config(
    path: Path,
    reference: Path,
    window_rows: int,
    *,
    cluster: dict[str, Any] | None = None,
    storage: dict[str, Any] | None = None,
    executor: str = "thread",
    models: list[dict[str, Any]] | None = None,
) -> Path:
    raw: dict[str, Any] = {
        "server": {"executor": executor, "max_rows_per_request": 10_000},
        "models": models or [model_config(reference, window_rows)],
    }
    if cluster is not None:
        raw["cluster"] = cluster
    if storage is not None:
        raw["storage"] = storage
    path.write_text(yaml.safe_dump(raw))
    return path


def cluster_section(cluster: NatsCluster, prefix: str, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "servers": cluster.urls,
        "user": CLIENT_USER,
        "stream_prefix": prefix,
        "replicas": 3,
        "publish_timeout": 30.0,
        "duplicate_window": 120.0,
        "name": name,
        **extra,
    }


def monitor_env(cluster: NatsCluster) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "DRIFT_MONITOR_NATS_PASSWORD": cluster.password}


def start(config: Path, log: Path, env: dict[str, str]) -> RunningProcess:
    return start_monitor(config, free_port(), log, env=env, timeout=180)


def wrk_phase(
    targets: list[str], bodies: list[bytes], connections: int, duration: float, work: Path
) -> tuple[Phase, list[WrkResult]]:
    """wrk against each target at once (connections split evenly): rows/s summed, p50/p99 the worst."""
    per = max(1, connections // len(targets))
    runs = [
        start_wrk(
            f"{target}/v1/models/{MODEL}/rows",
            bodies,
            {"Content-Type": "application/json"},
            duration=duration,
            connections=per,
            workdir=work,
        )
        for target in targets
    ]
    results = [finish_wrk(run) for run in runs]
    rows = sum(r.good_per_s for r in results) * BATCH
    return Phase(rows, max(r.p50_ms for r in results), max(r.p99_ms for r in results)), results


def ingest(nats: NatsCluster, reference: Path, args: argparse.Namespace, work: Path) -> None:
    print(
        f"\n== ingest end to end: wrk, {args.connections} connections, 1,000-row JSON bodies, "
        f"{args.duration:g} s per phase (load {load_average()}) =="
    )
    pool = records(frame(20 * BATCH, seed=11, shifted=True))
    bodies = [orjson.dumps({"rows": pool[i * BATCH : (i + 1) * BATCH]}) for i in range(20)]
    env = monitor_env(nats)
    storage = {"data_dir": str(work / "single-data"), "fsync": "interval"}
    single = start(
        write_monitor_config(work / "single.yaml", reference, 100_000, storage=storage),
        work / "single.log",
        env,
    )
    prefix = "BI"
    members = [
        start(
            write_monitor_config(
                work / f"m{n}.yaml", reference, 100_000, cluster=cluster_section(nats, prefix, f"m{n}")
            ),
            work / f"m{n}.log",
            env,
        )
        for n in range(2)
    ]
    config = ClusterConfig.model_validate(
        {**cluster_section(nats, prefix, "bench"), "password": nats.password}
    )
    results: dict[str, list[Phase]] = {"single node (durable)": [], "cluster: 3 NATS + 2 monitors": []}
    ratios = []
    try:
        wrk_phase([single.base_url], bodies, args.connections, 1, work)  # warm up
        wrk_phase([m.base_url for m in members], bodies, args.connections, 1, work)
        for number in range(args.rounds):
            local, _ = wrk_phase([single.base_url], bodies, args.connections, args.duration, work)
            clustered, raw = wrk_phase(
                [m.base_url for m in members], bodies, args.connections, args.duration, work
            )
            errors = sum(r.non_2xx + r.socket_errors for r in raw)
            asyncio.run(purge(config, MODEL))
            results["single node (durable)"].append(local)
            results["cluster: 3 NATS + 2 monitors"].append(clustered)
            ratios.append(clustered.rows_per_second / local.rows_per_second)
            print(f"round {number + 1} (load {load_average()}; cluster errors {errors})")
            print(row("single node (durable)", local))
            print(row("cluster: 3 NATS + 2 monitors", clustered))
    finally:
        for process in (single, *members):
            process.stop()
    print("median over rounds")
    for name, phases in results.items():
        print(row(name, median_phase(phases)))
    print(f"  cluster / single node rows/s: {statistics.median(ratios):.2f} (per round: {listed(ratios)})")


async def purge(config: ClusterConfig, model: str) -> None:
    journal = await JetStreamCluster.connect(config)
    try:
        await journal.jetstream.purge_stream(journal.names.window_stream(model))
    finally:
        await journal.close()


# ----------------------------------------------------------------------------- window


async def window(nats: NatsCluster, reference: Path, args: argparse.Namespace, work: Path) -> None:
    messages = args.window_rows // BATCH
    print(
        f"\n== a {args.window_rows:,}-row window ({messages} Arrow batches) into a fresh monitor "
        f"(load {load_average()}) =="
    )
    section = {**cluster_section(nats, "BW", "bench"), "password": nats.password}
    path = write_monitor_config(work / "window.yaml", reference, args.window_rows, cluster=section)
    monitor_config = load_config(path)
    assert monitor_config.cluster is not None
    pool = records(frame(20 * BATCH, seed=5))
    schema = RowSchema.from_model(monitor_config.models[0])
    batches = [
        encode_batch(validate_rows(pool[(i % 20) * BATCH : (i % 20 + 1) * BATCH], schema, time.time()))
        for i in range(messages + args.rounds)
    ]
    writer = await JetStreamCluster.connect(monitor_config.cluster)
    await writer.ensure_model(MODEL, max_rows=args.window_rows, max_age=None)
    await writer.jetstream.purge_stream(writer.names.window_stream(MODEL))
    for index in range(messages):
        await writer.publish(
            MODEL, "rows", batches[index], msg_id=f"w{index}", rows=BATCH, headers={H_FORMAT: "arrow"}
        )
    info = await writer.jetstream.stream_info(writer.names.window_stream(MODEL))
    print(
        f"stream: {info.state.messages} messages, {info.state.bytes / 1e6:.1f} MB "
        f"({info.state.bytes / args.window_rows:.0f} bytes per row, "
        f"x {monitor_config.cluster.replicas} replicas on disk)"
    )
    cold: list[float] = []
    warm: list[float] = []
    try:
        for number in range(args.rounds):
            service = MonitorService.build(monitor_config)
            assert service.member is not None
            cluster = await JetStreamCluster.connect(monitor_config.cluster)
            await cluster.ensure_models(monitor_config.models)
            service.member.connection.attach(cluster, await SharedFiles.open(cluster))
            state = service.models[MODEL]
            started = time.perf_counter()
            await state.catch_up()
            cold.append(time.perf_counter() - started)
            rows = state.stats(time.time()).window_rows
            await writer.publish(
                MODEL,
                "rows",
                batches[messages + number],
                msg_id=f"more{number}",
                rows=BATCH,
                headers={H_FORMAT: "arrow"},
            )
            started = time.perf_counter()
            await state.catch_up()
            warm.append(time.perf_counter() - started)
            await cluster.close()
            service.worker.close()
            print(
                f"round {number + 1}: fresh monitor {cold[-1]:.3f} s for {rows:,} rows, "
                f"one more batch {warm[-1] * 1e3:.1f} ms"
            )
    finally:
        await writer.close()
    print(
        f"median: fresh monitor {statistics.median(cold):.3f} s "
        f"({args.window_rows / statistics.median(cold):,.0f} rows/s), "
        f"one more batch {statistics.median(warm) * 1e3:.1f} ms"
    )


# ----------------------------------------------------------------------------- reports


def report_of(reference: Path, rows: int) -> tuple[Any, str]:
    """A real calculation of a `rows`-row shifted window and its snapshot JSON."""
    model = ModelConfig.model_validate(model_config(reference, rows))
    schema = RowSchema.from_model(model)
    ref = load_reference(model, schema, "reference")
    window = SlidingWindow({c.name: c.kind for c in schema.columns}, max_rows=rows)
    window.append(validate_rows(records(frame(rows, seed=9, shifted=True)), schema, 1.0), now=1.0)
    current = pd.DataFrame(window.copy().columns)
    result = engine.compute(model, ref, current)
    return result, build_snapshot(model, ref, current, result)


async def member_store(config: ClusterConfig, settings: ReportsConfig) -> tuple[ReportStore, Any, Any]:
    """A model's report store as a cluster member has it: its backend, and its listing fed by a watch."""
    cluster = await JetStreamCluster.connect(config)
    files = await SharedFiles.open(cluster)
    connection = JetStreamConnection(config)
    connection.attach(cluster, files)
    store = ReportStore(MODEL, SharedReportBackend(MODEL, connection), settings)
    watch = await files.watch(ReportMirror({MODEL: store}))
    return store, watch, cluster


async def reports(config: ClusterConfig, reference: Path, args: argparse.Namespace, work: Path) -> None:
    print(f"\n== the report of a {args.window_rows:,}-row calculation (load {load_average()}) ==")
    result, snapshot = await asyncio.to_thread(report_of, reference, args.window_rows)
    print(f"snapshot: {len(snapshot) / 1e6:.2f} MB of JSON")
    settings = ReportsConfig(every=1, keep=args.rounds + 1)
    local = ReportStore.for_model(MODEL, work / "reports-data", settings)
    writer, writer_watch, writer_cluster = await member_store(config, settings)
    reader, reader_watch, reader_cluster = await member_store(config, settings)
    timings: dict[str, list[float]] = {
        k: [] for k in ("disk put", "bucket put", "disk read", "bucket read", "listed")
    }
    try:
        for number in range(args.rounds):
            started = time.perf_counter()
            entry = await asyncio.to_thread(local.put, result, snapshot)
            timings["disk put"].append(time.perf_counter() - started)
            started = time.perf_counter()
            await asyncio.to_thread(local.read, entry)
            timings["disk read"].append(time.perf_counter() - started)

            started = time.perf_counter()
            entry = await asyncio.to_thread(writer.put, result, snapshot)
            stored = time.perf_counter()
            timings["bucket put"].append(stored - started)
            while reader.get(entry.id) is None and time.perf_counter() - stored < 30:
                await asyncio.sleep(0.001)
            timings["listed"].append(time.perf_counter() - stored)
            started = time.perf_counter()
            assert await asyncio.to_thread(reader.read, entry) == snapshot
            timings["bucket read"].append(time.perf_counter() - started)
            print(
                f"round {number + 1}: "
                + ", ".join(f"{name} {values[-1] * 1e3:.0f} ms" for name, values in timings.items())
            )
    finally:
        for watch in (writer_watch, reader_watch):
            await watch.stop()
        for cluster in (writer_cluster, reader_cluster):
            await cluster.close()
    median = {name: statistics.median(values) for name, values in timings.items()}
    print(
        "median: "
        + ", ".join(f"{name} {value * 1e3:.0f} ms" for name, value in median.items())
        + f"; bucket/disk: put {median['bucket put'] / median['disk put']:.1f}x, "
        f"read {median['bucket read'] / median['disk read']:.1f}x"
    )


# ----------------------------------------------------------------------------- calculations


def calculated(member: RunningProcess) -> float:
    with urllib.request.urlopen(member.base_url + "/metrics", timeout=10) as answer:
        text = answer.read().decode()
    found = re.search(
        r'^drift_monitor_cluster_tasks_total\{outcome="calculated"\} (\S+)$', text, re.MULTILINE
    )
    return float(found.group(1)) if found else 0.0


def calculate(nats: NatsCluster, reference: Path, args: argparse.Namespace, work: Path) -> None:
    print(
        f"\n== calculations: {args.models} models, 20,000-row windows, schedule every 1 s, "
        f"{args.calc_seconds:g} s per phase (load {load_average()}) =="
    )
    models = []
    for index in range(args.models):
        model = model_config(reference, 20_000)
        model.update(name=f"{MODEL}{index}", schedule={"every": "1s", "min_rows": 1})
        models.append(model)
    env = monitor_env(nats)
    prefix = "BC"
    configs = [
        write_monitor_config(
            work / f"calc{n}.yaml",
            reference,
            20_000,
            cluster=cluster_section(nats, prefix, f"c{n}", task_ack_wait=30.0),
            executor="process",
            models=models,
        )
        for n in range(2)
    ]
    first = start(configs[0], work / "calc0.log", env)
    second: RunningProcess | None = None
    pool = records(frame(20 * BATCH, seed=3, shifted=True))
    bodies = [orjson.dumps({"rows": pool[i * BATCH : (i + 1) * BATCH]}) for i in range(20)]
    for model in models:
        for body in bodies:
            request = urllib.request.Request(
                f"{first.base_url}/v1/models/{model['name']}/rows",
                data=body,
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=60):
                pass
    results: dict[int, list[float]] = {1: [], 2: []}
    try:
        for number in range(args.rounds):
            for count in (1, 2):
                if count == 2 and second is None:
                    second = start(configs[1], work / f"calc1-{number}.log", env)
                if count == 1 and second is not None:
                    second.stop()
                    second = None
                time.sleep(3)  # the second member's first tasks (cold windows) are not measured
                members = [first] if second is None else [first, second]
                before = sum(calculated(m) for m in members)
                busy_before = machine_busy_seconds()
                started = time.monotonic()
                time.sleep(args.calc_seconds)
                done = sum(calculated(m) for m in members) - before
                elapsed = time.monotonic() - started
                rate = done / elapsed
                busy = (machine_busy_seconds() - busy_before) / elapsed
                results[count].append(rate)
                print(
                    f"round {number + 1}, {count} member(s): {rate:.2f} calculations/s "
                    f"(the machine's cores busy: {busy:.2f} of {os.cpu_count()}; load {load_average()})"
                )
    finally:
        first.stop()
        if second is not None:
            second.stop()
    one, two = statistics.median(results[1]), statistics.median(results[2])
    ratios = [b / a for a, b in zip(results[1], results[2], strict=True)]
    print(
        f"median: 1 member {one:.2f} calculations/s, 2 members {two:.2f} ({two / one:.2f} x; "
        f"per round: {listed(ratios)})"
    )


# ----------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=300, help="publishes per encoding phase")
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per ingest phase")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--window-rows", type=int, default=100_000)
    parser.add_argument("--models", type=int, default=6)
    parser.add_argument("--calc-seconds", type=float, default=20.0)
    parser.add_argument("--parts", default="encoding,ingest,window,calculate,reports")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        work = Path(tmp)
        reference = work / "reference.parquet"
        frame(10_000, seed=1).to_parquet(reference, index=False)
        nats = NatsCluster.create(work / "nats")
        nats.start()
        try:
            version = subprocess.run([nats_server_binary(), "--version"], capture_output=True, text=True)
            print(f"{version.stdout.strip()}: 3 nodes on 127.0.0.1, R3 file streams, {os.cpu_count()} cores")
            config = ClusterConfig.model_validate(
                {**cluster_section(nats, "BE", "bench"), "password": nats.password}
            )
            if "encoding" in parts:
                asyncio.run(encoding(config, reference, args))
            if "ingest" in parts:
                ingest(nats, reference, args, work)
            if "window" in parts:
                asyncio.run(window(nats, reference, args, work))
            if "calculate" in parts:
                calculate(nats, reference, args, work)
            if "reports" in parts:
                asyncio.run(reports(config, reference, args, work))
        finally:
            nats.stop()


if __name__ == "__main__":
    main()
