"""A name -> factory table. Each kind of thing (dataset, model, attack, method) has one."""
from __future__ import annotations

import difflib
from typing import Callable, Dict, Generic, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """Bad user input: the message names the field and what is allowed."""


def suggest(name: str, known) -> str:
    close = difflib.get_close_matches(str(name), list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: Dict[str, Callable[..., T]] = {}

    def register(self, name: str):
        def add(factory):
            if name in self._entries:
                raise KeyError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = factory
            return factory
        return add

    def get(self, name: str) -> Callable[..., T]:
        if name not in self._entries:
            raise ConfigError(
                f"{self.kind}: unknown name {name!r}{suggest(name, self._entries)}; "
                f"known: {', '.join(self.names())}")
        return self._entries[name]

    def names(self):
        return sorted(self._entries)

    def __contains__(self, name):
        return name in self._entries
