"""What makes two runs the same: digests of the code that trains them and of the data they train on."""

import hashlib
import sys
import uuid
from importlib.metadata import version
from pathlib import Path
from types import ModuleType

import torch

from mmea_bench.data import KGPair
from mmea_bench.plugins import PluginManager


def code_version(plugins: PluginManager) -> str:
    """A digest of the source of every loaded plugin (the whole top-level package of each, the core's included) and
    of torch's version; a plugin whose source cannot be read (defined in ``python -c``) makes it unique to this
    process, so that no later sweep takes such runs for its own."""
    digest = hashlib.sha256(f"torch {version('torch')}".encode())
    for root in sorted({_root_name(plugin) for plugin in plugins.loaded()}):
        digest.update(_source(root).encode() + b"\0")
    return digest.hexdigest()[:16]


def _root_name(plugin: object) -> str:
    """The name of the top-level package (or module) that defines ``plugin``."""
    if isinstance(plugin, ModuleType):
        name = plugin.__name__
    else:
        name = plugin.__module__ if isinstance(plugin, type) else type(plugin).__module__
    return name.split(".")[0]


def _source(name: str) -> str:
    """A digest of the source files of the loaded top-level package (or module) ``name``."""
    root = sys.modules.get(name)
    folders = [Path(folder) for folder in getattr(root, "__path__", [])]
    files = [(folder, path) for folder in folders for path in sorted(folder.rglob("*.py"))]
    if not folders and getattr(root, "__file__", None):
        files = [(Path(root.__file__).parent, Path(root.__file__))]
    if not files:
        return f"unreadable {name} {uuid.uuid4()}"
    digest = hashlib.sha256()
    for folder, path in files:
        digest.update(f"{path.relative_to(folder)}".encode() + b"\0" + path.read_bytes())
    return f"{name} {digest.hexdigest()}"


def data_digest(kg: KGPair) -> str:
    """A digest of a loaded dataset's content: its graphs, attributes, links, names and attached features."""
    digest = hashlib.sha256()
    for name, value in sorted(vars(kg).items()):
        if name in ("name", "description"):
            continue
        parts = value.items() if isinstance(value, dict) else [(name, value)]
        for key, part in sorted(parts, key=lambda item: item[0]):
            data = part.contiguous().numpy().tobytes() if isinstance(part, torch.Tensor) else repr(part).encode()
            digest.update(f"{name}.{key}".encode() + b"\0" + data)
    return digest.hexdigest()[:16]
