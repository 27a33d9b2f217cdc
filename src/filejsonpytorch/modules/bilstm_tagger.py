"""BiLSTM sequence tagger: one label per element (POS tagging, NER, chunking).

Each element's features are encoded (embeddings, n-gram lists, numbers), projected by a
non-linear layer, and read in both directions by a masked bidirectional LSTM whose
states give each element's label scores (Graves & Schmidhuber 2005; Huang, Xu & Yu 2015).
Padded elements never reach a real element's state (see `bidirectional_states`). As the
LSTM reads the neighbours itself, the default architecture leaves out the window features
of other positions than the element's own (`reads_neighbours`; measured in the README).

Hyper-parameters: hidden (projection units), lstm_hidden (per direction), lstm_layers,
dropout.
"""

import torch
from torch import nn

from .base import LFModule
from .bilstm import bidirectional_states
from .dropout import Dropout
from .encoder import InputEncoder


class BiLSTMTagger(LFModule):
    hparams = {"hidden": 200, "lstm_hidden": 100, "lstm_layers": 1, "dropout": 0.5}
    tasks = {"sequence"}
    reads_neighbours = True

    def __init__(self, arch):
        super().__init__(arch)
        hp = self.hp
        self.encoder = InputEncoder(arch)
        self.project = nn.Sequential(
            Dropout(hp["dropout"] / 2), nn.Linear(self.encoder.out_dim, hp["hidden"]), nn.ReLU(), Dropout(hp["dropout"])
        )
        self.lstm = nn.LSTM(hp["hidden"], hp["lstm_hidden"], num_layers=hp["lstm_layers"], batch_first=True,
                            bidirectional=True, dropout=hp["dropout"] if hp["lstm_layers"] > 1 else 0.0)
        self.output = nn.Sequential(Dropout(hp["dropout"]), nn.Linear(2 * hp["lstm_hidden"], self.n_outputs))

    def forward(self, batch):
        """A sequence batch (see encoder.py; mask [B, T]) -> label scores [B, T, C]."""
        x = self.project(self.encoder(batch))
        return self.output(bidirectional_states(self.lstm, x, batch["mask"].sum(-1)))
