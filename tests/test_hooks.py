"""Hook specs tell the truth: each hook is documented with the factory signature the harness calls, and tested.

Every hook has a ``test_hook_<hook>`` below, which registers a recording factory through that hook, lets the
harness build it the way a run does, and checks the call against :data:`~mmea_bench.hookspecs.KINDS`.
"""

import ast
import inspect
from pathlib import Path

from mmea_bench import api, hookspecs
from mmea_bench.components import BuildContext
from mmea_bench.components.fusions import WeightedConcat
from mmea_bench.components.losses import MarginRankingLoss
from mmea_bench.components.pseudo_labelers import MutualNearestNeighbours
from mmea_bench.components.structure import GCNEncoder
from mmea_bench.data import split_links
from mmea_bench.data.loading import DatasetSpec, load_dataset
from mmea_bench.data.synthetic import generate_synthetic
from mmea_bench.executors.processes import WorkerProcesses
from mmea_bench.hookspecs import KINDS, hookimpl
from mmea_bench.methods import ComponentSpec, Method, configure, get_method
from mmea_bench.runner import train
from tests.conftest import TINY_SPEC

HOOKS = {name for name, value in vars(hookspecs).items() if hasattr(value, "mmea_bench_spec")}


def test_every_hook_states_the_factory_signature_the_harness_calls():
    assert HOOKS == {kind.hook for kind in KINDS.values()}
    for kind in KINDS.values():
        assert f"Factory: ``{kind.signature}``" in " ".join(getattr(hookspecs, kind.hook).__doc__.split())


def test_every_hook_has_a_test():
    tests = {
        node.name
        for path in Path(__file__).parent.glob("test_*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef)
    }
    untested = [hook for hook in sorted(HOOKS) if not any(name.startswith(f"test_hook_{hook}") for name in tests)]
    assert untested == []


class Recording:
    """A factory that records how it is called and delegates to ``factory`` (with its signature, so that its
    parameters stay the component's settings)."""

    def __init__(self, factory):
        self.factory, self.calls = factory, []
        self.__signature__ = inspect.signature(factory)

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return self.factory(*args, **kwargs)

    def assert_called_as_documented(self, kind: str, params: dict) -> None:
        """One call, exactly as ``KINDS[kind].signature`` says: the context first where it takes one, then the
        settings as keyword arguments."""
        (args, kwargs), documented = self.calls[0], KINDS[kind]
        assert len(self.calls) == 1
        assert len(args) == documented.takes_context
        assert all(isinstance(arg, BuildContext) for arg in args)
        assert kwargs == (params if documented.takes_params else {})


def register_recording(kind: str, recording: Recording, register_plugin) -> None:
    """Register ``recording`` as the component 'recorded' of ``kind``, through that kind's hook."""
    hook = KINDS[kind].hook
    implementation = hookimpl(specname=hook)(lambda self, register: register("recorded", recording))
    register_plugin(type("RecordingPlugin", (), {hook: implementation})(), f"recording-{kind}")


def train_tiny(tiny_kg, settings: dict[str, str]) -> None:
    """Two epochs of a tiny GCN method, changed by ``settings`` (``--set`` keys)."""
    method = Method(
        name="tiny",
        description="GCN, margin loss",
        encoders={"structure": ComponentSpec("gcn", {"dim": 8})},
        fusion=ComponentSpec("weighted-concat"),
        losses={"margin": ComponentSpec("margin")},
        training={"epochs": 2, "check_every": 1},
    )
    train(configure(method, settings), tiny_kg, split_links(tiny_kg.links, 0.3, 0.1, 0), device="cpu")


def test_hook_register_encoders(register_plugin, tiny_kg):
    recording = Recording(GCNEncoder)
    register_recording("encoder", recording, register_plugin)
    train_tiny(tiny_kg, {"encoder.extra": "recorded", "encoder.extra.dim": "4"})
    expected = {"dim": 4, "layers": 2, "dropout": 0.0, "hidden": 0, "adjacency": "plain", "weights": True}
    recording.assert_called_as_documented("encoder", expected | {"unit_input": False})


def test_hook_register_fusions(register_plugin, tiny_kg):
    recording = Recording(WeightedConcat)
    register_recording("fusion", recording, register_plugin)
    train_tiny(tiny_kg, {"fusion": "recorded", "fusion.normalize": "false"})
    recording.assert_called_as_documented(
        "fusion", {"normalize": False, "detach": False, "weights": "", "learned": True}
    )


def test_hook_register_losses(register_plugin, tiny_kg):
    recording = Recording(MarginRankingLoss)
    register_recording("loss", recording, register_plugin)
    train_tiny(tiny_kg, {"loss.extra": "recorded", "loss.extra.margin": "1.5"})
    expected = {"margin": 1.5, "negatives": 5, "embedding": "joint", "sampling": "alternate"}
    recording.assert_called_as_documented("loss", expected)


def test_hook_register_pseudo_labelers(register_plugin, tiny_kg):
    recording = Recording(MutualNearestNeighbours)
    register_recording("pseudo_labeler", recording, register_plugin)
    train_tiny(tiny_kg, {"pseudo_labeler": "recorded", "pseudo_labeler.window": "5"})
    expected = {"start": 0.5, "step": 5, "window": 5, "embedding": "joint", "checks": 0}
    recording.assert_called_as_documented("pseudo_labeler", expected)


def test_hook_register_methods(register_plugin):
    recording = Recording(lambda: Method("recorded", "a method", {}, ComponentSpec("weighted-concat"), {}))
    register_recording("method", recording, register_plugin)
    assert get_method("recorded").description == "a method"
    recording.assert_called_as_documented("method", {})


def test_hook_register_datasets(register_plugin):
    recording = Recording(generate_synthetic)
    register_recording("dataset", recording, register_plugin)
    kg = load_dataset(DatasetSpec.parse("recorded:entities=300,seed=2"))
    assert kg.name == "recorded:entities=300,seed=2"
    recording.assert_called_as_documented("dataset", {"entities": 300, "seed": 2})


def test_hook_register_executors(register_plugin, tracking_uri, experiment):
    recording = Recording(WorkerProcesses)
    register_recording("executor", recording, register_plugin)
    result = api.run(["gcn-align"], [TINY_SPEC], [0.3], epochs=2, tracking_uri=tracking_uri, experiment=experiment,
                     workers=None, executor="recorded:workers=1,threads=1")  # fmt: skip
    assert [record.status for record in result.runs] == ["FINISHED"]
    recording.assert_called_as_documented("executor", {"workers": 1, "threads": 1})
