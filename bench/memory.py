"""Memory: the window data structure alone (`window`), real servers and workers by configuration
against the sizing formula (`sizing`), and the allocator settings side by side (`malloc`).

    python bench/memory.py                # all three
    python bench/memory.py window [--rows 1000000] [--batch 10000]
    python bench/memory.py sizing [--cases "default window,four models"] [--json out.json]
    python bench/memory.py malloc [--rounds 2] [--duration 5]

## window

Resident memory of a full 1,000,000-row SlidingWindow, 20 columns, fed 10,000-row Batch objects.

Each case runs in a fresh interpreter (so freed memory of one case cannot hide another's) and
reports RSS before the window is created (batches prepared), after filling, the delta and the
delta relative to the raw data size 1,000,000 x 20 x 8 bytes = 160 MB (target <= 1.5x):

  float        20 float64 columns
  categorical  15 float64 + 5 categorical columns whose cells are distinct str objects (orjson.loads
               creates a new str for every value it parses; what ingestion stored before 8c3a0f5)
  interned     the same, but every cell of a category points at one shared str object
  validated    15 float64 + 5 categorical columns the way the server ingests them: JSON
               `{"rows": [...]}` bodies of common.frame() rows parsed with orjson and checked by
               schema.validate_rows, which since 8c3a0f5 replaces each category by one shared str
               per value (RowSchema.categories)

It also reports what a calculation adds on top of the full window in the server process: the
arrival-ordered `copy()` (ModelState.calculate) and, for context, the `pd.DataFrame`
built from it (since 8c3a0f5 built in the calculation worker with the process executor, not in
the server).

## sizing

Real servers (`python -m monitor_service serve`, process executor) for configurations that vary
window rows, numerical and categorical columns, reference rows, models and an id column, filled
over HTTP (one sequential client: `fill` is no ingest benchmark) and calculated three times; server
and worker RSS (and PSS, peaks) read from /proc at each stage (bench/server_memory.py), next to what
deploy/kubernetes/sizing.py's formula predicts.

## malloc

Two servers side by side, the same code, one with the allocator settings of process_memory.py
(mmap threshold fixed, trims after loading references and after each calculation) and one without
(DRIFT_MONITOR_MALLOC_TUNING=0): ingest throughput of 1,000-row batches over 4 connections while
idle and while calculations run, interleaved, with the server's CPU time per request (less
sensitive to other load on the machine than rows/s) and `other` (CPU used by other processes,
100% = one core), then RSS after the calculations.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
from common import CATEGORICAL, NUMERICAL, VOCABULARIES, frame, model_config, records, rss_mb

from monitor_service.config import ModelConfig
from monitor_service.schema import Batch, ColumnKind, RowSchema, validate_rows
from monitor_service.window import SlidingWindow

CASES = ("float", "categorical", "interned", "validated")
DISTINCT_BATCHES = 4


def _kinds(case: str) -> dict[str, ColumnKind]:
    if case == "float":
        return {f"f_{i:02d}": ColumnKind.NUMERICAL for i in range(20)}
    return {
        **dict.fromkeys(NUMERICAL, ColumnKind.NUMERICAL),
        **dict.fromkeys(CATEGORICAL, ColumnKind.CATEGORICAL),
    }


def _category_json(rng: np.random.Generator, batch: int) -> list[bytes]:
    """Per categorical column, a JSON list of values: parsing it gives fresh str objects, as ingest does."""
    out = []
    for vocabulary in VOCABULARIES:
        picks = [vocabulary[i] for i in rng.integers(0, len(vocabulary), batch)]
        out.append(orjson.dumps(picks))
    return out


def run_case(case: str, rows: int, batch: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    kinds = _kinds(case)
    floats = [n for n, k in kinds.items() if k is ColumnKind.NUMERICAL]
    cats = [n for n, k in kinds.items() if k is ColumnKind.CATEGORICAL]
    # A few distinct float batches, reused: their memory is part of the baseline, not of the window.
    float_batches = [{n: rng.normal(size=batch) for n in floats} for _ in range(DISTINCT_BATCHES)]
    cat_json = [_category_json(rng, batch) if cats else [] for _ in range(DISTINCT_BATCHES)]
    interned = {v: sys.intern(v) for vocabulary in VOCABULARIES for v in vocabulary}
    # validated: request bodies as a client sends them (their bytes are part of the baseline).
    schema = RowSchema.from_model(ModelConfig.model_validate(model_config(Path("unused.csv"), rows)))
    bodies = (
        [orjson.dumps({"rows": records(frame(batch, seed=i))}) for i in range(DISTINCT_BATCHES)]
        if case == "validated"
        else []
    )

    def make_batch(i: int) -> Batch:
        if case == "validated":  # the server's path: parse, validate (shares category strings)
            return validate_rows(orjson.loads(bodies[i % DISTINCT_BATCHES])["rows"], schema, time.time())
        columns = dict(float_batches[i % DISTINCT_BATCHES])
        for name, raw in zip(cats, cat_json[i % DISTINCT_BATCHES], strict=True):
            values = orjson.loads(raw)
            if case == "interned":
                values = [interned[v] for v in values]
            array = np.empty(batch, dtype=object)
            array[:] = values
            columns[name] = array
        return Batch(columns, batch)

    gc.collect()
    before = rss_mb()
    # Created after the baseline: np.empty(dtype=object) fills its slots with None at once (the float
    # columns stay untouched until written), so object columns are resident from the start.
    window = SlidingWindow(kinds, rows)
    created = rss_mb()
    started = time.perf_counter()
    for i in range(rows // batch):
        window.append(make_batch(i), time.time())
    fill_seconds = time.perf_counter() - started
    gc.collect()
    after = rss_mb()
    assert len(window) == rows
    # What one calculation adds in the server process: the ordered copy and the DataFrame.
    snapshot = window.copy()
    after_snapshot = rss_mb()
    df = pd.DataFrame(snapshot.columns)
    after_frame = rss_mb()
    assert len(df) == rows
    return {
        "before": before,
        "created": created - before,
        "after": after,
        "fill_seconds": fill_seconds,
        "snapshot": after_snapshot - after,
        "frame": after_frame - after_snapshot,
    }


def window_main(args: argparse.Namespace) -> None:
    if args.case:
        print(json.dumps(run_case(args.case, args.rows, args.batch)))
        return
    raw = args.rows * 20 * 8 / 1e6
    print(
        f"window of {args.rows:,} rows x 20 columns, fed {args.batch:,}-row batches; "
        f"raw float64 size {raw:.0f} MB"
    )
    print(
        f"{'case':<12} {'RSS before':>10} {'empty win':>9} {'RSS after':>10} {'delta MB':>9} "
        f"{'delta/raw':>9} "
        f"{'fill s':>7} {'+snapshot MB':>12} {'+DataFrame MB':>13}"
    )
    for case in CASES:
        out = subprocess.run(  # a fresh interpreter per case
            [
                sys.executable,
                __file__,
                "window",
                "--case",
                case,
                "--rows",
                str(args.rows),
                "--batch",
                str(args.batch),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        delta = r["after"] - r["before"]
        print(
            f"{case:<12} {r['before']:>10.0f} {r['created']:>9.0f} {r['after']:>10.0f} {delta:>9.0f} "
            f"{delta / raw:>9.2f} "
            f"{r['fill_seconds']:>7.2f} {r['snapshot']:>12.0f} {r['frame']:>13.0f}"
        )
    print(
        "RSS before: batches prepared, no window yet; empty win: RSS of a freshly created window; delta: "
        "after - before.\ntarget: delta <= 1.5 x raw; the window also keeps one float64 arrival time per row "
        "(+8 MB per 1M rows)"
    )


def sizing_main(args: argparse.Namespace) -> None:
    from server_memory import CASES as SIZING_CASES
    from server_memory import STAGES, measure

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy" / "kubernetes"))
    from sizing import ModelShape, estimate  # deploy/kubernetes/sizing.py, the formula

    wanted = {name.strip() for name in args.cases.split(",")} if args.cases else None
    cases = [c for c in SIZING_CASES if wanted is None or c.name in wanted]
    print("RSS in MB (10^6 bytes): server / worker at each stage, then peaks (VmHWM) and PSS at the end;")
    print("formula: deploy/kubernetes/sizing.py (server steady = calc 3, worker steady = calc 3)\n")
    results: dict[str, object] = {}
    rows = []
    saved = json.loads(Path(args.from_json).read_text()) if args.from_json else {}
    for case in cases:
        if args.from_json:  # re-evaluate the formula on earlier measurements
            result = saved[case.name]
        else:
            with tempfile.TemporaryDirectory(prefix="drift-sizing-") as tmp:
                result = measure(case, Path(tmp), {})
        results[case.name] = {"case": case.__dict__, **result}
        stages = result["stages"]
        shape = ModelShape(case.numerical + 1, case.categorical, case.window, case.reference, case.id_column)
        formula = estimate([shape] * case.models)
        end = stages["calc 3"]
        measured = {
            "server": end["server"]["rss"],
            "server peak": end["server"]["hwm"],
            "worker": end["worker"]["rss"],
            "worker peak": end["worker"]["hwm"],
        }
        predicted = {
            "server": formula.server,
            "server peak": formula.server_peak,
            "worker": formula.worker,
            "worker peak": formula.worker_peak,
        }
        line = f"{case.label():38s} " + " ".join(
            f"{stages[s]['server']['rss']:4.0f}/{stages[s]['worker']['rss']:3.0f}" for s in STAGES
        )
        line += f"  peak {measured['server peak']:4.0f}/{measured['worker peak']:3.0f}"
        line += f"  pss {end['server']['pss']:4.0f}/{end['worker']['pss']:3.0f}"
        line += f"  tracker {end.get('tracker', {}).get('rss', 0):2.0f}"
        line += f"  fill {result['rows_per_second'] / 1000:3.0f}k rows/s"
        print(line, flush=True)
        rows.append((case, measured, predicted))
    print("\nformula vs measurement (MB, error = formula / measured - 1)")
    keys = ("server", "server peak", "worker", "worker peak")
    print(f"{'configuration':38s} " + " ".join(f"{k:>21s}" for k in keys))
    worst = 0.0
    for case, measured, predicted in rows:
        cells = []
        for k in keys:
            error = predicted[k] / measured[k] - 1
            worst = max(worst, abs(error))
            cells.append(f"{measured[k]:5.0f} vs {predicted[k]:5.0f} {error:+5.0%}")
        print(f"{case.label():38s} " + " ".join(f"{c:>21s}" for c in cells))
    print(f"largest error {worst:.0%} (target: within 20 %)")
    print("stages: " + ", ".join(STAGES) + "; pairs are server/worker")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


def malloc_main(args: argparse.Namespace) -> None:
    import os

    import ingest
    from common import children, frame

    tmp = Path(tempfile.mkdtemp(prefix="drift-malloc-"))
    reference = tmp / "reference.parquet"
    frame(args.reference_rows, seed=1).to_parquet(reference)
    bodies = ingest.build_bodies(seed=2)
    servers = []
    for name, tuning in (("tuned", "1"), ("untuned", "0")):
        os.environ["DRIFT_MONITOR_MALLOC_TUNING"] = tuning  # inherited by the server and its worker
        config = ingest.write_config("process", tmp, reference, args.window_rows, name=name)
        servers.append(ingest.launch(config, "process", name, tmp / f"server-{name}.log"))
    os.environ.pop("DRIFT_MONITOR_MALLOC_TUNING")
    loop = ingest.new_loop()
    try:
        for server in servers:
            ingest.wait_ready(server)
            server.requests = ingest.build_requests(server.port, bodies)
            for i in range(args.window_rows // 1000):
                status, body = ingest.post(server.port, ingest.PATH, bodies[1000][i % len(bodies[1000])])
                assert status == 202, body
        print(
            f"window {args.window_rows:,} rows x 20 columns (full), reference {args.reference_rows:,} rows; "
            f"1,000-row batches over 4 connections, {args.duration:g} s per phase, interleaved"
        )
        print(
            f"{'round':>5} {'load':5} {'server':8} {'rows/s':>9} {'p99 ms':>7} {'cpu ms/req':>10} "
            f"{'other':>6} {'calcs':>5} {'RSS MB':>7}"
        )
        for round_number in range(args.rounds):
            for load in ("idle", "calc"):
                for server in servers:
                    p = ingest.measure(loop, server, 1000, 4, 0.5, args.duration, load == "calc")
                    # Server CPU per request resists other load on the machine better than rows/s.
                    cpu_ms = 1000 * p.server_cpu / p.requests_per_s if p.requests_per_s else float("nan")
                    print(
                        f"{round_number + 1:>5} {load:5} {server.name:8} {p.rows_per_s:>9,.0f} "
                        f"{p.p99_ms:>7.1f} {cpu_ms:>10.2f} {p.other_cpu:>6.0%} {p.calcs:>5} "
                        f"{rss_mb(server.process.pid):>7.0f}",
                        flush=True,
                    )
        for server in servers:
            sizes = ", ".join(f"{rss_mb(pid):.0f}" for pid in children(server.process.pid))
            print(f"{server.name}: server RSS {rss_mb(server.process.pid):.0f} MB, children {sizes} MB")
    finally:
        for server in servers:
            server.stop()
        loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    window = sub.add_parser("window", help="the SlidingWindow alone")
    window.add_argument("--rows", type=int, default=1_000_000)
    window.add_argument("--batch", type=int, default=10_000)
    window.add_argument("--case", choices=CASES, help="run one case in this process (used internally)")
    sizing = sub.add_parser("sizing", help="real servers by configuration vs the sizing formula")
    sizing.add_argument("--cases", help="comma-separated case names (default: all)")
    sizing.add_argument("--json", help="also write the measurements to this file")
    sizing.add_argument("--from-json", help="print the table from measurements saved with --json")
    malloc = sub.add_parser("malloc", help="allocator settings on and off, side by side")
    malloc.add_argument("--rounds", type=int, default=2)
    malloc.add_argument("--duration", type=float, default=5.0)
    malloc.add_argument("--window-rows", type=int, default=100_000)
    malloc.add_argument("--reference-rows", type=int, default=100_000)
    args = parser.parse_args()
    if args.command is None:
        for command in ("window", "sizing", "malloc"):
            subprocess.run([sys.executable, __file__, command], check=True)
        return
    {"window": window_main, "sizing": sizing_main, "malloc": malloc_main}[args.command](args)


if __name__ == "__main__":
    main()
