"""Datasets by name: ``NAME`` or ``NAME:key=value,key=value`` (parameters of the dataset's factory)."""

from dataclasses import dataclass, field

from mmea_bench.data.kgpair import KGPair
from mmea_bench.errors import UserError, unknown_name
from mmea_bench.plugins import PluginManager, plugin_manager
from mmea_bench.settings import parse_assignments, parse_value


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset and the parameters to load it with."""

    name: str
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> "DatasetSpec":
        name, _, arguments = text.partition(":")
        items = [item for item in arguments.split(",") if item]
        return cls(name.strip(), parse_assignments(f"--dataset {text}:", items))

    @property
    def label(self) -> str:
        """The name results are shown and recorded under."""
        if not self.params:
            return self.name
        return self.name + ":" + ",".join(f"{key}={value}" for key, value in self.params.items())

    def typed_params(self, plugins: PluginManager = plugin_manager) -> dict[str, object]:
        """The parameters as the factory's types; unknown names are an error."""
        defaults = plugins.registry("dataset").get(self.name).defaults()
        typed = {}
        for key, text in self.params.items():
            if key not in defaults:
                raise unknown_name(f"parameter of dataset '{self.name}'", key, defaults)
            typed[key] = parse_value(f"--dataset {self.name}:{key}", text, defaults[key])
        return typed


def load_dataset(spec: DatasetSpec, plugins: PluginManager = plugin_manager) -> KGPair:
    """Load a registered dataset; its KGPair is named by the spec's label."""
    registration = plugins.registry("dataset").get(spec.name)
    try:
        kg = registration.factory(**spec.typed_params(plugins))
    except (ValueError, OSError) as error:
        raise UserError(f"dataset '{spec.label}': {error}") from None
    kg.name = spec.label
    return kg
