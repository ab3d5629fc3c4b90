"""What a stored report costs: building its snapshot, its size, storing it, rendering it, memory.

For windows of the bundled diamonds data (production split, no drift) against the 10,000-row
reference it prints, per window size (repetitions alternate the sizes so noise hits all alike):

  compute    engine.compute (the calculation itself, test suite included), for scale
  no tests   engine.compute with tests.auto off: what the test suite adds to every calculation
  snapshot   engine.snapshot.build_snapshot (Evidently report with widgets + test-suite report)
  bytes      size of the snapshot JSON as stored
  store      ReportStore.put on a directory (two fsynced atomic writes)
  render     the stored JSON loaded and rendered to the HTML page (+ its CSP)

and the resident memory the process gains by importing Evidently and rendering one page (what
rendering in the server process, rather than the worker, would cost).

    python bench/reports.py [--sizes 1000,5000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    before = rss_mb()
    from monitor_service.config import ModelConfig, ReportsConfig
    from monitor_service.engine import compute
    from monitor_service.engine.snapshot import build_snapshot
    from monitor_service.reports import ReportStore, _render_page
    from tests.conftest import diamonds_model, rows_of
    from tests.support.reports import frames

    model = ModelConfig.model_validate(diamonds_model())
    untested = ModelConfig.model_validate(diamonds_model(tests={"auto": False}))
    sizes = [int(s) for s in args.sizes.split(",")]
    windows = {n: frames(model, rows_of("production", n)) for n in sizes}
    imported = rss_mb()
    timings: dict[str, dict[int, list[float]]] = {
        k: {n: [] for n in sizes} for k in ("compute", "no tests", "snapshot", "store", "render")
    }
    size_of: dict[int, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = ReportStore.for_model("diamonds", Path(tmp), ReportsConfig(max_age=None))
        for _ in range(args.repeat):
            for n in sizes:
                reference, current = windows[n]
                started = time.perf_counter()
                result = compute(model, reference, current)
                timings["compute"][n].append(time.perf_counter() - started)
                started = time.perf_counter()
                compute(untested, reference, current)
                timings["no tests"][n].append(time.perf_counter() - started)
                started = time.perf_counter()
                text = build_snapshot(model, reference, current, replace(result, finished_at=time.time()))
                timings["snapshot"][n].append(time.perf_counter() - started)
                size_of[n] = len(text.encode())
                started = time.perf_counter()
                store.put(replace(result, finished_at=time.time()), text)
                timings["store"][n].append(time.perf_counter() - started)
                started = time.perf_counter()
                _render_page(text)
                timings["render"][n].append(time.perf_counter() - started)
    rendered = rss_mb()
    print(f"diamonds, reference {len(windows[sizes[0]][0])} rows, median of {args.repeat}:\n")
    print("| window rows | compute | no tests | snapshot | bytes | store | render |")
    print("|---|---|---|---|---|---|---|")
    for n in sizes:
        cells = [f"{statistics.median(timings[k][n]):.2f} s" for k in ("compute", "no tests", "snapshot")]
        cells.append(f"{size_of[n] / 1e6:.2f} MB")
        cells += [f"{statistics.median(timings[k][n]):.3f} s" for k in ("store", "render")]
        print(f"| {n} | " + " | ".join(cells) + " |")
    print(
        f"\nRSS: {before:.0f} MB at start, {imported:.0f} MB with Evidently imported and the data loaded, "
        f"{rendered:.0f} MB after rendering"
    )


if __name__ == "__main__":
    main()
