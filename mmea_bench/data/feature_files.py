"""Per-entity feature files: ``.npy`` / ``.safetensors`` matrices with an id file, or (opted in) a pickle.

A pickle can run code when it is loaded: it is read only with ``allow_pickle`` (for the user's own files), and
then through an unpickler that constructs numpy arrays and nothing else.
"""

import logging
import pickle
from pathlib import Path

import numpy as np
import torch

from mmea_bench.data.readers import IdMap, read_id_rows
from mmea_bench.errors import UserError

logger = logging.getLogger(__name__)

IMAGE_MATRICES = ("image_features.npy", "image_features.safetensors")
IMAGE_PICKLE_PATTERN = "*_id_img_feature_dict.pkl"
PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}
"""What an image-feature pickle may construct: numpy arrays and scalars, nothing that runs other code."""


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to construct {module}.{name}")
        return super().find_class(module, name)


def _read_feature_pickle(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open("rb") as handle:
            table = _ArrayUnpickler(handle).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
        raise UserError(f"{path}: not an {{entity id: vector}} pickle of numpy arrays ({error})") from None
    if not isinstance(table, dict) or not table:
        raise UserError(f"{path}: expected a non-empty {{entity id: vector}} dict")
    if not all(isinstance(key, int | np.integer) for key in table):
        raise UserError(f"{path}: keys must be integer entity ids, found {type(next(iter(table))).__name__}")
    ids = np.array(list(table), dtype=np.int64)
    vectors = [np.asarray(vector, dtype=np.float32).ravel() for vector in table.values()]
    if len({len(vector) for vector in vectors}) > 1:
        raise UserError(f"{path}: feature vectors have different lengths {sorted({len(v) for v in vectors})}")
    return ids, np.stack(vectors)


def read_feature_matrix(path: Path) -> np.ndarray:
    """A (rows, d) matrix from ``.npy`` (no pickles) or ``.safetensors`` (its one tensor, or the one named features)."""
    try:
        if path.suffix == ".npy":
            matrix = np.load(path, allow_pickle=False)
        elif path.suffix == ".safetensors":
            from safetensors.numpy import load_file

            tensors = load_file(str(path))
            if "features" not in tensors and len(tensors) != 1:
                raise ValueError(f"expected one tensor, or one named 'features', found {len(tensors)}")
            matrix = tensors.get("features", next(iter(tensors.values())))
        else:
            raise UserError(f"{path}: feature files are .npy or .safetensors (or an opted-in .pkl)")
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except (ValueError, OSError) as error:
        raise UserError(f"{path}: cannot read a feature matrix ({error})") from None
    if matrix.ndim != 2:
        raise UserError(f"{path}: expected a 2-D matrix, got shape {tuple(matrix.shape)}")
    return matrix.astype(np.float32, copy=False)


def read_image_features(
    path: Path, entities: IdMap, ids_path: Path | None = None, allow_pickle: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Image features per entity, (N, d), and which entities have one, from a matrix + id file or a pickle."""
    if path.suffix == ".pkl":
        if not allow_pickle:
            raise UserError(f"{path}: loading a pickle runs code; pass allow_pickle=true to load a file you trust")
        ids, matrix = _read_feature_pickle(path)
        lines = np.array([f"entity id {value}" for value in ids])
    else:
        matrix = read_feature_matrix(path)
        ids_path = ids_path or path.with_suffix(".ids")
        rows, lines = read_id_rows(ids_path, 1)
        ids = rows[:, 0]
        if len(ids) != len(matrix):
            raise UserError(f"{ids_path}: {len(ids)} entity ids for the {len(matrix)} rows of {path.name}")
        path = ids_path
    unique, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        repeated = int(np.flatnonzero(ids == unique[counts > 1][0])[1])
        raise UserError(f"{path}:{lines[repeated]}: entity id {ids[repeated]} has a second feature vector")
    index = entities.index(ids, path, lines)
    features = torch.zeros(len(entities), matrix.shape[1])
    features[torch.as_tensor(index)] = torch.as_tensor(matrix)
    mask = torch.zeros(len(entities), dtype=torch.bool)
    mask[torch.as_tensor(index)] = True
    return features, mask


def found_image_features(directory: Path, allow_pickle: bool) -> Path | None:
    matrices = [directory / name for name in IMAGE_MATRICES if (directory / name).is_file()]
    pickles = sorted(directory.glob(IMAGE_PICKLE_PATTERN))
    if pickles and not allow_pickle and not matrices:
        logger.warning("%s: not loaded (pickles run code); pass allow_pickle=true to load a file you trust", pickles[0])
    return next(iter(matrices), pickles[0] if pickles and allow_pickle else None)
