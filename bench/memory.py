"""Resident memory of a full 1,000,000-row SlidingWindow, 20 columns, fed 10,000-row Batch objects.

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

    python bench/memory.py [--rows 1000000] [--batch 10000]
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--case", choices=CASES, help="run one case in this process (used internally)")
    args = parser.parse_args()
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
            [sys.executable, __file__, "--case", case, "--rows", str(args.rows), "--batch", str(args.batch)],
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


if __name__ == "__main__":
    main()
