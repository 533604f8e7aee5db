"""Hook specifications: what a plugin can contribute to mmea-bench.

Every hook receives a ``register`` callable. A plugin calls it once per component it contributes::

    @hookimpl
    def register_losses(register):
        register("my-loss", MyLoss, description="What it does, in one line.")

``register(name, factory, description="")`` takes a unique name within the component kind, and a factory (usually
a class) whose keyword arguments, with their defaults, are the component's hyperparameters: they are what
``--set`` may override and what is logged to MLflow. Names are lower-case words joined by hyphens. Registering a
name that another plugin already registered for the same kind is an error that names both plugins.

Hooks are called once, lazily, the first time a registry of that kind is needed, never at import time.
"""

import pluggy

hookspec = pluggy.HookspecMarker("mmea_bench")
hookimpl = pluggy.HookimplMarker("mmea_bench")


@hookspec
def register_encoders(register):
    """Register entity encoders: one modality (structure, relations, attributes, names, images, ...) to vectors.

    The factory is called as ``factory(kg, **params)`` with the loaded :class:`~mmea_bench.data.KGPair`, and returns
    an :class:`~mmea_bench.components.Encoder` whose ``forward()`` gives one row per entity of both graphs. It
    raises :class:`~mmea_bench.components.ModalityUnavailable` when the dataset lacks the modality: the method then
    runs without it, and says so.
    """


@hookspec
def register_fusions(register):
    """Register fusions: a dict of per-modality entity matrices to one joint matrix.

    The factory is called as ``factory(modality_dims, **params)`` with ``{modality: dim}`` and returns a
    :class:`~mmea_bench.components.Fusion`.
    """


@hookspec
def register_losses(register):
    """Register training losses.

    The factory is called as ``factory(**params)`` and returns a :class:`~mmea_bench.components.Loss`: called once
    per batch of aligned pairs with a :class:`~mmea_bench.components.Batch`, it returns a scalar tensor or a dict of
    named scalar tensors (summed). A loss may hold parameters (they are trained) and state (it lives in the loss,
    through the lifecycle methods of :class:`~mmea_bench.components.Component`).
    """


@hookspec
def register_pseudo_labelers(register):
    """Register pseudo-labelers: they propose aligned pairs during training, which join the training pairs.

    The factory is called as ``factory(**params)`` and returns a :class:`~mmea_bench.components.PseudoLabeler`,
    asked at every epoch (``propose``) for its current set of accepted pairs.
    """


@hookspec
def register_methods(register):
    """Register methods: named recipes of components and their default hyperparameters.

    The factory is called with no arguments and returns a :class:`~mmea_bench.methods.Method`.
    """


@hookspec
def register_datasets(register):
    """Register datasets by name.

    The factory is called as ``factory(**params)`` and returns a :class:`~mmea_bench.data.KGPair`. Loading may take
    time; listing names never loads anything.
    """
