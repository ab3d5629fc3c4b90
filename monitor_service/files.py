"""Files only the monitor may read, written so that a crash or a planted symlink cannot hurt.

Every file is created owner-only (0600), never through a symlink and never over an existing file
(`O_EXCL | O_NOFOLLOW`), fsynced, and, when it replaces another, renamed into place from a
temporary name of its own, after which its directory is fsynced too.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def write_new(path: Path, data: bytes) -> None:
    """Create `path` with `data` (it must not exist yet), owner-only, fsynced."""
    fd = os.open(path, _NEW, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_atomically(path: Path, data: bytes) -> None:
    """Put `data` at `path` all at once: a unique temporary file, fsynced, renamed over `path`;
    a failed write leaves nothing behind (a full disk stays as it was)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        write_new(tmp, data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Make the directory's entries (new, renamed or removed files) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
