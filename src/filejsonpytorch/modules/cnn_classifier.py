"""CNN sentence classifier (Kim 2014, "Convolutional Neural Networks for Sentence
Classification"), for instances whose main input is a list of tokens (an LF n-gram
feature such as the token strings of a sentence).

Every list feature is embedded and read by convolutions of several widths with ReLU and
max-pooling over its real positions; the pooled features (with any other features of the
instance) go through dropout straight to the output layer, as in the paper.

Hyper-parameters: widths (filter widths), channels (filters per width), dropout.
"""

from torch import nn

from .base import LFModule
from .encoder import InputEncoder


class CNNClassifier(LFModule):
    hparams = {"widths": [3, 4, 5], "channels": 100, "dropout": 0.5}
    tasks = {"classification", "regression"}

    def __init__(self, arch):
        lists = [{**spec, "layer": "cnn"} if spec["emb"] != "chars" else spec for spec in arch["lists"]]
        super().__init__({**arch, "lists": lists})
        for spec in lists:
            if spec["emb"] != "chars":
                spec.update(widths=self.hp["widths"], channels=self.hp["channels"])
        self.encoder = InputEncoder(self.arch)
        self.output = nn.Sequential(nn.Dropout(self.hp["dropout"]), nn.Linear(self.encoder.out_dim, self.n_outputs))

    def forward(self, batch):
        scores = self.output(self.encoder(batch))
        return scores.squeeze(-1) if self.task == "regression" else scores
