"""A bidirectional LSTM over a batch of padded sequences, in torch's fused kernels.

Torch runs an `nn.LSTM` over a padded batch in one fused (oneDNN) kernel per direction,
forward and backward, but over packed sequences it takes a step-by-step path, on CPUs
about twice as slow; and a bidirectional LSTM over padded sequences would start its
backward direction in the padding. `bidirectional_states` runs each direction of the
same `nn.LSTM`'s weights separately: the backward one over each sequence reversed within
its length. The same function as packing, the same parameters (benchmarks README, "The
tagger's BiLSTM in fused kernels").

    bidirectional_states(lstm, x, lengths)   x [B, T, D], lengths [B] -> [B, T, 2 * hidden]
    final_states(lstm, x, lengths)           -> [B, 2 * hidden]: each direction's last state
"""

import torch

from .dropout import dropout


def bidirectional_states(lstm, x, lengths):
    """A bidirectional `nn.LSTM` (batch_first) over padded sequences: x [B, T, D] with
    real lengths [B], at least 1 (padding after them) -> states [B, T, 2 * hidden], padded
    positions undefined."""
    if x.shape[0] == 1 and int(lengths[0]) == x.shape[1]:  # one sequence, no padding: one call does both
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


def final_states(lstm, x, lengths):
    """What the packed LSTM leaves as its final hidden states, the forward direction's at
    each sequence's last real element and the backward one's at its first, of the last
    layer: x [B, T, D], lengths [B] (at least 1) -> [B, 2 * hidden]."""
    states = bidirectional_states(lstm, x, lengths)
    hidden = lstm.hidden_size
    last = states[torch.arange(len(x), device=x.device), lengths.to(x.device) - 1, :hidden]
    return torch.cat([last, states[:, 0, hidden:]], dim=-1)
