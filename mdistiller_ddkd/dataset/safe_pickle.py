"""Reading data pickles without running code.

``pickle.load`` calls whatever callable the file names, so a crafted data file can run anything. Data
files (the CIFAR ``cifar-100-python/{train,test,meta}`` batches) hold only dicts, lists, tuples, strings,
bytes, numbers and numpy arrays; ``load_data_pickle`` admits exactly those — the pickle opcodes build the
containers and scalars themselves, and the only callables a file may name are numpy's array and dtype
reconstructors (and ``_codecs.encode``, which protocol-2 pickles use for bytes). Anything else is refused
unread with a one-line ``DataFileError`` naming the file, whether or not its md5 sum was checked.
"""

from __future__ import annotations

import os
import pickle
from typing import Any, FrozenSet, Tuple

from ..errors import DataFileError

#: (module, name) of every callable a data pickle may name; numpy moved its core to ``numpy._core`` in 2.0
ALLOWED_GLOBALS: FrozenSet[Tuple[str, str]] = frozenset(
    [(core + ".multiarray", name) for core in ("numpy.core", "numpy._core") for name in ("_reconstruct", "scalar")]
    + [(core + ".numeric", "_frombuffer") for core in ("numpy.core", "numpy._core")]
    + [("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")]
)


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a callable outside ``ALLOWED_GLOBALS``."""


class DataUnpickler(pickle.Unpickler):
    """An unpickler that resolves only ``ALLOWED_GLOBALS`` (and no persistent ids, as ``pickle``'s default)."""

    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafePickleError(f"{module}.{name}")
        return super().find_class(module, name)


#: what reading a truncated or garbage pickle raises
_CORRUPT = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            UnicodeDecodeError, MemoryError, OverflowError)


def load_data_pickle(path: str, what: str = "data file") -> Any:
    """The object pickled in ``path`` (Python 2 pickles decode as latin-1, as torchvision reads CIFAR);
    a file that names a foreign callable or is not a readable pickle raises ``DataFileError``."""
    where = os.path.abspath(path)
    try:
        with open(path, "rb") as f:
            return DataUnpickler(f, encoding="latin1").load()
    except UnsafePickleError as err:
        raise DataFileError(
            f"{what} {where} refers to {err}, which a {what} never holds (only dicts, lists, strings, numbers and "
            f"numpy arrays): refused unread, the file may be malicious — replace it with the official file"
        ) from None
    except _CORRUPT as err:
        raise DataFileError(
            f"cannot read {what} {where}: not a readable pickle, probably truncated or corrupt "
            f"({type(err).__name__}: {str(err)[:120] or 'no detail'}) — download or copy it again"
        ) from None
