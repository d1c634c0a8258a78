"""Registries: name -> factory. A plug-in is a factory whose keyword arguments are its config.

    @METHODS.register("lora")
    def lora(rank: int = 16) -> Method: ...

    METHODS.create("lora", rank=8)   # validates params, rejects unknown keys
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from pydantic import ConfigDict, ValidationError, validate_call

from ftguard.errors import ConfigError, validation_lines

T = TypeVar("T")
_ENTRY_POINTS_LOADED = False


def load_entry_points(group: str = "ftguard.plugins") -> None:
    """Import third-party plug-in modules once; importing them runs their `register` lines."""
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    for ep in entry_points(group=group):
        ep.load()


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._factories[name] = factory
            return factory

        return deco

    def names(self) -> list[str]:
        return sorted(self._factories)

    def get(self, name: str) -> Callable[..., T]:
        if name not in self._factories:
            load_entry_points()
        if name not in self._factories:
            close = difflib.get_close_matches(name, self._factories, n=3)
            hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise ConfigError(f"Unknown {self.kind} '{name}'.{hint} Available: {', '.join(self.names())}")
        return self._factories[name]

    def create(self, name: str, **params: Any) -> T:
        factory = self.get(name)
        try:
            validated = validate_call(factory, config=ConfigDict(arbitrary_types_allowed=True))
            return validated(**params)
        except ValidationError as e:
            lines = "\n".join(validation_lines(e, "parameter", "(params)"))
            raise ConfigError(f"Bad parameters for {self.kind} '{name}':\n{lines}") from None

    def describe(self, name: str) -> str:
        """First docstring line and the signature, for `ftguard list`."""
        factory = self.get(name)
        doc = (inspect.getdoc(factory) or "").split("\n", 1)[0]
        return f"{name}{inspect.signature(factory)}  {doc}".strip()


METHODS: Registry[Any] = Registry("method")
PROBES: Registry[Any] = Registry("probe")
JUDGES: Registry[Any] = Registry("judge")
