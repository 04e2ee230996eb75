"""Registries: a name -> object table that each entry fills in where it is defined (MMEngine style).

An entry is either the object itself or a lazy ``"module:attribute"`` reference that is imported on
first use, so that listing the names (what the params schema does) imports nothing heavy. A registry
with an entry-point ``group`` also takes the entries that installed packages declare, e.g. in a
plugin's ``pyproject.toml``::

    [project.entry-points."hrnet.tasks"]
    keypoints3d = "my_package.task:Keypoints3DTask"

Built-in entries are registered in code, so a source checkout works without being installed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class RegistryError(KeyError):
    """An unknown name; the message names the registry and the valid names (one line)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def resolve(reference: str) -> Any:
    """The object a ``"module:attribute"`` reference names, imported."""
    module, _, attribute = reference.partition(":")
    target: Any = import_module(module)
    for part in filter(None, attribute.split(".")):
        target = getattr(target, part)
    return target


class Registry(Generic[T]):
    """Named entries of one ``kind`` ("task", "neck", "detector", ...)."""

    def __init__(self, kind: str, group: str | None = None) -> None:
        self.kind = kind
        self.group = group
        self._entries: dict[str, T | str] = {}
        self._plugins_read = False

    def register(self, name: str, entry: T | str | None = None) -> Any:
        """``register(name, obj_or_reference)``, or ``@register(name)`` above a class or function."""
        if entry is not None:
            self._add(name, entry)
            return entry

        def decorate(obj: T) -> T:
            self._add(name, obj)
            return obj

        return decorate

    def _add(self, name: str, entry: T | str) -> None:
        known = self._entries.get(name)
        if known is not None and known is not entry and not isinstance(known, str):
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry

    def _read_plugins(self) -> None:
        if self._plugins_read or self.group is None:
            return
        self._plugins_read = True
        for point in entry_points(group=self.group):
            self._entries.setdefault(point.name, point.value)

    def names(self) -> tuple[str, ...]:
        """Every registered name (plugins included), in registration order, importing nothing."""
        self._read_plugins()
        return tuple(self._entries)

    def get(self, name: str) -> T:
        """The entry called ``name``, imported on first use."""
        self._read_plugins()
        if name not in self._entries:
            raise RegistryError(f"unknown {self.kind} {name!r}; valid: {', '.join(self._entries)}")
        entry = self._entries[name]
        if isinstance(entry, str):
            entry = self._entries[name] = resolve(entry)
        return entry  # type: ignore[return-value]

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def items(self) -> Iterator[tuple[str, T]]:
        return ((name, self.get(name)) for name in self.names())

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Calls the entry ``name`` (a class or factory) with the arguments."""
        factory: Callable[..., Any] = self.get(name)  # type: ignore[assignment]
        return factory(*args, **kwargs)
