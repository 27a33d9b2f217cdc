"""Batches of tensors from a parsed Dataset (training) or from single requests (application).

A batch is a dict: nominal, numeric, lists, target, and for sequences mask; see
`modules/encoder.py` for the shapes. Everything is gathered with vectorised tensor
indexing from the Dataset's flat arrays, so an epoch costs no Python work per value.
"""

from itertools import chain

import numpy as np
import torch


class TensorData:
    """A Dataset's arrays as torch tensors, ready for gathering batches."""

    def __init__(self, dataset):
        self.nominal = torch.from_numpy(dataset.nominal)
        self.numeric = torch.from_numpy(dataset.numeric)
        self.list_ids = [torch.from_numpy(np.append(ids, 0)) for ids in dataset.list_ids]
        self.list_offsets = [torch.from_numpy(o) for o in dataset.list_offsets]
        self.target = torch.from_numpy(dataset.target)
        self.is_sequence = dataset.seq_offsets is not None
        self.seq_offsets = torch.from_numpy(dataset.seq_offsets) if self.is_sequence else None
        self.size = len(dataset)
        self.lengths = dataset.lengths() if self.is_sequence else longest_lists(dataset)

    def batch(self, indices):
        indices = torch.as_tensor(indices, dtype=torch.long)
        if self.is_sequence:
            return self._sequence_batch(indices)
        return {
            "nominal": self.nominal[indices],
            "numeric": self.numeric[indices],
            "lists": [self._padded_lists(i, indices) for i in range(len(self.list_ids))],
            "target": self.target[indices],
        }

    def _sequence_batch(self, indices):
        starts = self.seq_offsets[indices]
        lengths = self.seq_offsets[indices + 1] - starts
        steps = torch.arange(int(lengths.max()))
        mask = steps < lengths.unsqueeze(1)
        rows = torch.where(mask, starts.unsqueeze(1) + steps, 0)
        return {
            "nominal": self.nominal[rows].masked_fill(~mask.unsqueeze(-1), 0),
            "numeric": self.numeric[rows].masked_fill(~mask.unsqueeze(-1), 0.0),
            "lists": [self._padded_lists(i, rows, mask) for i in range(len(self.list_ids))],
            "target": self.target[rows].masked_fill(~mask, 0) if self.target.dtype == torch.long else self.target[rows],
            "mask": mask,
        }

    def _padded_lists(self, feature, rows, row_mask=None):
        offsets, ids = self.list_offsets[feature], self.list_ids[feature]
        starts = offsets[rows]
        lengths = offsets[rows + 1] - starts
        if row_mask is not None:
            lengths = lengths * row_mask
        width = max(int(lengths.max()), 1)
        positions = torch.arange(width)
        inside = positions < lengths.unsqueeze(-1)
        # the appended 0 at the end of ids serves every padded position
        gather = torch.where(inside, starts.unsqueeze(-1) + positions, len(ids) - 1)
        return ids[gather]


def longest_lists(dataset):
    """Per instance, the length of its longest list feature; None without list features."""
    if not dataset.list_offsets:
        return None
    return np.max([np.diff(offsets) for offsets in dataset.list_offsets], axis=0)


def epoch_order(data, batch_size, rng, shuffle=True):
    """Index batches for one epoch. Sequences, and instances with list features, are grouped
    by length within pools of 50 batches (padding is most of the work otherwise: on
    sentence polarity, half of a random batch's positions) and the batches' order shuffled."""
    order = rng.permutation(data.size) if shuffle else np.arange(data.size)
    if data.lengths is None:
        return [order[i:i + batch_size] for i in range(0, data.size, batch_size)]
    pool = batch_size * 50
    batches = []
    for start in range(0, data.size, pool):
        chunk = order[start:start + pool]
        chunk = chunk[np.argsort(data.lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


class Passes:
    """The whole data set in fixed-order batches on the device, anew each time it is
    iterated (validation, a module's `initialise_from`), without a copy of the data."""

    def __init__(self, data, batch_size, device):
        self.data, self.batch_size, self.device = data, batch_size, device

    def __iter__(self):
        for indices in epoch_order(self.data, self.batch_size, None, shuffle=False):
            yield to_device(self.data.batch(indices), self.device, pin=True)


def to_device(batch, device, pin=False):
    """The batch on `device`. `pin`: through pinned memory, so that the copies to a GPU run
    while the CPU goes on (from pageable memory, non_blocking waits for each); for
    training's many batches, not for one request."""
    if device.type == "cpu":
        return batch

    def move(t):
        return (t.pin_memory() if pin else t).to(device, non_blocking=True)

    return {k: ([move(t) for t in v] if isinstance(v, list) else move(v)) for k, v in batch.items()}


def request_batch(encoded, is_sequence):
    """One application request, already encoded (see lfdata.Encoder), as a batch of one."""
    if not is_sequence:
        nominal, numeric, lists = encoded
        return {
            "nominal": torch.tensor([nominal], dtype=torch.long),
            "numeric": torch.tensor([numeric], dtype=torch.float),
            "lists": [torch.tensor([ids or [0]], dtype=torch.long) for ids in lists],
        }
    steps, n_lists = len(encoded), len(encoded[0][2])
    width = [max([len(e[2][i]) for e in encoded] + [1]) for i in range(n_lists)]
    return {
        "nominal": _tensor((e[0] for e in encoded), np.int64, steps, len(encoded[0][0])),
        "numeric": _tensor((e[1] for e in encoded), np.float32, steps, len(encoded[0][1])),
        "lists": [_tensor((e[2][i] + [0] * (width[i] - len(e[2][i])) for e in encoded), np.int64, steps, width[i])
                  for i in range(n_lists)],
        "mask": torch.ones(1, steps, dtype=torch.bool),
    }


def _tensor(rows, dtype, steps, width):
    """Rows of `width` numbers -> a tensor [1, steps, width], through NumPy, which reads
    Python numbers much faster than torch.tensor."""
    flat = np.fromiter(chain.from_iterable(rows), dtype, count=steps * width)
    return torch.from_numpy(flat).view(1, steps, width)
