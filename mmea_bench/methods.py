"""Methods as recipes of components, and their configuration: defaults, ``--set`` overrides, ``--without`` ablations.

A resolved configuration has one flat key per setting, the names ``--set`` takes and MLflow logs:

- training: ``epochs``, ``lr``, ``batch_size``, ... (the fields of :class:`TrainingConfig`)
- ``encoder.<modality>`` = component name, ``encoder.<modality>.<param>``
- ``fusion`` = component name, ``fusion.<param>``
- ``loss.<name>`` = component name, ``loss.<name>.weight``, ``loss.<name>.<param>``
- ``pseudo_labeler`` = component name or ``none``, ``pseudo_labeler.<param>``
"""

import copy
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from mmea_bench.errors import UserError, unknown_name
from mmea_bench.plugins import PluginManager, plugin_manager
from mmea_bench.settings import parse_value

NO_PSEUDO_LABELS = ("pseudo-labels", "pseudo-labeler", "pseudo_labeler")
"""Names ``--without`` accepts for dropping the pseudo-labeler."""
EQUAL_PROFILE = "equal"
"""The profile every method has: its recipe as it stands, one budget for all methods."""


@dataclass
class ComponentSpec:
    """A registered component by name, with hyperparameters (and, for a loss, its weight in the total)."""

    component: str
    params: dict[str, Any] = field(default_factory=dict)
    weight: float = 1.0


@dataclass
class TrainingConfig:
    """The runner's settings, shared by every method; a method recipe overrides the defaults it needs."""

    epochs: int = 200
    lr: float = 0.005
    weight_decay: float = 0.0
    optimizer: str = "adamw"
    """adamw, adam or sgd."""
    batch_size: int = 512
    """Training pairs per batch (0: all of them in one)."""
    check_every: int = 10
    """Epochs between validation checks."""
    patience: int = 0
    """Checks without a better validation score before training stops; 0 trains the whole budget."""
    select_metric: str = "mrr"
    """Validation metric (CSLS where ``csls_k > 0``, else cosine) that selects the checkpoint."""
    csls_k: int = 3
    eval_candidates: str = "all"
    """all: every entity of the other KG is a candidate; test: the other side of the evaluated links only."""
    lr_drop: float = 1.0
    """The learning rate is divided by this from ``lr_drop_at`` on (1: constant)."""
    lr_drop_at: float = 0.5
    """Where ``lr_drop`` applies, as a fraction of the epoch budget."""
    restore_best_at_drop: bool = False
    """Begin the second phase (at ``lr_drop_at``) from the checkpoint chosen on validation so far, not from the last
    epoch's weights (released MEAformer and UMAEA reload their best model, chosen there on test, when iterative
    learning begins)."""
    reset_optimizer: bool = False
    """Re-create the optimiser at every epoch from ``lr_drop_at`` on, its moment estimates lost at every step (a
    quirk of released MCLEA and PCMEA, whose AdamW updates become close to sign-SGD steps)."""
    schedule: str = "constant"
    """constant: ``lr``, then ``lr / lr_drop``; cosine: each of the two phases (before and from ``lr_drop_at``) a
    linear warm-up then a cosine decay, the second with a fresh optimiser (MEAformer)."""
    warmup: float = 0.15
    """cosine: the warm-up's share of each phase's cycle."""
    restart_span: float = 1.0
    """cosine: the second phase's cycle in multiples of its length (released MEAformer: 3, so that its rate has
    barely begun to fall when training ends)."""
    clip_grad: float = 0.0
    """Clip the gradient's total norm to this before every step (0: no clipping)."""
    amp: bool = False
    """bfloat16 autocast on CUDA."""
    audit_test_selection: bool = False
    """Also evaluate the test links at every check, to report what selecting on them would have given (never used to
    select or stop): logged as ``audit_*`` metrics for ``mmea-bench leaderboard --protocol``."""


@dataclass
class Method:
    """A named recipe: encoders by modality, a fusion, named losses, an optional pseudo-labeler, training defaults."""

    name: str
    description: str
    encoders: dict[str, ComponentSpec]
    fusion: ComponentSpec
    losses: dict[str, ComponentSpec]
    pseudo_labeler: ComponentSpec | None = None
    training: dict[str, Any] = field(default_factory=dict)
    reference: str = ""
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Named schedules (``--profile``) beside ``equal``: settings under their ``--set`` keys, applied before the
    user's own."""


@dataclass
class MethodConfig:
    """A method with every hyperparameter resolved: component defaults, then the recipe, then the user's settings."""

    method: str
    encoders: dict[str, ComponentSpec]
    fusion: ComponentSpec
    losses: dict[str, ComponentSpec]
    pseudo_labeler: ComponentSpec | None
    training: TrainingConfig
    without: tuple[str, ...] = ()
    profile: str = EQUAL_PROFILE

    @property
    def training_free(self) -> bool:
        """No loss: nothing to train (name-match); the model as built is evaluated."""
        return not self.losses

    def flat(self) -> dict[str, Any]:
        """Every setting under its ``--set`` key."""
        settings: dict[str, Any] = asdict(self.training)
        for modality, spec in self.encoders.items():
            settings[f"encoder.{modality}"] = spec.component
            settings.update({f"encoder.{modality}.{key}": value for key, value in spec.params.items()})
        settings["fusion"] = self.fusion.component
        settings.update({f"fusion.{key}": value for key, value in self.fusion.params.items()})
        for name, spec in self.losses.items():
            settings[f"loss.{name}"] = spec.component
            settings[f"loss.{name}.weight"] = spec.weight
            settings.update({f"loss.{name}.{key}": value for key, value in spec.params.items()})
        settings["pseudo_labeler"] = self.pseudo_labeler.component if self.pseudo_labeler else "none"
        if self.pseudo_labeler:
            settings.update({f"pseudo_labeler.{key}": value for key, value in self.pseudo_labeler.params.items()})
        return settings


def feature_fields(config: MethodConfig, plugins: PluginManager = plugin_manager) -> set[str]:
    """The pre-computed feature fields the encoders of ``config`` read (``components.reads_features``)."""
    from mmea_bench.components.base import declared_features

    registry = plugins.registry("encoder")
    return {
        field
        for spec in config.encoders.values()
        for field in declared_features(registry.get(spec.component).factory, spec.params)
    }


def get_method(name: str, plugins: PluginManager = plugin_manager) -> Method:
    """The registered method ``name``."""
    method = plugins.registry("method").get(name).build()
    return replace(method, name=name)


def _without(method: Method, without: tuple[str, ...]) -> Method:
    trained = bool(method.losses)
    for name in without:
        if name in method.encoders:
            del method.encoders[name]
        elif name in method.losses:
            del method.losses[name]
        elif name in NO_PSEUDO_LABELS and method.pseudo_labeler is not None:
            method.pseudo_labeler = None
        else:
            options = [*method.encoders, *method.losses, *(NO_PSEUDO_LABELS[:1] if method.pseudo_labeler else ())]
            raise unknown_name(f"--without part of method '{method.name}'", name, options)
    if not method.encoders:
        raise UserError(f"--without {', '.join(without)} leaves method '{method.name}' with no encoder")
    if trained and not method.losses:
        raise UserError(f"--without {', '.join(without)} leaves method '{method.name}' with no loss")
    return method


def _removed(key: str, without: tuple[str, ...]) -> str | None:
    """The ``--without`` part that setting ``key`` addresses, if any."""
    parts = key.split(".")
    if parts[0] in ("encoder", "loss") and len(parts) > 1 and parts[1] in without:
        return parts[1]
    if parts[0] == "pseudo_labeler":
        return next((name for name in without if name in NO_PSEUDO_LABELS), None)
    return None


def _select_components(method: Method, settings: dict[str, Any], plugins: PluginManager) -> Method:
    """Apply the settings that choose a component (they reset that component's parameters)."""
    for key, value in settings.items():
        parts = key.split(".")
        if parts[0] == "encoder" and len(parts) == 2:
            plugins.registry("encoder").get(value)
            method.encoders[parts[1]] = ComponentSpec(value)
        elif key == "fusion":
            plugins.registry("fusion").get(value)
            method.fusion = ComponentSpec(value)
        elif parts[0] == "loss" and len(parts) == 2:
            plugins.registry("loss").get(value)
            method.losses[parts[1]] = ComponentSpec(value)
        elif key == "pseudo_labeler":
            if value == "none":
                method.pseudo_labeler = None
            else:
                plugins.registry("pseudo_labeler").get(value)
                method.pseudo_labeler = ComponentSpec(value)
    return method


def _resolve(kind: str, spec: ComponentSpec, plugins: PluginManager, where: str) -> ComponentSpec:
    defaults = plugins.registry(kind).get(spec.component).defaults()
    unknown = set(spec.params) - set(defaults)
    if unknown:
        raise UserError(f"{where}: component '{spec.component}' has no parameter '{sorted(unknown)[0]}'")
    return ComponentSpec(spec.component, {**defaults, **spec.params}, spec.weight)


def configure(
    method: Method,
    settings: dict[str, Any] | None = None,
    without: tuple[str, ...] = (),
    plugins: PluginManager = plugin_manager,
    profile: str = EQUAL_PROFILE,
) -> MethodConfig:
    """Resolve ``method`` into a :class:`MethodConfig`, with a ``--profile``'s settings, then the user's ``--set``
    ``settings``, and ``--without`` ablations."""
    if profile != EQUAL_PROFILE and profile not in method.profiles:
        raise unknown_name(f"--profile of method '{method.name}'", profile, [EQUAL_PROFILE, *method.profiles])
    profile_settings, settings = method.profiles.get(profile, {}), dict(settings or {})
    without = tuple(without)
    for key in settings:
        if part := _removed(key, without):
            raise UserError(f"--set {key}: method '{method.name}' runs --without {part}")
    # a profile's settings for a part the user removed are moot; components are chosen before parts are removed
    settings = {key: value for key, value in profile_settings.items() if not _removed(key, without)} | settings
    recipe = _without(_select_components(copy.deepcopy(method), settings, plugins), without)
    where = f"method '{method.name}'"
    training_fields = {f.name for f in fields(TrainingConfig)}
    unknown_training = set(recipe.training) - training_fields
    if unknown_training:
        raise UserError(f"{where}: unknown training setting '{sorted(unknown_training)[0]}'")
    config = MethodConfig(
        method=method.name,
        encoders={m: _resolve("encoder", spec, plugins, where) for m, spec in recipe.encoders.items()},
        fusion=_resolve("fusion", recipe.fusion, plugins, where),
        losses={name: _resolve("loss", spec, plugins, where) for name, spec in recipe.losses.items()},
        pseudo_labeler=_resolve("pseudo_labeler", recipe.pseudo_labeler, plugins, where)
        if recipe.pseudo_labeler
        else None,
        training=TrainingConfig(**recipe.training),
        without=tuple(without),
        profile=profile,
    )
    current = config.flat()
    for key, text in settings.items():
        if key not in current:
            raise unknown_name(f"--set key for method '{method.name}'", key, current)
        _apply(config, key, parse_value(f"--set {key}", text, current[key]))
    if config.training_free:  # nothing to train, whatever the budget says
        config.training.epochs = 0
    return config


def _apply(config: MethodConfig, key: str, value: Any) -> None:
    parts = key.split(".")
    if len(parts) == 1 and key not in ("fusion", "pseudo_labeler"):
        setattr(config.training, key, value)
    elif parts[0] == "encoder" and len(parts) == 3:
        config.encoders[parts[1]].params[parts[2]] = value
    elif parts[0] == "fusion" and len(parts) == 2:
        config.fusion.params[parts[1]] = value
    elif parts[0] == "loss" and len(parts) == 3 and parts[2] == "weight":
        config.losses[parts[1]].weight = float(value)
    elif parts[0] == "loss" and len(parts) == 3:
        config.losses[parts[1]].params[parts[2]] = value
    elif parts[0] == "pseudo_labeler" and len(parts) == 2:
        config.pseudo_labeler.params[parts[1]] = value
