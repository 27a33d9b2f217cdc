"""An ensemble: several networks of one architecture, trained together, averaged.

Each member starts from its own random initialisation and sees its own dropout; all see
the same batches and are trained on the mean of their losses. Prediction averages the
members' probabilities (for a CRF, their marginals, whatever its `decode`; for regression,
their values) and takes the argmax, so the ensemble answers real probabilities as any
module does. Averaging networks that differ only by chance can remove much of the
variance that small training sets give a single network (Lakshminarayanan et al. 2017,
"deep ensembles").

network.py builds one when the architecture's "ensemble" is above 1 (`--ensemble N`),
and cross-validation saves its networks as one (`--folds K`: each trained alone on its
folds, see `training/crossval.py`); any module, a user's included, can be a member.
"""

import torch
from torch import nn
from torch.nn import functional as F

from .modules.base import LFModule


class Ensemble(LFModule):
    def __init__(self, arch, members):
        super().__init__(arch)
        self.members = nn.ModuleList(members)

    def initialise_from(self, batches):
        for member in self.members:
            member.initialise_from(batches)

    def forward(self, batch):
        """-> the members' scores, stacked: [members, ...]."""
        return torch.stack([member(batch) for member in self.members])

    def loss(self, scores, batch):
        """Training: the mean of the members' losses, so each learns as if alone.
        Validation: the loss of the averaged prediction, the one the ensemble answers."""
        if self.training:
            return sum(member.loss(s, batch) for member, s in zip(self.members, scores)) / len(self.members)
        predicted, probabilities = self.predict(scores, batch)
        target = batch["target"]
        if self.task == "regression":
            return F.mse_loss(predicted, target)
        if "mask" in batch:
            probabilities, target = probabilities[batch["mask"]], target[batch["mask"]]
        return F.nll_loss(probabilities.clamp_min(1e-12).log(), target)

    def predict(self, scores, batch):
        predictions = [member.predict(s, batch) for member, s in zip(self.members, scores)]
        if self.task == "regression":
            return torch.stack([values for values, _ in predictions]).mean(dim=0), None
        probabilities = torch.stack([p for _, p in predictions]).mean(dim=0)
        return probabilities.argmax(dim=-1), probabilities

    def quick_labels(self, scores):
        return scores.mean(dim=0).argmax(dim=-1)
