"""BiLSTM text classifier: each list feature (e.g. the tokens of a sentence) is read by a
bidirectional LSTM whose final states in both directions summarise it; the summaries
(with any other features) pass a hidden layer to the output (cf. Tang, Qin & Liu 2015;
Zhou et al. 2016).

Hyper-parameters: lstm_hidden (per direction), hidden, dropout.
"""

from torch import nn

from .base import LFModule
from .encoder import InputEncoder


class BiLSTMClassifier(LFModule):
    hparams = {"lstm_hidden": 100, "hidden": 100, "dropout": 0.5}
    tasks = {"classification", "regression"}

    def __init__(self, arch):
        super().__init__(arch)
        lists = [spec if spec["emb"] == "chars" else {"emb": spec["emb"], "layer": "lstm", "hidden": self.hp["lstm_hidden"]}
                 for spec in arch["lists"]]
        self.arch = {**arch, "lists": lists}
        self.encoder = InputEncoder(self.arch)
        self.layers = nn.Sequential(
            nn.Dropout(self.hp["dropout"]), nn.Linear(self.encoder.out_dim, self.hp["hidden"]), nn.ReLU(),
            nn.Dropout(self.hp["dropout"]), nn.Linear(self.hp["hidden"], self.n_outputs),
        )

    def forward(self, batch):
        scores = self.layers(self.encoder(batch))
        return scores.squeeze(-1) if self.task == "regression" else scores
