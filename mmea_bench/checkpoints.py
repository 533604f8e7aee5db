"""Checkpoints of a run in progress: its whole training state every few epochs, so that an interrupted run goes on
from its latest checkpoint instead of starting over, to the same result.

A checkpoint holds tensors and plain values only and is read with ``torch.load(weights_only=True)``: reading one runs
no code. It names the run it belongs to (a digest of the settings, seed, split, data and code), and is removed once
that run has finished.
"""

import hashlib
import json
import pickle
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmea_bench.data import KGPair, SeedSplit
from mmea_bench.data.cache import write_atomically
from mmea_bench.errors import UserError
from mmea_bench.identity import code_version, data_digest
from mmea_bench.methods import MethodConfig
from mmea_bench.plugins import PluginManager


def run_digest(config: MethodConfig, kg: KGPair, split: SeedSplit, seed: int, plugins: PluginManager) -> str:
    """What makes a run: every setting, the seed, the split's links, the dataset's content and the code."""
    what = {"config": asdict(config), "seed": seed, "data": data_digest(kg), "code": code_version(plugins)}
    digest = hashlib.sha256(json.dumps(what, sort_keys=True, default=repr).encode())
    for links in (split.train, split.valid, split.test):
        digest.update(links.cpu().numpy().tobytes())
    return digest.hexdigest()[:32]


def as_floats(metrics: dict[str, Any]) -> dict[str, float]:
    """Metrics as Python floats (a component may report NumPy or tensor scalars, which a checkpoint cannot hold)."""
    return {key: float(value) for key, value in metrics.items()}


def random_state(shuffle: torch.Generator, device: torch.device) -> dict[str, Any]:
    """The state of every random generator a run draws from (Python's, NumPy's, torch's, ``shuffle``), as tensors
    and plain values."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "shuffle": shuffle.get_state(),
    }


def restore_random_state(state: dict[str, Any], shuffle: torch.Generator, device: torch.device) -> None:
    random.setstate(state["python"])
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.cpu().numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and state["cuda"] is not None:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)
    shuffle.set_state(state["shuffle"].cpu())


@dataclass(frozen=True)
class Checkpointing:
    """Save a run's state to ``path`` every ``every`` epochs (0: never); with ``resume``, go on from the state saved
    there."""

    path: Path
    every: int
    resume: bool = False

    def save(self, state: dict[str, Any], run: str) -> None:
        write_atomically(self.path, lambda temporary: torch.save(state | {"run": run}, temporary))

    def load(self, run: str, device: torch.device) -> dict[str, Any] | None:
        """The state saved for ``run``, or None (no checkpoint there, or not resuming)."""
        if not self.resume or not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location=device, weights_only=True)
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as error:
            raise self.unusable(f"not a checkpoint ({type(error).__name__})") from None
        if not isinstance(state, dict) or "run" not in state:
            raise self.unusable("not a checkpoint")
        if state["run"] != run:
            raise self.unusable("saved by another run (other settings, seed, split, data or code)")
        return state

    def unusable(self, why: str) -> UserError:
        return UserError(f"checkpoint {self.path}: {why}; delete it to start the run afresh")

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
