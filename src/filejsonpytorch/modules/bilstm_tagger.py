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
from .dropout import Dropout, dropout
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


def bidirectional_states(lstm, x, lengths):
    """A bidirectional `nn.LSTM` (batch_first) over padded sequences: x [B, T, D] with
    real lengths [B] (padding after them) -> states [B, T, 2 * hidden], padded positions
    undefined. The same function as packing the sequences, but each direction runs over
    the whole padded batch in one fused kernel: the backward one over each sequence
    reversed within its length, so that it starts at the sequence's last real element.
    Packed sequences take a step-by-step path on CPUs, twice as slow (README)."""
    if x.shape[0] == 1:  # a single sequence (application) has no padding: one call does both
        return lstm(x)[0]
    reverse = reversal_index(lengths, x.shape[1])
    h0 = x.new_zeros(1, x.shape[0], lstm.hidden_size)
    for layer in range(lstm.num_layers):
        if layer:
            x = dropout(x, lstm.dropout, lstm.training)
        forward = one_direction(lstm, x, h0, f"_l{layer}")
        backward = one_direction(lstm, reversed_within(x, reverse), h0, f"_l{layer}_reverse")
        x = torch.cat([forward, reversed_within(backward, reverse)], dim=-1)
    return x


def one_direction(lstm, x, h0, suffix):
    """One layer and direction of `lstm` (its weights ending in `suffix`) from zero states:
    x [B, T, D] -> [B, T, hidden]."""
    names = ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if lstm.bias else ())
    weights = [getattr(lstm, name + suffix) for name in names]
    # torch.lstm(input, (h0, c0), weights, has_biases, layers, dropout, train, bidirectional, batch_first)
    return torch.lstm(x, (h0, h0), weights, lstm.bias, 1, 0.0, lstm.training, False, True)[0]


def reversal_index(lengths, steps):
    """lengths [B] -> long [B, T]: position t of a sequence of length n reads n - 1 - t
    (t < n), padding stays where it is."""
    t = torch.arange(steps, device=lengths.device)
    n = lengths.to(t.device).unsqueeze(1)
    return torch.where(t < n, n - 1 - t, t)


def reversed_within(x, index):
    """x [B, T, D], index [B, T] from reversal_index -> x with each sequence reversed."""
    return x.gather(1, index.unsqueeze(-1).expand_as(x))
