"""BiLSTM sequence tagger: one label per element (POS tagging, NER, chunking).

Each element's features are encoded (embeddings, n-gram lists, numbers), projected by a
non-linear layer, and read in both directions by a masked bidirectional LSTM whose
states give each element's label scores (Graves & Schmidhuber 2005; Huang, Xu & Yu 2015).
Padded elements are packed away and never seen by the LSTM. As the LSTM reads the
neighbours itself, the default architecture leaves out the window features of other
positions than the element's own (`reads_neighbours`; measured in the README).

Hyper-parameters: hidden (projection units), lstm_hidden (per direction), lstm_layers,
dropout.
"""

from torch import nn

from .base import LFModule
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
            nn.Dropout(hp["dropout"] / 2), nn.Linear(self.encoder.out_dim, hp["hidden"]), nn.ReLU(), nn.Dropout(hp["dropout"])
        )
        self.lstm = nn.LSTM(hp["hidden"], hp["lstm_hidden"], num_layers=hp["lstm_layers"], batch_first=True,
                            bidirectional=True, dropout=hp["dropout"] if hp["lstm_layers"] > 1 else 0.0)
        self.output = nn.Sequential(nn.Dropout(hp["dropout"]), nn.Linear(2 * hp["lstm_hidden"], self.n_outputs))

    def forward(self, batch):
        """A sequence batch (see encoder.py; mask [B, T]) -> label scores [B, T, C]."""
        mask = batch["mask"]
        x = self.project(self.encoder(batch))
        if x.shape[0] == 1:  # a single sequence (application) has no padding to pack away
            return self.output(self.lstm(x)[0])
        lengths = mask.sum(-1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=mask.shape[1])
        return self.output(out)
