"""Feed-forward network for non-sequence instances: classification and regression.

All features (embedded nominal values, CNN/BiLSTM-encoded n-gram lists, standardised
numbers) are concatenated and passed through `layers` hidden layers of `hidden` units
(ReLU, dropout) to the output layer. This is the network the trainer builds by default
for instances that are not sequences; on numeric data such as UCI Ionosphere or abalone
it is the classic multi-layer perceptron (Rumelhart, Hinton & Williams 1986), on n-gram
lists it becomes the CNN sentence classifier of Kim (2014).

Hyper-parameters: hidden (units per layer), layers, dropout, input_dropout.
"""

from torch import nn

from .base import LFModule
from .encoder import InputEncoder


class MLP(LFModule):
    hparams = {"hidden": 200, "layers": 1, "dropout": 0.5, "input_dropout": 0.0}
    tasks = {"classification", "regression"}

    def __init__(self, arch):
        super().__init__(arch)
        self.encoder = InputEncoder(arch)
        layers = [nn.Dropout(self.hp["input_dropout"])]
        width = self.encoder.out_dim
        for _ in range(self.hp["layers"]):
            layers += [nn.Linear(width, self.hp["hidden"]), nn.ReLU(), nn.Dropout(self.hp["dropout"])]
            width = self.hp["hidden"]
        layers.append(nn.Linear(width, self.n_outputs))
        self.layers = nn.Sequential(*layers)

    def forward(self, batch):
        scores = self.layers(self.encoder(batch))
        return scores.squeeze(-1) if self.task == "regression" else scores
