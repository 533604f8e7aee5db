"""Mutual-information maximisation between each modality and the joint embedding (PCMEA), with MINE estimators."""

import torch
from torch import Tensor, nn

from mmea_bench.components import Batch, BuildContext, Loss, TrainingView


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

    def pair_scores(self, modality: Tensor, joint: Tensor, shift: int) -> tuple[Tensor, Tensor]:
        """Scores of the pairs (u_i, j_i) and of (u_i, j_{i - shift}) (rows rolled by ``shift``)."""
        first, activation, last = self.network
        weight = first.weight
        from_modality = torch.addmm(first.bias, modality, weight[:, : self.modality_dim].T)
        from_joint = joint @ weight[:, self.modality_dim :].T
        aligned = last(activation(from_modality + from_joint)).squeeze(1)
        shuffled = last(activation(from_modality + from_joint.roll(shift, dims=0))).squeeze(1)
        return aligned, shuffled


def donsker_varadhan(scores_joint: Tensor, scores_marginal: Tensor) -> Tensor:
    """The Donsker-Varadhan lower bound on mutual information: E_joint[T] - log E_marginal[e^T]."""
    log_mean_exp = torch.logsumexp(scores_marginal, dim=0) - torch.log(torch.tensor(float(len(scores_marginal))))
    return scores_joint.mean() - log_mean_exp


class MutualInformationLoss(Loss):
    """Negative MINE bound of I(modality; joint), averaged over modalities; one estimator per modality.

    Pairs (u_i, j_i) of the batch's entities (both KGs) sample the joint distribution; (u_i, j_perm(i)), with the
    joint vectors rotated within the batch by a random offset (none stays with its entity), the product of
    marginals. Estimators and encoders both maximise the bound.
    The gradient of log E[e^T] uses the moving-average bias correction of the MINE paper (Belghazi et al. 2018):
    E[e^T] in the denominator is replaced by its exponential moving average with rate ``moving_average``.
    (The released PCMEA code omits the shuffled marginals and never optimises the estimators; this does both.)
    """

    batch_rows_only = True

    def __init__(self, context: BuildContext, hidden: int = 128, moving_average: float = 0.01):
        super().__init__()
        self.estimators = nn.ModuleDict(
            {modality: MineEstimator(dim, context.joint_dim, hidden) for modality, dim in context.modality_dims.items()}
        )
        self.moving_average = moving_average
        self.register_buffer("mean_exp", torch.ones(len(self.estimators)))
        self.estimates: dict[str, Tensor] = {}

    def forward(self, batch: Batch) -> Tensor:
        joint = nn.functional.normalize(batch.rows("joint"), dim=1)
        shift = int(torch.randint(1, max(len(joint), 2), ()))
        losses = []
        for index, (modality, estimator) in enumerate(self.estimators.items()):
            vectors = nn.functional.normalize(batch.rows(modality), dim=1)
            scores_joint, scores_marginal = estimator.pair_scores(vectors, joint, shift)
            mean_exp = scores_marginal.exp().mean()
            if self.training:
                rate = self.moving_average
                self.mean_exp[index] = (1 - rate) * self.mean_exp[index] + rate * mean_exp.detach()
            # Gradient of E_joint[T] - E_marginal[e^T] / EMA(E[e^T]): the bias-corrected gradient of the DV bound.
            losses.append(-(scores_joint.mean() - mean_exp / self.mean_exp[index].clamp_min(1e-8)))
            self.estimates[modality] = donsker_varadhan(scores_joint, scores_marginal).detach()
        return torch.stack(losses).mean()

    def on_check(self, view: TrainingView) -> dict[str, float]:
        return {f"mi_{modality}": float(value) for modality, value in self.estimates.items()}
