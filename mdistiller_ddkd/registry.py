"""One registry type behind every registry of the toolbox (methods, datasets, model zoos and their models,
update rules, trainer hooks, export formats, generated doc blocks): one check for a name registered twice,
one "unknown name" message listing what is registered (plugins included), one way to list the entries."""

from __future__ import annotations

from typing import Callable, Dict, Iterator, List, Mapping, TypeVar, Union, overload

from .errors import PluginError, UnknownNameError

T = TypeVar("T")
_MISSING = object()


def _describe(obj: object) -> str:
    """``module.Name`` of a class or function, else its repr: what the "registered twice" message names."""
    name = getattr(obj, "__qualname__", None)
    return f"{getattr(obj, '__module__', '?')}.{name}" if name else repr(obj)


class Registry(Mapping[str, T]):
    """Names -> objects of one ``kind`` (e.g. ``"method (DISTILLER.TYPE)"``, said in its messages), read as
    a mapping in registration order. ``normalize`` maps a name to its key (``str.upper``: names are
    case-insensitive); re-registering an equal object under a name is harmless (a module imported twice)."""

    def __init__(self, kind: str, normalize: Callable[[str], str] = str) -> None:
        self.kind = kind
        self._normalize = normalize
        self._entries: Dict[str, T] = {}

    def key(self, name: str) -> str:
        """The key ``name`` is registered and looked up under."""
        return self._normalize(str(name))

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, obj: T) -> T: ...

    def register(self, name: str, obj: object = _MISSING) -> Union[T, Callable[[T], T]]:
        """Register ``obj`` as ``name`` and return it; without ``obj``, a decorator that does so. A name that
        already holds another object is a plugin author's mistake (``PluginError``: one line, exit code 2)."""
        if obj is _MISSING:
            return lambda target: self.register(name, target)
        key = self.key(name)
        held = self._entries.get(key, _MISSING)
        if held is not _MISSING and held is not obj and held != obj:
            raise PluginError(f"{self.kind} {key!r} is registered twice ({_describe(held)} and {_describe(obj)}); "
                              f"register the new one under another name")
        self._entries[key] = obj  # type: ignore[assignment]
        return obj  # type: ignore[return-value]

    def unregister(self, name: str) -> None:
        """Remove ``name`` if it is registered (what restores a registry after a test's plugin)."""
        self._entries.pop(self.key(name), None)

    def unknown(self, name: object) -> UnknownNameError:
        """The one error for a name this registry lacks: what was asked and every valid name."""
        valid = ", ".join(self.names()) or "(none registered)"
        return UnknownNameError(f"unknown {self.kind} {name!r}; valid: {valid}")

    def get(self, name: str, default: object = _MISSING):  # type: ignore[override]
        """The object registered as ``name``; an unknown name raises :meth:`unknown` unless a ``default``
        is given (then returned, as ``dict.get``)."""
        entry = self._entries.get(self.key(name), _MISSING)
        if entry is not _MISSING:
            return entry
        if default is not _MISSING:
            return default
        raise self.unknown(name)

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.key(name) in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> List[str]:
        """Every registered name, sorted: the valid choices wherever the user names one."""
        return sorted(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"

