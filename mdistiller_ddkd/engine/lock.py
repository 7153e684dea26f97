"""One writer per output folder: a lock file ``<folder>/.lock`` holding the writer's PID and host.

On POSIX the file carries an exclusive ``flock``: the kernel drops it when the holder dies (even by SIGKILL),
so a stale lock is taken over by simply locking it again. Elsewhere the file is created with
``O_CREAT | O_EXCL`` and a lock whose PID no longer runs (on this host) is taken over.
"""

from __future__ import annotations

import errno
import os
import socket
import time
import weakref
from typing import Optional

from ..errors import OutputInUseError
from ..fileio import disk_errors

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

LOCK_NAME = ".lock"

#: the locks this process holds; a forked child (a DataLoader worker) forgets them, so it neither keeps a
#: dead parent's lock alive nor removes the lock file when it exits
_HELD: "weakref.WeakSet[OutputLock]" = weakref.WeakSet()


def _forget_locks_in_child() -> None:
    for lock in list(_HELD):
        fd, lock._fd = lock._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_locks_in_child)


def _holder_text() -> str:
    return f"pid {os.getpid()} host {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def _parse_pid(text: str) -> Optional[int]:
    parts = text.split()
    try:
        return int(parts[parts.index("pid") + 1])
    except (ValueError, IndexError):
        return None


def live_holder(folder: str) -> Optional[str]:
    """The holder line of ``folder``'s lock when a process on this host that is still alive holds it (a lock
    of another host counts as held); None when the folder is free. Reads only, never takes the lock."""
    try:
        with open(os.path.join(folder, LOCK_NAME), encoding="utf-8") as f:
            holder = f.read().strip()
    except OSError:
        return None
    pid = _parse_pid(holder)
    if pid is None:
        return None
    if socket.gethostname() in holder and not _pid_alive(pid):
        return None
    return holder


class OutputLock:
    """``OutputLock(folder).acquire()`` or raise ``OutputInUseError`` naming the holder; ``release()``
    removes the file. Also released when the object is garbage-collected."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.path = os.path.join(folder, LOCK_NAME)
        self._fd: Optional[int] = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _refuse(self, holder: str) -> OutputInUseError:
        return OutputInUseError(
            f"{self.folder} is being written by another run ({holder.strip() or 'pid unknown'}); wait for it to "
            f"finish or stop it, or choose another EXPERIMENT.NAME / LOG.PREFIX (a lock whose process has died "
            f"is taken over automatically)")

    def acquire(self) -> "OutputLock":
        if self.held:
            return self
        with disk_errors(f"taking the lock {self.path}"):
            for _ in range(20):  # retried only if the file is replaced between open and lock
                fd = self._try_flock() if fcntl is not None else self._try_exclusive()
                if fd is not None:
                    self._fd = fd
                    _HELD.add(self)
                    try:
                        os.ftruncate(fd, 0)
                        os.write(fd, _holder_text().encode())
                        os.fsync(fd)
                    except BaseException:
                        self.release()
                        raise
                    return self
        raise self._refuse("lock file keeps changing")

    def _try_flock(self) -> Optional[int]:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = os.pread(fd, 4096, 0).decode(errors="replace")
            os.close(fd)
            if err.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise self._refuse(holder) from None
            raise
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(self.path))
        except FileNotFoundError:  # released (and removed) by its holder meanwhile
            same = False
        if not same:
            os.close(fd)
            return None
        return fd

    def _try_exclusive(self) -> Optional[int]:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                with open(self.path) as f:
                    holder = f.read()
            except FileNotFoundError:
                return None
            pid = _parse_pid(holder)
            if pid is not None and socket.gethostname() in holder and not _pid_alive(pid):
                os.replace(self.path, self.path + f".stale-{os.getpid()}")  # take over the stale lock
                os.remove(self.path + f".stale-{os.getpid()}")
                return None
            raise self._refuse(holder) from None

    def release(self) -> None:
        """Remove the lock file (while still holding it, so no one else's lock is removed) and unlock."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        _HELD.discard(self)
        try:
            os.remove(self.path)
        except OSError:
            pass
        os.close(fd)

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:  # interpreter shutdown
            pass
