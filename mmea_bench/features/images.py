"""Image embeddings with a pre-trained vision model (CLIP, ViT, ... through transformers), one per entity.

Images are matched to entities by an index: lines ``ENTITY<TAB>IMAGE``, where ENTITY is the entity's identifier
in the dataset's files (its URI; for a dataset without URIs, its number) and IMAGE a path relative to the image
folder, with or without its extension (MMKB's ``*_ImageIndex.txt`` files are such indexes). An entity with several
images gets their mean; images missing from the folder are counted and skipped.
"""

import logging
from collections import defaultdict
from pathlib import Path

import torch
from torch import Tensor

from mmea_bench.data.kgpair import KGPair
from mmea_bench.data.readers import read_text
from mmea_bench.errors import UserError
from mmea_bench.features import Advance
from mmea_bench.features.pooling import mean_per_entity
from mmea_bench.features.text import load_pretrained, model_key

logger = logging.getLogger(__name__)

DEFAULT_INDEX = "index.tsv"


def _resolve_image(folder: Path, name: str) -> Path | None:
    candidate = folder / name
    if candidate.is_file():
        return candidate
    return next((path for path in sorted(candidate.parent.glob(candidate.name + ".*")) if path.is_file()), None)


def read_image_index(kg: KGPair, folder: Path, indexes: list[Path]) -> dict[int, list[Path]]:
    """Entity -> its image files, from index files (default: ``index.tsv`` in ``folder``)."""
    if not indexes:
        if not (folder / DEFAULT_INDEX).is_file():
            raise UserError(f"{folder}: no {DEFAULT_INDEX}; give --index FILE (lines: entity<TAB>image)")
        indexes = [folder / DEFAULT_INDEX]
    keys = kg.entity_uris or [str(index) for index in range(kg.num_entity_total)]
    entity_of: dict[str, list[int]] = defaultdict(list)
    for index, key in enumerate(keys):
        entity_of[key.strip("<>")].append(index)
    images: dict[int, list[Path]] = defaultdict(list)
    unknown = missing = 0
    for path in indexes:
        for number, line in enumerate(read_text(path).splitlines(), 1):
            if not line.strip():
                continue
            key, _, name = line.strip().partition("\t")
            if not name.strip():
                raise UserError(f"{path}:{number}: expected 'entity<TAB>image', found one column")
            entities = entity_of.get(key.strip().strip("<>"))
            image = _resolve_image(folder, name.strip())
            if entities is None:
                unknown += 1
            elif image is None:
                missing += 1
            else:
                for entity in entities:
                    images[entity].append(image)
    if unknown or missing:
        logger.warning(
            "image index: %d lines name no entity of %s, %d images are not in %s", unknown, kg.name, missing, folder
        )
    if not images:
        raise UserError(f"no image in {folder} matches an entity of {kg.name} through {', '.join(map(str, indexes))}")
    return images


class ImageEncoder:
    """A Hugging Face vision model: ``get_image_features`` where it has one (CLIP), else its pooled or first token."""

    def __init__(self, model: str, batch_size: int = 32, device: str = "cpu"):
        from transformers import AutoImageProcessor, AutoModel

        self.key = model_key(model)
        self.processor, self.model = load_pretrained(model, (AutoImageProcessor, AutoModel))
        self.model.eval().to(device)
        self.batch_size, self.device = batch_size, device

    def _open(self, path: Path):
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as image:
                return image.convert("RGB")
        except (UnidentifiedImageError, OSError) as error:
            raise UserError(f"{path}: cannot read the image ({error})") from None

    @torch.inference_mode()
    def encode(self, paths: list[Path], advance: Advance | None = None) -> Tensor:
        """Embed image files in batches, in order."""
        outputs = []
        for start in range(0, len(paths), self.batch_size):
            batch = [self._open(path) for path in paths[start : start + self.batch_size]]
            pixels = self.processor(images=batch, return_tensors="pt")["pixel_values"].to(self.device)
            if hasattr(self.model, "get_image_features"):
                embedded = self.model.get_image_features(pixel_values=pixels)
                embedded = getattr(embedded, "pooler_output", embedded)
            else:
                output = self.model(pixel_values=pixels)
                pooled = getattr(output, "pooler_output", None)
                embedded = pooled if pooled is not None else output.last_hidden_state[:, 0]
            outputs.append(embedded.reshape(len(batch), -1).float().cpu())
            if advance:
                advance(len(batch))
        return torch.cat(outputs)


def image_features(
    kg: KGPair, images: dict[int, list[Path]], encoder: ImageEncoder, advance: Advance | None = None
) -> tuple[Tensor, Tensor]:
    """Per-entity mean image embedding, (N, d), and which entities have an image."""
    entities = [entity for entity, paths in images.items() for _ in paths]
    embedded = encoder.encode([path for paths in images.values() for path in paths], advance)
    rows = torch.arange(len(entities))
    return mean_per_entity(embedded, torch.as_tensor(entities, dtype=torch.long), rows, kg.num_entity_total)
