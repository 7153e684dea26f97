"""User errors and how the command-line tools report them: a user's mistake is one line on stderr and a
documented exit code, never a traceback (unless ``--debug`` or ``MDISTILLER_DDKD_DEBUG=1`` asks for one);
anything else is a bug, shown with its traceback and a line saying whose bug it is.

This is the bottom layer of the package: it imports nothing of it.

Exit codes of every tool:

* ``0`` done;
* ``1`` a bug (in mdistiller-ddkd or in a plugin): the traceback, then one ``bug:`` line naming where to report it;
* ``2`` a mistake the user can fix (bad value, file, folder, device or a full disk), said in one ``error: ...`` line;
* ``3`` training stopped on a non-finite loss (the last checkpoint is intact);
* ``128 + N`` stopped by signal N: ``130`` SIGINT (Ctrl-C), ``143`` SIGTERM. ``ddkd-train`` first finishes
  the step, writes a checkpoint that ``--resume`` continues from exactly, and then exits with this code, so
  a scheduler can requeue the job; a second signal stops at once.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import traceback
from contextlib import contextmanager
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

DEBUG_ENV = "MDISTILLER_DDKD_DEBUG"
#: modules imported as plugins (``plugins.load_plugins`` adds them): a bug inside one is reported as theirs
PLUGIN_MODULES: List[str] = []
DEBUG_FLAG = "--debug"
USER_ERROR_EXIT = 2


class UserError(Exception):
    """A mistake the user can fix; the message says what is wrong and what to do.

    Only this type (and its subclasses) becomes the one ``error:`` line of a tool; raise it where the input
    is validated (config, data, checkpoint, device, disk). Anything else that reaches a tool is a bug and is
    shown with its traceback."""

    exit_code = USER_ERROR_EXIT
    prefix = "error: "


class ConfigError(UserError, ValueError):
    """A config file or value the toolbox cannot act on."""


class UnknownNameError(ConfigError, KeyError):
    """A name that no registry knows (method, dataset, model, zoo, update rule, suite); the message lists
    the valid ones."""


class DataFileError(UserError, ValueError):
    """A data file that is truncated, corrupt, incomplete or unsafe to read."""


class MissingInputError(UserError, FileNotFoundError):
    """A file or folder the user must provide (data set, teacher checkpoint, config, run folder) is absent."""


class OutputExistsError(UserError, FileExistsError):
    """The output would overwrite something that must be kept (a finished or running run)."""


class CheckpointReadError(UserError, ValueError):
    """A checkpoint that cannot be read (truncated, not a checkpoint, or holding unsafe objects)."""


class CheckpointMismatchError(UserError, RuntimeError):
    """A checkpoint whose tensors do not fit the model (wrong architecture, number of classes, ...)."""


class DeviceError(UserError, RuntimeError):
    """The device the config asks for is not there (CUDA without a GPU, a multi-process run a rule refuses)."""


class DiskError(UserError, OSError):
    """The file system refused a write or a read (full disk, quota, read-only, permissions)."""


class ResumeMismatchError(UserError):
    """``--resume`` with a config (or data) that would change the run."""


class OutputLockedError(UserError):
    """Another process is writing the same output folder."""


class PluginError(UserError, ImportError):
    """A plugin module could not be imported."""


class Stopped(UserError):
    """Not a mistake: training stopped on request (a signal); the message says how to continue."""

    prefix = "[mdistiller_ddkd] "

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def stop_exit_code(signum: int) -> int:
    """``128 + signum``: what a shell reports for a process ended by that signal (SIGTERM 143, SIGINT 130)."""
    return 128 + int(signum)


def signal_name(signum: int) -> str:
    """``SIGTERM`` for 15, ``signal 99`` for a number Python does not name."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class ImmediateStop(BaseException):
    """A second stop signal: the step in progress is abandoned (a BaseException, so no ``except Exception``
    swallows it; atomic writes still remove their temporary files)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped at once by a second {signal_name(signum)}: the step in progress is lost; files "
                         f"already written are intact (--resume continues from the last checkpoint)")
        self.signum = signum
        self.exit_code = stop_exit_code(signum)


#: file-system refusals: ``disk_errors`` turns them into ``DiskError``
_FILE_SYSTEM_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


def is_file_system_refusal(err: BaseException) -> bool:
    """True for an ``OSError`` meaning the disk is full, over quota, read-only or not writable."""
    return isinstance(err, OSError) and not isinstance(err, UserError) and err.errno in _FILE_SYSTEM_ERRNOS


def disk_error(err: OSError, what: str = "") -> DiskError:
    """The ``DiskError`` for a file-system refusal ``err`` while doing ``what`` (e.g. "writing results.json")."""
    doing = f" while {what}" if what else (f" at {err.filename}" if err.filename else "")
    return DiskError(err.errno, f"the file system refused{doing}: {err.strerror or err} — free disk space or fix "
                     f"the permissions, then run again; files already written are intact", err.filename)


@contextmanager
def disk_errors(what: str = "") -> Iterator[None]:
    """Within the block, a file-system refusal (full disk, quota, read-only, permissions) is a ``DiskError``:
    every write path of the toolbox runs inside one, so a full disk is one line, never a traceback."""
    try:
        yield
    except OSError as err:
        if is_file_system_refusal(err):
            raise disk_error(err, what) from None
        raise


def one_line(text: str) -> str:
    """``text`` with its lines joined by single spaces (multi-line messages stay informative on one line)."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _message(err: BaseException) -> str:
    if isinstance(err, KeyError) and err.args:  # KeyError's str() adds quotes
        return one_line(err.args[0])
    if isinstance(err, OSError) and err.strerror:  # OSError's str() adds "[Errno N]"
        return one_line(err.strerror)
    return one_line(str(err)) or type(err).__name__


def classify(err: BaseException) -> Optional[Tuple[int, str]]:
    """``(exit code, one line)`` for an exception a tool reports without a traceback: user errors, stop
    signals and Ctrl-C; None for anything else (a bug)."""
    if isinstance(err, UserError):
        return err.exit_code, err.prefix + _message(err)
    if isinstance(err, ImmediateStop):
        return err.exit_code, f"[mdistiller_ddkd] {err}"
    if isinstance(err, KeyboardInterrupt):
        return 130, ("[mdistiller_ddkd] interrupted (Ctrl-C); files already written are intact "
                     "(ddkd-train: --resume continues from the last checkpoint)")
    return None


#: where to report a bug
ISSUES_URL = "https://github.com/mdistiller-ddkd/mdistiller-ddkd/issues"
BUG_EXIT = 1


def _frame_modules(tb) -> List[str]:
    names = []
    while tb is not None:
        names.append(tb.tb_frame.f_globals.get("__name__", ""))
        tb = tb.tb_next
    return names


def bug_report_line(err: BaseException, plugin_modules: Sequence[str] = ()) -> str:
    """The line printed under the traceback of a bug: in the innermost plugin module on the traceback when
    there is one (``plugin_modules``: the modules loaded with ``--plugins`` and friends), else ours."""
    frames = _frame_modules(err.__traceback__)
    for name in reversed(frames):
        owner = next((m for m in plugin_modules if name == m or name.startswith(m + ".")), None)
        if owner is not None:
            return (f"bug: {type(err).__name__} in plugin module {owner!r} (its code is in the traceback above); "
                    f"report it to the plugin's authors — this is not a mistake in your config or data")
    return (f"bug: {type(err).__name__} inside mdistiller-ddkd (traceback above) — this is not a mistake in your "
            f"config or data; please report it with the traceback and the command at {ISSUES_URL}")


def debug_requested(argv: Sequence[str]) -> bool:
    return DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")


def run_main(body: Callable[[List[str]], int], argv: Optional[Sequence[str]] = None) -> int:
    """Run a tool's ``body(argv)``; user errors, interrupts and signals become one line and an exit code,
    any other exception (a bug) its traceback, a ``bug:`` line and exit code 1.

    ``--debug`` (anywhere in ``argv``; removed before ``body`` sees it) or ``MDISTILLER_DDKD_DEBUG=1`` lets
    every exception propagate with its traceback.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(args)
    args = [a for a in args if a != DEBUG_FLAG]
    try:
        return body(args)
    except SystemExit as err:  # argparse's --help and usage errors (already printed)
        return err.code if isinstance(err.code, int) else (0 if err.code is None else 1)
    except BaseException as err:  # bugs are re-raised below
        if debug:
            raise
        verdict = classify(err)
        if verdict is None:
            traceback.print_exc()
            print(bug_report_line(err, PLUGIN_MODULES), file=sys.stderr, flush=True)
            return BUG_EXIT
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
    "exit codes: 0 done; 1 a bug (traceback shown; please report it); 2 a mistake to fix (one 'error:' line "
    "says what and how); 3 non-finite loss (the last "
    "checkpoint is intact); 130 / 143 stopped by SIGINT / SIGTERM after writing a checkpoint that --resume "
    "continues from exactly (a second signal stops at once)."
)
