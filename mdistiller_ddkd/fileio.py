"""Crash-safe file writing for every output of the toolbox (checkpoints, records, tables, plots).

``atomic_write`` replaces a file in one step (a crash leaves the old or the new file, never half of one),
and every write runs inside ``disk_errors``: a full disk, a quota or a read-only folder becomes one
``DiskError`` line, with the old file untouched.
"""

from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from typing import BinaryIO, Callable, Iterator, List, Optional

from .errors import DiskError, UserError

#: file-system refusals: ``disk_errors`` turns them into ``DiskError``
_FILE_SYSTEM_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


def _causes(err: BaseException) -> Iterator[BaseException]:
    """``err``, then what it was raised from or while handling (``__cause__``, else an unsuppressed
    ``__context__``), and so on."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or (None if err.__suppress_context__ else err.__context__)


def file_system_refusal(err: BaseException) -> Optional[OSError]:
    """The ``OSError`` in ``err``'s chain saying the disk is full, over quota, read-only or not writable (or the
    ``DiskError`` already made of one); None when there is none, or when ``err`` is another user error. The
    chain matters: ``torch.save``'s zip writer meets ``ENOSPC`` and then raises a ``RuntimeError`` while closing."""
    for link in _causes(err):
        if isinstance(link, DiskError):
            return link
        if isinstance(link, UserError):
            return None
        if isinstance(link, OSError) and link.errno in _FILE_SYSTEM_ERRNOS:
            return link
    return None


def is_file_system_refusal(err: BaseException) -> bool:
    """True when ``err`` (or what it was raised from) is a file-system refusal (``file_system_refusal``)."""
    return file_system_refusal(err) is not None


def disk_error(err: BaseException, what: str = "") -> DiskError:
    """The ``DiskError`` for the file-system refusal in ``err``'s chain while doing ``what`` (e.g. "writing
    results.json")."""
    refusal = file_system_refusal(err)
    if isinstance(refusal, DiskError):
        return refusal
    refusal = refusal if refusal is not None else err
    filename = getattr(refusal, "filename", None)
    doing = f" while {what}" if what else (f" at {filename}" if filename else "")
    return DiskError(getattr(refusal, "errno", None), f"the file system refused{doing}: "
                     f"{getattr(refusal, 'strerror', None) or refusal} — free disk space or fix the permissions, "
                     f"then run again; files already written are intact", filename)


@contextmanager
def disk_errors(what: str = "") -> Iterator[None]:
    """Within the block, a file-system refusal (full disk, quota, read-only, permissions), also one that another
    exception was raised from, is a ``DiskError``: every write path of the toolbox runs inside one, so a full
    disk is one line, never a traceback."""
    try:
        yield
    except Exception as err:
        if isinstance(err, DiskError) or not is_file_system_refusal(err):
            raise
        raise disk_error(err, what) from None

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
