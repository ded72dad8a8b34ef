"""One explicit catalogue per kind of component (models, losses, datasets, ...).

The CLI's choices, the YAML validator and the Python API all read the same `Registry`, and the
tests are generated from it, so a component that is registered is offered, validated and tested
everywhere at once. Registration is explicit (a call in the package's ``__init__``), never by
import side effects scattered around or by ``getattr`` on strings.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from gankit.errors import GankitError, short_repr

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered component: its public name, the object, and one line of help."""

    name: str
    obj: T
    help: str


class Registry(Generic[T]):
    """A named catalogue of components of one kind."""

    def __init__(self, kind: str, plural: str | None = None) -> None:
        self.kind = kind
        self.plural = plural or kind + "s"
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, obj: T, help: str) -> T:
        """Add ``obj`` under ``name``; names are lowercase identifiers with dashes and unique."""
        if not name or name != name.lower() or " " in name:
            raise ValueError(f"{self.kind} name {name!r} must be lowercase with no spaces")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = Entry(name, obj, help)
        return obj

    def get(self, name: str) -> T:
        """The component called ``name``; a clear error listing the choices otherwise."""
        try:
            return self._entries[name].obj
        except KeyError:
            raise GankitError(
                f"unknown {self.kind} {short_repr(name)}; choose one of: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return list(self._entries)

    def entries(self) -> Iterator[Entry[T]]:
        return iter(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)
