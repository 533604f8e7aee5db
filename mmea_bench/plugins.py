"""The plugin manager: loads plugins (built-in modules and the ``mmea_bench`` entry points) into name registries."""

import importlib
import inspect
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import EntryPoint, EntryPoints, entry_points
from typing import Any

import pluggy

from mmea_bench import hookspecs
from mmea_bench.errors import PluginError, unknown_name
from mmea_bench.hookspecs import KINDS

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
    "mmea_bench.executors",
)
"""The core's own components, always loaded; methods live in plugins and arrive through entry points."""


@dataclass(frozen=True)
class Registration:
    """One registered component: its kind, name, factory, the plugin it came from and a one-line description."""

    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    description: str = ""

    def build(self, context: Any = None, params: dict[str, Any] | None = None) -> Any:
        """Call the factory as :data:`~mmea_bench.hookspecs.KINDS` states for its kind."""
        kind = KINDS[self.kind]
        return self.factory(*[context] * kind.takes_context, **(params or {}) if kind.takes_params else {})

    def defaults(self) -> dict[str, Any]:
        """The factory's keyword arguments and their defaults: the component's hyperparameters."""
        parameters = list(inspect.signature(self.factory).parameters.values())
        if KINDS[self.kind].takes_context:
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
            raise unknown_name(KINDS[self.kind].label, name, self._registrations) from None

    def names(self) -> list[str]:
        return sorted(self._registrations)

    def __contains__(self, name: str) -> bool:
        return name in self._registrations

    def __iter__(self) -> Iterator[Registration]:
        return iter(self._registrations[name] for name in self.names())


def _registrar(kind: str, plugin: str, found: dict[str, Registration]) -> Callable[..., None]:
    """The ``register`` callable handed to one plugin's hook: records what it contributes, refuses duplicates."""
    label = KINDS[kind].label

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


def _origin(entry_point: EntryPoint) -> str:
    """Where an entry point comes from: ``distribution (module)``."""
    distribution = entry_point.dist.name if entry_point.dist else "an unknown distribution"
    return f"{distribution} ({entry_point.value})"


class PluginManager:
    """Loads plugins lazily on first use and builds one :class:`Registry` per component kind."""

    def __init__(self, load_entry_points: bool = True):
        self._pm = self._new_manager()
        self._load_entry_points = load_entry_points
        self._loaded = False
        self._registries: dict[str, Registry] = {}
        self._local: set[str] = set()

    @staticmethod
    def _new_manager() -> pluggy.PluginManager:
        manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
        manager.add_hookspecs(hookspecs)
        return manager

    def _ensure_loaded(self) -> None:
        """Register the built-in plugins and the entry points, once; a failure leaves nothing half-loaded."""
        if self._loaded:
            return
        try:
            for module_name in DEFAULT_PLUGINS:
                plugin = importlib.import_module(module_name)
                self._pm.register(plugin, name=module_name.replace("mmea_bench.", "core.", 1))
            if self._load_entry_points:
                self._register_entry_points()
        except BaseException:
            self._pm = self._new_manager()
            raise
        self._loaded = True

    def _register_entry_points(self) -> None:
        found = entry_points(group=ENTRY_POINT_GROUP)
        for entry_point in self._wanted(found):
            twins = [_origin(other) for other in found if other.name == entry_point.name]
            if len(twins) > 1:
                raise PluginError(f"plugin name '{entry_point.name}' is declared twice: by {' and by '.join(twins)}")
            try:
                plugin = entry_point.load()
            except Exception as error:
                raise PluginError(
                    f"plugin '{entry_point.name}' ({entry_point.value}) failed to load: {type(error).__name__}: {error}"
                ) from error
            self._pm.register(plugin, name=entry_point.name)

    @staticmethod
    def _wanted(found: EntryPoints) -> list[EntryPoint]:
        """The entry points ``$MMEA_BENCH_PLUGINS`` selects (all when it is unset); a name it lists that no installed
        package declares is an error."""
        wanted = os.environ.get(PLUGINS_ENV)
        if wanted is None:
            return list(found)
        names = {name.strip() for name in wanted.split(",") if name.strip()}
        for name in sorted(names - set(found.names)):
            raise PluginError(f"{PLUGINS_ENV}: {unknown_name('plugin', name, found.names)}")
        return [entry_point for entry_point in found if entry_point.name in names]

    def register(self, plugin: object, name: str | None = None) -> str:
        """Register a plugin object (a module or an instance with hook implementations) programmatically.

        Such a plugin lives in this process only: worker processes load the built-in and installed plugins."""
        self._ensure_loaded()
        registered = self._pm.register(plugin, name=name)
        self._registries.clear()
        self._local.add(registered)
        return registered

    def is_local(self, plugin: str) -> bool:
        """Whether ``plugin`` was registered programmatically in this process (not built in, not installed)."""
        return plugin in self._local

    def unregister(self, plugin: object = None, name: str | None = None) -> None:
        """Remove a plugin registered earlier (by object or name)."""
        name = name or self._pm.get_name(plugin)
        self._pm.unregister(plugin, name=name)
        self._local.discard(name)
        self._registries.clear()

    def registry(self, kind: str) -> Registry:
        """The registry of one component kind (``encoder``, ``fusion``, ``loss``, ...), built on first use."""
        if kind not in KINDS:
            raise unknown_name("component kind", kind, KINDS)
        self._ensure_loaded()
        if kind not in self._registries:
            self._registries[kind] = Registry(kind, self._collect(kind))
        return self._registries[kind]

    def _collect(self, kind: str) -> dict[str, Registration]:
        found: dict[str, Registration] = {}
        hook = KINDS[kind].hook
        for impl in getattr(self._pm.hook, hook).get_hookimpls():
            arguments = {"register": _registrar(kind, impl.plugin_name, found)} if "register" in impl.argnames else {}
            try:
                impl.function(**arguments)
            except PluginError:
                raise
            except Exception as error:
                message = f"{type(error).__name__}: {error}"
                raise PluginError(f"plugin '{impl.plugin_name}' failed in {hook}: {message}") from error
        return found

    def loaded(self) -> list[object]:
        """Every loaded plugin object (a module, or an instance with hook implementations)."""
        self._ensure_loaded()
        return [plugin for _, plugin in self._pm.list_name_plugin()]

    def plugins(self) -> dict[str, dict[str, list[str]]]:
        """Every loaded plugin with the component names it contributes, by kind."""
        self._ensure_loaded()
        contributions: dict[str, dict[str, list[str]]] = {name: {} for name, _ in self._pm.list_name_plugin()}
        for kind in KINDS:
            for registration in self.registry(kind):
                contributions[registration.plugin].setdefault(kind, []).append(registration.name)
        return contributions


plugin_manager = PluginManager()
"""The process-wide plugin manager (the one piece of global state)."""
