"""UMAEA's missing-modality completion (CMMI): a variational auto-encoder that makes an image vector from an
entity's other modalities, standing in for the image an entity lacks, trained in two stages after the main schedule
(in one round or two).
"""

from dataclasses import replace

import torch
from torch import Tensor, nn

from mmea_bench.components import Batch, BuildContext, Loss, Stage, TrainingStages, TrainingView
from mmea_bench.components.fusions import ModalityAttention
from mmea_bench.components.losses import confident_info_nce
from mmea_bench.components.similarity import KLFromTarget, batch_cosines, row_distributions

VIRTUAL = "completion:virtual"
"""Every entity's generated vector of the completed modality, unit length, (N, d)."""
SOURCES = "completion:sources"
"""The generator's input: the other modalities concatenated, unit length, (N, D)."""
RECONSTRUCTION = "completion:reconstruction"
"""The auto-encoder's reconstruction of its input, unit length, (N, D)."""
DIVERGENCE = "completion:divergence"
"""Each entity's KL divergence from the prior over the input's size, (N, 1): its mean is the released term."""
COMPLETION, REFINEMENT, MAIN = "completion", "refinement", "main"


class CompletionAutoEncoder(nn.Module):
    """The released generator: encoder Linear(D -> hidden), ReLU, Linear(hidden -> 2 latent) giving the mean and log
    variance; decoder Linear(latent -> hidden), ReLU, Linear(hidden -> D), ReLU. As released, the training sample is
    noise + mean x std (not mean + noise x std) and the vector used for evaluation mean x std."""

    def __init__(self, sources: int, hidden: int, latent: int):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(sources, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent))
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, sources), nn.ReLU())

    def forward(self, inputs: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(sample, mean vector, reconstruction of the sample, per-row KL divergence / D as (N, 1))."""
        mean, log_variance = self.encoder(inputs).chunk(2, dim=1)
        scaled = mean * torch.exp(0.5 * log_variance)
        sample = torch.randn_like(scaled) + scaled
        divergence = 0.5 * (log_variance.exp() + mean**2 - 1 - log_variance).sum(1, keepdim=True) / inputs.shape[1]
        return sample, scaled, self.decoder(sample), divergence


class ModalityCompletion(ModalityAttention, TrainingStages):
    """MEAformer's fusion (UMAEA's settings) that, once its stages begin, replaces the ``modality`` vector of every
    entity without that feature by one generated from the entity's other modalities (unit length; a sample while
    training, the mean vector for evaluation), before the transformer: every embedding and loss then sees the
    completed vectors, offered again under the modality's name, with the generator's vectors (:data:`VIRTUAL`,
    :data:`SOURCES`, :data:`RECONSTRUCTION`, :data:`DIVERGENCE`) for :class:`CompletionLoss`.

    Two stages follow the main schedule, each a share of the budget with a fresh AdamW and its own rate and weight
    decay, from the checkpoint chosen on validation where it came from the part just ended: ``completion`` trains
    the generator only; ``refinement`` trains everything but the generator and the ``refine_frozen`` encoders.
    With ``rounds=2`` (released ``run_umaea_012012.sh``) the budget holds the main schedule and the two stages
    twice, each share a share of its round: the second round returns to the ``main`` stage (everything trains, no
    completion, pseudo-labels proposed afresh, ``again_lr`` with a cosine cycle ``again_cycle`` times its length),
    then the two stages again at ``again_rate`` times their rates.
    Whether the completion is on is part of the model's state, so a checkpoint chosen
    before the stages evaluates without it.
    """

    def __init__(
        self,
        context: BuildContext,
        heads: int = 1,
        layers: int = 1,
        feed_forward: int = 0,
        dropout: float = 0.1,
        global_weights: bool = False,
        modality: str = "image",
        completion_share: float = 0.125,
        completion_lr: float = 4e-3,
        completion_weight_decay: float = 3.0,
        refine_share: float = 0.25,
        refine_lr: float = 2e-4,
        refine_weight_decay: float = 1e-4,
        refine_frozen: str = "structure,relation,attribute",
        rounds: int = 1,
        again_lr: float = 1e-4,
        again_weight_decay: float = 1e-4,
        again_cycle: float = 3.0,
        again_rate: float = 0.2,
    ):
        super().__init__(context, heads, layers, feed_forward, dropout, global_weights)
        if modality not in self.modalities:
            raise ValueError(f"modality-completion: the run has no '{modality}' modality to complete")
        self.modality = modality
        self.sources = [name for name in self.modalities if name != modality]
        size = context.modality_dims[modality]
        self.vae = CompletionAutoEncoder(sum(context.modality_dims[name] for name in self.sources), size, size)
        known = context.graphs.feature_masks.get(modality)
        self.register_buffer("known", torch.ones(context.graphs.num_entity_total, dtype=torch.bool) if known is None
                             else known.clone(), persistent=False)  # fmt: skip
        self.register_buffer("completing", torch.zeros((), dtype=torch.bool))
        self.stage = ""
        if rounds not in (1, 2):
            raise ValueError(f"modality-completion: rounds must be 1 or 2, not {rounds}")
        frozen = tuple(f"encoders.{name.strip()}" for name in refine_frozen.split(",") if name.strip())
        generator = ("fusion.vae",)
        completion = Stage(COMPLETION, completion_share / rounds, completion_lr, completion_weight_decay,
                           trains=generator, restore_best=True)  # fmt: skip
        refinement = Stage(REFINEMENT, refine_share / rounds, refine_lr, refine_weight_decay,
                           frozen=(*generator, *frozen), restore_best=True)  # fmt: skip
        self.planned = [completion, refinement]
        if rounds == 2:
            again = Stage(MAIN, (1 - completion_share - refine_share) / rounds, again_lr, again_weight_decay,
                          restore_best=True, cycle=again_cycle, pseudo_labels=True)  # fmt: skip
            self.planned += [again, *(replace(stage, lr=stage.lr * again_rate) for stage in self.planned)]

    def stages(self) -> list[Stage]:
        return self.planned

    def begin_stage(self, stage: Stage) -> None:
        self.completing.fill_(stage.name != MAIN)
        self.stage = stage.name

    def forward(self, embeddings: dict[str, Tensor]) -> dict[str, Tensor]:
        if not self.completing:
            return super().forward(embeddings)
        given = embeddings[self.modality]
        if len(given) != len(self.known):
            raise RuntimeError("modality-completion needs every entity's embeddings once its stages begin")
        sources = nn.functional.normalize(torch.cat([embeddings[name] for name in self.sources], dim=1), dim=1)
        sample, mean, reconstruction, divergence = self.vae(sources)
        virtual = nn.functional.normalize(sample if self.training else mean, dim=1)
        completed = torch.where(self.known[:, None], given, virtual)
        generated = {
            self.modality: completed,
            VIRTUAL: virtual,
            SOURCES: sources,
            RECONSTRUCTION: nn.functional.normalize(reconstruction, dim=1),
            DIVERGENCE: divergence,
        }
        return super().forward(embeddings | {self.modality: completed}) | generated


class CompletionLoss(Loss):
    """UMAEA's terms for the completion, nothing before its stages begin (then every entity is embedded).

    Both stages: icl on the generated vectors, each pair weighted by its entities' smaller weight of the completed
    modality (as UMAEA's modality terms). The completion stage adds, over the batch's entities that have the
    feature: KL(softmax(given vector) || softmax(generated one)) and KL(softmax(input) || softmax(reconstruction))
    (each x ``scale``, batch means), the generator's divergence from its prior x ``prior_scale`` (over every
    entity), and the alignment of the generated vectors' batch similarities with the inputs' (MCLEA's ial at
    temperature ``alignment_temperature``, an element mean, x ``zoom`` x ``scale``).
    """

    def __init__(
        self,
        context: BuildContext,
        temperature: float = 0.1,
        scale: float = 6000.0,
        prior_scale: float = 3000.0,
        alignment_temperature: float = 1.0,
        zoom: float = 0.1,
    ):
        super().__init__()
        self.temperature, self.scale, self.prior_scale = temperature, scale, prior_scale
        self.alignment_temperature, self.zoom = alignment_temperature, zoom
        self.fusion: ModalityCompletion | None = None

    def setup(self, view: TrainingView) -> None:
        self.fusion = view.service(ModalityCompletion)
        if self.fusion is None:
            raise ValueError("the completion loss needs the modality-completion fusion")

    @property
    def batch_rows_only(self) -> bool:
        """Rows suffice until the completion begins; then the generator and its divergence need every entity."""
        return self.fusion is None or not bool(self.fusion.completing)

    def forward(self, batch: Batch) -> dict[str, Tensor] | Tensor:
        fusion = self.fusion
        if fusion is None or not fusion.completing:
            return batch.pairs.new_zeros((), dtype=torch.float32)
        column = fusion.modalities.index(fusion.modality)
        terms = {"virtual": confident_info_nce(batch, VIRTUAL, column, self.temperature)}
        if fusion.stage != COMPLETION:
            return terms
        known = fusion.known[batch.pairs.T.flatten()]
        if known.any():
            terms["given"] = self._divergence(batch.rows(fusion.modality)[known], batch.rows(VIRTUAL)[known])
            terms["sources"] = self._divergence(batch.rows(SOURCES)[known], batch.rows(RECONSTRUCTION)[known])
        terms["prior"] = self.prior_scale * batch.embeddings[DIVERGENCE].mean()
        target = row_distributions(batch_cosines(batch, SOURCES).detach(), self.alignment_temperature)
        virtual = batch_cosines(batch, VIRTUAL)
        alignment = KLFromTarget.apply(virtual, target, self.alignment_temperature) / virtual.shape[1]
        terms["alignment"] = self.scale * self.zoom * alignment
        return terms

    def _divergence(self, target: Tensor, learner: Tensor) -> Tensor:
        """``scale`` x KL(softmax(target) || softmax(learner)), a mean over rows."""
        log_learner, target = nn.functional.log_softmax(learner, dim=1), nn.functional.softmax(target, dim=1)
        return self.scale * nn.functional.kl_div(log_learner, target, reduction="batchmean")
