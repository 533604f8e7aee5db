"""Checkpoints of a run in progress: its whole training state every few epochs, so that an interrupted run goes on
from its latest checkpoint instead of starting over, to the same result.

A checkpoint holds tensors and plain values only and is read with ``torch.load(weights_only=True)``: reading one runs
no code. It names the run it belongs to (a digest of the configuration, seed and split), and is removed once that run
has finished.
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

from mmea_bench.data import SeedSplit
from mmea_bench.data.cache import write_atomically
from mmea_bench.errors import UserError
from mmea_bench.methods import MethodConfig


def run_digest(config: MethodConfig, seed: int, split: SeedSplit) -> str:
    """What makes a run: every setting, the seed and the split's links."""
    digest = hashlib.sha256(json.dumps({"config": asdict(config), "seed": seed}, sort_keys=True, default=repr).encode())
    for links in (split.train, split.valid, split.test):
        digest.update(links.cpu().numpy().tobytes())
    return digest.hexdigest()[:32]


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
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and state["cuda"] is not None:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)
    shuffle.set_state(state["shuffle"].cpu())


@dataclass(frozen=True)
class Checkpointing:
    """Save a run's state to ``path`` every ``every`` epochs; with ``resume``, continue from the state saved there."""

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
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise UserError(f"checkpoint {self.path}: cannot be read ({message[:200]})") from None
        if not isinstance(state, dict) or state.get("run") != run:
            raise UserError(f"checkpoint {self.path}: saved by another run (other settings, seed or split)")
        return state

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
