"""Mutual-information maximisation between each modality and the joint embedding (PCMEA), with MINE estimators."""

import math
from typing import Any

import torch
from torch import Tensor, nn

from mmea_bench.components import Batch, BuildContext, Loss, TrainingView

CRITICS = ("trained", "released")


class MineEstimator(nn.Module):
    """T(u, j): a small network scoring a (uni-modal, joint) pair of vectors; higher for pairs of one entity.

    Its first layer acts on the concatenation [u, j]; applied as A u + C j, the product C j is made once for both
    the aligned pairs and the shuffled ones (a row permutation of it).
    """

    def __init__(self, modality_dim: int, joint_dim: int, hidden: int):
        super().__init__()
        self.network = nn.Sequential(nn.Linear(modality_dim + joint_dim, hidden), nn.ELU(), nn.Linear(hidden, 1))
        self.modality_dim = modality_dim

    def forward(self, modality: Tensor, joint: Tensor) -> Tensor:
        return self.pair_scores(modality, joint, shift=0)[0]

    def pair_scores(self, modality: Tensor, joint: Tensor, shift: int, snapshot: bool = False) -> tuple[Tensor, Tensor]:
        """Scores of the pairs (u_i, j_i) and of (u_i, j_{i - shift}) (rows rolled by ``shift``); ``snapshot``: with
        a copy of the weights as they are now, which a later step of the critic's own optimiser leaves intact."""
        first, activation, last = self.network
        weights = (first.weight, first.bias, last.weight, last.bias)
        if snapshot:
            weights = tuple(weight.detach().clone() for weight in weights)
        weight, bias, out_weight, out_bias = weights
        from_modality = torch.addmm(bias, modality, weight[:, : self.modality_dim].T)
        from_joint = joint @ weight[:, self.modality_dim :].T
        aligned = nn.functional.linear(activation(from_modality + from_joint), out_weight, out_bias).squeeze(1)
        shuffled = nn.functional.linear(
            activation(from_modality + from_joint.roll(shift, dims=0)), out_weight, out_bias
        )
        return aligned, shuffled.squeeze(1)


def donsker_varadhan(scores_joint: Tensor, scores_marginal: Tensor) -> Tensor:
    """The Donsker-Varadhan lower bound on mutual information: E_joint[T] - log E_marginal[e^T]."""
    log_mean_exp = torch.logsumexp(scores_marginal, dim=0) - math.log(len(scores_marginal))
    return scores_joint.mean() - log_mean_exp


class MutualInformationLoss(Loss):
    """Negative MINE bound of I(modality; joint), averaged over modalities; one estimator (critic) per modality.

    Pairs (u_i, j_i) of the batch's entities (both KGs) sample the joint distribution; (u_i, j_perm(i)), with the
    joint vectors rotated within the batch by a random offset (none stays with its entity), the product of
    marginals. The gradient of log E[e^T] uses the moving-average bias correction of the MINE paper (Belghazi et
    al. 2018): E[e^T] in the denominator is replaced by its exponential moving average with rate ``moving_average``.

    ``critic="trained"``: before each batch's loss the critics take ``critic_steps`` Adam steps (``critic_lr``) of
    their own on the batch's detached embeddings, so that the bound the encoders then raise is a real estimate;
    ``critic_steps=0`` trains them with the encoders instead, one shared step per epoch. ``critic="released"``: as
    the released code, critics that keep their random initial weights and the bound computed on the aligned pairs
    alone (no shuffled marginal; in bits): a term that only asks the critic's score to be alike for every entity.
    """

    batch_rows_only = True

    def __init__(
        self,
        context: BuildContext,
        hidden: int = 128,
        moving_average: float = 0.01,
        critic: str = "trained",
        critic_steps: int = 2,
        critic_lr: float = 1e-3,
    ):
        super().__init__()
        if critic not in CRITICS:
            raise ValueError(f"critic must be one of {', '.join(CRITICS)}, not '{critic}'")
        self.estimators = nn.ModuleDict(
            {modality: MineEstimator(dim, context.joint_dim, hidden) for modality, dim in context.modality_dims.items()}
        )
        self.moving_average = moving_average
        self.critic, self.critic_steps = critic, critic_steps
        self.critic_optimizer = None
        if critic == "released" or critic_steps > 0:
            self.estimators.requires_grad_(False)  # out of the shared optimiser
        if critic == "trained" and critic_steps > 0:
            self.critic_optimizer = torch.optim.Adam(self.estimators.parameters(), lr=critic_lr)
        self.register_buffer("mean_exp", torch.ones(len(self.estimators)))
        self.estimates: dict[str, Tensor] = {}

    def forward(self, batch: Batch) -> Tensor:
        joint = nn.functional.normalize(batch.rows("joint"), dim=1)
        vectors = {modality: nn.functional.normalize(batch.rows(modality), dim=1) for modality in self.estimators}
        if self.critic == "released":
            return self.released_bound(vectors, joint)
        if self.critic_optimizer is not None and self.training:
            self.train_critics({m: v.detach() for m, v in vectors.items()}, joint.detach())
        return self.objective(vectors, joint, self.training, snapshot=self.critic_optimizer is not None)

    def objective(
        self, vectors: dict[str, Tensor], joint: Tensor, update_average: bool, snapshot: bool = False
    ) -> Tensor:
        """The negative bias-corrected bound, averaged over modalities; records each modality's DV estimate."""
        shift = int(torch.randint(1, max(len(joint), 2), ()))
        losses = []
        for index, (modality, estimator) in enumerate(self.estimators.items()):
            scores_joint, scores_marginal = estimator.pair_scores(vectors[modality], joint, shift, snapshot)
            mean_exp = scores_marginal.exp().mean()
            if update_average:
                rate = self.moving_average
                self.mean_exp[index] = (1 - rate) * self.mean_exp[index] + rate * mean_exp.detach()
            # Gradient of E_joint[T] - E_marginal[e^T] / EMA(E[e^T]): the bias-corrected gradient of the DV bound.
            losses.append(-(scores_joint.mean() - mean_exp / self.mean_exp[index].clamp_min(1e-8)))
            self.estimates[modality] = donsker_varadhan(scores_joint, scores_marginal).detach()
        return torch.stack(losses).mean()

    def train_critics(self, vectors: dict[str, Tensor], joint: Tensor) -> None:
        """``critic_steps`` steps of the critics' own optimiser on detached embeddings."""
        self.estimators.requires_grad_(True)
        for _ in range(self.critic_steps):
            self.critic_optimizer.zero_grad(set_to_none=True)
            self.objective(vectors, joint, update_average=True).backward()
            self.critic_optimizer.step()
        self.estimators.requires_grad_(False)

    def released_bound(self, vectors: dict[str, Tensor], joint: Tensor) -> Tensor:
        """The released term: -(mean T - log mean e^T) over the aligned pairs, in bits, summed over modalities."""
        losses = []
        for modality, estimator in self.estimators.items():
            scores = estimator(vectors[modality], joint)
            estimate = donsker_varadhan(scores, scores)
            self.estimates[modality] = estimate.detach()
            losses.append(-estimate / math.log(2))
        return torch.stack(losses).sum()

    def training_state(self) -> dict[str, Any]:
        return {"critic_optimizer": self.critic_optimizer.state_dict() if self.critic_optimizer else None}

    def restore_training_state(self, state: dict[str, Any], view: TrainingView) -> None:
        if self.critic_optimizer is not None:
            self.critic_optimizer.load_state_dict(state["critic_optimizer"])

    def on_check(self, view: TrainingView) -> dict[str, float]:
        return {f"mi_{modality}": float(value) for modality, value in self.estimates.items()}
