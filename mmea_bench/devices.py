"""The device a run trains on: choosing it, deterministic kernels on the CPU, and the peak memory a run used."""

import re
import resource
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from mmea_bench.errors import UserError


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:i``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name}: expected auto, cpu, cuda or cuda:INDEX") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine")
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"--device {name}: expected auto, cpu, cuda or cuda:INDEX")
    return device


@contextmanager
def deterministic_on_cpu(device: torch.device) -> Iterator[None]:
    """Deterministic kernels on the CPU (some default ones accumulate in a thread-dependent order), restored after.

    Deterministic mode also fills every new uninitialised tensor (a debugging aid against reading it): one more pass
    over memory per allocation, which this switches off; no kernel here reads memory it has not written.
    """
    previous = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    filling = torch.utils.deterministic.fill_uninitialized_memory
    _use_deterministic_algorithms(device.type == "cpu" or previous[0], warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        yield
    finally:
        _use_deterministic_algorithms(previous[0], warn_only=previous[1])
        torch.utils.deterministic.fill_uninitialized_memory = filling


def _use_deterministic_algorithms(mode: bool, warn_only: bool) -> None:
    """``torch.use_deterministic_algorithms`` without its import of the compiler's settings (over a second, in every
    process; nothing here is compiled)."""
    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None:
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)
    else:
        setter(mode, warn_only=warn_only)


def peak_memory_mb(device: torch.device) -> float:
    """The peak memory of this run on ``device``: allocated GPU memory on CUDA, else resident memory."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return peak_resident_mb()


def peak_resident_mb() -> float:
    """This process's peak resident memory in MB: Linux's ``VmHWM``, which starts afresh in a new process (the
    ``ru_maxrss`` of ``getrusage`` carries a parent's peak over fork and exec); ``ru_maxrss`` where there is none."""
    try:
        found = re.search(r"^VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    except OSError:
        found = None
    kilobytes = int(found.group(1)) if found else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kilobytes / 1024
