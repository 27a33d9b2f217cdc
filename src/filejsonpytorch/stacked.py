"""An MLP, or an ensemble of MLPs, in the form that answers one request fastest.

`stack(network)` builds at load time, for a network of the built-in `mlp` module (the
default for instances, every cross-validation model and a distilled one) or an
`Ensemble` of them, one network holding all members' weights side by side: the hidden
layers as batched matrix products over the members, list CNNs as batched products over
windows, the naive Bayes tables merged into one. It answers one encoded instance (what
`lfdata.Encoder.encode` gives) without making a batch, with as few tensor operations as
the network allows: for networks this small, each operation's fixed cost is most of the
time. Its first layer is not one product of the whole input vector with the weights
but a sum of each input's term:

- a nominal value's term is its vector times its columns' weights, for every column of
  its embedding and every member at once; it is computed when the value is first seen and
  then remembered, so a request adds a few remembered rows instead of reading all the
  weights of its nominal columns (window POS: 26 columns, 830 of the layer's inputs);
- the numbers and the lists are multiplied with their weights as they come, a word's
  characters once per word (remembered).

The answers are the members' averaged probabilities, as `Ensemble.predict` computes
them, within float rounding (the sums run in another order). Anything else (a user
module, a tagger, a mapped embedding, a list BiLSTM) is served as it is.

Shapes: M members, H units of the first layer, C labels.
"""

import torch
from torch import nn
from torch.nn import functional as F

from .ensemble import Ensemble
from .modules.encoder import ListCNN, OneHot
from .modules.mlp import MLP
from .vocab import CHARS_EMB_ID

#: list positions whose windows a stacked list CNN takes at once
CHUNK = 256
#: floats all remembered terms (of nominal values, of words' characters) may hold: each
#: memo gets an equal share and starts afresh when it is full
MEMO_FLOATS = 25_000_000


def stack(network):
    """-> a StackedMLP computing `network`'s answers, or None where it cannot."""
    members = list(network.members) if isinstance(network, Ensemble) else [network]
    if not all(_stackable(m) for m in members):
        return None
    return StackedMLP(network, members)


def _stackable(member):
    if type(member) is not MLP:
        return False
    encoder = member.encoder
    return (all(type(e) in (nn.Embedding, OneHot) for e in encoder.embeddings.values())
            and all(type(e) is ListCNN for e in encoder.list_encoders))


class StackedMLP:
    """The members of an Ensemble of MLPs (or one MLP), each layer's weights stacked over the members."""

    def __init__(self, network, members):
        self.network = network  # for its task and calibration
        self.n_members = len(members)
        linears = [[layer for layer in m.layers if isinstance(layer, nn.Linear)] for m in members]
        weights = [torch.stack([ls[i].weight.detach().t() for ls in linears]) for i in range(len(linears[0]))]
        biases = [torch.stack([ls[i].bias.detach() for ls in linears]).unsqueeze(1) for i in range(len(linears[0]))]
        self.first = FirstLayer([m.encoder for m in members], weights[0], biases[0])
        self.weights, self.biases = weights[1:], biases[1:]
        weight = members[0].hp["naive_bayes"]
        self.bags = [MergedBag([m.bags[i] for m in members], weight) for i in range(len(members[0].bags))]

    def scores(self, instance):
        """An encoded instance (nominal ids, numbers, lists of ids) -> the members' scores
        [M, 1, C] ([M, 1, 1] for regression)."""
        x = self.first(instance)
        for weight, bias in zip(self.weights, self.biases):
            x = torch.baddbmm(bias, x.relu_(), weight)
        for bag, ids in zip(self.bags, instance[2]):
            x += bag(ids)
        return x

    def answer(self, instance):
        """-> (the label's index, the calibrated probabilities as floats), as the members'
        averaged probabilities give them; for regression the members' mean value."""
        scores = self.scores(instance)
        if self.network.task == "regression":
            return float(scores.mean())
        probabilities = torch.softmax(scores, dim=-1, dtype=torch.float64).mean(dim=0)
        dist = probabilities[0].tolist()
        best = max(range(len(dist)), key=dist.__getitem__)  # the first of equals, as argmax
        if self.network.temperature != 1.0:
            dist = self.network.calibrated(probabilities)[0].tolist()
        return best, dist


class FirstLayer:
    """The members' first linear layer over the InputEncoder's vector, [M, 1, H], as the
    sum of its inputs' terms: nominal values' remembered terms, numbers times their
    weights, each list's encoding times its weights."""

    def __init__(self, encoders, weight, bias):
        """encoders: the members' InputEncoders; weight [M, D, H] and bias [M, 1, H]: the
        members' first layer, transposed."""
        self.bias = bias
        first = encoders[0]
        memos = len(first.nominal_groups) + sum(spec["emb"] == CHARS_EMB_ID for spec in first.list_specs)
        share = MEMO_FLOATS // max(1, memos) // bias.numel()  # [M, H] terms per memo
        self.values = NominalTerms(encoders, weight, share)
        self.tables = self.values.tables
        self.lists = [ListTerm(self.tables[spec["emb"]], [e.list_encoders[i] for e in encoders], spec["emb"], share)
                      for i, spec in enumerate(first.list_specs)]
        # the InputEncoder's order: nominal columns, numbers, lists
        numbers = weight.shape[1] - self.values.width - sum(term.cnn.out_dim for term in self.lists)
        offset = self.values.width
        self.numeric_weight = weight[:, offset:offset + numbers] if numbers else None
        offset += numbers
        for term in self.lists:
            term.weight = weight[:, offset:offset + term.cnn.out_dim]
            offset += term.cnn.out_dim

    def __call__(self, instance):
        nominal, numeric, lists = instance
        x = self.bias
        if self.values.groups:
            x = x + self.values(nominal)
        if self.numeric_weight is not None:
            numbers = torch.tensor(numeric, dtype=torch.float, device=x.device).expand(len(x), 1, -1)
            x = torch.baddbmm(x, numbers, self.numeric_weight)
        for term, ids in zip(self.lists, lists):
            x = term(x, ids)
        return x


class NominalTerms:
    """The nominal columns' share of the first layer, [M, 1, H]: for each column, its
    value's vector times the column's weights. A value's terms for all columns of its
    embedding are computed at once when it is first seen, then remembered."""

    def __init__(self, encoders, weight, share):
        """share: the [M, H] terms each embedding's memo may hold."""
        first, members, units = encoders[0], len(weight), weight.shape[-1]
        self.tables = {k: _stacked_table([e.embeddings[k] for e in encoders]) for k in first.embeddings}
        self.groups, self.group_columns, self.group_weights, self.layout = [], [], [], []
        offset = 0
        for g, (emb_id, columns) in enumerate(first.nominal_groups):
            table = self.tables[emb_id]
            dims = table if isinstance(table, int) else table.shape[-1]
            width = len(columns) * dims
            # [M, dims, K * H]: a value's vector times it gives its terms for all K columns
            columns_weight = weight[:, offset:offset + width].reshape(members, len(columns), dims, units)
            self.group_weights.append(columns_weight.transpose(1, 2).reshape(members, dims, -1).contiguous())
            self.groups.append(emb_id)
            self.group_columns.append(columns)
            self.layout += [(g, k, column) for k, column in enumerate(columns)]
            offset += width
        self.width = offset
        self.limits = [max(1, share // len(columns)) for columns in self.group_columns]
        self.memos = [{} for _ in self.groups]

    def __call__(self, nominal):
        """An instance's nominal ids -> [M, 1, H]."""
        for g, columns in enumerate(self.group_columns):
            self._remember(g, {nominal[column] for column in columns})
        memos = self.memos
        return torch.stack([memos[g][nominal[column]][k] for g, k, column in self.layout]).sum(dim=0).unsqueeze(1)

    def _remember(self, g, ids):
        memo = self.memos[g]
        new = [i for i in ids if i not in memo]
        if not new:
            return
        if len(memo) + len(new) > self.limits[g]:
            memo.clear()
            new = list(ids)
        weights, table = self.group_weights[g], self.tables[self.groups[g]]
        ids = torch.tensor(new, device=weights.device)
        if isinstance(table, int):  # a one-hot vector picks its rows of the weights
            terms = weights.index_select(1, ids)
        else:
            terms = torch.bmm(table[ids].transpose(0, 1), weights)
        # [M, N, K * H] -> per value, its K columns' terms [M, H]
        terms = terms.view(len(weights), len(new), len(self.group_columns[g]), -1).permute(1, 2, 0, 3)
        memo.update(zip(new, (t.unbind(0) for t in terms)))


class ListTerm:
    """One list feature's share of the first layer: the members' encodings of the list
    (StackedListCNN, or the mean of its vectors alone) times their weights. A list of a
    word's characters recurs with the word: its term is remembered."""

    def __init__(self, table, cnns, emb_id, share):
        """share: the terms the memo may hold."""
        self.table, self.cnn = table, StackedListCNN(cnns)
        self.mean_only = not self.cnn.shapes and not isinstance(table, int)
        # for the mean alone: one row of all members' vectors per word
        self.rows = table.view(len(table), -1) if self.mean_only else None
        self.memo = {} if emb_id == CHARS_EMB_ID else None
        self.limit = max(1, share)
        self.weight = None  # [M, out_dim, H], set by FirstLayer

    def __call__(self, x, ids):
        """x [M, 1, H] and the instance's list ids -> x plus the list's term."""
        if self.memo is None:
            return torch.baddbmm(x, self.encoded(ids), self.weight)
        key = tuple(ids)
        term = self.memo.get(key)
        if term is None:
            if len(self.memo) >= self.limit:
                self.memo.clear()
            term = self.memo[key] = torch.bmm(self.encoded(ids), self.weight)
        return x + term

    def encoded(self, ids):
        """The list's ids (all above 0, the padding id) -> the members' encodings
        [M, 1, out_dim]; an empty list reads as zeros."""
        members, device = len(self.weight), self.weight.device
        if self.mean_only:
            if not ids:
                return self.rows.new_zeros(members, 1, self.cnn.out_dim)
            return self.rows.index_select(0, torch.tensor(ids, device=device)).mean(dim=0).view(members, 1, -1)
        rows = torch.tensor([ids or [0]], device=device)
        return self.cnn(_embed(self.table, rows, members), rows != 0)


def _embed(table, ids, members):
    """long ids [...] -> the members' vectors [M, ..., dims]."""
    if isinstance(table, int):  # one-hot: the same vectors for every member
        return F.one_hot(ids, table).float().expand(members, *ids.shape, table)
    return table[ids].movedim(-2, 0)


def _stacked_table(embeddings):
    """The members' embedding weights [V, M, dims] (row lookups give every member's
    vector at once), or a one-hot's size."""
    if isinstance(embeddings[0], OneHot):
        return embeddings[0].embedding_dim
    return torch.stack([e.weight.detach() for e in embeddings], dim=1)


class StackedListCNN:
    """The members' ListCNNs (same widths): each width's convolution as one batched matrix
    product of the list's windows with the members' filters."""

    def __init__(self, cnns):
        self.mean = cnns[0].mean
        self.out_dim = cnns[0].out_dim
        self.shapes = [(conv.kernel_size[0], conv.padding[0]) for conv in cnns[0].convs]
        self.filters = [torch.stack([c.convs[i].weight.detach().flatten(1).t() for c in cnns]) for i in range(len(self.shapes))]
        self.biases = [torch.stack([c.convs[i].bias.detach() for c in cnns]).unsqueeze(1) for i in range(len(self.shapes))]

    def __call__(self, vectors, mask):
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


class MergedBag:
    """The members' NaiveBayesBags as one, a list's ids -> weighted scores [M, 1, C]: every
    member's word rows side by side and the union of their pairs, a pair a member has not
    seen scoring 0 for it as in its own. A list's distinct words and pairs are found in
    Python (a request's list is short) and their rows summed."""

    def __init__(self, bags, weight):
        """weight: the naive Bayes scores' weight in the members' sum."""
        self.vocab_size, classes = bags[0].vocab_size, bags[0].scores.shape[1]
        keys = torch.unique(torch.cat([b.pair_keys for b in bags]))
        scores = torch.zeros(self.vocab_size + len(keys), len(bags), classes, device=keys.device)
        for m, bag in enumerate(bags):
            scores[:self.vocab_size, m] = bag.scores[:self.vocab_size]
            scores[self.vocab_size + torch.searchsorted(keys, bag.pair_keys), m] = bag.scores[self.vocab_size:]
        self.scores = scores.view(len(scores), -1) * weight
        self.shape = (len(bags), 1, classes)
        self.pair_rows = {key: self.vocab_size + row for row, key in enumerate(keys.tolist())}

    def __call__(self, ids):
        rows = torch.tensor(self.rows(ids), dtype=torch.long, device=self.scores.device)
        return self.scores.index_select(0, rows).sum(dim=0).view(self.shape)

    def rows(self, ids):
        """A list's ids -> the rows of its distinct words and seen pairs."""
        pairs = {a * self.vocab_size + b for a, b in zip(ids, ids[1:])}
        return list(set(ids)) + [self.pair_rows[p] for p in pairs if p in self.pair_rows]
