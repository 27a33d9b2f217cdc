"""Turns a batch of LF feature values into one vector per instance (or per element).

The batch is a dict of tensors (see `filejsonpytorch.batches`):
  nominal  long  [B, F] or [B, T, F]   one vocabulary id per nominal feature
  numeric  float [B, M] or [B, T, M]   standardised numbers and 0/1 booleans
  lists    list of long [B, L] or [B, T, L], one per list (n-gram) feature, 0 = padding
  mask     bool  [B, T]                real elements (sequences only)
  target   long [B] or [B, T], float [B] for regression: the labels (not when applying)
Training (`TensorData.batch`) and application (`request_batch`) build this same batch.

`InputEncoder(arch)` embeds every nominal feature (but the columns listed in the
architecture's `ignore_nominal`) with the embedding of its id, encodes every list feature
with a masked CNN or BiLSTM, and concatenates all with the numeric values. Padding never
changes a result: padded list positions are masked, and padded sequence elements are
left to the sequence layer's mask.
"""

import torch
from torch import nn
from torch.nn import functional as F

from ..vocab import CHARS_EMB_ID
from .bilstm import final_states

#: words whose character vectors a serving encoder remembers before it starts afresh
MEMO_LIMIT = 100_000


class OneHot(nn.Module):
    """long ids [...] -> one-hot float vectors [..., size]."""

    def __init__(self, size):
        super().__init__()
        self.embedding_dim = size

    def forward(self, ids):
        return F.one_hot(ids, self.embedding_dim).float()


class MappedEmbedding(nn.Module):
    """Fixed vectors plus a learned linear mapping (emb_train `mapping`)."""

    def __init__(self, vocab_size, dims):
        super().__init__()
        self.vectors = nn.Embedding(vocab_size, dims, padding_idx=0)
        self.vectors.weight.requires_grad_(False)
        self.mapping = nn.Linear(dims, dims)
        self.embedding_dim = dims

    @property
    def weight(self):
        return self.vectors.weight

    def forward(self, ids):
        return self.mapping(self.vectors(ids))


def make_embedding(spec):
    """An architecture.Embedding -> a module mapping long ids [...] to vectors [..., dims]."""
    if spec.train == "onehot":
        return OneHot(spec.vocab_size)
    if spec.train == "mapping":
        return MappedEmbedding(spec.vocab_size, spec.dims)
    embedding = nn.Embedding(spec.vocab_size, spec.dims, padding_idx=0)
    nn.init.normal_(embedding.weight, std=1.0 / spec.dims ** 0.5)
    with torch.no_grad():
        embedding.weight[0].zero_()
    embedding.weight.requires_grad_(spec.train != "no")
    return embedding


class ListCNN(nn.Module):
    """Kim (2014) style: convolutions of several widths, ReLU, max over real positions;
    with `mean`, also the average of the list's vectors (a bag of words, Iyyer et al. 2015);
    with no widths and `mean`, that average alone (the "mean" list layer).

    Each `nn.Conv1d` holds its weights, but the convolution is computed as one matrix
    product of every position's window of vectors: the same function, without the CPU
    kernel that torch builds anew for each shape of batch (batches of words change shape
    all the time). With `by_length`, a tagger's characters take half the time (README)."""

    def __init__(self, dims, widths, channels, mean=False):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv1d(dims, channels, w, padding=w // 2) for w in widths)
        self.mean = mean
        self.out_dim = channels * len(widths) + (dims if mean else 0)

    def forward(self, vectors, mask):
        """vectors [N, L, dims], mask bool [N, L] (real positions) -> [N, out_dim]."""
        vectors = vectors * mask.unsqueeze(-1)
        pooled = []
        for conv in self.convs:
            h = F.relu(convolve(conv, vectors))
            pooled.append(h.masked_fill(~mask.unsqueeze(-1), 0.0).amax(dim=1))
        if self.mean:
            pooled.append(vectors.sum(dim=1) / mask.sum(dim=1, keepdim=True).clamp(min=1))
        return torch.cat(pooled, dim=-1)


def convolve(conv, vectors):
    """What `conv` (an nn.Conv1d, stride 1, padding w // 2) gives for vectors [N, L, dims],
    as [N, L, channels]: each position's window of w vectors times the weights."""
    width = conv.kernel_size[0]
    padded = F.pad(vectors, (0, 0, width // 2, width // 2))
    windows = padded.unfold(1, width, 1)[:, :vectors.shape[1]]  # [N, L, dims, width]
    weights = conv.weight.reshape(conv.out_channels, -1)  # [channels, dims * width]
    out = windows.flatten(2) @ weights.t()
    return out if conv.bias is None else out + conv.bias


class NaiveBayesBag(nn.Module):
    """Multinomial naive Bayes over a list's distinct words and pairs of neighbouring
    words, a hard baseline on short texts (Wang & Manning 2012). `count` takes each
    n-gram's log-probability per class from the training data (add-one smoothing, centred
    over the classes); n-grams not seen there score 0. Only the pairs seen in training are
    kept, so the table is exact and grows with the data, not with the vocabulary squared.
    The scores are counts, not parameters: training never changes them."""

    def __init__(self, vocab_size, n_classes):
        super().__init__()
        self.vocab_size = vocab_size
        self.register_buffer("pair_keys", torch.zeros(0, dtype=torch.long))
        self.register_buffer("scores", torch.zeros(vocab_size, n_classes))

    def ngrams(self, ids):
        """[B, L] word ids -> [B, 2L-1] keys of the distinct words and pairs, 0 for padding;
        the pair (a, b) has the key a * vocab_size + b, above every word id."""
        pairs = ids[:, :-1] * self.vocab_size + ids[:, 1:]
        pairs = pairs.masked_fill((ids[:, :-1] == 0) | (ids[:, 1:] == 0), 0)
        grams = torch.cat([ids, pairs], dim=1).sort(dim=1).values
        grams[:, 1:].masked_fill_(grams[:, 1:] == grams[:, :-1], 0)
        return grams

    def rows(self, grams):
        """Keys -> rows of `scores`: words their own id, seen pairs after the words, 0 else."""
        is_pair = grams >= self.vocab_size
        if len(self.pair_keys) == 0:
            return grams.masked_fill(is_pair, 0)
        where = torch.searchsorted(self.pair_keys, grams).clamp(max=len(self.pair_keys) - 1)
        seen = is_pair & (self.pair_keys[where] == grams)
        return torch.where(seen, where + self.vocab_size, grams.masked_fill(is_pair, 0))

    def forward(self, ids):
        return F.embedding_bag(self.rows(self.ngrams(ids)), self.scores, mode="sum", padding_idx=0)

    @torch.no_grad()
    def count(self, lists_and_targets):
        """Sets the scores from (ids [B, L], target [B]) batches; an n-gram counts once per list."""
        grams, labels = [], []
        for ids, target in lists_and_targets:
            g = self.ngrams(ids)
            grams.append(g.flatten())
            labels.append(target.unsqueeze(1).expand_as(g).flatten())
        grams, labels = torch.cat(grams), torch.cat(labels)
        real = grams != 0
        keys, rows = torch.unique(grams[real], return_inverse=True)
        counts = torch.zeros(len(keys), self.scores.shape[1], device=keys.device)
        counts.index_put_((rows, labels[real]), torch.ones(len(rows), device=keys.device), accumulate=True)
        log_p = torch.log((counts + 1) / (counts + 1).sum(0))
        centred = log_p - log_p.mean(1, keepdim=True)
        is_word = keys < self.vocab_size
        word_scores = torch.zeros(self.vocab_size, counts.shape[1], device=keys.device)
        word_scores[keys[is_word]] = centred[is_word]
        self.pair_keys = keys[~is_word]
        self.scores = torch.cat([word_scores, centred[~is_word]])

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # the table's size comes from the training data: take it from the saved one
        for name in ("pair_keys", "scores"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name], device=getattr(self, name).device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class ListLSTM(nn.Module):
    """A BiLSTM over the list; the final states of both directions (in fused kernels, as
    `bilstm.final_states` computes them)."""

    def __init__(self, dims, hidden):
        super().__init__()
        self.lstm = nn.LSTM(dims, hidden, batch_first=True, bidirectional=True)
        self.out_dim = 2 * hidden

    def forward(self, vectors, mask):
        """vectors [N, L, dims], mask bool [N, L] -> [N, 2 * hidden]; zeros for an empty list."""
        lengths = mask.sum(-1)
        final = final_states(self.lstm, vectors, lengths.clamp(min=1))
        return final * (lengths > 0).unsqueeze(-1)


class InputEncoder(nn.Module):
    """One vector of `out_dim` values per instance, [B, out_dim], or per sequence element,
    [B, T, out_dim], from a batch as described above."""

    def __init__(self, arch):
        super().__init__()
        emb_specs = arch.embeddings
        self.embeddings = nn.ModuleDict({k: make_embedding(s) for k, s in emb_specs.items()})
        self.nominal_groups = self._group_columns(arch.nominal, arch.ignore_nominal)
        self.list_specs = arch.lists
        self.list_encoders = nn.ModuleList(self._list_encoder(s, emb_specs[s["emb"]]) for s in arch.lists)
        self.out_dim = (
            sum(len(cols) * self._dims(emb_specs[k]) for k, cols in self.nominal_groups)
            + arch.numeric
            + sum(e.out_dim for e in self.list_encoders)
        )
        self.memos = None

    def memoise(self):
        """For serving only (training changes the weights): from now on each distinct word's
        character vector is computed once and remembered, as words recur far more often
        than they are new."""
        self.memos = [{} if spec["emb"] == CHARS_EMB_ID else None for spec in self.list_specs]

    @staticmethod
    def _group_columns(nominal_emb_ids, ignored):
        groups = {}
        for column, emb_id in enumerate(nominal_emb_ids):
            if column not in ignored:
                groups.setdefault(emb_id, []).append(column)
        return list(groups.items())

    @staticmethod
    def _dims(spec):
        return spec.vocab_size if spec.train == "onehot" else spec.dims

    def _list_encoder(self, spec, emb_spec):
        dims = self._dims(emb_spec)
        if spec["layer"] == "lstm":
            return ListLSTM(dims, spec["hidden"])
        if spec["layer"] == "mean":
            return ListCNN(dims, [], 0, mean=True)
        return ListCNN(dims, spec["widths"], spec["channels"], spec.get("mean", False))

    def embed(self, emb_id, ids):
        return self.embeddings[emb_id](ids)

    def forward(self, batch):
        """A batch (see above) -> [B, out_dim], or [B, T, out_dim] for sequences."""
        parts = []
        nominal = batch["nominal"]
        for emb_id, columns in self.nominal_groups:
            vectors = self.embed(emb_id, nominal[..., columns])
            parts.append(vectors.flatten(-2))
        if batch["numeric"].shape[-1]:
            parts.append(batch["numeric"])
        for index, ids in enumerate(batch["lists"]):
            parts.append(self._encode_list(index, ids, batch.get("mask")))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)

    def _encode_list(self, index, ids, element_mask):
        if ids.dim() == 2:
            return self._encode_rows(index, ids)
        batch, steps, length = ids.shape
        if batch == 1 and bool(element_mask.all()):  # one sequence (application): no padding
            return self._encode_rows(index, ids[0]).unsqueeze(0)
        # a list inside each sequence element: encode the real elements only, by length
        flat = ids.reshape(batch * steps, length)
        real = element_mask.reshape(-1)
        encoded = by_length(flat[real], lambda rows: self._encode_rows(index, rows))
        out = encoded.new_zeros(batch * steps, encoded.shape[-1])
        out[real] = encoded
        return out.view(batch, steps, -1)

    def _encode_rows(self, index, rows):
        """rows [N, L] of one list feature's ids -> [N, out_dim]; remembered when memoised."""
        encoder, emb_id = self.list_encoders[index], self.list_specs[index]["emb"]
        memo = self.memos[index] if self.memos else None
        if memo is None:
            return encoder(self.embed(emb_id, rows), rows != 0)
        return remembered(memo, rows, lambda padded: encoder(self.embed(emb_id, padded), padded != 0))


def by_length(rows, compute):
    """rows [N, L] of ids, each padded with 0 after its own -> compute(rows) [N, ...], which
    reads the 0s as padding: computed for groups of rows of about the same length (up to 4,
    8, 16, ... ids), each cut to its longest row. A batch's words are padded to its longest
    word, about four times their mean length, and a CNN's work grows with the padding."""
    if not len(rows):
        return compute(rows)
    lengths = (rows != 0).sum(-1)
    order = lengths.argsort()
    ordered = lengths[order]
    caps = [4]
    while caps[-1] < rows.shape[1]:
        caps.append(2 * caps[-1])
    ends = torch.searchsorted(ordered, torch.tensor(caps, device=rows.device), right=True).tolist()
    parts, start = [], 0
    for end in ends:
        if end > start:
            group = order[start:end]
            parts.append(compute(rows[group, :max(int(ordered[end - 1]), 1)]))
            start = end
    return torch.cat(parts)[order.argsort()]


def remembered(memo, rows, compute):
    """rows [N, L] of ids -> compute(rows) [N, ...], each distinct row (a word's characters)
    computed once and kept in `memo` (a dict; emptied when it would exceed MEMO_LIMIT).
    `compute` gets the new rows padded with 0, which it must read as padding."""
    keys = [tuple(row[:n]) for row, n in zip(rows.tolist(), (rows != 0).sum(-1).tolist())]
    new = list(dict.fromkeys(k for k in keys if k not in memo))
    if new and len(memo) + len(new) > MEMO_LIMIT:
        memo.clear()
        new = list(dict.fromkeys(keys))
    if new:
        width = max(max(map(len, new)), 1)
        padded = rows.new_tensor([list(k) + [0] * (width - len(k)) for k in new])
        memo.update(zip(new, compute(padded)))
    return torch.stack([memo[k] for k in keys])
