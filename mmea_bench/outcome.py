"""What a finished run hands back: its test metrics, what it cost, and the rank of every test link."""

from dataclasses import dataclass, field

from torch import Tensor

from mmea_bench.data import KGPair


@dataclass
class RunOutcome:
    """A finished run: test metrics of the checkpoint chosen on validation, and what it cost."""

    test: dict[str, float]
    best_valid: dict[str, float]
    best_epoch: int
    epochs_trained: int
    skipped: dict[str, str]
    modalities: list[str]
    seconds: float
    peak_memory_mb: float
    device: str
    resumed_epoch: int = 0
    """The epoch of the checkpoint it went on from (0: trained from the start)."""
    diverged_epoch: int = 0
    """The check at which validation scores turned NaN and training stopped (0: it did not diverge)."""
    test_ranks: dict[str, list] = field(default_factory=dict)
    """Columns of one row per test link: its entities (``left``, ``right``: as the dataset's files name them, else
    their ids within each KG) and the rank of the counterpart by each ``{scorer}_{direction}``."""


def rank_table(links: Tensor, ranks: dict[str, Tensor], kg: KGPair) -> dict[str, list]:
    """``links``' entities and their counterparts' ``ranks`` as columns (see :attr:`RunOutcome.test_ranks`)."""
    uris, n1 = kg.entity_uris, kg.num_entities[0]
    left, right = links[:, 0].tolist(), links[:, 1].tolist()
    if uris:
        entities = {"left": [uris[i] for i in left], "right": [uris[i] for i in right]}
    else:
        entities = {"left": left, "right": [i - n1 for i in right]}
    return entities | {key: found.tolist() for key, found in ranks.items()}
