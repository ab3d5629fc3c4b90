"""What value normalisation, contracts and event times cost the row validator.

`validate_rows` on 1,000-row batches of the 20-column bench model (15 numerical, 5 categorical),
parsed from JSON as the server parses them, under four configurations measured in alternating
rounds in this one process:

- `plain`: normalisation off and no magnitude bound (`contracts: {normalise: false, max_abs: null}`);
- `defaults`: categories normalised, every numerical column bounded by `contracts.max_abs`;
- `contracts`: as defaults, plus a contract on every column (`min`/`max` and a missing code on
  the numerical ones, `allowed` and a missing code on the categorical ones; `nullify`);
- `unix seconds`: as defaults, plus a timestamp column of Unix seconds;
- `iso times`: as defaults, plus a timestamp column of ISO 8601 strings (zones mixed, some without).

Prints the median CPU time per batch and the ratio to `plain`. A measurement, never an assertion.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from common import CATEGORICAL, NUMERICAL, VOCABULARIES, frame, model_config, records

from monitor_service.config import ModelConfig
from monitor_service.schema import CategoryInterner, RowSchema, validate_rows

NOW = datetime(2025, 6, 1, tzinfo=UTC).timestamp()


def _schema(contracts: dict[str, Any], timestamp: bool = False) -> RowSchema:
    model = model_config(reference="unused.csv", max_rows=1000)  # type: ignore[arg-type]
    if timestamp:
        model["columns"] = {**model["columns"], "timestamp": "ts"}
    return RowSchema.from_model(ModelConfig.model_validate({**model, "contracts": contracts}))


def _bodies(count: int) -> dict[str, list[bytes]]:
    """JSON bodies of 1,000 rows: without a timestamp, with Unix seconds, with ISO 8601 text."""
    bodies: dict[str, list[bytes]] = {"none": [], "seconds": [], "iso": []}
    start = datetime.fromtimestamp(NOW, UTC) - timedelta(hours=1)
    for seed in range(count):
        rows = records(frame(1000, seed))
        bodies["none"].append(orjson.dumps(rows))
        bodies["seconds"].append(orjson.dumps([{**row, "ts": NOW - 3600 + i} for i, row in enumerate(rows)]))
        for i, row in enumerate(rows):
            moment = start + timedelta(seconds=i)
            row["ts"] = moment.isoformat() if i % 3 else moment.replace(tzinfo=None).isoformat()
        bodies["iso"].append(orjson.dumps(rows))
    return bodies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--batches", type=int, default=10, help="distinct bodies per round")
    args = parser.parse_args()
    every_column = {
        **{n: {"min": -1e6, "max": 1e6, "missing": [999999.0]} for n in NUMERICAL},
        **{c: {"allowed": VOCABULARIES[i], "missing": ["N/A"]} for i, c in enumerate(CATEGORICAL)},
    }
    variants = {
        "plain": (_schema({"normalise": False, "max_abs": None}), "none"),
        "defaults": (_schema({}), "none"),
        "contracts": (_schema({"on_violation": "nullify", "columns": every_column}), "none"),
        "unix seconds": (_schema({}, timestamp=True), "seconds"),
        "iso times": (_schema({}, timestamp=True), "iso"),
    }
    bodies = _bodies(args.batches)
    times: dict[str, list[float]] = {name: [] for name in variants}
    interners = {name: CategoryInterner() for name in variants}  # one per model, as the server keeps
    for _ in range(args.rounds):
        for name, (schema, kind) in variants.items():
            for body in bodies[kind]:
                rows = orjson.loads(body)
                started = time.process_time()
                validate_rows(rows, schema, NOW, interners[name])
                times[name].append(time.process_time() - started)
    base = statistics.median(times["plain"])
    print(f"validate_rows, 1,000 rows x 20 columns, {args.rounds} rounds x {args.batches} bodies (CPU time)")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"  {name:12s} median {median * 1e3:6.3f} ms   ratio to plain {median / base:5.2f}")


if __name__ == "__main__":
    main()
