"""Property tests: the sliding window against a plain reference model, and the row validator against
an oracle of what each cell may hold."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from monitor_service.errors import ValidationFailed
from monitor_service.schema import Batch, ColumnKind, ColumnSpec, RowSchema, validate_rows
from monitor_service.window import SlidingWindow

PROPERTIES = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

# --- the window --------------------------------------------------------------------------------

KINDS = {
    "n": ColumnKind.NUMERICAL,
    "c": ColumnKind.CATEGORICAL,
    "id": ColumnKind.ID,
    "y": ColumnKind.NUMERICAL,
}
IDS = ["a", "b", "c", None]


@dataclass
class Reference:
    """What the window should hold: the last `max_rows` rows not older than `max_age`, in order."""

    max_rows: int
    max_age: float | None
    rows: list[dict[str, Any]] = field(default_factory=list)
    last_arrival: float | None = None

    def evict(self, now: float) -> None:
        if self.max_age is not None:
            cutoff = now - self.max_age
            self.rows = [r for r in self.rows if r["arrival"] >= cutoff]

    def append(self, rows: list[dict[str, Any]], now: float) -> None:
        # Arrival times never decrease (a clock stepping back does not reorder the window).
        arrival = now if self.last_arrival is None else max(now, self.last_arrival)
        self.evict(arrival)
        self.rows.extend({**r, "arrival": arrival} for r in rows)
        self.rows = self.rows[-self.max_rows :]
        if rows:
            self.last_arrival = arrival

    def apply_labels(self, ids: list[str], targets: list[float]) -> list[bool]:
        found = []
        for row_id, target in zip(ids, targets, strict=True):
            newest = next((r for r in reversed(self.rows) if r["id"] == row_id), None)
            if newest is not None:
                newest["y"] = target
            found.append(newest is not None)
        return found


def _batch(first: int, size: int, ids: list[str | None]) -> tuple[Batch, list[dict[str, Any]]]:
    rows = [
        {"n": float(first + i), "c": f"c{first + i}", "id": ids[i % len(ids)], "y": math.nan}
        for i in range(size)
    ]
    columns = {
        "n": np.array([r["n"] for r in rows], dtype=np.float64),
        "c": np.array([r["c"] for r in rows], dtype=object),
        "id": np.array([r["id"] for r in rows], dtype=object),
        "y": np.full(size, np.nan),
    }
    return Batch(columns, size), rows


def _rows_of(window: SlidingWindow, now: float | None = None) -> list[dict[str, Any]]:
    snapshot = window.copy(now)
    assert all(len(a) == snapshot.rows for a in snapshot.columns.values())
    return [
        {
            "n": float(snapshot.columns["n"][i]),
            "c": snapshot.columns["c"][i],
            "id": snapshot.columns["id"][i],
            "y": float(snapshot.columns["y"][i]),
            "arrival": float(snapshot.arrival[i]),
        }
        for i in range(snapshot.rows)
    ]


def _same(actual: list[dict[str, Any]], expected: list[dict[str, Any]]) -> bool:
    """Row lists equal, NaN equal to NaN."""

    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(None if isinstance(v, float) and math.isnan(v) else v for v in row.values())

    return [key(r) for r in actual] == [
        key({k: r[k] for k in ("n", "c", "id", "y", "arrival")}) for r in expected
    ]


# Whole seconds make rows land exactly on the age cutoff often; the clock steps back sometimes.
_steps = st.one_of(st.integers(-5, 20).map(float), st.floats(-5, 20, allow_nan=False))
_append = st.tuples(
    st.just("append"),
    st.integers(0, 12),  # batch size, also larger than the window
    _steps,
    st.lists(st.sampled_from(IDS), min_size=1, max_size=4),
)
_evict = st.tuples(st.just("evict"), _steps)
_snapshot = st.tuples(st.just("snapshot"), st.one_of(st.none(), _steps))
_labels = st.tuples(
    st.just("labels"),
    st.lists(st.sampled_from(["a", "b", "c", "zz"]), max_size=5),
    st.floats(-1e6, 1e6, allow_nan=False),
)
_operations = st.lists(st.one_of(_append, _evict, _snapshot, _labels), max_size=40)


@PROPERTIES
@given(
    max_rows=st.integers(1, 9),
    max_age=st.one_of(st.none(), st.integers(1, 25).map(float), st.floats(0.5, 25, allow_nan=False)),
    operations=_operations,
)
def test_window_equals_reference_model_after_any_operations(
    max_rows: int, max_age: float | None, operations: list[tuple[Any, ...]]
) -> None:
    window = SlidingWindow(KINDS, max_rows, max_age, id_column="id", target_column="y")
    model = Reference(max_rows, max_age)
    clock, serial = 1_000.0, 0
    for operation in operations:
        match operation:
            case ("append", size, step, ids):
                clock += step
                batch, rows = _batch(serial, size, ids)
                serial += size
                assert window.append(batch, clock) == len(window)
                model.append(rows, clock)
            case ("evict", step):
                assert window.evict_expired(clock + step) == len(window)
                model.evict(clock + step)
            case ("snapshot", step):
                now = None if step is None else clock + step
                if now is not None:
                    model.evict(now)
                assert _same(_rows_of(window, now), model.rows)
            case ("labels", ids, base):
                targets = [base + i for i in range(len(ids))]
                assert window.apply_labels(ids, targets) == model.apply_labels(ids, targets)
        assert len(window) == len(model.rows) <= max_rows
        assert _same(_rows_of(window), model.rows)


@PROPERTIES
@given(max_rows=st.integers(1, 9), operations=_operations, new_max_rows=st.integers(1, 12))
def test_window_restored_from_its_snapshot_holds_the_same_rows_and_joins_the_same_labels(
    max_rows: int, operations: list[tuple[Any, ...]], new_max_rows: int
) -> None:
    window = SlidingWindow(KINDS, max_rows, id_column="id", target_column="y")
    model = Reference(max_rows, None)
    clock, serial = 1_000.0, 0
    for operation in operations:
        if operation[0] == "append":
            _, size, step, ids = operation
            clock += abs(step)
            batch, rows = _batch(serial, size, ids)
            serial += size
            window.append(batch, clock)
            model.append(rows, clock)
    restored = SlidingWindow(KINDS, new_max_rows, id_column="id", target_column="y")
    restored.restore(window.copy())
    model.max_rows = new_max_rows
    model.rows = model.rows[-new_max_rows:]
    assert _same(_rows_of(restored), model.rows)
    ids = ["a", "b", "c", "zz"]
    assert restored.apply_labels(ids, [1.0, 2.0, 3.0, 4.0]) == model.apply_labels(ids, [1.0, 2.0, 3.0, 4.0])
    assert _same(_rows_of(restored), model.rows)


# --- the validator -----------------------------------------------------------------------------

LIMIT = 8
NOW = 1_700_000_000.0
EARLIEST = 946_684_800.0  # timestamps.earliest, 2000-01-01
MAX_AHEAD = 86_400.0  # timestamps.max_ahead
SCHEMA = RowSchema(
    (
        ColumnSpec("id", ColumnKind.ID, required=False),
        ColumnSpec("ts", ColumnKind.TIMESTAMP, required=False),
        ColumnSpec("y", ColumnKind.NUMERICAL, required=False),
        ColumnSpec("p", ColumnKind.NUMERICAL, required=True),
        ColumnSpec("num", ColumnKind.NUMERICAL, required=True),
        ColumnSpec("cat", ColumnKind.CATEGORICAL, required=True),
    ),
    max_string_length=LIMIT,
)
SPECS = {spec.name: spec for spec in SCHEMA.columns}

# What orjson can hand over: JSON values, integers within 64 bits, finite floats; NaN and infinity
# are added since the validator must refuse them wherever they come from.
_ints = st.one_of(st.integers(-5, 5), st.integers(-(2**63), 2**64 - 1))
_floats = st.one_of(st.floats(-1e3, 1e3), st.floats(allow_nan=True, allow_infinity=True))
_texts = st.one_of(st.text(max_size=LIMIT + 3), st.text(st.characters(codec="utf-8"), max_size=LIMIT))
_scalars = st.one_of(st.none(), st.booleans(), _ints, _floats, _texts)
_values = st.one_of(
    _scalars, st.lists(_scalars, max_size=2), st.dictionaries(st.text(max_size=3), _scalars, max_size=2)
)
_zones = st.sampled_from(
    [None, UTC, timezone(timedelta(hours=14)), timezone(-timedelta(hours=23, minutes=59))]
)
_timestamps = st.one_of(
    _scalars,
    st.integers(-10, 2 * 10**11),
    st.floats(EARLIEST - 10, NOW + MAX_AHEAD + 10),
    st.datetimes(timezones=_zones).map(datetime.isoformat),
    st.dates().map(date.isoformat),
    st.sampled_from(["2024-01-01", "2024-13-01", "0001-01-01", "9999-12-31T23:59:59-23:59", "x"]),
)
_names = st.sampled_from([*SPECS, "extra", "P"])
# Rows that are mostly right (each cell from what its column takes, plus strays) and rows that are not.
_nearly_valid = st.fixed_dictionaries(
    {
        "p": st.one_of(st.floats(-1e9, 1e9), _ints, st.none()),
        "num": st.one_of(
            _ints, _floats, st.sampled_from([1e100, -1e100, 1e101, 1e308, 10**100, 10**100 + 7, 10**101])
        ),
        "cat": st.one_of(
            _texts,
            _ints,
            st.booleans(),
            st.none(),
            st.floats(),
            st.sampled_from(["TRUE", "False", "12.0", "-0", "-0.00", "012", "0.0", "1.5", "+1", "١٢"]),
        ),
    },
    optional={
        "id": st.one_of(_texts, _ints, st.booleans(), st.none()),
        "ts": _timestamps,
        "y": st.one_of(_floats, st.none()),
    },
)
_rows = st.lists(st.one_of(_nearly_valid, st.dictionaries(_names, _values, max_size=8), _scalars), max_size=6)


def _canonical(text: str) -> str:
    """README, "Categories": boolean spellings and integral numbers in plain decimal have one text."""
    if text.lower() in ("true", "false"):
        return text.lower()
    negative = text.startswith("-")
    whole, dot, fraction = text[negative:].partition(".")
    plain = whole.isascii() and whole.isdigit() and (whole == "0" or not whole.startswith("0"))
    if plain and (not dot or (fraction and set(fraction) == {"0"})):
        return str(-int(whole) if negative else int(whole))
    return text


def _expected(kind: ColumnKind, value: Any) -> tuple[bool, Any]:
    """(valid, stored value) of one cell: the oracle the validator is checked against."""
    t = type(value)
    if kind is ColumnKind.NUMERICAL:  # finite, and within the default contracts.max_abs
        if value is None:
            return True, math.nan
        if (t is int and abs(value) < 1.7e308) or (t is float and math.isfinite(value)):
            return abs(float(value)) <= 1e100, float(value)
        return False, None
    if kind is ColumnKind.TIMESTAMP:
        if value is None:
            return True, NOW
        stamp = None
        if t is int or t is float:
            stamp = float(value)
        elif t is str:  # ISO 8601 text: UTC when it has no zone
            try:
                moment = datetime.fromisoformat(value)
                stamp = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
            except (ValueError, OverflowError, OSError):
                return False, None
        if stamp is None:
            return False, None
        return EARLIEST <= stamp <= NOW + MAX_AHEAD, stamp
    # Categorical and id: strings within the limit and integers (as text); booleans are categories
    # ("true"/"false") but not ids (README: an id is a string or an integer). Categories are
    # normalised; a whole float is a category, another float is not.
    if value is None:
        return True, None
    if t is str:
        return len(value) <= LIMIT, _canonical(value) if kind is ColumnKind.CATEGORICAL else value
    if t is int:
        return True, str(value)
    if t is bool and kind is ColumnKind.CATEGORICAL:
        return True, str(value).lower()
    if t is float and kind is ColumnKind.CATEGORICAL and math.isfinite(value) and value.is_integer():
        return abs(value) < 2**53, str(int(value))
    return False, None


def _problems(rows: list[Any]) -> set[tuple[int, str | None]]:
    """Every (row, column) with a problem; column None when the row is not an object."""
    problems: set[tuple[int, str | None]] = set()
    for i, row in enumerate(rows):
        if type(row) is not dict:
            problems.add((i, None))
            continue
        for name in row:
            if name not in SPECS or not _expected(SPECS[name].kind, row[name])[0]:
                problems.add((i, name))
        problems.update((i, spec.name) for spec in SCHEMA.columns if spec.required and spec.name not in row)
    return problems


def _same_cell(actual: Any, expected: Any) -> bool:
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(actual, float) and math.isnan(actual)
    return bool(actual == expected) and type(actual) is type(expected)


@settings(PROPERTIES, max_examples=1000)
@given(rows=_rows)
@example(rows=[{"p": 1.0, "num": 1, "cat": "a", "id": True}])  # an id is a string or an integer
@example(rows=[{"p": 1.0, "num": 1, "cat": "a", "ts": "0001-01-01"}])  # .timestamp() raises
@example(rows=[{"p": 1.0, "num": 2**64 - 1, "cat": 2**63, "id": -(2**63)}])
def test_validate_rows_returns_the_input_as_columns_or_locates_every_reported_problem(
    rows: list[Any],
) -> None:
    problems = _problems(rows)
    try:
        batch = validate_rows(rows, SCHEMA, NOW)
    except ValidationFailed as failed:
        assert problems, f"refused a valid batch: {failed.errors}"
        assert failed.errors
        assert len(failed.errors) <= 100
        assert failed.total_errors >= len(failed.errors)
        for error in failed.errors:
            assert error.loc[:2] == ("body", "rows")
            assert (error.loc[2], error.loc[3] if len(error.loc) == 4 else None) in problems, error
        return
    assert not problems, f"accepted a batch with problems at {sorted(problems, key=str)}"
    assert batch.rows == len(rows)
    assert set(batch.columns) == set(SPECS)
    for name, spec in SPECS.items():
        column = batch.columns[name]
        assert len(column) == len(rows)
        expected_dtype = np.float64 if spec.kind in (ColumnKind.NUMERICAL, ColumnKind.TIMESTAMP) else object
        assert column.dtype == expected_dtype, name
        for i, row in enumerate(rows):
            stored = column[i].item() if column.dtype != object else column[i]
            assert _same_cell(stored, _expected(spec.kind, row.get(name))[1]), (
                i,
                name,
                row.get(name),
                stored,
            )
