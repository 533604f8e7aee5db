"""Readers shared by the dataset layouts: text files, integer-id rows, ``id<TAB>name`` maps, attribute tables.

Every malformed line is a :class:`~mmea_bench.errors.UserError` naming ``file:line``.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from mmea_bench.errors import UserError


def read_text(path: Path) -> str:
    """A whole UTF-8 text file; a missing, empty or non-UTF-8 file is a UserError naming it (and the line)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except OSError as error:
        raise UserError(f"{path}: cannot read it ({error.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise UserError(
            f"{path}:{line}: byte 0x{data[error.start]:02x} is not UTF-8 (save the file as UTF-8)"
        ) from None
    if not text.strip():
        raise UserError(f"{path}: file is empty")
    return text.removeprefix("\ufeff")


def read_id_rows(path: Path, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``width`` whitespace-separated integer ids, (R, width), and each row's line number."""
    rows, numbers = [], []
    for number, line in enumerate(read_text(path).splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != width:
            raise UserError(f"{path}:{number}: expected {width} tab-separated ids, found {len(parts)} column(s)")
        rows.append(parts)
        numbers.append(number)
    try:
        array = np.array(rows, dtype=np.int64).reshape(-1, width)
    except ValueError:
        for parts, number in zip(rows, numbers, strict=True):
            for part in parts:
                if not part.lstrip("-").isdigit():
                    raise UserError(f"{path}:{number}: '{part}' is not an integer id") from None
        raise
    return array, np.asarray(numbers)


def read_id_names(path: Path) -> tuple[np.ndarray, list[str], np.ndarray]:
    """An ``id<TAB>name`` file: the ids, the names and each row's line number."""
    ids, names, numbers = [], [], []
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        key, _, name = line.strip().partition("\t") if "\t" in line else line.strip().partition(" ")
        if not key.lstrip("-").isdigit():
            raise UserError(f"{path}:{number}: expected 'id<TAB>uri', and '{key}' is not an integer id")
        ids.append(int(key))
        names.append(name.strip())
        numbers.append(number)
    return np.asarray(ids, dtype=np.int64), names, np.asarray(numbers)


def _starts(parts: list) -> list[tuple[int, tuple]]:
    """Each part of a concatenation with the position where it starts."""
    starts = np.cumsum([0] + [len(part[0]) for part in parts[:-1]])
    return list(zip(starts.tolist(), parts, strict=True))


@dataclass
class IdMap:
    """The file ids of one kind (entities or relations), in file order, mapped onto ``0..n-1``.

    ``sizes`` holds how many came from each file (KG1's, KG2's); ``names`` the URI of each.
    """

    kind: str
    ids: np.ndarray
    names: list[str]
    sizes: tuple[int, ...]
    files: tuple[str, ...]

    @classmethod
    def read(cls, kind: str, paths: Sequence[Path], shared: bool = False) -> "IdMap":
        """Read ``id<TAB>uri`` files in order; an id defined twice is an error naming both places. With ``shared``
        (one vocabulary numbered alike in every file), an id may recur with the same name; it counts once."""
        parts = [read_id_names(path) for path in paths]
        ids = np.concatenate([part[0] for part in parts])
        names = [name for part in parts for name in part[1]]
        origin = [(path, int(line)) for path, part in zip(paths, parts, strict=True) for line in part[2]]
        unique, first = np.unique(ids, return_index=True)
        repeated = np.setdiff1d(np.arange(len(ids)), first)
        for position in repeated.tolist():
            original = int(first[np.searchsorted(unique, ids[position])])
            if shared and names[original] == names[position]:
                continue
            where, line = origin[position]
            earlier = f"{origin[original][0].name}:{origin[original][1]}"
            detail = f"is '{names[position]}' here but '{names[original]}' at {earlier}" if shared else (
                f"is defined twice (first at {earlier})")  # fmt: skip
            raise UserError(f"{where}:{line}: {kind} id {ids[position]} {detail}")
        keep = np.sort(first)
        sizes = tuple(int(((keep >= start) & (keep < start + len(part[0]))).sum()) for start, part in _starts(parts))
        return cls(kind, ids[keep], [names[index] for index in keep], sizes, tuple(path.name for path in paths))

    @classmethod
    def of(cls, kind: str, ids: np.ndarray) -> "IdMap":
        """The sorted distinct ids found in data, for a layout without an id file (DBP15K has no relation files)."""
        distinct = np.unique(ids)
        return cls(kind, distinct, [str(value) for value in distinct], (len(distinct),), ())

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def _order(self) -> np.ndarray:
        return np.argsort(self.ids, kind="stable")

    def side_of(self, index: np.ndarray) -> np.ndarray:
        """Which file (0 = KG1, 1 = KG2) each mapped index came from."""
        return np.searchsorted(np.cumsum(self.sizes), index, side="right")

    def index(self, values: np.ndarray, path: Path, lines: np.ndarray, side: int | None = None) -> np.ndarray:
        """Map file ids onto ``0..n-1``; an unknown id (or one of the KG other than ``side``) names file:line."""
        order = self._order
        sorted_ids = self.ids[order]
        position = np.clip(np.searchsorted(sorted_ids, values), 0, len(sorted_ids) - 1)
        found = sorted_ids[position] == values
        mapped = order[position]
        bad = ~found
        if side is not None:
            bad |= found & (self.side_of(mapped) != side)
        if bad.any():
            first = int(np.flatnonzero(bad.ravel())[0])
            row, value = np.unravel_index(first, values.shape)[0], values.ravel()[first]
            allowed = self.files[side] if side is not None and self.files else " / ".join(self.files) or "the dataset"
            raise UserError(f"{path}:{lines[row]}: {self.kind} id {value} is not in {allowed}")
        return mapped


class AttributeTable:
    """Attribute rows (entity, attribute id) with their values, one vocabulary of attribute names for both KGs."""

    def __init__(self) -> None:
        self.vocabulary: dict[str, int] = {}
        self.rows: list[tuple[int, int]] = []
        self.values: list[str] = []

    def add(self, entity: int, name: str, value: str = "") -> None:
        self.rows.append((entity, self.vocabulary.setdefault(name, len(self.vocabulary))))
        self.values.append(value)

    def tensor(self) -> torch.Tensor | None:
        return torch.as_tensor(self.rows, dtype=torch.long).reshape(-1, 2) if self.rows else None
