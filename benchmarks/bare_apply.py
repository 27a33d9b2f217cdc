"""A bare application program for the GATE host's line protocol: the reference that
bench_apply.py measures our server against.

    python benchmarks/bare_apply.py METAFILE

Per request it does the least a Python program must do: parse the JSON line, look the
nominal values up in a dict (numbers are taken as they are), make tensors, run a small
network and write one JSON response line. The network has our default sizes (for
instances three ReLU layers of 500; for sequences a layer of 200 and a BiLSTM of 100 per
direction) but random weights, so its answers are
valid probability distributions without being right: only the time matters. It reads the
labels and the nominal values from the LF meta file; `STOP` or end of input ends it.
"""

import json
import sys

import torch
from torch import nn

EMBEDDING_DIMS = 40
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
    """Nominal values -> rows of one embedding table (0: unknown); numbers as floats."""

    def __init__(self, meta):
        self.nominal, self.numeric = [], []
        self.rows = 1
        for index, feature in enumerate(meta["features"]):
            if feature["datatype"] == "numeric":
                self.numeric.append(index)
                continue
            values = meta["featureStats"][feature["name"]].get("stringCounts", {})
            self.nominal.append((index, {value: self.rows + row for row, value in enumerate(values)}))
            self.rows += len(values)

    def encode(self, elements):
        """elements: a list of feature value lists -> (ids [1, T, F], numbers [1, T, M])."""
        ids = [[rows.get(values[i], 0) for i, rows in self.nominal] for values in elements]
        numbers = [[float(values[i]) for i in self.numeric] for values in elements]
        return torch.tensor([ids], dtype=torch.long), torch.tensor([numbers], dtype=torch.float)


class BareNet(nn.Module):
    """Embeddings and numbers -> ReLU layers (one, then a BiLSTM, for sequences) -> label probabilities."""

    def __init__(self, encoder, n_labels, sequence):
        super().__init__()
        self.embedding = nn.Embedding(encoder.rows, EMBEDDING_DIMS) if encoder.nominal else None
        width = len(encoder.nominal) * EMBEDDING_DIMS + len(encoder.numeric)
        sizes = [width, HIDDEN] if sequence else [width] + [VECTOR_HIDDEN] * VECTOR_LAYERS
        self.hidden = nn.Sequential(*(layer for n_in, n_out in zip(sizes, sizes[1:])
                                      for layer in (nn.Linear(n_in, n_out), nn.ReLU())))
        self.lstm = nn.LSTM(HIDDEN, LSTM_HIDDEN, batch_first=True, bidirectional=True) if sequence else None
        self.output = nn.Linear(2 * LSTM_HIDDEN if sequence else sizes[-1], n_labels)

    def forward(self, ids, numbers):
        x = numbers
        if self.embedding is not None:
            x = torch.cat([self.embedding(ids).flatten(-2), numbers], dim=-1)
        x = self.hidden(x)
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
