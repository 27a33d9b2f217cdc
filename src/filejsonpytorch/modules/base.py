"""The base class of every network module, built-in or written by a user.

A module is built from the architecture (an `Architecture`, see
`filejsonpytorch.architecture`: `arch.task`, `arch.n_outputs`, `arch.hparams`, ...) and
gets batches as dicts of tensors (see `filejsonpytorch.modules.encoder`). Subclasses implement `forward(batch)` returning
scores: [B, C] for classification, [B, T, C] for sequence tagging, [B] for regression.
The default `loss` and `predict` fit those scores; a module with another output (a CRF,
say) overrides them. Whatever `predict` returns, the probabilities the application
reports pass through `calibrated` (see `temperature`).

To write your own module, copy `template.py` in this folder to `MyNet.py`, edit it, and
train with `--module MyNet`.
"""

import torch
from torch import nn
from torch.nn import functional as F


class LFModule(nn.Module):
    #: hyper-parameters and their defaults; `--hparams name=value,...` overrides them
    hparams = {}
    #: True for a network that reads whole sequences (a BiLSTM): the default architecture
    #: then leaves out the window features of neighbouring elements, seen there anyway
    reads_neighbours = False
    #: reported probabilities are softmax(log p / temperature) of predict's p; the trainer
    #: sets it to the value that minimises the validation log-loss (temperature scaling,
    #: Guo et al. 2017) and the model file keeps it. It never changes the predicted label.
    temperature = 1.0

    def __init__(self, arch):
        super().__init__()
        self.task = arch.task
        self.n_outputs = arch.n_outputs
        self.hp = {**self.hparams, **arch.hparams}
        self.arch = arch.replace(lists=self.list_layers(arch.lists))

    @classmethod
    def data_hparams(cls, schema):
        """-> (the hyper-parameters this data changes from the defaults above, why): the
        place for a module's data-dependent defaults. None by default."""
        return {}, None

    def list_layers(self, lists):
        """The layers this module reads its list features with (see `Architecture.lists`;
        `self.hp` is set): the architecture's by default."""
        return lists

    def initialise_from(self, batches):
        """Called once before training from scratch, with the training data as batches (an
        iterable that may be read more than once): the place for a data-dependent
        initialisation. Nothing by default."""

    def loss(self, scores, batch):
        """Mean loss of the batch (over real elements for sequences)."""
        target = batch["target"]
        if self.task == "regression":
            return F.mse_loss(scores, target)
        if self.task == "sequence":
            mask = batch["mask"]
            return F.cross_entropy(scores[mask], target[mask])
        return F.cross_entropy(scores, target)

    def predict(self, scores, batch):
        """-> (predicted class ids, probabilities [.., C]); regression: (values, None)."""
        if self.task == "regression":
            return scores, None
        probabilities = torch.softmax(scores, dim=-1, dtype=torch.float64)
        return probabilities.argmax(dim=-1), probabilities

    def quick_labels(self, scores):
        """Labels for the running training accuracy: cheap, need not be predict's."""
        return scores.argmax(dim=-1)

    def calibrated(self, probabilities):
        """predict's probabilities under `temperature`: above 1 softens them, below 1 sharpens."""
        if probabilities is None or self.temperature == 1.0:
            return probabilities
        # a zero (a label a CRF constraint rules out) stays zero: log 0 = -inf
        return torch.softmax(probabilities.double().log() / self.temperature, dim=-1)
