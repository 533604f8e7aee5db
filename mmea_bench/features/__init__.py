"""Entity features from pre-trained models (transformers): text embeddings and image embeddings, cached on disk.

The caches are attached to a dataset when it loads (:class:`~mmea_bench.data.cache.FeatureCache`), where the
``name``, ``text-plm`` and ``image`` encoders consume them. This module imports nothing heavy.
"""

from collections.abc import Callable

TEXT_FIELDS = ("name", "relation_text", "attribute_text", "attribute_value_text")
"""The text fields of :mod:`~mmea_bench.features.text`."""

Advance = Callable[[int], None]
"""Told how many more items were embedded (drives a progress bar)."""
