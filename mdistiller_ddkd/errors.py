"""User errors and how the command-line tools report them: one line on stderr and a documented exit code,
never a traceback (unless ``--debug`` or ``MDISTILLER_DDKD_DEBUG=1`` asks for one).

Exit codes of every tool:

* ``0`` done;
* ``2`` a mistake the user can fix (bad value, file, folder or state), said in one ``error: ...`` line;
* ``3`` training stopped on a non-finite loss (the last checkpoint is intact);
* ``128 + N`` stopped by signal N: ``130`` SIGINT (Ctrl-C), ``143`` SIGTERM. ``ddkd-train`` first finishes
  the step, writes a checkpoint that ``--resume`` continues from exactly, and then exits with this code, so
  a scheduler can requeue the job; a second signal stops at once.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from typing import Callable, List, Optional, Sequence, Tuple

DEBUG_ENV = "MDISTILLER_DDKD_DEBUG"
DEBUG_FLAG = "--debug"
USER_ERROR_EXIT = 2
#: file-system refusals while reading or writing: reported as one line, not as a crash
_FILE_SYSTEM_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


class UserError(Exception):
    """A mistake the user can fix; the message says what is wrong and what to do."""

    exit_code = USER_ERROR_EXIT
    prefix = "error: "


class ConfigError(UserError, ValueError):
    """A config file or value the toolbox cannot act on."""


class DataFileError(UserError, ValueError):
    """A data file that is truncated, corrupt, incomplete or unsafe to read."""


class CheckpointReadError(UserError, ValueError):
    """A checkpoint that cannot be read (truncated, not a checkpoint, or holding unsafe objects)."""


class ResumeMismatchError(UserError):
    """``--resume`` with a config (or data) that would change the run."""


class OutputLockedError(UserError):
    """Another process is writing the same output folder."""


class Stopped(UserError):
    """Not a mistake: training stopped on request (a signal); the message says how to continue."""

    prefix = "[mdistiller_ddkd] "

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def one_line(text: str) -> str:
    """``text`` with its lines joined by single spaces (multi-line messages stay informative on one line)."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def user_error_types() -> Tuple[type, ...]:
    """Built-in and third-party exception types that mean a user mistake when they reach a tool's top level."""
    from .plugins import PluginError

    return (UserError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, KeyError,
            ValueError, PluginError)


def _message(err: BaseException) -> str:
    if isinstance(err, KeyError) and err.args:  # KeyError's str() adds quotes
        return one_line(err.args[0])
    return one_line(str(err)) or type(err).__name__


def classify(err: BaseException) -> Optional[Tuple[int, str]]:
    """``(exit code, one line)`` for an exception a tool reports without a traceback; None for a bug."""
    from .engine.signals import ImmediateStop

    if isinstance(err, UserError):
        return err.exit_code, err.prefix + _message(err)
    if isinstance(err, ImmediateStop):
        return err.exit_code, f"[mdistiller_ddkd] {err}"
    if isinstance(err, KeyboardInterrupt):
        return 130, ("[mdistiller_ddkd] interrupted (Ctrl-C); files already written are intact "
                     "(ddkd-train: --resume continues from the last checkpoint)")
    if isinstance(err, OSError) and err.errno in _FILE_SYSTEM_ERRNOS:
        where = f" ({err.filename})" if err.filename else ""
        return USER_ERROR_EXIT, (f"error: the file system refused{where}: {err.strerror or err} — free disk space "
                                 f"or fix the permissions, then run again (files already written are intact; "
                                 f"ddkd-train: --resume continues from the last checkpoint)")
    if isinstance(err, user_error_types()):
        return USER_ERROR_EXIT, "error: " + _message(err)
    return None


def debug_requested(argv: Sequence[str]) -> bool:
    return DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")


def run_main(body: Callable[[List[str]], int], argv: Optional[Sequence[str]] = None) -> int:
    """Run a tool's ``body(argv)``; user errors, interrupts and signals become one line and an exit code.

    ``--debug`` (anywhere in ``argv``; removed before ``body`` sees it) or ``MDISTILLER_DDKD_DEBUG=1`` lets
    the exception propagate with its traceback.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(args)
    args = [a for a in args if a != DEBUG_FLAG]
    try:
        return body(args)
    except SystemExit as err:  # argparse's --help and usage errors (already printed)
        return err.code if isinstance(err.code, int) else (0 if err.code is None else 1)
    except BaseException as err:  # bugs are re-raised below
        verdict = None if debug else classify(err)
        if verdict is None:
            raise
        code, line = verdict
        print(line, file=sys.stderr, flush=True)
        return code


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (``prog: error: ... (see --help)``) with exit code 2."""

    def error(self, message: str):  # argparse's contract: print and exit
        print(f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)", file=sys.stderr, flush=True)
        raise SystemExit(USER_ERROR_EXIT)


def add_debug_argument(parser: argparse.ArgumentParser) -> None:
    """Document ``--debug`` (``run_main`` handles it wherever it appears)."""
    parser.add_argument(DEBUG_FLAG, action="store_true",
                        help=f"show the traceback of an error instead of one line (also: {DEBUG_ENV}=1)")


EXIT_CODES_HELP = (
    "exit codes: 0 done; 2 a mistake to fix (one 'error:' line says what and how); 3 non-finite loss (the last "
    "checkpoint is intact); 130 / 143 stopped by SIGINT / SIGTERM after writing a checkpoint that --resume "
    "continues from exactly (a second signal stops at once)."
)
