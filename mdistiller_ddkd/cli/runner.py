"""Running a command-line tool: a user's mistake is one line on stderr and its ``ExitCode``, never a traceback
(unless ``--debug`` or ``MDISTILLER_DDKD_DEBUG=1`` asks for one); anything else is a bug, shown with its
traceback and a line saying whose bug it is (a plugin's or ours)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
from typing import Callable, List, Optional, Sequence, Tuple

from ..errors import ExitCode, ImmediateStop, Stopped, UserError
from ..plugins import loaded_plugin_modules
from ..signals import stop_exit_code

DEBUG_ENV = "MDISTILLER_DDKD_DEBUG"
DEBUG_FLAG = "--debug"
#: where to report a bug
ISSUES_URL = "https://github.com/mdistiller-ddkd/mdistiller-ddkd/issues"
#: the line a stop by signal starts with (not an error)
STOP_PREFIX = "[mdistiller_ddkd] "

EXIT_CODES_HELP = "exit codes: " + "; ".join(f"{int(code)} {code.meaning}" for code in ExitCode) + "."


def one_line(text: object) -> str:
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
        return err.exit_code, "error: " + _message(err)
    if isinstance(err, (Stopped, ImmediateStop)):
        return err.exit_code, STOP_PREFIX + _message(err)
    if isinstance(err, KeyboardInterrupt):
        return stop_exit_code(signal.SIGINT), (STOP_PREFIX + "interrupted (Ctrl-C); files already written are "
                                                "intact (ddkd-train: --resume continues from the last checkpoint)")
    return None


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
    any other exception (a bug) its traceback, a ``bug:`` line and ``ExitCode.BUG``.

    ``--debug`` (anywhere in ``argv``; removed before ``body`` sees it) or ``MDISTILLER_DDKD_DEBUG=1`` lets
    every exception propagate with its traceback.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(args)
    args = [a for a in args if a != DEBUG_FLAG]
    try:
        return body(args)
    except SystemExit as err:  # argparse's --help and usage errors (already printed)
        return err.code if isinstance(err.code, int) else (0 if err.code is None else ExitCode.USER_ERROR)
    except BaseException as err:  # bugs are re-raised below
        if debug:
            raise
        verdict = classify(err)
        if verdict is None:
            traceback.print_exc()
            print(bug_report_line(err, loaded_plugin_modules()), file=sys.stderr, flush=True)
            return ExitCode.BUG
        code, line = verdict
        print(line, file=sys.stderr, flush=True)
        return code


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (``prog: error: ... (see --help)``) with exit code 2."""

    def error(self, message: str):  # argparse's contract: print and exit
        print(f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)", file=sys.stderr, flush=True)
        raise SystemExit(ExitCode.USER_ERROR)


def add_debug_argument(parser: argparse.ArgumentParser) -> None:
    """Document ``--debug`` (``run_main`` handles it wherever it appears)."""
    parser.add_argument(DEBUG_FLAG, action="store_true",
                        help=f"show the traceback of an error instead of one line (also: {DEBUG_ENV}=1)")
