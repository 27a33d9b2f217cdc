"""A parsed LF data file as flat arrays (`Dataset`), and how rows are collected into one."""

from dataclasses import dataclass

import numpy as np


@dataclass
class Dataset:
    """A parsed data file as flat arrays; for sequences every row is one element and
    `seq_offsets` marks where each sequence starts."""

    nominal: np.ndarray  # int64 [rows, n_nominal]
    numeric: np.ndarray  # float32 [rows, n_numeric]
    list_ids: list  # per list feature: int64 [total]
    list_offsets: list  # per list feature: int64 [rows + 1]
    target: np.ndarray  # int64 [rows] or float32 [rows]
    seq_offsets: np.ndarray = None  # int64 [n + 1], sequences only

    def __len__(self):
        if self.seq_offsets is not None:
            return len(self.seq_offsets) - 1
        return len(self.target)

    def subset(self, indices):
        """The instances (sequences) at `indices`, as a new Dataset."""
        indices = np.asarray(indices, dtype=np.int64)
        rows = self.rows_of(indices)
        lists, offsets = [], []
        for ids, off in zip(self.list_ids, self.list_offsets):
            starts, ends = off[rows], off[rows + 1]
            lists.append(np.concatenate([ids[s:e] for s, e in zip(starts, ends)]) if len(rows) else ids[:0])
            offsets.append(np.concatenate([[0], np.cumsum(ends - starts)]).astype(np.int64))
        seq_offsets = None
        if self.seq_offsets is not None:
            lengths = self.seq_offsets[indices + 1] - self.seq_offsets[indices]
            seq_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return Dataset(self.nominal[rows], self.numeric[rows], lists, offsets, self.target[rows], seq_offsets)

    def id_counts(self, schema, vocab_sizes):
        """{emb_id: occurrences of every id} over the nominal and list features; the
        positions of one window attribute count a value once (their largest count)."""
        per_attribute = {}
        columns = [(f, self.nominal[:, column]) for column, f in enumerate(schema.nominal)]
        for f, ids in columns + list(zip(schema.lists, self.list_ids)):
            key = (f.emb_id, f.attrid)
            counts = np.bincount(ids, minlength=vocab_sizes[f.emb_id])
            per_attribute[key] = np.maximum(per_attribute.get(key, 0), counts)
        totals = {emb_id: np.zeros(size, dtype=np.int64) for emb_id, size in vocab_sizes.items()}
        for (emb_id, _), counts in per_attribute.items():
            totals[emb_id] += counts
        return totals

    def remap(self, schema, tables):
        """Replaces ids in place through {emb_id: old id -> new id} tables."""
        for column, f in enumerate(schema.nominal):
            self.nominal[:, column] = tables[f.emb_id][self.nominal[:, column]]
        self.list_ids = [tables[f.emb_id][ids] for ids, f in zip(self.list_ids, schema.lists)]

    def rows_of(self, indices):
        indices = np.asarray(indices, dtype=np.int64)
        if self.seq_offsets is None:
            return indices
        starts, ends = self.seq_offsets[indices], self.seq_offsets[indices + 1]
        return np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)]).astype(np.int64) if len(indices) else indices

    def lengths(self):
        return np.diff(self.seq_offsets)


class Columns:
    """Accumulates encoded rows, then packs them into a Dataset."""

    def __init__(self, encoder):
        self.nominal, self.numeric, self.target = [], [], []
        self.lists = [[] for _ in encoder.lists]
        self.list_lengths = [[] for _ in encoder.lists]
        self.seq_lengths = []

    def add(self, encoded, target):
        nominal, numeric, lists = encoded
        self.nominal.append(nominal)
        self.numeric.append(numeric)
        for i, ids in enumerate(lists):
            self.lists[i].extend(ids)
            self.list_lengths[i].append(len(ids))
        self.target.append(target)

    def pack(self, n_nominal, n_numeric, target_dtype, is_sequence):
        rows = len(self.target)
        offsets = [np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]) for lengths in self.list_lengths]
        return Dataset(
            nominal=np.array(self.nominal, dtype=np.int64).reshape(rows, n_nominal),
            numeric=np.array(self.numeric, dtype=np.float32).reshape(rows, n_numeric),
            list_ids=[np.array(ids, dtype=np.int64) for ids in self.lists],
            list_offsets=[o.astype(np.int64) for o in offsets],
            target=np.array(self.target, dtype=target_dtype),
            seq_offsets=np.concatenate([[0], np.cumsum(self.seq_lengths, dtype=np.int64)]) if is_sequence else None,
        )
