"""The plugin manager: loads plugins (built-in modules and the ``mmea_bench`` entry points) into name registries."""

import importlib
import inspect
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

import pluggy

from mmea_bench import hookspecs
from mmea_bench.errors import PluginError, unknown_name

ENTRY_POINT_GROUP = "mmea_bench"
PLUGINS_ENV = "MMEA_BENCH_PLUGINS"
"""Comma-separated entry-point plugin names to load (all when unset): pins what a benchmark run may use."""

DEFAULT_PLUGINS = (
    "mmea_bench.components.encoders",
    "mmea_bench.components.fusions",
    "mmea_bench.components.losses",
    "mmea_bench.components.pseudo_labelers",
    "mmea_bench.data.synthetic",
    "mmea_bench.data.benchmarks",
)
"""The core's own components, always loaded; methods live in plugins and arrive through entry points."""

HOOKS = {
    "encoder": "register_encoders",
    "fusion": "register_fusions",
    "loss": "register_losses",
    "pseudo_labeler": "register_pseudo_labelers",
    "method": "register_methods",
    "dataset": "register_datasets",
}
"""Component kind -> the hook that registers it."""

CONTEXT_ARGUMENT = {"encoder", "fusion", "loss", "pseudo_labeler"}
"""Kinds whose factory takes a build context as first positional argument (not a hyperparameter)."""


@dataclass(frozen=True)
class Registration:
    """One registered component: its kind, name, factory, the plugin it came from and a one-line description."""

    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    description: str = ""

    def defaults(self) -> dict[str, Any]:
        """The factory's keyword arguments and their defaults: the component's hyperparameters."""
        parameters = list(inspect.signature(self.factory).parameters.values())
        if self.kind in CONTEXT_ARGUMENT:
            parameters = parameters[1:]
        return {
            p.name: (None if p.default is inspect.Parameter.empty else p.default)
            for p in parameters
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }


class Registry:
    """All components of one kind, by name."""

    def __init__(self, kind: str, registrations: dict[str, Registration]):
        self.kind = kind
        self._registrations = registrations

    def get(self, name: str) -> Registration:
        try:
            return self._registrations[name]
        except KeyError:
            raise unknown_name(self.kind.replace("_", "-"), name, self._registrations) from None

    def names(self) -> list[str]:
        return sorted(self._registrations)

    def __contains__(self, name: str) -> bool:
        return name in self._registrations

    def __iter__(self) -> Iterator[Registration]:
        return iter(self._registrations[name] for name in self.names())


def _registrar(kind: str, plugin: str, found: dict[str, Registration]) -> Callable[..., None]:
    """The ``register`` callable handed to one plugin's hook: records what it contributes, refuses duplicates."""
    label = kind.replace("_", "-")

    def register(name: str, factory: Callable[..., Any], description: str = "") -> None:
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin '{plugin}' registered a {label} without a name")
        if not callable(factory):
            raise PluginError(f"plugin '{plugin}' registered {label} '{name}' with a factory that is not callable")
        if name in found:
            raise PluginError(
                f"{label} '{name}' is registered twice: by plugin '{found[name].plugin}' and by plugin '{plugin}'"
            )
        found[name] = Registration(kind, name, factory, plugin, description)

    return register


class PluginManager:
    """Loads plugins lazily on first use and builds one :class:`Registry` per component kind."""

    def __init__(self, load_entry_points: bool = True):
        self._pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self._pm.add_hookspecs(hookspecs)
        self._load_entry_points = load_entry_points
        self._loaded = False
        self._registries: dict[str, Registry] = {}

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module_name in DEFAULT_PLUGINS:
            self._pm.register(importlib.import_module(module_name), name=module_name.replace("mmea_bench.", "core.", 1))
        if self._load_entry_points:
            self._register_entry_points()

    def _register_entry_points(self) -> None:
        wanted = os.environ.get(PLUGINS_ENV)
        allowed = None if wanted is None else {name.strip() for name in wanted.split(",") if name.strip()}
        for entry_point in entry_points(group=ENTRY_POINT_GROUP):
            if allowed is not None and entry_point.name not in allowed:
                continue
            if self._pm.get_plugin(entry_point.name) is not None:
                continue
            try:
                plugin = entry_point.load()
            except Exception as error:
                raise PluginError(
                    f"plugin '{entry_point.name}' ({entry_point.value}) failed to load: {type(error).__name__}: {error}"
                ) from error
            self._pm.register(plugin, name=entry_point.name)

    def register(self, plugin: object, name: str | None = None) -> str:
        """Register a plugin object (a module or an instance with hook implementations) programmatically."""
        self._ensure_loaded()
        registered = self._pm.register(plugin, name=name)
        self._registries.clear()
        return registered

    def unregister(self, plugin: object = None, name: str | None = None) -> None:
        """Remove a plugin registered earlier (by object or name)."""
        self._pm.unregister(plugin, name=name)
        self._registries.clear()

    def registry(self, kind: str) -> Registry:
        """The registry of one component kind (``encoder``, ``fusion``, ``loss``, ...), built on first use."""
        if kind not in HOOKS:
            raise unknown_name("component kind", kind, HOOKS)
        self._ensure_loaded()
        if kind not in self._registries:
            self._registries[kind] = Registry(kind, self._collect(kind))
        return self._registries[kind]

    def _collect(self, kind: str) -> dict[str, Registration]:
        found: dict[str, Registration] = {}
        for impl in getattr(self._pm.hook, HOOKS[kind]).get_hookimpls():
            arguments = {"register": _registrar(kind, impl.plugin_name, found)} if "register" in impl.argnames else {}
            try:
                impl.function(**arguments)
            except PluginError:
                raise
            except Exception as error:
                message = f"{type(error).__name__}: {error}"
                raise PluginError(f"plugin '{impl.plugin_name}' failed in {HOOKS[kind]}: {message}") from error
        return found

    def plugins(self) -> dict[str, dict[str, list[str]]]:
        """Every loaded plugin with the component names it contributes, by kind."""
        self._ensure_loaded()
        contributions: dict[str, dict[str, list[str]]] = {name: {} for name, _ in self._pm.list_name_plugin()}
        for kind in HOOKS:
            for registration in self.registry(kind):
                contributions[registration.plugin].setdefault(kind, []).append(registration.name)
        return contributions


plugin_manager = PluginManager()
"""The process-wide plugin manager (the one piece of global state)."""
