"""Categorical values: one logical value is one category, for live rows, labels and references alike.

The rule (README, "Categories"):
- booleans in any spelling (JSON `true`, the strings `true`/`TRUE`/`True`, numpy and pandas bools)
  become `"true"` / `"false"`;
- integral numbers become the integer's text: `12`, `12.0`, `"12"`, `"12.0"` and `"-12.00"` are
  `"12"` and `"-12"` (`-0` and `"-0.0"` are `"0"`);
- every other string is kept exactly: `"012"`, `"+12"`, `" 12"`, `"1e3"`, `"1.5"` and `"yes"` are
  categories of their own (a leading zero is part of a code);
- a number that is not integral (`1.5`) is not a category: send categories as strings.

With normalisation turned off for a column (`contracts.normalise` or a column's `normalise: false`),
strings are kept exactly as sent; numbers and booleans still become their text (there is no other).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

# Distinct raw values cached per column (they share one string object per category, for memory).
MAX_TABLE = 100_000
_INTEGRAL = re.compile(r"-?(0|[1-9][0-9]*)(\.0+)?")
_BOOLEANS = {"true": "true", "false": "false"}
_EXACT = 2.0**53  # floats from here on are not all integers any more

# (row index, message, error type, offending value)
Problem = tuple[int, str, str, Any]


class NotACategory(ValueError):
    """A value that cannot be a category; `kind` is the error type reported to the client."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def normalise_text(text: str) -> str:
    """The canonical spelling of a string category (see the module docstring)."""
    if not text:
        return text
    first = text[0]
    if first in "-0123456789":
        if _INTEGRAL.fullmatch(text):
            integer = text.split(".", 1)[0]
            return "0" if integer == "-0" else integer
        return text
    if first in "tTfF":
        return _BOOLEANS.get(text.lower(), text)
    return text


def category(value: Any, *, normalise: bool = True) -> str | None:
    """The category of one value (None when missing); raises NotACategory."""
    if value is None:
        return None
    if isinstance(value, str):
        return normalise_text(value) if normalise else value
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        if not math.isfinite(number):  # a reference's NaN is null before it gets here
            raise NotACategory("Input should be a finite number", "finite_number")
        if not number.is_integer() or abs(number) >= _EXACT:
            raise NotACategory(
                f"{number!r} is not integral (or too large to be an exact integer): a number is a "
                "category only when it is a whole number; send other categories as strings",
                "category_number",
            )
        return str(int(number))
    raise NotACategory("Input should be a string, integer or boolean or null", "string_type")


def category_column(
    values: list[Any], table: dict[Any, Any], limit: int, *, normalise: bool = True
) -> tuple[np.ndarray, list[Problem]]:
    """One column of categories as an object array (None when missing), and its problems.

    `table` is the column's cache of raw string -> category string object, kept between batches:
    known values cost one dict lookup, and a million-row window holds each category once.
    Strings longer than `limit` are refused (a number's text is at most 20 characters).
    """
    try:
        found: list[Any] = list(map(table.get, values))
    except TypeError:  # an unhashable value (a list or an object): take the slow path for all
        found = [None] * len(values)
    problems: list[Problem] = []
    if len(table) > MAX_TABLE:  # a high-cardinality column: stop caching rather than grow
        table.clear()
    misses = [i for i, v in enumerate(found) if v is None] if None in found else []
    for i in misses:
        value = values[i]
        if value is None:
            continue
        try:
            text = category(value, normalise=normalise)
        except NotACategory as problem:
            problems.append((i, str(problem), problem.kind, value))
            continue
        if text is None:
            continue
        if isinstance(value, str) and len(value) > limit:
            message = f"String should have at most {limit} characters"
            problems.append((i, message, "string_too_long", value))
            continue
        shared = table.setdefault(text, text)
        if isinstance(value, str):
            table[value] = shared
        found[i] = shared
    out = np.empty(len(found), dtype=object)
    out[:] = found
    return out, problems
