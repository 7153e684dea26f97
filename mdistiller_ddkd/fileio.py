"""Crash-safe file writing for every output of the toolbox (checkpoints, records, tables, plots).

``atomic_write`` replaces a file in one step (a crash leaves the old or the new file, never half of one),
and every write runs inside ``errors.disk_errors``: a full disk, a quota or a read-only folder becomes one
``DiskError`` line, with the old file untouched.
"""

from __future__ import annotations

import os
import tempfile
from typing import BinaryIO, Callable, List

from .errors import disk_errors

#: what ``atomic_write`` names its temporary files: ``.<name>.<random>.tmp`` beside the target
TEMP_PREFIX, TEMP_SUFFIX = ".", ".tmp"


def fsync_dir(directory: str) -> None:
    """Make a rename in ``directory`` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_dirs(directory: str) -> None:
    """``os.makedirs(directory, exist_ok=True)``; a full disk or a read-only parent is a ``DiskError``."""
    with disk_errors(f"creating {directory}"):
        os.makedirs(directory, exist_ok=True)


def atomic_write(path: str, write: Callable[[BinaryIO], None]) -> None:
    """``write(file)`` into a temporary file beside ``path``, fsync it, rename it over ``path`` and fsync the
    folder: a crash leaves either the old file or the new one, never half a file. On any failure (disk
    full, a signal) the temporary file is removed and the old file is untouched; file-system refusals
    are raised as ``DiskError``."""
    directory = os.path.dirname(os.path.abspath(path))
    with disk_errors(f"writing {path}"):
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX + os.path.basename(path) + ".", suffix=TEMP_SUFFIX,
                                   dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o666 & ~_current_umask())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
    fsync_dir(directory)


def write_text_atomic(path: str, text: str) -> None:
    """Replace ``path`` by ``text`` (UTF-8) through ``atomic_write``."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def append_line(path: str, line: str) -> None:
    """Append ``line`` and a newline to ``path`` and fsync it (a log that a crash can only cut short)."""
    with disk_errors(f"writing {path}"):
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())


def remove_stale_temp_files(directory: str) -> List[str]:
    """Remove the temporary files ``atomic_write`` left in ``directory`` when a process was killed
    mid-write; call it only while holding the folder's lock (another writer's file would go too)."""
    removed = []
    for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else ():
        path = os.path.join(directory, name)
        if name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX) and os.path.isfile(path):
            os.remove(path)
            removed.append(name)
    return removed
