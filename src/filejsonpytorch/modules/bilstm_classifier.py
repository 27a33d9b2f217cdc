"""BiLSTM text classifier: each list feature (e.g. the tokens of a sentence) is read by a
bidirectional LSTM whose final states in both directions summarise it; the summaries
(with any other features) pass a hidden layer to the output (cf. Tang, Qin & Liu 2015;
Zhou et al. 2016).

Hyper-parameters: lstm_hidden (per direction), hidden, dropout.
"""

from torch import nn

from ..vocab import CHARS_EMB_ID
from .base import LFModule
from .dropout import Dropout
from .encoder import InputEncoder


class BiLSTMClassifier(LFModule):
    hparams = {"lstm_hidden": 100, "hidden": 100, "dropout": 0.5}
    tasks = {"classification", "regression"}

    def __init__(self, arch):
        super().__init__(arch)
        self.encoder = InputEncoder(self.arch)
        self.layers = nn.Sequential(
            Dropout(self.hp["dropout"]), nn.Linear(self.encoder.out_dim, self.hp["hidden"]), nn.ReLU(),
            Dropout(self.hp["dropout"]), nn.Linear(self.hp["hidden"], self.n_outputs),
        )

    def list_layers(self, lists):
        """A BiLSTM of lstm_hidden units for every list but the characters'."""
        return [spec if spec["emb"] == CHARS_EMB_ID else {"emb": spec["emb"], "layer": "lstm", "hidden": self.hp["lstm_hidden"]}
                for spec in lists]

    def forward(self, batch):
        """[B, C] label scores, or [B] values for regression."""
        scores = self.layers(self.encoder(batch))
        return scores.squeeze(-1) if self.task == "regression" else scores
