"""Registries: name -> factory. A plug-in is a factory whose keyword arguments are its config.

    @METHODS.register("lora")
    def lora(rank: int = 16) -> Method: ...

    METHODS.create("lora", rank=8)   # validates params, rejects unknown keys
    METHODS.where("lora")            # the file that defines it

A registration may carry declarations about the plug-in that hold whatever its parameters are, read
without building it: a probe declares the items it reserves (`PROBES.register("dolly_qa",
reserves=...)`, see ftguard/pools.py). `load_plugins()` imports the built-in plug-ins and any third-party
ones (entry point group `ftguard.plugins`).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
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


BUILTIN_PLUGINS = ("ftguard.judges", "ftguard.methods", "ftguard.probes")  # packages whose import registers


def load_plugins() -> None:
    """Register every built-in method, probe and judge, then third-party plug-ins (by module name, as entry
    points are: the registry never imports a plug-in module statically, so plug-ins may import it freely)."""
    for module in BUILTIN_PLUGINS:
        importlib.import_module(module)
    load_entry_points()


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}
        self._info: dict[str, dict[str, Any]] = {}

    def register(self, name: str, **info: Any) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._factories[name] = factory
            self._info[name] = info
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

    def info(self, name: str) -> dict[str, Any]:
        """What the registration declared about `name` (empty when nothing)."""
        self.get(name)
        return self._info[name]

    def create(self, name: str, **params: Any) -> T:
        factory = self.get(name)
        try:
            validated = validate_call(factory, config=ConfigDict(arbitrary_types_allowed=True))
            return validated(**params)
        except ValidationError as e:
            lines = "\n".join(validation_lines(e, "parameter", "(params)"))
            raise ConfigError(f"Bad parameters for {self.kind} '{name}':\n{lines}") from None

    def where(self, name: str) -> str:
        """The source file that defines `name`, relative to the ftguard package when inside it."""
        path = Path(inspect.getsourcefile(inspect.unwrap(self.get(name))) or "?")
        root = Path(__file__).resolve().parent.parent
        return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)

    def describe(self, name: str) -> str:
        """First docstring line, the signature and the defining file, for `ftguard list`."""
        factory = self.get(name)
        doc = (inspect.getdoc(factory) or "").split("\n", 1)[0]
        return f"{name}{inspect.signature(factory)}  {doc}  [{self.where(name)}]".strip()


METHODS: Registry[Any] = Registry("method")
PROBES: Registry[Any] = Registry("probe")
JUDGES: Registry[Any] = Registry("judge")
