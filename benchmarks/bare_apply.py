"""A bare application program for the GATE host's line protocol: the reference that
bench_apply.py measures our server against.

    python benchmarks/bare_apply.py METAFILE

Per request it does the least a Python program must do: parse the JSON line, look the
nominal values up in a dict (numbers are taken as they are), make tensors, run one
network and write one JSON response line. The network has our default sizes but random
weights, so its answers are valid probability distributions without being right: only
the time matters. Inputs: 40-dim embeddings per nominal feature; a list (n-gram) feature
embedded in 100 dims and averaged (instances) or read by convolutions of widths 3, 4, 5
with 100 filters each (sequences), as our defaults read them;
for the nominal feature with the most values a character CNN (30-dim characters, width
3, 50 filters) over every word, as our default tagger and window classifier have. Then
for instances of numbers and nominal values only three ReLU layers of 500, for other
instances one of 200, for sequences one of 200 and a BiLSTM of 100 per direction. It
reads the labels and the nominal values from the LF meta file; `STOP` or end of input
ends it.
"""

import json
import sys

import torch
from torch import nn
from torch.nn import functional as F

EMBEDDING_DIMS, LIST_DIMS, LIST_WIDTHS, LIST_FILTERS = 40, 100, (3, 4, 5), 100
CHAR_DIMS, CHAR_FILTERS, MAX_CHARS = 30, 50, 30
HIDDEN = 200
VECTOR_HIDDEN, VECTOR_LAYERS = 500, 3
LSTM_HIDDEN = 100


def main():
    with open(sys.argv[1], encoding="utf-8-sig") as f:
        meta = json.load(f)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    encoder = Encoder(meta)
    labels = sorted(meta["targetStats"]["stringCounts"])
    sequence = bool(meta.get("isSequence"))
    network = BareNet(encoder, len(labels), sequence).eval()
    respond = sequence_response if sequence else class_response
    with torch.inference_mode():
        for line in sys.stdin.buffer:
            if line.strip() == b"STOP":
                break
            sys.stdout.write(answer(line, encoder, network, labels, sequence, respond) + "\n")
            sys.stdout.flush()


class Encoder:
    """Nominal values -> rows of one embedding table (0: unknown); numbers as floats; list
    values -> rows of the list table; the characters of the largest nominal feature."""

    def __init__(self, meta):
        self.nominal, self.numeric, self.lists = [], [], []
        self.rows = self.list_rows = 1
        stats = meta["featureStats"]
        for index, feature in enumerate(meta["features"]):
            if feature["datatype"] == "numeric":
                self.numeric.append(index)
                continue
            values = stats[feature["name"]].get("stringCounts", {})
            if feature.get("kind") == "N":
                self.lists.append((index, {value: self.list_rows + row for row, value in enumerate(values)}))
                self.list_rows += len(values)
                continue
            self.nominal.append((index, {value: self.rows + row for row, value in enumerate(values)}))
            self.rows += len(values)
        words = max(self.nominal, key=lambda n: len(n[1]), default=None)
        self.words = words[0] if words else None
        letters = sorted({c for word in (words[1] if words else ()) for c in word})
        self.chars = {c: i + 1 for i, c in enumerate(letters)}

    def encode(self, elements):
        """elements: a list of feature value lists -> (ids [1, T, F], numbers [1, T, M],
        list ids [T, L] per list feature, character ids [T, W] or None)."""
        ids = [[rows.get(values[i], 0) for i, rows in self.nominal] for values in elements]
        numbers = [[float(values[i]) for i in self.numeric] for values in elements]
        lists = [padded([[rows.get(v, 0) for v in values[i]] for values in elements]) for i, rows in self.lists]
        chars = None
        if self.words is not None:
            chars = padded([[self.chars.get(c, 0) for c in values[self.words][:MAX_CHARS]] for values in elements])
        return torch.tensor([ids], dtype=torch.long), torch.tensor([numbers], dtype=torch.float), lists, chars


def padded(rows):
    width = max(max(map(len, rows)), 1)
    return torch.tensor([row + [0] * (width - len(row)) for row in rows], dtype=torch.long)


class CNN(nn.Module):
    """ids [N, L] -> embedded, convolutions of some widths, ReLU, max over positions -> [N, filters * widths]."""

    def __init__(self, rows, dims, widths, filters):
        super().__init__()
        self.embedding = nn.Embedding(rows, dims)
        self.convs = nn.ModuleList(nn.Conv1d(dims, filters, w, padding=w // 2) for w in widths)
        self.out_dim = filters * len(widths)

    def forward(self, ids):
        x = self.embedding(ids).transpose(1, 2)
        return torch.cat([F.relu(conv(x)).amax(dim=-1) for conv in self.convs], dim=-1)


class Mean(nn.Module):
    """ids [N, L] -> the mean of the embedded ids that are not padding (0) -> [N, dims]."""

    def __init__(self, rows, dims):
        super().__init__()
        self.embedding = nn.Embedding(rows, dims, padding_idx=0)
        self.out_dim = dims

    def forward(self, ids):
        return self.embedding(ids).sum(dim=1) / (ids != 0).sum(dim=1, keepdim=True).clamp(min=1)


class BareNet(nn.Module):
    """Embeddings, lists, characters and numbers -> ReLU layers (one, then a BiLSTM, for
    sequences) -> label probabilities."""

    def __init__(self, encoder, n_labels, sequence):
        super().__init__()
        self.embedding = nn.Embedding(encoder.rows, EMBEDDING_DIMS) if encoder.nominal else None
        self.lists = nn.ModuleList(CNN(encoder.list_rows, LIST_DIMS, LIST_WIDTHS, LIST_FILTERS) if sequence
                                   else Mean(encoder.list_rows, LIST_DIMS) for _ in encoder.lists)
        self.chars = CNN(len(encoder.chars) + 1, CHAR_DIMS, (3,), CHAR_FILTERS) if encoder.words is not None else None
        width = (len(encoder.nominal) * EMBEDDING_DIMS + len(encoder.numeric) + sum(c.out_dim for c in self.lists)
                 + (self.chars.out_dim if self.chars else 0))
        vector = not sequence and not encoder.lists and self.chars is None
        sizes = [width] + [VECTOR_HIDDEN] * VECTOR_LAYERS if vector else [width, HIDDEN]
        self.hidden = nn.Sequential(*(layer for n_in, n_out in zip(sizes, sizes[1:])
                                      for layer in (nn.Linear(n_in, n_out), nn.ReLU())))
        self.lstm = nn.LSTM(HIDDEN, LSTM_HIDDEN, batch_first=True, bidirectional=True) if sequence else None
        self.output = nn.Linear(2 * LSTM_HIDDEN if sequence else sizes[-1], n_labels)

    def forward(self, ids, numbers, lists, chars):
        parts = [numbers]
        if self.embedding is not None:
            parts.append(self.embedding(ids).flatten(-2))
        parts += [cnn(list_ids).unsqueeze(0) for cnn, list_ids in zip(self.lists, lists)]
        if self.chars is not None:
            parts.append(self.chars(chars).unsqueeze(0))
        x = self.hidden(torch.cat(parts, dim=-1))
        if self.lstm is not None:
            x, _ = self.lstm(x)
        return torch.softmax(self.output(x), dim=-1)


def answer(line, encoder, network, labels, sequence, respond):
    try:
        request = json.loads(line)
        elements = request if sequence else [request]
        return respond(network(*encoder.encode(elements))[0].tolist(), labels)
    except (ValueError, TypeError, IndexError, KeyError, RuntimeError) as e:
        return json.dumps({"status": "error", "error": f"{type(e).__name__}: {e}"})


def class_response(dist, labels):
    dist = dist[0]
    best = max(range(len(dist)), key=dist.__getitem__)
    return json.dumps({"status": "ok", "output": labels[best], "conf": dist[best], "dist": dist, "labels": labels})


def sequence_response(dists, labels):
    best = [max(range(len(d)), key=d.__getitem__) for d in dists]
    return json.dumps({"status": "ok", "output": [labels[b] for b in best],
                       "conf": [d[b] for d, b in zip(dists, best)], "dist": dists, "labels": labels})


if __name__ == "__main__":
    main()
