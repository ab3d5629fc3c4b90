"""Log records: one acknowledged request body each, framed with a checksum, and how segments are read.

A record is `header + body`; the header holds a magic number, the body length, a CRC-32 and the
arrival time, so replay reproduces the window exactly (age eviction included) and stops at a torn
or corrupt tail without losing the records before it.
"""

from __future__ import annotations

import logging
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

MAGIC = b"DMW1"
# magic, body length, crc32 of (time, kind, body), arrival time, kind (0 rows, 1 labels), body format
# (bodies.py: 0 JSON, 1 NDJSON, 2 Arrow, +16 gzip; logs written before formats existed hold 0 or 1)
_HEADER = struct.Struct("<4sIIdBB")
_META = struct.Struct("<dBB")
_KINDS = ("rows", "labels")

RecordKind = Literal["rows", "labels"]
_KIND_OF_BYTE: tuple[RecordKind, RecordKind] = ("rows", "labels")


@dataclass(frozen=True)
class Record:
    """One acknowledged request: what it was, when it arrived, and its body as received.

    Cluster mode also sets `items` (rows or labels in the body) and may store rows `columnar`: the
    validated batch as Arrow (journal/columnar.py) instead of the body; the local log stores
    neither (its framing has no room for them) and never gets a columnar record.
    """

    kind: RecordKind
    arrived: float
    body_format: int
    body: bytes
    items: int = 0
    columnar: bool = False

    def encode(self) -> bytes:
        if self.columnar:
            raise ValueError("a columnar record belongs to a cluster's stream, not to the local log")
        kind = _KINDS.index(self.kind)
        crc = zlib.crc32(self.body, zlib.crc32(_META.pack(self.arrived, kind, self.body_format)))
        return _HEADER.pack(MAGIC, len(self.body), crc, self.arrived, kind, self.body_format) + self.body


@dataclass
class ReplayReport:
    """What recovery found: records replayed, records cut off as torn or corrupt, and records that
    were intact but no longer validate against the configuration (a column removed since)."""

    records: int = 0
    corrupt: int = 0
    invalid: int = 0


def read_segment(path: Path, report: ReplayReport) -> Iterator[Record]:
    """Records of one segment in order; stops (and counts) at the first torn or corrupt record."""
    data = path.read_bytes()
    offset = 0
    while offset < len(data):
        problem = None
        if len(data) - offset < _HEADER.size:
            problem = "truncated header"
        else:
            magic, length, crc, arrived, kind, body_format = _HEADER.unpack_from(data, offset)
            start = offset + _HEADER.size
            body = data[start : start + length]
            if magic != MAGIC or kind >= len(_KINDS):
                problem = "bad record header"
            elif len(body) < length:
                problem = "truncated record"
            elif zlib.crc32(body, zlib.crc32(_META.pack(arrived, kind, body_format))) != crc:
                problem = "checksum mismatch"
        if problem:
            report.corrupt += 1
            log.error("%s at byte %d of %s: the rest of this segment is skipped", problem, offset, path)
            return
        report.records += 1
        yield Record(_KIND_OF_BYTE[kind], arrived, body_format, bytes(body))
        offset = start + length
