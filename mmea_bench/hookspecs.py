"""Hook specifications: what a plugin can contribute to mmea-bench.

Every hook receives a ``register`` callable. A plugin calls it once per component it contributes::

    @hookimpl
    def register_losses(register):
        register("my-loss", MyLoss, description="What it does, in one line.")

``register(name, factory, description="")`` takes a unique name within the component kind, and a factory (usually
a class) whose keyword arguments, with their defaults, are the component's hyperparameters: they are what
``--set`` may override and what is logged to MLflow. Names are lower-case words joined by hyphens. Registering a
name that another plugin already registered for the same kind is an error that names both plugins.

How the harness calls each kind's factory is stated once, in :data:`KINDS`; each hook's documentation repeats it
word for word (a test checks both).

Hooks are called once, lazily, the first time a registry of that kind is needed, never at import time.
"""

from dataclasses import dataclass

import pluggy

hookspec = pluggy.HookspecMarker("mmea_bench")
hookimpl = pluggy.HookimplMarker("mmea_bench")


@dataclass(frozen=True)
class ComponentKind:
    """A kind of registered component: the hook that registers it and how the harness calls its factories."""

    name: str
    hook: str
    takes_context: bool
    """The factory's first positional argument is a :class:`~mmea_bench.components.BuildContext`."""
    takes_params: bool
    """The factory's keyword arguments are settings (``--set`` keys, dataset parameters)."""
    returns: str

    @property
    def signature(self) -> str:
        """The factory's call as the harness makes it, e.g. ``factory(context: BuildContext, **params) -> Loss``."""
        arguments = ["context: BuildContext"] * self.takes_context + ["**params"] * self.takes_params
        return f"factory({', '.join(arguments)}) -> {self.returns}"

    @property
    def label(self) -> str:
        """The kind as messages name it: ``pseudo-labeler``."""
        return self.name.replace("_", "-")


KINDS = {
    kind.name: kind
    for kind in (
        ComponentKind("encoder", "register_encoders", True, True, "Encoder"),
        ComponentKind("fusion", "register_fusions", True, True, "Fusion"),
        ComponentKind("loss", "register_losses", True, True, "Loss"),
        ComponentKind("pseudo_labeler", "register_pseudo_labelers", True, True, "PseudoLabeler"),
        ComponentKind("method", "register_methods", False, False, "Method"),
        ComponentKind("dataset", "register_datasets", False, True, "KGPair"),
        ComponentKind("executor", "register_executors", False, True, "Executor"),
    )
}
"""Every component kind by name: the one statement of each factory's signature."""


@hookspec
def register_encoders(register):
    """Register entity encoders: one modality (structure, relations, attributes, names, images, ...) to vectors.

    Factory: ``factory(context: BuildContext, **params) -> Encoder``. ``context.graphs`` holds both graphs (no
    links). The :class:`~mmea_bench.components.Encoder`'s ``forward()`` gives one row per entity of both graphs. The
    factory raises :class:`~mmea_bench.components.ModalityUnavailable` when the dataset lacks the modality: the
    method then runs without it, and says so.
    """


@hookspec
def register_fusions(register):
    """Register fusions: a dict of per-modality entity matrices to one joint matrix.

    Factory: ``factory(context: BuildContext, **params) -> Fusion``. ``context.modality_dims`` holds
    ``{modality: dim}`` of the encoders built.
    """


@hookspec
def register_losses(register):
    """Register training losses.

    Factory: ``factory(context: BuildContext, **params) -> Loss``. ``context.modality_dims`` and
    ``context.joint_dim`` hold the encoders' and the fusion's output sizes. Called once per batch of aligned pairs
    with a :class:`~mmea_bench.components.Batch`, the loss returns a scalar tensor or a dict of named scalar tensors
    (summed). A loss may hold parameters (they are trained) and state (through the lifecycle methods of
    :class:`~mmea_bench.components.Component`).
    """


@hookspec
def register_pseudo_labelers(register):
    """Register pseudo-labelers: they propose aligned pairs during training, which join the training pairs.

    Factory: ``factory(context: BuildContext, **params) -> PseudoLabeler``. The
    :class:`~mmea_bench.components.PseudoLabeler` is asked after every epoch (``propose``) for its current set of
    accepted pairs.
    """


@hookspec
def register_methods(register):
    """Register methods: named recipes of components and their default hyperparameters.

    Factory: ``factory() -> Method``, a :class:`~mmea_bench.methods.Method`.
    """


@hookspec
def register_datasets(register):
    """Register datasets by name.

    Factory: ``factory(**params) -> KGPair``, a :class:`~mmea_bench.data.KGPair`. Loading may take time; listing
    names never loads anything. A :class:`~mmea_bench.data.benchmarks.Benchmark` is such a factory that also
    declares its folders and download sources, so ``datasets``, ``datasets info`` and ``datasets download`` serve it.
    """


@hookspec
def register_executors(register):
    """Register executors: where a sweep's cells train (this process, worker processes, a cluster).

    Factory: ``factory(**params) -> Executor``, an :class:`~mmea_bench.executors.Executor` (``--executor
    NAME:key=value,...`` sets the parameters). It trains the cells it is given and reports each one's start,
    progress and end; the sweep records the runs.
    """
