"""An ensemble of MLPs computed as one network, for application.

An `Ensemble` runs its members one after another. For members of the built-in `mlp`
module (the default for instances, and every cross-validation model), `stack(network)`
builds at load time one network holding all members' weights side by side: embedding
tables stacked per row, list CNNs as batched products over windows, hidden layers as batched
matrix products over the members, naive Bayes tables merged into one. One request then
costs one pass of a few large operations instead of the members' many small ones; the
weights themselves are still all read, so the time grows with their total size. The
answers are the members' averaged probabilities, as `Ensemble.predict` computes them.
Anything else (a user module, a tagger, a mapped embedding, a list BiLSTM) is served by
the `Ensemble` itself.

Shapes: M members, B instances, C labels; `forward` gives scores [M, B, C] ([M, B] for
regression), as `Ensemble.forward` does.
"""

import torch
from torch import nn
from torch.nn import functional as F

from .ensemble import Ensemble
from .modules.base import LFModule
from .modules.encoder import ListCNN, NaiveBayesBag, OneHot, remembered
from .modules.mlp import MLP
from .vocab import CHARS_EMB_ID

#: list positions whose windows a stacked list CNN takes at once
CHUNK = 256


def stack(network):
    """-> a StackedMLP computing `network`'s answers, or `network` itself where it cannot."""
    if not isinstance(network, Ensemble) or not all(_stackable(m) for m in network.members):
        return network
    return StackedMLP(network).to(next(network.parameters()).device).eval()


def _stackable(member):
    encoder = member.encoder
    return (type(member) is MLP
            and all(type(e) in (nn.Embedding, OneHot) for e in encoder.embeddings.values())
            and all(type(e) is ListCNN for e in encoder.list_encoders))


class StackedMLP(LFModule):
    """The members of an Ensemble of MLPs, each layer's weights stacked over the members."""

    def __init__(self, ensemble):
        super().__init__(ensemble.arch)
        members = ensemble.members
        self.temperature = ensemble.temperature
        first = members[0]
        self.nominal_groups = first.encoder.nominal_groups
        self.list_embs = [spec["emb"] for spec in first.encoder.list_specs]
        self.n_members = len(members)
        self.tables = {k: _stacked_table([m.encoder.embeddings[k] for m in members]) for k in first.encoder.embeddings}
        self.lists = nn.ModuleList(StackedListCNN([m.encoder.list_encoders[i] for m in members])
                                   for i in range(len(self.list_embs)))
        linears = [[layer for layer in m.layers if isinstance(layer, nn.Linear)] for m in members]
        self.weights = [torch.stack([ls[i].weight.detach().t() for ls in linears]) for i in range(len(linears[0]))]
        self.biases = [torch.stack([ls[i].bias.detach() for ls in linears]).unsqueeze(1) for i in range(len(linears[0]))]
        self.bags = nn.ModuleList(_merged_bag([m.bags[i] for m in members]) for i in range(len(first.bags)))
        self.bag_weight = first.hp["naive_bayes"]
        # a word's characters recur: their CNN vectors and naive Bayes scores are remembered
        self.list_memos = [{} if emb == CHARS_EMB_ID else None for emb in self.list_embs]
        self.bag_memos = [{} if emb == CHARS_EMB_ID else None for emb in self.list_embs[:len(self.bags)]]

    def forward(self, batch):
        """A batch (see modules/encoder.py) -> scores [M, B, C], or [M, B] for regression."""
        x = self._inputs(batch)
        last = len(self.weights) - 1
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(bias, x, weight)
            if i < last:
                x = F.relu(x)
        if self.task == "regression":
            return x.squeeze(-1)
        for bag, memo, ids in zip(self.bags, self.bag_memos, batch["lists"]):
            scores = bag(ids) if memo is None else remembered(memo, ids, bag)
            x = x + self.bag_weight * _per_member(scores, self.n_members)
        return x

    def _inputs(self, batch):
        """The members' input vectors, [M, B, D], in the order InputEncoder concatenates them."""
        parts, nominal, members = [], batch["nominal"], self.n_members
        for emb_id, columns in self.nominal_groups:
            parts.append(self._embed(emb_id, nominal[..., columns]).flatten(-2))
        if batch["numeric"].shape[-1]:
            parts.append(batch["numeric"].expand(members, -1, -1))
        for emb_id, encoder, memo, ids in zip(self.list_embs, self.lists, self.list_memos, batch["lists"]):
            if memo is None:
                parts.append(encoder(self._embed(emb_id, ids), ids != 0))
            else:  # remembered per row, members second
                parts.append(remembered(memo, ids, lambda rows: encoder(self._embed(emb_id, rows), rows != 0).transpose(0, 1))
                             .transpose(0, 1))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)

    def _embed(self, emb_id, ids):
        """long ids [B, K] -> the members' vectors [M, B, K, dims]."""
        table = self.tables[emb_id]
        if isinstance(table, int):  # one-hot: the same vectors for every member
            return F.one_hot(ids, table).float().expand(self.n_members, *ids.shape, table)
        return table[ids].movedim(-2, 0)

    def predict(self, scores, batch):
        """As Ensemble.predict for MLP members: the mean of the members' softmax."""
        if self.task == "regression":
            return scores.mean(dim=0), None
        probabilities = torch.softmax(scores, dim=-1, dtype=torch.float64).mean(dim=0)
        return probabilities.argmax(dim=-1), probabilities


def _stacked_table(embeddings):
    """The members' embedding weights [V, M, dims] (row lookups give every member's
    vector at once), or a one-hot's size."""
    if isinstance(embeddings[0], OneHot):
        return embeddings[0].embedding_dim
    return torch.stack([e.weight.detach() for e in embeddings], dim=1)


def _per_member(scores, members):
    """[B, M * C] -> [M, B, C]."""
    return scores.view(scores.shape[0], members, -1).transpose(0, 1)


class StackedListCNN(nn.Module):
    """The members' ListCNNs (same widths): each width's convolution as one batched matrix
    product of the list's windows with the members' filters."""

    def __init__(self, cnns):
        super().__init__()
        self.mean = cnns[0].mean
        self.shapes = [(conv.kernel_size[0], conv.padding[0]) for conv in cnns[0].convs]
        self.filters = [torch.stack([c.convs[i].weight.detach().flatten(1).t() for c in cnns]) for i in range(len(self.shapes))]
        self.biases = [torch.stack([c.convs[i].bias.detach() for c in cnns]).unsqueeze(1) for i in range(len(self.shapes))]

    def forward(self, vectors, mask):
        """vectors [M, B, L, dims], mask bool [B, L] -> [M, B, out_dim], as each ListCNN."""
        vectors = vectors * mask.unsqueeze(-1)
        pooled = [self._pooled(vectors, mask, *shape, filters, bias)
                  for shape, filters, bias in zip(self.shapes, self.filters, self.biases)]
        if self.mean:
            pooled.append(vectors.sum(dim=2) / mask.sum(dim=1, keepdim=True).clamp(min=1))
        return torch.cat(pooled, dim=-1)

    @staticmethod
    def _pooled(vectors, mask, width, padding, filters, bias):
        """One width's filters, ReLU, max over the real positions -> [M, B, filters]; the
        windows are taken CHUNK positions at a time, so that a long list needs little memory."""
        members, batch, length, dims = vectors.shape
        padded = F.pad(vectors, (0, 0, padding, padding))
        best = None
        for start in range(0, length, CHUNK):
            stop = min(start + CHUNK, length)
            # windows [M, B, stop - start, dims, width] match a filter's [dims, width] flattened
            windows = padded[:, :, start:stop + width - 1].unfold(2, width, 1)
            h = torch.baddbmm(bias, windows.reshape(members, -1, dims * width), filters)
            h = F.relu(h).view(members, batch, stop - start, -1)
            h = h.masked_fill(~mask[:, start:stop].unsqueeze(-1), 0.0).amax(dim=2)
            best = h if best is None else torch.maximum(best, h)
        return best


def _merged_bag(bags):
    """One NaiveBayesBag scoring [B, M * C]: every member's word rows side by side and the
    union of their pairs, a pair a member has not seen scoring 0 for it as in its own."""
    vocab_size, classes = bags[0].vocab_size, bags[0].scores.shape[1]
    keys = torch.unique(torch.cat([b.pair_keys for b in bags]))
    scores = torch.zeros(vocab_size + len(keys), len(bags), classes, device=keys.device)
    for m, bag in enumerate(bags):
        scores[:vocab_size, m] = bag.scores[:vocab_size]
        scores[vocab_size + torch.searchsorted(keys, bag.pair_keys), m] = bag.scores[vocab_size:]
    merged = NaiveBayesBag(vocab_size, len(bags) * classes)
    merged.pair_keys, merged.scores = keys, scores.view(len(keys) + vocab_size, -1)
    return merged
