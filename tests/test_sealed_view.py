"""Components cannot reach the validation or test links through anything the harness hands them.

A snooping plugin records every object its factories and lifecycle methods receive; after a run, everything
reachable from those objects (attributes, containers, closures, bound methods, the bases of tensor views) is searched
for the validation links, the test links, the gold links and any object that carries them.
"""

import types

import torch
from torch import Tensor

from mmea_bench.components import BuildContext, Encoder, Loss, PseudoLabeler, TrainingView
from mmea_bench.components.fusions import WeightedConcat
from mmea_bench.data import GraphPair, KGPair, SeedSplit, split_links
from mmea_bench.hookspecs import hookimpl
from mmea_bench.methods import ComponentSpec, Method, configure, get_method
from mmea_bench.runner import Training, train

ATOMS = (str, bytes, int, float, bool, complex, type(None), type, types.ModuleType, torch.dtype, torch.device)


def reachable(roots: list) -> list:
    """Every object reachable from ``roots`` through instance state, never through modules, classes or globals."""
    seen, found, stack = set(), [], list(roots)
    while stack:
        item = stack.pop()
        if isinstance(item, ATOMS) or id(item) in seen:
            continue
        seen.add(id(item))
        found.append(item)
        if isinstance(item, Tensor):
            stack += [item._base, item.grad if item.is_leaf else None]
            continue
        if isinstance(item, dict):
            stack += [*item.keys(), *item.values()]
        elif isinstance(item, list | tuple | set | frozenset):
            stack += list(item)
        stack += [getattr(item, name, None) for name in ("__self__", "__wrapped__", "__func__", "__defaults__")]
        stack += [cell.cell_contents for cell in getattr(item, "__closure__", None) or () if _filled(cell)]
        stack += list(vars(item).values()) if hasattr(item, "__dict__") else []
        for name in getattr(type(item), "__slots__", ()):
            stack.append(getattr(item, name, None))
    return found


def _filled(cell) -> bool:
    try:
        return cell.cell_contents is not cell
    except ValueError:
        return False


def leaks(objects: list, kg: KGPair, split: SeedSplit) -> list[str]:
    """What of the gold links the objects expose: link tensors, a gold-counterpart map, or a record holding them."""
    secrets = {"validation links": split.valid, "test links": split.test, "gold links": kg.links}
    found = []
    for item in reachable(objects):
        if isinstance(item, KGPair | SeedSplit):
            found.append(f"a {type(item).__name__}")
        elif isinstance(item, Tensor) and not item.is_floating_point() and item.numel():
            shape = tuple(item.shape)
            found += [f"{name} in a {shape} tensor" for name, links in secrets.items() if holds(item, links)]
    return found


def holds(tensor: Tensor, links: Tensor) -> bool:
    """Whether ``tensor`` lists every pair of ``links`` (as rows or columns) or maps every left entity to its gold
    counterpart."""
    tensor = tensor.detach().cpu()
    keys = set((links[:, 0] * 1_000_000 + links[:, 1]).tolist())
    for pairs in (tensor, tensor.T) if tensor.dim() == 2 else ():
        if pairs.shape[1] == 2 and keys <= set((pairs[:, 0] * 1_000_000 + pairs[:, 1]).tolist()):
            return True
    if tensor.dim() == 1 and len(tensor) > int(links[:, 0].max()):
        return bool((tensor[links[:, 0]] == links[:, 1]).all())
    return False


class Snoop:
    """Everything the snooping components were handed."""

    handed: list = []


class SnoopingEncoder(Encoder):
    def __init__(self, context: BuildContext, dim: int = 4):
        super().__init__()
        Snoop.handed.append(context)
        self.weight = torch.nn.Parameter(torch.randn(context.graphs.num_entity_total, dim))
        self.out_dim = dim

    def forward(self):
        return self.weight

    def setup(self, view):
        Snoop.handed.append(view)

    def after_step(self, view):
        Snoop.handed.append(view)


class SnoopingFusion(WeightedConcat):
    def __init__(self, context: BuildContext):
        super().__init__(context)
        Snoop.handed.append(context)

    def on_check(self, view):
        Snoop.handed.append(view)
        return {}


class SnoopingLoss(Loss):
    def __init__(self, context: BuildContext):
        super().__init__()
        Snoop.handed.append(context)

    def forward(self, batch):
        Snoop.handed.append(batch)
        return batch.embeddings["joint"][batch.pairs.flatten()].pow(2).mean()


class SnoopingLabeler(PseudoLabeler):
    def __init__(self, context: BuildContext):
        Snoop.handed.append(context)

    def propose(self, view):
        Snoop.handed.append(view)
        return None


class SnoopingPlugin:
    @hookimpl
    def register_encoders(self, register):
        register("snooping", SnoopingEncoder)

    @hookimpl
    def register_fusions(self, register):
        register("snooping", SnoopingFusion)

    @hookimpl
    def register_losses(self, register):
        register("snooping", SnoopingLoss)

    @hookimpl
    def register_pseudo_labelers(self, register):
        register("snooping", SnoopingLabeler)

    @hookimpl
    def register_methods(self, register):
        register(
            "snooping",
            lambda: Method(
                name="snooping",
                description="reads whatever it is handed",
                encoders={"structure": ComponentSpec("gcn", {"dim": 8}), "snoop": ComponentSpec("snooping")},
                fusion=ComponentSpec("snooping"),
                losses={"snooping": ComponentSpec("snooping"), "margin": ComponentSpec("margin")},
                pseudo_labeler=ComponentSpec("snooping"),
                training={"epochs": 4, "check_every": 2},
            ),
        )


def test_no_object_handed_to_a_component_reaches_validation_or_test_links(register_plugin, tiny_kg):
    register_plugin(SnoopingPlugin(), "snooping-plugin")
    Snoop.handed = []
    split = split_links(tiny_kg.links, 0.3, 0.1, seed=0)
    train(configure(get_method("snooping"), {}), tiny_kg, split, device="cpu")
    kinds = {type(item) for item in Snoop.handed}
    assert {BuildContext, TrainingView} <= kinds and len(Snoop.handed) > 10
    assert all(type(item.graphs) is GraphPair for item in Snoop.handed if isinstance(item, BuildContext))
    assert leaks(Snoop.handed, tiny_kg, split) == []


def test_the_search_finds_links_wherever_they_are_held(tiny_kg):
    """The check above can fail: the runner's own state, a link split and a gold map are all caught."""
    split = split_links(tiny_kg.links, 0.3, 0.1, seed=0)
    training = Training(configure(get_method("gcn-align"), {"epochs": "1"}), tiny_kg, split, 0, torch.device("cpu"))
    assert "a KGPair" in leaks([training], tiny_kg, split)
    names = ("validation links", "test links", "gold links")
    all_links = f"({len(tiny_kg.links)}, 2) tensor"
    assert leaks([{"seeds": split.train}], tiny_kg, split) == [f"{name} in a {all_links}" for name in names]
    gold_map = f"({tiny_kg.num_entities[0]},) tensor"
    gold_right = training.gold_right
    assert leaks([lambda: gold_right], tiny_kg, split) == [f"{name} in a {gold_map}" for name in names]
