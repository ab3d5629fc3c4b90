"""YAML with line numbers: load a document, refuse duplicate keys, name the line of a config path."""

from __future__ import annotations

from typing import Any

import yaml

Loc = tuple[str | int, ...]
_MERGE = "tag:yaml.org,2002:merge"


def load(text: str) -> tuple[Any, yaml.Node | None, list[str]]:
    """The document, its node tree (for line numbers) and one problem per duplicate key.

    PyYAML keeps the last of two equal keys without a word; the API refuses duplicate JSON keys, so
    the config file does too. Keys brought in by a merge (`<<: *defaults`) may be overridden.
    """
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        duplicates = _duplicates(root, (), set()) if root is not None else []
        data = loader.construct_document(root) if root is not None else None  # flattens merges
    finally:
        loader.dispose()
    return data, root, duplicates


def _duplicates(node: yaml.Node, loc: Loc, seen: set[int]) -> list[str]:
    if id(node) in seen:  # an alias: its anchor was checked already
        return []
    seen.add(id(node))
    problems: list[str] = []
    if isinstance(node, yaml.MappingNode):
        first: dict[tuple[str, Any], yaml.Node] = {}
        for key, value in node.value:
            if key.tag == _MERGE or not isinstance(key, yaml.ScalarNode):
                continue
            path = (*loc, key.value)
            earlier = first.setdefault((key.tag, key.value), key)
            if earlier is not key:
                a, b = earlier.start_mark.line + 1, key.start_mark.line + 1
                lines = f"line {a}, twice" if a == b else f"lines {a} and {b}"
                problems.append(f"{format_loc(path)} ({lines}): duplicate key; YAML would keep only the last")
            problems.extend(_duplicates(value, path, seen))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            problems.extend(_duplicates(item, (*loc, index), seen))
    return problems


def format_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _child(node: yaml.Node | None, part: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        return next((v for k, v in reversed(node.value) if k.value == part), None)
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        child: yaml.Node = node.value[part]
        return child
    return None


def line_of(node: yaml.Node | None, loc: Loc) -> int | None:
    """1-based line of the YAML node at `loc`, or of its nearest existing parent."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        node = _child(node, part)
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


def exact_line(node: yaml.Node | None, loc: Loc) -> int | None:
    """1-based line of the YAML node at `loc`, or None when the file does not hold that key."""
    for part in loc:
        node = _child(node, part)
    return node.start_mark.line + 1 if node is not None else None


def located(node: yaml.Node | None, loc: Loc) -> str:
    """`models[0].window.max_rows (line 8)`, or `(default)` when the file leaves it out."""
    line = exact_line(node, loc)
    return f"{format_loc(loc)} ({f'line {line}' if line else 'default'})"
