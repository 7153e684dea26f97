"""The exceptions a caller can act on, and the exit code each one ends a tool with (``ExitCode``).

A ``UserError`` is a mistake the user can fix: a tool reports it in one ``error:`` line (``cli/runner.py``).
A stop by signal (``Stopped``, ``ImmediateStop``) is not a mistake. Anything else reaching a tool is a bug.
This is the bottom layer of the package: it imports nothing of it.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Every tool's exit codes, each with its meaning (``--help`` and docs/reliability.md show this table)."""

    def __new__(cls, value: int, meaning: str) -> "ExitCode":
        member = int.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        return member

    DONE = 0, "done"
    BUG = 1, "a bug (in mdistiller-ddkd or a plugin): its traceback, then one `bug:` line saying where to report it"
    USER_ERROR = 2, "a mistake to fix (a value, file, folder, device, a full disk): one `error:` line says what and how"
    NON_FINITE_LOSS = 3, "training stopped on a non-finite loss; the last checkpoint is intact"
    RUNS_FAILED = 4, "ddkd-suite: some runs of the suite failed (their logs say why)"
    DOCS_STALE = 5, "make_docs --check: generated blocks of the docs are stale (listed)"
    DOWNLOAD_FAILED = 6, "ddkd-download-teachers: the download failed or its archive was refused (the line says why)"
    SIGINT = 130, "stopped by SIGINT (Ctrl-C) after writing a checkpoint that --resume continues from exactly"
    SIGTERM = 143, "stopped by SIGTERM after writing a checkpoint that --resume continues from exactly"


class UserError(Exception):
    """A mistake the user can fix; the message says what is wrong and what to do.

    Only this type (and its subclasses) becomes the one ``error:`` line of a tool; raise it where the input
    is validated (config, data, checkpoint, device, disk)."""

    exit_code = ExitCode.USER_ERROR


class ConfigError(UserError, ValueError):
    """A config file or value the toolbox cannot act on (a device that is not there, a ``--resume`` whose
    config would change the run among them)."""


class UnknownNameError(ConfigError, KeyError):
    """A name that no registry knows (method, dataset, model, zoo, update rule, suite); the message lists
    the valid ones."""


class DataFileError(UserError, ValueError):
    """A data file that is truncated, corrupt, incomplete or unsafe to read."""


class MissingInputError(UserError, FileNotFoundError):
    """A file or folder the user must provide (data set, teacher checkpoint, config, run folder) is absent."""


class OutputInUseError(UserError, FileExistsError):
    """The output folder belongs to another run: one to keep (pass ``--resume``) or one being written now."""


class CheckpointReadError(UserError, ValueError):
    """A checkpoint that cannot be read (truncated, not a checkpoint, or holding unsafe objects)."""


class CheckpointMismatchError(UserError, RuntimeError):
    """A checkpoint whose tensors do not fit the model (wrong architecture, number of classes, ...)."""


class DiskError(UserError, OSError):
    """The file system refused a write or a read (full disk, quota, read-only, permissions)."""


class PluginError(UserError, ImportError):
    """A plugin module could not be imported."""


class NonFiniteLossError(UserError, RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is left intact."""

    exit_code = ExitCode.NON_FINITE_LOSS


class Stopped(Exception):
    """Not a mistake: training stopped on a signal after its checkpoint; the message says how to continue.
    ``exit_code`` is ``128 + signal`` (``signals.stop_exit_code``), so a scheduler can requeue the job."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ImmediateStop(BaseException):
    """A second stop signal: the step in progress is abandoned (a BaseException, so no ``except Exception``
    swallows it; atomic writes still remove their temporary files)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
