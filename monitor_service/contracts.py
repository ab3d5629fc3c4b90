"""Per-column value contracts: missing-value codes, allowed ranges and values, a magnitude bound.

Applied the same way to live rows, labels and references, after the values are typed (numbers as
float64, categories normalised by `values`). A missing-value code (e.g. 999999, "N/A") becomes null.
A violating value (outside `min`/`max`, beyond `max_abs`, not among `allowed`) is, per the column's
`on_violation`: refused with the whole batch (`reject`, the default), stored as null (`nullify`),
or stored as sent (`keep`); every one is counted.

Without any contract, every numerical column is bounded by `contracts.max_abs` (1e100): no
measurement is that large, while sentinels and overflows (1e308, DBL_MAX) are, and a squared sum
of values up to 1e100 over a 100-million-row window still fits a float64.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from monitor_service.config import DEFAULT_MAX_ABS, ColumnContract, ContractsConfig
from monitor_service.values import category

Action = Literal["reject", "nullify", "keep"]
VIOLATION = "contract_violation"


@dataclass(frozen=True)
class ColumnRules:
    """The contract of one numerical or categorical column, resolved against the model's defaults."""

    column: str
    numerical: bool
    action: Action = "reject"
    low: float | None = None
    high: float | None = None
    max_abs: float | None = DEFAULT_MAX_ABS
    allowed: frozenset[str] | None = None
    missing_numbers: tuple[float, ...] = ()
    missing_categories: frozenset[str] = frozenset()
    normalise: bool = True

    @property
    def checks_categories(self) -> bool:
        return bool(self.allowed is not None or self.missing_categories)


def rules_for(column: str, numerical: bool, contracts: ContractsConfig | None = None) -> ColumnRules:
    """A column's rules: its own contract in `contracts.columns`, over the model-wide defaults."""
    contracts = contracts or ContractsConfig()
    own = contracts.columns.get(column) or ColumnContract()
    normalise = contracts.normalise if own.normalise is None else own.normalise
    missing = [category(v, normalise=normalise) for v in own.missing] if not numerical else []
    allowed = None
    if own.allowed is not None:
        allowed = frozenset(
            text for v in own.allowed if (text := category(v, normalise=normalise)) is not None
        )
    return ColumnRules(
        column=column,
        numerical=numerical,
        action=own.on_violation or contracts.on_violation,
        low=own.min,
        high=own.max,
        max_abs=contracts.max_abs if numerical else None,
        allowed=allowed,
        missing_numbers=tuple(float(v) for v in own.missing) if numerical else (),
        missing_categories=frozenset(text for text in missing if text is not None),
        normalise=normalise,
    )


@dataclass(frozen=True)
class Checked:
    """A column after its contract: the values to store, violating rows, and missing codes met."""

    values: np.ndarray
    violations: np.ndarray  # row indices
    missing_codes: int


def check_numbers(values: np.ndarray, rules: ColumnRules) -> Checked:
    """Apply a numerical column's contract to its float64 values (NaN is null, never a violation)."""
    out = values
    missing = 0
    if rules.missing_numbers:
        hit = values == rules.missing_numbers[0]  # a few codes: faster than np.isin
        for code in rules.missing_numbers[1:]:
            hit |= values == code
        missing = int(np.count_nonzero(hit))
        if missing:
            out = values.copy()
            out[hit] = np.nan
    bad: np.ndarray | None = None
    for mask in _bound_masks(out, rules):
        bad = mask if bad is None else bad | mask
    rows = np.flatnonzero(bad) if bad is not None else np.empty(0, dtype=np.intp)
    if rows.size and rules.action == "nullify":
        out = out.copy() if out is values else out
        out[rows] = np.nan
    return Checked(out, rows, missing)


def _bound_masks(values: np.ndarray, rules: ColumnRules) -> Iterable[np.ndarray]:
    if rules.low is not None:
        yield values < rules.low
    if rules.high is not None:
        yield values > rules.high
    if rules.max_abs is not None:
        yield np.abs(values) > rules.max_abs


def check_categories(values: np.ndarray, rules: ColumnRules) -> Checked:
    """Apply a categorical column's contract to its normalised categories (None is null)."""
    if not rules.checks_categories:
        return Checked(values, np.empty(0, dtype=np.intp), 0)
    out = values
    missing = 0
    distinct = set(values.tolist())  # a handful of shared strings: check each once
    distinct.discard(None)
    codes = rules.missing_categories
    if codes and not distinct.isdisjoint(codes):
        hit = [i for i, v in enumerate(values) if v in codes]
        missing = len(hit)
        out = values.copy()
        out[hit] = None
        distinct -= codes
    rows = np.empty(0, dtype=np.intp)
    allowed = rules.allowed
    if allowed is not None and not distinct <= allowed:
        rows = np.array([i for i, v in enumerate(out) if v is not None and v not in allowed], dtype=np.intp)
    if rows.size and rules.action == "nullify":
        out = out.copy() if out is values else out
        out[rows] = None
    return Checked(out, rows, missing)


def violation(rules: ColumnRules, value: Any) -> str:
    """Why one value breaks the column's contract, naming the bound and the key that sets it."""
    key = f"contracts.columns.{rules.column}"
    if rules.numerical:
        number = float(value)
        if rules.max_abs is not None and abs(number) > rules.max_abs:
            return (
                f"|{number:g}| exceeds contracts.max_abs ({rules.max_abs:g}): no measurement is this large "
                "(a sentinel or an overflow?); declare it in the column's missing codes or change the bound"
            )
        if rules.low is not None and number < rules.low:
            return f"Input should be at least {rules.low:g} ({key}.min)"
        return f"Input should be at most {rules.high:g} ({key}.max)"
    shown = ", ".join(repr(v) for v in sorted(rules.allowed or ())[:8])
    more = ", ..." if len(rules.allowed or ()) > 8 else ""
    return f"Input should be one of the allowed values of {key}.allowed ({shown}{more})"


def reason(rules: ColumnRules, value: Any) -> str:
    """A short reason for summaries: `above the maximum 10`."""
    if not rules.numerical:
        return "not among the allowed values"
    number = float(value)
    if rules.max_abs is not None and abs(number) > rules.max_abs:
        return f"beyond contracts.max_abs {rules.max_abs:g}"
    if rules.low is not None and number < rules.low:
        return f"below the minimum {rules.low:g}"
    return f"above the maximum {rules.high:g}"


@dataclass
class ContractCounts:
    """Violations per (column, action) and missing codes per column, since the process started
    (log records replayed at start included)."""

    violations: Counter[tuple[str, str]] = field(default_factory=Counter)
    missing_codes: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, tally: Tally, refused: bool) -> None:
        """Count a batch's tally: a refused batch counts only the violations that refused it."""
        with self._lock:
            for (column, action), count in tally.violations.items():
                if refused == (action == "reject"):
                    self.violations[column, action] += count
            if not refused:
                self.missing_codes.update(tally.missing_codes)

    def copy(self) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
        """The counts now, for a scrape (ingestion may add to them meanwhile)."""
        with self._lock:
            return dict(self.violations), dict(self.missing_codes)


@dataclass
class Tally:
    """What one batch met, counted only once the batch is accepted or refused."""

    violations: Counter[tuple[str, str]] = field(default_factory=Counter)
    missing_codes: Counter[str] = field(default_factory=Counter)

    def add(self, rules: ColumnRules, checked: Checked) -> None:
        if checked.violations.size:
            self.violations[rules.column, rules.action] += int(checked.violations.size)
        if checked.missing_codes:
            self.missing_codes[rules.column] += checked.missing_codes
