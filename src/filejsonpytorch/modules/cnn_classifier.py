"""CNN sentence classifier (Kim 2014, "Convolutional Neural Networks for Sentence
Classification"), for instances whose main input is a list of tokens (an LF n-gram
feature such as the token strings of a sentence).

Every list feature is embedded and read by convolutions of several widths with ReLU and
max-pooling over its real positions; the pooled features (with any other features of the
instance) go through dropout straight to the output layer, as in the paper.

Hyper-parameters: widths (filter widths), channels (filters per width), dropout.
"""

from torch import nn

from ..vocab import CHARS_EMB_ID
from .base import LFModule
from .dropout import Dropout
from .encoder import InputEncoder


class CNNClassifier(LFModule):
    hparams = {"widths": [3, 4, 5], "channels": 100, "dropout": 0.5}
    tasks = {"classification", "regression"}

    def __init__(self, arch):
        super().__init__(arch)
        self.encoder = InputEncoder(self.arch)
        self.output = nn.Sequential(Dropout(self.hp["dropout"]), nn.Linear(self.encoder.out_dim, self.n_outputs))

    def list_layers(self, lists):
        """Convolutions of the widths and channels above for every list but the characters'."""
        return [spec if spec["emb"] == CHARS_EMB_ID else
                {**spec, "layer": "cnn", "widths": self.hp["widths"], "channels": self.hp["channels"]} for spec in lists]

    def forward(self, batch):
        """[B, C] label scores, or [B] values for regression."""
        scores = self.output(self.encoder(batch))
        return scores.squeeze(-1) if self.task == "regression" else scores
